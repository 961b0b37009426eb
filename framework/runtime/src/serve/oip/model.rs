//! The model the protocol's routes serve: its name, version and tensor
//! metadata, from the stage libraries' declarations.

use modelstage_sdk::codecs::oip::Metadata;

use crate::loader::LoadedStage;
use crate::serve::config::{env_var, StagePlan};

/// The variable that names the model in the protocol's paths.
pub const MODEL_NAME_VAR: &str = "MODELSTAGE_MODEL_NAME";

/// What `GET /v2/models/{name}` describes.
#[derive(Debug, Clone)]
pub struct OipModel {
    pub name: String,
    pub version: String,
    pub metadata: Metadata,
    /// Whether the first stage declares its inputs: then requests must
    /// match them, and the CSV columns follow the declared order.
    pub declared_inputs: bool,
}

impl OipModel {
    /// The model of the stages: named `MODELSTAGE_MODEL_NAME`, else after
    /// the stage (the stages joined by `+` in a fused pipeline); the inputs
    /// are the first stage's, the outputs the last one's.
    pub fn of_stages(stages: &[StagePlan]) -> Result<OipModel, String> {
        let mut names = Vec::with_capacity(stages.len());
        let mut versions = Vec::with_capacity(stages.len());
        let mut declared = Vec::with_capacity(stages.len());
        for plan in stages {
            let info = LoadedStage::open(&plan.library)
                .map_err(|e| e.to_string())?
                .info();
            names.push(info.name.clone());
            versions.push(info.version.clone());
            declared.push(match &info.signature_json {
                Some(json) => Some(Metadata::from_json(json).map_err(|e| format!("{}: {e}", info.file))?),
                None => None,
            });
        }
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
        Ok(OipModel {
            name: env_var(MODEL_NAME_VAR).unwrap_or_else(|| names.join("+")),
            version: versions.join("+"),
            metadata,
            declared_inputs: first.is_some(),
        })
    }

    /// Whether a path's name and version (if any) are this model's.
    pub fn matches(&self, name: &str, version: Option<&str>) -> bool {
        name == self.name && version.is_none_or(|v| v == self.version)
    }

    /// The model metadata document.
    pub fn metadata_json(&self) -> String {
        serde_json::json!({
            "name": self.name,
            "versions": [self.version],
            "platform": "modelstage",
            "inputs": self.metadata.inputs,
            "outputs": self.metadata.outputs,
        })
        .to_string()
    }
}
