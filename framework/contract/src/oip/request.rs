//! Reading an inference request: the JSON object of the protocol (`id`,
//! `parameters`, `inputs` with `data` flat or nested, `outputs`), and the
//! binary tensor data extension's raw data after it.
//!
//! Every error is an [`OipError`] for a 400 answer that names the input
//! (quoted, bounded, when the message is written) and what was wrong with it.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::binary;
use super::datatype::{Datatype, Kind};
use super::error::{InputProblem, OipError};
use super::tensor::{check_float, Tensor, Values};
use super::{elements, MAX_DIMS};
use crate::excerpt::{excerpt, quoted};

/// An inference request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct InferRequest {
    /// The client's `id`, echoed in the response.
    pub id: Option<String>,
    /// The request's `parameters`, as sent.
    pub parameters: Option<Map<String, Value>>,
    /// The input tensors, in the request's order.
    pub inputs: Vec<Tensor>,
    /// The outputs asked for by name; empty means all.
    pub outputs: Vec<RequestedOutput>,
}

/// One entry of the request's `outputs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestedOutput {
    /// The output's name.
    pub name: String,
    /// `parameters.binary_data` (binary tensor data extension).
    pub binary_data: Option<bool>,
}

impl InferRequest {
    /// `parameters.binary_data_output`: every output as binary data unless an
    /// output says otherwise.
    pub fn binary_data_output(&self) -> bool {
        self.parameters
            .as_ref()
            .and_then(|p| p.get("binary_data_output"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Whether the output named `name` is to be sent as binary data.
    pub fn wants_binary(&self, name: &str) -> bool {
        self.outputs
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.binary_data)
            .unwrap_or_else(|| self.binary_data_output())
    }
}

/// Reads a request body. `json_length` is the `Inference-Header-Content-Length`
/// header: the JSON object is that many bytes and the binary tensor data
/// follows it; without the header the whole body is the JSON object.
pub fn parse_request(body: &[u8], json_length: Option<usize>) -> Result<InferRequest, OipError> {
    let (json, rest) = match json_length {
        None => (body, &[][..]),
        Some(n) if n <= body.len() => body.split_at(n),
        Some(n) => {
            return Err(OipError::HeaderPastBody {
                claimed: n,
                body: body.len(),
            })
        }
    };
    // The usual request, read without a tree; any other, and every error,
    // read by the tree.
    match super::streamed::parse(json, rest) {
        Some(request) => Ok(request),
        None => parse_tree(json, rest),
    }
}

/// Reads the JSON object through a `serde_json::Value` tree, with the
/// message of every error.
pub(super) fn parse_tree(json: &[u8], mut rest: &[u8]) -> Result<InferRequest, OipError> {
    let document: Value = serde_json::from_slice(json).map_err(OipError::NotJson)?;
    let Value::Object(mut object) = document else {
        return Err(malformed(
            "the inference request must be a JSON object with \"inputs\"",
        ));
    };
    let id = match object.remove("id") {
        None => None,
        Some(Value::String(id)) => Some(id),
        Some(other) => {
            return Err(OipError::Malformed(format!(
                "\"id\": must be a string, got {}",
                json_excerpt(&other)
            )))
        }
    };
    let parameters = optional_object(object.remove("parameters")).map_err(|got| {
        OipError::Malformed(format!(
            "\"parameters\": must be an object, got {}",
            json_excerpt(&got)
        ))
    })?;
    // A previous step's response (an InferenceGraph sequence passes it on
    // as it is) carries its tensors as "outputs": they are this step's inputs.
    let chained = !object.contains_key("inputs") && object.get("outputs").is_some_and(is_response_outputs);
    let raw = if chained {
        object.remove("outputs")
    } else {
        object.remove("inputs")
    };
    let Some(Value::Array(raw_inputs)) = raw else {
        return Err(malformed(
            "the inference request needs \"inputs\", a list of input tensors",
        ));
    };
    if raw_inputs.is_empty() {
        return Err(malformed("\"inputs\" is empty; send at least one input tensor"));
    }
    let mut inputs = Vec::with_capacity(raw_inputs.len());
    for (i, raw) in raw_inputs.into_iter().enumerate() {
        let input = parse_input(raw, i, &mut rest)?;
        if inputs.iter().any(|t: &Tensor| t.name == input.name) {
            return Err(OipError::Input {
                name: input.name,
                problem: InputProblem::GivenTwice,
            });
        }
        inputs.push(input);
    }
    if !rest.is_empty() {
        return Err(OipError::UnclaimedBinary { bytes: rest.len() });
    }
    let outputs = match object.remove("outputs").filter(|_| !chained) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(raw)) => raw
            .into_iter()
            .enumerate()
            .map(|(i, o)| parse_output(o, i))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(OipError::Malformed(format!(
                "\"outputs\": must be a list, got {}",
                json_excerpt(&other)
            )))
        }
    };
    Ok(InferRequest {
        id,
        parameters,
        inputs,
        outputs,
    })
}

/// Whether `outputs` is a response's list of tensors (each with a datatype,
/// a shape and data) rather than a request's list of wanted outputs.
fn is_response_outputs(outputs: &Value) -> bool {
    outputs.as_array().is_some_and(|list| {
        !list.is_empty()
            && list.iter().all(|t| {
                t.get("datatype").is_some()
                    && t.get("shape").is_some()
                    && (t.get("data").is_some() || t.pointer("/parameters/binary_data_size").is_some())
            })
    })
}

/// A request that is not shaped as one, with a message that says so.
fn malformed(message: &str) -> OipError {
    OipError::Malformed(message.to_string())
}

/// An optional `parameters` object; when it is something else, the error is
/// that value, for the caller's message.
fn optional_object(value: Option<Value>) -> Result<Option<Map<String, Value>>, Value> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(other),
    }
}

fn parse_output(raw: Value, index: usize) -> Result<RequestedOutput, OipError> {
    let Value::Object(mut object) = raw else {
        return Err(OipError::Malformed(format!(
            "outputs[{index}] must be an object with a \"name\""
        )));
    };
    let Some(Value::String(name)) = object.remove("name") else {
        return Err(OipError::Malformed(format!(
            "outputs[{index}] needs a \"name\" (a string)"
        )));
    };
    let parameters = optional_object(object.remove("parameters")).map_err(|got| {
        OipError::Malformed(format!(
            "output {}: \"parameters\": must be an object, got {}",
            quoted(name.as_bytes()),
            json_excerpt(&got)
        ))
    })?;
    let binary_data = parameters
        .as_ref()
        .and_then(|p| p.get("binary_data"))
        .and_then(Value::as_bool);
    Ok(RequestedOutput { name, binary_data })
}

/// Reads one input; its binary data, if any, is taken from the front of `rest`.
fn parse_input(raw: Value, index: usize, rest: &mut &[u8]) -> Result<Tensor, OipError> {
    let Value::Object(mut object) = raw else {
        return Err(OipError::Malformed(format!(
            "inputs[{index}] must be an object with name, shape, datatype and data"
        )));
    };
    let name = match object.remove("name") {
        Some(Value::String(name)) => name,
        _ => {
            return Err(OipError::Malformed(format!(
                "inputs[{index}] needs a \"name\" (a string)"
            )))
        }
    };
    // The name goes into the error only when there is one.
    match parse_fields(object, rest) {
        Ok((datatype, shape, values)) => Ok(Tensor {
            name,
            datatype,
            shape,
            values,
        }),
        Err(problem) => Err(OipError::Input { name, problem }),
    }
}

/// An input's datatype, shape and values.
fn parse_fields(
    mut object: Map<String, Value>,
    rest: &mut &[u8],
) -> Result<(Datatype, Vec<usize>, Values), InputProblem> {
    let datatype = match object.remove("datatype") {
        Some(Value::String(d)) => Datatype::parse(&d).ok_or(InputProblem::UnknownDatatype(d))?,
        _ => return Err(InputProblem::NoDatatype),
    };
    let shape = parse_shape(object.remove("shape"))?;
    let count = match elements(&shape).filter(|&n| n <= isize::MAX as usize) {
        Some(count) => count,
        None => return Err(InputProblem::TooManyElements(shape)),
    };
    let parameters = optional_object(object.remove("parameters"))
        .map_err(|got| InputProblem::ParametersNotObject(json_excerpt(&got)))?;
    let binary_size = binary_data_size(parameters.as_ref()).ok_or(InputProblem::BadBinaryDataSize)?;
    let values = match (binary_size, object.remove("data")) {
        (Some(_), Some(_)) => return Err(InputProblem::DataAndBinary),
        (Some(size), None) => {
            if size > rest.len() {
                return Err(InputProblem::BinaryPastBody {
                    size,
                    left: rest.len(),
                });
            }
            let (mine, others) = rest.split_at(size);
            *rest = others;
            binary::decode(mine, datatype, count)?
        }
        (None, Some(data)) => parse_data(data, datatype, &shape, count)?,
        (None, None) => return Err(InputProblem::NoData),
    };
    Ok((datatype, shape, values))
}

fn parse_shape(raw: Option<Value>) -> Result<Vec<usize>, InputProblem> {
    let Some(Value::Array(dims)) = raw else {
        return Err(InputProblem::NoShape);
    };
    if dims.len() > MAX_DIMS {
        return Err(InputProblem::TooManyDimensions(dims.len()));
    }
    let mut shape = Vec::with_capacity(dims.len());
    for d in &dims {
        match d.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) => shape.push(n),
            None => return Err(InputProblem::BadShape(json_excerpt(&Value::Array(dims)))),
        }
    }
    Ok(shape)
}

/// Reads `data`, flat or nested, into values of `datatype`, checking that it
/// holds exactly the elements `shape` calls for, nested as the shape says.
fn parse_data(
    data: Value,
    datatype: Datatype,
    shape: &[usize],
    count: usize,
) -> Result<Values, InputProblem> {
    let mut values = Values::for_datatype(datatype, count.min(1 << 20));
    let mut nesting = Nesting::default();
    match data {
        Value::Array(items) => nesting.walk(items, 0, datatype, &mut values)?,
        scalar => {
            nesting.leaf_depth = Some(0);
            push_element(scalar, datatype, &mut values)?;
        }
    }
    let found = values.len();
    let flat = nesting.lengths.len() <= 1;
    if found != count {
        return Err(InputProblem::CountMismatch {
            shape: shape.to_vec(),
            count,
            found,
        });
    }
    if !flat && nesting.lengths != shape {
        return Err(InputProblem::NestedAs {
            nesting: nesting.lengths,
            shape: shape.to_vec(),
        });
    }
    Ok(values)
}

/// The lengths of nested lists seen at each depth, to check that `data` is
/// regular.
#[derive(Default)]
struct Nesting {
    lengths: Vec<usize>,
    leaf_depth: Option<usize>,
}

impl Nesting {
    fn walk(
        &mut self,
        items: Vec<Value>,
        depth: usize,
        datatype: Datatype,
        out: &mut Values,
    ) -> Result<(), InputProblem> {
        if depth >= MAX_DIMS {
            return Err(InputProblem::NestedTooDeep);
        }
        match self.lengths.get(depth) {
            None => self.lengths.push(items.len()),
            Some(&n) if n != items.len() => {
                return Err(InputProblem::RaggedLengths {
                    depth,
                    length: items.len(),
                    other: n,
                })
            }
            Some(_) => {}
        }
        for item in items {
            match item {
                Value::Array(inner) => {
                    if self.leaf_depth.is_some_and(|d| d <= depth) {
                        return Err(InputProblem::RaggedList { depth: depth + 1 });
                    }
                    self.walk(inner, depth + 1, datatype, out)?;
                }
                leaf => {
                    match self.leaf_depth {
                        None => self.leaf_depth = Some(depth),
                        Some(d) if d != depth => {
                            return Err(InputProblem::RaggedValues {
                                depth: d,
                                other: depth,
                            })
                        }
                        Some(_) => {}
                    }
                    push_element(leaf, datatype, out)?;
                }
            }
        }
        Ok(())
    }
}

/// Appends one JSON element as a value of `datatype`.
fn push_element(value: Value, datatype: Datatype, out: &mut Values) -> Result<(), InputProblem> {
    let index = out.len();
    let leaf = match &value {
        Value::Bool(b) => Leaf::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Leaf::Unsigned(u),
            (None, Some(i)) => Leaf::integer(i),
            (None, None) => Leaf::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Leaf::Text(Cow::Borrowed(s.as_str())),
        _ => Leaf::Other,
    };
    match push_leaf(leaf, datatype, out) {
        Ok(()) => Ok(()),
        Err(Refused::Kind(expected)) => Err(InputProblem::WrongKind {
            index,
            value: json_excerpt(&value),
            expected,
            datatype,
        }),
        Err(Refused::Range(why)) => Err(InputProblem::OutOfRange { index, why }),
    }
}

/// One scalar of a tensor's `data`, as JSON gives it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Leaf<'a> {
    Bool(bool),
    /// A whole number of 0 or more.
    Unsigned(u64),
    /// A negative whole number.
    Negative(i64),
    /// A number with a point or an exponent.
    Float(f64),
    Text(Cow<'a, str>),
    /// `null`, or an object.
    Other,
}

impl Leaf<'_> {
    /// A whole number, kept as JSON's reader would (0 or more is unsigned).
    pub(super) fn integer(n: i64) -> Leaf<'static> {
        match u64::try_from(n) {
            Ok(u) => Leaf::Unsigned(u),
            Err(_) => Leaf::Negative(n),
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match *self {
            Leaf::Unsigned(u) => i64::try_from(u).ok(),
            Leaf::Negative(n) => Some(n),
            _ => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match *self {
            Leaf::Unsigned(u) => Some(u as f64),
            Leaf::Negative(n) => Some(n as f64),
            Leaf::Float(x) => Some(x),
            _ => None,
        }
    }
}

/// Why an element does not fit its datatype: the kind it should have been,
/// or the value out of the type's range.
pub(super) enum Refused {
    Kind(&'static str),
    Range(String),
}

/// Appends one scalar as a value of `datatype`, checking its kind and range.
pub(super) fn push_leaf(leaf: Leaf<'_>, datatype: Datatype, out: &mut Values) -> Result<(), Refused> {
    match (out, datatype.kind()) {
        (Values::Bool(v), Kind::Bool) => match leaf {
            Leaf::Bool(b) => v.push(b),
            _ => return Err(Refused::Kind("true or false")),
        },
        (Values::Signed(v), Kind::Signed) => {
            let (min, max) = datatype.signed_range();
            match leaf.as_i64() {
                Some(n) if (min..=max).contains(&n) => v.push(n),
                Some(n) => return Err(Refused::Range(format!("{n}, out of the range of {datatype}"))),
                None => return Err(Refused::Kind("an integer")),
            }
        }
        (Values::Unsigned(v), Kind::Unsigned) => match leaf {
            Leaf::Unsigned(n) if n <= datatype.unsigned_max() => v.push(n),
            Leaf::Unsigned(n) => return Err(Refused::Range(format!("{n}, out of the range of {datatype}"))),
            _ => return Err(Refused::Kind("an integer of 0 or more")),
        },
        (Values::Float(v), Kind::Float) => match leaf.as_f64() {
            Some(x) => v.push(check_float(datatype, x).map_err(|e| Refused::Range(e.to_string()))?),
            None => return Err(Refused::Kind("a number")),
        },
        (Values::Bytes(v), Kind::Bytes) => match leaf {
            Leaf::Text(s) => v.push(s.into_owned().into_bytes()),
            _ => return Err(Refused::Kind("a string")),
        },
        _ => unreachable!("the storage is made for the datatype"),
    }
    Ok(())
}

/// An input's `parameters.binary_data_size`: `Some(None)` when not given,
/// `None` when it is not a whole number of bytes.
pub(super) fn binary_data_size(parameters: Option<&Map<String, Value>>) -> Option<Option<usize>> {
    match parameters.and_then(|p| p.get("binary_data_size")) {
        None => Some(None),
        Some(v) => v.as_u64().and_then(|n| usize::try_from(n).ok()).map(Some),
    }
}

/// A JSON value for an error message: bounded and escaped.
fn json_excerpt(value: &Value) -> String {
    let text = value.to_string();
    excerpt(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::error::BinaryError;
    use super::*;
    use serde_json::json;

    fn request(value: Value) -> Result<InferRequest, OipError> {
        parse_request(value.to_string().as_bytes(), None)
    }

    fn one_input(datatype: &str, shape: Value, data: Value) -> Result<Tensor, OipError> {
        request(json!({"inputs": [{"name": "x", "datatype": datatype, "shape": shape, "data": data}]}))
            .map(|r| r.inputs.into_iter().next().unwrap())
    }

    #[test]
    fn reads_id_parameters_inputs_and_outputs() {
        let r = request(json!({
            "id": "42",
            "parameters": {"binary_data_output": true},
            "inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1.5, 2]}],
            "outputs": [{"name": "score", "parameters": {"binary_data": false}}, {"name": "label"}]
        }))
        .unwrap();
        assert_eq!(r.id.as_deref(), Some("42"));
        assert_eq!(r.inputs[0].values, Values::Float(vec![1.5, 2.0]));
        assert!(!r.wants_binary("score"));
        assert!(r.wants_binary("label"));
        assert!(r.wants_binary("other"));
    }

    #[test]
    fn every_datatype_from_json() {
        let cases = [
            ("BOOL", json!([true, false]), Values::Bool(vec![true, false])),
            ("UINT8", json!([0, 255]), Values::Unsigned(vec![0, 255])),
            ("UINT16", json!([0, 65535]), Values::Unsigned(vec![0, 65535])),
            (
                "UINT32",
                json!([0, 4294967295u64]),
                Values::Unsigned(vec![0, 4294967295]),
            ),
            (
                "UINT64",
                json!([0, u64::MAX]),
                Values::Unsigned(vec![0, u64::MAX]),
            ),
            ("INT8", json!([-128, 127]), Values::Signed(vec![-128, 127])),
            (
                "INT16",
                json!([-32768, 32767]),
                Values::Signed(vec![-32768, 32767]),
            ),
            (
                "INT32",
                json!([i32::MIN, i32::MAX]),
                Values::Signed(vec![i32::MIN as i64, i32::MAX as i64]),
            ),
            (
                "INT64",
                json!([i64::MIN, i64::MAX]),
                Values::Signed(vec![i64::MIN, i64::MAX]),
            ),
            ("FP16", json!([0.5, -2]), Values::Float(vec![0.5, -2.0])),
            ("FP32", json!([0.455, 1e30]), Values::Float(vec![0.455, 1e30])),
            ("FP64", json!([0.1, 1e300]), Values::Float(vec![0.1, 1e300])),
            (
                "BYTES",
                json!(["M", ""]),
                Values::Bytes(vec![b"M".to_vec(), Vec::new()]),
            ),
        ];
        for (datatype, data, expected) in cases {
            let t = one_input(datatype, json!([2]), data).unwrap_or_else(|e| panic!("{datatype}: {e}"));
            assert_eq!(t.values, expected, "{datatype}");
            assert_eq!(t.datatype.name(), datatype);
        }
    }

    #[test]
    fn out_of_range_and_wrong_kinds_are_named() {
        for (datatype, data, needle) in [
            (
                "UINT8",
                json!([256]),
                "element 0 is 256, out of the range of UINT8",
            ),
            (
                "INT8",
                json!([1, -129]),
                "element 1 is -129, out of the range of INT8",
            ),
            (
                "UINT32",
                json!([-1]),
                "element 0 is -1, not an integer of 0 or more (UINT32)",
            ),
            ("INT32", json!([1.5]), "element 0 is 1.5, not an integer (INT32)"),
            ("FP32", json!([1e39]), "out of the range of FP32"),
            ("FP16", json!([1e5]), "out of the range of FP16"),
            (
                "FP64",
                json!(["x"]),
                "element 0 is \\\"x\\\", not a number (FP64)",
            ),
            ("BOOL", json!([1]), "element 0 is 1, not true or false (BOOL)"),
            ("BYTES", json!([1]), "element 0 is 1, not a string (BYTES)"),
        ] {
            let e = one_input(datatype, json!([1]), data).unwrap_err().to_string();
            assert!(e.starts_with("input \"x\": "), "{e}");
            assert!(e.contains(needle), "{datatype}: {e}");
        }
    }

    #[test]
    fn nested_and_flat_data() {
        let nested = one_input("INT32", json!([2, 3]), json!([[1, 2, 3], [4, 5, 6]])).unwrap();
        let flat = one_input("INT32", json!([2, 3]), json!([1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(nested, flat);
        let e = one_input("INT32", json!([3, 2]), json!([[1, 2, 3], [4, 5, 6]]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nested as [2, 3] but the shape is [3, 2]"), "{e}");
        let e = one_input("INT32", json!([2, 3]), json!([1, 2, 3]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("shape [2, 3] calls for 6 elements but \"data\" holds 3"),
            "{e}"
        );
        let e = one_input("INT32", json!([2, 2]), json!([[1, 2], [3]]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ragged"), "{e}");
        let e = one_input("INT32", json!([2, 2]), json!([[1, 2], 3, 4]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ragged"), "{e}");
    }

    #[test]
    fn a_previous_response_is_a_request() {
        let r = request(json!({"model_name": "featurizer", "id": "7", "outputs": [
            {"name": "features", "datatype": "FP64", "shape": [1, 2], "data": [0.5, 1.0]}
        ]}))
        .unwrap();
        assert_eq!(r.id.as_deref(), Some("7"));
        assert_eq!(r.inputs[0].name, "features");
        assert!(r.outputs.is_empty());
        // Requested outputs are not tensors.
        let e = request(json!({"outputs": [{"name": "score"}]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs \"inputs\""), "{e}");
    }

    #[test]
    fn malformed_requests() {
        for (body, needle) in [
            (json!([1]), "must be a JSON object"),
            (json!({}), "needs \"inputs\""),
            (json!({"inputs": []}), "\"inputs\" is empty"),
            (json!({"id": 1, "inputs": []}), "\"id\": must be a string"),
            (
                json!({"parameters": [1], "inputs": []}),
                "\"parameters\": must be an object, got [1]",
            ),
            (
                json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1], "parameters": 2}]}),
                "input \"x\": \"parameters\": must be an object, got 2",
            ),
            (
                json!({"inputs": [{"name": "x", "shape": [1], "data": [1]}]}),
                "input \"x\" needs a \"datatype\"",
            ),
            (
                json!({"inputs": [{"name": "x", "datatype": "FLOAT", "shape": [1], "data": [1]}]}),
                "unknown datatype \"FLOAT\"",
            ),
            (
                json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1], "data": [1]}]}),
                "must list sizes of 0 or more",
            ),
            (
                json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}),
                "input \"x\" has no \"data\"",
            ),
            (json!({"inputs": [{"shape": [1]}]}), "inputs[0] needs a \"name\""),
            (
                json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]},
                               {"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}),
                "given twice",
            ),
            (
                json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}], "outputs": [{}]}),
                "outputs[0] needs a \"name\"",
            ),
        ] {
            let e = request(body.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{body}: {e}");
        }
        assert!(parse_request(b"{", None)
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
    }

    #[test]
    fn binary_data_of_the_wrong_size_names_the_input() {
        let header = json!({"inputs": [
            {"name": "a", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 4}}
        ]})
        .to_string();
        let mut body = header.clone().into_bytes();
        body.extend_from_slice(&1.5f32.to_le_bytes());
        let e = parse_request(&body, Some(header.len())).unwrap_err();
        let OipError::Input { name, problem } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(name, "a");
        assert_eq!(
            problem,
            &InputProblem::Binary(BinaryError::SizeMismatch {
                size: 4,
                count: 2,
                datatype: Datatype::Fp32,
                expected: 8
            })
        );
        assert_eq!(
            e.to_string(),
            "input \"a\": \"binary_data_size\" is 4 bytes but 2 elements of FP32 take 8"
        );
        let e = parse_request(b"{", None).unwrap_err();
        assert!(matches!(e, OipError::NotJson(_)), "{e}");
    }

    #[test]
    fn hostile_names_are_quoted_and_bounded() {
        let name = format!("a\nb{}", "x".repeat(10_000));
        let e = request(json!({"inputs": [{"name": name, "datatype": "FP32", "shape": [1], "data": ["z"]}]}))
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.len() < 1000, "{}", e.len());
    }

    #[test]
    fn binary_inputs_follow_the_json() {
        let header = json!({"inputs": [
            {"name": "a", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}},
            {"name": "b", "datatype": "FP64", "shape": [1, 1], "data": [[0.25]]},
            {"name": "c", "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": 8}}
        ]})
        .to_string();
        let mut body = header.clone().into_bytes();
        body.extend_from_slice(&1.5f32.to_le_bytes());
        body.extend_from_slice(&(-2.0f32).to_le_bytes());
        body.extend_from_slice(&0.1f64.to_le_bytes());
        let r = parse_request(&body, Some(header.len())).unwrap();
        assert_eq!(r.inputs[0].values, Values::Float(vec![1.5, -2.0]));
        assert_eq!(r.inputs[1].values, Values::Float(vec![0.25]));
        assert_eq!(r.inputs[2].values, Values::Float(vec![0.1]));
        // One byte short, one byte over, a header past the body.
        let e = parse_request(&body[..body.len() - 1], Some(header.len())).unwrap_err();
        assert!(
            matches!(
                &e,
                OipError::Input { name, problem: InputProblem::BinaryPastBody { size: 8, left: 7 } } if name == "c"
            ),
            "{e}"
        );
        let e = e.to_string();
        assert!(
            e.contains("input \"c\": \"binary_data_size\" is 8 bytes but only 7"),
            "{e}"
        );
        let mut over = body.clone();
        over.push(0);
        assert!(parse_request(&over, Some(header.len()))
            .unwrap_err()
            .to_string()
            .contains("1 bytes of binary data"));
        assert!(parse_request(&body, Some(body.len() + 1))
            .unwrap_err()
            .to_string()
            .contains("the body has only"));
    }
}
