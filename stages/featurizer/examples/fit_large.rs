//! Training on large files: fits the abalone schema on the CSV files given
//! on the command line and prints the time and the peak memory (Linux
//! `VmHWM`), to check that fitting streams. Make a large file by repeating
//! the data set, e.g. 5,500 copies of abalone.csv for ~1 GB:
//!
//! ```text
//! cargo run --release -p featurizer --example featurizer-fit-large -- big.csv
//! ```

#[path = "support/abalone.rs"]
mod abalone;

use std::time::Instant;

use featurizer::{fit_files, Config};

fn main() -> Result<(), String> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        return Err("usage: featurizer-fit-large FILE.csv...".to_string());
    }
    let hp = abalone::hyperparameters();
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let started = Instant::now();
    let model = fit_files(
        Config::from_hyperparameters(&hp).map_err(|e| e.to_string())?,
        &files,
    )
    .map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(str::to_string))
        .unwrap_or_else(|| "VmHWM unknown".to_string());
    println!(
        "fitted {} records ({:.0} MB) in {secs:.2} s ({:.0} MB/s); peak memory {}",
        model.rows,
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs,
        peak.trim_start_matches("VmHWM:").trim()
    );
    for c in &model.numeric {
        println!("  {}: fill {} mean {} scale {}", c.name, c.fill, c.mean, c.scale);
    }
    Ok(())
}
