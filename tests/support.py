"""Helpers several test layers share."""

from __future__ import annotations

from qcore import QcoreError
from qcore.methods.registry import Method, Option


def nondefault_values(method: Method, opt: Option) -> list:
    """Values other than the default that the method accepts for this option."""
    v = opt.default
    if isinstance(v, bool):
        candidates = [not v]
    elif opt.choices:
        candidates = [c for c in opt.choices if c != v]
    else:
        candidates = [v * 2, v + 1, v - 1, type(v)(v / 2)] if v else [32, 1]
    ok = []
    for c in candidates:
        try:
            method.make_config(**{opt.name: c})
        except QcoreError:
            continue
        if c != v and c not in ok:
            ok.append(c)
    return ok


def nondefault_options(method: Method) -> dict:
    """One valid config with every free option away from its default where the others allow it."""
    out: dict = {}
    for opt in method.options():
        if opt.fixed:
            continue
        for value in nondefault_values(method, opt):
            try:
                method.make_config(**{**out, opt.name: value})
            except QcoreError:
                continue
            out[opt.name] = value
            break
    return out
