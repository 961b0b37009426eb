"""Benchmark: `POST /invocations` on the echo stage against a bare
actix-web handler doing the same echo, same machine, same run; cold start
and resident memory. Run: python3 bench/serve.py [seconds per run] [runs]

Results are printed as a Markdown table for docs/benchmarks.md.
"""
import os
import sys
import tempfile

import harness as h

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
BODY = "M, 0.44, 0.365, 0.125, 0.516, 0.2155, 0.114, 0.155"


def main():
    h.build("modelstage", "echo", "bare-echo")
    model_dir = tempfile.mkdtemp()
    modelstage = os.path.join(h.RELEASE, "modelstage")
    echo = os.path.join(h.RELEASE, "libecho.so")
    bare = os.path.join(h.RELEASE, "bare-echo")
    servers = {
        "bare actix-web": lambda port: [bare, str(port)],
        "modelstage echo stage": lambda port: [modelstage, "serve", "--stage", echo,
                                               "--model-dir", model_dir, "--port", str(port)],
    }
    rows = {}
    for name, cmd in servers.items():
        port = h.free_port()
        proc, _ = h.start(cmd(port), port)
        rows[name] = {c: h.median_wrk(port, c, SECONDS, RUNS, BODY, "text/csv") for c in (1, 8, 64)}
        rows[name]["rss"] = h.rss_kib(proc.pid)
        h.stop(proc)
        rows[name]["cold"] = h.cold_start(cmd)

    print(f"wrk on loopback, median of {RUNS} runs of {SECONDS} s, {os.cpu_count()} CPUs\n")
    print("| server | req/s 1 / 8 / 64 conn. | p50 ms at 8 | p99 ms at 8 | p99 ms at 64 | cold start ms | RSS MiB (all processes) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows.items():
        print(f"| {name} | {r[1][0]:,.0f} / {r[8][0]:,.0f} / {r[64][0]:,.0f} | {r[8][1]:.3f} | {r[8][2]:.3f} "
              f"| {r[64][2]:.3f} | {r['cold'] * 1000:.1f} | {r['rss'] / 1024:.1f} |")
    b, e = rows["bare actix-web"], rows["modelstage echo stage"]
    print()
    print(f"echo / bare requests/s: 1 conn {e[1][0] / b[1][0]:.0%}, 8 conn {e[8][0] / b[8][0]:.0%}, "
          f"64 conn {e[64][0] / b[64][0]:.0%}")
    print(f"echo / bare p99 at 8 connections: {e[8][2] / b[8][2]:.2f}x")


if __name__ == "__main__":
    main()
