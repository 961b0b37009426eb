//! The checks `modelstage check` runs, by stable id, in the order they are reported. The ids are
//! an interface: CI jobs match on them, and `--skip` takes them.

pub const PING_BEFORE_LOAD: &str = "ping.before-load";
pub const PING_AFTER_LOAD: &str = "ping.after-load";
pub const BIND_TO_PORT: &str = "env.bind-to-port";
pub const SAMPLE: &str = "invocations.sample";
pub const ACCEPT: &str = "invocations.accept";
pub const CONTENT_TYPE_415: &str = "invocations.content-type-415";
pub const ACCEPT_406: &str = "invocations.accept-406";
pub const PAYLOAD_413: &str = "invocations.payload-413";
pub const EXECUTION_PARAMETERS: &str = "execution-parameters";
pub const SIGTERM: &str = "signals.sigterm";
pub const IMAGE_LABEL: &str = "image.label-bind-to-port";
pub const IMAGE_ENTRYPOINT: &str = "image.entrypoint-exec-form";
pub const IMAGE_SERVE_ARG: &str = "image.serve-argument";
pub const TRAIN_MODEL: &str = "train.model";
pub const TRAIN_SUCCESS: &str = "train.success";
pub const TRAIN_BAD_HYPERPARAMETER: &str = "train.bad-hyperparameter";

/// Every check, with what it asserts.
pub const ALL: [(&str, &str); 16] = [
    (
        PING_BEFORE_LOAD,
        "GET /ping answers 200 or 503 while the model loads",
    ),
    (
        PING_AFTER_LOAD,
        "GET /ping answers 200 within the health-check limit",
    ),
    (
        BIND_TO_PORT,
        "the server listens on the port SAGEMAKER_BIND_TO_PORT names",
    ),
    (SAMPLE, "POST /invocations of the sample answers 2xx"),
    (ACCEPT, "the answer's Content-Type is what --accept asked for"),
    (
        CONTENT_TYPE_415,
        "an unsupported Content-Type gets 415 with a readable body",
    ),
    (ACCEPT_406, "an unsupported Accept gets 406 with a readable body"),
    (PAYLOAD_413, "a body over SAGEMAKER_MAX_PAYLOAD_IN_MB gets 413"),
    (
        EXECUTION_PARAMETERS,
        "GET /execution-parameters is well-formed, or 404",
    ),
    (SIGTERM, "SIGTERM ends the server within the grace period"),
    (
        IMAGE_LABEL,
        "the image has com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true",
    ),
    (IMAGE_ENTRYPOINT, "the image's ENTRYPOINT is in exec form"),
    (IMAGE_SERVE_ARG, "`docker run IMAGE serve` starts a server"),
    (TRAIN_MODEL, "train writes a non-empty /opt/ml/model and exits 0"),
    (TRAIN_SUCCESS, "train writes /opt/ml/output/success"),
    (
        TRAIN_BAD_HYPERPARAMETER,
        "a bad hyperparameter writes output/failure and exits non-zero",
    ),
];

/// The id as a `&'static str`, when `text` names a check.
pub fn find(text: &str) -> Option<&'static str> {
    ALL.iter().map(|(id, _)| *id).find(|id| *id == text)
}
