//! CreateTrainingJob and StopTrainingJob: the job is read and run by the code behind
//! `modelstage fit` ([`crate::fit`]) on a thread of its own, while DescribeTrainingJob follows
//! it through the service's statuses: `InProgress` (secondary `Starting → Downloading → Training
//! → Uploading`, each in `SecondaryStatusTransitions`) and then `Completed`, `Failed` with the
//! container's `FailureReason`, or `Stopping → Stopped`.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::artifacts::Staging;
use super::ops::{begin_stop, Call};
use super::state::{failure_reason, Api};
use super::store::Kind;
use super::wire::{now, quote, ApiError};
use crate::fit::{self, JobEnd, JobSpec, Stop, TrainingJob};

const KIND: Kind = Kind::TrainingJob;

pub fn create(call: &Call) -> Result<Value, ApiError> {
    let name = call.str("TrainingJobName");
    let arn = call.arn(KIND, name);
    // Channels and the output path on S3 are staged in local folders.
    let mut local = call.body.clone();
    let staging = call.api.artifacts.training(name, call.region, &mut local)?;
    let created = now();
    let job = JobSpec::from_request(&Value::Object(local).to_string(), "CreateTrainingJob")
        .and_then(|spec| spec.finish((created * 1000.0) as u128))
        .map_err(|e| ApiError::validation(format!("{e:#}")))?;
    if call.api.store.get(KIND, name)?.is_some() {
        return Err(in_use(&arn));
    }
    call.api.check_capacity()?;
    let output_dir = fit::check_new_output(&job).map_err(|e| ApiError::validation(format!("{e:#}")))?;

    let mut description = call.body.clone();
    description.remove("Tags");
    description.insert("TrainingJobArn".into(), json!(arn));
    description.insert("TrainingJobStatus".into(), json!("InProgress"));
    description.insert("SecondaryStatus".into(), json!("Starting"));
    description.insert("CreationTime".into(), json!(created));
    description.insert("LastModifiedTime".into(), json!(created));
    description.insert(
        "SecondaryStatusTransitions".into(),
        json!([{ "Status": "Starting", "StartTime": created, "StatusMessage": message("Starting") }]),
    );
    if !call
        .api
        .store
        .insert(KIND, name, created, &Value::Object(description))?
    {
        return Err(in_use(&arn));
    }
    let stop = Stop::never();
    call.api.add_job(KIND, name, stop.clone());
    let api = Arc::clone(call.api);
    std::thread::spawn(move || run(&api, &job, &output_dir, &stop, staging));
    Ok(json!({ "TrainingJobArn": arn }))
}

pub fn stop(call: &Call) -> Result<Value, ApiError> {
    let name = begin_stop(call, KIND)?;
    call.api.stop_job(KIND, name);
    Ok(json!({}))
}

fn in_use(arn: &str) -> ApiError {
    ApiError::in_use(format!(
        "Training job names must be unique within an AWS account and region, and a training job \
         with this name already exists ({arn})"
    ))
}

/// The job's thread: downloads its channels on S3, lays out its tree, runs its container, packs
/// its artifacts and uploads them when its output path is on S3.
fn run(api: &Api, job: &TrainingJob, output_dir: &std::path::Path, stop: &Stop, mut staging: Staging) {
    let name = job.name.as_str();
    transition(api, name, "Downloading");
    let result = (|| {
        fit::check_runnable(&job.image)?;
        staging.fetch(&api.artifacts)?;
        let tree = fit::prepare(job, stop)?;
        let end = fit::run_in_tree(tree.base(), job, output_dir, stop, &mut |phase| {
            transition(api, name, phase)
        });
        if let Err(e) = tree.remove() {
            log::warn!("{}", format!("{e:#}").escape_debug());
        }
        end
    })();
    api.end_job(KIND, name);
    if api.shutting_down() {
        // Left InProgress: the next start marks it interrupted.
        return;
    }
    let (status, reason, model) = match result {
        Ok(JobEnd::Completed { model, .. }) => ("Completed", None, Some(model)),
        Ok(JobEnd::Failed(reason)) => ("Failed", Some(reason), None),
        Ok(JobEnd::Stopped { .. }) => ("Stopped", None, None),
        Err(_) if stop.requested() => ("Stopped", None, None),
        Err(e) => ("Failed", Some(format!("{e:#}")), None),
    };
    let (status, reason, model) = match model.map(|m| (staging.publish(&api.artifacts), m)) {
        Some((Err(e), _)) => (
            "Failed",
            Some(format!("cannot upload the model artifacts: {e}")),
            None,
        ),
        Some((Ok(()), m)) => (status, reason, Some(m)),
        None => (status, reason, None),
    };
    log::info!("training job {} {}", quote(name), status.to_ascii_lowercase());
    // The artifacts are recorded before the status: a client that sees Completed reads them.
    if let Some(model) = model {
        let location = staging
            .s3_location(&model)
            .unwrap_or_else(|| format!("file://{}", model.display()));
        api.record(KIND, name, |d| {
            d.insert("ModelArtifacts".into(), json!({ "S3ModelArtifacts": location }));
        });
    }
    finish(api, name, status, reason.as_deref());
}

/// The service's message for each secondary status.
fn message(status: &str) -> &'static str {
    match status {
        "Starting" => "Preparing the instances for training",
        "Downloading" => "Downloading input data",
        "Training" => "Training image download completed. Training in progress.",
        "Uploading" => "Uploading generated training model",
        "Completed" => "Training job completed",
        "Stopped" => "The job was stopped",
        _ => "Training job failed",
    }
}

/// Closes the open secondary status and opens `status`.
fn push_transition(d: &mut Map<String, Value>, status: &str, at: f64) {
    let transitions = d.entry("SecondaryStatusTransitions").or_insert_with(|| json!([]));
    if let Some(list) = transitions.as_array_mut() {
        if let Some(open) = list.last_mut() {
            open["EndTime"] = json!(at);
        }
        list.push(json!({ "Status": status, "StartTime": at, "StatusMessage": message(status) }));
    }
    d.insert("SecondaryStatus".into(), json!(status));
    d.insert("LastModifiedTime".into(), json!(at));
}

fn transition(api: &Api, name: &str, status: &'static str) {
    let at = now();
    api.record(KIND, name, |d| {
        if status == "Training" {
            d.insert("TrainingStartTime".into(), json!(at));
        }
        push_transition(d, status, at);
    });
}

fn finish(api: &Api, name: &str, status: &str, reason: Option<&str>) {
    let at = now();
    api.record(KIND, name, |d| {
        push_transition(d, status, at);
        if let Some(Value::Array(list)) = d.get_mut("SecondaryStatusTransitions") {
            if let Some(last) = list.last_mut() {
                last["EndTime"] = json!(at);
                if let Some(reason) = reason {
                    last["StatusMessage"] = json!(failure_reason(reason));
                }
            }
        }
        d.insert("TrainingJobStatus".into(), json!(status));
        d.insert("TrainingEndTime".into(), json!(at));
        let started = d.get("TrainingStartTime").and_then(Value::as_f64).unwrap_or(at);
        d.insert(
            "TrainingTimeInSeconds".into(),
            json!((at - started).round() as u64),
        );
        if let Some(reason) = reason {
            d.insert("FailureReason".into(), json!(failure_reason(reason)));
        }
    });
}

/// Fails a job that was running when `modelstage api` stopped (see [`super::restart`]).
pub fn fail(api: &Api, name: &str, reason: &str) {
    finish(api, name, "Failed", Some(reason));
}
