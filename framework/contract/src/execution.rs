//! What `GET /execution-parameters` answers, in one type for the three
//! places that meet it: a stage declares it (through the SDK), the server
//! answers it, and a batch transform job reads it back.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// The batch strategy of a transform job.
///
/// Read in the API's spelling (`MultiRecord`, the request documents') by
/// serde, written in the container's (`MULTI_RECORD`, the spelling of
/// `SAGEMAKER_BATCH_STRATEGY` and `/execution-parameters`); [`Self::parse`]
/// reads either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum BatchStrategy {
    /// One record per request.
    SingleRecord,
    /// As many whole records per request as fit the payload limit.
    MultiRecord,
}

impl BatchStrategy {
    /// The default when nothing declares one. Not documented by the service
    /// (its table is elided); the SageMaker SDK's local mode and most
    /// containers' `/execution-parameters` use `MULTI_RECORD`.
    pub const DEFAULT: BatchStrategy = BatchStrategy::MultiRecord;

    /// The spelling of `SAGEMAKER_BATCH_STRATEGY` and `/execution-parameters`.
    pub fn env_name(self) -> &'static str {
        match self {
            BatchStrategy::SingleRecord => "SINGLE_RECORD",
            BatchStrategy::MultiRecord => "MULTI_RECORD",
        }
    }

    /// Reads either spelling, `MultiRecord` or `MULTI_RECORD` (case and
    /// underscores ignored).
    pub fn parse(text: &str) -> Option<BatchStrategy> {
        match text.trim().to_ascii_uppercase().replace('_', "").as_str() {
            "SINGLERECORD" => Some(BatchStrategy::SingleRecord),
            "MULTIRECORD" => Some(BatchStrategy::MultiRecord),
            _ => None,
        }
    }
}

impl Serialize for BatchStrategy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.env_name())
    }
}

/// `MaxConcurrentTransforms`, `BatchStrategy` and `MaxPayloadInMB`; a field
/// is `None` where it is not declared (a stage's declaration, a container
/// that leaves it out). Serialized with the keys of `/execution-parameters`,
/// `None` fields left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ExecutionParameters {
    /// `MaxConcurrentTransforms`.
    #[serde(rename = "MaxConcurrentTransforms", skip_serializing_if = "Option::is_none")]
    pub max_concurrent_transforms: Option<u32>,
    /// `BatchStrategy`.
    #[serde(rename = "BatchStrategy", skip_serializing_if = "Option::is_none")]
    pub batch_strategy: Option<BatchStrategy>,
    /// `MaxPayloadInMB`.
    #[serde(rename = "MaxPayloadInMB", skip_serializing_if = "Option::is_none")]
    pub max_payload_in_mb: Option<u32>,
}

impl ExecutionParameters {
    /// Nothing declared: the platform's defaults apply.
    pub const UNSET: ExecutionParameters = ExecutionParameters {
        max_concurrent_transforms: None,
        batch_strategy: None,
        max_payload_in_mb: None,
    };

    /// Reads the JSON a container answers, leniently as the platform does:
    /// numbers may come as strings, strategy names in either spelling, and
    /// a field that cannot be read is `None`. `None` when the body is not JSON.
    pub fn from_json(body: &[u8]) -> Option<ExecutionParameters> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let number = |key: &str| match value.get(key)? {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        Some(ExecutionParameters {
            max_concurrent_transforms: number("MaxConcurrentTransforms"),
            batch_strategy: value
                .get("BatchStrategy")
                .and_then(Value::as_str)
                .and_then(BatchStrategy::parse),
            max_payload_in_mb: number("MaxPayloadInMB"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_are_read_and_the_container_one_written() {
        assert_eq!(
            BatchStrategy::parse("MULTI_RECORD"),
            Some(BatchStrategy::MultiRecord)
        );
        assert_eq!(
            BatchStrategy::parse("SingleRecord"),
            Some(BatchStrategy::SingleRecord)
        );
        assert_eq!(BatchStrategy::parse("Both"), None);
        let p = ExecutionParameters {
            max_concurrent_transforms: Some(8),
            batch_strategy: Some(BatchStrategy::MultiRecord),
            max_payload_in_mb: Some(6),
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"MaxConcurrentTransforms":8,"BatchStrategy":"MULTI_RECORD","MaxPayloadInMB":6}"#
        );
        assert_eq!(ExecutionParameters::from_json(json.as_bytes()), Some(p));
        let partial = ExecutionParameters::from_json(br#"{"MaxPayloadInMB": "5"}"#).unwrap();
        assert_eq!(partial.max_payload_in_mb, Some(5));
        assert_eq!(partial.batch_strategy, None);
        assert_eq!(ExecutionParameters::from_json(b"not json"), None);
    }
}
