"""`python -m qcore` in a child process, with the child's own wall time and peak resident set.

The peak is the child's VmHWM, read by the child itself at exit: the high-water mark of the memory it maps after
exec. wait4's or RUSAGE_CHILDREN's ru_maxrss are not the child's own, since Linux carries the parent's high-water mark
across the fork and exec (inside `make bench` every MiniLM run read 1240 MiB that way; its own peaks are 750-960 MiB).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ChildRun:
    code: int
    out: str
    err: str  # without the peak line
    wall_s: float
    peak_bytes: int  # 0 where the child could not say (it was killed)


def run_qcore(args: list[str], env: dict | None = None) -> ChildRun:
    """`python -m qcore *args` in a child process."""
    cmd = [sys.executable, "-c", PEAK_REPORTER, *args]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=out, stderr=err, text=True, env=env, check=False)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        text, tag, tail = err.read().rpartition(PEAK_TAG)
        if not tag:
            text, tail = tail, ""
        return ChildRun(proc.returncode, out.read(), text, wall, int(tail.split()[0]) * 1024 if tail else 0)
