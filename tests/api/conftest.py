"""Fixtures of the boto3 tests of `modelstage api`: the server, started by the tests themselves
on a free port of 127.0.0.1 with a state folder of their own, boto3 clients pointed at it
with dummy credentials, and an S3-compatible server (moto's, from PyPI) for the `s3://` tests. Run through `cargo test --test e2e api::` (ci/test.sh does), which sets
MODELSTAGE_BIN and MODELSTAGE_STAGE_DIR."""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import WaiterError

ROOT = pathlib.Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
# The boto3 waiters poll every second here, for up to ten minutes on a loaded machine.
WAIT = {"Delay": 1, "MaxAttempts": 600}
STARTUP_SECONDS = 120


def required_env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"{name} is not set: run these tests through `cargo test --test e2e api::` (ci/test.sh does)"
        )
    return value


def stage_lib(name):
    lib = pathlib.Path(required_env("MODELSTAGE_STAGE_DIR")) / f"lib{name}.so"
    if not lib.is_file():
        raise RuntimeError(f"{lib} is missing: build the workspace first (cargo build --workspace)")
    return str(lib)


class ApiServer:
    """One `modelstage api` process; its log lines are collected."""

    def __init__(self, state_dir, *options, env=None):
        self.state_dir = state_dir
        self.lines = []
        self.process = subprocess.Popen(
            [required_env("MODELSTAGE_BIN"), "api", "--port", "0", "--state-dir", str(state_dir), *options],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = threading.Event()
        self.url = None

        def read():
            for line in self.process.stderr:
                self.lines.append(line.rstrip("\n"))
                found = re.search(r"listening on (http://\S+)", line)
                if found and self.url is None:
                    self.url = found.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(STARTUP_SECONDS) or self.url is None:
            self.process.kill()
            raise RuntimeError("modelstage api did not start:\n" + self.log())

    def log(self):
        return "\n".join(self.lines)

    def client(self, service, **config):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="not-a-secret",
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def stop(self):
        """SIGTERM, as Ctrl-C stops it; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    api = ApiServer(tmp_path_factory.mktemp("state"))
    yield api
    assert api.stop() == 0, api.log()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """moto's S3-compatible server (`moto[server]`), on a free port of 127.0.0.1, offline."""

    def __init__(self):
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", self.url.rsplit(":", 1)[1]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                self.client("s3").list_buckets()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    raise RuntimeError("moto's server did not start:\n" + self.process.stderr.read())
                time.sleep(0.2)

    def client(self, service):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="not-a-secret",
        )

    def env(self):
        """What `modelstage api` needs to use it: the endpoint setting and dummy credentials. No
        region: S3 requests are signed for the region of the request they serve."""
        return {
            "AWS_ENDPOINT_URL_S3": self.url,
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "not-a-secret",
        }

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)


@pytest.fixture(scope="session")
def s3_server():
    server = S3Server()
    yield server
    server.stop()


def render(name, work, locations=None, **changes):
    """An example request document of examples/abalone, its placeholders filled in, then each
    location of `locations` (a `file://` prefix) replaced by its value (an `s3://` one)."""
    text = (ROOT / "examples/abalone" / name).read_text()
    stage_dir = required_env("MODELSTAGE_STAGE_DIR")
    text = text.replace("@ROOT@/target/release", stage_dir).replace("@ROOT@", str(ROOT))
    text = text.replace("@WORK@", str(work))
    for old, new in (locations or {}).items():
        text = text.replace(old, new)
    document = json.loads(text)
    document.update(changes)
    return document


def wait_until(predicate, what, seconds=600):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def failed_job(sm, kind, name):
    """Waits for the `training` or `transform` job `name` to fail; returns its FailureReason."""
    member = f"{kind.capitalize()}JobName"
    with pytest.raises(WaiterError):
        sm.get_waiter(f"{kind}_job_completed_or_stopped").wait(**{member: name}, WaiterConfig=WAIT)
    described = getattr(sm, f"describe_{kind}_job")(**{member: name})
    assert described[f"{kind.capitalize()}JobStatus"] == "Failed", described
    return described["FailureReason"]
