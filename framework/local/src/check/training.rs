//! The training checks, run when `--train-sample DIR` is given: `train` on a fresh `/opt/ml` tree
//! laid out from the sample (as `modelstage fit` lays it out) must write the model and
//! `output/success`; with a bad hyperparameter it must write `output/failure` and exit non-zero.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use signal_hook::consts::SIGTERM;

use super::ids;
use super::report::{Report, Verdict};
use super::target::Target;
use crate::fit::{self, Channel, Stop, TrainingImage, TrainingJob};

/// What a built-in bad hyperparameter is set to: no stage reads it as a valid value.
const GARBAGE: &str = "\u{1}modelstage-check: not a valid value";
/// The hyperparameter the built-in bad set adds, which no stage knows.
const UNKNOWN_KEY: &str = "modelstage_check_unknown_hyperparameter";
/// How much of `output/failure` evidence quotes.
const FAILURE_SHOWN: usize = 300;

/// A training sample: one channel per subfolder, hyperparameters from `hyperparameters.json`.
#[derive(Debug, Clone)]
pub struct TrainSample {
    pub channels: Vec<(String, PathBuf)>,
    pub hyperparameters: BTreeMap<String, String>,
}

impl TrainSample {
    pub fn read(dir: &Path) -> anyhow::Result<TrainSample> {
        let mut channels = Vec::new();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the training sample {}", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot list {}", dir.display()))?
                .path();
            if path.is_dir() {
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                channels.push((name, path));
            }
        }
        if channels.is_empty() {
            bail!(
                "the training sample {} has no channel: put each channel's files in a subfolder \
                 named after it (e.g. {}/train/data.csv)",
                dir.display(),
                dir.display()
            );
        }
        channels.sort();
        let file = dir.join("hyperparameters.json");
        let hyperparameters = if file.exists() {
            read_hyperparameters(&file)?
        } else {
            BTreeMap::new()
        };
        Ok(TrainSample {
            channels,
            hyperparameters,
        })
    }
}

/// A `hyperparameters.json` as SageMaker passes it: every value a string (a value that is not a
/// string is passed as its JSON text).
pub fn read_hyperparameters(file: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let document: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", file.display()))?;
    let Value::Object(object) = document else {
        bail!("{} must hold a JSON object of hyperparameters", file.display());
    };
    Ok(object
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}

/// The built-in bad set: every hyperparameter of the sample set to garbage, plus an unknown one.
pub fn garbage_hyperparameters(good: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut bad: BTreeMap<String, String> = good.keys().map(|k| (k.clone(), GARBAGE.to_string())).collect();
    bad.insert(UNKNOWN_KEY.to_string(), GARBAGE.to_string());
    bad
}

/// Runs `train` twice, each within `limit`: with the sample, and with `bad` hyperparameters.
pub fn check_training(
    target: &Target,
    sample: &TrainSample,
    bad: &BTreeMap<String, String>,
    limit: Duration,
    report: &mut Report,
) {
    let image = match target {
        Target::Library(path) => TrainingImage::Library(path.clone()),
        Target::Image(image) => TrainingImage::Docker(image.clone()),
        Target::Url(_) => return,
    };
    match run(&image, sample, &sample.hyperparameters, limit) {
        Ok(run) => {
            let model = model_files(&run.base);
            let model_outcome = match (run.success, model) {
                (true, n) if n > 0 => Verdict::Pass(format!("{n} file(s) in /opt/ml/model")),
                (true, _) => Verdict::Fail("exited 0, but /opt/ml/model is empty".into()),
                (false, _) => Verdict::Fail(format!("train {}; {}", run.exit, run.failure_text())),
            };
            report.record(ids::TRAIN_MODEL, model_outcome);
            let success = run.base.join("output/success").is_file();
            report.record(
                ids::TRAIN_SUCCESS,
                Verdict::from_bool(
                    success,
                    if success {
                        "output/success written".into()
                    } else {
                        format!("no output/success after train {}", run.exit)
                    },
                ),
            );
        }
        Err(e) => {
            report.record(ids::TRAIN_MODEL, Verdict::Fail(format!("{e:#}")));
            report.record(ids::TRAIN_SUCCESS, Verdict::Fail(format!("{e:#}")));
        }
    }
    let outcome = match run(&image, sample, bad, limit) {
        Ok(run) => {
            let failure = std::fs::read(run.base.join("output/failure")).ok();
            match (run.success, failure) {
                // Stopped for time: its failure file says so, not that it refused the values.
                _ if run.stopped => Verdict::Fail(format!("train {}", run.exit)),
                (false, Some(text)) if !text.is_empty() => {
                    Verdict::Pass(format!("train {}; {}", run.exit, run.failure_text()))
                }
                (false, _) => Verdict::Fail(format!(
                    "train {}, but wrote no (or an empty) output/failure",
                    run.exit
                )),
                (true, _) => Verdict::Fail(format!(
                    "train exited 0 with hyperparameters {}",
                    super::http::excerpt(serde_json::to_string(bad).unwrap_or_default().as_bytes())
                )),
            }
        }
        Err(e) => Verdict::Fail(format!("{e:#}")),
    };
    report.record(ids::TRAIN_BAD_HYPERPARAMETER, outcome);
}

/// One finished `train`: its tree (kept until this is dropped) and how it ended.
struct Run {
    _tree: fit::PreparedTree,
    base: PathBuf,
    success: bool,
    /// Stopped at the time limit.
    stopped: bool,
    exit: String,
}

impl Run {
    fn failure_text(&self) -> String {
        match std::fs::read(self.base.join("output/failure")) {
            Ok(bytes) => {
                let shown = &bytes[..bytes.len().min(FAILURE_SHOWN)];
                format!("output/failure: {}", super::http::excerpt(shown))
            }
            Err(_) => "no output/failure".into(),
        }
    }
}

fn run(
    image: &TrainingImage,
    sample: &TrainSample,
    hyperparameters: &BTreeMap<String, String>,
    limit: Duration,
) -> anyhow::Result<Run> {
    let job = TrainingJob {
        name: "modelstage-check".into(),
        image: image.clone(),
        hyperparameters: hyperparameters.clone(),
        channels: sample
            .channels
            .iter()
            .map(|(name, source)| Channel {
                name: name.clone(),
                source: source.clone(),
                content_type: None,
                input_mode: "File".into(),
            })
            .collect(),
        // Not written to: the checks read the tree, nothing is packed.
        output_path: PathBuf::new(),
        environment: BTreeMap::new(),
    };
    let stop = Stop::never();
    let tree = fit::prepare(&job, &stop)?;
    // A job past its time is stopped as StopTrainingJob stops one (SIGTERM, then SIGKILL).
    let (finished, timer) = mpsc::channel::<()>();
    let deadline = stop.clone();
    std::thread::spawn(move || {
        if timer.recv_timeout(limit) == Err(RecvTimeoutError::Timeout) {
            deadline.request(SIGTERM);
        }
    });
    let exit = fit::run_training_container(tree.base(), &job, &stop);
    drop(finished);
    let exit = exit?;
    Ok(Run {
        base: tree.base().to_path_buf(),
        _tree: tree,
        success: exit.success,
        stopped: exit.stopped_by.is_some(),
        exit: match exit.stopped_by {
            _ if exit.success => "exited 0".into(),
            Some(_) => format!(
                "did not finish within {} s (--train-timeout) and was stopped",
                limit.as_secs()
            ),
            None => exit.description,
        },
    })
}

/// How many files `/opt/ml/model` holds, at any depth.
fn model_files(base: &Path) -> usize {
    fn count(dir: &Path, depth: usize) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() && depth < 32 => count(&e.path(), depth + 1),
                Ok(t) if t.is_dir() => 0,
                Ok(_) => 1,
                Err(_) => 0,
            })
            .sum()
    }
    count(&base.join("model"), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_has_channel_folders_and_string_hyperparameters() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("train")).unwrap();
        std::fs::write(dir.path().join("train/a.csv"), "1,2\n").unwrap();
        std::fs::write(
            dir.path().join("hyperparameters.json"),
            r#"{"epochs": 3, "optimizer": "adam", "on": true}"#,
        )
        .unwrap();
        let sample = TrainSample::read(dir.path()).unwrap();
        assert_eq!(sample.channels, [("train".to_string(), dir.path().join("train"))]);
        assert_eq!(sample.hyperparameters["epochs"], "3");
        assert_eq!(sample.hyperparameters["optimizer"], "adam");
        assert_eq!(sample.hyperparameters["on"], "true");
        let bad = garbage_hyperparameters(&sample.hyperparameters);
        assert_eq!(bad.len(), 4);
        assert!(bad.values().all(|v| v == GARBAGE));
    }

    #[test]
    fn a_sample_without_channels_is_refused_with_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.csv"), "1\n").unwrap();
        let e = TrainSample::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("has no channel"), "{e}");
        assert!(e.contains("/train/data.csv"), "{e}");
    }
}
