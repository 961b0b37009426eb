//! CreateEndpoint, UpdateEndpoint, DeleteEndpoint: an endpoint's model is started by the code
//! behind `modelstage deploy` ([`crate::deploy::start_model`]) on a thread of its own, while
//! DescribeEndpoint says `Creating` (or `Updating`), then `InService` or `Failed` with the
//! reason. After a restart, [`resume`] brings the endpoints that were up back.

use std::sync::Arc;

use anyhow::Context;

use serde_json::{json, Value};

use super::artifacts::Staging;
use super::models::model_spec;
use super::multi::MultiModels;
use super::ops::Call;
use super::state::{failure_reason, Api, LiveEndpoint, LiveVariant, Route};
use super::store::Kind;
use super::wire::{now, quote, ApiError};
use crate::deploy::{hosted, Mode, ModelSpec};

/// What an endpoint configuration starts: the model of each production variant.
struct Plan {
    config: String,
    variants: Vec<VariantPlan>,
}

struct VariantPlan {
    name: String,
    weight: f64,
    spec: ModelSpec,
    /// The model data on S3, fetched before the model starts (kept by a multi-model variant,
    /// whose target models are fetched on first use).
    staging: Option<Staging>,
}

fn plan(api: &Api, region: &str, config: &str) -> Result<Plan, ApiError> {
    let description = api.require(region, Kind::EndpointConfig, config)?;
    let listed = description["ProductionVariants"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if listed.is_empty() {
        return Err(ApiError::validation(format!(
            "the endpoint configuration {} has no production variant",
            quote(config)
        )));
    }
    let mut variants = Vec::with_capacity(listed.len());
    for variant in &listed {
        let model = variant["ModelName"].as_str().unwrap_or_default();
        let (spec, staging) = model_spec(api, &api.require(region, Kind::Model, model)?)?;
        variants.push(VariantPlan {
            name: variant["VariantName"].as_str().unwrap_or_default().to_string(),
            weight: variant["InitialVariantWeight"].as_f64().unwrap_or(1.0),
            spec,
            staging: Some(staging),
        });
    }
    Ok(Plan {
        config: config.to_string(),
        variants,
    })
}

/// Starts the model of each variant (after fetching its model data from S3).
fn start(api: &Api, plan: &mut Plan) -> anyhow::Result<Vec<LiveVariant>> {
    let mut live = Vec::with_capacity(plan.variants.len());
    for variant in &mut plan.variants {
        let mut staging = variant.staging.take();
        if let Some(staging) = &mut staging {
            staging.fetch(&api.artifacts)?;
        }
        let which = || format!("production variant {}", quote(&variant.name));
        // A lone stage library is served on the API's own threads; any other model by the
        // containers `deploy` starts.
        let route = match hosted::host(&variant.spec, super::http_threads()).with_context(which)? {
            Some(model) => Route::Hosted(model),
            None => Route::forward(crate::deploy::start_model(&variant.spec, &[]).with_context(which)?)?,
        };
        // A multi-model variant's router reads its target models from the ModelDataUrl folder
        // (deploy checked it is one); those on S3 are fetched there on first use.
        let multi = match (variant.spec.mode, &variant.spec.containers[..], staging) {
            (Mode::MultiModel, [container], Some(staging)) => container
                .model_data
                .clone()
                .map(|folder| MultiModels::new(folder, staging)),
            _ => None,
        };
        live.push(LiveVariant::new(
            variant.name.clone(),
            variant.weight,
            route,
            multi,
        )?);
    }
    Ok(live)
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

/// UpdateEndpointWeightsAndCapacities: new weights apply to the next request; the endpoint
/// stays `InService` (the service passes through `Updating`). Each variant runs one instance.
pub fn update_weights(call: &Call) -> Result<Value, ApiError> {
    let name = call.str("EndpointName");
    let description = call.api.require(call.region, Kind::Endpoint, name)?;
    let live = call
        .api
        .live_endpoint(name)
        .filter(|_| description["EndpointStatus"] == "InService")
        .ok_or_else(|| {
            ApiError::validation(format!(
                "Cannot update endpoint {} while it is {}",
                quote(name),
                description["EndpointStatus"]
            ))
        })?;
    let desired = call
        .body
        .get("DesiredWeightsAndCapacities")
        .and_then(Value::as_array);
    let mut changes = Vec::new();
    for entry in desired.into_iter().flatten() {
        let variant_name = entry["VariantName"].as_str().unwrap_or_default();
        let variant = live
            .variants
            .iter()
            .find(|v| v.name == variant_name)
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "The variant {} is not part of endpoint {}",
                    quote(variant_name),
                    quote(name)
                ))
            })?;
        if let Some(count) = entry.get("DesiredInstanceCount").and_then(Value::as_u64) {
            if count != 1 {
                return Err(ApiError::validation(format!(
                    "DesiredInstanceCount {count} for variant {}: a local endpoint runs one \
                     instance per variant",
                    quote(variant_name)
                )));
            }
        }
        let weight = match entry.get("DesiredWeight") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_f64().filter(|w| *w >= 0.0).ok_or_else(|| {
                ApiError::validation(format!(
                    "DesiredWeight of variant {} must be a number of at least 0",
                    quote(variant_name)
                ))
            })?),
        };
        changes.extend(weight.map(|w| (variant, w)));
    }
    for (variant, weight) in &changes {
        variant.set_weight(*weight);
    }
    call.api.record(Kind::Endpoint, name, |d| {
        if let Some(Value::Array(described)) = d.get_mut("ProductionVariants") {
            for entry in described.iter_mut() {
                if let Some((_, weight)) = changes
                    .iter()
                    .find(|(v, _)| entry["VariantName"] == v.name.as_str())
                {
                    entry["CurrentWeight"] = json!(weight);
                    entry["DesiredWeight"] = json!(weight);
                }
            }
        }
        d.insert("LastModifiedTime".into(), json!(now()));
    });
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
        let started = start(&api, &mut plan);
        // The model data fetched from S3 is unpacked: its copy goes.
        let variants: Vec<_> = plan.variants.drain(..).map(|v| (v.name, v.weight)).collect();
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
                for variant in &running {
                    log::info!(
                        "endpoint {} variant {} is in service at {}",
                        quote(&name),
                        quote(&variant.name),
                        variant.route.describe()
                    );
                }
                api.set_live(&name, LiveEndpoint::new(running));
                api.record(Kind::Endpoint, &name, |d| {
                    d.insert("EndpointStatus".into(), json!("InService"));
                    d.insert("EndpointConfigName".into(), json!(plan.config));
                    d.insert("LastModifiedTime".into(), json!(now()));
                    d.remove("FailureReason");
                    let described: Vec<Value> = variants
                        .iter()
                        .map(|(variant, weight)| {
                            json!({
                                "VariantName": variant,
                                "CurrentWeight": weight,
                                "DesiredWeight": weight,
                                "CurrentInstanceCount": 1,
                                "DesiredInstanceCount": 1,
                            })
                        })
                        .collect();
                    d.insert("ProductionVariants".into(), json!(described));
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
                    Ok(mut plan) => {
                        // Weights changed since the endpoint started are kept.
                        let described = description["ProductionVariants"].as_array();
                        for variant in &mut plan.variants {
                            let current = described
                                .into_iter()
                                .flatten()
                                .find(|d| d["VariantName"] == variant.name.as_str())
                                .and_then(|d| d["DesiredWeight"].as_f64());
                            variant.weight = current.unwrap_or(variant.weight);
                        }
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
