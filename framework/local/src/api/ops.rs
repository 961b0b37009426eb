//! The control plane's operations: each request is validated against its shape
//! ([`super::shapes`]), then handled by the module of its resource, or here for what every kind
//! answers the same way (Describe, List).

use serde_json::{json, Map, Value};

use super::state::{missing, Api};
use super::store::Kind;
use super::wire::{quote, ApiError};
use super::{endpoints, models, shapes, training, transform, validate};

/// How many summaries one List answer holds at most (the service's default is 10, its most 100).
const LIST_MAX: usize = 100;

/// One request: the region of its credential scope and its JSON body.
pub struct Call<'a> {
    pub api: &'a std::sync::Arc<Api>,
    pub region: &'a str,
    pub body: &'a Map<String, Value>,
}

impl Call<'_> {
    /// A string member the shape already checked (`Value null` when absent).
    pub fn str(&self, member: &str) -> &str {
        self.body.get(member).and_then(Value::as_str).unwrap_or_default()
    }

    pub fn arn(&self, kind: Kind, name: &str) -> String {
        self.api.arn(self.region, kind, name)
    }
}

/// Answers one operation.
pub fn call(
    api: &std::sync::Arc<Api>,
    region: &str,
    operation: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let shape = shapes::input(operation).ok_or_else(|| {
        ApiError::unknown_operation(format!(
            "the operation {} is not implemented by modelstage api (see docs/sagemaker-api.md)",
            quote(operation)
        ))
    })?;
    validate::check(operation, shape, body)?;
    let empty = Map::new();
    let call = Call {
        api,
        region,
        body: body.as_object().unwrap_or(&empty),
    };
    match operation {
        "CreateTrainingJob" => training::create(&call),
        "DescribeTrainingJob" => describe(&call, Kind::TrainingJob),
        "ListTrainingJobs" => list(&call, Kind::TrainingJob, "TrainingJobSummaries", JOB_SUMMARY),
        "StopTrainingJob" => training::stop(&call),
        "CreateModel" => models::create_model(&call),
        "DescribeModel" => describe(&call, Kind::Model),
        "ListModels" => list(&call, Kind::Model, "Models", SUMMARY),
        "DeleteModel" => models::delete(&call, Kind::Model),
        "CreateEndpointConfig" => models::create_endpoint_config(&call),
        "DescribeEndpointConfig" => describe(&call, Kind::EndpointConfig),
        "ListEndpointConfigs" => list(&call, Kind::EndpointConfig, "EndpointConfigs", SUMMARY),
        "DeleteEndpointConfig" => models::delete(&call, Kind::EndpointConfig),
        "CreateEndpoint" => endpoints::create(&call),
        "UpdateEndpoint" => endpoints::update(&call),
        "UpdateEndpointWeightsAndCapacities" => endpoints::update_weights(&call),
        "DescribeEndpoint" => describe(&call, Kind::Endpoint),
        "ListEndpoints" => list(&call, Kind::Endpoint, "Endpoints", ENDPOINT_SUMMARY),
        "DeleteEndpoint" => endpoints::delete(&call),
        "CreateTransformJob" => transform::create(&call),
        "DescribeTransformJob" => describe(&call, Kind::TransformJob),
        "ListTransformJobs" => list(&call, Kind::TransformJob, "TransformJobSummaries", JOB_SUMMARY),
        "StopTransformJob" => transform::stop(&call),
        other => Err(ApiError::internal(format!(
            "{} has a shape but no handler",
            quote(other)
        ))),
    }
}

/// StopTrainingJob, StopTransformJob: the job must be in progress; it becomes `Stopping` and
/// its name is returned, for the caller to stop it.
pub fn begin_stop<'a>(call: &Call<'a>, kind: Kind) -> Result<&'a str, ApiError> {
    let name = call
        .body
        .get(&format!("{}Name", kind.member()))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let status_member = format!("{}Status", kind.member());
    let description = call
        .api
        .store
        .get(kind, name)?
        .ok_or_else(|| ApiError::not_found(missing(kind, &call.arn(kind, name)).message))?;
    if description[&status_member] != "InProgress" {
        return Err(ApiError::validation(format!(
            "The {} {} is {}: only a job in progress can be stopped",
            kind.label(),
            quote(name),
            description[&status_member]
        )));
    }
    call.api.set_status(kind, name, "Stopping", None);
    Ok(name)
}

/// Which members of a description a summary keeps; `*` stands for the kind's prefix.
const SUMMARY: &[&str] = &["*Name", "*Arn", "CreationTime"];
const ENDPOINT_SUMMARY: &[&str] = &["*Name", "*Arn", "CreationTime", "LastModifiedTime", "*Status"];
const JOB_SUMMARY: &[&str] = &[
    "*Name",
    "*Arn",
    "CreationTime",
    "LastModifiedTime",
    "*Status",
    "FailureReason",
    "TrainingEndTime",
    "TransformEndTime",
];

fn describe(call: &Call, kind: Kind) -> Result<Value, ApiError> {
    let name = call.str(&format!("{}Name", kind.member()));
    call.api.require(call.region, kind, name)
}

/// What a NextToken of this server starts with; the rest is the offset of the next page.
const PAGE_TOKEN: &str = "modelstage-page-";

/// A List operation: the filters the service offers (`NameContains`, `StatusEquals`, creation
/// and modification times), its sort (`SortBy`, `SortOrder`, newest first by default) and its
/// paging (`MaxResults`, `NextToken`).
fn list(call: &Call, kind: Kind, key: &str, members: &[&str]) -> Result<Value, ApiError> {
    let status_member = format!("{}Status", kind.member());
    let name_member = format!("{}Name", kind.member());
    let text = |member: &str| call.body.get(member).and_then(Value::as_str);
    let time = |member: &str| call.body.get(member).and_then(Value::as_f64);
    let (contains, status) = (text("NameContains"), text("StatusEquals"));
    let bounds = [
        (
            "CreationTime",
            time("CreationTimeAfter"),
            time("CreationTimeBefore"),
        ),
        (
            "LastModifiedTime",
            time("LastModifiedTimeAfter"),
            time("LastModifiedTimeBefore"),
        ),
    ];
    let max = call
        .body
        .get("MaxResults")
        .and_then(Value::as_u64)
        .map_or(LIST_MAX, |n| (n as usize).clamp(1, LIST_MAX));
    let start = match text("NextToken") {
        None => 0,
        Some(token) => token
            .strip_prefix(PAGE_TOKEN)
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "the NextToken {} was not given by this server",
                    quote(token)
                ))
            })?,
    };
    let mut matching: Vec<Value> = call
        .api
        .store
        .list(kind)?
        .into_iter()
        .filter(|d| contains.is_none_or(|part| d[&name_member].as_str().is_some_and(|n| n.contains(part))))
        .filter(|d| status.is_none_or(|s| d[&status_member] == s))
        .filter(|d| {
            bounds.iter().all(|(member, after, before)| {
                let at = d[*member].as_f64().unwrap_or_default();
                after.is_none_or(|t| at > t) && before.is_none_or(|t| at < t)
            })
        })
        .collect();
    let sort_member = match text("SortBy") {
        Some("Name") => name_member.as_str(),
        Some("Status") => status_member.as_str(),
        _ => "CreationTime",
    };
    matching.sort_by(|a, b| compare(&a[sort_member], &b[sort_member]));
    if text("SortOrder") != Some("Ascending") {
        matching.reverse();
    }
    let next = (start.saturating_add(max) < matching.len()).then(|| format!("{PAGE_TOKEN}{}", start + max));
    let summaries: Vec<Value> = matching
        .into_iter()
        .skip(start)
        .take(max)
        .map(|d| {
            let summary: Map<String, Value> = members
                .iter()
                .map(|m| m.replace('*', kind.member()))
                .filter_map(|m| d.get(&m).filter(|v| !v.is_null()).map(|v| (m, v.clone())))
                .collect();
            Value::Object(summary)
        })
        .collect();
    let mut answer = json!({ key: summaries });
    if let Some(token) = next {
        answer["NextToken"] = json!(token);
    }
    Ok(answer)
}

/// Orders numbers as numbers and anything else as text.
fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.as_str().unwrap_or_default().cmp(b.as_str().unwrap_or_default()),
    }
}
