"""Benchmark: the abalone featurizer stage served by `modelstage serve`,
against the echo stage in the same run: single-record requests at 1, 8 and
64 connections, and 10,000-row requests at 8 connections (rows/s). The
pandas + scikit-learn baseline is bench/featurizer_sklearn.py.

Run: python3 bench/featurizer.py [seconds per run] [runs]
"""
import os
import subprocess
import sys
import tempfile

import harness as h

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
RECORD = "M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155"
COLUMNS = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight"


def fit_featurizer(work):
    modelstage = os.path.join(h.RELEASE, "modelstage")
    subprocess.run(
        [modelstage, "fit", "--stage", os.path.join(h.RELEASE, "libfeaturizer.so"),
         "--channel", "train=" + os.path.join(h.ROOT, "examples/abalone/data/abalone.csv"),
         "--hyperparameter", "columns=" + COLUMNS, "--hyperparameter", "categorical=sex",
         "--hyperparameter", "label=rings", "--output-path", work, "--job-name", "bench-featurizer"],
        check=True, capture_output=True,
    )
    model_dir = os.path.join(work, "model")
    os.makedirs(model_dir)
    subprocess.run(["tar", "-xzf", os.path.join(work, "bench-featurizer/output/model.tar.gz"), "-C", model_dir],
                   check=True)
    return model_dir


def ten_thousand_rows():
    with open(os.path.join(h.ROOT, "examples/abalone/data/abalone.csv")) as f:
        rows = [line.rsplit(",", 1)[0] for line in f]
    return "\n".join((rows * 3)[:10000]) + "\n"


def main():
    h.build("modelstage", "echo", "featurizer")
    work = tempfile.mkdtemp()
    model_dir = fit_featurizer(work)
    modelstage = os.path.join(h.RELEASE, "modelstage")
    stages = {"echo stage": "libecho.so", "featurizer stage": "libfeaturizer.so"}
    big = ten_thousand_rows()
    rows = {}
    for name, lib in stages.items():
        port = h.free_port()
        proc, _ = h.start([modelstage, "serve", "--stage", os.path.join(h.RELEASE, lib), "--model-dir", model_dir,
                           "--port", str(port)], port, env={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
        try:
            r = {c: h.median_wrk(port, c, SECONDS, RUNS, RECORD, "text/csv") for c in (1, 8, 64)}
            r["big"] = h.median_wrk(port, 8, SECONDS, RUNS, big, "text/csv")
            rows[name] = r
        finally:
            h.stop(proc)
    print(f"wrk on loopback, median of {RUNS} runs of {SECONDS} s, {os.cpu_count()} CPUs, Accept text/csv\n")
    print("| stage | single record req/s, 1 / 8 / 64 conn. | p99 ms at 64 | 10,000-row requests at 8 conn.: rows/s |")
    print("| --- | --- | --- | --- |")
    for name, r in rows.items():
        print(f"| {name} | {r[1][0]:,.0f} / {r[8][0]:,.0f} / {r[64][0]:,.0f} | {r[64][2]:.2f} "
              f"| {r['big'][0] * 10000:,.0f} |")
    e, f = rows["echo stage"], rows["featurizer stage"]
    print()
    print("featurizer / echo requests/s: " + ", ".join(f"{c} conn {f[c][0] / e[c][0]:.0%}" for c in (1, 8, 64)))


if __name__ == "__main__":
    main()
