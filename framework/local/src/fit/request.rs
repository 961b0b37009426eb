//! The training job `modelstage fit` runs: read from a CreateTrainingJob request document and the
//! command-line flags, checked as SageMaker checks a request.

use crate::request_doc::{check_members, opt_object, opt_str, string_map};
use crate::request_shapes::CREATE_TRAINING_JOB;
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

use super::image::TrainingImage;
use crate::tarball::model_data_url_to_path;

/// One data channel: `/opt/ml/input/data/<name>` gets a copy of `source` (a file or a folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub source: PathBuf,
    pub content_type: Option<String>,
    pub input_mode: String,
}

/// What a local training job needs, every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingJob {
    pub name: String,
    /// `AlgorithmSpecification.TrainingImage`: a stage library or a Docker image.
    pub image: TrainingImage,
    /// `HyperParameters`: strings, as the API sends them.
    pub hyperparameters: BTreeMap<String, String>,
    pub channels: Vec<Channel>,
    /// `OutputDataConfig.S3OutputPath`, as a local folder.
    pub output_path: PathBuf,
    /// `Environment`: set in the training container.
    pub environment: BTreeMap<String, String>,
}

/// A job being assembled from a request and flags; `finish` checks it and fills the defaults.
#[derive(Debug, Clone, Default)]
pub struct JobSpec {
    pub name: Option<String>,
    /// A stage library's path or an image reference, routed by `finish`.
    pub stage: Option<String>,
    pub hyperparameters: BTreeMap<String, String>,
    pub channels: Vec<Channel>,
    pub output_path: Option<PathBuf>,
    pub environment: BTreeMap<String, String>,
    input_mode: Option<String>,
}

impl JobSpec {
    /// Reads the fields of a CreateTrainingJob request that a local job uses, after checking
    /// every key against the API's members. Fields about the cloud (RoleArn,
    /// StoppingCondition, VpcConfig, ...) are accepted and ignored.
    pub fn from_request(text: &str, origin: &str) -> anyhow::Result<JobSpec> {
        let request: Value =
            serde_json::from_str(text).with_context(|| format!("{origin} is not valid JSON"))?;
        check_members(&request, &CREATE_TRAINING_JOB, origin).map_err(anyhow::Error::msg)?;
        let request = request
            .as_object()
            .ok_or_else(|| anyhow!("{origin} must hold a JSON object (a CreateTrainingJob request)"))?;
        let mut spec = JobSpec {
            name: opt_str(request, "TrainingJobName", origin)?,
            ..JobSpec::default()
        };

        let algorithm = opt_object(request, "AlgorithmSpecification", origin)?;
        if let Some(algorithm) = algorithm {
            spec.stage = opt_str(algorithm, "TrainingImage", origin)?;
            spec.input_mode = opt_str(algorithm, "TrainingInputMode", origin)?;
        }
        spec.hyperparameters = string_map(request, "HyperParameters", origin)?;
        spec.environment = string_map(request, "Environment", origin)?;

        if let Some(resources) = opt_object(request, "ResourceConfig", origin)? {
            if let Some(count) = resources
                .get("InstanceCount")
                .and_then(Value::as_u64)
                .filter(|n| *n > 1)
            {
                bail!(
                    "{origin}: ResourceConfig.InstanceCount is {count}; a local training job runs one host"
                );
            }
        }
        if let Some(output) = opt_object(request, "OutputDataConfig", origin)? {
            if let Some(path) = opt_str(output, "S3OutputPath", origin)? {
                spec.output_path = Some(
                    model_data_url_to_path(&path)
                        .with_context(|| format!("{origin}: OutputDataConfig.S3OutputPath"))?,
                );
            }
        }
        match request.get("InputDataConfig") {
            None | Some(Value::Null) => {}
            Some(Value::Array(channels)) => {
                for (i, channel) in channels.iter().enumerate() {
                    let at = format!("{origin}: InputDataConfig[{i}]");
                    spec.channels.push(channel_from_request(channel, &at)?);
                }
            }
            Some(_) => bail!("{origin}: InputDataConfig must be a list of channels"),
        }
        Ok(spec)
    }

    /// `--stage`, `--channel`, `--content-type`, `--hyperparameter`, `--output-path`, `--job-name`:
    /// each overrides or adds to what the request said.
    pub fn apply_flags(&mut self, flags: &super::FitArgs) -> anyhow::Result<()> {
        if let Some(stage) = &flags.stage {
            self.stage = Some(stage.clone());
        }
        if let Some(name) = &flags.job_name {
            self.name = Some(name.clone());
        }
        if let Some(path) = &flags.output_path {
            self.output_path = Some(model_data_url_to_path(path).context("--output-path")?);
        }
        for pair in &flags.hyperparameters {
            let (key, value) = split_pair(pair, "--hyperparameter", "KEY=VALUE")?;
            self.hyperparameters.insert(key.to_string(), value.to_string());
        }
        for pair in &flags.channels {
            let (name, location) = split_pair(pair, "--channel", "NAME=PATH")?;
            let source = model_data_url_to_path(location).with_context(|| format!("--channel {pair}"))?;
            self.channels.retain(|c| c.name != name);
            self.channels.push(Channel {
                name: name.to_string(),
                source,
                content_type: None,
                input_mode: String::new(),
            });
        }
        for pair in &flags.content_types {
            let (name, content_type) = split_pair(pair, "--content-type", "CHANNEL=TYPE")?;
            let channel = self
                .channels
                .iter_mut()
                .find(|c| c.name == name)
                .ok_or_else(|| anyhow!("--content-type {pair}: there is no channel '{name}'"))?;
            channel.content_type = Some(content_type.to_string());
        }
        Ok(())
    }

    /// Checks the job and fills the defaults: the input mode `File`, and a timestamped job name
    /// made from the stage's file name or the image's name when none was given.
    pub fn finish(self, now_millis: u128) -> anyhow::Result<TrainingJob> {
        let reference = self.stage.ok_or_else(|| {
            anyhow!("no stage to train: give --stage LIB|IMAGE or AlgorithmSpecification.TrainingImage")
        })?;
        let image = TrainingImage::from_reference(&reference);
        if let Some(library) = image.library() {
            if !library.is_file() {
                bail!(
                    "the stage library {} does not exist; give a stage's .so file, or a Docker \
                     image on this machine as NAME:TAG (e.g. modelstage/featurizer:latest)",
                    library.display()
                );
            }
        }
        let name = match self.name {
            Some(name) => name,
            None => super::job_name::timestamped(&image.base_name(), now_millis),
        };
        super::job_name::check(&name)?;
        let output_path = self.output_path.ok_or_else(|| {
            anyhow!("no output location: give --output-path DIR or OutputDataConfig.S3OutputPath")
        })?;

        let default_mode = self.input_mode.unwrap_or_else(|| "File".to_string());
        let mut seen = std::collections::BTreeSet::new();
        let mut channels = Vec::with_capacity(self.channels.len());
        for mut channel in self.channels {
            check_channel_name(&channel.name)?;
            if !seen.insert(channel.name.clone()) {
                bail!("the channel '{}' is given twice", channel.name);
            }
            if channel.input_mode.is_empty() {
                channel.input_mode = default_mode.clone();
            }
            match channel.input_mode.as_str() {
                "File" | "FastFile" => {}
                "Pipe" => bail!(
                    "channel '{}': Pipe mode is not supported by a local training job (as in the \
                     SageMaker SDK's local mode); use File",
                    channel.name
                ),
                other => bail!(
                    "channel '{}': unknown input mode '{other}' (File, FastFile or Pipe)",
                    channel.name
                ),
            }
            if !channel.source.exists() {
                bail!(
                    "channel '{}': {} does not exist",
                    channel.name,
                    channel.source.display()
                );
            }
            channels.push(channel);
        }
        for key in self.hyperparameters.keys() {
            if key.is_empty() {
                bail!("a hyperparameter has an empty name");
            }
        }
        Ok(TrainingJob {
            name,
            image,
            hyperparameters: self.hyperparameters,
            channels,
            output_path,
            environment: self.environment,
        })
    }
}

fn channel_from_request(channel: &Value, at: &str) -> anyhow::Result<Channel> {
    let channel = channel
        .as_object()
        .ok_or_else(|| anyhow!("{at} must be an object"))?;
    let name = opt_str(channel, "ChannelName", at)?.ok_or_else(|| anyhow!("{at} has no ChannelName"))?;
    let at = format!("{at} (channel '{name}')");
    let source = opt_object(channel, "DataSource", &at)?
        .and_then(|ds| ds.get("S3DataSource"))
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("{at}: give DataSource.S3DataSource.S3Uri (a file:// URI or a path)"))?;
    if let Some(kind) = opt_str(source, "S3DataType", &at)? {
        if kind != "S3Prefix" {
            bail!("{at}: S3DataType '{kind}' is not supported locally; use S3Prefix");
        }
    }
    let uri = opt_str(source, "S3Uri", &at)?
        .ok_or_else(|| anyhow!("{at}: DataSource.S3DataSource has no S3Uri"))?;
    if let Some(compression) = opt_str(channel, "CompressionType", &at)? {
        if compression != "None" {
            bail!("{at}: CompressionType '{compression}' is not supported locally; unpack the data first");
        }
    }
    Ok(Channel {
        source: model_data_url_to_path(&uri).with_context(|| at.clone())?,
        content_type: opt_str(channel, "ContentType", &at)?,
        input_mode: opt_str(channel, "InputMode", &at)?.unwrap_or_default(),
        name,
    })
}

/// SageMaker's channel-name pattern `[A-Za-z0-9.\-_]+`, at most 64 characters. It also keeps the
/// name a single path component under `input/data/`.
fn check_channel_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        bail!("'{name}' is not a valid channel name: use 1 to 64 letters, digits, '.', '-' or '_'")
    }
}

fn split_pair<'a>(pair: &'a str, flag: &str, shape: &str) -> anyhow::Result<(&'a str, &'a str)> {
    match pair.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key, value)),
        _ => bail!("{flag} '{pair}' is not of the form {shape}"),
    }
}
