//! The CreateTransformJob request document: serde types that read the JSON
//! SageMaker's API takes (`aws sagemaker create-transform-job
//! --cli-input-json`), its defaults, and the validation the service applies
//! before a job starts, with errors that name the offending field. Its keys
//! are checked against the API's members first
//! ([`crate::request_doc::check_members`]), as the other request documents'
//! are, so the types below hold only what a local job reads.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

pub use modelstage_contract::BatchStrategy;

use super::error::{InvalidJob, TransformError};
use crate::request_doc::check_members;
use crate::request_shapes::CREATE_TRANSFORM_JOB;

/// One CreateTransformJob request, as far as a local job reads it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransformJob {
    pub transform_job_name: Option<String>,
    pub model_name: Option<String>,
    pub max_concurrent_transforms: Option<u32>,
    #[serde(rename = "MaxPayloadInMB")]
    pub max_payload_in_mb: Option<u32>,
    pub batch_strategy: Option<BatchStrategy>,
    pub model_client_config: Option<ModelClientConfig>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub transform_input: TransformInput,
    #[serde(default)]
    pub transform_output: TransformOutput,
    pub data_processing: Option<DataProcessing>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransformInput {
    #[serde(default)]
    pub data_source: DataSource,
    pub content_type: Option<String>,
    pub compression_type: Option<CompressionType>,
    pub split_type: Option<SplitType>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataSource {
    #[serde(rename = "S3DataSource", default)]
    pub s3_data_source: S3DataSource,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct S3DataSource {
    #[serde(rename = "S3DataType")]
    pub s3_data_type: Option<S3DataType>,
    #[serde(rename = "S3Uri", default)]
    pub s3_uri: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransformOutput {
    #[serde(rename = "S3OutputPath", default)]
    pub s3_output_path: String,
    pub accept: Option<String>,
    pub assemble_with: Option<AssembleWith>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataProcessing {
    pub input_filter: Option<String>,
    pub join_source: Option<JoinSource>,
    pub output_filter: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModelClientConfig {
    pub invocations_timeout_in_seconds: Option<u32>,
    pub invocations_max_retries: Option<u32>,
}

/// `S3DataType`: a prefix (a folder, a file, or a name prefix) or a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum S3DataType {
    #[default]
    S3Prefix,
    ManifestFile,
    AugmentedManifestFile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum SplitType {
    #[default]
    None,
    Line,
    RecordIO,
    TFRecord,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum CompressionType {
    #[default]
    None,
    Gzip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum AssembleWith {
    #[default]
    None,
    Line,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum JoinSource {
    #[default]
    None,
    Input,
}

impl fmt::Display for SplitType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SplitType::None => "None",
            SplitType::Line => "Line",
            SplitType::RecordIO => "RecordIO",
            SplitType::TFRecord => "TFRecord",
        })
    }
}

/// Platform defaults (docs/contract.md (Batch transform)): 6 MB payloads, one request at a time.
pub use modelstage_contract::payload::DEFAULT_MAX_PAYLOAD_IN_MB;
pub const DEFAULT_MAX_CONCURRENT_TRANSFORMS: u32 = 1;
/// See [`BatchStrategy::DEFAULT`].
pub const DEFAULT_BATCH_STRATEGY: BatchStrategy = BatchStrategy::DEFAULT;
pub const DEFAULT_INVOCATIONS_TIMEOUT_SECONDS: u32 = 600;
pub const DEFAULT_INVOCATIONS_MAX_RETRIES: u32 = 3;

/// The content types DataProcessing works with (docs/contract.md (Batch transform)).
pub const DATA_PROCESSING_TYPES: [&str; 3] = ["text/csv", "application/json", "application/jsonlines"];

impl TransformJob {
    /// Parses a request document; `origin` names it in errors. An unknown or
    /// missing key is named with its path, a wrong value with its line and
    /// column.
    pub fn from_request(text: &str, origin: &str) -> Result<TransformJob, TransformError> {
        let document: serde_json::Value =
            serde_json::from_str(text).map_err(|error| TransformError::RequestNotJson {
                origin: origin.to_string(),
                error,
            })?;
        check_members(&document, &CREATE_TRANSFORM_JOB, origin)?;
        // Read from the text, not the value, so that serde_json names the
        // line and column of a value of the wrong type.
        serde_json::from_str(text).map_err(|error| TransformError::RequestValue {
            origin: origin.to_string(),
            error,
        })
    }

    pub fn split_type(&self) -> SplitType {
        self.transform_input.split_type.unwrap_or_default()
    }

    pub fn compression(&self) -> CompressionType {
        self.transform_input.compression_type.unwrap_or_default()
    }

    pub fn assemble_with(&self) -> AssembleWith {
        self.transform_output.assemble_with.unwrap_or_default()
    }

    pub fn join_source(&self) -> JoinSource {
        self.data_processing
            .as_ref()
            .and_then(|d| d.join_source)
            .unwrap_or_default()
    }

    pub fn input_filter(&self) -> &str {
        self.data_processing
            .as_ref()
            .and_then(|d| d.input_filter.as_deref())
            .unwrap_or("$")
    }

    pub fn output_filter(&self) -> &str {
        self.data_processing
            .as_ref()
            .and_then(|d| d.output_filter.as_deref())
            .unwrap_or("$")
    }

    pub fn invocations_timeout_seconds(&self) -> u32 {
        self.model_client_config
            .and_then(|c| c.invocations_timeout_in_seconds)
            .unwrap_or(DEFAULT_INVOCATIONS_TIMEOUT_SECONDS)
    }

    pub fn invocations_max_retries(&self) -> u32 {
        self.model_client_config
            .and_then(|c| c.invocations_max_retries)
            .unwrap_or(DEFAULT_INVOCATIONS_MAX_RETRIES)
    }

    /// The checks CreateTransformJob makes before it accepts a job. Every
    /// message names the field so the request document can be fixed.
    pub fn validate(&self) -> Result<(), TransformError> {
        self.check_fields().map_err(TransformError::from)
    }

    fn check_fields(&self) -> Result<(), InvalidJob> {
        if self
            .transform_input
            .data_source
            .s3_data_source
            .s3_uri
            .trim()
            .is_empty()
        {
            return Err(InvalidJob::Required {
                field: "TransformInput.DataSource.S3DataSource.S3Uri",
                flag: "--input",
            });
        }
        if self.transform_output.s3_output_path.trim().is_empty() {
            return Err(InvalidJob::Required {
                field: "TransformOutput.S3OutputPath",
                flag: "--output",
            });
        }
        if let Some(mb) = self.max_payload_in_mb {
            if mb > 100 {
                return Err(InvalidJob::MaxPayload(mb));
            }
            if let Some(n) = self.max_concurrent_transforms {
                if u64::from(n) * u64::from(mb) > 100 {
                    return Err(InvalidJob::TotalPayload { concurrent: n, mb });
                }
            }
        }
        if let Some(c) = self.model_client_config {
            if let Some(t) = c.invocations_timeout_in_seconds {
                if !(1..=3600).contains(&t) {
                    return Err(InvalidJob::Timeout(t));
                }
            }
            if let Some(r) = c.invocations_max_retries {
                if r > 3 {
                    return Err(InvalidJob::Retries(r));
                }
            }
        }
        self.validate_environment()?;
        self.validate_data_processing()
    }

    fn validate_environment(&self) -> Result<(), InvalidJob> {
        if self.environment.len() > 16 {
            return Err(InvalidJob::TooManyVariables(self.environment.len()));
        }
        for (key, value) in &self.environment {
            let mut chars = key.chars();
            let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !first_ok || !rest_ok || key.len() > 1024 {
                return Err(InvalidJob::VariableName(key.clone()));
            }
            if value.len() > 10240 {
                return Err(InvalidJob::VariableValue(key.clone()));
            }
        }
        Ok(())
    }

    fn validate_data_processing(&self) -> Result<(), InvalidJob> {
        let filters_used = self.input_filter() != "$" || self.output_filter() != "$";
        let joined = self.join_source() == JoinSource::Input;
        if !filters_used && !joined {
            return Ok(());
        }
        for (name, path) in [
            ("InputFilter", self.input_filter()),
            ("OutputFilter", self.output_filter()),
        ] {
            if path.len() > 63 {
                return Err(InvalidJob::FilterLength {
                    filter: name,
                    path: path.to_string(),
                });
            }
        }
        let content_type = media_type(self.transform_input.content_type.as_deref().unwrap_or(""));
        if !DATA_PROCESSING_TYPES.contains(&content_type.as_str()) {
            return Err(InvalidJob::FilterContentType(
                self.transform_input.content_type.clone().unwrap_or_default(),
            ));
        }
        let output_side = joined || self.output_filter() != "$";
        let accept = media_type(self.transform_output.accept.as_deref().unwrap_or(""));
        if output_side && !DATA_PROCESSING_TYPES.contains(&accept.as_str()) {
            return Err(InvalidJob::FilterAccept(
                self.transform_output.accept.clone().unwrap_or_default(),
            ));
        }
        if content_type == "text/csv" && self.split_type() != SplitType::Line {
            return Err(InvalidJob::CsvSplit);
        }
        if joined {
            if content_type != accept {
                return Err(InvalidJob::JoinTypes { content_type, accept });
            }
            let split_line = self.split_type() == SplitType::Line;
            let assemble_line = self.assemble_with() == AssembleWith::Line;
            if split_line != assemble_line || !matches!(self.split_type(), SplitType::None | SplitType::Line)
            {
                return Err(InvalidJob::JoinSplit {
                    split: self.split_type(),
                    assemble: if assemble_line { "Line" } else { "None" },
                });
            }
        }
        Ok(())
    }
}

/// A MIME type without parameters, lower-cased: `text/CSV; charset=utf-8` → `text/csv`
/// (the contract's rule, `modelstage_contract::media`).
pub use modelstage_contract::media::normalized as media_type;

#[cfg(test)]
mod tests {
    use super::*;

    fn job(json: &str) -> TransformJob {
        TransformJob::from_request(json, "job.json").unwrap()
    }

    const BASE: &str = r#""TransformInput": {"DataSource": {"S3DataSource": {"S3Uri": "in"}}},
        "TransformOutput": {"S3OutputPath": "out"}"#;

    #[test]
    fn reads_a_full_request_document() {
        let j = job(r#"{
            "TransformJobName": "t", "ModelName": "m", "MaxConcurrentTransforms": 2,
            "MaxPayloadInMB": 5, "BatchStrategy": "SingleRecord",
            "ModelClientConfig": {"InvocationsTimeoutInSeconds": 30, "InvocationsMaxRetries": 1},
            "Environment": {"A": "1"},
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "file:///d"}},
                "ContentType": "text/csv", "CompressionType": "Gzip", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": "file:///o", "Accept": "text/csv", "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
            "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}
        }"#);
        assert_eq!(j.max_payload_in_mb, Some(5));
        assert_eq!(j.batch_strategy, Some(BatchStrategy::SingleRecord));
        assert_eq!(j.split_type(), SplitType::Line);
        assert_eq!(j.compression(), CompressionType::Gzip);
        assert_eq!(j.assemble_with(), AssembleWith::Line);
        assert_eq!(j.join_source(), JoinSource::Input);
        assert_eq!(j.output_filter(), "$[0,-1]");
        assert_eq!(j.invocations_timeout_seconds(), 30);
        j.validate().unwrap();
    }

    #[test]
    fn a_misspelt_field_is_refused_by_name() {
        let err = TransformJob::from_request(r#"{"TransformInput": {"SplitTpye": "Line"}}"#, "job.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("SplitTpye"), "{err}");
    }

    #[test]
    fn defaults_apply_when_fields_are_absent() {
        let j = job(&format!("{{{BASE}}}"));
        assert_eq!(j.split_type(), SplitType::None);
        assert_eq!(j.assemble_with(), AssembleWith::None);
        assert_eq!(j.input_filter(), "$");
        assert_eq!(j.invocations_max_retries(), 3);
        j.validate().unwrap();
    }

    #[test]
    fn payload_limits_follow_the_service() {
        let j = job(&format!("{{{BASE}, \"MaxPayloadInMB\": 101}}"));
        assert!(j.validate().unwrap_err().to_string().contains("MaxPayloadInMB"));
        let j = job(&format!(
            "{{{BASE}, \"MaxPayloadInMB\": 30, \"MaxConcurrentTransforms\": 4}}"
        ));
        assert!(j.validate().unwrap_err().to_string().contains("4 × 30"));
        let j = job(&format!(
            "{{{BASE}, \"MaxPayloadInMB\": 25, \"MaxConcurrentTransforms\": 4}}"
        ));
        j.validate().unwrap();
    }

    #[test]
    fn join_needs_matching_types_and_split() {
        let j = job(&format!(
            r#"{{{BASE}, "DataProcessing": {{"JoinSource": "Input"}}}}"#
        ));
        assert!(j.validate().unwrap_err().to_string().contains("ContentType"));
        let j = job(
            r#"{"TransformInput": {"DataSource": {"S3DataSource": {"S3Uri": "in"}}, "ContentType": "text/csv",
                "SplitType": "Line"},
                "TransformOutput": {"S3OutputPath": "out", "Accept": "text/csv"},
                "DataProcessing": {"JoinSource": "Input"}}"#,
        );
        assert!(j.validate().unwrap_err().to_string().contains("AssembleWith"));
    }

    #[test]
    fn environment_names_are_checked() {
        let j = job(&format!(r#"{{{BASE}, "Environment": {{"1BAD": "x"}}}}"#));
        assert!(j.validate().unwrap_err().to_string().contains("1BAD"));
    }
}
