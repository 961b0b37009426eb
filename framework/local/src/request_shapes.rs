//! The members of the three SageMaker API requests local mode reads (CreateTrainingJob,
//! CreateModel, CreateTransformJob), as the API reference lists them, for
//! [`crate::request_doc::check_members`].
//!
//! Every member the API accepts is listed, including the ones a local job ignores (roles, VPCs,
//! tags, debugger and profiler settings), so that a document written for SageMaker loads
//! unchanged. A member is marked required when the API refuses its object without it, except
//! where local mode has a default or a flag for it: the top-level members (`--stage`,
//! `--output-path`, `--input`, `--output` and generated job names stand in for them),
//! `S3DataType` (`S3Prefix`), `TrainingInputMode` (`File`) and the transform job's
//! `DataSource` and `S3OutputPath`. Parts no local job reads and whose members vary by release
//! (`InstancePlacementConfig`) are accepted whole.

use crate::request_doc::{Member, Shape};

const fn opt(name: &'static str, shape: &'static Shape) -> Member {
    Member {
        name,
        required: false,
        shape,
    }
}

const fn req(name: &'static str, shape: &'static Shape) -> Member {
    Member {
        name,
        required: true,
        shape,
    }
}

use Shape::{List, Map, Object, Value};

// Shared by the three requests.

static TAG: Shape = Object(&[req("Key", &Value), req("Value", &Value)]);

static VPC_CONFIG: Shape = Object(&[
    req("SecurityGroupIds", &List(&Value)),
    req("Subnets", &List(&Value)),
]);

static EXPERIMENT_CONFIG: Shape = Object(&[
    opt("ExperimentName", &Value),
    opt("TrialName", &Value),
    opt("TrialComponentDisplayName", &Value),
    opt("RunName", &Value),
]);

static MODEL_ACCESS_CONFIG: Shape = Object(&[req("AcceptEula", &Value)]);

static HUB_ACCESS_CONFIG: Shape = Object(&[req("HubContentArn", &Value)]);

// CreateTrainingJob.

static METRIC_DEFINITION: Shape = Object(&[req("Name", &Value), req("Regex", &Value)]);

static ALGORITHM_SPECIFICATION: Shape = Object(&[
    opt("TrainingImage", &Value),
    opt("AlgorithmName", &Value),
    opt("TrainingInputMode", &Value),
    opt("MetricDefinitions", &List(&METRIC_DEFINITION)),
    opt("EnableSageMakerMetricsTimeSeries", &Value),
    opt("ContainerEntrypoint", &List(&Value)),
    opt("ContainerArguments", &List(&Value)),
    opt(
        "TrainingImageConfig",
        &Object(&[
            req("TrainingRepositoryAccessMode", &Value),
            opt(
                "TrainingRepositoryAuthConfig",
                &Object(&[req("TrainingRepositoryCredentialsProviderArn", &Value)]),
            ),
        ]),
    ),
]);

static TRAINING_S3_DATA_SOURCE: Shape = Object(&[
    opt("S3DataType", &Value),
    req("S3Uri", &Value),
    opt("S3DataDistributionType", &Value),
    opt("AttributeNames", &List(&Value)),
    opt("InstanceGroupNames", &List(&Value)),
    opt("ModelAccessConfig", &MODEL_ACCESS_CONFIG),
    opt("HubAccessConfig", &HUB_ACCESS_CONFIG),
]);

static CHANNEL: Shape = Object(&[
    req("ChannelName", &Value),
    req(
        "DataSource",
        &Object(&[
            opt("S3DataSource", &TRAINING_S3_DATA_SOURCE),
            opt(
                "FileSystemDataSource",
                &Object(&[
                    req("FileSystemId", &Value),
                    req("FileSystemAccessMode", &Value),
                    req("FileSystemType", &Value),
                    req("DirectoryPath", &Value),
                ]),
            ),
        ]),
    ),
    opt("ContentType", &Value),
    opt("CompressionType", &Value),
    opt("RecordWrapperType", &Value),
    opt("InputMode", &Value),
    opt("ShuffleConfig", &Object(&[req("Seed", &Value)])),
]);

static RULE_CONFIGURATION: Shape = Object(&[
    req("RuleConfigurationName", &Value),
    opt("LocalPath", &Value),
    opt("S3OutputPath", &Value),
    req("RuleEvaluatorImage", &Value),
    opt("InstanceType", &Value),
    opt("VolumeSizeInGB", &Value),
    opt("RuleParameters", &Map),
]);

/// CreateTrainingJob.
pub static CREATE_TRAINING_JOB: Shape = Object(&[
    opt("TrainingJobName", &Value),
    opt("HyperParameters", &Map),
    opt("AlgorithmSpecification", &ALGORITHM_SPECIFICATION),
    opt("RoleArn", &Value),
    opt("InputDataConfig", &List(&CHANNEL)),
    opt(
        "OutputDataConfig",
        &Object(&[
            opt("KmsKeyId", &Value),
            req("S3OutputPath", &Value),
            opt("CompressionType", &Value),
        ]),
    ),
    opt(
        "ResourceConfig",
        &Object(&[
            opt("InstanceType", &Value),
            opt("InstanceCount", &Value),
            opt("VolumeSizeInGB", &Value),
            opt("VolumeKmsKeyId", &Value),
            opt("KeepAlivePeriodInSeconds", &Value),
            opt(
                "InstanceGroups",
                &List(&Object(&[
                    req("InstanceType", &Value),
                    req("InstanceCount", &Value),
                    req("InstanceGroupName", &Value),
                ])),
            ),
            opt("TrainingPlanArn", &Value),
            opt("InstancePlacementConfig", &Value),
        ]),
    ),
    opt("VpcConfig", &VPC_CONFIG),
    opt(
        "StoppingCondition",
        &Object(&[
            opt("MaxRuntimeInSeconds", &Value),
            opt("MaxWaitTimeInSeconds", &Value),
            opt("MaxPendingTimeInSeconds", &Value),
        ]),
    ),
    opt("Tags", &List(&TAG)),
    opt("EnableNetworkIsolation", &Value),
    opt("EnableInterContainerTrafficEncryption", &Value),
    opt("EnableManagedSpotTraining", &Value),
    opt(
        "CheckpointConfig",
        &Object(&[req("S3Uri", &Value), opt("LocalPath", &Value)]),
    ),
    opt(
        "DebugHookConfig",
        &Object(&[
            opt("LocalPath", &Value),
            req("S3OutputPath", &Value),
            opt("HookParameters", &Map),
            opt(
                "CollectionConfigurations",
                &List(&Object(&[
                    opt("CollectionName", &Value),
                    opt("CollectionParameters", &Map),
                ])),
            ),
        ]),
    ),
    opt("DebugRuleConfigurations", &List(&RULE_CONFIGURATION)),
    opt(
        "TensorBoardOutputConfig",
        &Object(&[opt("LocalPath", &Value), req("S3OutputPath", &Value)]),
    ),
    opt("ExperimentConfig", &EXPERIMENT_CONFIG),
    opt(
        "ProfilerConfig",
        &Object(&[
            opt("S3OutputPath", &Value),
            opt("ProfilingIntervalInMilliseconds", &Value),
            opt("ProfilingParameters", &Map),
            opt("DisableProfiler", &Value),
        ]),
    ),
    opt("ProfilerRuleConfigurations", &List(&RULE_CONFIGURATION)),
    opt("Environment", &Map),
    opt("RetryStrategy", &Object(&[req("MaximumRetryAttempts", &Value)])),
    opt("RemoteDebugConfig", &Object(&[opt("EnableRemoteDebug", &Value)])),
    opt("InfraCheckConfig", &Object(&[opt("EnableInfraCheck", &Value)])),
    opt(
        "SessionChainingConfig",
        &Object(&[opt("EnableSessionTagChaining", &Value)]),
    ),
]);

// CreateModel.

static MODEL_S3_DATA_SOURCE: Shape = Object(&[
    req("S3Uri", &Value),
    req("S3DataType", &Value),
    req("CompressionType", &Value),
    opt("ModelAccessConfig", &MODEL_ACCESS_CONFIG),
    opt("HubAccessConfig", &HUB_ACCESS_CONFIG),
    opt("ManifestS3Uri", &Value),
    opt("ETag", &Value),
    opt("ManifestEtag", &Value),
]);

static CONTAINER_DEFINITION: Shape = Object(&[
    opt("ContainerHostname", &Value),
    opt("Image", &Value),
    opt(
        "ImageConfig",
        &Object(&[
            req("RepositoryAccessMode", &Value),
            opt(
                "RepositoryAuthConfig",
                &Object(&[req("RepositoryCredentialsProviderArn", &Value)]),
            ),
        ]),
    ),
    opt("Mode", &Value),
    opt("ModelDataUrl", &Value),
    opt(
        "ModelDataSource",
        &Object(&[opt("S3DataSource", &MODEL_S3_DATA_SOURCE)]),
    ),
    opt(
        "AdditionalModelDataSources",
        &List(&Object(&[
            req("ChannelName", &Value),
            req("S3DataSource", &MODEL_S3_DATA_SOURCE),
        ])),
    ),
    opt("Environment", &Map),
    opt("ModelPackageName", &Value),
    opt("InferenceSpecificationName", &Value),
    opt("MultiModelConfig", &Object(&[opt("ModelCacheSetting", &Value)])),
]);

/// CreateModel.
pub static CREATE_MODEL: Shape = Object(&[
    opt("ModelName", &Value),
    opt("PrimaryContainer", &CONTAINER_DEFINITION),
    opt("Containers", &List(&CONTAINER_DEFINITION)),
    opt("InferenceExecutionConfig", &Object(&[req("Mode", &Value)])),
    opt("ExecutionRoleArn", &Value),
    opt("Tags", &List(&TAG)),
    opt("VpcConfig", &VPC_CONFIG),
    opt("EnableNetworkIsolation", &Value),
]);

// CreateTransformJob.

/// CreateTransformJob.
pub static CREATE_TRANSFORM_JOB: Shape = Object(&[
    opt("TransformJobName", &Value),
    opt("ModelName", &Value),
    opt("MaxConcurrentTransforms", &Value),
    opt(
        "ModelClientConfig",
        &Object(&[
            opt("InvocationsTimeoutInSeconds", &Value),
            opt("InvocationsMaxRetries", &Value),
        ]),
    ),
    opt("MaxPayloadInMB", &Value),
    opt("BatchStrategy", &Value),
    opt("Environment", &Map),
    opt(
        "TransformInput",
        &Object(&[
            opt(
                "DataSource",
                &Object(&[req(
                    "S3DataSource",
                    &Object(&[opt("S3DataType", &Value), req("S3Uri", &Value)]),
                )]),
            ),
            opt("ContentType", &Value),
            opt("CompressionType", &Value),
            opt("SplitType", &Value),
        ]),
    ),
    opt(
        "TransformOutput",
        &Object(&[
            opt("S3OutputPath", &Value),
            opt("Accept", &Value),
            opt("AssembleWith", &Value),
            opt("KmsKeyId", &Value),
        ]),
    ),
    opt(
        "DataCaptureConfig",
        &Object(&[
            req("DestinationS3Uri", &Value),
            opt("KmsKeyId", &Value),
            opt("GenerateInferenceId", &Value),
        ]),
    ),
    opt(
        "TransformResources",
        &Object(&[
            req("InstanceType", &Value),
            req("InstanceCount", &Value),
            opt("VolumeKmsKeyId", &Value),
            opt("TransformAmiVersion", &Value),
        ]),
    ),
    opt(
        "DataProcessing",
        &Object(&[
            opt("InputFilter", &Value),
            opt("OutputFilter", &Value),
            opt("JoinSource", &Value),
        ]),
    ),
    opt("Tags", &List(&TAG)),
    opt("ExperimentConfig", &EXPERIMENT_CONFIG),
]);
