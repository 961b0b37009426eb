//! Writing an inference response: `model_name`, `model_version`, `id` and
//! `outputs` (flat `data`), with the outputs the client asked for as binary
//! data after the JSON object (binary tensor data extension).

use super::binary;
use super::error::OipError;
use super::request::InferRequest;
use super::tensor::{Tensor, Values};

/// Who answers: the model's name and version.
pub struct Model<'a> {
    /// `model_name`.
    pub name: &'a str,
    /// `model_version`, when there is one.
    pub version: Option<&'a str>,
}

/// A response body; `json_length` is set when binary data follows the JSON
/// object (the `Inference-Header-Content-Length` header's value).
#[derive(Debug)]
pub struct Encoded {
    /// The body: the JSON object, then any binary data.
    pub body: Vec<u8>,
    /// The JSON object's length when binary data follows it.
    pub json_length: Option<usize>,
}

/// The outputs the request asked for, in its order, or all of them. An
/// output asked for that the answer lacks is an error naming it (a 400).
pub fn select_outputs(request: &InferRequest, mut outputs: Vec<Tensor>) -> Result<Vec<Tensor>, OipError> {
    if request.outputs.is_empty() {
        return Ok(outputs);
    }
    let mut chosen = Vec::with_capacity(request.outputs.len());
    for wanted in &request.outputs {
        match outputs.iter().position(|t| t.name == wanted.name) {
            Some(i) => chosen.push(outputs.swap_remove(i)),
            None if chosen.iter().any(|t: &Tensor| t.name == wanted.name) => {
                return Err(OipError::OutputRequestedTwice {
                    name: wanted.name.clone(),
                })
            }
            None => {
                let known = outputs.iter().chain(&chosen).map(|t| t.name.clone()).collect();
                return Err(OipError::UnknownOutput {
                    name: wanted.name.clone(),
                    known,
                });
            }
        }
    }
    Ok(chosen)
}

/// The response to `request` with `outputs` (already selected).
pub fn write_response(
    model: &Model<'_>,
    request: &InferRequest,
    outputs: &[Tensor],
) -> Result<Encoded, OipError> {
    let mut json = Vec::with_capacity(128 + outputs.iter().map(|t| t.len() * 20).sum::<usize>());
    let mut binary_data = Vec::new();
    json.extend_from_slice(b"{\"model_name\":");
    write_string(&mut json, model.name.as_bytes());
    if let Some(version) = model.version {
        json.extend_from_slice(b",\"model_version\":");
        write_string(&mut json, version.as_bytes());
    }
    if let Some(id) = &request.id {
        json.extend_from_slice(b",\"id\":");
        write_string(&mut json, id.as_bytes());
    }
    json.extend_from_slice(b",\"outputs\":[");
    for (i, t) in outputs.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.extend_from_slice(b"{\"name\":");
        write_string(&mut json, t.name.as_bytes());
        json.extend_from_slice(b",\"datatype\":\"");
        json.extend_from_slice(t.datatype.name().as_bytes());
        json.extend_from_slice(b"\",\"shape\":[");
        for (j, d) in t.shape.iter().enumerate() {
            if j > 0 {
                json.push(b',');
            }
            json.extend_from_slice(d.to_string().as_bytes());
        }
        json.push(b']');
        if request.wants_binary(&t.name) {
            let raw = binary::encode(t)?;
            json.extend_from_slice(
                format!(",\"parameters\":{{\"binary_data_size\":{}}}", raw.len()).as_bytes(),
            );
            binary_data.extend_from_slice(&raw);
        } else {
            json.extend_from_slice(b",\"data\":");
            write_data(&mut json, t);
        }
        json.push(b'}');
    }
    json.extend_from_slice(b"]}");
    if binary_data.is_empty() && !outputs.iter().any(|t| request.wants_binary(&t.name)) {
        return Ok(Encoded {
            body: json,
            json_length: None,
        });
    }
    let json_length = json.len();
    json.extend_from_slice(&binary_data);
    Ok(Encoded {
        body: json,
        json_length: Some(json_length),
    })
}

fn write_string(out: &mut Vec<u8>, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text.as_ref());
}

/// The elements as a flat JSON list.
fn write_data(out: &mut Vec<u8>, t: &Tensor) {
    out.push(b'[');
    for i in 0..t.len() {
        if i > 0 {
            out.push(b',');
        }
        match &t.values {
            Values::Bool(v) => out.extend_from_slice(if v[i] { b"true" } else { b"false" }),
            Values::Signed(v) => out.extend_from_slice(v[i].to_string().as_bytes()),
            Values::Unsigned(v) => out.extend_from_slice(v[i].to_string().as_bytes()),
            Values::Float(v) => super::write_json_float(out, v[i]),
            Values::Bytes(v) => write_string(out, &v[i]),
        }
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::super::datatype::Datatype;
    use super::super::request::parse_request;
    use super::*;
    use serde_json::json;

    fn tensors() -> Vec<Tensor> {
        vec![
            Tensor::new("score", Datatype::Fp32, vec![2], Values::Float(vec![9.5, 0.25])).unwrap(),
            Tensor::new(
                "label",
                Datatype::Bytes,
                vec![2],
                Values::Bytes(vec![b"a\"".to_vec(), b"b".to_vec()]),
            )
            .unwrap(),
        ]
    }

    fn request(value: serde_json::Value) -> InferRequest {
        parse_request(value.to_string().as_bytes(), None).unwrap()
    }

    const INPUT: &str = r#"[{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}]"#;

    #[test]
    fn json_response_with_every_field() {
        let inputs: serde_json::Value = serde_json::from_str(INPUT).unwrap();
        let r = request(json!({"id": "7", "inputs": inputs}));
        let model = Model {
            name: "m",
            version: Some("1.0"),
        };
        let e = write_response(&model, &r, &tensors()).unwrap();
        assert_eq!(e.json_length, None);
        let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(
            v,
            json!({"model_name": "m", "model_version": "1.0", "id": "7", "outputs": [
                {"name": "score", "datatype": "FP32", "shape": [2], "data": [9.5, 0.25]},
                {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["a\"", "b"]}
            ]})
        );
    }

    #[test]
    fn requested_outputs_in_binary() {
        let inputs: serde_json::Value = serde_json::from_str(INPUT).unwrap();
        let r = request(
            json!({"inputs": inputs, "outputs": [{"name": "score", "parameters": {"binary_data": true}}]}),
        );
        let chosen = select_outputs(&r, tensors()).unwrap();
        assert_eq!(chosen.len(), 1);
        let e = write_response(
            &Model {
                name: "m",
                version: None,
            },
            &r,
            &chosen,
        )
        .unwrap();
        let n = e.json_length.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&e.body[..n]).unwrap();
        assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], 8);
        assert!(v["outputs"][0].get("data").is_none());
        let mut raw = 9.5f32.to_le_bytes().to_vec();
        raw.extend_from_slice(&0.25f32.to_le_bytes());
        assert_eq!(&e.body[n..], raw);
        let r = request(json!({"inputs": inputs, "outputs": [{"name": "nope"}]}));
        let err = select_outputs(&r, tensors()).unwrap_err();
        assert!(
            matches!(&err, OipError::UnknownOutput { name, known } if name == "nope" && known.len() == 2),
            "{err}"
        );
        let err = err.to_string();
        assert!(
            err.contains("output \"nope\" is not one of this model's outputs (\"score\", \"label\")"),
            "{err}"
        );
    }
}
