//! The Dockerfile of a stage image: the runtime base, the stage library at one fixed path, and
//! the labels. `modelstage image` writes it into its build context; `modelstage new` writes the
//! same text into a new project, so a plain `docker build` makes the same image.

use modelstage_runtime::loader::StageInfo;

use crate::docker::{BIND_TO_PORT_LABEL, MULTI_MODELS_LABEL};

/// Where every stage image keeps its stage library (`MODELSTAGE_STAGE`).
pub const STAGE_PATH: &str = "/opt/modelstage/stage.so";

/// What a stage image says about its stage, as `com.modelstage.*` labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageLabels {
    pub name: String,
    pub version: String,
    /// The library's file name on the machine that built the image.
    pub library: String,
    /// The ABI the library was built for, `MAJOR.MINOR`.
    pub abi: String,
}

impl StageLabels {
    /// The labels of a library the loader has read.
    pub fn from_info(info: &StageInfo) -> StageLabels {
        StageLabels {
            name: info.name.clone(),
            version: info.version.clone(),
            library: info.file.clone(),
            abi: format!("{}.{}", info.abi_major, info.abi_minor),
        }
    }

    /// Every label of a stage image, the SageMaker capability first.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            (BIND_TO_PORT_LABEL, "true".to_string()),
            (MULTI_MODELS_LABEL, "true".to_string()),
            ("com.modelstage.stage.name", self.name.clone()),
            ("com.modelstage.stage.version", self.version.clone()),
            ("com.modelstage.stage.library", self.library.clone()),
            ("com.modelstage.abi.version", self.abi.clone()),
        ]
    }
}

/// A Dockerfile that puts the library `source` (a path in the build context) on `base`.
pub fn stage_dockerfile(base: &str, source: &str, labels: &StageLabels) -> String {
    let label_lines: Vec<String> = labels
        .pairs()
        .iter()
        .map(|(key, value)| format!("{key}={}", quote(value)))
        .collect();
    format!(
        "# The image of one modelstage stage, as SageMaker runs it: `docker run IMAGE train` and\n\
         # `docker run IMAGE serve`. The base is the modelstage runtime (`modelstage image --runtime`\n\
         # builds it on this machine); build with `docker build --pull=false` so a missing base is\n\
         # an error rather than a registry lookup.\n\
         FROM {base}\n\
         \n\
         # One fixed path in every image, so MODELSTAGE_STAGE is the same everywhere.\n\
         COPY {source} {STAGE_PATH}\n\
         ENV MODELSTAGE_STAGE={STAGE_PATH}\n\
         \n\
         # The server honours SAGEMAKER_BIND_TO_PORT, which serial inference pipelines need.\n\
         LABEL {}\n\
         \n\
         EXPOSE 8080\n\
         # Exec form: `train` and `serve` arrive as arguments and modelstage is PID 1, so the\n\
         # SIGTERM of `docker stop` (and of StopTrainingJob) reaches it.\n\
         ENTRYPOINT [\"/usr/local/bin/modelstage\"]\n",
        label_lines.join(" \\\n      ")
    )
}

/// A Dockerfile string literal: the value in double quotes, with `"`, `\` and line ends escaped.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
