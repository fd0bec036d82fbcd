"""How every surface writes a figure: the CLI, the report and the dashboard share these, so they print the same.

Units are binary and labelled (KiB, MiB, GiB; the reference report's "MB" is MiB). Cosines keep six decimals,
enough to tell 0.99998 from 1.
"""

from __future__ import annotations

import json
import math

MIB = 1024**2
GIB = 1024**3


def fmt_bytes(n: float) -> str:
    """Bytes under 1 KiB, KiB under 1 MiB, MiB under 1 GiB, else GiB."""
    if n < 1024:
        return f"{n:.0f} B"
    if n < MIB:
        return f"{n / 1024:.1f} KiB"
    if n < GIB:
        return f"{n / MIB:.2f} MiB"
    return f"{n / GIB:.2f} GiB"


def fmt_cos(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.6f}"


def fmt_db(x: float | None) -> str:
    """SQNR in dB; None means no error at all."""
    return "exact" if x is None else f"{x:.2f} dB"


def fmt_ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def fmt_secs(x: float) -> str:
    return f"{x:.4f} s"


def fmt_pct(x: float) -> str:
    return f"{x:.1%}"


def fmt_metric(x: float | None) -> str:
    """A task metric of unknown scale: 4 decimals (4 significant digits from 1000 up), or n/a."""
    return "n/a" if x is None else f"{x:.4g}" if abs(x) >= 1000 else f"{x:.4f}"


def jsonable(x):
    """Non-finite floats become null: JSON has no NaN or infinity."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    return x


def to_json(doc, indent: int | None = None) -> str:
    """A record (or any document of them) as strict JSON text, as the CLI prints it and the page offers it."""
    return json.dumps(jsonable(doc), allow_nan=False, ensure_ascii=False, indent=indent)
