//! The input shapes of the operations `modelstage api` implements, as the service's API model
//! declares them: every member a real request may carry (so requests written for the service
//! pass), which are required, and the constraints that matter locally. Structures only the cloud
//! uses (VPC, KMS, tags, ...) are accepted as they are.

use super::validate::{opt, req, Shape};

const NAME: Shape = Shape::Name;
const ANY: Shape = Shape::Any;
const INT: Shape = Shape::Int;
const BOOL: Shape = Shape::Bool;
const ARN: Shape = Shape::Str(2048);
const URI: Shape = Shape::Str(1024);
const TEXT: Shape = Shape::Str(256);
const ENV: Shape = Shape::Map(100);
const COMPRESSION: Shape = Shape::Enum(&["None", "Gzip"]);
const INPUT_MODE: Shape = Shape::Enum(&["Pipe", "File", "FastFile"]);
const S3_DATA_TYPE: Shape = Shape::Enum(&["ManifestFile", "S3Prefix", "AugmentedManifestFile", "Converse"]);
const SORT_ORDER: Shape = Shape::Enum(&["Ascending", "Descending"]);
const SORT_BY: Shape = Shape::Enum(&["Name", "CreationTime", "Status"]);
const TIME: Shape = Shape::Any;

/// Members every List operation takes.
macro_rules! list_members {
    ($($extra:expr),* $(,)?) => {
        Shape::Struct(&[
            opt("NextToken", &Shape::Str(8192)),
            opt("MaxResults", &INT),
            opt("NameContains", &TEXT),
            opt("CreationTimeBefore", &TIME),
            opt("CreationTimeAfter", &TIME),
            opt("SortBy", &SORT_BY),
            opt("SortOrder", &SORT_ORDER),
            $($extra),*
        ])
    };
}

static CONTAINER: Shape = Shape::Struct(&[
    opt("ContainerHostname", &NAME),
    opt("Image", &Shape::Str(255)),
    opt("ImageConfig", &ANY),
    opt("Mode", &Shape::Enum(&["SingleModel", "MultiModel"])),
    opt("ModelDataUrl", &URI),
    opt("ModelDataSource", &ANY),
    opt("AdditionalModelDataSources", &ANY),
    opt("Environment", &ENV),
    opt("ModelPackageName", &ARN),
    opt("InferenceSpecificationName", &TEXT),
    opt("MultiModelConfig", &ANY),
]);

static CREATE_MODEL: Shape = Shape::Struct(&[
    req("ModelName", &NAME),
    opt("PrimaryContainer", &CONTAINER),
    opt("Containers", &Shape::List(&CONTAINER, 15)),
    opt(
        "InferenceExecutionConfig",
        &Shape::Struct(&[req("Mode", &Shape::Enum(&["Serial", "Direct"]))]),
    ),
    opt("ExecutionRoleArn", &ARN),
    opt("Tags", &ANY),
    opt("VpcConfig", &ANY),
    opt("EnableNetworkIsolation", &BOOL),
]);

static S3_DATA_SOURCE: Shape = Shape::Struct(&[
    req("S3DataType", &S3_DATA_TYPE),
    req("S3Uri", &URI),
    opt(
        "S3DataDistributionType",
        &Shape::Enum(&["FullyReplicated", "ShardedByS3Key"]),
    ),
    opt("AttributeNames", &ANY),
    opt("InstanceGroupNames", &ANY),
    opt("ModelAccessConfig", &ANY),
    opt("HubAccessConfig", &ANY),
]);

static CHANNEL: Shape = Shape::Struct(&[
    req("ChannelName", &Shape::Str(64)),
    req(
        "DataSource",
        &Shape::Struct(&[
            opt("S3DataSource", &S3_DATA_SOURCE),
            opt("FileSystemDataSource", &ANY),
            opt("DatasetSource", &ANY),
        ]),
    ),
    opt("ContentType", &TEXT),
    opt("CompressionType", &COMPRESSION),
    opt("RecordWrapperType", &Shape::Enum(&["None", "RecordIO"])),
    opt("InputMode", &INPUT_MODE),
    opt("ShuffleConfig", &ANY),
]);

static CREATE_TRAINING_JOB: Shape = Shape::Struct(&[
    req("TrainingJobName", &NAME),
    opt("HyperParameters", &ENV),
    opt(
        "AlgorithmSpecification",
        &Shape::Struct(&[
            opt("TrainingImage", &Shape::Str(255)),
            opt("AlgorithmName", &ARN),
            req("TrainingInputMode", &INPUT_MODE),
            opt("MetricDefinitions", &ANY),
            opt("EnableSageMakerMetricsTimeSeries", &BOOL),
            opt("ContainerEntrypoint", &ANY),
            opt("ContainerArguments", &ANY),
            opt("TrainingImageConfig", &ANY),
        ]),
    ),
    req("RoleArn", &ARN),
    opt("InputDataConfig", &Shape::List(&CHANNEL, 20)),
    req(
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
            opt("InstanceGroups", &ANY),
            opt("TrainingPlanArn", &ARN),
            opt("InstancePlacementConfig", &ANY),
        ]),
    ),
    opt("VpcConfig", &ANY),
    opt(
        "StoppingCondition",
        &Shape::Struct(&[
            opt("MaxRuntimeInSeconds", &INT),
            opt("MaxWaitTimeInSeconds", &INT),
            opt("MaxPendingTimeInSeconds", &INT),
        ]),
    ),
    opt("Tags", &ANY),
    opt("EnableNetworkIsolation", &BOOL),
    opt("EnableInterContainerTrafficEncryption", &BOOL),
    opt("EnableManagedSpotTraining", &BOOL),
    opt("CheckpointConfig", &ANY),
    opt("DebugHookConfig", &ANY),
    opt("DebugRuleConfigurations", &ANY),
    opt("TensorBoardOutputConfig", &ANY),
    opt("ExperimentConfig", &ANY),
    opt("ProfilerConfig", &ANY),
    opt("ProfilerRuleConfigurations", &ANY),
    opt("Environment", &ENV),
    opt("RetryStrategy", &ANY),
    opt("RemoteDebugConfig", &ANY),
    opt("InfraCheckConfig", &ANY),
    opt("SessionChainingConfig", &ANY),
    opt("ServerlessJobConfig", &ANY),
    opt("MlflowConfig", &ANY),
    opt("ModelPackageConfig", &ANY),
]);

static PRODUCTION_VARIANT: Shape = Shape::Struct(&[
    req("VariantName", &NAME),
    opt("ModelName", &NAME),
    opt("InitialInstanceCount", &INT),
    opt("InstanceType", &TEXT),
    opt("InstancePools", &ANY),
    opt("VariantInstanceProvisionTimeoutInSeconds", &INT),
    opt("InitialVariantWeight", &ANY),
    opt("AcceleratorType", &TEXT),
    opt("CoreDumpConfig", &ANY),
    opt("ServerlessConfig", &ANY),
    opt("VolumeSizeInGB", &INT),
    opt("ModelDataDownloadTimeoutInSeconds", &INT),
    opt("ContainerStartupHealthCheckTimeoutInSeconds", &INT),
    opt("EnableSSMAccess", &BOOL),
    opt("ManagedInstanceScaling", &ANY),
    opt("RoutingConfig", &ANY),
    opt("InferenceAmiVersion", &TEXT),
    opt("CapacityReservationConfig", &ANY),
]);

static CREATE_ENDPOINT_CONFIG: Shape = Shape::Struct(&[
    req("EndpointConfigName", &NAME),
    req("ProductionVariants", &Shape::List(&PRODUCTION_VARIANT, 10)),
    opt("DataCaptureConfig", &ANY),
    opt("Tags", &ANY),
    opt("KmsKeyId", &ANY),
    opt("AsyncInferenceConfig", &ANY),
    opt("ExplainerConfig", &ANY),
    opt("ShadowProductionVariants", &ANY),
    opt("ExecutionRoleArn", &ARN),
    opt("VpcConfig", &ANY),
    opt("EnableNetworkIsolation", &BOOL),
    opt("MetricsConfig", &ANY),
]);

static CREATE_ENDPOINT: Shape = Shape::Struct(&[
    req("EndpointName", &NAME),
    req("EndpointConfigName", &NAME),
    opt("DeploymentConfig", &ANY),
    opt("Tags", &ANY),
]);

static UPDATE_ENDPOINT: Shape = Shape::Struct(&[
    req("EndpointName", &NAME),
    req("EndpointConfigName", &NAME),
    opt("RetainAllVariantProperties", &BOOL),
    opt("ExcludeRetainedVariantProperties", &ANY),
    opt("DeploymentConfig", &ANY),
    opt("RetainDeploymentConfig", &BOOL),
]);

static CREATE_TRANSFORM_JOB: Shape = Shape::Struct(&[
    req("TransformJobName", &NAME),
    req("ModelName", &NAME),
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
    req(
        "TransformInput",
        &Shape::Struct(&[
            req(
                "DataSource",
                &Shape::Struct(&[req(
                    "S3DataSource",
                    &Shape::Struct(&[req("S3DataType", &S3_DATA_TYPE), req("S3Uri", &URI)]),
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
    req(
        "TransformOutput",
        &Shape::Struct(&[
            req("S3OutputPath", &URI),
            opt("Accept", &TEXT),
            opt("AssembleWith", &Shape::Enum(&["None", "Line"])),
            opt("KmsKeyId", &ANY),
        ]),
    ),
    opt("DataCaptureConfig", &ANY),
    req(
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
    opt("Tags", &ANY),
    opt("ExperimentConfig", &ANY),
]);

static UPDATE_ENDPOINT_WEIGHTS: Shape = Shape::Struct(&[
    req("EndpointName", &NAME),
    req(
        "DesiredWeightsAndCapacities",
        &Shape::List(
            &Shape::Struct(&[
                req("VariantName", &NAME),
                opt("DesiredWeight", &ANY),
                opt("DesiredInstanceCount", &INT),
                opt("ServerlessUpdateConfig", &ANY),
            ]),
            10,
        ),
    ),
]);

static TRAINING_JOB_NAME: Shape = Shape::Struct(&[req("TrainingJobName", &NAME)]);
static MODEL_NAME: Shape = Shape::Struct(&[req("ModelName", &NAME)]);
static ENDPOINT_CONFIG_NAME: Shape = Shape::Struct(&[req("EndpointConfigName", &NAME)]);
static ENDPOINT_NAME: Shape = Shape::Struct(&[req("EndpointName", &NAME)]);
static TRANSFORM_JOB_NAME: Shape = Shape::Struct(&[req("TransformJobName", &NAME)]);
static LIST_MODELS: Shape = list_members!();
static LIST_JOBS: Shape = list_members!(
    opt("LastModifiedTimeAfter", &TIME),
    opt("LastModifiedTimeBefore", &TIME),
    opt("StatusEquals", &TEXT),
    opt("WarmPoolStatusEquals", &TEXT),
    opt("TrainingPlanArnEquals", &ARN),
);
static LIST_ENDPOINTS: Shape = list_members!(
    opt("LastModifiedTimeBefore", &TIME),
    opt("LastModifiedTimeAfter", &TIME),
    opt("StatusEquals", &TEXT),
);

/// The input shape of an implemented operation; `None` for any other.
pub fn input(operation: &str) -> Option<&'static Shape> {
    Some(match operation {
        "CreateTrainingJob" => &CREATE_TRAINING_JOB,
        "DescribeTrainingJob" | "StopTrainingJob" => &TRAINING_JOB_NAME,
        "ListTrainingJobs" | "ListTransformJobs" => &LIST_JOBS,
        "CreateModel" => &CREATE_MODEL,
        "DescribeModel" | "DeleteModel" => &MODEL_NAME,
        "ListModels" | "ListEndpointConfigs" => &LIST_MODELS,
        "CreateEndpointConfig" => &CREATE_ENDPOINT_CONFIG,
        "DescribeEndpointConfig" | "DeleteEndpointConfig" => &ENDPOINT_CONFIG_NAME,
        "CreateEndpoint" => &CREATE_ENDPOINT,
        "UpdateEndpoint" => &UPDATE_ENDPOINT,
        "UpdateEndpointWeightsAndCapacities" => &UPDATE_ENDPOINT_WEIGHTS,
        "DescribeEndpoint" | "DeleteEndpoint" => &ENDPOINT_NAME,
        "ListEndpoints" => &LIST_ENDPOINTS,
        "CreateTransformJob" => &CREATE_TRANSFORM_JOB,
        "DescribeTransformJob" | "StopTransformJob" => &TRANSFORM_JOB_NAME,
        _ => return None,
    })
}
