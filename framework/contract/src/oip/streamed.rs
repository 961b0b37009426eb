//! The usual inference request read straight into tensors: serde walks the
//! JSON once and the `data` elements land in their typed storage, with no
//! `serde_json::Value` tree, whose many small allocations were the largest
//! cost of reading a request.
//!
//! It takes only requests that are whole and right: a request with
//! `"inputs"` whose every field has the type the protocol gives it. It
//! answers `None` for anything else (a previous step's response, a
//! duplicate key, any field of the wrong type, any element out of range, a
//! ragged `data`), and the tree reader in `request` reads that request
//! again and words the error. So the two readers agree by construction on
//! every request this one takes, and every message comes from one place.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::binary;
use super::datatype::Datatype;
use super::request::{binary_data_size, push_leaf, InferRequest, Leaf, RequestedOutput};
use super::tensor::{Tensor, Values};
use super::{elements, MAX_DIMS};

/// Reads `json` (and the binary data in `rest`), or `None` when the tree
/// reader must (see the module's header).
pub(super) fn parse(json: &[u8], mut rest: &[u8]) -> Option<InferRequest> {
    let ObjectOnly(request) = serde_json::from_slice::<ObjectOnly<Request<'_>>>(json).ok()?;
    if request.inputs.is_empty() {
        return None;
    }
    let mut inputs: Vec<Tensor> = Vec::with_capacity(request.inputs.len());
    for ObjectOnly(raw) in request.inputs {
        let input = raw.into_tensor(&mut rest)?;
        if inputs.iter().any(|t| t.name == input.name) {
            return None;
        }
        inputs.push(input);
    }
    if !rest.is_empty() {
        return None;
    }
    let mut outputs = Vec::new();
    for ObjectOnly(raw) in request.outputs.unwrap_or_default() {
        let binary_data = match raw.parameters {
            None => None,
            Some(p) => p.get("binary_data").and_then(Value::as_bool),
        };
        outputs.push(RequestedOutput {
            name: raw.name,
            binary_data,
        });
    }
    Some(InferRequest {
        id: request.id,
        parameters: request.parameters,
        inputs,
        outputs,
    })
}

/// A JSON object read as `T`: serde's derived structs also take a list of
/// the fields' values, which the protocol does not allow.
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Objects<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Objects<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(ObjectOnly)
            }
        }
        deserializer.deserialize_map(Objects(PhantomData))
    }
}

#[derive(Deserialize)]
struct Request<'a> {
    // A present field must have its type: `null` is not "absent" for these.
    #[serde(default, deserialize_with = "present")]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(borrow)]
    inputs: Vec<ObjectOnly<Input<'a>>>,
    #[serde(default)]
    outputs: Option<Vec<ObjectOnly<Output>>>,
}

#[derive(Deserialize)]
struct Output {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct Input<'a> {
    name: String,
    #[serde(borrow)]
    datatype: Cow<'a, str>,
    shape: Vec<u64>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default, borrow, deserialize_with = "present")]
    data: Option<Data<'a>>,
}

/// A field that, when present, must read as `T` (no `null`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl Input<'_> {
    /// The tensor, with the checks of the tree reader's `parse_input`.
    fn into_tensor(self, rest: &mut &[u8]) -> Option<Tensor> {
        let datatype = Datatype::parse(&self.datatype)?;
        if self.shape.len() > MAX_DIMS {
            return None;
        }
        let shape = self
            .shape
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<Vec<usize>>>()?;
        let count = elements(&shape).filter(|&n| n <= isize::MAX as usize)?;
        let binary_size = binary_data_size(self.parameters.as_ref())?;
        let values = match (binary_size, self.data) {
            (None, Some(data)) => data.into_values(datatype, &shape, count)?,
            (Some(size), None) if size <= rest.len() => {
                let (mine, others) = rest.split_at(size);
                *rest = others;
                binary::decode(mine, datatype, count).ok()?
            }
            _ => return None,
        };
        Some(Tensor {
            name: self.name,
            datatype,
            shape,
            values,
        })
    }
}

/// `data` as read: its scalars in order, and how its lists nest.
#[derive(Default)]
struct Data<'a> {
    leaves: Vec<Leaf<'a>>,
    /// The length of the lists at each depth (`None` until one ends).
    lengths: Vec<Option<usize>>,
    leaf_depth: Option<usize>,
}

impl<'a> Data<'a> {
    /// The values, if `data` holds exactly the elements of `shape`, flat or
    /// nested as it, each fitting `datatype`.
    fn into_values(self, datatype: Datatype, shape: &[usize], count: usize) -> Option<Values> {
        if self.leaves.len() != count {
            return None;
        }
        let flat = self.lengths.len() <= 1;
        if !flat
            && !self
                .lengths
                .iter()
                .map(|l| l.unwrap_or(0))
                .eq(shape.iter().copied())
        {
            return None;
        }
        let mut values = Values::for_datatype(datatype, count);
        for leaf in self.leaves {
            push_leaf(leaf, datatype, &mut values).ok()?;
        }
        Some(values)
    }

    fn leaf(&mut self, leaf: Leaf<'a>, depth: usize) -> Result<(), Ragged> {
        match self.leaf_depth {
            None => self.leaf_depth = Some(depth),
            Some(d) if d != depth => return Err(Ragged),
            Some(_) => {}
        }
        self.leaves.push(leaf);
        Ok(())
    }
}

/// A `data` the tree reader refuses: its message is worded there.
struct Ragged;

impl<'de: 'a, 'a> Deserialize<'de> for Data<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut data = Data::default();
        // `data` itself: a list at depth 0, or a scalar taken as at depth 0.
        let top = Element {
            data: &mut data,
            list_depth: 0,
            leaf_depth: 0,
        };
        top.deserialize(deserializer)?;
        Ok(data)
    }
}

/// One element of `data`: the depth it has if it is a list, and if it is
/// a value (the depth of the list that holds it, as the tree reader counts).
struct Element<'d, 'a> {
    data: &'d mut Data<'a>,
    list_depth: usize,
    leaf_depth: usize,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Element<'_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'a> Element<'_, 'a> {
    fn scalar<E: de::Error>(self, leaf: Leaf<'a>) -> Result<(), E> {
        self.data
            .leaf(leaf, self.leaf_depth)
            .map_err(|Ragged| E::custom("ragged"))
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Element<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tensor's data")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(Leaf::Bool(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(Leaf::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(Leaf::integer(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.scalar(Leaf::Float(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.scalar(Leaf::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar(Leaf::Text(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.scalar(Leaf::Text(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.list_depth;
        let data = self.data;
        // A list beside values, or too deep: the tree reader's checks on
        // entering a list.
        if depth >= MAX_DIMS || data.leaf_depth.is_some_and(|d| d < depth) {
            return Err(de::Error::custom("ragged"));
        }
        if data.lengths.len() <= depth {
            data.lengths.resize(depth + 1, None);
        }
        let mut items = 0;
        while seq
            .next_element_seed(Element {
                data: &mut *data,
                list_depth: depth + 1,
                leaf_depth: depth,
            })?
            .is_some()
        {
            items += 1;
        }
        // Every list at one depth as long as the first one.
        match data.lengths[depth] {
            None => data.lengths[depth] = Some(items),
            Some(n) if n != items => return Err(de::Error::custom("ragged")),
            Some(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::request::parse_tree;
    use super::*;

    /// What this reader takes, it reads as the tree reader does.
    fn agrees(body: &Value) -> bool {
        let text = body.to_string();
        let streamed = parse(text.as_bytes(), &[]);
        if let Some(request) = &streamed {
            let tree = parse_tree(text.as_bytes(), &[]).map_err(|e| e.to_string());
            assert_eq!(Ok(request), tree.as_ref(), "{body}");
        }
        streamed.is_some()
    }

    fn input(datatype: &str, shape: Value, data: Value) -> Value {
        json!({"inputs": [{"name": "x", "datatype": datatype, "shape": shape, "data": data}]})
    }

    #[test]
    fn takes_the_usual_requests_as_the_tree_reader_does() {
        for body in [
            json!({"id": "7", "parameters": {"binary_data_output": true}, "model_name": "m", "inputs": [
                {"name": "sex", "datatype": "BYTES", "shape": [1, 1], "data": ["M"]},
                {"name": "m", "datatype": "FP64", "shape": [1, 7],
                 "data": [0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155]}],
                "outputs": [{"name": "a", "parameters": {"binary_data": false}}, {"name": "b"}]}),
            input("INT32", json!([2, 3]), json!([[1, 2, 3], [4, 5, 6]])),
            input("INT64", json!([2]), json!([i64::MIN, i64::MAX])),
            input("UINT64", json!([1]), json!([u64::MAX])),
            input("FP16", json!([2]), json!([0.5, -2])),
            input("FP32", json!([1, 2]), json!([[1e30, -0.0]])),
            input("BOOL", json!([2, 1]), json!([[true], [false]])),
            input("BYTES", json!([2]), json!(["a\"b\n", ""])),
            input("FP64", json!([]), json!(1.5)),
            input("FP64", json!([0, 3]), json!([])),
            json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1], "parameters": null}],
                   "outputs": null, "parameters": null}),
        ] {
            assert!(agrees(&body), "not taken: {body}");
        }
    }

    #[test]
    fn leaves_every_error_and_oddity_to_the_tree_reader() {
        for body in [
            json!([1]),
            json!({}),
            json!({"inputs": []}),
            json!({"id": 1, "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}),
            json!({"id": null, "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}),
            json!({"inputs": [["x", "FP32", [1], [1]]]}),
            json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}], "outputs": [["a"]]}),
            json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": null}]}),
            json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}),
            json!({"outputs": [{"name": "f", "datatype": "FP64", "shape": [1], "data": [0.5]}]}),
            json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]},
                              {"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}),
            input("FLOAT", json!([1]), json!([1])),
            input("FP32", json!([-1]), json!([1])),
            input("FP32", json!([1.0]), json!([1])),
            input("FP32", json!([2, 2]), json!([[1, 2], [3]])),
            input("FP32", json!([2, 2]), json!([[1, 2], 3, 4])),
            input("FP32", json!([2]), json!([1, [2]])),
            input("FP32", json!([3, 2]), json!([[1, 2, 3], [4, 5, 6]])),
            input("FP32", json!([2, 3]), json!([1, 2, 3])),
            input("FP32", json!([1]), json!([1e39])),
            input("UINT8", json!([1]), json!([256])),
            input("UINT32", json!([1]), json!([-1])),
            input("INT8", json!([1]), json!([-129])),
            input("INT64", json!([1]), json!([u64::MAX])),
            input("INT32", json!([1]), json!([1.5])),
            input("BOOL", json!([1]), json!([1])),
            input("BYTES", json!([1]), json!([1])),
            input("FP64", json!([1]), json!(["x"])),
            input("FP64", json!([1]), json!([null])),
            input("FP64", json!([1]), json!([{}])),
            json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1],
                               "parameters": {"binary_data_size": 4}}]}),
        ] {
            assert!(!agrees(&body), "taken: {body}");
        }
        // A duplicate key, which a tree keeps the last of.
        let text =
            br#"{"inputs": [], "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}"#;
        assert!(parse(text, &[]).is_none());
    }

    #[test]
    fn binary_data_is_taken_from_the_rest() {
        let header = json!({"inputs": [
            {"name": "a", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}},
            {"name": "b", "datatype": "FP64", "shape": [1], "data": [0.25]}
        ]})
        .to_string();
        let mut rest = 1.5f32.to_le_bytes().to_vec();
        rest.extend_from_slice(&(-2.0f32).to_le_bytes());
        let request = parse(header.as_bytes(), &rest).unwrap();
        assert_eq!(request, parse_tree(header.as_bytes(), &rest).unwrap());
        assert_eq!(request.inputs[0].values, Values::Float(vec![1.5, -2.0]));
        assert!(parse(header.as_bytes(), &rest[..7]).is_none());
        rest.push(0);
        assert!(parse(header.as_bytes(), &rest).is_none());
    }
}
