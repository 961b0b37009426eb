//! The model the protocol's routes serve: its name, version and tensor
//! metadata, from the stages' declarations as the workers describe them
//! (the server process never opens a stage library).

use modelstage_contract::oip::Metadata;

use crate::serve::config::env_var;
use crate::serve::protocol::StageDescription;

/// The variable that names the model in the protocol's paths.
pub(super) const MODEL_NAME_VAR: &str = "MODELSTAGE_MODEL_NAME";

/// What `GET /v2/models/{name}` describes.
#[derive(Debug, Clone)]
pub(crate) struct OipModel {
    pub name: String,
    pub version: String,
    pub metadata: Metadata,
    /// Whether the first stage declares its inputs: then requests must
    /// match them, and the CSV columns follow the declared order.
    pub declared_inputs: bool,
}

impl OipModel {
    /// The model of the stages a worker described: named
    /// `MODELSTAGE_MODEL_NAME`, else after the stage (the stages joined by
    /// `+` in a fused pipeline); the inputs are the first stage's, the
    /// outputs the last one's. A declaration that does not read is logged
    /// and taken as none.
    pub(crate) fn of_described(stages: &[StageDescription]) -> OipModel {
        let declared: Vec<Option<Metadata>> = stages
            .iter()
            .map(|stage| {
                let json = stage.signature.as_deref()?;
                Metadata::from_json(json)
                    .map_err(|e| log::warn!("stage {}: {e}; its tensors are taken as undeclared", stage.name))
                    .ok()
            })
            .collect();
        let undeclared = Metadata::undeclared();
        let first = declared
            .first()
            .cloned()
            .flatten()
            .filter(|m| !m.inputs.is_empty());
        let last = declared
            .last()
            .cloned()
            .flatten()
            .filter(|m| !m.outputs.is_empty());
        let metadata = Metadata {
            inputs: first.as_ref().map_or(undeclared.inputs, |m| m.inputs.clone()),
            outputs: last.map_or(undeclared.outputs, |m| m.outputs),
        };
        let joined = |f: fn(&StageDescription) -> &str| stages.iter().map(f).collect::<Vec<_>>().join("+");
        OipModel {
            name: env_var(MODEL_NAME_VAR).unwrap_or_else(|| joined(|s| s.name.as_str())),
            version: joined(|s| s.version.as_str()),
            metadata,
            declared_inputs: first.is_some(),
        }
    }

    /// Whether a path's name and version (if any) are this model's.
    pub(crate) fn matches(&self, name: &str, version: Option<&str>) -> bool {
        name == self.name && version.is_none_or(|v| v == self.version)
    }

    /// The model metadata document, for the model `name` (this one, or a
    /// multi-model endpoint's model of this stage).
    pub(crate) fn metadata_json(&self, name: &str) -> String {
        serde_json::json!({
            "name": name,
            "versions": [self.version],
            "platform": "modelstage",
            "inputs": self.metadata.inputs,
            "outputs": self.metadata.outputs,
        })
        .to_string()
    }
}
