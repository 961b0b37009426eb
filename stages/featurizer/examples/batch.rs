//! The featurizer's share of a batch transform through the two-stage
//! abalone pipeline, in one process and without HTTP: a ~1 MB `text/csv`
//! batch of unlabelled abalone records (what `bench/transform.py` sends with
//! `MaxPayloadInMB=1`) through input_fn -> predict_fn -> output_fn, answering
//! the format the pipeline passes to Linear Learner.
//!
//! ```text
//! cargo run --release -p featurizer --example featurizer-batch
//! HOP=text/csv OUT=hop.csv cargo run --release -p featurizer --example featurizer-batch
//! ```
//!
//! `HOP` is the media type between the stages (default `application/json`),
//! `REQUESTS` the number of batches (default 50), `BATCH_KB` the batch size
//! (default 1024), and `OUT`, when set, a file the last answer is written to:
//! Linear Learner's `transform-hop` example reads it.

#[path = "support/abalone.rs"]
mod abalone;

use std::path::PathBuf;
use std::time::Instant;

use featurizer::{Config, Featurizer, Fitter};
use modelstage_sdk::{Context, Stage};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), String> {
    let hop = std::env::var("HOP").unwrap_or_else(|_| "application/json".to_string());
    let requests: usize = env_or("REQUESTS", 50);
    let batch_bytes = env_or::<usize>("BATCH_KB", 1024) * 1024;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/abalone/data/abalone.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;

    let hp = abalone::hyperparameters();
    let mut fitter = Fitter::new(Config::from_hyperparameters(&hp).map_err(|e| e.to_string())?);
    fitter
        .read(text.as_bytes(), "abalone.csv")
        .map_err(|e| e.to_string())?;
    let featurizer = Featurizer::from_model(fitter.finish().map_err(|e| e.to_string())?);

    // Whole records up to the batch size, as SplitType=Line batches them.
    let mut body = String::with_capacity(batch_bytes + 128);
    'fill: loop {
        for line in text.lines() {
            let record = &line[..line.rfind(',').unwrap_or(line.len())];
            if body.len() + record.len() + 1 > batch_bytes {
                break 'fill;
            }
            body.push_str(record);
            body.push('\n');
        }
    }

    let ctx = Context {
        request_id: "bench",
        content_type: "text/csv",
        accept: &hop,
        custom_attributes: None,
        target_model: None,
    };
    let started = Instant::now();
    let mut last = Vec::new();
    for _ in 0..requests {
        let batch = featurizer
            .input_fn(body.as_bytes(), &ctx)
            .map_err(|e| e.to_string())?;
        let features = featurizer.predict_fn(batch, &ctx).map_err(|e| e.to_string())?;
        last = featurizer
            .output_fn(features, &ctx)
            .map_err(|e| e.to_string())?
            .body;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{requests} batches of {} bytes -> {} bytes of {hop}: {:.1} MB/s of input",
        body.len(),
        last.len(),
        (body.len() * requests) as f64 / 1e6 / secs
    );
    if let Some(out) = std::env::var_os("OUT") {
        std::fs::write(&out, &last).map_err(|e| format!("{}: {e}", PathBuf::from(&out).display()))?;
    }
    Ok(())
}
