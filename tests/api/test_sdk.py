"""The SageMaker Python SDK (2.x) in its normal mode drives the seed's workflow against
`modelstage api` unchanged: only endpoint settings tell it where to go. AWS_ENDPOINT_URL sends
every service to moto's server (S3, where the SDK uploads the data and the jobs write; STS, which
the SDK asks for the account of its default bucket), AWS_ENDPOINT_URL_SAGEMAKER and
AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME send SageMaker to modelstage api. The SDK's telemetry is
turned off through its own settings file, as a user offline would."""

import json

import boto3
import pytest
import sagemaker
from sagemaker.deserializers import JSONDeserializer
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.model import Model
from sagemaker.pipeline import PipelineModel
from sagemaker.predictor import Predictor
from sagemaker.serializers import CSVSerializer

from conftest import ROOT, WAIT, ApiServer, stage_lib

ROLE = "arn:aws:iam::111122223333:role/SageMakerRole"
INSTANCE = "ml.m5.xlarge"
BUCKET = "modelstage-sdk"
ABALONE = "M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155"


@pytest.fixture
def sdk_session(s3_server, tmp_path, monkeypatch):
    api = ApiServer(tmp_path / "state", env=s3_server.env())
    settings = tmp_path / "sagemaker-config.yaml"
    settings.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    for name, value in {
        "AWS_ENDPOINT_URL": s3_server.url,
        "AWS_ENDPOINT_URL_SAGEMAKER": api.url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": api.url,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "not-a-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(settings),
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield api, sagemaker.Session(boto_session=boto3.Session(), default_bucket=BUCKET)
    finally:
        assert api.stop() == 0, api.log()


def estimator(session, stage, **hyperparameters):
    """An Estimator of the stage library `stage`, writing to the default bucket."""
    return Estimator(
        image_uri=stage_lib(stage),
        role=ROLE,
        instance_count=1,
        instance_type=INSTANCE,
        output_path=f"s3://{BUCKET}/jobs",
        hyperparameters=hyperparameters,
        sagemaker_session=session,
    )


def test_the_sagemaker_sdk_fits_transforms_deploys_and_predicts(sdk_session):
    api, session = sdk_session
    # The default bucket, which the SDK creates when it is missing.
    data = session.upload_data(str(ROOT / "examples/abalone/data/abalone.csv"), key_prefix="data")

    featurizer = estimator(
        session,
        "featurizer",
        columns="sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight",
        categorical="sex",
        label="rings",
    )
    featurizer.fit({"train": TrainingInput(data, content_type="text/csv")}, logs=False, job_name="sdk-featurizer")
    assert featurizer.model_data == f"s3://{BUCKET}/jobs/sdk-featurizer/output/model.tar.gz"

    transformer = featurizer.transformer(
        instance_count=1,
        instance_type=INSTANCE,
        strategy="MultiRecord",
        assemble_with="Line",
        accept="text/csv",
        output_path=f"s3://{BUCKET}/featurized",
        # The SDK would name the model after the image, here a file name with a dot, which the
        # service's name pattern refuses.
        model_name="sdk-featurizer",
    )
    transformer.transform(data, content_type="text/csv", split_type="Line", job_name="sdk-featurize", logs=False)
    transformer.wait(logs=False)
    s3 = session.boto_session.client("s3")
    rows = s3.get_object(Bucket=BUCKET, Key="featurized/abalone.csv.out")["Body"].read().decode().splitlines()
    assert len(rows) == len((ROOT / "examples/abalone/data/abalone.csv").read_text().splitlines())

    learner = estimator(session, "linear_learner", feature_dim="10", predictor_type="regressor", mini_batch_size="32")
    learner.fit(
        {"train": TrainingInput(f"s3://{BUCKET}/featurized", content_type="text/csv")},
        logs=False,
        job_name="sdk-linear-learner",
    )

    pipeline = PipelineModel(
        models=[
            Model(image_uri=stage_lib("featurizer"), model_data=featurizer.model_data, role=ROLE, sagemaker_session=session),
            Model(image_uri=stage_lib("linear_learner"), model_data=learner.model_data, role=ROLE, sagemaker_session=session),
        ],
        role=ROLE,
        name="sdk-abalone-pipeline",
        sagemaker_session=session,
    )
    pipeline.deploy(initial_instance_count=1, instance_type=INSTANCE, endpoint_name="sdk-abalone")
    predictor = Predictor(
        "sdk-abalone", sagemaker_session=session, serializer=CSVSerializer(), deserializer=JSONDeserializer()
    )
    answer = predictor.predict(ABALONE)
    score = answer["predictions"][0]["score"]
    assert 9.3 <= score <= 9.9, json.dumps(answer)

    predictor.delete_endpoint()
    sm = session.sagemaker_client
    sm.get_waiter("endpoint_deleted").wait(EndpointName="sdk-abalone", WaiterConfig=WAIT)
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs(NameContains="sdk-abalone")["EndpointConfigs"] == []
    # What the SDK called, from the server's log: each operation it needs is implemented.
    assert "is not implemented" not in api.log(), api.log()
