//! The JSON body of an error answer (docs/contract.md (Errors)): the one
//! shape `serve`, the router of local mode and a fused pipeline all answer
//! with, keys sorted as `serde_json` writes a map.

/// The `error` name of an HTTP status.
pub fn error_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        404 => "NotFound",
        408 => "RequestTimeout",
        406 => "UnsupportedAccept",
        413 => "PayloadTooLarge",
        415 => "UnsupportedContentType",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        405 => "MethodNotAllowed",
        _ => "InternalError",
    }
}

/// The JSON error body a container answers with. `hook` and `record` are
/// omitted where they do not apply.
pub fn error_body(
    status: u16,
    stage: &str,
    hook: Option<&str>,
    message: &str,
    record: Option<u64>,
    request_id: &str,
) -> String {
    let mut body = serde_json::Map::new();
    body.insert("error".into(), error_name(status).into());
    body.insert("status".into(), status.into());
    body.insert("stage".into(), stage.into());
    if let Some(hook) = hook {
        body.insert("hook".into(), hook.into());
    }
    body.insert("message".into(), message.into());
    if let Some(record) = record {
        body.insert("record".into(), record.into());
    }
    body.insert("request_id".into(), request_id.into());
    serde_json::Value::Object(body).to_string()
}

/// SageMaker's `ModelError` (HTTP 424) for a pipeline container that answered
/// `original_status` with `original_body`: names the container and carries
/// its status and message (docs/contract.md (Serial pipelines)). The router of a pipeline of
/// containers and a fused pipeline both answer with exactly this body.
pub fn model_error_body(
    container: &str,
    original_status: u16,
    original_body: &str,
    request_id: &str,
) -> String {
    let kind = if (400..500).contains(&original_status) {
        "client"
    } else {
        "server"
    };
    let mut body = serde_json::Map::new();
    body.insert("error".into(), "ModelError".into());
    body.insert("status".into(), 424.into());
    body.insert("container".into(), container.into());
    body.insert("original_status".into(), original_status.into());
    body.insert("original_message".into(), original_body.into());
    body.insert(
        "message".into(),
        format!(
            "Received {kind} error ({original_status}) from {container} with message \"{original_body}\""
        )
        .into(),
    );
    body.insert("request_id".into(), request_id.into());
    serde_json::Value::Object(body).to_string()
}
