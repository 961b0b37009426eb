"""Benchmark: batch transform MB/s of abalone-like CSV through the two-stage
abalone pipeline (featurizer -> Linear Learner), fused and behind the router,
and the transform process's peak memory. Run by hand:

    python3 bench/transform.py [MB of input, default 1024] [MaxConcurrentTransforms, default 4] [set-ups]

where set-ups picks rows of the table by number (`3`, `1,3`; default all).

It trains the models with examples/abalone/run.sh (KEEP_WORK=1), generates the
input by repeating abalone.csv's feature columns, and prints a Markdown table.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import harness as h

SIZE_MB = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
CONCURRENCY = int(sys.argv[2]) if len(sys.argv) > 2 else 4
PICKED = [int(n) for n in sys.argv[3].split(",")] if len(sys.argv) > 3 else None


def train_models():
    env = dict(os.environ, KEEP_WORK="1", PORT=str(h.free_port()))
    run = subprocess.run([os.path.join(h.ROOT, "examples/abalone/run.sh")], env=env,
                         capture_output=True, text=True, check=True)
    return re.search(r"work folder kept: (\S+)", run.stderr).group(1)


def make_input(path):
    rows = []
    with open(os.path.join(h.ROOT, "examples/abalone/data/abalone.csv")) as f:
        for line in f:
            rows.append(line.rsplit(",", 1)[0] + "\n")  # drop the label
    block = "".join(rows).encode()
    target = SIZE_MB * 1024 * 1024
    with open(path, "wb") as out:
        written = 0
        while written < target:
            out.write(block)
            written += len(block)
    return written


def csv_between_stages(model_path):
    """The same pipeline with the featurizer answering CSV to Linear Learner
    (`SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=text/csv` in its Environment, the
    per-container override docs/contract.md (Serial pipelines) describes)."""
    with open(model_path) as f:
        doc = json.load(f)
    doc["Containers"][0].setdefault("Environment", {})["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"] = "text/csv"
    path = model_path.replace(".json", "-csv.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def transform(endpoint, input_path, output_dir, payload_mb):
    """Runs one job; returns (seconds, peak resident KiB of the transform process)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [os.path.join(h.RELEASE, "modelstage"), "transform", "--endpoint", endpoint,
         "--input", input_path, "--output", output_dir, "--content-type", "text/csv",
         "--accept", "text/csv", "--split-type", "Line", "--strategy", "MultiRecord",
         "--max-payload-mb", str(payload_mb), "--assemble-with", "Line", "--max-concurrent", str(CONCURRENCY), "--quiet"],
    )
    peak = 0
    while proc.poll() is None:
        # VmHWM is the process's own high-water mark: the last reading before
        # it exits is its peak.
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.05)
    if proc.returncode != 0:
        raise RuntimeError(f"transform failed with {proc.returncode}")
    return time.perf_counter() - t0, peak


def main():
    h.build("modelstage", "featurizer", "linear_learner")
    work = train_models()
    scratch = tempfile.mkdtemp()
    try:
        input_path = os.path.join(scratch, "abalone-like.csv")
        size = make_input(input_path)
        model = os.path.join(work, "pipeline-model.json")
        rows = []
        csv_model = csv_between_stages(model)
        setups = (
            ("fused, JSON between stages, 1 MB payloads", model, ["--fused"], 1),
            ("router, JSON between stages, 1 MB payloads", model, [], 1),
            ("fused, CSV between stages, 1 MB payloads", csv_model, ["--fused"], 1),
        )
        for i, (mode, document, extra, payload_mb) in enumerate(setups):
            if PICKED and i + 1 not in PICKED:
                continue
            port = h.free_port()
            proc, _ = h.start([os.path.join(h.RELEASE, "modelstage"), "deploy", "--request", document,
                               "--port", str(port)] + extra, port)
            try:
                out = os.path.join(scratch, f"out-{i}")
                took, peak_kib = transform(f"http://127.0.0.1:{port}", input_path, out, payload_mb)
                out_lines = sum(1 for _ in open(os.path.join(out, "abalone-like.csv.out"), "rb"))
                rows.append((mode, size / took / 1e6, took, peak_kib / 1024, out_lines))
            finally:
                h.stop(proc)
        print(f"input {size / 1e6:,.0f} MB of abalone-like CSV, MultiRecord, "
              f"MaxConcurrentTransforms={CONCURRENCY}, {os.cpu_count()} CPUs\n")
        print("| pipeline | MB/s of input | seconds | transform process peak RSS MiB | output lines |")
        print("| --- | --- | --- | --- | --- |")
        for mode, mbps, took, peak, lines in rows:
            print(f"| {mode} | {mbps:.1f} | {took:.1f} | {peak:.0f} | {lines:,} |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
