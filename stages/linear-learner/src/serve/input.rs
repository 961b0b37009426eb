//! Request decoding: `text/csv`, `application/json`, `application/jsonlines`
//! and `application/x-recordio-protobuf` into a dense batch of records, each
//! checked against the model's `feature_dim` (a wrong count is a 400 naming
//! the record).

use modelstage_sdk::codecs::csv::{plain_lines, split_fields};
use modelstage_sdk::StageError;
use prost::Message;
use serde_json::Value;

use crate::proto::{sparse_to_dense, Record};
use crate::recordio::split_records;

/// The Content-Types a request may have.
pub const CONTENT_TYPES: [&str; 4] = [
    "text/csv",
    "application/json",
    "application/jsonlines",
    "application/x-recordio-protobuf",
];

/// Records as one row-major matrix of `rows × feature_dim` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub rows: usize,
    pub x: Vec<f64>,
}

/// Decodes `body` of media type `media` (parameters already removed).
pub fn decode(body: &[u8], media: &str, dim: usize) -> Result<Batch, StageError> {
    let mut batch = Batch {
        rows: 0,
        x: Vec::new(),
    };
    if media.eq_ignore_ascii_case("text/csv") {
        csv(body, dim, &mut batch)?;
    } else if media.eq_ignore_ascii_case("application/json") {
        json(body, dim, &mut batch)?;
    } else if media.eq_ignore_ascii_case("application/jsonlines")
        || media.eq_ignore_ascii_case("application/x-jsonlines")
    {
        jsonlines(body, dim, &mut batch)?;
    } else if media.eq_ignore_ascii_case("application/x-recordio-protobuf") {
        recordio(body, dim, &mut batch)?;
    } else {
        return Err(StageError::unsupported_content_type(media, &CONTENT_TYPES));
    }
    if batch.rows == 0 {
        return Err(StageError::bad_request(format!(
            "the {media} request holds no records"
        )));
    }
    if let Some(i) = batch.x.iter().position(|v| !v.is_finite()) {
        let record = i / dim.max(1);
        return Err(StageError::bad_request(format!(
            "record {record}, feature {}: {} is not a finite number",
            i % dim.max(1),
            batch.x[i]
        ))
        .at_record(record));
    }
    Ok(batch)
}

fn wrong_count(record: usize, got: usize, dim: usize) -> StageError {
    StageError::bad_request(format!(
        "record {record} has {got} features, but the model expects feature_dim = {dim}"
    ))
    .at_record(record)
}

fn csv(body: &[u8], dim: usize, batch: &mut Batch) -> Result<(), StageError> {
    batch.x.reserve(dim * (body.len() / (dim * 4).max(1) + 1));
    let mut fields = Vec::with_capacity(dim + 1);
    for (_, line) in plain_lines(body) {
        let record = batch.rows;
        split_fields(line, &mut fields);
        for (column, field) in fields.iter().enumerate() {
            let v = modelstage_sdk::number::parse_f64(field).ok_or_else(|| {
                StageError::bad_request(format!(
                    "record {record}, column {}: '{}' is not a number",
                    column + 1,
                    String::from_utf8_lossy(field)
                ))
                .at_record(record)
            })?;
            batch.x.push(v);
        }
        if fields.len() != dim {
            return Err(wrong_count(record, fields.len(), dim));
        }
        batch.rows += 1;
    }
    Ok(())
}

fn json(body: &[u8], dim: usize, batch: &mut Batch) -> Result<(), StageError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| StageError::bad_request(format!("the application/json body is not valid JSON: {e}")))?;
    match &value {
        Value::Object(obj) if obj.contains_key("instances") => {
            let instances = obj["instances"].as_array().ok_or_else(|| {
                StageError::bad_request("\"instances\" must be a list of {\"features\": [...]} objects")
            })?;
            batch.x.reserve(instances.len() * dim);
            for instance in instances {
                instance_features(instance, batch.rows, dim, &mut batch.x)?;
                batch.rows += 1;
            }
            Ok(())
        }
        // A single instance without the "instances" wrapper.
        Value::Object(obj) if obj.contains_key("features") || obj.contains_key("data") => {
            instance_features(&value, 0, dim, &mut batch.x)?;
            batch.rows = 1;
            Ok(())
        }
        _ => Err(StageError::bad_request(
            "the application/json body must be {\"instances\": [{\"features\": [...]}, ...]}",
        )),
    }
}

fn jsonlines(body: &[u8], dim: usize, batch: &mut Batch) -> Result<(), StageError> {
    for line in body.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = batch.rows;
        let value: Value = serde_json::from_slice(line).map_err(|e| {
            StageError::bad_request(format!("record {record}: the line is not valid JSON: {e}"))
                .at_record(record)
        })?;
        instance_features(&value, record, dim, &mut batch.x)?;
        batch.rows += 1;
    }
    Ok(())
}

/// Appends the features of one instance: `{"features": [...]}` or
/// `{"data": {"features": {"values": [...], "keys": [...], "shape": [n]}}}`.
fn instance_features(
    instance: &Value,
    record: usize,
    dim: usize,
    out: &mut Vec<f64>,
) -> Result<(), StageError> {
    let bad = |what: &str| StageError::bad_request(format!("record {record}: {what}")).at_record(record);
    let numbers = |v: &Value, what: &str| -> Result<Vec<f64>, StageError> {
        let items = v
            .as_array()
            .ok_or_else(|| bad(&format!("\"{what}\" must be a list of numbers")))?;
        items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_f64()
                    .ok_or_else(|| bad(&format!("\"{what}\"[{i}] is {x}, not a number")))
            })
            .collect()
    };
    let tensor = if let Some(features) = instance.get("features") {
        features
    } else if let Some(features) = instance.get("data").and_then(|d| d.get("features")) {
        features
    } else {
        return Err(bad(
            "expected {\"features\": [...]} or {\"data\": {\"features\": {\"values\": [...]}}}",
        ));
    };
    let dense = match tensor {
        Value::Array(_) => numbers(tensor, "features")?,
        Value::Object(t) => {
            let values = numbers(
                t.get("values")
                    .ok_or_else(|| bad("\"features\" has no \"values\""))?,
                "values",
            )?;
            match t.get("keys") {
                None => values,
                Some(keys) => {
                    let keys = as_u64s(keys)
                        .ok_or_else(|| bad("\"keys\" must be a list of non-negative integers"))?;
                    let shape = match t.get("shape") {
                        None => Vec::new(),
                        Some(s) => as_u64s(s).ok_or_else(|| bad("\"shape\" must be a list of integers"))?,
                    };
                    sparse_to_dense(&values, &keys, &shape, Some(dim), "features").map_err(|e| bad(&e))?
                }
            }
        }
        _ => {
            return Err(bad(
                "\"features\" must be a list of numbers or a {\"values\": [...]} object",
            ))
        }
    };
    if dense.len() != dim {
        return Err(wrong_count(record, dense.len(), dim));
    }
    out.extend_from_slice(&dense);
    Ok(())
}

fn as_u64s(v: &Value) -> Option<Vec<u64>> {
    v.as_array()?.iter().map(Value::as_u64).collect()
}

fn recordio(body: &[u8], dim: usize, batch: &mut Batch) -> Result<(), StageError> {
    let payloads = split_records(body).map_err(StageError::bad_request)?;
    for (record, payload) in payloads.iter().enumerate() {
        let bad =
            |what: String| StageError::bad_request(format!("record {record}: {what}")).at_record(record);
        let rec =
            Record::decode(payload.as_slice()).map_err(|e| bad(format!("not an aialgs.data.Record: {e}")))?;
        let values = rec
            .features
            .get("values")
            .ok_or_else(|| bad("the record has no features[\"values\"]".into()))?;
        let dense = values.to_dense(Some(dim), "features[\"values\"]").map_err(bad)?;
        if dense.len() != dim {
            return Err(wrong_count(record, dense.len(), dim));
        }
        batch.x.extend_from_slice(&dense);
        batch.rows += 1;
    }
    Ok(())
}
