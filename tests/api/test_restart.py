"""A restart of `modelstage api` keeps every resource: the endpoint that was in service comes
back and answers, and the training job that was running is marked Failed, not dropped."""

from conftest import ROOT, WAIT, ApiServer, render

INTERRUPTED = "interrupted by a restart of modelstage api"


def test_a_restart_keeps_resources_brings_endpoints_back_and_fails_running_jobs(tmp_path):
    state = tmp_path / "state"
    first = ApiServer(state)
    try:
        sm = first.client("sagemaker")
        sm.create_training_job(**render("featurizer-training-job.json", tmp_path))
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="abalone-featurizer", WaiterConfig=WAIT)
        model = render("featurizer-model.json", tmp_path)
        sm.create_model(**model)
        sm.create_endpoint_config(
            EndpointConfigName="featurizer", ProductionVariants=[{"VariantName": "v1", "ModelName": model["ModelName"]}]
        )
        sm.create_endpoint(EndpointName="featurizer", EndpointConfigName="featurizer")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="featurizer", WaiterConfig=WAIT)

        # A job on a large channel, still running when the server stops.
        big = tmp_path / "big"
        big.mkdir()
        rows = (ROOT / "examples/abalone/data/abalone.csv").read_text()
        (big / "abalone.csv").write_text(rows * 40)
        job = render("featurizer-training-job.json", tmp_path, TrainingJobName="running")
        job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"file://{big}"
        sm.create_training_job(**job)
        assert sm.describe_training_job(TrainingJobName="running")["TrainingJobStatus"] == "InProgress"
    finally:
        assert first.stop() == 0, first.log()

    second = ApiServer(state)
    try:
        sm = second.client("sagemaker")
        job = sm.describe_training_job(TrainingJobName="running")
        assert job["TrainingJobStatus"] == "Failed"
        assert job["FailureReason"] == INTERRUPTED
        assert sm.describe_training_job(TrainingJobName="abalone-featurizer")["TrainingJobStatus"] == "Completed"
        assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["abalone-featurizer"]
        sm.get_waiter("endpoint_in_service").wait(EndpointName="featurizer", WaiterConfig=WAIT)
        answer = second.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="featurizer", ContentType="text/csv", Accept="text/csv", Body=b"M,0.44,0.365,0.125,0.516,0.2155,0.114,0.155"
        )
        assert len(answer["Body"].read().decode().strip().split(",")) == 10
        sm.delete_endpoint(EndpointName="featurizer")
        sm.get_waiter("endpoint_deleted").wait(EndpointName="featurizer", WaiterConfig=WAIT)
    finally:
        assert second.stop() == 0, second.log()
