//! The input shapes of the operations `modelstage api` implements, as the service's API model
//! declares them: every member a real request may carry (so requests written for the service
//! pass), which are required, and the constraints that matter locally. Structures only the cloud
//! uses (KMS, capture, ...) are accepted as they are. The three requests local mode reads too
//! (CreateTrainingJob, CreateModel, CreateTransformJob) are [`crate::request_shapes`]'.

use crate::request_shapes::{opt, req, Shape, ANY, ARN, BOOL, INT, NAME, TEXT};
use crate::request_shapes::{CREATE_MODEL, CREATE_TRAINING_JOB, CREATE_TRANSFORM_JOB};

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
