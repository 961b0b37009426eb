//! Reading SageMaker API request documents (CreateTrainingJob, CreateModel,
//! CreateTransformJob) as JSON, with errors that name the field and say what
//! the API expects.

use std::collections::BTreeMap;

use anyhow::bail;
use serde_json::{Map, Value};

/// An optional string field.
pub fn opt_str(obj: &Map<String, Value>, key: &str, at: &str) -> anyhow::Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => bail!("{at}: {key} must be a string, got {other}"),
    }
}

/// An optional object field.
pub fn opt_object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> anyhow::Result<Option<&'a Map<String, Value>>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => bail!("{at}: {key} must be an object, got {other}"),
    }
}

/// A string → string map such as `HyperParameters`; other value types are refused as the API
/// refuses them, with the fix spelled out.
pub fn string_map(obj: &Map<String, Value>, key: &str, at: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(map) = opt_object(obj, key, at)? else {
        return Ok(BTreeMap::new());
    };
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => bail!(
                "{at}: {key}['{k}'] must be a string, as in the SageMaker API; write \"{}\"",
                other.to_string().replace('"', "\\\"")
            ),
        })
        .collect()
}
