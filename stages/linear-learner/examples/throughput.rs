//! Throughput benchmark: training rows/s per epoch on a synthetic
//! 1,000,000-row × 10-feature label-first CSV (for whole jobs of 3 epochs and
//! of 15, the default, and for the epochs between, which replay the rows
//! from memory), next
//! to the rate of a bare parsing pass over the same file, and serving
//! throughput for 1-record and 1,000-record requests through the hooks
//! (input_fn, predict_fn, output_fn) directly.
//!
//! Run: `cargo run --release -p linear_learner --example throughput`
//! (`ROWS=200000` for a shorter run).

use std::fmt::Write as _;
use std::time::Instant;

use linear_learner::rng::Rng;
use linear_learner::train::config::Config;
use linear_learner::train::data::{for_each_row, Channel, Format};
use linear_learner::train::{run, Job};
use linear_learner::LinearLearner;
use modelstage_sdk::training::Hyperparameters;
use modelstage_sdk::{Context, Model, Stage};
use serde_json::json;

const FEATURES: usize = 10;

fn main() {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("train.csv");

    // y = Σ (j+1)·x_j / 10 + 3 + noise, x ~ N(0, 1), six decimals as a typical export has.
    let t = Instant::now();
    let mut rng = Rng::new(42);
    let mut text = String::with_capacity(rows * 110);
    for _ in 0..rows {
        let x: Vec<f64> = (0..FEATURES).map(|_| rng.normal()).collect();
        let y: f64 = 3.0
            + x.iter()
                .enumerate()
                .map(|(j, v)| (j + 1) as f64 * v / 10.0)
                .sum::<f64>()
            + 0.1 * rng.normal();
        write!(text, "{y:.6}").unwrap();
        for v in &x {
            write!(text, ",{v:.6}").unwrap();
        }
        text.push('\n');
    }
    std::fs::write(&path, &text).expect("write the CSV");
    let mb = text.len() as f64 / 1e6;
    drop(text);
    println!(
        "generated {rows} rows x {FEATURES} features ({mb:.1} MB) in {:.2?}",
        t.elapsed()
    );

    let channel = Channel {
        name: "train".into(),
        files: vec![path],
        format: Format::Csv,
    };

    // A bare pass: read and parse every row, nothing else.
    let t = Instant::now();
    let mut sum = 0.0;
    for_each_row(&channel, &mut None, |y, _| {
        sum += y;
        Ok(true)
    })
    .expect("parse");
    let parse = t.elapsed().as_secs_f64();
    println!(
        "parse only:                              {:>10.0} rows/s ({:.0} MB/s)",
        rows as f64 / parse,
        mb / parse
    );

    let model_dir = dir.path().join("model");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let auto_on_all = format!("train, num_models=auto (8), {cpus} threads");
    for (label, extra, threads) in [
        ("train, num_models=1", json!({"num_models": 1}), 1),
        ("train, num_models=auto (8), 1 thread", json!({}), 1),
        (auto_on_all.as_str(), json!({}), cpus),
    ] {
        // Whole jobs of 3 epochs and of 15 (the default), each with its first epoch parsing the
        // file and the selection pass; the difference is the rate of epochs replayed from memory.
        let mut times = Vec::new();
        for epochs in [3, 15] {
            let mut hp =
                json!({"predictor_type": "regressor", "epochs": epochs, "early_stopping_patience": 100});
            hp.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let config =
                Config::from_hyperparameters(&Hyperparameters::from_map(hp.as_object().unwrap().clone()))
                    .expect("hyperparameters");
            let t = Instant::now();
            let outcome = run(&Job {
                config,
                train: channel.clone(),
                validation: None,
                test: None,
                host: "algo-1".into(),
                threads,
            })
            .expect("training");
            times.push(t.elapsed().as_secs_f64());
            assert_eq!(outcome.epochs_run, epochs, "early stopping is off");
            outcome.model.save(&model_dir).expect("save");
        }
        // Each epoch reads every row once; the kept model is chosen on one more pass.
        println!(
            "{label:<40} {:>10.0} rows/s per epoch (3 epochs + selection pass in {:.2} s); \
             15 epochs: {:>10.0}; epochs 4 to 15: {:>10.0}",
            rows as f64 * 4.0 / times[0],
            times[0],
            rows as f64 * 16.0 / times[1],
            rows as f64 * 12.0 / (times[1] - times[0]),
        );
    }

    let model = LinearLearner::model_fn(&model_dir).expect("model_fn");
    let one = "0.1,-0.2,0.3,-0.4,0.5,-0.6,0.7,-0.8,0.9,-1.0\n".to_string();
    let thousand = one.repeat(1000);
    // What the featurizer sends with JSON between the stages.
    let instance = r#"{"features": [0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8, 0.9, -1.0]}"#;
    let thousand_json = format!("{{\"instances\": [{}]}}", vec![instance; 1000].join(", "));
    for (label, body, content_type, accept, iterations) in [
        (
            "1 record, text/csv -> json",
            &one,
            "text/csv",
            "application/json",
            200_000,
        ),
        (
            "1000 records, csv -> json",
            &thousand,
            "text/csv",
            "application/json",
            2_000,
        ),
        (
            "1000 records, csv -> csv",
            &thousand,
            "text/csv",
            "text/csv",
            2_000,
        ),
        (
            "1000 records, json -> json",
            &thousand_json,
            "application/json",
            "application/json",
            2_000,
        ),
    ] {
        let ctx = Context {
            request_id: "bench",
            content_type,
            accept,
            custom_attributes: None,
            target_model: None,
        };
        let t = Instant::now();
        let mut bytes = 0;
        for _ in 0..iterations {
            let input = model.input_fn(body.as_bytes(), &ctx).expect("input_fn");
            let out = model.predict_fn(input, &ctx).expect("predict_fn");
            bytes += model.output_fn(out, &ctx).expect("output_fn").body.len();
        }
        let secs = t.elapsed().as_secs_f64();
        let records = if body.len() > 1000 { 1000.0 } else { 1.0 };
        println!(
            "serve {label:<27} {:>10.0} requests/s {:>11.0} records/s ({:.1} µs/request, {bytes} bytes out)",
            iterations as f64 / secs,
            iterations as f64 * records / secs,
            secs / iterations as f64 * 1e6
        );
    }
    std::hint::black_box(sum);
}
