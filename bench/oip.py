"""Benchmark: the Open Inference Protocol against /invocations on the abalone
featurizer, and what /metrics costs, all in one run.

1. The blog's single record through `POST /v2/models/featurizer/infer` (JSON
   tensors: sex BYTES [1, 1], measurements FP64 [1, 7]) and through
   `POST /invocations` (text/csv), at 1, 8 and 64 connections, alternating
   run by run on the same server.
2. `/invocations` at 64 connections on three servers of the same stage,
   alternating: metrics on and text logs (the defaults), MODELSTAGE_METRICS=off,
   and MODELSTAGE_LOG_FORMAT=json (metrics on). Metrics cost on / off; JSON
   logs cost json / text.

Run: python3 bench/oip.py [seconds per run] [runs]
"""
import json
import os
import statistics
import sys
import tempfile

import harness as h
from featurizer import RECORD, fit_featurizer

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
INFER = "/v2/models/featurizer/infer"
TENSORS = json.dumps({"inputs": [
    {"name": "sex", "datatype": "BYTES", "shape": [1, 1], "data": ["M"]},
    {"name": "measurements", "datatype": "FP64", "shape": [1, 7],
     "data": [0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155]},
]})


def serve(model_dir, env):
    port = h.free_port()
    modelstage = os.path.join(h.RELEASE, "modelstage")
    proc, _ = h.start([modelstage, "serve", "--stage", os.path.join(h.RELEASE, "libfeaturizer.so"),
                       "--model-dir", model_dir, "--port", str(port)], port, env=env)
    return proc, port


def alternate(cases, connections):
    """Runs each (port, path, body, content type) case RUNS times, alternating; medians per case."""
    results = [[] for _ in cases]
    for _ in range(RUNS):
        for i, (port, path, body, content_type) in enumerate(cases):
            results[i].append(h.wrk(port, connections, SECONDS, body, content_type, path))
    return [tuple(statistics.median(r[k] for r in runs) for k in range(3)) for runs in results]


def main():
    h.build("modelstage", "featurizer")
    work = tempfile.mkdtemp()
    model_dir = fit_featurizer(work)
    accept = {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"}
    on, on_port = serve(model_dir, accept)
    off, off_port = serve(model_dir, dict(accept, MODELSTAGE_METRICS="off"))
    logs, logs_port = serve(model_dir, dict(accept, MODELSTAGE_LOG_FORMAT="json"))
    try:
        protocol = {}
        for c in (1, 8, 64):
            protocol[c] = alternate([(on_port, "/invocations", RECORD, "text/csv"),
                                     (on_port, INFER, TENSORS, "application/json")], c)
        metrics = alternate([(on_port, "/invocations", RECORD, "text/csv"),
                             (off_port, "/invocations", RECORD, "text/csv"),
                             (logs_port, "/invocations", RECORD, "text/csv")], 64)
    finally:
        h.stop(on)
        h.stop(off)
        h.stop(logs)
    print(f"wrk on loopback, median of {RUNS} runs of {SECONDS} s, {os.cpu_count()} CPUs, "
          "answers as JSON\n")
    print("| route | req/s 1 / 8 / 64 conn. | p99 ms at 64 |")
    print("| --- | --- | --- |")
    for i, name in enumerate(["/invocations (text/csv)", "OIP infer (JSON tensors)"]):
        r = [protocol[c][i] for c in (1, 8, 64)]
        print(f"| {name} | {r[0][0]:,.0f} / {r[1][0]:,.0f} / {r[2][0]:,.0f} | {r[2][2]:.2f} |")
    print()
    print("OIP / /invocations: " + ", ".join(
        f"{c} conn {protocol[c][1][0] / protocol[c][0][0]:.0%}" for c in (1, 8, 64)))
    print()
    print("| /invocations at 64 conn. | req/s | p99 ms |")
    print("| --- | --- | --- |")
    for name, r in zip(["metrics on, text logs", "metrics off, text logs", "metrics on, JSON logs"], metrics):
        print(f"| {name} | {r[0]:,.0f} | {r[2]:.2f} |")
    print(f"\nmetrics on / off: {metrics[0][0] / metrics[1][0]:.1%}; "
          f"JSON logs / text logs: {metrics[2][0] / metrics[0][0]:.1%}")


if __name__ == "__main__":
    main()
