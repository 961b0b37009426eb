"""Benchmark: what `modelstage api` adds. invoke_endpoint through the API's runtime
(`POST /endpoints/NAME/invocations`) against `/invocations` of `modelstage serve` serving the same
stage with the same settings, at 1, 8 and 64 connections, in the same run; and CreateEndpoint to
InService for a process stage. (The API serves a lone stage library's endpoint on its own HTTP
threads, which drive the stage's workers; `serve` is what a container would answer directly.) Run:

    python3 bench/api.py [seconds per run] [runs]
    python3 bench/api.py callgrind [requests]

The second form counts the instructions the server process spends per invocation, for
`modelstage api` and then for `modelstage serve` of the same stage: each runs under valgrind's
callgrind, instrumentation on only while REQUESTS invocations (default 2,000, after 300 to warm
up) go one after the other over one keep-alive connection; the stage's worker processes run
outside valgrind. Instruction counts do not move with the machine's load, so they compare two
builds, or the API with serve, where wall-clock figures cannot. Needs valgrind.

The endpoint serves the echo stage, so the API's own cost is not hidden behind a model's.
MODELSTAGE_BIN runs another modelstage binary (its folder must hold libecho.so) and skips the build. Needs boto3 (tests/api/requirements.txt) and wrk. Results are
printed as a Markdown table for docs/benchmarks.md.
"""
import glob
import http.client
import os
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


def invocations(port, count, path="/endpoints/echo/invocations"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    for _ in range(count):
        conn.request("POST", path, BODY, {"Content-Type": "application/json"})
        answer = conn.getresponse()
        data = answer.read().decode()
        assert answer.status == 200 and data == BODY, (answer.status, data)
    conn.close()


def counted(pid, port, path, out, requests):
    """Instructions process `pid` (under callgrind) spends on `requests` invocations."""
    invocations(port, 300, path)
    for switch in (["-i", "on"], None, ["-i", "off"], ["-d"]):
        if switch is None:
            invocations(port, requests, path)
        else:
            # The dump is written now: a server slow to stop under valgrind may be killed first.
            subprocess.run(["callgrind_control", *switch, str(pid)], check=True, capture_output=True)
    total = 0
    for name in glob.glob(out + "*"):
        with open(name) as dump:
            total += next((int(line.split()[1]) for line in dump if line.startswith("totals:")), 0)
    return total


def callgrind(requests):
    """Instructions per invocation of the API process, and of `modelstage serve` serving the same
    stage: each process's whole share of the work (the workers run outside valgrind in both)."""
    modelstage = modelstage_bin()
    libs = os.path.dirname(modelstage)
    valgrind = lambda out: ("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}")
    # Set, so that neither server starts itself again with it (outside valgrind; see serve::memory).
    os.environ.setdefault("MALLOC_CONF", "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0")
    out = os.path.join(tempfile.mkdtemp(), "callgrind.out")
    api = Api(modelstage, tempfile.mkdtemp(), prefix=valgrind(out))
    try:
        in_service(echo_model(api, libs), "echo")
        through_api = counted(api.proc.pid, api.port, "/endpoints/echo/invocations", out, requests)
    finally:
        h.stop(api.proc)
    out = os.path.join(tempfile.mkdtemp(), "callgrind.out")
    port = h.free_port()
    serve, _ = h.start([*valgrind(out), modelstage, "serve", "--stage", os.path.join(libs, "libecho.so"),
                        "--model-dir", tempfile.mkdtemp(), "--port", str(port)], port)
    try:
        direct = counted(serve.pid, port, "/invocations", out, requests)
    finally:
        h.stop(serve)
    print(f"{modelstage}: {requests:,} invocations one after the other, instructions per invocation: "
          f"modelstage api {through_api / requests:,.0f}, modelstage serve {direct / requests:,.0f} "
          f"(API / serve {through_api / direct:.2f})")


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
        direct = h.free_port()
        serve, _ = h.start([modelstage, "serve", "--stage", os.path.join(libs, "libecho.so"),
                            "--model-dir", tempfile.mkdtemp(), "--port", str(direct)], direct)
        answer = api.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="echo", ContentType="application/json", Body=BODY)["Body"].read().decode()
        assert answer == BODY, answer
        rows = {}
        for label, port, path in [
            ("modelstage serve of the same stage (/invocations)", direct, "/invocations"),
            ("through modelstage api (/endpoints/echo/invocations)", api.port, "/endpoints/echo/invocations"),
        ]:
            rows[label] = {}
            for c in (1, 8, 64):
                results = [h.wrk(port, c, SECONDS, BODY, "application/json", path=path) for _ in range(RUNS)]
                rows[label][c] = tuple(statistics.median(r[i] for r in results) for i in range(3))
        h.stop(serve)
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
        print(f"{c} conn.: API / serve requests/s {api_row[c][0] / direct_row[c][0]:.0%}, "
              f"p50 added {api_row[c][1] - direct_row[c][1]:+.3f} ms")
    print(f"\nCreateEndpoint to InService (echo, process stage), median of {CREATES}: "
          f"{statistics.median(creates):.3f} s (all: {', '.join(f'{t:.3f}' for t in creates)})")


if __name__ == "__main__":
    main()
