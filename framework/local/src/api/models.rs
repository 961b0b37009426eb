//! CreateModel and CreateEndpointConfig (and their Delete): resources that only describe. A model
//! is read as `modelstage deploy` reads a CreateModel request ([`ModelSpec`]), so a model that
//! could not start is refused when it is created, not when an endpoint starts it.

use serde_json::{json, Value};

use super::artifacts::Staging;
use super::ops::Call;
use super::state::{missing, Api};
use super::store::Kind;
use super::wire::{now, ApiError, DEFAULT_REGION};
use crate::deploy::ModelSpec;

/// A stored model's containers, as `deploy` reads them: its description less what
/// [`create_model`] added to the request, with its model data on S3 staged (to be fetched before
/// the model starts).
pub fn model_spec(api: &Api, description: &Value) -> Result<(ModelSpec, Staging), ApiError> {
    let mut request = description.as_object().cloned().unwrap_or_default();
    // The region of the request that created the model, in its ARN.
    let region = request
        .remove("ModelArn")
        .and_then(|arn| arn.as_str().and_then(|a| a.split(':').nth(3)).map(str::to_string))
        .unwrap_or_else(|| DEFAULT_REGION.to_string());
    request.remove("CreationTime");
    let staging = api.artifacts.model(&region, &mut request)?;
    let spec = ModelSpec::from_request(&Value::Object(request).to_string(), "the model")
        .map_err(|e| ApiError::validation(format!("{e:#}")))?;
    Ok((spec, staging))
}

pub fn create_model(call: &Call) -> Result<Value, ApiError> {
    let name = call.str("ModelName");
    let mut request = call.body.clone();
    let staging = call.api.artifacts.model(call.region, &mut request)?;
    ModelSpec::from_request(&Value::Object(request).to_string(), "CreateModel")
        .map_err(|e| ApiError::validation(format!("{e:#}")))?;
    staging.check_objects(&call.api.artifacts)?;
    let arn = call.arn(Kind::Model, name);
    create(call, Kind::Model, name, &arn)?;
    Ok(json!({ "ModelArn": arn }))
}

pub fn create_endpoint_config(call: &Call) -> Result<Value, ApiError> {
    let name = call.str("EndpointConfigName");
    let variants = call.body.get("ProductionVariants").and_then(Value::as_array);
    for variant in variants.into_iter().flatten() {
        let model = variant
            .get("ModelName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        call.api.require(call.region, Kind::Model, model)?;
    }
    let arn = call.arn(Kind::EndpointConfig, name);
    create(call, Kind::EndpointConfig, name, &arn)?;
    Ok(json!({ "EndpointConfigArn": arn }))
}

/// Stores the request as the description, with its ARN and creation time; tags are not kept.
fn create(call: &Call, kind: Kind, name: &str, arn: &str) -> Result<(), ApiError> {
    let created = now();
    let mut description = call.body.clone();
    description.remove("Tags");
    description.insert(format!("{}Arn", kind.member()), json!(arn));
    description.insert("CreationTime".into(), json!(created));
    if call
        .api
        .store
        .insert(kind, name, created, &Value::Object(description))?
    {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "Cannot create already existing {} \"{arn}\".",
            kind.label()
        )))
    }
}

/// DeleteModel, DeleteEndpointConfig.
pub fn delete(call: &Call, kind: Kind) -> Result<Value, ApiError> {
    let name = call.str(&format!("{}Name", kind.member()));
    if call.api.store.delete(kind, name)? {
        Ok(json!({}))
    } else {
        Err(missing(kind, &call.arn(kind, name)))
    }
}
