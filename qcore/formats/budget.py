"""The memory budget: the most bytes one read may decode a file into, checked before anything is allocated.

Every reader works out from headers alone (claimed shapes and dtypes, decompressed sizes, the storage behind
every view) how many bytes the file will occupy once decoded, and calls `check_budget` before it reads data.

QCORE_MEMORY_BUDGET sets the budget: bytes, or a size with a binary suffix (512M, 4G, 1.5GiB). Without it the
budget is the memory this process can still get, the least of MemAvailable (/proc/meminfo), the cgroup's limit
less its usage (v2 or v1) and RLIMIT_AS less the address space in use, divided by QCORE_SESSIONS (default 4),
the number of reads a server may run at once.
"""

from __future__ import annotations

import os
import re
import resource
from pathlib import Path

from ..errors import QcoreError
from ..format import fmt_bytes

BUDGET_ENV = "QCORE_MEMORY_BUDGET"
SESSIONS_ENV = "QCORE_SESSIONS"
DEFAULT_SESSIONS = 4
FALLBACK_MEMORY = 8 << 30  # bytes assumed available where the system says nothing
UNLIMITED = 1 << 60  # cgroup limits at or above this mean "no limit"
UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)


def parse_size(text: str, what: str = BUDGET_ENV) -> int:
    """Bytes from '123', '512M', '4G', '1.5GiB' (binary units)."""
    m = SIZE.fullmatch(text)
    if not m:
        raise QcoreError(f"{what}={text!r} is not a size; give bytes or a size such as 512M or 4G")
    return int(float(m.group(1)) * UNITS[m.group(2).lower()])


def _read_int(path: str | Path) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _meminfo(key: str, path: str = "/proc/meminfo") -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_headroom() -> int | None:
    """The cgroup's memory limit less its usage (v2, else v1), or None without a limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if controllers == "":
            base, limit, usage = "/sys/fs/cgroup", "memory.max", "memory.current"
        elif "memory" in controllers.split(","):
            base, limit, usage = "/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        for folder in (base + rel, base):  # the process's own group, or the namespace root
            cap, used = _read_int(f"{folder}/{limit}"), _read_int(f"{folder}/{usage}")
            if cap is not None and cap < UNLIMITED:
                return max(cap - (used or 0), 0)
    return None


def _address_space_headroom() -> int | None:
    """RLIMIT_AS less the address space already mapped, or None when the limit is off."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(soft - (_meminfo("VmSize", "/proc/self/status") or 0), 0)


def available_memory() -> int:
    """Bytes this process can still allocate: the least of what the kernel, the cgroup and RLIMIT_AS allow."""
    known = [x for x in (_meminfo("MemAvailable"), _cgroup_headroom(), _address_space_headroom()) if x is not None]
    return min(known) if known else FALLBACK_MEMORY


def memory_budget() -> int:
    """The budget of one read, in bytes: QCORE_MEMORY_BUDGET, else available memory / QCORE_SESSIONS."""
    text = os.environ.get(BUDGET_ENV, "").strip()
    if text:
        return parse_size(text)
    sessions_text = os.environ.get(SESSIONS_ENV, "").strip() or str(DEFAULT_SESSIONS)
    if not sessions_text.isdigit() or int(sessions_text) < 1:
        raise QcoreError(f"{SESSIONS_ENV}={sessions_text!r} must be a whole number of sessions, 1 or more")
    return available_memory() // int(sessions_text)


def check_budget(label: str, nbytes: int, detail: str = "", budget: int | None = None) -> None:
    """Refuse a read that would decode to more than the budget; `detail` says where the bytes come from."""
    budget = memory_budget() if budget is None else budget
    if nbytes > budget:
        raise QcoreError(
            f"{label}: decodes to {fmt_bytes(nbytes)}{f' ({detail})' if detail else ''}, over this server's "
            f"{fmt_bytes(budget)} memory budget ({BUDGET_ENV})"
        )
