//! CreateTransformJob and StopTransformJob: the job is read, and run against its model started
//! for it, by the code behind `modelstage transform` ([`crate::transform`],
//! [`crate::deploy::start_model`]) on a thread of its own; DescribeTransformJob says
//! `InProgress`, then `Completed` or `Failed` with the reason.

use std::sync::Arc;

use anyhow::Context;
use serde_json::{json, Value};

use super::artifacts::Staging;
use super::models::model_spec;
use super::ops::{begin_stop, Call};
use super::state::Api;
use super::store::Kind;
use super::wire::{now, quote, ApiError};
use crate::deploy::ModelSpec;
use crate::fit::Stop;
use crate::transform::progress::Progress;
use crate::transform::{batch_environment, run_against, JobReport, TransformJob};

const KIND: Kind = Kind::TransformJob;

pub fn create(call: &Call) -> Result<Value, ApiError> {
    let name = call.str("TransformJobName");
    let arn = call.arn(KIND, name);
    // The input and the output path on S3 are staged in local folders.
    let mut local = call.body.clone();
    let staging = call.api.artifacts.transform(name, call.region, &mut local)?;
    let job = TransformJob::from_request(&Value::Object(local).to_string(), "CreateTransformJob")
        .and_then(|job| job.validate().map(|()| job))
        .map_err(|e| ApiError::validation(e.to_string()))?;
    let (spec, model_staging) = model_spec(
        call.api,
        &call
            .api
            .require(call.region, Kind::Model, call.str("ModelName"))?,
    )?;
    let created = now();
    call.api.check_capacity()?;
    let mut description = call.body.clone();
    description.remove("Tags");
    description.insert("TransformJobArn".into(), json!(arn));
    description.insert("TransformJobStatus".into(), json!("InProgress"));
    description.insert("CreationTime".into(), json!(created));
    description.insert("LastModifiedTime".into(), json!(created));
    if !call
        .api
        .store
        .insert(KIND, name, created, &Value::Object(description))?
    {
        return Err(ApiError::in_use(format!(
            "Transform job names must be unique within an AWS account and region, and a transform \
             job with this name already exists ({arn})"
        )));
    }
    let stop = Stop::never();
    call.api.add_job(KIND, name, stop.clone());
    let api = Arc::clone(call.api);
    let name = name.to_string();
    std::thread::spawn(move || run(&api, &name, &job, &spec, &stop, [staging, model_staging]));
    Ok(json!({ "TransformJobArn": arn }))
}

/// StopTransformJob: the job is marked `Stopping`, ends between mini-batches (files done keep
/// their output), and is `Stopped`.
pub fn stop(call: &Call) -> Result<Value, ApiError> {
    let name = begin_stop(call, KIND)?;
    call.api.stop_job(KIND, name);
    Ok(json!({}))
}

/// The job's thread: downloads its input and model data on S3, starts its model, runs, and
/// uploads its output when its output path is on S3. `staging` is the job's, then its model's.
fn run(api: &Api, name: &str, job: &TransformJob, spec: &ModelSpec, stop: &Stop, mut staging: [Staging; 2]) {
    let started = now();
    api.record(KIND, name, |d| {
        d.insert("TransformStartTime".into(), json!(started));
    });
    let result = execute(api, job, spec, stop, &mut staging);
    api.end_job(KIND, name);
    if api.shutting_down() {
        // Left InProgress: the next start marks it interrupted.
        return;
    }
    let (status, reason) = match result {
        _ if stop.requested() => ("Stopped", None),
        Ok(report) if report.failures.is_empty() => ("Completed", None),
        Ok(report) => {
            let first = &report.failures[0];
            (
                "Failed",
                Some(format!(
                    "{} of {} input files produced no output; {}: {}",
                    report.failures.len(),
                    report.files,
                    first.file.display(),
                    first.message
                )),
            )
        }
        Err(e) => ("Failed", Some(format!("{e:#}"))),
    };
    log::info!("transform job {} {}", quote(name), status.to_ascii_lowercase());
    finish(api, name, status, reason.as_deref());
}

/// The job's work, from its downloads to its upload; the error, with its causes, is the job's
/// `FailureReason`.
fn execute(
    api: &Api,
    job: &TransformJob,
    spec: &ModelSpec,
    stop: &Stop,
    staging: &mut [Staging; 2],
) -> anyhow::Result<JobReport> {
    for s in staging.iter_mut() {
        s.fetch(&api.artifacts)?;
    }
    // The model runs in this block only: it is stopped before the upload.
    let report = {
        let running =
            crate::deploy::start_model(spec, &batch_environment(job)).context("cannot start the model")?;
        run_against(job, running.url(), &mut Progress::hidden(), stop)?
    };
    staging[0]
        .publish(&api.artifacts)
        .context("cannot upload the output")?;
    Ok(report)
}

/// Records the end of a job: its status, `TransformEndTime` and any `FailureReason`.
pub fn finish(api: &Api, name: &str, status: &str, reason: Option<&str>) {
    api.set_status(KIND, name, status, reason);
    api.record(KIND, name, |d| {
        d.insert("TransformEndTime".into(), json!(now()));
    });
}
