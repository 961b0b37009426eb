//! Request decoding: `text/csv`, `application/json`, `application/jsonlines`
//! and `application/x-recordio-protobuf` into a batch of records, each
//! checked against the model's `feature_dim` (a wrong count, a sparse shape
//! other than `[feature_dim]`, a key outside it or a value that is not finite
//! is a 400 naming the record).

use modelstage_sdk::codecs::csv::{plain_lines, split_fields};
use modelstage_sdk::codecs::number_cache::NumberCache;
use modelstage_sdk::number::parse_f64;
use modelstage_sdk::{excerpt, StageError};
use prost::Message;
use serde_json::Value;

use crate::proto::{sparse_len, Parts, Record};
use crate::recordio::split_records;

/// The Content-Types a request may have.
pub const CONTENT_TYPES: [&str; 4] = [
    "text/csv",
    "application/json",
    "application/jsonlines",
    "application/x-recordio-protobuf",
];

/// Where one record's features are in a [`Batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    /// `feature_dim` values in `dense` from this index.
    Dense(usize),
    /// Pairs `start..end` of `keys` / `values`.
    Sparse(usize, usize),
}

/// One record's features, as [`Batch::rows`] gives them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Features<'a> {
    /// All `feature_dim` values.
    Dense(&'a [f64]),
    /// Keys (ascending, each below `feature_dim`, no repeats) and their values;
    /// every other feature is 0.
    Sparse(&'a [usize], &'a [f64]),
}

/// The records of a request. Sparse records stay sparse: a record of
/// `feature_dim` = 10^6 with three keys costs three pairs, not a megabyte, so
/// what a request makes the worker hold grows with its body, not with the
/// model's dimension.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    rows: usize,
    dense: Vec<f64>,
    keys: Vec<usize>,
    values: Vec<f64>,
    /// Where each record is, once a sparse one has arrived; empty while every
    /// record is dense (record `i` is then `dense[i * dim..]`), so the
    /// common request does not pay for it.
    index: Vec<Row>,
}

impl Batch {
    /// The number of records.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The records in order.
    pub fn rows(&self, dim: usize) -> impl ExactSizeIterator<Item = Features<'_>> + '_ {
        (0..self.rows).map(move |i| {
            let row = self.index.get(i).copied().unwrap_or(Row::Dense(i * dim));
            match row {
                Row::Dense(at) => Features::Dense(&self.dense[at..at + dim]),
                Row::Sparse(start, end) => Features::Sparse(&self.keys[start..end], &self.values[start..end]),
            }
        })
    }

    /// Counts a record that is at `row` (the index is kept once a sparse
    /// record has arrived).
    fn add_row(&mut self, row: Row, dim: usize) {
        let sparse = matches!(row, Row::Sparse(..));
        if sparse && self.index.is_empty() {
            self.index.extend((0..self.rows).map(|i| Row::Dense(i * dim)));
        }
        if sparse || !self.index.is_empty() {
            self.index.push(row);
        }
        self.rows += 1;
    }

    /// The number of dense values held.
    pub(super) fn dense_len(&self) -> usize {
        self.dense.len()
    }

    /// Makes room for `values` more dense values, bounded by what the body
    /// can hold (the caller derives it from the body's length).
    pub(super) fn reserve_dense(&mut self, values: usize) {
        self.dense.reserve(values);
    }

    /// Pushes one value of the dense record being parsed (ended by [`Batch::end_dense`]).
    pub(super) fn push_value(&mut self, value: f64) {
        self.dense.push(value);
    }

    /// Appends a dense record, refusing a wrong count or a value that is not finite.
    fn push_dense(&mut self, features: &[f64], dim: usize) -> Result<(), StageError> {
        let record = self.len();
        if features.len() != dim {
            return Err(wrong_count(record, features.len(), dim));
        }
        check_finite(record, features.iter().copied().enumerate())?;
        self.add_row(Row::Dense(self.dense.len()), dim);
        self.dense.extend_from_slice(features);
        Ok(())
    }

    /// Appends the record whose values were just pushed onto `dense` from
    /// `start` (the CSV path parses straight into the batch, and checks the
    /// values are finite once, at the end, with [`Batch::check_dense`]).
    pub(super) fn end_dense(&mut self, start: usize, dim: usize) -> Result<(), StageError> {
        let got = self.dense.len() - start;
        if got != dim {
            return Err(wrong_count(self.len(), got, dim));
        }
        self.add_row(Row::Dense(start), dim);
        Ok(())
    }

    /// Checks every value of a batch of dense records only is finite.
    fn check_dense(&self, dim: usize) -> Result<(), StageError> {
        match self.dense.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(i) => check_finite(i / dim.max(1), std::iter::once((i % dim.max(1), self.dense[i]))),
        }
    }

    /// Appends a sparse record: `keys` pair with `values`, each key below
    /// `dim`, and `shape`, when given, is `[dim]`. Everything is checked
    /// before anything the size of the shape could be allocated; a key given
    /// twice keeps its last value, as a dense copy would. The error names
    /// the tensor, not the record: the caller adds it.
    fn push_sparse(
        &mut self,
        values: &[f64],
        keys: &[u64],
        shape: &[u64],
        dim: usize,
        what: &str,
    ) -> Result<(), StageError> {
        sparse_len(values, keys, shape, Some(dim), what)?;
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(StageError::bad_request(format!(
                "{what}: the value of key {} is {v}, not a finite number",
                keys[i]
            )));
        }
        let start = self.keys.len();
        let mut pairs: Vec<(usize, f64)> = keys
            .iter()
            .zip(values)
            .map(|(&k, &v)| (k as usize, v)) // every key is below `dim`, a usize
            .collect();
        // Stable: pairs of one key keep their order, so the last is last.
        pairs.sort_by_key(|&(k, _)| k);
        for (i, &(k, v)) in pairs.iter().enumerate() {
            if pairs.get(i + 1).is_some_and(|&(next, _)| next == k) {
                continue;
            }
            self.keys.push(k);
            self.values.push(v);
        }
        self.add_row(Row::Sparse(start, self.keys.len()), dim);
        Ok(())
    }
}

fn check_finite(record: usize, mut values: impl Iterator<Item = (usize, f64)>) -> Result<(), StageError> {
    match values.find(|(_, v)| !v.is_finite()) {
        None => Ok(()),
        Some((feature, v)) => Err(StageError::bad_request(format!(
            "record {record}, feature {feature}: {v} is not a finite number"
        ))
        .at_record(record)),
    }
}

/// Decodes `body` of media type `media` (parameters already removed).
pub fn decode(body: &[u8], media: &str, dim: usize) -> Result<Batch, StageError> {
    let mut batch = Batch::default();
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
    if batch.is_empty() {
        return Err(StageError::bad_request(format!(
            "the {} request holds no records",
            excerpt(media.as_bytes())
        )));
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
    super::dense_json::with_numbers(|numbers| csv_with(body, dim, batch, numbers))
}

/// The CSV decoder, with numbers parsed once per distinct text (a
/// featurizer's features repeat).
fn csv_with(body: &[u8], dim: usize, batch: &mut Batch, numbers: &mut NumberCache) -> Result<(), StageError> {
    // A short number and its comma are about four bytes; the estimate is
    // bounded by the body, whatever the model's dimension.
    batch.dense.reserve(body.len() / 4 + dim.min(body.len()));
    let mut fields = Vec::with_capacity(dim.min(body.len()) + 1);
    for (_, line) in plain_lines(body) {
        let record = batch.len();
        split_fields(line, &mut fields);
        let start = batch.dense.len();
        for (column, field) in fields.iter().enumerate() {
            let v = numbers.get_or_parse(field, parse_f64).ok_or_else(|| {
                StageError::bad_request(format!(
                    "record {record}, column {}: '{}' is not a number",
                    column + 1,
                    excerpt(field)
                ))
                .at_record(record)
            })?;
            batch.dense.push(v);
        }
        batch.end_dense(start, dim)?;
    }
    batch.check_dense(dim)
}

fn json(body: &[u8], dim: usize, batch: &mut Batch) -> Result<(), StageError> {
    if super::dense_json::decode(body, dim, batch) {
        return batch.check_dense(dim);
    }
    // Not the common dense shape: decode again, on the path that takes every
    // shape and words the errors.
    *batch = Batch::default();
    json_general(body, dim, batch)
}

/// Every `application/json` shape the stage takes, through a `Value` tree.
fn json_general(body: &[u8], dim: usize, batch: &mut Batch) -> Result<(), StageError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| StageError::bad_request(format!("the application/json body is not valid JSON: {e}")))?;
    match &value {
        Value::Object(obj) if obj.contains_key("instances") => {
            let instances = obj["instances"].as_array().ok_or_else(|| {
                StageError::bad_request("\"instances\" must be a list of {\"features\": [...]} objects")
            })?;
            for instance in instances {
                instance_features(instance, dim, batch)?;
            }
            Ok(())
        }
        // A single instance without the "instances" wrapper.
        Value::Object(obj) if obj.contains_key("features") || obj.contains_key("data") => {
            instance_features(&value, dim, batch)
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
        let record = batch.len();
        let value: Value = serde_json::from_slice(line).map_err(|e| {
            StageError::bad_request(format!("record {record}: the line is not valid JSON: {e}"))
                .at_record(record)
        })?;
        instance_features(&value, dim, batch)?;
    }
    Ok(())
}

/// Appends one instance: `{"features": [...]}` or
/// `{"data": {"features": {"values": [...], "keys": [...], "shape": [n]}}}`.
fn instance_features(instance: &Value, dim: usize, batch: &mut Batch) -> Result<(), StageError> {
    let record = batch.len();
    let bad = |what: &str| StageError::bad_request(format!("record {record}: {what}")).at_record(record);
    let numbers = |v: &Value, what: &str| -> Result<Vec<f64>, StageError> {
        let items = v
            .as_array()
            .ok_or_else(|| bad(&format!("\"{what}\" must be a list of numbers")))?;
        items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_f64().ok_or_else(|| {
                    bad(&format!(
                        "\"{what}\"[{i}] is {}, not a number",
                        excerpt(x.to_string().as_bytes())
                    ))
                })
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
    match tensor {
        Value::Array(_) => batch.push_dense(&numbers(tensor, "features")?, dim),
        Value::Object(t) => {
            let values = numbers(
                t.get("values")
                    .ok_or_else(|| bad("\"features\" has no \"values\""))?,
                "values",
            )?;
            let Some(keys) = t.get("keys") else {
                return batch.push_dense(&values, dim);
            };
            let keys =
                as_u64s(keys).ok_or_else(|| bad("\"keys\" must be a list of non-negative integers"))?;
            let shape = match t.get("shape") {
                None => Vec::new(),
                Some(s) => {
                    as_u64s(s).ok_or_else(|| bad("\"shape\" must be a list of non-negative integers"))?
                }
            };
            batch
                .push_sparse(&values, &keys, &shape, dim, "features")
                .map_err(|e| bad(&e.message))
        }
        _ => Err(bad(
            "\"features\" must be a list of numbers or a {\"values\": [...]} object",
        )),
    }
}

fn as_u64s(v: &Value) -> Option<Vec<u64>> {
    v.as_array()?.iter().map(Value::as_u64).collect()
}

fn recordio(body: &[u8], dim: usize, batch: &mut Batch) -> Result<(), StageError> {
    let payloads = split_records(body)?;
    for (record, payload) in payloads.iter().enumerate() {
        let bad =
            |what: String| StageError::bad_request(format!("record {record}: {what}")).at_record(record);
        let rec =
            Record::decode(payload.as_slice()).map_err(|e| bad(format!("not an aialgs.data.Record: {e}")))?;
        let tensor = rec
            .features
            .get("values")
            .ok_or_else(|| bad("the record has no features[\"values\"]".into()))?;
        let what = "features[\"values\"]";
        let Parts { values, keys, shape } = tensor.parts(what).map_err(|e| bad(e.message))?;
        if keys.is_empty() {
            batch.push_dense(&values, dim)?;
        } else {
            batch
                .push_sparse(&values, keys, shape, dim, what)
                .map_err(|e| bad(e.message))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `application/json` through the stage's decoder (fast path first) and
    /// through the general path alone: the same batch, or the same error.
    fn both(body: &str, dim: usize) -> (Result<Batch, StageError>, Result<Batch, StageError>) {
        let general = {
            let mut batch = Batch::default();
            json_general(body.as_bytes(), dim, &mut batch).map(|()| batch)
        };
        let decoded = {
            let mut batch = Batch::default();
            json(body.as_bytes(), dim, &mut batch).map(|()| batch)
        };
        (decoded, general)
    }

    #[test]
    fn the_dense_fast_path_decodes_as_the_general_path() {
        for body in [
            r#"{"instances": [{"features": [1, 2.5, -3e-2]}, {"features": [0.1, 0.2, 0.3]}]}"#,
            r#" { "instances" : [ ] } "#,
            // Shapes the fast path gives up on, decoded by the general path.
            r#"{"instances": [{"features": [1, 2, 3], "id": 7}]}"#,
            r#"{"instances": [{"features": [1, 2, 3], "features": [4, 5, 6]}]}"#,
            r#"{"instances": [{"features": [1, 2, 3]}], "instances": [{"features": [4, 5, 6]}]}"#,
            r#"{"instances": [{"data": {"features": {"values": [1, 2, 3]}}}]}"#,
            r#"{"features": [1, 2, 3]}"#,
            r#"{"inst\u0061nces": [{"features": [1, 2, 3]}]}"#,
            // Errors, worded by the general path.
            r#"{"instances": [{"features": [1, 2]}]}"#,
            r#"{"instances": [{"features": [1, 2, 3, 4]}]}"#,
            r#"{"instances": [{"features": [1, "2", 3]}]}"#,
            r#"{"instances": [{"features": [1, 2, 1e999]}]}"#,
            r#"{"instances": [{"features": [1, 2, 3]}]} trailing"#,
            r#"[1, 2, 3]"#,
            // Numbers at the edges of JSON's grammar and of doubles.
            r#"{"instances": [{"features": [-0, 0.0e0, 1E+2]}]}"#,
            r#"{"instances": [{"features": [12345678901234567890123, -9223372036854775809, 2.2250738585072011e-308]}]}"#,
            r#"{"instances": [{"features": [1e-400, 4.9e-324, 1.7976931348623157e308]}]}"#,
            r#"{"instances": [{"features": [0.30000000000000004, 9007199254740993, -1.5e-7]}]}"#,
            "{\"instances\":[{\"features\":[1,2,3]} ,\n\t{\"features\" : [4 , 5,6 ]}]}\r\n ",
            r#"{"instances": [{"features": [01, 2, 3]}]}"#,
            r#"{"instances": [{"features": [1., 2, 3]}]}"#,
            r#"{"instances": [{"features": [.5, 2, 3]}]}"#,
            r#"{"instances": [{"features": [+1, 2, 3]}]}"#,
            r#"{"instances": [{"features": [1e, 2, 3]}]}"#,
            r#"{"instances": [{"features": [1, 2, 3,]}]}"#,
            r#"{"instances": [{"features": [1, 2, 3]},]}"#,
            r#"{"instances": [{"features": [NaN, 2, 3]}]}"#,
            r#"{"instances": [{"features": [1, 2, 3]}"#,
            r#"{"instances": [{"features": [1, 2, 3]}]}}"#,
            r#"{"instances": [{"features": [1, 2, -]}]}"#,
            "",
        ] {
            let (decoded, general) = both(body, 3);
            assert_eq!(decoded, general, "{body}");
        }
        // Bit for bit, signed zeros and last digits included.
        let body = r#"{"instances": [{"features": [-0, -0.0, 0.1]}, {"features": [1e-320, 123456789012345678901, 2.675e-3]}]}"#;
        let bits = |b: Batch| -> Vec<u64> {
            b.rows(3)
                .flat_map(|r| match r {
                    Features::Dense(v) => v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    Features::Sparse(..) => panic!("sparse"),
                })
                .collect()
        };
        let mut fast = Batch::default();
        assert!(super::super::dense_json::decode(body.as_bytes(), 3, &mut fast));
        let (_, general) = both(body, 3);
        assert_eq!(bits(fast), bits(general.unwrap()));
        let (decoded, _) = both(r#"{"instances": [{"features": [1, 2.5, -3e-2]}]}"#, 3);
        let batch = decoded.unwrap();
        assert_eq!(
            batch.rows(3).collect::<Vec<_>>(),
            vec![Features::Dense(&[1.0, 2.5, -0.03])]
        );
    }
}
