//! The README's main command, `examples/abalone/run.sh`, run as a user runs
//! it (on the debug build of this test run): fit the featurizer, batch
//! transform, fit Linear Learner, deploy the serial pipeline, invoke it.

use std::process::Command;

use crate::support::{bin, free_port, repo_root};

#[test]
fn the_abalone_demo_prints_a_prediction_as_its_last_line() {
    let target_dir = bin().parent().unwrap().parent().unwrap().to_path_buf();
    let out = Command::new(repo_root().join("examples/abalone/run.sh"))
        .env("PROFILE", "debug")
        .env("CARGO_TARGET_DIR", &target_dir)
        // The workspace is built (ci/test.sh builds it first): a rebuild here
        // could relink the binary other tests are running from.
        .env("SKIP_BUILD", "1")
        .env("PORT", free_port().to_string())
        .output()
        .expect("run examples/abalone/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "run.sh failed:\n{stdout}\n{stderr}");
    for step in [
        "== 1. fitting the featurizer",
        "== 2.",
        "== 3. fitting Linear Learner",
        "== 4.",
        "== 5.",
        "== 6.",
    ] {
        assert!(stdout.contains(step), "missing step {step:?}:\n{stdout}");
    }
    let last = stdout.lines().last().unwrap_or_default();
    let answer: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last:?}"));
    let score = answer["predictions"][0]["score"].as_f64().expect("a score");
    assert!(
        (9.3..=9.9).contains(&score),
        "score {score} for the example abalone"
    );
    // The featurized training data is label first: the label, then ten features.
    let featurized = stdout
        .lines()
        .skip_while(|l| !l.starts_with("== 2."))
        .nth(1)
        .expect("a featurized row after step 2");
    assert_eq!(featurized.split(',').count(), 11, "{featurized}");
}
