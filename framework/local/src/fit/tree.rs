//! A fresh `/opt/ml` tree for one local training job, laid out as SageMaker lays it out before the
//! container starts (docs/contract.md (Training)): the three configuration files and a copy of every channel.
//! The copy stops between files when the job is stopped (Ctrl-C), so a large channel does not hold
//! it up.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Map, Value};

use super::request::TrainingJob;
use super::stop::{signal_name, Stop};

/// The one host of a local job, named as SageMaker names the first host.
pub const HOST: &str = "algo-1";

/// A prepared tree in a temporary folder, removed when dropped unless kept.
pub struct PreparedTree {
    temp: tempfile::TempDir,
    base: PathBuf,
}

impl PreparedTree {
    /// The tree's root: what the container sees as `/opt/ml` (`SAGEMAKER_BASE_DIR`).
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Keeps the folder after the job (for `--keep-tree`) and returns its root.
    pub fn keep(self) -> PathBuf {
        let base = self.base.clone();
        let _ = self.temp.keep();
        base
    }

    /// Removes the folder now and reports a failure, which dropping cannot: a container that ran
    /// as another user may have left files this process cannot remove.
    pub fn remove(self) -> anyhow::Result<()> {
        let root = self.temp.path().to_path_buf();
        self.temp.close().with_context(|| {
            format!(
                "cannot remove the training tree {}: the training container may have written files \
                 owned by another user; remove them by hand",
                root.display()
            )
        })
    }
}

/// Lays out the tree for `job`; `stop` ends the copying of channels early, with an error.
pub fn prepare(job: &TrainingJob, stop: &Stop) -> anyhow::Result<PreparedTree> {
    let temp = tempfile::Builder::new()
        .prefix("modelstage-fit-")
        .tempdir()
        .context("cannot create a temporary folder for the training tree")?;
    let base = temp.path().join("opt").join("ml");
    let config_dir = base.join("input/config");
    for dir in [
        &config_dir,
        &base.join("input/data"),
        &base.join("model"),
        &base.join("output/data"),
    ] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }

    let hyperparameters: Map<String, Value> = job
        .hyperparameters
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    write_json(
        &config_dir.join("hyperparameters.json"),
        &Value::Object(hyperparameters),
    )?;
    write_json(&config_dir.join("inputdataconfig.json"), &input_data_config(job))?;
    write_json(&config_dir.join("resourceconfig.json"), &resource_config())?;

    for channel in &job.channels {
        let dest = base.join("input/data").join(&channel.name);
        copy_channel(&channel.source, &dest, stop).with_context(|| {
            format!(
                "cannot copy channel '{}' from {}",
                channel.name,
                channel.source.display()
            )
        })?;
    }
    Ok(PreparedTree { temp, base })
}

/// `inputdataconfig.json` in the platform's shape (docs/contract.md (Training)).
pub fn input_data_config(job: &TrainingJob) -> Value {
    let channels: Map<String, Value> = job
        .channels
        .iter()
        .map(|c| {
            let mut settings = Map::new();
            if let Some(ct) = &c.content_type {
                settings.insert("ContentType".into(), json!(ct));
            }
            settings.insert("TrainingInputMode".into(), json!(c.input_mode));
            settings.insert("S3DistributionType".into(), json!("FullyReplicated"));
            settings.insert("RecordWrapperType".into(), json!("None"));
            (c.name.clone(), Value::Object(settings))
        })
        .collect();
    Value::Object(channels)
}

/// `resourceconfig.json` of a one-host job, with the fields the SageMaker SDK's local mode writes.
pub fn resource_config() -> Value {
    json!({
        "current_host": HOST,
        "hosts": [HOST],
        "network_interface_name": "eth0",
        "current_instance_type": "local",
    })
}

fn write_json(path: &Path, value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string(value).context("cannot encode JSON")?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A file lands in the channel folder under its own name; a folder's contents are copied
/// recursively, links replaced by what they point to.
fn copy_channel(source: &Path, dest: &Path, stop: &Stop) -> anyhow::Result<()> {
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let meta = std::fs::metadata(source).with_context(|| format!("cannot read {}", source.display()))?;
    if meta.is_dir() {
        copy_dir(source, dest, 0, stop)
    } else {
        let name = source
            .file_name()
            .context("the channel source has no file name")?;
        copy_file(source, &dest.join(name), stop)
    }
}

fn copy_dir(source: &Path, dest: &Path, depth: usize, stop: &Stop) -> anyhow::Result<()> {
    if depth > 128 {
        anyhow::bail!(
            "{} is nested more than 128 levels deep (a link cycle?)",
            source.display()
        );
    }
    for entry in std::fs::read_dir(source).with_context(|| format!("cannot list {}", source.display()))? {
        let path = entry
            .with_context(|| format!("cannot list {}", source.display()))?
            .path();
        let target = dest.join(path.file_name().unwrap_or_default());
        let meta = std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            std::fs::create_dir_all(&target)
                .with_context(|| format!("cannot create {}", target.display()))?;
            copy_dir(&path, &target, depth + 1, stop)?;
        } else if meta.is_file() {
            copy_file(&path, &target, stop)?;
        }
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path, stop: &Stop) -> anyhow::Result<()> {
    if let Some(signal) = stop.signal() {
        anyhow::bail!(
            "stopped by {} before {} was copied",
            signal_name(signal),
            from.display()
        );
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}
