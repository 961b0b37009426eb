"""Benchmark: a multi-model endpoint of 1,000 featurizer models, each fitted on
a different sample of abalone, against the single-model endpoint of one of
them in the same run:

- loads: `POST /models` of each unpacked model (median and p99 ms);
- memory: the server and its workers with every model loaded (RSS of all
  processes), and with none;
- warm requests at 8 and 64 connections spread at random over a hot set of
  50 models (`POST /models/{name}/invoke`), against `/invocations` of the
  single-model endpoint;
- cold first requests: `/invocations` with `X-Amzn-SageMaker-Target-Model`
  naming a `model.tar.gz` not loaded yet (unpack, load, answer).

Run: python3 bench/mme.py [seconds per run] [runs] [models]
"""
import concurrent.futures
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import harness as h

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
MODELS = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
HOT = min(50, MODELS)
COLD = min(100, MODELS)
RECORD = "M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155"
COLUMNS = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight"
MODELSTAGE = os.path.join(h.RELEASE, "modelstage")
FEATURIZER = os.path.join(h.RELEASE, "libfeaturizer.so")


def fit(work, rows, i):
    """Fits model i on its own sample of 500 rows; returns its model.tar.gz."""
    data = os.path.join(work, "data", str(i))
    os.makedirs(data)
    sample = random.Random(i).sample(rows, 500)
    with open(os.path.join(data, "abalone.csv"), "w") as f:
        f.write("".join(sample))
    out = os.path.join(work, "fits")
    subprocess.run(
        [MODELSTAGE, "fit", "--stage", FEATURIZER, "--channel", "train=" + data,
         "--hyperparameter", "columns=" + COLUMNS, "--hyperparameter", "categorical=sex",
         "--hyperparameter", "label=rings", "--output-path", out, "--job-name", f"m{i}"],
        check=True, capture_output=True,
    )
    return os.path.join(out, f"m{i}", "output", "model.tar.gz")


def unpack(tar_gz, folder):
    os.makedirs(folder)
    subprocess.run(["tar", "-xzf", tar_gz, "-C", folder], check=True)
    return folder


def post(conn, path, body, headers):
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {path}: {response.status} {data[:300]!r}")
    return data


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main():
    h.build("modelstage", "featurizer")
    work = tempfile.mkdtemp()
    with open(os.path.join(h.ROOT, "examples/abalone/data/abalone.csv")) as f:
        rows = f.readlines()
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        tarballs = list(pool.map(lambda i: fit(work, rows, i), range(MODELS)))
    print(f"fitted {MODELS} models in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    folders = [unpack(t, os.path.join(work, "unpacked", f"m{i}")) for i, t in enumerate(tarballs)]
    # The cold requests' archives, where /invocations looks for a target model.
    opt_ml = os.path.join(work, "opt-ml")
    os.makedirs(os.path.join(opt_ml, "model"))
    for i in range(COLD):
        shutil.copy(tarballs[i], os.path.join(opt_ml, "model", f"cold-{i}.tar.gz"))
    env = {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}

    # The single-model endpoint of model 0.
    port = h.free_port()
    proc, _ = h.start([MODELSTAGE, "serve", "--stage", FEATURIZER, "--model-dir", folders[0],
                       "--port", str(port)], port, env=env)
    try:
        single = {c: h.median_wrk(port, c, SECONDS, RUNS, RECORD, "text/csv") for c in (8, 64)}
        single_rss = h.rss_kib(proc.pid)
    finally:
        h.stop(proc)

    port = h.free_port()
    mme_env = dict(env, SAGEMAKER_MULTI_MODEL="true", SAGEMAKER_BASE_DIR=opt_ml)
    proc, _ = h.start([MODELSTAGE, "serve", "--stage", FEATURIZER, "--port", str(port)], port, env=mme_env)
    try:
        idle_rss = h.rss_kib(proc.pid)
        conn = http.client.HTTPConnection("127.0.0.1", port)
        loads = []
        for i, folder in enumerate(folders):
            body = json.dumps({"model_name": f"m{i}", "url": folder})
            t0 = time.perf_counter()
            post(conn, "/models", body, {"Content-Type": "application/json"})
            loads.append((time.perf_counter() - t0) * 1000)
        loaded_rss = h.rss_kib(proc.pid)
        # Every model answers with its own fit: the hot set's answers differ.
        answers = {post(conn, f"/models/m{i}/invoke", RECORD, {"Content-Type": "text/csv"}) for i in range(HOT)}
        lua = ('request = function()\n'
               f'  return wrk.format(nil, "/models/m" .. math.random(0, {HOT - 1}) .. "/invoke")\n'
               'end\n')
        warm = {c: h.median_wrk(port, c, SECONDS, RUNS, RECORD, "text/csv", lua=lua) for c in (8, 64)}
        conn.close()
        # A new connection: the server closed the idle one while wrk ran (keep-alive 5 s).
        conn = http.client.HTTPConnection("127.0.0.1", port)
        colds = []
        for i in range(COLD):
            t0 = time.perf_counter()
            post(conn, "/invocations", RECORD,
                 {"Content-Type": "text/csv", "X-Amzn-SageMaker-Target-Model": f"cold-{i}.tar.gz"})
            colds.append((time.perf_counter() - t0) * 1000)
        conn.close()
    finally:
        h.stop(proc)

    print(f"{MODELS} featurizer models, hot set {HOT}; wrk on loopback, median of {RUNS} runs of {SECONDS} s, "
          f"{os.cpu_count()} CPUs, Accept text/csv\n")
    print("| endpoint | req/s 8 / 64 conn. | p99 ms at 8 / 64 |")
    print("| --- | --- | --- |")
    print(f"| single model | {single[8][0]:,.0f} / {single[64][0]:,.0f} | {single[8][2]:.2f} / {single[64][2]:.2f} |")
    print(f"| multi-model, {HOT} hot models | {warm[8][0]:,.0f} / {warm[64][0]:,.0f} "
          f"| {warm[8][2]:.2f} / {warm[64][2]:.2f} |")
    print()
    print(f"warm multi-model / single-model requests/s: 8 conn {warm[8][0] / single[8][0]:.0%}, "
          f"64 conn {warm[64][0] / single[64][0]:.0%}")
    print(f"distinct answers of the {HOT} hot models to one record: {len(answers)}")
    print(f"POST /models of an unpacked model: median {statistics.median(loads):.2f} ms, "
          f"p99 {percentile(loads, 0.99):.2f} ms ({MODELS} loads)")
    print(f"cold /invocations (unpack, load, answer): median {statistics.median(colds):.2f} ms, "
          f"p99 {percentile(colds, 0.99):.2f} ms ({COLD} models)")
    print(f"RSS of server and workers: single model {single_rss / 1024:.1f} MiB; multi-model with no model "
          f"{idle_rss / 1024:.1f} MiB, with {MODELS} loaded {loaded_rss / 1024:.1f} MiB")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
