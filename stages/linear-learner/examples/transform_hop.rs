//! Linear Learner's share of a batch transform through the two-stage abalone
//! pipeline, in one process and without HTTP: the body the featurizer passes
//! on for a ~1 MB batch (written by the featurizer's `featurizer-batch`
//! example) through input_fn -> predict_fn -> output_fn, answering
//! `text/csv` as the transform's `Accept` asks.
//!
//! ```text
//! OUT=hop.json cargo run --release -p featurizer --example featurizer-batch
//! cargo run --release -p linear_learner --example transform-hop hop.json
//! HOP=text/csv cargo run --release -p linear_learner --example transform-hop hop.csv
//! ```
//!
//! `HOP` is the body's media type (default `application/json`), `REQUESTS`
//! the number of batches (default 50).

use std::path::PathBuf;
use std::time::Instant;

use linear_learner::model::ModelFile;
use linear_learner::LinearLearner;
use modelstage_sdk::{Context, Model, Stage};

fn main() -> Result<(), String> {
    let hop = std::env::var("HOP").unwrap_or_else(|_| "application/json".to_string());
    let requests: usize = std::env::var("REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("give the featurizer's answer as the first argument")?;
    let body = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;

    // The abalone featurizer's 10 features; a regressor with fixed weights,
    // since serving costs the same whatever they are.
    let dim = 10;
    let dir = std::env::temp_dir().join(format!("transform-hop-{}", std::process::id()));
    let weights = (0..dim).map(|j| 0.5 - j as f64 * 0.1).collect();
    ModelFile::from_weights("regressor", "squared_loss", vec![weights], vec![9.9])
        .save(&dir)
        .map_err(|e| e.to_string())?;
    let learner = LinearLearner::model_fn(&dir).map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    let learner = learner?;

    let ctx = Context {
        request_id: "bench",
        content_type: &hop,
        accept: "text/csv",
        custom_attributes: None,
        target_model: None,
    };
    let started = Instant::now();
    let (mut records, mut out) = (0, 0);
    for _ in 0..requests {
        let input = learner.input_fn(&body, &ctx).map_err(|e| e.to_string())?;
        records += input.len();
        let scores = learner.predict_fn(input, &ctx).map_err(|e| e.to_string())?;
        out += learner
            .output_fn(scores, &ctx)
            .map_err(|e| e.to_string())?
            .body
            .len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{requests} bodies of {} bytes of {hop} ({} records each, {} bytes out): {:.1} M records/s",
        body.len(),
        records / requests.max(1),
        out / requests.max(1),
        records as f64 / 1e6 / secs
    );
    Ok(())
}
