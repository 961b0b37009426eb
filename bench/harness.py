"""Shared benchmark helpers: start servers, drive wrk, measure cold start and
memory. Used by the bench/*.py scripts; run by hand, never by the tests.

Machines are shared and noisy: every figure is the median of several runs,
and every comparison is a ratio against a baseline measured in the same run.
"""
import os
import re
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import http.client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")


def build(*packages):
    args = ["cargo", "build", "--release", "-q"]
    for p in packages:
        args += ["-p", p]
    subprocess.run(args, cwd=ROOT, check=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ping(port, timeout=0.5):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", "/ping")
        status = c.getresponse().status
        c.close()
        return status
    except OSError:
        return None


def start(cmd, port, env=None, wait=True):
    """Starts a server command; waits for /ping 200. Returns (process, seconds to ready)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while wait:
        if ping(port, timeout=0.2) == 200:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd} exited with {proc.returncode}")
        time.sleep(0.0005)
    return proc, time.perf_counter() - t0


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_kib(pid):
    """Resident memory of a process and all its descendants, in KiB. A child is listed under
    the thread that started it (`serve` starts its workers from one thread per slot), so every
    thread's children are counted."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    pids += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return total


def wrk(port, connections, seconds, body, content_type, path="/invocations", lua=""):
    """One wrk run: returns (requests/s, p50 ms, p99 ms). `lua` is added to the script (e.g. a
    `request` function that picks each request's path)."""
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    escaped = body.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    script.write(
        f'wrk.method = "POST"\nwrk.body = "{escaped}"\n'
        f'wrk.headers["Content-Type"] = "{content_type}"\n' + lua
    )
    script.close()
    threads = 1 if connections < 2 else 2
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
         "-s", script.name, f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} error responses during the run:\n{out}")

    def pct(label):
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return rps, pct("50"), pct("99")


def median_wrk(port, connections, seconds, runs, body, content_type, path="/invocations", lua=""):
    results = [wrk(port, connections, seconds, body, content_type, path, lua) for _ in range(runs)]
    return tuple(statistics.median(r[i] for r in results) for i in range(3))


def cold_start(cmd_for_port, runs=10, env=None):
    """Median seconds from exec to the first 200 from /ping."""
    times = []
    for _ in range(runs):
        port = free_port()
        proc, took = start(cmd_for_port(port), port, env)
        times.append(took)
        stop(proc)
    return statistics.median(times)
