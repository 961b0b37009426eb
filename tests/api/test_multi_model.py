"""A multi-model endpoint through `modelstage api` (`"Mode": "MultiModel"`): two featurizer
models, fitted through the API on different rows of abalone, behind one endpoint; each request
names its model with TargetModel and gets that model's answer (the answer of a single-model
endpoint of the same model.tar.gz). Once with the models in a file:// folder, once under an
s3:// prefix of moto's server, where a model is fetched on its first request (so one uploaded
after the endpoint started is served too). The refusals are the service's: an unknown target,
no target, a target on a single-model endpoint."""

import shutil

import pytest
from botocore.exceptions import ClientError

from conftest import ROOT, WAIT, ApiServer, render, stage_lib

DATA_CSV = ROOT / "examples/abalone/data/abalone.csv"
ABALONE = b"M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155"


def invoke(runtime, endpoint, **extra):
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Accept="text/csv", Body=ABALONE, **extra
    )
    return answer["Body"].read().decode()


def deploy(sm, name, container):
    sm.create_model(ModelName=name, PrimaryContainer=container)
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=WAIT)


def refused(call):
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def featurizers(server, tmp_path_factory):
    """Two featurizer model.tar.gz fitted on different rows, and what each answers ABALONE
    behind a single-model endpoint."""
    work = tmp_path_factory.mktemp("featurizers")
    sm = server.client("sagemaker")
    rows = DATA_CSV.read_text().splitlines()
    for i, part in enumerate([rows[:800], rows[-800:]]):
        data = work / f"data-{i}.csv"
        data.write_text("\n".join(part) + "\n")
        sm.create_training_job(
            **render(
                "featurizer-training-job.json",
                work,
                {f"file://{DATA_CSV}": f"file://{data}"},
                TrainingJobName=f"featurizer-{i}",
            )
        )
    tarballs, answers = [], []
    runtime = server.client("sagemaker-runtime")
    for i in range(2):
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=f"featurizer-{i}", WaiterConfig=WAIT)
        job = sm.describe_training_job(TrainingJobName=f"featurizer-{i}")
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        tarball = work / f"jobs/featurizer-{i}/output/model.tar.gz"
        tarballs.append(tarball)
        deploy(sm, f"single-{i}", {"Image": stage_lib("featurizer"), "ModelDataUrl": f"file://{tarball}"})
        answers.append(invoke(runtime, f"single-{i}"))
    assert answers[0] != answers[1], "the two models must answer differently for the test to tell them apart"
    # A target model on a single-model endpoint is refused, as the service refuses it.
    code, message = refused(lambda: invoke(runtime, "single-0", TargetModel="m0.tar.gz"))
    assert code == "ValidationError"
    assert "is not a multi-model endpoint and does not support target model header" in message
    for i in range(2):
        sm.delete_endpoint(EndpointName=f"single-{i}")
    return tarballs, answers


def test_a_multi_model_endpoint_answers_with_the_model_each_request_names(server, featurizers, tmp_path):
    tarballs, expected = featurizers
    models = tmp_path / "models"
    (models / "group").mkdir(parents=True)
    shutil.copy(tarballs[0], models / "m0.tar.gz")
    shutil.copy(tarballs[1], models / "group/m1.tar.gz")
    sm = server.client("sagemaker")
    runtime = server.client("sagemaker-runtime")
    container = {"Image": stage_lib("featurizer"), "Mode": "MultiModel", "ModelDataUrl": f"file://{models}/"}
    deploy(sm, "mme", container)
    assert sm.describe_model(ModelName="mme")["PrimaryContainer"]["Mode"] == "MultiModel"

    for _ in range(2):
        assert invoke(runtime, "mme", TargetModel="m0.tar.gz") == expected[0]
        assert invoke(runtime, "mme", TargetModel="group/m1.tar.gz") == expected[1]

    code, message = refused(lambda: invoke(runtime, "mme", TargetModel="absent.tar.gz"))
    assert code == "ValidationError"
    assert 'Failed to download model data for TargetModel "absent.tar.gz"' in message, message
    code, message = refused(lambda: invoke(runtime, "mme"))
    assert code == "ValidationError"
    assert "missing a target model header" in message, message
    code, message = refused(lambda: invoke(runtime, "mme", TargetModel="../m0.tar.gz"))
    assert code == "ValidationError"
    assert "relative path inside the model folder" in message, message
    sm.delete_endpoint(EndpointName="mme")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="mme", WaiterConfig=WAIT)


def test_a_multi_model_endpoint_on_s3_fetches_each_model_on_its_first_request(s3_server, featurizers, tmp_path):
    tarballs, expected = featurizers
    s3 = s3_server.client("s3")
    s3.create_bucket(Bucket="mme")
    s3.upload_file(str(tarballs[0]), "mme", "models/m0.tar.gz")
    server = ApiServer(tmp_path / "state", env=s3_server.env())
    try:
        sm = server.client("sagemaker")
        runtime = server.client("sagemaker-runtime")
        container = {"Image": stage_lib("featurizer"), "Mode": "MultiModel", "ModelDataUrl": "s3://mme/models/"}
        deploy(sm, "mme-s3", container)
        assert sm.describe_model(ModelName="mme-s3")["PrimaryContainer"]["ModelDataUrl"] == "s3://mme/models/"
        assert invoke(runtime, "mme-s3", TargetModel="m0.tar.gz") == expected[0]
        code, message = refused(lambda: invoke(runtime, "mme-s3", TargetModel="m1.tar.gz"))
        assert code == "ValidationError"
        assert "Failed to download model data" in message and "s3://mme/models/" in message, message
        # Uploaded after the endpoint started: fetched on its first request, as the service does.
        s3.upload_file(str(tarballs[1]), "mme", "models/m1.tar.gz")
        assert invoke(runtime, "mme-s3", TargetModel="m1.tar.gz") == expected[1]
        assert invoke(runtime, "mme-s3", TargetModel="m0.tar.gz") == expected[0]
        assert server.log().count('fetched target model "m0.tar.gz"') == 1, server.log()
        sm.delete_endpoint(EndpointName="mme-s3")
        sm.get_waiter("endpoint_deleted").wait(EndpointName="mme-s3", WaiterConfig=WAIT)
        # The models fetched from S3 go with the endpoint.
        assert not any((tmp_path / "state/staging").rglob("*.tar.gz")), list((tmp_path / "state/staging").rglob("*"))
    finally:
        assert server.stop() == 0, server.log()
