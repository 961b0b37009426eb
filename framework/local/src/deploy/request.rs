//! The model `modelstage deploy` runs: read from a CreateModel request document (`PrimaryContainer`,
//! or `Containers` with `InferenceExecutionConfig.Mode`) or from `--stage LIB --model TAR` flags, and
//! checked as SageMaker checks the request, with messages that name the field to fix.
//!
//! Every key is checked against the API's members first ([`crate::request_doc::check_members`]):
//! a misspelt `ModelDataURL` is an error that names `ModelDataUrl`, not an empty model. Fields
//! about the cloud (`ExecutionRoleArn`, `VpcConfig`, `Tags`, `EnableNetworkIsolation`, ...) are
//! accepted and ignored: a request written for SageMaker deploys here unchanged, except that `Image` names a
//! stage library or a Docker image on this machine, and `ModelDataUrl` a local `model.tar.gz` (a
//! path or a `file://` URI; relative paths are taken from the current folder, as the other local
//! commands take them). Whether `Image` is a library or an image is decided when the endpoint
//! starts ([`super::image`]): telling a bare image name from a file name may need the engine.

use crate::request_doc::{check_members, opt_object, opt_str, string_map};
use crate::request_shapes::CREATE_MODEL;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde_json::{Map, Value};

use crate::tarball::model_data_url_to_path;

/// SageMaker's bounds on `Containers` (docs/contract.md (Serial pipelines)).
pub const MAX_CONTAINERS: usize = 15;

/// How the containers of a model answer a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `PrimaryContainer`: one container answers.
    Single,
    /// `Containers` in `Serial` mode: an inference pipeline, each response feeding the next.
    Serial,
    /// `Containers` in `Direct` mode: each request names its container by hostname.
    Direct,
    /// A `PrimaryContainer` with `"Mode": "MultiModel"`: a multi-model endpoint. `ModelDataUrl`
    /// is a folder of `*.tar.gz`; each request names its model in
    /// `X-Amzn-SageMaker-Target-Model`, which the router loads on first use.
    MultiModel,
}

/// One `ContainerDefinition`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// `ContainerHostname`, else the name SageMaker gives: `container-<i>` (1-based) in a list of
    /// containers, `primary` for a `PrimaryContainer`.
    pub name: String,
    /// `Image`: a stage library path (a `file://` URI already turned into a path) or a Docker
    /// image reference, as given.
    pub image: String,
    /// `ModelDataUrl` as a local path; `None` serves an empty model folder.
    pub model_data: Option<PathBuf>,
    /// `Environment`.
    pub environment: BTreeMap<String, String>,
}

/// A whole CreateModel request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// `ModelName`, used only in messages.
    pub name: Option<String>,
    pub mode: Mode,
    pub containers: Vec<ContainerSpec>,
}

impl ModelSpec {
    /// Reads a CreateModel request document from a file.
    pub fn from_file(path: &Path) -> anyhow::Result<ModelSpec> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        ModelSpec::from_request(&text, &path.display().to_string())
    }

    /// Reads a CreateModel request document; `origin` names it in errors.
    pub fn from_request(text: &str, origin: &str) -> anyhow::Result<ModelSpec> {
        let request: Value =
            serde_json::from_str(text).with_context(|| format!("{origin} is not valid JSON"))?;
        check_members(&request, &CREATE_MODEL, origin).map_err(anyhow::Error::msg)?;
        let request = request
            .as_object()
            .ok_or_else(|| anyhow!("{origin} must hold a JSON object (a CreateModel request)"))?;
        let name = opt_str(request, "ModelName", origin)?;
        let primary = opt_object(request, "PrimaryContainer", origin)?;
        let list = match request.get("Containers") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(items),
            Some(other) => bail!("{origin}: Containers must be a list of container definitions, got {other}"),
        };
        let mode_field = opt_object(request, "InferenceExecutionConfig", origin)?
            .map(|config| opt_str(config, "Mode", &format!("{origin}: InferenceExecutionConfig")))
            .transpose()?
            .flatten();
        let (mode, containers) = match (primary, list) {
            (Some(_), Some(_)) => {
                bail!("{origin}: give either PrimaryContainer or Containers, not both")
            }
            (None, None) => bail!(
                "{origin}: no container: give PrimaryContainer (one stage) or Containers (a pipeline of 2 to \
                 {MAX_CONTAINERS})"
            ),
            (Some(primary), None) => {
                if let Some(mode) = &mode_field {
                    bail!(
                        "{origin}: InferenceExecutionConfig.Mode '{mode}' applies to Containers; a \
                         PrimaryContainer model has one container"
                    );
                }
                let at = format!("{origin}: PrimaryContainer");
                let mode = match opt_str(primary, "Mode", &at)?.as_deref() {
                    Some("MultiModel") => Mode::MultiModel,
                    _ => Mode::Single,
                };
                let container = container(primary, "primary", &at)?;
                if mode == Mode::MultiModel && container.model_data.is_none() {
                    bail!(
                        "{at}: a MultiModel container needs ModelDataUrl: the folder (file://…/models/) \
                         holding its model.tar.gz files"
                    );
                }
                (mode, vec![container])
            }
            (None, Some(items)) => {
                let mode = match mode_field.as_deref() {
                    None | Some("Serial") => Mode::Serial,
                    Some("Direct") => Mode::Direct,
                    Some(other) => bail!(
                        "{origin}: InferenceExecutionConfig.Mode must be Serial or Direct, got '{other}'"
                    ),
                };
                let containers = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let at = format!("{origin}: Containers[{i}]");
                        let item = item
                            .as_object()
                            .ok_or_else(|| anyhow!("{at} must be an object (a container definition)"))?;
                        if opt_str(item, "Mode", &at)?.as_deref() == Some("MultiModel") {
                            bail!(
                                "{at}: Mode MultiModel is for a PrimaryContainer, not a container of a list"
                            );
                        }
                        container(item, &format!("container-{}", i + 1), &at)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                (mode, containers)
            }
        };
        let spec = ModelSpec {
            name,
            mode,
            containers,
        };
        spec.check().map_err(|e| anyhow!("{origin}: {e}"))?;
        Ok(spec)
    }

    /// The model of `--stage LIB [--model TAR]` flags, in pipeline order: one stage is a
    /// `PrimaryContainer`, more are a serial pipeline named `container-1`, `container-2`, ...
    pub fn from_flags(stages: &[String], models: &[String]) -> anyhow::Result<ModelSpec> {
        if stages.is_empty() {
            bail!(
                "nothing to deploy: give --request MODEL.json, or --stage LIB (with --model TAR) per stage"
            );
        }
        if !models.is_empty() && models.len() != stages.len() {
            bail!(
                "{} --model given for {} --stage: give one --model per --stage, in the same order (or none \
                 for stages without a model)",
                models.len(),
                stages.len()
            );
        }
        let single = stages.len() == 1;
        let containers = stages
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let model_data = models
                    .get(i)
                    .map(|m| model_data_url_to_path(m).with_context(|| format!("--model '{m}'")))
                    .transpose()?;
                Ok(ContainerSpec {
                    name: if single {
                        "primary".into()
                    } else {
                        format!("container-{}", i + 1)
                    },
                    image: image_text(stage),
                    model_data,
                    environment: BTreeMap::new(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let spec = ModelSpec {
            name: None,
            mode: if single { Mode::Single } else { Mode::Serial },
            containers,
        };
        spec.check()?;
        Ok(spec)
    }

    /// The checks SageMaker makes on the container list as a whole.
    fn check(&self) -> anyhow::Result<()> {
        let n = self.containers.len();
        if matches!(self.mode, Mode::Serial | Mode::Direct) && !(2..=MAX_CONTAINERS).contains(&n) {
            bail!(
                "Containers holds {n} container(s); a model of several containers has 2 to {MAX_CONTAINERS} \
                 (for one, use PrimaryContainer)"
            );
        }
        let mut seen = BTreeSet::new();
        for c in &self.containers {
            if !seen.insert(c.name.as_str()) {
                bail!(
                    "two containers are named '{}': each ContainerHostname must be unique",
                    c.name
                );
            }
        }
        Ok(())
    }

    /// `container-1 -> container-2` for a pipeline, the container's name otherwise.
    pub fn label(&self) -> String {
        let separator = if self.mode == Mode::Direct { ", " } else { " -> " };
        self.containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(separator)
    }
}

/// One `ContainerDefinition`; `default_name` is used when it has no `ContainerHostname`.
fn container(def: &Map<String, Value>, default_name: &str, at: &str) -> anyhow::Result<ContainerSpec> {
    for unsupported in [
        "ModelPackageName",
        "ModelDataSource",
        "InferenceSpecificationName",
    ] {
        if def.get(unsupported).is_some_and(|v| !v.is_null()) {
            bail!("{at}: {unsupported} is not supported locally; give Image and ModelDataUrl");
        }
    }
    if let Some(mode) = opt_str(def, "Mode", at)? {
        if mode != "SingleModel" && mode != "MultiModel" {
            bail!("{at}: Mode must be SingleModel or MultiModel, got '{mode}'");
        }
    }
    let name = match opt_str(def, "ContainerHostname", at)? {
        Some(hostname) => {
            check_hostname(&hostname).map_err(|e| anyhow!("{at}: ContainerHostname '{hostname}' {e}"))?;
            hostname
        }
        None => default_name.to_string(),
    };
    let image = opt_str(def, "Image", at)?
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| {
            anyhow!(
                "{at}: Image is missing: give the path of the stage library (lib<name>.so) or a Docker \
                 image (name:tag)"
            )
        })?;
    let model_data = opt_str(def, "ModelDataUrl", at)?
        .map(|url| model_data_url_to_path(&url).with_context(|| format!("{at}: ModelDataUrl")))
        .transpose()?;
    Ok(ContainerSpec {
        name,
        image: image_text(&image),
        model_data,
        environment: string_map(def, "Environment", at)?,
    })
}

/// `Image` with a `file://` URI turned into a path; anything else (a path, an image reference)
/// as given, trimmed.
fn image_text(image: &str) -> String {
    let image = image.trim();
    if image.starts_with("file://") {
        if let Ok(path) = model_data_url_to_path(image) {
            return path.display().to_string();
        }
    }
    image.to_string()
}

/// SageMaker's pattern for a hostname: letters, digits and inner hyphens, at most 63 characters.
pub(crate) fn check_hostname(name: &str) -> Result<(), &'static str> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 63 {
        return Err("must be 1 to 63 characters long");
    }
    if !bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
        return Err("may hold only letters, digits and hyphens");
    }
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err("must begin and end with a letter or a digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> anyhow::Result<ModelSpec> {
        ModelSpec::from_request(json, "model.json")
    }

    fn error(json: &str) -> String {
        format!("{:#}", parse(json).unwrap_err())
    }

    #[test]
    fn primary_container() {
        let spec = parse(
            r#"{"ModelName": "m", "ExecutionRoleArn": "arn:aws:iam::1:role/r",
                "PrimaryContainer": {"Image": "target/release/libecho.so",
                  "ModelDataUrl": "file:///models/echo/model.tar.gz",
                  "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}}}"#,
        )
        .unwrap();
        assert_eq!(spec.mode, Mode::Single);
        assert_eq!(spec.name.as_deref(), Some("m"));
        assert_eq!(
            spec.containers,
            [ContainerSpec {
                name: "primary".into(),
                image: "target/release/libecho.so".into(),
                model_data: Some("/models/echo/model.tar.gz".into()),
                environment: [("SAGEMAKER_MODEL_SERVER_WORKERS".to_string(), "2".to_string())].into(),
            }]
        );
    }

    #[test]
    fn containers_are_a_serial_pipeline_by_default_and_named_by_position() {
        let spec = parse(
            r#"{"Containers": [{"Image": "a.so"}, {"Image": "file:///b.so", "ContainerHostname": "ll"},
                               {"Image": "c.so"}]}"#,
        )
        .unwrap();
        assert_eq!(spec.mode, Mode::Serial);
        let names: Vec<_> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["container-1", "ll", "container-3"]);
        assert_eq!(spec.containers[1].image, "/b.so");
        // An image reference is kept as written; what it is is decided when the endpoint starts.
        let primary =
            parse(r#"{"PrimaryContainer": {"Image": " 123.dkr.ecr.eu-west-1.amazonaws.com/ll:1 "}}"#)
                .unwrap();
        assert_eq!(
            primary.containers[0].image,
            "123.dkr.ecr.eu-west-1.amazonaws.com/ll:1"
        );
        assert_eq!(spec.containers[0].model_data, None);
        assert_eq!(spec.label(), "container-1 -> ll -> container-3");
    }

    #[test]
    fn multi_model() {
        let spec = parse(
            r#"{"PrimaryContainer": {"Image": "a.so", "Mode": "MultiModel",
                 "ModelDataUrl": "file:///srv/models/"}}"#,
        )
        .unwrap();
        assert_eq!(spec.mode, Mode::MultiModel);
        assert_eq!(spec.containers[0].model_data, Some("/srv/models/".into()));
    }

    #[test]
    fn direct_mode() {
        let spec = parse(
            r#"{"InferenceExecutionConfig": {"Mode": "Direct"},
                "Containers": [{"Image": "a.so", "ContainerHostname": "a"},
                               {"Image": "b.so", "ContainerHostname": "b"}]}"#,
        )
        .unwrap();
        assert_eq!(spec.mode, Mode::Direct);
        assert_eq!(spec.label(), "a, b");
    }

    #[test]
    fn bad_requests_say_what_to_fix() {
        assert!(error("[1]").contains("must hold a JSON object"));
        assert!(error("{").contains("not valid JSON"));
        assert!(error("{}").contains("no container"));
        assert!(error(r#"{"PrimaryContainer": {"Image": "a"}, "Containers": []}"#).contains("not both"));
        assert!(error(r#"{"Containers": [{"Image": "a"}]}"#).contains("2 to 15"));
        let sixteen = format!(
            r#"{{"Containers": [{}]}}"#,
            vec![r#"{"Image": "a"}"#; 16].join(",")
        );
        assert!(error(&sixteen).contains("holds 16"));
        assert!(error(r#"{"PrimaryContainer": {}}"#).contains("PrimaryContainer: Image is missing"));
        assert!(error(r#"{"Containers": [{"Image": "a"}, 7]}"#).contains("Containers[1] must be an object"));
        let e = error(r#"{"PrimaryContainer": {"Image": "a", "Environment": {"N": 3}}}"#);
        assert!(
            e.contains("PrimaryContainer: Environment['N'] must be a string"),
            "{e}"
        );
        let e =
            error(r#"{"InferenceExecutionConfig": {"Mode": "Parallel"}, "Containers": [{"Image": "a"}]}"#);
        assert!(e.contains("must be Serial or Direct, got 'Parallel'"), "{e}");
        let e =
            error(r#"{"InferenceExecutionConfig": {"Mode": "Serial"}, "PrimaryContainer": {"Image": "a"}}"#);
        assert!(e.contains("applies to Containers"), "{e}");
        let e = error(
            r#"{"Containers": [{"Image": "a", "ContainerHostname": "x"}, {"Image": "b", "ContainerHostname": "x"}]}"#,
        );
        assert!(e.contains("two containers are named 'x'"), "{e}");
        let e = error(r#"{"PrimaryContainer": {"Image": "a", "ContainerHostname": "-x"}}"#);
        assert!(e.contains("ContainerHostname '-x' must begin and end"), "{e}");
        let e = error(r#"{"PrimaryContainer": {"Image": "a", "ModelDataUrl": "s3://b/m.tar.gz"}}"#);
        assert!(e.contains("ModelDataUrl") && e.contains("S3"), "{e}");
        let e = error(r#"{"PrimaryContainer": {"Image": "a", "Mode": "Batch"}}"#);
        assert!(e.contains("SingleModel or MultiModel, got 'Batch'"), "{e}");
        let e = error(r#"{"PrimaryContainer": {"Image": "a", "Mode": "MultiModel"}}"#);
        assert!(e.contains("needs ModelDataUrl"), "{e}");
        let e = error(r#"{"Containers": [{"Image": "a", "Mode": "MultiModel"}, {"Image": "b"}]}"#);
        assert!(
            e.contains("Containers[0]: Mode MultiModel is for a PrimaryContainer"),
            "{e}"
        );
    }

    #[test]
    fn flags() {
        let spec = ModelSpec::from_flags(&["a.so".into()], &[]).unwrap();
        assert_eq!(spec.mode, Mode::Single);
        assert_eq!(spec.containers[0].name, "primary");
        let spec = ModelSpec::from_flags(
            &["a.so".into(), "b.so".into()],
            &["file:///m/a.tar.gz".into(), "b.tgz".into()],
        )
        .unwrap();
        assert_eq!(spec.mode, Mode::Serial);
        assert_eq!(spec.containers[1].name, "container-2");
        assert_eq!(spec.containers[0].model_data, Some("/m/a.tar.gz".into()));
        assert_eq!(spec.containers[1].model_data, Some("b.tgz".into()));
        let e = ModelSpec::from_flags(&["a.so".into(), "b.so".into()], &["m.tar.gz".into()]).unwrap_err();
        assert!(e.to_string().contains("1 --model given for 2 --stage"), "{e}");
        assert!(ModelSpec::from_flags(&[], &[]).is_err());
    }
}
