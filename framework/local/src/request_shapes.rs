//! The members of the SageMaker API requests modelstage reads (CreateTrainingJob, CreateModel,
//! CreateTransformJob), as the API reference lists them, with the constraints the service
//! checks. One table serves both readers: [`crate::request_doc::check_members`] checks the
//! request documents of `fit`, `deploy` and `transform` (member names at every depth, and the
//! members local mode requires), and `modelstage api` checks requests as the service does
//! (also types, name patterns, lengths, enums, and every member the service requires).
//!
//! Every member the API accepts is listed, including the ones a local job ignores (roles, VPCs,
//! tags, debugger and profiler settings), so that a document written for SageMaker loads
//! unchanged. A member the service requires is [`Need::Service`] where local mode has a default
//! or a flag for it: the top-level members (`--stage`, `--output-path`, `--input`, `--output`
//! and generated job names stand in for them), `S3DataType` (`S3Prefix`), `TrainingInputMode`
//! (`File`) and the transform job's `DataSource` and `S3OutputPath`. Parts no local job reads and
//! whose members vary by release (`InstancePlacementConfig`) are accepted whole.

/// What a value must look like.
#[derive(Debug)]
pub enum Shape {
    /// An object with these members; any other member is refused.
    Struct(&'static [Member]),
    /// A list of values of one shape, with at most this many entries.
    List(&'static Shape, usize),
    /// A string → string map (`Environment`, `HyperParameters`), with at most this many entries.
    Map(usize),
    /// A string of at most this many bytes.
    Str(usize),
    /// A resource name: `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`.
    Name,
    /// One of these strings.
    Enum(&'static [&'static str]),
    Int,
    Bool,
    /// Accepted as it is: settings that only matter to the cloud.
    Any,
}

/// Who refuses an object without a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nobody.
    Optional,
    /// The service; local mode has a default or a flag for it.
    Service,
    /// The service and local mode.
    Always,
}

/// One member of a [`Shape::Struct`].
#[derive(Debug)]
pub struct Member {
    pub name: &'static str,
    pub need: Need,
    pub shape: &'static Shape,
}

impl Member {
    /// The service refuses the object without it.
    pub fn required_by_service(&self) -> bool {
        self.need != Need::Optional
    }

    /// A local request document needs it.
    pub fn required_locally(&self) -> bool {
        self.need == Need::Always
    }
}

/// An optional member.
pub const fn opt(name: &'static str, shape: &'static Shape) -> Member {
    Member {
        name,
        need: Need::Optional,
        shape,
    }
}

/// A member the service and local mode require.
pub const fn req(name: &'static str, shape: &'static Shape) -> Member {
    Member {
        name,
        need: Need::Always,
        shape,
    }
}

/// A member the service requires and local mode has a default or a flag for.
pub const fn svc(name: &'static str, shape: &'static Shape) -> Member {
    Member {
        name,
        need: Need::Service,
        shape,
    }
}

pub const NAME: Shape = Shape::Name;
pub const ANY: Shape = Shape::Any;
pub const INT: Shape = Shape::Int;
pub const BOOL: Shape = Shape::Bool;
pub const ARN: Shape = Shape::Str(2048);
pub const URI: Shape = Shape::Str(1024);
pub const TEXT: Shape = Shape::Str(256);
pub const ENV: Shape = Shape::Map(100);
const COMPRESSION: Shape = Shape::Enum(&["None", "Gzip"]);
const INPUT_MODE: Shape = Shape::Enum(&["Pipe", "File", "FastFile"]);
const S3_DATA_TYPE: Shape = Shape::Enum(&["ManifestFile", "S3Prefix", "AugmentedManifestFile", "Converse"]);
/// Lists whose bound the service documents differently by release: bounded all the same.
const MANY: usize = 100;

// Shared by the three requests.

static TAG: Shape = Shape::Struct(&[req("Key", &Shape::Str(128)), req("Value", &TEXT)]);
static TAGS: Shape = Shape::List(&TAG, 50);

static VPC_CONFIG: Shape = Shape::Struct(&[
    req("SecurityGroupIds", &Shape::List(&TEXT, 5)),
    req("Subnets", &Shape::List(&TEXT, 16)),
]);

static EXPERIMENT_CONFIG: Shape = Shape::Struct(&[
    opt("ExperimentName", &ANY),
    opt("TrialName", &ANY),
    opt("TrialComponentDisplayName", &ANY),
    opt("RunName", &ANY),
]);

static MODEL_ACCESS_CONFIG: Shape = Shape::Struct(&[req("AcceptEula", &BOOL)]);

static HUB_ACCESS_CONFIG: Shape = Shape::Struct(&[req("HubContentArn", &ARN)]);

// CreateTrainingJob.

static METRIC_DEFINITION: Shape = Shape::Struct(&[req("Name", &ANY), req("Regex", &ANY)]);

static ALGORITHM_SPECIFICATION: Shape = Shape::Struct(&[
    opt("TrainingImage", &Shape::Str(255)),
    opt("AlgorithmName", &ARN),
    svc("TrainingInputMode", &INPUT_MODE),
    opt("MetricDefinitions", &Shape::List(&METRIC_DEFINITION, 40)),
    opt("EnableSageMakerMetricsTimeSeries", &BOOL),
    opt("ContainerEntrypoint", &Shape::List(&ANY, MANY)),
    opt("ContainerArguments", &Shape::List(&ANY, MANY)),
    opt(
        "TrainingImageConfig",
        &Shape::Struct(&[
            req("TrainingRepositoryAccessMode", &ANY),
            opt(
                "TrainingRepositoryAuthConfig",
                &Shape::Struct(&[req("TrainingRepositoryCredentialsProviderArn", &ANY)]),
            ),
        ]),
    ),
]);

static TRAINING_S3_DATA_SOURCE: Shape = Shape::Struct(&[
    svc("S3DataType", &S3_DATA_TYPE),
    req("S3Uri", &URI),
    opt(
        "S3DataDistributionType",
        &Shape::Enum(&["FullyReplicated", "ShardedByS3Key"]),
    ),
    opt("AttributeNames", &Shape::List(&ANY, 16)),
    opt("InstanceGroupNames", &Shape::List(&ANY, 5)),
    opt("ModelAccessConfig", &MODEL_ACCESS_CONFIG),
    opt("HubAccessConfig", &HUB_ACCESS_CONFIG),
]);

static CHANNEL: Shape = Shape::Struct(&[
    req("ChannelName", &Shape::Str(64)),
    req(
        "DataSource",
        &Shape::Struct(&[
            opt("S3DataSource", &TRAINING_S3_DATA_SOURCE),
            opt(
                "FileSystemDataSource",
                &Shape::Struct(&[
                    req("FileSystemId", &ANY),
                    req("FileSystemAccessMode", &ANY),
                    req("FileSystemType", &ANY),
                    req("DirectoryPath", &ANY),
                ]),
            ),
            opt("DatasetSource", &ANY),
        ]),
    ),
    opt("ContentType", &TEXT),
    opt("CompressionType", &COMPRESSION),
    opt("RecordWrapperType", &Shape::Enum(&["None", "RecordIO"])),
    opt("InputMode", &INPUT_MODE),
    opt("ShuffleConfig", &Shape::Struct(&[req("Seed", &INT)])),
]);

static RULE_CONFIGURATION: Shape = Shape::Struct(&[
    req("RuleConfigurationName", &ANY),
    opt("LocalPath", &ANY),
    opt("S3OutputPath", &ANY),
    req("RuleEvaluatorImage", &ANY),
    opt("InstanceType", &ANY),
    opt("VolumeSizeInGB", &ANY),
    opt("RuleParameters", &ENV),
]);

/// CreateTrainingJob.
pub static CREATE_TRAINING_JOB: Shape = Shape::Struct(&[
    svc("TrainingJobName", &NAME),
    opt("HyperParameters", &ENV),
    opt("AlgorithmSpecification", &ALGORITHM_SPECIFICATION),
    svc("RoleArn", &ARN),
    opt("InputDataConfig", &Shape::List(&CHANNEL, 20)),
    svc(
        "OutputDataConfig",
        &Shape::Struct(&[
            opt("KmsKeyId", &ANY),
            req("S3OutputPath", &URI),
            opt("CompressionType", &Shape::Enum(&["GZIP", "NONE"])),
        ]),
    ),
    opt(
        "ResourceConfig",
        &Shape::Struct(&[
            opt("InstanceType", &TEXT),
            opt("InstanceCount", &INT),
            opt("VolumeSizeInGB", &INT),
            opt("VolumeKmsKeyId", &ANY),
            opt("KeepAlivePeriodInSeconds", &INT),
            opt(
                "InstanceGroups",
                &Shape::List(
                    &Shape::Struct(&[
                        req("InstanceType", &TEXT),
                        req("InstanceCount", &INT),
                        req("InstanceGroupName", &TEXT),
                    ]),
                    5,
                ),
            ),
            opt("TrainingPlanArn", &ARN),
            opt("InstancePlacementConfig", &ANY),
        ]),
    ),
    opt("VpcConfig", &VPC_CONFIG),
    opt(
        "StoppingCondition",
        &Shape::Struct(&[
            opt("MaxRuntimeInSeconds", &INT),
            opt("MaxWaitTimeInSeconds", &INT),
            opt("MaxPendingTimeInSeconds", &INT),
        ]),
    ),
    opt("Tags", &TAGS),
    opt("EnableNetworkIsolation", &BOOL),
    opt("EnableInterContainerTrafficEncryption", &BOOL),
    opt("EnableManagedSpotTraining", &BOOL),
    opt(
        "CheckpointConfig",
        &Shape::Struct(&[req("S3Uri", &URI), opt("LocalPath", &ANY)]),
    ),
    opt(
        "DebugHookConfig",
        &Shape::Struct(&[
            opt("LocalPath", &ANY),
            req("S3OutputPath", &URI),
            opt("HookParameters", &ENV),
            opt(
                "CollectionConfigurations",
                &Shape::List(
                    &Shape::Struct(&[opt("CollectionName", &ANY), opt("CollectionParameters", &ENV)]),
                    MANY,
                ),
            ),
        ]),
    ),
    opt("DebugRuleConfigurations", &Shape::List(&RULE_CONFIGURATION, 20)),
    opt(
        "TensorBoardOutputConfig",
        &Shape::Struct(&[opt("LocalPath", &ANY), req("S3OutputPath", &URI)]),
    ),
    opt("ExperimentConfig", &EXPERIMENT_CONFIG),
    opt(
        "ProfilerConfig",
        &Shape::Struct(&[
            opt("S3OutputPath", &URI),
            opt("ProfilingIntervalInMilliseconds", &INT),
            opt("ProfilingParameters", &ENV),
            opt("DisableProfiler", &BOOL),
        ]),
    ),
    opt(
        "ProfilerRuleConfigurations",
        &Shape::List(&RULE_CONFIGURATION, 20),
    ),
    opt("Environment", &ENV),
    opt(
        "RetryStrategy",
        &Shape::Struct(&[req("MaximumRetryAttempts", &INT)]),
    ),
    opt(
        "RemoteDebugConfig",
        &Shape::Struct(&[opt("EnableRemoteDebug", &BOOL)]),
    ),
    opt(
        "InfraCheckConfig",
        &Shape::Struct(&[opt("EnableInfraCheck", &BOOL)]),
    ),
    opt(
        "SessionChainingConfig",
        &Shape::Struct(&[opt("EnableSessionTagChaining", &BOOL)]),
    ),
    opt("ServerlessJobConfig", &ANY),
    opt("MlflowConfig", &ANY),
    opt("ModelPackageConfig", &ANY),
]);

// CreateModel.

static MODEL_S3_DATA_SOURCE: Shape = Shape::Struct(&[
    req("S3Uri", &URI),
    req("S3DataType", &ANY),
    req("CompressionType", &ANY),
    opt("ModelAccessConfig", &MODEL_ACCESS_CONFIG),
    opt("HubAccessConfig", &HUB_ACCESS_CONFIG),
    opt("ManifestS3Uri", &URI),
    opt("ETag", &ANY),
    opt("ManifestEtag", &ANY),
]);

static CONTAINER_DEFINITION: Shape = Shape::Struct(&[
    opt("ContainerHostname", &NAME),
    opt("Image", &Shape::Str(255)),
    opt(
        "ImageConfig",
        &Shape::Struct(&[
            req("RepositoryAccessMode", &ANY),
            opt(
                "RepositoryAuthConfig",
                &Shape::Struct(&[req("RepositoryCredentialsProviderArn", &ANY)]),
            ),
        ]),
    ),
    opt("Mode", &Shape::Enum(&["SingleModel", "MultiModel"])),
    opt("ModelDataUrl", &URI),
    opt(
        "ModelDataSource",
        &Shape::Struct(&[opt("S3DataSource", &MODEL_S3_DATA_SOURCE)]),
    ),
    opt(
        "AdditionalModelDataSources",
        &Shape::List(
            &Shape::Struct(&[
                req("ChannelName", &ANY),
                req("S3DataSource", &MODEL_S3_DATA_SOURCE),
            ]),
            5,
        ),
    ),
    opt("Environment", &ENV),
    opt("ModelPackageName", &ARN),
    opt("InferenceSpecificationName", &TEXT),
    opt(
        "MultiModelConfig",
        &Shape::Struct(&[opt("ModelCacheSetting", &ANY)]),
    ),
]);

/// CreateModel.
pub static CREATE_MODEL: Shape = Shape::Struct(&[
    svc("ModelName", &NAME),
    opt("PrimaryContainer", &CONTAINER_DEFINITION),
    opt("Containers", &Shape::List(&CONTAINER_DEFINITION, 15)),
    opt(
        "InferenceExecutionConfig",
        &Shape::Struct(&[req("Mode", &Shape::Enum(&["Serial", "Direct"]))]),
    ),
    opt("ExecutionRoleArn", &ARN),
    opt("Tags", &TAGS),
    opt("VpcConfig", &VPC_CONFIG),
    opt("EnableNetworkIsolation", &BOOL),
]);

// CreateTransformJob.

/// CreateTransformJob.
pub static CREATE_TRANSFORM_JOB: Shape = Shape::Struct(&[
    svc("TransformJobName", &NAME),
    svc("ModelName", &NAME),
    opt("MaxConcurrentTransforms", &INT),
    opt(
        "ModelClientConfig",
        &Shape::Struct(&[
            opt("InvocationsTimeoutInSeconds", &INT),
            opt("InvocationsMaxRetries", &INT),
        ]),
    ),
    opt("MaxPayloadInMB", &INT),
    opt("BatchStrategy", &Shape::Enum(&["MultiRecord", "SingleRecord"])),
    opt("Environment", &ENV),
    svc(
        "TransformInput",
        &Shape::Struct(&[
            svc(
                "DataSource",
                &Shape::Struct(&[req(
                    "S3DataSource",
                    &Shape::Struct(&[svc("S3DataType", &S3_DATA_TYPE), req("S3Uri", &URI)]),
                )]),
            ),
            opt("ContentType", &TEXT),
            opt("CompressionType", &COMPRESSION),
            opt(
                "SplitType",
                &Shape::Enum(&["None", "Line", "RecordIO", "TFRecord"]),
            ),
        ]),
    ),
    svc(
        "TransformOutput",
        &Shape::Struct(&[
            svc("S3OutputPath", &URI),
            opt("Accept", &TEXT),
            opt("AssembleWith", &Shape::Enum(&["None", "Line"])),
            opt("KmsKeyId", &ANY),
        ]),
    ),
    opt(
        "DataCaptureConfig",
        &Shape::Struct(&[
            req("DestinationS3Uri", &URI),
            opt("KmsKeyId", &ANY),
            opt("GenerateInferenceId", &BOOL),
        ]),
    ),
    svc(
        "TransformResources",
        &Shape::Struct(&[
            req("InstanceType", &TEXT),
            req("InstanceCount", &INT),
            opt("VolumeKmsKeyId", &ANY),
            opt("TransformAmiVersion", &TEXT),
        ]),
    ),
    opt(
        "DataProcessing",
        &Shape::Struct(&[
            opt("InputFilter", &Shape::Str(63)),
            opt("OutputFilter", &Shape::Str(63)),
            opt("JoinSource", &Shape::Enum(&["Input", "None"])),
        ]),
    ),
    opt("Tags", &TAGS),
    opt("ExperimentConfig", &EXPERIMENT_CONFIG),
]);
