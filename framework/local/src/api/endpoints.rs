//! CreateEndpoint, UpdateEndpoint, DeleteEndpoint: an endpoint's model is started by the code
//! behind `modelstage deploy` ([`crate::deploy::start_model`]) on a thread of its own, while
//! DescribeEndpoint says `Creating` (or `Updating`), then `InService` or `Failed` with the
//! reason. After a restart, [`resume`] brings the endpoints that were up back.

use std::sync::Arc;

use serde_json::{json, Value};

use super::artifacts::Staging;
use super::models::model_spec;
use super::ops::Call;
use super::state::{failure_reason, Api, LiveEndpoint};
use super::store::Kind;
use super::wire::{now, quote, ApiError};
use crate::deploy::ModelSpec;

/// What an endpoint configuration starts: its one production variant's model.
struct Plan {
    config: String,
    variant: String,
    spec: ModelSpec,
    /// The model data on S3, fetched before the model starts.
    staging: Staging,
}

fn plan(api: &Api, region: &str, config: &str) -> Result<Plan, ApiError> {
    let description = api.require(region, Kind::EndpointConfig, config)?;
    let variants = description["ProductionVariants"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let [variant] = variants.as_slice() else {
        return Err(ApiError::validation(format!(
            "the endpoint configuration {} has {} production variants; a local endpoint serves one",
            quote(config),
            variants.len()
        )));
    };
    let model = variant["ModelName"].as_str().unwrap_or_default();
    let (spec, staging) = model_spec(api, &api.require(region, Kind::Model, model)?)?;
    Ok(Plan {
        staging,
        config: config.to_string(),
        variant: variant["VariantName"].as_str().unwrap_or_default().to_string(),
        spec,
    })
}

pub fn create(call: &Call) -> Result<Value, ApiError> {
    let name = call.str("EndpointName");
    let plan = plan(call.api, call.region, call.str("EndpointConfigName"))?;
    let arn = call.arn(Kind::Endpoint, name);
    call.api.check_capacity()?;
    let created = now();
    let description = json!({
        "EndpointName": name,
        "EndpointArn": arn,
        "EndpointConfigName": plan.config,
        "EndpointStatus": "Creating",
        "CreationTime": created,
        "LastModifiedTime": created,
    });
    if !call
        .api
        .store
        .insert(Kind::Endpoint, name, created, &description)?
    {
        return Err(ApiError::validation(format!(
            "Cannot create already existing endpoint \"{arn}\"."
        )));
    }
    launch(Arc::clone(call.api), name.to_string(), plan);
    Ok(json!({ "EndpointArn": arn }))
}

pub fn update(call: &Call) -> Result<Value, ApiError> {
    let name = call.str("EndpointName");
    let description = call.api.require(call.region, Kind::Endpoint, name)?;
    if description["EndpointStatus"] != "InService" {
        return Err(ApiError::validation(format!(
            "Cannot update endpoint {} while it is {}",
            quote(name),
            description["EndpointStatus"]
        )));
    }
    let plan = plan(call.api, call.region, call.str("EndpointConfigName"))?;
    call.api.set_status(Kind::Endpoint, name, "Updating", None);
    launch(Arc::clone(call.api), name.to_string(), plan);
    Ok(json!({ "EndpointArn": description["EndpointArn"] }))
}

pub fn delete(call: &Call) -> Result<Value, ApiError> {
    let name = call.str("EndpointName");
    call.api.require(call.region, Kind::Endpoint, name)?;
    call.api.set_status(Kind::Endpoint, name, "Deleting", None);
    let api = Arc::clone(call.api);
    let name = name.to_string();
    std::thread::spawn(move || {
        // The containers stop when the last request that holds the endpoint is answered.
        drop(api.take_live(&name));
        if let Err(e) = api.store.delete(Kind::Endpoint, &name) {
            log::error!("cannot delete the endpoint {}: {}", quote(&name), e.message);
        }
    });
    Ok(json!({}))
}

/// Starts the model of `plan` for the endpoint `name` on a thread of its own.
fn launch(api: Arc<Api>, name: String, mut plan: Plan) {
    std::thread::spawn(move || {
        let started = plan
            .staging
            .fetch(&api.artifacts)
            .map_err(anyhow::Error::msg)
            .and_then(|()| crate::deploy::start_model(&plan.spec, &[]));
        drop(plan.staging);
        if api.shutting_down() {
            return;
        }
        let status = api
            .store
            .get(Kind::Endpoint, &name)
            .ok()
            .flatten()
            .and_then(|d| d["EndpointStatus"].as_str().map(str::to_string));
        if !matches!(status.as_deref(), Some("Creating" | "Updating")) {
            // Deleted while it started: what started stops here.
            return;
        }
        match started {
            Ok(running) => {
                log::info!("endpoint {} is in service at {}", quote(&name), running.url());
                api.set_live(&name, LiveEndpoint::new(running, plan.variant.clone()));
                api.record(Kind::Endpoint, &name, |d| {
                    d.insert("EndpointStatus".into(), json!("InService"));
                    d.insert("EndpointConfigName".into(), json!(plan.config));
                    d.insert("LastModifiedTime".into(), json!(now()));
                    d.remove("FailureReason");
                    d.insert(
                        "ProductionVariants".into(),
                        json!([{
                            "VariantName": plan.variant,
                            "CurrentWeight": 1.0,
                            "DesiredWeight": 1.0,
                            "CurrentInstanceCount": 1,
                            "DesiredInstanceCount": 1,
                        }]),
                    );
                });
            }
            Err(e) => {
                let reason = format!("{e:#}");
                log::error!("endpoint {} failed: {}", quote(&name), reason.escape_debug());
                // A failed update leaves the endpoint serving its previous model, as the service does.
                let status = if api.live_endpoint(&name).is_some() {
                    "InService"
                } else {
                    "Failed"
                };
                api.set_status(Kind::Endpoint, &name, status, Some(&reason));
            }
        }
    });
}

/// After a restart: endpoints that were up, or on their way, start again; those being deleted
/// are deleted.
pub fn resume(api: &Arc<Api>, region: &str) -> Result<(), ApiError> {
    for description in api.store.list(Kind::Endpoint)? {
        let name = description["EndpointName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match description["EndpointStatus"].as_str() {
            Some("Deleting") => {
                api.store.delete(Kind::Endpoint, &name)?;
            }
            Some("Creating" | "InService" | "Updating") => {
                let config = description["EndpointConfigName"].as_str().unwrap_or_default();
                match plan(api, region, config) {
                    Ok(plan) => {
                        api.set_status(Kind::Endpoint, &name, "Creating", None);
                        launch(Arc::clone(api), name, plan);
                    }
                    Err(e) => api.set_status(
                        Kind::Endpoint,
                        &name,
                        "Failed",
                        Some(&failure_reason(&format!(
                            "cannot be brought back after a restart of modelstage api: {}",
                            e.message
                        ))),
                    ),
                }
            }
            _ => {}
        }
    }
    Ok(())
}
