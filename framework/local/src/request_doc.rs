//! Reading SageMaker API request documents (CreateTrainingJob, CreateModel,
//! CreateTransformJob) as JSON, with errors that name the field and say what
//! the API expects.
//!
//! Every document is first checked against the API's member list
//! ([`check_members`] with the shapes of [`crate::request_shapes`]), as the
//! real API checks it: an unknown key at any depth is an error naming its
//! path and the closest valid key, so that a typo (`ModelDataURL`,
//! `Enviroment`) cannot silently drop a setting. Members the API accepts but
//! a local job has no use for are accepted and ignored. Then the readers
//! below take the values a local job uses, checking their types.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::bail;
use serde_json::{Map, Value};

use crate::request_shapes::{Member, Shape};

/// An optional string field.
pub fn opt_str(obj: &Map<String, Value>, key: &str, at: &str) -> anyhow::Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => bail!("{at}: {key} must be a string, got {other}"),
    }
}

/// An optional object field.
pub fn opt_object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> anyhow::Result<Option<&'a Map<String, Value>>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => bail!("{at}: {key} must be an object, got {other}"),
    }
}

/// A string → string map such as `HyperParameters`; other value types are refused as the API
/// refuses them, with the fix spelled out.
pub fn string_map(obj: &Map<String, Value>, key: &str, at: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(map) = opt_object(obj, key, at)? else {
        return Ok(BTreeMap::new());
    };
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => bail!(
                "{at}: {key}['{k}'] must be a string, as in the SageMaker API; write \"{}\"",
                other.to_string().replace('"', "\\\"")
            ),
        })
        .collect()
}

/// How many problems one check reports before it stops listing them.
const MAX_PROBLEMS: usize = 20;

/// How many characters of an unknown key a message quotes.
const MAX_KEY_CHARS: usize = 100;

/// Checks the members of `document` against `shape` at every depth: each unknown key is named
/// with its path and the closest valid key (`PrimaryContainer.ModelDataURL: unknown field; did
/// you mean ModelDataUrl?`), each missing required key with its path. `origin` (the document's
/// file) starts every line of the error.
pub fn check_members(document: &Value, shape: &Shape, origin: &str) -> Result<(), MemberErrors> {
    let mut problems = Vec::new();
    walk(document, shape, "", &mut problems);
    if problems.is_empty() {
        return Ok(());
    }
    let more = problems.len().saturating_sub(MAX_PROBLEMS);
    problems.truncate(MAX_PROBLEMS);
    Err(MemberErrors {
        origin: origin.to_string(),
        problems,
        more,
    })
}

/// The members of a request document that its API does not know or that are missing, one line
/// each, every line starting with the document's name.
#[derive(Debug)]
pub struct MemberErrors {
    /// The document's name (its file).
    pub origin: String,
    /// The first problems (at most 20), in document order.
    pub problems: Vec<MemberProblem>,
    /// How many more there are.
    pub more: usize,
}

impl fmt::Display for MemberErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = &self.origin;
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{origin}: {problem}")?;
        }
        if self.more > 0 {
            write!(f, "\n{origin}: ... and {} more", self.more)?;
        }
        Ok(())
    }
}

impl std::error::Error for MemberErrors {}

/// One member that does not fit its shape.
#[derive(Debug, thiserror::Error)]
pub enum MemberProblem {
    /// A key the API does not know, at its path (quoted when it is not a plain name), with the
    /// closest valid key or the valid keys.
    #[error("{path}: unknown field; {hint}")]
    Unknown {
        /// Where.
        path: String,
        /// "did you mean X?" or the valid keys.
        hint: String,
    },
    /// A required key that is absent or null.
    #[error("{0}: missing; this object needs it")]
    Missing(String),
}

fn walk(value: &Value, shape: &Shape, path: &str, problems: &mut Vec<MemberProblem>) {
    match (shape, value) {
        (Shape::Struct(members), Value::Object(map)) => {
            let at = |name: &str| {
                if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                }
            };
            for (key, child) in map {
                match members.iter().find(|m| m.name == key) {
                    Some(member) => walk(child, member.shape, &at(key), problems),
                    None => problems.push(MemberProblem::Unknown {
                        path: at(&quote_key(key)),
                        hint: suggestion(key, members),
                    }),
                }
            }
            for member in members.iter().filter(|m| m.required_locally()) {
                if !matches!(map.get(member.name), Some(v) if !v.is_null()) {
                    problems.push(MemberProblem::Missing(at(member.name)));
                }
            }
        }
        (Shape::List(item, _), Value::Array(items)) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, item, &format!("{path}[{i}]"), problems);
            }
        }
        // Wrong types are left to the code that reads the value: it says what it expected (the
        // constraints of the other shapes are `modelstage api`'s to check).
        _ => {}
    }
}

/// "did you mean X?" when a valid key is close to `key`, else the valid keys.
fn suggestion(key: &str, members: &[Member]) -> String {
    let lower = key.to_lowercase();
    let closest = members
        .iter()
        .map(|m| {
            let score = strsim::normalized_damerau_levenshtein(&lower, &m.name.to_lowercase());
            (score, m.name)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match closest {
        Some((score, name)) if score >= 0.6 => format!("did you mean {name}?"),
        _ => format!(
            "the fields here are {}",
            members.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A key from the document as a message quotes it: as it is when it is a plain name, else in
/// quotes with control and non-ASCII characters escaped, at most [`MAX_KEY_CHARS`] characters.
fn quote_key(key: &str) -> String {
    let count = key.chars().count();
    if count <= MAX_KEY_CHARS
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && count > 0
    {
        return key.to_string();
    }
    let escaped: String = key
        .chars()
        .take(MAX_KEY_CHARS)
        .flat_map(char::escape_default)
        .collect();
    let cut = if count > MAX_KEY_CHARS { "..." } else { "" };
    format!("\"{escaped}{cut}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_shapes::{CREATE_MODEL, CREATE_TRAINING_JOB, CREATE_TRANSFORM_JOB};
    use serde_json::json;

    fn problems(document: Value, shape: &Shape) -> String {
        check_members(&document, shape, "doc.json")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn an_unknown_key_is_named_with_its_path_and_the_closest_key() {
        assert_eq!(
            problems(
                json!({"PrimaryContainer": {"Image": "a.so", "ModelDataURL": "m.tar.gz"}}),
                &CREATE_MODEL
            ),
            "doc.json: PrimaryContainer.ModelDataURL: unknown field; did you mean ModelDataUrl?"
        );
        assert_eq!(
            problems(
                json!({"Containers": [{"Image": "a"}, {"Image": "b", "Enviroment": {}}]}),
                &CREATE_MODEL
            ),
            "doc.json: Containers[1].Enviroment: unknown field; did you mean Environment?"
        );
        assert_eq!(
            problems(json!({"Enviroment": {"A": "1"}}), &CREATE_TRAINING_JOB),
            "doc.json: Enviroment: unknown field; did you mean Environment?"
        );
        assert_eq!(
            problems(
                json!({"InputDataConfig": [{"ChannelName": "train",
                    "DataSource": {"S3DataSource": {"S3Uri": "d", "S3DataTpye": "S3Prefix"}}}]}),
                &CREATE_TRAINING_JOB
            ),
            "doc.json: InputDataConfig[0].DataSource.S3DataSource.S3DataTpye: unknown field; did you \
             mean S3DataType?"
        );
        assert_eq!(
            problems(
                json!({"TransformInput": {"SplitTpye": "Line"}}),
                &CREATE_TRANSFORM_JOB
            ),
            "doc.json: TransformInput.SplitTpye: unknown field; did you mean SplitType?"
        );
    }

    #[test]
    fn a_key_like_no_other_lists_the_keys_of_its_object() {
        let err = problems(
            json!({"InferenceExecutionConfig": {"Zzz": 1, "Mode": "Serial"}}),
            &CREATE_MODEL,
        );
        assert_eq!(
            err,
            "doc.json: InferenceExecutionConfig.Zzz: unknown field; the fields here are Mode"
        );
    }

    #[test]
    fn a_missing_required_key_is_named() {
        let err = problems(
            json!({"InputDataConfig": [{"DataSource": {"S3DataSource": {}}}]}),
            &CREATE_TRAINING_JOB,
        );
        assert_eq!(
            err,
            "doc.json: InputDataConfig[0].DataSource.S3DataSource.S3Uri: missing; this object needs it\n\
             doc.json: InputDataConfig[0].ChannelName: missing; this object needs it"
        );
        let err = problems(json!({"InferenceExecutionConfig": {}}), &CREATE_MODEL);
        assert_eq!(
            err,
            "doc.json: InferenceExecutionConfig.Mode: missing; this object needs it"
        );
    }

    #[test]
    fn keys_from_the_document_are_quoted_escaped_and_bounded() {
        let err = problems(json!({"Bad\nkey": 1}), &CREATE_MODEL);
        assert!(
            err.starts_with("doc.json: \"Bad\\nkey\": unknown field;"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1);
        let long = "K".repeat(5000);
        let err = problems(json!({ long: 1 }), &CREATE_MODEL);
        assert!(err.len() < 600, "{}", err.len());
        assert!(err.contains("KKK...\": unknown field"), "{err}");
    }

    #[test]
    fn user_keys_in_maps_are_not_checked() {
        let doc = json!({"HyperParameters": {"anything": "1"}, "Environment": {"ANY_NAME": "x"}});
        check_members(&doc, &CREATE_TRAINING_JOB, "doc.json").unwrap();
    }

    #[test]
    fn the_example_documents_pass() {
        for (text, shape) in [
            (
                include_str!("../../../examples/abalone/featurizer-training-job.json"),
                &CREATE_TRAINING_JOB,
            ),
            (
                include_str!("../../../examples/abalone/linear-learner-training-job.json"),
                &CREATE_TRAINING_JOB,
            ),
            (
                include_str!("../../../examples/abalone/featurizer-model.json"),
                &CREATE_MODEL,
            ),
            (
                include_str!("../../../examples/abalone/pipeline-model.json"),
                &CREATE_MODEL,
            ),
            (
                include_str!("../../../examples/abalone/featurizer-transform-job.json"),
                &CREATE_TRANSFORM_JOB,
            ),
        ] {
            let doc: Value = serde_json::from_str(text).unwrap();
            check_members(&doc, shape, "example").unwrap();
        }
    }

    #[test]
    fn members_the_api_accepts_but_local_mode_ignores_pass() {
        let training = json!({
            "TrainingJobName": "j", "RoleArn": "arn", "HyperParameters": {"a": "1"},
            "AlgorithmSpecification": {"TrainingImage": "i", "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "loss", "Regex": "loss=(.*)"}],
                "EnableSageMakerMetricsTimeSeries": true, "ContainerEntrypoint": ["python"],
                "ContainerArguments": ["x"],
                "TrainingImageConfig": {"TrainingRepositoryAccessMode": "Platform"}},
            "InputDataConfig": [{"ChannelName": "c", "ContentType": "text/csv", "CompressionType": "None",
                "RecordWrapperType": "None", "InputMode": "File", "ShuffleConfig": {"Seed": 1},
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "d",
                    "S3DataDistributionType": "FullyReplicated", "AttributeNames": ["a"]}}}],
            "OutputDataConfig": {"S3OutputPath": "o", "KmsKeyId": "k", "CompressionType": "GZIP"},
            "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10,
                "KeepAlivePeriodInSeconds": 0},
            "VpcConfig": {"SecurityGroupIds": ["sg"], "Subnets": ["s"]},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120},
            "Tags": [{"Key": "k", "Value": "v"}], "EnableNetworkIsolation": false,
            "EnableInterContainerTrafficEncryption": false, "EnableManagedSpotTraining": false,
            "CheckpointConfig": {"S3Uri": "s3://b/c", "LocalPath": "/opt/ml/checkpoints"},
            "DebugHookConfig": {"S3OutputPath": "s3://b/d", "HookParameters": {"a": "b"},
                "CollectionConfigurations": [{"CollectionName": "w", "CollectionParameters": {}}]},
            "TensorBoardOutputConfig": {"S3OutputPath": "s3://b/t"},
            "ExperimentConfig": {"ExperimentName": "e", "RunName": "r"},
            "ProfilerConfig": {"DisableProfiler": true},
            "Environment": {"A": "1"}, "RetryStrategy": {"MaximumRetryAttempts": 1},
            "RemoteDebugConfig": {"EnableRemoteDebug": false}, "InfraCheckConfig": {"EnableInfraCheck": false}
        });
        check_members(&training, &CREATE_TRAINING_JOB, "doc.json").unwrap();
        let model = json!({
            "ModelName": "m", "ExecutionRoleArn": "arn", "EnableNetworkIsolation": true,
            "Tags": [{"Key": "k", "Value": "v"}], "VpcConfig": {"SecurityGroupIds": [], "Subnets": []},
            "PrimaryContainer": {"ContainerHostname": "h", "Image": "i", "Mode": "SingleModel",
                "ModelDataUrl": "m.tar.gz", "Environment": {"A": "1"},
                "ImageConfig": {"RepositoryAccessMode": "Platform"},
                "MultiModelConfig": {"ModelCacheSetting": "Enabled"}}
        });
        check_members(&model, &CREATE_MODEL, "doc.json").unwrap();
        let transform = json!({
            "TransformJobName": "t", "ModelName": "m", "MaxConcurrentTransforms": 1, "MaxPayloadInMB": 6,
            "BatchStrategy": "MultiRecord", "Environment": {},
            "ModelClientConfig": {"InvocationsTimeoutInSeconds": 60, "InvocationsMaxRetries": 1},
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "i"}},
                "ContentType": "text/csv", "CompressionType": "None", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": "o", "Accept": "text/csv", "AssembleWith": "Line", "KmsKeyId": "k"},
            "DataCaptureConfig": {"DestinationS3Uri": "s3://b/c", "GenerateInferenceId": true},
            "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
            "DataProcessing": {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None"},
            "Tags": [], "ExperimentConfig": {"TrialName": "t"}
        });
        check_members(&transform, &CREATE_TRANSFORM_JOB, "doc.json").unwrap();
    }
}
