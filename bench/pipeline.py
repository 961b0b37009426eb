"""Benchmark: a two-stage serial pipeline answering single-record requests at 1, 8 and 64
connections: behind the router (hosting the containers, the default; and with
--process-per-container, one `serve` process per container), fused (one process), and one stage
alone (the echo stage), all in the same run. Run:

    python3 bench/pipeline.py [seconds per run] [runs]

The pipeline is the abalone featurizer + Linear Learner, trained here on examples/abalone/data
(the same steps as examples/abalone/run.sh, with flags instead of request documents). With
PIPELINE=doubler it is doubler -> doubler instead (no training needed).
MODELSTAGE_BIN runs another modelstage binary (its folder must hold the stage libraries) and skips
the build. Results are printed as a Markdown table for docs/benchmarks.md.
"""
import os
import subprocess
import sys
import tempfile

import harness as h

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
ABALONE = "M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155"
DATA = os.path.join(h.ROOT, "examples", "abalone", "data", "abalone.csv")


def run(*args):
    subprocess.run(list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def abalone_stages(modelstage, libs, work):
    """Trains the featurizer and Linear Learner; returns [(library, model.tar.gz)] in pipeline order."""
    featurizer = os.path.join(libs, "libfeaturizer.so")
    learner = os.path.join(libs, "liblinear_learner.so")
    jobs = os.path.join(work, "jobs")
    run(modelstage, "fit", "--stage", featurizer, "--channel", f"train={DATA}",
        "--content-type", "train=text/csv",
        "--hyperparameter", "columns=sex,length,diameter,height,whole_weight,shucked_weight,"
                            "viscera_weight,shell_weight",
        "--hyperparameter", "categorical=sex", "--hyperparameter", "label=rings",
        "--output-path", jobs, "--job-name", "featurizer")
    featurizer_tar = os.path.join(jobs, "featurizer", "output", "model.tar.gz")
    port = h.free_port()
    proc, _ = h.start([modelstage, "deploy", "--stage", featurizer, "--model", featurizer_tar,
                       "--port", str(port)], port)
    featurized = os.path.join(work, "featurized")
    try:
        run(modelstage, "transform", "--endpoint", f"http://127.0.0.1:{port}", "--input", DATA,
            "--output", featurized, "--content-type", "text/csv", "--accept", "text/csv",
            "--split-type", "Line", "--assemble-with", "Line", "--strategy", "MultiRecord", "--quiet")
    finally:
        h.stop(proc)
    run(modelstage, "fit", "--stage", learner, "--channel", f"train={featurized}",
        "--content-type", "train=text/csv", "--hyperparameter", "feature_dim=10",
        "--hyperparameter", "predictor_type=regressor", "--hyperparameter", "mini_batch_size=32",
        "--output-path", jobs, "--job-name", "linear-learner")
    return [(featurizer, featurizer_tar), (learner, os.path.join(jobs, "linear-learner", "output", "model.tar.gz"))]


def main():
    modelstage = os.environ.get("MODELSTAGE_BIN")
    if modelstage is None:
        h.build("modelstage", "echo", "doubler", "featurizer", "linear_learner")
        modelstage = os.path.join(h.RELEASE, "modelstage")
    libs = os.path.dirname(modelstage)
    work = tempfile.mkdtemp()
    if os.environ.get("PIPELINE") == "doubler":
        name, body, content_type = "doubler -> doubler", "1,2,3", "text/csv"
        stages = [(os.path.join(libs, "libdoubler.so"), None)] * 2
    else:
        name, body, content_type = "featurizer -> linear learner", ABALONE, "text/csv"
        stages = abalone_stages(modelstage, libs, work)
    flags = []
    for lib, tar in stages:
        flags += ["--stage", lib] + (["--model", tar] if tar else [])
    empty = tempfile.mkdtemp()
    servers = {
        "echo stage alone (serve)": lambda port: [modelstage, "serve", "--stage", os.path.join(libs, "libecho.so"),
                                                  "--model-dir", empty, "--port", str(port)],
        f"{name}, fused": lambda port: [modelstage, "deploy", *flags, "--fused", "--port", str(port)],
        f"{name}, router": lambda port: [modelstage, "deploy", *flags, "--port", str(port)],
        f"{name}, router, --process-per-container": lambda port: [modelstage, "deploy", *flags,
                                                                   "--process-per-container", "--port", str(port)],
    }
    rows = {}
    answers = {}
    for label, cmd in servers.items():
        port = h.free_port()
        proc, _ = h.start(cmd(port), port)
        try:
            out = subprocess.run([modelstage, "invoke", f"http://127.0.0.1:{port}", "--content-type", content_type,
                                  "--accept", "application/json", "--body", body],
                                 capture_output=True, text=True, check=True).stdout
            answers[label] = out
            rows[label] = {c: h.median_wrk(port, c, SECONDS, RUNS, body, content_type) for c in (1, 8, 64)}
            rows[label]["rss"] = h.rss_kib(proc.pid)
        finally:
            h.stop(proc)

    print(f"wrk on loopback, single-record requests (`{body}`), median of {RUNS} runs of {SECONDS} s, "
          f"{os.cpu_count()} CPUs\n")
    print("| server | req/s 1 / 8 / 64 conn. | p50 ms 1 / 8 / 64 | p99 ms 1 / 8 / 64 | RSS MiB (all processes) |")
    print("| --- | --- | --- | --- | --- |")
    for label, r in rows.items():
        print(f"| {label} | {r[1][0]:,.0f} / {r[8][0]:,.0f} / {r[64][0]:,.0f} "
              f"| {r[1][1]:.3f} / {r[8][1]:.3f} / {r[64][1]:.3f} "
              f"| {r[1][2]:.3f} / {r[8][2]:.3f} / {r[64][2]:.3f} | {r['rss'] / 1024:.1f} |")
    echo, fused, router, processes = (rows[k] for k in servers)
    print()
    for c in (1, 8, 64):
        print(f"{c} conn.: fused / echo requests/s {fused[c][0] / echo[c][0]:.0%}, "
              f"router / fused {router[c][0] / fused[c][0]:.0%}, "
              f"router with a process per container / fused {processes[c][0] / fused[c][0]:.0%}")
    pipeline_answers = {k: v for k, v in answers.items() if k != "echo stage alone (serve)"}
    same = len(set(pipeline_answers.values())) == 1
    print(f"router and fused answers identical: {same} ({next(iter(pipeline_answers.values())).strip()})")


if __name__ == "__main__":
    main()
