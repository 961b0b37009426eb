//! Serving throughput: rows per second through input_fn -> predict_fn ->
//! output_fn for 10,000-row abalone requests, per output format, on one
//! thread. Run in release mode:
//!
//! ```text
//! cargo run --release -p featurizer --example featurizer-throughput [ABALONE_CSV]
//! ```
//!
//! The default data path is the repository's `examples/abalone/data/abalone.csv`.

#[path = "support/abalone.rs"]
mod abalone;

use std::path::PathBuf;
use std::time::Instant;

use featurizer::{Config, Featurizer, Fitter};
use modelstage_sdk::{Context, Stage};

const ROWS: usize = 10_000;

fn main() -> Result<(), String> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(abalone::data_path);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;

    let hp = abalone::hyperparameters();
    let started = Instant::now();
    let mut fitter = Fitter::new(Config::from_hyperparameters(&hp).map_err(|e| e.to_string())?);
    fitter
        .read(text.as_bytes(), "abalone.csv")
        .map_err(|e| e.to_string())?;
    let featurizer = Featurizer::from_model(fitter.finish().map_err(|e| e.to_string())?);
    println!(
        "fit on {} rows: {:.2} ms",
        text.lines().count(),
        started.elapsed().as_secs_f64() * 1e3
    );

    // 10,000 unlabelled records (the label dropped), as clients send them.
    let unlabelled: Vec<&str> = text
        .lines()
        .map(|l| &l[..l.rfind(',').unwrap_or(l.len())])
        .collect();
    let mut body = String::new();
    for i in 0..ROWS {
        body.push_str(unlabelled[i % unlabelled.len()]);
        body.push('\n');
    }
    let single = format!("{}\n", unlabelled[0]);

    for accept in ["text/csv", "application/json", "application/jsonlines"] {
        let ctx = Context {
            request_id: "bench",
            content_type: "text/csv",
            accept,
            custom_attributes: None,
            target_model: None,
        };
        let run = |body: &[u8]| -> usize {
            let input = featurizer.input_fn(body, &ctx).unwrap();
            let output = featurizer.predict_fn(input, &ctx).unwrap();
            featurizer.output_fn(output, &ctx).unwrap().body.len()
        };
        // Warm up, then time enough requests for a stable figure.
        run(body.as_bytes());
        let requests = 200;
        let started = Instant::now();
        let mut bytes = 0;
        for _ in 0..requests {
            bytes += run(body.as_bytes());
        }
        let secs = started.elapsed().as_secs_f64();
        let singles = 200_000;
        let started1 = Instant::now();
        for _ in 0..singles {
            bytes += run(single.as_bytes());
        }
        let per_single = started1.elapsed().as_secs_f64() / singles as f64;
        println!(
            "{accept:<22} 10k-row requests: {:>5.2} M rows/s ({:.2} ms/request); single-record: {:.2} us/request [{bytes} bytes]",
            (requests * ROWS) as f64 / secs / 1e6,
            secs / requests as f64 * 1e3,
            per_single * 1e6,
        );
    }
    Ok(())
}
