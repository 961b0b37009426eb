//! The `/opt/ml` tree of a training job, with paths spelled as the toolkit spells them.
//!
//! The toolkit builds every path with `os.path.join(base_dir, ...)`, so a base dir given
//! with a trailing slash does not double it; the values land verbatim in `SM_*`
//! variables, so they are kept as text rather than `PathBuf`s.

use std::path::PathBuf;

/// Where SageMaker mounts the training tree when `SAGEMAKER_BASE_DIR` is not set.
pub const DEFAULT_BASE_DIR: &str = "/opt/ml";

/// Every path of the training tree the runtime reads or reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The root: `SAGEMAKER_BASE_DIR`, else `/opt/ml`.
    pub base_dir: String,
    /// `code`: where the training script's files are, unless the job says otherwise.
    pub code_dir: String,
    /// `model`: what training leaves for the model artifact (`SM_MODEL_DIR`).
    pub model_dir: String,
    /// `input`.
    pub input_dir: String,
    /// `input/data`: one folder per channel.
    pub input_data_dir: String,
    /// `input/config`: the job's JSON files (`SM_INPUT_CONFIG_DIR`).
    pub input_config_dir: String,
    /// `output`: the failure and success files.
    pub output_dir: String,
    /// `output/data`: extra output (`SM_OUTPUT_DATA_DIR`).
    pub output_data_dir: String,
    /// `output/intermediate`: uploaded while training runs (`SM_OUTPUT_INTERMEDIATE_DIR`).
    pub output_intermediate_dir: String,
}

/// Python's `os.path.join(a, b)` for a relative `b`.
pub(crate) fn join(a: &str, b: &str) -> String {
    if a.is_empty() || a.ends_with('/') {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    }
}

impl Paths {
    /// The tree under `base_dir`, joined as the toolkit joins it.
    pub fn new(base_dir: &str) -> Paths {
        let input_dir = join(base_dir, "input");
        let output_dir = join(base_dir, "output");
        Paths {
            base_dir: base_dir.to_string(),
            code_dir: join(base_dir, "code"),
            model_dir: join(base_dir, "model"),
            input_data_dir: join(&input_dir, "data"),
            input_config_dir: join(&input_dir, "config"),
            input_dir,
            output_data_dir: join(&output_dir, "data"),
            output_intermediate_dir: join(&output_dir, "intermediate"),
            output_dir,
        }
    }

    /// `input/data/<channel>`: `SM_CHANNEL_<NAME>`.
    pub fn channel_dir(&self, channel: &str) -> String {
        join(&self.input_data_dir, channel)
    }

    /// `input/config/<file>`.
    pub fn config_file(&self, file: &str) -> PathBuf {
        PathBuf::from(join(&self.input_config_dir, file))
    }

    /// `output/failure`: the reason a job failed, which SageMaker shows.
    pub fn failure_file(&self) -> PathBuf {
        PathBuf::from(join(&self.output_dir, "failure"))
    }

    /// `output/success`: written when training succeeds.
    pub fn success_file(&self) -> PathBuf {
        PathBuf::from(join(&self.output_dir, "success"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_os_path_join() {
        let p = Paths::new("/opt/ml");
        assert_eq!(p.model_dir, "/opt/ml/model");
        assert_eq!(p.output_data_dir, "/opt/ml/output/data");
        assert_eq!(p.input_config_dir, "/opt/ml/input/config");
        assert_eq!(p.channel_dir("train"), "/opt/ml/input/data/train");
        // A trailing slash is not doubled, as in Python.
        assert_eq!(Paths::new("/data/job/").model_dir, "/data/job/model");
    }
}
