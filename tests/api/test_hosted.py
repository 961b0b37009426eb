"""A lone stage library's endpoint is served on `modelstage api`'s own HTTP threads, which drive
its worker processes directly (no `modelstage serve` process between). What that must keep:
a stage that aborts or hangs costs its own request only; endpoints served side by side each
answer their own requests; and an endpoint deleted leaves no worker process or thread behind."""

import json
import os
import threading
import time

import pytest
from botocore.exceptions import ClientError

from conftest import WAIT, ApiServer, stage_lib, wait_until


@pytest.fixture(scope="module")
def sm(server):
    return server.client("sagemaker")


@pytest.fixture(scope="module")
def runtime(server):
    return server.client("sagemaker-runtime", read_timeout=120)


def create(sm, name, lib, environment=None):
    sm.create_model(
        ModelName=name, PrimaryContainer={"Image": stage_lib(lib), "Environment": environment or {}}
    )
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{"VariantName": "v1", "ModelName": name}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=WAIT)


def delete(sm, name):
    sm.delete_endpoint(EndpointName=name)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=WAIT)
    sm.delete_endpoint_config(EndpointConfigName=name)
    sm.delete_model(ModelName=name)


def invoke(runtime, name, body, content_type="application/octet-stream"):
    answer = runtime.invoke_endpoint(EndpointName=name, ContentType=content_type, Accept=content_type, Body=body)
    return answer["Body"].read()


def model_error(runtime, name, body):
    with pytest.raises(ClientError) as caught:
        invoke(runtime, name, body)
    return caught.value.response


def children(pid):
    """The processes whose parent is `pid` (the API's worker processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the name: state, then the parent's pid. A zombie is a process that has ended.
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def no_children(pid, what, seconds):
    """Waits until `pid` has no child process left; else fails naming those left."""
    deadline = time.monotonic() + seconds
    while children(pid):
        if time.monotonic() > deadline:
            left = []
            for child in children(pid):
                try:
                    with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                        left.append((child, cmdline.read().replace(b"\0", b" ").decode(errors="replace")))
                except OSError:
                    pass
            raise AssertionError(f"timed out waiting for {what}; left: {left}")
        time.sleep(0.2)


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def test_the_endpoint_is_served_by_the_api_process_itself(server, sm, runtime):
    create(sm, "hosted-echo", "echo")
    assert invoke(runtime, "hosted-echo", b"[1, 2]", "application/json") == b"[1, 2]"
    assert any(
        'endpoint "hosted-echo" variant "v1" is in service at this process' in line for line in server.lines
    ), server.log()
    # Its workers are the API's own children: no `modelstage serve` between.
    workers = children(server.process.pid)
    assert workers, "no worker process under modelstage api"
    for pid in workers:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            assert cmdline.read().split(b"\0")[1] == b"worker", pid
    delete(sm, "hosted-echo")


def test_a_stage_that_aborts_costs_its_own_request(sm, runtime):
    create(sm, "aborts", "abort_on_request", {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    body = model_error(runtime, "aborts", b"abort")
    assert body["Error"]["Code"] == "ModelError", body
    assert body["OriginalStatusCode"] == 500, body
    assert "SIGABRT" in body["OriginalMessage"], body
    # The worker is replaced; the endpoint answers again.
    wait_until(lambda: _answers(runtime, "aborts"), "the aborted worker's replacement", seconds=120)
    for i in range(5):
        assert invoke(runtime, "aborts", f"hello {i}".encode()) == f"hello {i}".encode()
    delete(sm, "aborts")


def _answers(runtime, name):
    try:
        return invoke(runtime, name, b"ping") == b"ping"
    except ClientError:
        return False


def test_a_request_that_hangs_costs_its_own_request_only(sm, runtime):
    # Two workers, one request thread each: the hung request holds one until its timeout; the
    # requests sent meanwhile are all answered by the other, before that timeout.
    create(
        sm,
        "hangs",
        "sleep_from_body",
        {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "MODELSTAGE_WORKER_THREADS": "1", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "10"},
    )
    outcome = {}

    def hang():
        outcome["hung"] = model_error(runtime, "hangs", b"600000")

    hung = threading.Thread(target=hang)
    hung.start()
    time.sleep(0.5)
    answers = [invoke(runtime, "hangs", b"0") for _ in range(20)]
    still_hung = "hung" not in outcome
    hung.join(120)
    assert answers == [b"0"] * 20
    assert still_hung, "the hung request ended before its neighbours were answered"
    body = outcome["hung"]
    assert body["OriginalStatusCode"] == 504, body
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" in body["OriginalMessage"], body
    # Its worker is replaced: the endpoint still answers.
    assert invoke(runtime, "hangs", b"0") == b"0"
    delete(sm, "hangs")


def test_endpoints_side_by_side_each_answer_their_own_requests(sm, runtime):
    create(sm, "side-echo", "echo")
    create(sm, "side-doubler", "doubler")
    failures = []

    def client(n):
        for i in range(50):
            value = n * 100 + i
            try:
                echoed = invoke(runtime, "side-echo", f"[{value}]".encode(), "application/json")
                doubled = invoke(runtime, "side-doubler", f"[{value}]".encode(), "application/json")
            except ClientError as e:
                failures.append(str(e))
                return
            if echoed != f"[{value}]".encode() or json.loads(doubled) != [2 * value]:
                failures.append((value, echoed, doubled))

    clients = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(300)
    assert failures == []
    delete(sm, "side-echo")
    delete(sm, "side-doubler")


def test_deleted_endpoints_leave_no_worker_or_thread_behind(server, sm, runtime):
    pid = server.process.pid
    create(sm, "cycle", "echo")
    delete(sm, "cycle")
    no_children(pid, "the workers of a deleted endpoint to end", 60)
    before = threads(pid)
    for _ in range(5):
        create(sm, "cycle", "echo", {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
        assert invoke(runtime, "cycle", b"[1]", "application/json") == b"[1]"
        assert len(children(pid)) == 2
        delete(sm, "cycle")
    no_children(pid, "the workers of a deleted endpoint to end", 60)
    # Each endpoint had an accept thread and a thread per worker: none may be left over. (The
    # threads of the endpoints' start may still be ending: allow for them.)
    wait_until(lambda: threads(pid) <= before + 1, f"the thread count to fall back to {before}", seconds=60)


def test_a_worker_starting_when_its_endpoint_is_deleted_does_not_outlive_it(server, sm, runtime):
    pid = server.process.pid
    no_children(pid, "the workers of earlier endpoints to end", 60)
    create(
        sm,
        "restarting",
        "slow",
        {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "1", "FIXTURE_MODEL_SLEEP_MS": "3000"},
    )
    body = model_error(runtime, "restarting", b"sleep:5000")
    assert body["OriginalStatusCode"] == 504, body
    # The worker that timed out is replaced, and the replacement takes 3 s to load its model: the
    # endpoint is deleted meanwhile.
    delete(sm, "restarting")
    no_children(pid, "the worker that was starting to end", 30)


def test_the_api_invocation_timeout_bounds_a_hosted_endpoint(tmp_path):
    # The stage's own timeout is the default 60 s: the API's shorter one answers first.
    bounded = ApiServer(tmp_path / "state", "--invocation-timeout", "1")
    try:
        sm = bounded.client("sagemaker")
        runtime = bounded.client("sagemaker-runtime", read_timeout=120)
        create(sm, "slow", "sleep_from_body")
        started = time.monotonic()
        body = model_error(runtime, "slow", b"30000")
        assert time.monotonic() - started < 25
        assert body["Error"]["Code"] == "ModelError", body
        assert "--invocation-timeout" in body["Error"]["Message"], body
        assert invoke(runtime, "slow", b"0") == b"0"
    finally:
        assert bounded.stop() == 0, bounded.log()
