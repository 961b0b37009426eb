//! Response encoding per the stage README: `application/json`,
//! `application/jsonlines`, `application/x-recordio-protobuf`, and (our
//! addition) `text/csv`.
//!
//! Scores are computed in f64 and answered as the f32 SageMaker's service
//! computes, printed as Python prints that value as a double
//! (`0.39518389105796814`); `predicted_label` is a float (`1.0`). JSON uses
//! Python's `json.dumps` separators (`", "`, `": "`).

use modelstage_sdk::python::write_float;
use modelstage_sdk::{Response, StageError};
use prost::Message;

use crate::model::{Kind, Predictions};
use crate::proto::{Record, Value};
use crate::recordio::write_record;

/// The Accept types we answer, the default first.
pub const ACCEPTS: [&str; 4] = [
    "application/json",
    "application/jsonlines",
    "application/x-recordio-protobuf",
    "text/csv",
];

/// What the service answers for a score: the f32 nearest to it, as a double.
fn f32_value(x: f64) -> f64 {
    f64::from(x as f32)
}

/// Encodes `p` as `media` (one of [`ACCEPTS`]).
pub fn encode(p: &Predictions, media: &'static str) -> Result<Response, StageError> {
    let body = match media {
        "application/json" => json(p),
        "application/jsonlines" => jsonlines(p),
        "application/x-recordio-protobuf" => recordio(p),
        "text/csv" => csv(p),
        other => return Err(StageError::unsupported_accept(other, &ACCEPTS)),
    };
    Ok(Response::new(body, media))
}

/// `{"score": ..., "predicted_label": ...}` of record `i`.
fn object(out: &mut Vec<u8>, p: &Predictions, i: usize) {
    out.extend_from_slice(b"{\"score\": ");
    let scores = p.scores_of(i);
    if let Kind::Multiclass { .. } = p.kind {
        out.push(b'[');
        for (j, &s) in scores.iter().enumerate() {
            if j > 0 {
                out.extend_from_slice(b", ");
            }
            write_float(out, f32_value(s));
        }
        out.push(b']');
    } else {
        write_float(out, f32_value(scores[0]));
    }
    if let Some(labels) = &p.labels {
        out.extend_from_slice(b", \"predicted_label\": ");
        write_float(out, labels[i]);
    }
    out.push(b'}');
}

fn json(p: &Predictions) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + p.len() * 48);
    out.extend_from_slice(b"{\"predictions\": [");
    for i in 0..p.len() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        object(&mut out, p, i);
    }
    out.extend_from_slice(b"]}");
    out
}

fn jsonlines(p: &Predictions) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len() * 48);
    for i in 0..p.len() {
        object(&mut out, p, i);
        out.push(b'\n');
    }
    out
}

/// One line per record: the score (regressor), `predicted_label,score`
/// (binary), `predicted_label,score_0,...,score_k` (multiclass).
fn csv(p: &Predictions) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len() * 24);
    for i in 0..p.len() {
        if let Some(labels) = &p.labels {
            write_float(&mut out, labels[i]);
            out.push(b',');
        }
        for (j, &s) in p.scores_of(i).iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            write_float(&mut out, f32_value(s));
        }
        out.push(b'\n');
    }
    out
}

/// One RecordIO-framed `Record` per record with `label["score"]` and, for
/// classifiers, `label["predicted_label"]` as float32 tensors.
fn recordio(p: &Predictions) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len() * 40);
    let mut payload = Vec::with_capacity(64);
    for i in 0..p.len() {
        let mut record = Record::default();
        record.label.insert(
            "score".into(),
            Value::dense_f32(p.scores_of(i).iter().map(|&s| s as f32).collect()),
        );
        if let Some(labels) = &p.labels {
            record
                .label
                .insert("predicted_label".into(), Value::dense_f32(vec![labels[i] as f32]));
        }
        payload.clear();
        // Encoding into a Vec cannot run out of space.
        let _ = record.encode(&mut payload);
        write_record(&mut out, &payload);
    }
    out
}
