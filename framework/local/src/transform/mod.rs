//! `modelstage transform`: a local CreateTransformJob. Reads SageMaker's
//! request document (or quick flags), sends the input files through a model
//! endpoint split and batched as the service does (SplitType, BatchStrategy,
//! MaxPayloadInMB, MaxConcurrentTransforms, DataProcessing), and writes one
//! `<input>.out` per input file, assembled as the service assembles it.
//!
//! Modules: [`job`] the request document, [`inputs`] which files and where
//! outputs go, [`split`] streaming record readers, [`batch`] mini-batches,
//! [`jsonpath`] + [`dataprocessing`] (on [`json`]) filters and joins, [`client`] the model
//! endpoint, [`assemble`] output files, [`run`] the driver, [`progress`], and [`error`] why a
//! job or a file failed.

pub mod assemble;
pub mod batch;
pub mod client;
pub mod dataprocessing;
pub mod error;
pub mod inputs;
pub mod job;
pub mod json;
pub mod jsonpath;
pub mod progress;
pub mod run;
pub mod split;

use std::path::PathBuf;

use std::time::Duration;

use serde::de::DeserializeOwned;

pub use client::{ExecutionParameters, HttpInvoker, InvocationError, Invoker, Reply};
pub use error::TransformError;
pub use job::TransformJob;
pub use run::{run_job, JobReport, Settings};

use crate::fit::stop::signal_name;
use crate::fit::Stop;
use crate::CommandError;
use job::DataProcessing;
use progress::Progress;

/// How long a freshly started endpoint may take to answer `/ping`.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// Arguments of `modelstage transform`. Flags override the request document.
#[derive(clap::Args, Debug)]
pub struct TransformArgs {
    /// A CreateTransformJob request document (JSON), as `aws sagemaker create-transform-job` takes it.
    #[arg(long, value_name = "JOB.json")]
    pub request: Option<PathBuf>,
    /// A CreateModel request document: start the model's stages locally for this job.
    #[arg(long, value_name = "MODEL.json", conflicts_with = "endpoint")]
    pub model: Option<PathBuf>,
    /// A running endpoint to send the records to.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Input file, folder or name prefix (TransformInput S3Uri; file:// or a path).
    #[arg(long, value_name = "PATH")]
    pub input: Option<String>,
    /// Output folder (TransformOutput S3OutputPath).
    #[arg(long, value_name = "DIR")]
    pub output: Option<String>,
    /// Content-Type of every request (TransformInput ContentType).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Accept of every request (TransformOutput Accept).
    #[arg(long, value_name = "TYPE")]
    pub accept: Option<String>,
    /// None, Line, RecordIO or TFRecord.
    #[arg(long, value_name = "SPLIT")]
    pub split_type: Option<String>,
    /// None or Gzip.
    #[arg(long, value_name = "COMPRESSION")]
    pub compression_type: Option<String>,
    /// SingleRecord or MultiRecord (BatchStrategy).
    #[arg(long, value_name = "STRATEGY")]
    pub strategy: Option<String>,
    /// MaxPayloadInMB (0 = unlimited).
    #[arg(long, value_name = "N")]
    pub max_payload_mb: Option<u32>,
    /// MaxConcurrentTransforms: requests in flight.
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<u32>,
    /// None or Line (AssembleWith).
    #[arg(long, value_name = "ASSEMBLY")]
    pub assemble_with: Option<String>,
    /// DataProcessing InputFilter (JSONPath).
    #[arg(long, value_name = "JSONPATH")]
    pub input_filter: Option<String>,
    /// DataProcessing JoinSource: None or Input.
    #[arg(long, value_name = "SOURCE")]
    pub join_source: Option<String>,
    /// DataProcessing OutputFilter (JSONPath).
    #[arg(long, value_name = "JSONPATH")]
    pub output_filter: Option<String>,
    /// Extra container environment (the job's Environment), repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

/// The container environment a job implies (docs/contract.md (Batch transform)): `SAGEMAKER_BATCH`,
/// the three batch variables only when the request sets them, then the
/// job's `Environment`.
pub fn batch_environment(job: &TransformJob) -> Vec<(String, String)> {
    let mut env = vec![("SAGEMAKER_BATCH".to_string(), "true".to_string())];
    if let Some(mb) = job.max_payload_in_mb {
        env.push(("SAGEMAKER_MAX_PAYLOAD_IN_MB".into(), mb.to_string()));
    }
    if let Some(strategy) = job.batch_strategy {
        env.push(("SAGEMAKER_BATCH_STRATEGY".into(), strategy.env_name().into()));
    }
    if let Some(n) = job.max_concurrent_transforms {
        env.push(("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS".into(), n.to_string()));
    }
    env.extend(job.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// `modelstage transform`: the error names every input file that failed.
pub fn run(args: TransformArgs) -> Result<(), CommandError> {
    match execute(args) {
        Ok(JobReport {
            stopped_by: Some(signal),
            succeeded,
            files,
            ..
        }) => Err(CommandError::Stopped {
            signal,
            message: format!(
                "error: the transform job was stopped by {}: {succeeded} of {files} input files \
                 are done; the others have no output",
                signal_name(signal),
            ),
        }),
        Ok(report) if report.failures.is_empty() => Ok(()),
        Ok(report) => {
            let mut message = String::new();
            for failure in &report.failures {
                message.push_str(&format!(
                    "error: {}: {}\n",
                    failure.file.display(),
                    failure.message
                ));
            }
            message.push_str(&format!(
                "error: the transform job failed: {} of {} input files produced no output",
                report.failures.len(),
                report.files
            ));
            Err(CommandError::JobFailed(message))
        }
        Err(error) => Err(CommandError::Transform(error)),
    }
}

fn execute(args: TransformArgs) -> Result<JobReport, TransformError> {
    let job = build_job(&args)?;
    job.validate()?;
    // Ctrl-C and SIGTERM stop the job between mini-batches (see [`run`]),
    // and then the model.
    let stop = Stop::on_signals().map_err(TransformError::Signals)?;
    // The model runs for as long as the job does: dropping it stops every
    // container it started.
    let mut running = None;
    let endpoint = match (&args.model, &args.endpoint) {
        (Some(model), _) => {
            let started = crate::deploy::start(model, &batch_environment(&job)).map_err(|error| {
                TransformError::StartModel {
                    model: model.clone(),
                    error,
                }
            })?;
            let url = started.url().to_string();
            running = Some(started);
            url
        }
        (None, Some(url)) => url.clone(),
        (None, None) => return Err(TransformError::NoModel),
    };
    let mut progress = if args.quiet {
        Progress::hidden()
    } else {
        Progress::auto()
    };
    let report = run_against(&job, &endpoint, &mut progress, &stop)?;
    drop(running);
    if !args.quiet && report.stopped_by.is_none() {
        let s = report.settings;
        eprintln!(
            "transform: {} of {} files, {} records, {:.1} MB in {:.1} s \
             (BatchStrategy={:?}, MaxPayloadInMB={}, MaxConcurrentTransforms={})",
            report.succeeded,
            report.files,
            report.records,
            report.input_bytes as f64 / 1e6,
            report.elapsed.as_secs_f64(),
            s.batch_strategy,
            s.max_payload_in_mb,
            s.max_concurrent_transforms
        );
    }
    Ok(report)
}

/// Runs a validated job against the endpoint at `endpoint` (a URL), once it answers `/ping`;
/// `stop` ends it between mini-batches.
pub fn run_against(
    job: &TransformJob,
    endpoint: &str,
    progress: &mut Progress,
    stop: &Stop,
) -> Result<JobReport, TransformError> {
    let invoker = HttpInvoker::new(
        endpoint,
        Duration::from_secs(job.invocations_timeout_seconds().into()),
        job.invocations_max_retries(),
    )?;
    invoker.wait_ready(READY_WITHIN)?;
    run_job(job, &invoker, progress, stop)
}

/// The request document with the flags applied over it.
pub fn build_job(args: &TransformArgs) -> Result<TransformJob, TransformError> {
    let mut job = match &args.request {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| TransformError::ReadRequest {
                path: path.clone(),
                error,
            })?;
            TransformJob::from_request(&text, &path.display().to_string())?
        }
        None => TransformJob::default(),
    };
    let input = &mut job.transform_input;
    if let Some(uri) = &args.input {
        input.data_source.s3_data_source.s3_uri = uri.clone();
    }
    set(&mut input.content_type, &args.content_type);
    set_parsed(&mut input.split_type, &args.split_type, "--split-type")?;
    set_parsed(
        &mut input.compression_type,
        &args.compression_type,
        "--compression-type",
    )?;
    let output = &mut job.transform_output;
    if let Some(dir) = &args.output {
        output.s3_output_path = dir.clone();
    }
    set(&mut output.accept, &args.accept);
    set_parsed(&mut output.assemble_with, &args.assemble_with, "--assemble-with")?;
    set_parsed(&mut job.batch_strategy, &args.strategy, "--strategy")?;
    if args.max_payload_mb.is_some() {
        job.max_payload_in_mb = args.max_payload_mb;
    }
    if args.max_concurrent.is_some() {
        job.max_concurrent_transforms = args.max_concurrent;
    }
    if args.input_filter.is_some() || args.join_source.is_some() || args.output_filter.is_some() {
        let processing = job.data_processing.get_or_insert_with(DataProcessing::default);
        set(&mut processing.input_filter, &args.input_filter);
        set(&mut processing.output_filter, &args.output_filter);
        set_parsed(&mut processing.join_source, &args.join_source, "--join-source")?;
    }
    for pair in &args.env {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| TransformError::EnvFlag(pair.clone()))?;
        job.environment.insert(name.to_string(), value.to_string());
    }
    Ok(job)
}

fn set(field: &mut Option<String>, flag: &Option<String>) {
    if flag.is_some() {
        field.clone_from(flag);
    }
}

/// Parses a flag with the request document's spelling (`MultiRecord`, `Line`).
fn set_parsed<T: DeserializeOwned>(
    field: &mut Option<T>,
    flag: &Option<String>,
    name: &'static str,
) -> Result<(), TransformError> {
    if let Some(text) = flag {
        let value = serde_json::from_value(serde_json::Value::String(text.clone())).map_err(|error| {
            TransformError::Flag {
                flag: name,
                value: text.clone(),
                error,
            }
        })?;
        *field = Some(value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use job::{AssembleWith, BatchStrategy, JoinSource, SplitType};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TransformArgs,
    }

    fn args(line: &[&str]) -> TransformArgs {
        Cli::parse_from(std::iter::once("transform").chain(line.iter().copied())).args
    }

    #[test]
    fn flags_build_a_job() {
        let job = build_job(&args(&[
            "--input",
            "data",
            "--output",
            "out",
            "--content-type",
            "text/csv",
            "--split-type",
            "Line",
            "--strategy",
            "SingleRecord",
            "--max-payload-mb",
            "2",
            "--assemble-with",
            "Line",
            "--max-concurrent",
            "3",
            "--join-source",
            "Input",
            "--env",
            "A=b=c",
        ]))
        .unwrap();
        assert_eq!(job.transform_input.data_source.s3_data_source.s3_uri, "data");
        assert_eq!(job.split_type(), SplitType::Line);
        assert_eq!(job.batch_strategy, Some(BatchStrategy::SingleRecord));
        assert_eq!(job.assemble_with(), AssembleWith::Line);
        assert_eq!(job.join_source(), JoinSource::Input);
        assert_eq!(job.environment.get("A").map(String::as_str), Some("b=c"));
    }

    #[test]
    fn a_bad_flag_value_names_the_flag() {
        let err = build_job(&args(&["--split-type", "Lines"]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--split-type Lines: unknown variant"), "{err}");
    }

    #[test]
    fn batch_environment_passes_only_what_the_request_sets() {
        let mut job = TransformJob::default();
        assert_eq!(
            batch_environment(&job),
            vec![("SAGEMAKER_BATCH".to_string(), "true".to_string())]
        );
        job.max_payload_in_mb = Some(0);
        job.batch_strategy = Some(BatchStrategy::MultiRecord);
        job.max_concurrent_transforms = Some(4);
        job.environment.insert("MY_VAR".into(), "1".into());
        let names: Vec<String> = batch_environment(&job)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            names,
            [
                "SAGEMAKER_BATCH=true",
                "SAGEMAKER_MAX_PAYLOAD_IN_MB=0",
                "SAGEMAKER_BATCH_STRATEGY=MULTI_RECORD",
                "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS=4",
                "MY_VAR=1"
            ]
        );
    }
}
