"""Benchmark: what `modelstage api` adds. invoke_endpoint through the API's runtime
(`POST /endpoints/NAME/invocations`) against `/invocations` of the same endpoint directly, at 1, 8
and 64 connections, in the same run; and CreateEndpoint to InService for a process stage. Run:

    python3 bench/api.py [seconds per run] [runs]
    python3 bench/api.py callgrind [requests]

The second form counts the instructions the API process spends per forwarded invocation:
`modelstage api` runs under valgrind's callgrind, instrumentation on only while REQUESTS
invocations (default 2,000, after 300 to warm up) go one after the other over one keep-alive
connection; the endpoint runs outside valgrind. Instruction counts do not move with the
machine's load, so they compare two builds where wall-clock figures cannot. Needs valgrind.

The endpoint serves the echo stage (one `modelstage serve` process), so the API's own cost is
not hidden behind a model's. MODELSTAGE_BIN runs another modelstage binary (its folder must hold
libecho.so) and skips the build. Needs boto3 (tests/api/requirements.txt) and wrk. Results are
printed as a Markdown table for docs/benchmarks.md.
"""
import glob
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import boto3
from botocore.config import Config

import harness as h

CALLGRIND = len(sys.argv) > 1 and sys.argv[1] == "callgrind"
SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 and not CALLGRIND else 10
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 and not CALLGRIND else 3
CREATES = 5
BODY = '{"instances": [[1.0, 2.0, 3.0]]}'


class Api:
    def __init__(self, modelstage, state, prefix=()):
        self.port = h.free_port()
        self.lines = []
        self.proc = subprocess.Popen(
            [*prefix, modelstage, "api", "--port", str(self.port), "--state-dir", state],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}"
        self.wait_for(lambda: any("listening on" in line for line in self.lines), "the API to start")

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, predicate, what, seconds=120):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.005)
        raise RuntimeError(f"timed out waiting for {what}:\n{''.join(self.lines)}")

    def client(self, service):
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test",
                            config=Config(retries={"max_attempts": 1}, read_timeout=300))

    def direct_url(self, endpoint):
        """Where the endpoint's container answers, from the API's log."""
        for line in self.lines:
            found = re.search(rf'endpoint "{endpoint}" variant "[^"]*" is in service at http://127.0.0.1:(\d+)', line)
            if found:
                return int(found.group(1))
        raise RuntimeError(f"no address for {endpoint} in the log")


def in_service(sm, name):
    """Seconds from CreateEndpoint to a DescribeEndpoint that says InService (polled every 5 ms)."""
    t0 = time.perf_counter()
    sm.create_endpoint(EndpointName=name, EndpointConfigName="echo")
    while True:
        status = sm.describe_endpoint(EndpointName=name)["EndpointStatus"]
        if status == "InService":
            return time.perf_counter() - t0
        if status == "Failed":
            raise RuntimeError(sm.describe_endpoint(EndpointName=name)["FailureReason"])
        time.sleep(0.005)


def modelstage_bin():
    modelstage = os.environ.get("MODELSTAGE_BIN")
    if modelstage is None:
        h.build("modelstage", "echo")
        modelstage = os.path.join(h.RELEASE, "modelstage")
    return modelstage


def echo_model(api, libs):
    sm = api.client("sagemaker")
    sm.create_model(ModelName="echo", PrimaryContainer={"Image": os.path.join(libs, "libecho.so")})
    sm.create_endpoint_config(EndpointConfigName="echo",
                              ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "echo"}])
    return sm


def invocations(port, count):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    for _ in range(count):
        conn.request("POST", "/endpoints/echo/invocations", BODY, {"Content-Type": "application/json"})
        answer = conn.getresponse()
        data = answer.read().decode()
        assert answer.status == 200 and data == BODY, (answer.status, data)
    conn.close()


def callgrind(requests):
    """Instructions of the API process per forwarded invocation."""
    modelstage = modelstage_bin()
    out = os.path.join(tempfile.mkdtemp(), "callgrind.out")
    api = Api(modelstage, tempfile.mkdtemp(),
              prefix=("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"))
    try:
        sm = echo_model(api, os.path.dirname(modelstage))
        in_service(sm, "echo")
        invocations(api.port, 300)
        subprocess.run(["callgrind_control", "-i", "on", str(api.proc.pid)], check=True, capture_output=True)
        invocations(api.port, requests)
        subprocess.run(["callgrind_control", "-i", "off", str(api.proc.pid)], check=True, capture_output=True)
        # Written now: a server slow to stop under valgrind may be killed before its last dump.
        subprocess.run(["callgrind_control", "-d", str(api.proc.pid)], check=True, capture_output=True)
    finally:
        h.stop(api.proc)
    total = 0
    for name in glob.glob(out + "*"):
        with open(name) as dump:
            total += next((int(line.split()[1]) for line in dump if line.startswith("totals:")), 0)
    print(f"{modelstage}: {requests:,} invocations through modelstage api, {total:,} instructions in "
          f"the API process: {total / requests:,.0f} per invocation")


def main():
    if CALLGRIND:
        callgrind(int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
        return
    modelstage = modelstage_bin()
    libs = os.path.dirname(modelstage)
    api = Api(modelstage, tempfile.mkdtemp())
    try:
        sm = echo_model(api, libs)
        creates = []
        for i in range(CREATES):
            creates.append(in_service(sm, f"create-{i}"))
            sm.delete_endpoint(EndpointName=f"create-{i}")
        in_service(sm, "echo")
        direct = api.direct_url("echo")
        answer = api.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="echo", ContentType="application/json", Body=BODY)["Body"].read().decode()
        assert answer == BODY, answer
        rows = {}
        for label, port, path in [
            ("the endpoint directly (/invocations)", direct, "/invocations"),
            ("through modelstage api (/endpoints/echo/invocations)", api.port, "/endpoints/echo/invocations"),
        ]:
            rows[label] = {}
            for c in (1, 8, 64):
                results = [h.wrk(port, c, SECONDS, BODY, "application/json", path=path) for _ in range(RUNS)]
                rows[label][c] = tuple(statistics.median(r[i] for r in results) for i in range(3))
    finally:
        h.stop(api.proc)

    print(f"wrk on loopback, the echo stage, `{BODY}`, median of {RUNS} runs of {SECONDS} s, "
          f"{os.cpu_count()} CPUs\n")
    print("| path | req/s 1 / 8 / 64 conn. | p50 ms 1 / 8 / 64 | p99 ms 1 / 8 / 64 |")
    print("| --- | --- | --- | --- |")
    for label, r in rows.items():
        print(f"| {label} | {r[1][0]:,.0f} / {r[8][0]:,.0f} / {r[64][0]:,.0f} "
              f"| {r[1][1]:.3f} / {r[8][1]:.3f} / {r[64][1]:.3f} "
              f"| {r[1][2]:.3f} / {r[8][2]:.3f} / {r[64][2]:.3f} |")
    direct_row, api_row = rows.values()
    print()
    for c in (1, 8, 64):
        print(f"{c} conn.: API / direct requests/s {api_row[c][0] / direct_row[c][0]:.0%}, "
              f"p50 added {api_row[c][1] - direct_row[c][1]:+.3f} ms")
    print(f"\nCreateEndpoint to InService (echo, process stage), median of {CREATES}: "
          f"{statistics.median(creates):.3f} s (all: {', '.join(f'{t:.3f}' for t in creates)})")


if __name__ == "__main__":
    main()
