"""Benchmark: the stage images. Size of each image, and cold start: the time from
`docker run -d ... IMAGE serve` to the first 200 from /ping (and the engine's part of it: until
`docker run -d` returns, with the container's network set up and its process started), with the model mounted at
/opt/ml/model, on Docker's default bridge network with a published port and on the host's
network (SAGEMAKER_BIND_TO_PORT, as the containers of a SageMaker instance share one network),
against the same `modelstage serve` started as a plain process. Also the request rate of the echo
stage in each of the three set-ups.

Run: python3 bench/docker.py [abalone.csv] [cold-start runs] [wrk seconds]

Builds the release binaries and the images (ci/docker-build.sh), and the featurizer and
Linear Learner models with docker/compose/prepare-models.sh if they are not there yet.
Goals (issue 7): under 25 MB per image, under 300 ms cold start.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

import harness as h

DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(h.ROOT, "examples", "abalone", "data", "abalone.csv")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
SECONDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
MODELS = os.path.join(h.ROOT, "docker", "compose", "models")
STAGES = [  # (image, library, model folder or None for an empty one)
    ("modelstage/echo:latest", "libecho.so", None),
    ("modelstage/featurizer:latest", "libfeaturizer.so", os.path.join(MODELS, "featurizer")),
    ("modelstage/linear-learner:latest", "liblinear_learner.so", os.path.join(MODELS, "linear-learner")),
]
BODY = "M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155"


def docker(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def image_mb(image):
    return int(docker("image", "inspect", "--format", "{{.Size}}", image)) / 1e6


def network_args(network, port):
    """`bridge`: the default network, port 8080 published on the host; `host`: the host's network."""
    if network == "bridge":
        return ["-p", f"127.0.0.1:{port}:8080"]
    return ["--network", "host", "-e", f"SAGEMAKER_BIND_TO_PORT={port}"]


def docker_serve(image, model_dir, network, port, name, detach=False):
    return ["docker", "run", "--rm", *(["-d"] if detach else []), "--name", name,
            *network_args(network, port), "-v", f"{model_dir}:/opt/ml/model:ro", image, "serve"]


def container_cold_start(image, model_dir, network):
    """Seconds from `docker run -d` to /ping 200, and of those, the engine's part: until
    `docker run -d` returns, the container has been created, its network set up and its
    process started. Medians, with (min, max) of the totals."""
    totals, engine = [], []
    for i in range(RUNS):
        port = h.free_port()
        name = f"bench-cold-{os.getpid()}-{i}"
        try:
            t0 = time.perf_counter()
            subprocess.run(docker_serve(image, model_dir, network, port, name, detach=True),
                           check=True, capture_output=True)
            engine.append(time.perf_counter() - t0)
            while h.ping(port, timeout=0.2) != 200:
                if time.perf_counter() - t0 > 30:
                    raise RuntimeError(f"{image} did not answer /ping within 30 s")
                time.sleep(0.0005)
            totals.append(time.perf_counter() - t0)
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    return statistics.median(totals), min(totals), max(totals), statistics.median(engine)


def process_cold_start(library, model_dir):
    return h.cold_start(lambda port: [os.path.join(h.RELEASE, "modelstage"), "serve", "--stage",
                                      os.path.join(h.RELEASE, library), "--model-dir", model_dir,
                                      "--port", str(port)], runs=RUNS)


def echo_rates(empty):
    """(req/s, p50, p99) at 8 connections for the echo stage: process, bridge, host network."""
    port = h.free_port()
    proc, _ = h.start([os.path.join(h.RELEASE, "modelstage"), "serve", "--stage",
                       os.path.join(h.RELEASE, "libecho.so"), "--model-dir", empty, "--port", str(port)], port)
    rates = {"process": h.median_wrk(port, 8, SECONDS, 3, BODY, "text/csv")}
    h.stop(proc)
    for network in ("bridge", "host"):
        port = h.free_port()
        name = f"bench-rate-{os.getpid()}"
        proc, _ = h.start(docker_serve(STAGES[0][0], empty, network, port, name), port)
        try:
            rates[network] = h.median_wrk(port, 8, SECONDS, 3, BODY, "text/csv")
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
            proc.wait()
    return rates


def main():
    h.build("modelstage", "echo", "featurizer", "linear_learner")
    subprocess.run([os.path.join(h.ROOT, "ci", "docker-build.sh"), "release"], check=True)
    if not all(os.path.isdir(m) for _, _, m in STAGES if m):
        subprocess.run([os.path.join(h.ROOT, "docker", "compose", "prepare-models.sh"), DATA], check=True)
    empty = tempfile.mkdtemp()
    for image, _, _ in STAGES:
        # The tags are shared with the tests, which build debug images; measure release ones only.
        profile = docker("image", "inspect", "--format", '{{index .Config.Labels "com.modelstage.profile"}}', image)
        if profile != "release":
            sys.exit(f"{image} was built from {profile} binaries meanwhile; run again")

    print(f"\nDocker {docker('version', '--format', '{{.Server.Version}}')}, {os.cpu_count()} CPUs, "
          f"cold start: median (min-max) of {RUNS} runs\n")
    print("| image | size MB | cold start ms, bridge + published port (engine's part) "
          "| cold start ms, host network (engine's part) | cold start ms, plain process |")
    print("| --- | --- | --- | --- | --- |")
    runtime = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "modelstage/runtime").split()[0]
    print(f"| {runtime} (shared layer) | {image_mb(runtime):.1f} | | | |")
    for image, library, model in STAGES:
        model = model or empty
        cells = []
        for network in ("bridge", "host"):
            median, low, high, engine = container_cold_start(image, model, network)
            cells.append(f"{median * 1000:.0f} ({low * 1000:.0f}-{high * 1000:.0f}; engine {engine * 1000:.0f})")
        process = process_cold_start(library, model)
        print(f"| {image} | {image_mb(image):.1f} | {cells[0]} | {cells[1]} | {process * 1000:.1f} |")

    rates = echo_rates(empty)
    print(f"\necho stage, wrk 8 connections, median of 3 x {SECONDS} s:\n")
    print("| set-up | req/s | p50 ms | p99 ms | vs. process |")
    print("| --- | --- | --- | --- | --- |")
    for name, (rps, p50, p99) in rates.items():
        print(f"| {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {rps / rates['process'][0]:.0%} |")


if __name__ == "__main__":
    main()
