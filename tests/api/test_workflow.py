"""boto3 drives the seed's whole workflow against `modelstage api`: train the featurizer,
batch-transform the training data, train Linear Learner, deploy both as a serial pipeline,
invoke it, delete the endpoint. Once with file:// URIs, once with s3:// URIs against moto's
S3-compatible server."""

import datetime
import json

import pytest
from botocore.exceptions import ClientError

from conftest import REGION, ROOT, WAIT, ApiServer, failed_job, render, stage_lib

ABALONE = b"M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155"
DATA = ROOT / "examples/abalone/data/abalone.csv"


def test_the_seed_workflow(server, tmp_path):
    seed_workflow(
        server,
        tmp_path,
        {},
        model_tar=f"file://{tmp_path}/jobs/abalone-featurizer/output/model.tar.gz",
        featurized=lambda: (tmp_path / "featurized/abalone.csv.out").read_text(),
    )


def test_the_seed_workflow_on_s3(s3_server, tmp_path):
    s3 = s3_server.client("s3")
    s3.create_bucket(Bucket="abalone")
    s3.upload_file(str(DATA), "abalone", "data/abalone.csv")
    server = ApiServer(tmp_path / "state", env=s3_server.env())
    try:
        seed_workflow(
            server,
            tmp_path,
            {
                f"file://{DATA}": "s3://abalone/data/abalone.csv",
                f"file://{tmp_path}/": "s3://abalone/",
            },
            model_tar="s3://abalone/jobs/abalone-featurizer/output/model.tar.gz",
            featurized=lambda: s3.get_object(Bucket="abalone", Key="featurized/abalone.csv.out")["Body"]
            .read()
            .decode(),
        )
        learner = s3.head_object(Bucket="abalone", Key="jobs/abalone-linear-learner/output/model.tar.gz")
        assert learner["ContentLength"] > 0

        sm = server.client("sagemaker")
        with pytest.raises(ClientError) as missing:
            sm.create_model(
                ModelName="missing-data",
                PrimaryContainer={"Image": stage_lib("echo"), "ModelDataUrl": "s3://abalone/nothing/model.tar.gz"},
            )
        assert missing.value.response["Error"]["Code"] == "ValidationException"
        assert "Could not find model data at s3://abalone/nothing/model.tar.gz" in str(missing.value)
        empty = render(
            "featurizer-training-job.json", tmp_path, {f"file://{DATA}": "s3://abalone/nothing/"}, TrainingJobName="empty"
        )
        empty["OutputDataConfig"]["S3OutputPath"] = "s3://abalone/jobs"
        sm.create_training_job(**empty)
        reason = failed_job(sm, "training", "empty")
        assert "no S3 objects found under s3://abalone/nothing/" in reason, reason
        # The staging folder is emptied as each job and endpoint is done with it.
        assert not any((tmp_path / "state/staging").rglob("*.*")), list((tmp_path / "state/staging").rglob("*"))
    finally:
        assert server.stop() == 0, server.log()


def seed_workflow(server, tmp_path, locations, model_tar, featurized):
    sm = server.client("sagemaker")
    runtime = server.client("sagemaker-runtime")

    def doc(name, **changes):
        return render(name, tmp_path, locations, **changes)

    featurizer = doc("featurizer-training-job.json")
    arn = sm.create_training_job(**featurizer)["TrainingJobArn"]
    assert arn == f"arn:aws:sagemaker:{REGION}:000000000000:training-job/abalone-featurizer"
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="abalone-featurizer", WaiterConfig=WAIT)
    job = sm.describe_training_job(TrainingJobName="abalone-featurizer")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert isinstance(job["CreationTime"], datetime.datetime)
    assert job["CreationTime"] <= job["TrainingEndTime"]
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == model_tar

    sm.create_model(**doc("featurizer-model.json"))
    sm.create_transform_job(**doc("featurizer-transform-job.json"))
    sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName="abalone-featurize-training-data", WaiterConfig=WAIT
    )
    transform = sm.describe_transform_job(TransformJobName="abalone-featurize-training-data")
    assert transform["TransformJobStatus"] == "Completed", transform.get("FailureReason")
    lines = featurized().splitlines()
    rows = DATA.read_text().splitlines()
    assert len(lines) == len(rows)
    assert len(lines[0].split(",")) == 11, lines[0]

    sm.create_training_job(**doc("linear-learner-training-job.json"))
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="abalone-linear-learner", WaiterConfig=WAIT)
    learner = sm.describe_training_job(TrainingJobName="abalone-linear-learner")
    assert learner["TrainingJobStatus"] == "Completed", learner.get("FailureReason")

    pipeline = doc("pipeline-model.json")
    assert len(pipeline["Containers"]) == 2
    sm.create_model(**pipeline)
    sm.create_endpoint_config(
        EndpointConfigName="abalone-pipeline",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": pipeline["ModelName"],
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.xlarge",
            }
        ],
    )
    sm.create_endpoint(EndpointName="abalone", EndpointConfigName="abalone-pipeline")
    assert sm.describe_endpoint(EndpointName="abalone")["EndpointStatus"] in ("Creating", "InService")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="abalone", WaiterConfig=WAIT)

    answer = runtime.invoke_endpoint(
        EndpointName="abalone",
        ContentType="text/csv",
        Accept="application/json",
        Body=ABALONE,
        InferenceId="request-1",
    )
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["ContentType"].startswith("application/json")
    score = json.loads(answer["Body"].read())["predictions"][0]["score"]
    assert 9.3 <= score <= 9.9, score

    endpoints = sm.list_endpoints()["Endpoints"]
    assert [(e["EndpointName"], e["EndpointStatus"]) for e in endpoints] == [("abalone", "InService")]
    names = {j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]}
    assert {"abalone-featurizer", "abalone-linear-learner"} <= names
    assert {m["ModelName"] for m in sm.list_models()["Models"]} >= {"abalone-featurizer", pipeline["ModelName"]}

    sm.delete_endpoint(EndpointName="abalone")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="abalone", WaiterConfig=WAIT)
    with pytest.raises(ClientError) as gone:
        runtime.invoke_endpoint(EndpointName="abalone", ContentType="text/csv", Body=ABALONE)
    assert gone.value.response["Error"]["Code"] == "ValidationError"
    assert sm.list_endpoints()["Endpoints"] == []
