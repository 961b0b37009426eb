"""What `modelstage api` refuses, and how: the service's exception names and statuses, and
messages that say what to fix. The client does not validate parameters here, so that the
server's own validation is what answers."""

import json
import socket
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import ROOT, WAIT, ApiServer, free_port, render, stage_lib


def error(call, **kwargs):
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


@pytest.fixture(scope="module")
def sm(server):
    return server.client("sagemaker", parameter_validation=False)


def raw(server, operation, body):
    """One control-plane request sent as it is (boto3 cannot send a member its model lacks)."""
    request = urllib.request.Request(
        server.url + "/",
        data=body,
        headers={"X-Amz-Target": f"SageMaker.{operation}", "Content-Type": "application/x-amz-json-1.1"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_an_unknown_member_is_named_with_a_suggestion(server, sm):
    model = {
        "ModelName": "typo",
        "PrimaryContainer": {"Image": stage_lib("featurizer"), "ModelDataURL": "file:///nowhere/model.tar.gz"},
    }
    status, body = raw(server, "CreateModel", json.dumps(model).encode())
    assert (status, body["__type"]) == (400, "ValidationException"), body
    assert "unknown member \"ModelDataURL\" at 'PrimaryContainer'" in body["message"], body
    assert "did you mean 'ModelDataUrl'?" in body["message"], body
    _, code, _ = error(sm.describe_model, ModelName="typo")
    assert code == "ValidationException", "the refused model must not exist"


def test_a_missing_required_member_is_named(sm):
    status, code, message = error(sm.create_endpoint, EndpointName="no-config")
    assert (status, code) == (400, "ValidationException")
    assert "Value null at 'EndpointConfigName'" in message, message


def test_names_and_enums_are_checked(sm):
    _, code, message = error(sm.describe_endpoint, EndpointName="under_score")
    assert code == "ValidationException" and "regular expression" in message, message
    _, code, message = error(
        sm.create_model,
        ModelName="bad-mode",
        Containers=[{"Image": stage_lib("featurizer")}, {"Image": stage_lib("linear_learner")}],
        InferenceExecutionConfig={"Mode": "Parallel"},
    )
    assert code == "ValidationException" and "[Serial, Direct]" in message, message


def test_a_duplicate_training_job_is_resource_in_use(sm, tmp_path):
    job = render("featurizer-training-job.json", tmp_path, TrainingJobName="twice")
    sm.create_training_job(**job)
    status, code, message = error(sm.create_training_job, **job)
    assert (status, code) == (400, "ResourceInUse"), message
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="twice", WaiterConfig=WAIT)


def test_missing_resources_are_reported_as_the_service_reports_them(sm):
    for call, member, what in [
        (sm.describe_model, "ModelName", "Could not find model"),
        (sm.describe_endpoint, "EndpointName", "Could not find endpoint"),
        (sm.describe_endpoint_config, "EndpointConfigName", "Could not find endpoint configuration"),
        (sm.describe_training_job, "TrainingJobName", "Requested resource not found"),
        (sm.describe_transform_job, "TransformJobName", "Requested resource not found"),
        (sm.delete_model, "ModelName", "Could not find model"),
    ]:
        status, code, message = error(call, **{member: "nowhere"})
        assert (status, code) == (400, "ValidationException"), (member, message)
        assert what in message and "nowhere" in message, message
    _, code, _ = error(sm.stop_training_job, TrainingJobName="nowhere")
    assert code == "ResourceNotFound"


def test_an_unsupported_operation_is_named(sm):
    status, code, message = error(sm.list_notebook_instances)
    assert (status, code) == (400, "UnknownOperationException")
    assert "ListNotebookInstances" in message, message


def test_a_body_that_is_not_json_is_refused(server):
    status, body = raw(server, "ListModels", b"{not json")
    assert (status, body["__type"]) == (400, "ValidationException"), body
    assert "not JSON" in body["message"], body


def test_invoking_a_missing_endpoint_is_a_validation_error(server):
    runtime = server.client("sagemaker-runtime")
    status, code, message = error(runtime.invoke_endpoint, EndpointName="nowhere", ContentType="text/csv", Body=b"1")
    assert (status, code) == (400, "ValidationError")
    assert "nowhere" in message and "not found" in message, message


def test_a_training_job_whose_stage_fails_is_failed_with_its_reason(sm, tmp_path):
    # Linear Learner on the raw data: its first column, the sex, is not a number.
    job = render("linear-learner-training-job.json", tmp_path, TrainingJobName="raw-data")
    job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"file://{ROOT}/examples/abalone/data"
    sm.create_training_job(**job)
    waiter = sm.get_waiter("training_job_completed_or_stopped")
    with pytest.raises(Exception):
        waiter.wait(TrainingJobName="raw-data", WaiterConfig=WAIT)
    described = sm.describe_training_job(TrainingJobName="raw-data")
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"], described
    assert described["SecondaryStatusTransitions"][-1]["Status"] == "Failed"


def test_a_container_error_is_a_model_error_and_a_model_that_cannot_load_fails_its_endpoint(server, sm, tmp_path):
    job = render("featurizer-training-job.json", tmp_path, TrainingJobName="for-model-error")
    sm.create_training_job(**job)
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="for-model-error", WaiterConfig=WAIT)
    artifacts = sm.describe_training_job(TrainingJobName="for-model-error")["ModelArtifacts"]["S3ModelArtifacts"]
    sm.create_model(ModelName="featurizer-only", PrimaryContainer={"Image": stage_lib("featurizer"), "ModelDataUrl": artifacts})
    sm.create_model(ModelName="cannot-load", PrimaryContainer={"Image": stage_lib("failing_model")})
    for model in ["featurizer-only", "cannot-load"]:
        sm.create_endpoint_config(
            EndpointConfigName=model, ProductionVariants=[{"VariantName": "v1", "ModelName": model}]
        )
        sm.create_endpoint(EndpointName=model, EndpointConfigName=model)

    sm.get_waiter("endpoint_in_service").wait(EndpointName="featurizer-only", WaiterConfig=WAIT)
    runtime = server.client("sagemaker-runtime")
    status, code, message = error(
        runtime.invoke_endpoint, EndpointName="featurizer-only", ContentType="text/csv", Body=b"not,a,row"
    )
    assert (status, code) == (424, "ModelError"), message
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="featurizer-only", ContentType="text/csv", Body=b"not,a,row")
    body = caught.value.response
    assert 400 <= body["OriginalStatusCode"] < 600, body
    assert body["LogStreamArn"].endswith("/aws/sagemaker/Endpoints/featurizer-only"), body
    assert body["OriginalMessage"], body

    with pytest.raises(Exception):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="cannot-load", WaiterConfig=WAIT)
    failed = sm.describe_endpoint(EndpointName="cannot-load")
    assert failed["EndpointStatus"] == "Failed"
    assert failed["FailureReason"], failed
    status, code, message = error(runtime.invoke_endpoint, EndpointName="cannot-load", ContentType="text/csv", Body=b"1")
    assert (status, code) == (400, "ValidationError") and "not in service" in message, message
    for name in ["featurizer-only", "cannot-load"]:
        sm.delete_endpoint(EndpointName=name)
        sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=WAIT)


def test_a_stopped_training_job_ends_stopped(sm, tmp_path):
    # A large channel, so that the job still runs when the stop arrives.
    big = tmp_path / "big"
    big.mkdir()
    (big / "abalone.csv").write_text((ROOT / "examples/abalone/data/abalone.csv").read_text() * 40)
    job = render("featurizer-training-job.json", tmp_path, TrainingJobName="to-stop")
    job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"file://{big}"
    sm.create_training_job(**job)
    sm.stop_training_job(TrainingJobName="to-stop")
    assert sm.describe_training_job(TrainingJobName="to-stop")["TrainingJobStatus"] in ("Stopping", "Stopped")
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="to-stop", WaiterConfig=WAIT)
    stopped = sm.describe_training_job(TrainingJobName="to-stop")
    assert stopped["TrainingJobStatus"] == "Stopped", stopped
    assert stopped["SecondaryStatusTransitions"][-1]["Status"] == "Stopped"
    assert "ModelArtifacts" not in stopped or not stopped["ModelArtifacts"].get("S3ModelArtifacts")
    _, code, _ = error(sm.stop_training_job, TrainingJobName="to-stop")
    assert code == "ValidationException", "a stopped job cannot be stopped again"


def test_one_endpoint_more_than_max_running_is_resource_limit_exceeded(tmp_path):
    limited = ApiServer(tmp_path / "state", "--max-running", "1")
    try:
        sm = limited.client("sagemaker")
        sm.create_model(ModelName="echo", PrimaryContainer={"Image": stage_lib("echo")})
        sm.create_endpoint_config(EndpointConfigName="echo", ProductionVariants=[{"VariantName": "v1", "ModelName": "echo"}])
        sm.create_endpoint(EndpointName="first", EndpointConfigName="echo")
        status, code, message = error(sm.create_endpoint, EndpointName="second", EndpointConfigName="echo")
        assert (status, code) == (400, "ResourceLimitExceeded"), message
        assert "--max-running 1" in message, message
        sm.get_waiter("endpoint_in_service").wait(EndpointName="first", WaiterConfig=WAIT)
        answer = limited.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="first", ContentType="application/json", Body=b'{"x": 1}'
        )
        assert answer["InvokedProductionVariant"] == "v1"
        sm.delete_endpoint(EndpointName="first")
        sm.get_waiter("endpoint_deleted").wait(EndpointName="first", WaiterConfig=WAIT)
        sm.create_endpoint(EndpointName="second", EndpointConfigName="echo")
        try:
            sm.get_waiter("endpoint_in_service").wait(EndpointName="second", WaiterConfig=WAIT)
        except Exception:
            described = sm.describe_endpoint(EndpointName="second")
            raise AssertionError(f"{described.get('FailureReason')}\n{limited.log()}")
    finally:
        assert limited.stop() == 0, limited.log()


def test_bodies_too_large_or_too_slow_are_refused_and_their_connection_closed(tmp_path):
    bounded = ApiServer(
        tmp_path / "state", "--max-payload-mb", "1", "--max-request-kb", "1", "--body-timeout", "1"
    )
    host, port = bounded.url.removeprefix("http://").rsplit(":", 1)
    try:
        for path, size, kind in [
            ("/endpoints/e/invocations", 1_000_001, "ValidationError"),
            ("/", 1025, "ValidationException"),
        ]:
            # Refused on the declared length, before any of the body is sent.
            status, body = sent(host, port, path, f"Content-Length: {size}\r\n\r\n".encode())
            assert status == 413, (path, status, body)
            assert json.loads(body)["__type"] == kind, body
            assert "larger than" in json.loads(body)["message"], body
        # A body that stops half way: refused once the second has passed, not held open.
        started = time.monotonic()
        status, body = sent(host, port, "/endpoints/e/invocations", b"Content-Length: 100\r\n\r\nhalf")
        assert status == 408, (status, body)
        assert "--body-timeout" in json.loads(body)["message"], body
        assert time.monotonic() - started < 30
    finally:
        assert bounded.stop() == 0, bounded.log()


def sent(host, port, path, rest):
    """POSTs a raw request (the head's end and the body in `rest`); the status and body of the
    answer, read until the server closes the connection."""
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
            + b"X-Amz-Target: SageMaker.ListModels\r\n"
            + rest
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_a_path_neither_service_answers_is_named(server):
    for method, path, status, code in [
        ("POST", "/elsewhere", 404, "UnknownOperationException"),
        ("GET", "/endpoints/abalone/invocations", 405, "MethodNotAllowed"),
    ]:
        request = urllib.request.Request(server.url + path, data=b"" if method == "POST" else None, method=method)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        body = json.loads(refused.value.read())
        assert (refused.value.code, body["__type"]) == (status, code), body
        assert path in body["message"], body


def test_an_s3_store_that_does_not_answer_is_named_in_the_refusal(tmp_path):
    closed = free_port()  # nothing listens there
    env = {
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{closed}",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "not-a-secret",
    }
    api = ApiServer(tmp_path / "state", env=env)
    try:
        sm = api.client("sagemaker")
        started = time.monotonic()
        status, code, message = error(
            sm.create_model,
            ModelName="unreachable",
            PrimaryContainer={"Image": stage_lib("echo"), "ModelDataUrl": "s3://bucket/model.tar.gz"},
        )
        assert (status, code) == (400, "ValidationException"), message
        assert "cannot read s3://bucket/model.tar.gz" in message and f"127.0.0.1:{closed}" in message, message
        assert time.monotonic() - started < 60, "the S3 retries are bounded"
    finally:
        assert api.stop() == 0, api.log()
