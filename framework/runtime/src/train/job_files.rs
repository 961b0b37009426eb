//! The configuration of a one-host training job as the platform writes it into `input/config/`
//! before the container starts (`docs/contract.md`): the settings of one channel in
//! `inputdataconfig.json` and the whole `resourceconfig.json`. `modelstage fit` and
//! `modelstage-testing` both lay out trees with these, so a local job and a stage's tests give the
//! stage the same shapes.

use serde_json::{json, Map, Value};

/// The one host of a local job, named as SageMaker names the first host.
pub const HOST: &str = "algo-1";

/// One channel's entry in `inputdataconfig.json`.
pub fn channel_settings(content_type: Option<&str>, input_mode: &str) -> Value {
    let mut settings = Map::new();
    if let Some(ct) = content_type {
        settings.insert("ContentType".into(), json!(ct));
    }
    settings.insert("TrainingInputMode".into(), json!(input_mode));
    settings.insert("S3DistributionType".into(), json!("FullyReplicated"));
    settings.insert("RecordWrapperType".into(), json!("None"));
    Value::Object(settings)
}

/// `resourceconfig.json` of a one-host job, with the fields the SageMaker SDK's local mode writes.
pub fn resource_config() -> Value {
    json!({
        "current_host": HOST,
        "hosts": [HOST],
        "network_interface_name": "eth0",
        "current_instance_type": "local",
    })
}
