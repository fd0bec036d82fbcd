"""The command line: `python -m qcore <command> [options] [--json]` (the CLI contract in DESIGN.md).

With --json, stdout carries one JSON document and nothing else; progress and logs go to stderr.
Bad input exits 2 with a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from .errors import QcoreError

EXIT_BAD_INPUT = 2


def progress_bar(label: str):
    """A Progress callback that draws a bar on stderr (one line per step when stderr is not a terminal)."""
    tty = sys.stderr.isatty()

    def update(done: int, total: int, what: str) -> None:
        width = 24
        filled = int(width * done / max(total, 1))
        line = f"{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}"
        if tty:
            sys.stderr.write("\r" + line.ljust(79) + ("\n" if done == total else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return update


def jsonable(x):
    """Non-finite floats become null: JSON has no NaN or infinity."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    return x


def emit(doc) -> None:
    sys.stdout.write(json.dumps(jsonable(doc), allow_nan=False, ensure_ascii=False) + "\n")


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes exit 2 with one line on stderr, like every other bad input (--help still prints usage)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .methods.registry import METHODS
    from .models.presets import PRESETS

    p = OneLineParser(prog="python -m qcore", description="Post-training weight quantization lab")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("report", help="the reference report's scaling table")
    r.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets")
    r.add_argument(
        "--methods",
        default="int8,int2",
        help=f"comma-separated methods ({', '.join(METHODS)}), each optionally with options: rtn:bits=4:group_size=128",
    )
    r.add_argument("--out", help="folder for report.md, report.csv and artifacts/")
    r.add_argument("--lang", choices=("en", "zh"), default="en", help="report language")
    _add_method_options(r)
    r.add_argument("--json", action="store_true", help='print {"rows": [record, ...]}')

    q = sub.add_parser("run", help="quantize one model with one method")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help=f"one of {', '.join(PRESETS)}, or a trained model (see `presets`)")
    src.add_argument(
        "--weights", help="a weight file: .safetensors (or a shard folder / index), .pt, .pth, .bin, .npz, .parquet"
    )
    q.add_argument("--method", required=True, help=f"one of {', '.join(METHODS)}")
    _add_method_options(q)
    q.add_argument(
        "--codec", choices=("none", "zstd"), default="none", help="Parquet codec (off for the headline ratio)"
    )
    q.add_argument("--keep-head", action="store_true", help="keep the output head in FP16")
    q.add_argument(
        "--quantize-embeddings", action="store_true", help="quantize embedding tables (kept FP16 by default)"
    )
    q.add_argument("--include", help="regex: quantize only matching tensor names")
    q.add_argument("--exclude", help="regex: keep matching tensor names in FP16")
    q.add_argument("--out", help="write the artifact here (.parquet)")
    q.add_argument("--json", action="store_true", help="print one record")

    e = sub.add_parser("extrapolate", help="sizes, KV cache and predicted accuracy for a real architecture")
    tgt = e.add_mutually_exclusive_group(required=True)
    tgt.add_argument("--arch", help="a catalogued architecture (see `archs`)")
    tgt.add_argument("--params", type=float, help="a plain parameter count, e.g. 7e9 (generic Llama-style shape)")
    tgt.add_argument("--config", help="a Hugging Face config.json")
    e.add_argument("--method", required=True, help=f"one of {', '.join(METHODS)}")
    _add_method_options(e)
    e.add_argument("--quantize-embeddings", action="store_true", help="quantize the embedding table too")
    e.add_argument("--quantize-head", action="store_true", help="quantize the output head too")
    e.add_argument("--context", type=int, default=4096, help="tokens of KV cache")
    e.add_argument("--batch", type=int, default=1, help="sequences of KV cache")
    e.add_argument("--kv-bits", type=int, default=16, choices=(16, 8, 4), help="KV cache precision")
    e.add_argument("--no-accuracy", action="store_true", help="skip the accuracy fit (sizes only)")
    e.add_argument("--json", action="store_true")

    ar = sub.add_parser("archs", help="the architecture catalogue with exact parameter counts")
    ar.add_argument("--json", action="store_true")

    m = sub.add_parser("methods", help="the method registry: names, options, defaults")
    m.add_argument("--json", action="store_true")
    ps = sub.add_parser("presets", help="the built-in models")
    ps.add_argument("--json", action="store_true")
    return p


COMMON_HELP = {
    "bits": "code width (2, 3, 4, 8)",
    "group_size": "input columns per scale; 0 = per-channel",
    "sym": "symmetric quantization (--no-sym: asymmetric)",
    "clip": "MSE-optimal clipping search",
    "target_bpw": "bits-per-weight budget (methods that allocate bits)",
}


def method_option_specs() -> dict[str, dict]:
    """Every option a method lets the user set, once per name, with the methods that take it (the registry's)."""
    from .methods.registry import METHODS

    specs: dict[str, dict] = {}
    for m in METHODS.values():
        for opt in m.options():
            if not opt["fixed"]:
                spec = specs.setdefault(opt["name"], {**opt, "methods": {}})
                spec["methods"][m.name] = opt["default"]
    return specs


def _add_method_options(p: argparse.ArgumentParser) -> None:
    """One flag per registry option (--group-size for group_size); unset flags keep each method's default."""
    for name, spec in method_option_specs().items():
        defaults = ", ".join(f"{m} {d}" for m, d in spec["methods"].items())
        text = COMMON_HELP.get(name) or spec["help"] or name
        kw: dict = {"default": None, "help": f"{text}; default {defaults}"}
        if spec["type"] == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = {"int": int, "float": float}.get(spec["type"], str)
            kw["metavar"] = name.upper()  # the method's config checks the value, with its own message
        p.add_argument("--" + name.replace("_", "-"), **kw)


def _options(args) -> dict:
    """The method options given on the command line (the method's config says which it takes)."""
    return {k: getattr(args, k) for k in method_option_specs() if getattr(args, k, None) is not None}


def cmd_run(args) -> int:
    from .formats.readers import read_weights
    from .measure.pipeline import Policy, run
    from .models.presets import load_model

    model = load_model(args.preset) if args.preset else read_weights(args.weights)
    if args.out and not args.out.endswith(".parquet"):
        raise QcoreError(f"--out must name a .parquet file, got '{args.out}'")
    policy = Policy(not args.keep_head, args.quantize_embeddings, args.include, args.exclude)
    res = run(
        model,
        args.method,
        _options(args),
        policy,
        args.codec,
        args.out,
        progress_bar(f"{model.name} {args.method}"),
        keep=False,  # only the record is needed: stream tensor by tensor
    )
    rec = res.record
    if args.json:
        emit(rec)
    else:
        print(summary_line(rec))
    return 0


def summary_line(rec: dict) -> str:
    from .analysis.report import fmt_bytes, fmt_cos, fmt_db

    if rec["output_cosine"] is None and rec.get("synthetic_output_cosine") is not None:
        output = f"synthetic-input output cosine {fmt_cos(rec['synthetic_output_cosine'])}"
    else:
        output = f"output cosine {fmt_cos(rec['output_cosine'])}"
    return (
        f"{rec['source']} {rec['method']}: {fmt_bytes(rec['fp16_bytes'])} -> {fmt_bytes(rec['quantized_bytes'])} "
        f"({rec['compression_ratio']:.2f}x, theoretical {rec['theoretical_ratio']:.2f}x, {rec['bpw']:.3f} bpw), "
        f"weight cosine {fmt_cos(rec['weight_cosine'])} ({rec['quality']}), SQNR {fmt_db(rec['sqnr_db'])}, "
        f"{output}, {rec['quant_seconds']:.4f} s on {rec['threads']} threads"
    )


def cmd_report(args) -> int:
    from .analysis.report import scaling_rows, write_report
    from .methods.registry import get_method
    from .models.presets import model_names

    presets, methods = _csv(args.presets), _csv(args.methods)
    for name in presets:
        if name not in model_names():
            raise QcoreError(f"unknown preset '{name}'; choose from {', '.join(model_names())}")
    from .analysis.report import parse_spec

    for spec in methods:
        get_method(parse_spec(spec)[0])
    if not presets or not methods:
        raise QcoreError("--presets and --methods each need at least one name")
    rows = scaling_rows(presets, methods, _options(args), args.out, progress_bar("report"))
    if args.out:
        for path in write_report(rows, args.out, args.lang):
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        emit({"rows": rows})
    else:
        for rec in rows:
            print(summary_line(rec))
    return 0


def cmd_extrapolate(args) -> int:
    from pathlib import Path

    from .analysis.archs import (
        SizePolicy,
        arch_from_config,
        arch_from_params,
        arch_sizes,
        fit_accuracy,
        get_arch,
        kv_cache_bytes,
        predict_accuracy,
    )
    from .analysis.report import fmt_bytes, fmt_cos

    if args.arch:
        arch = get_arch(args.arch)
    elif args.config:
        p = Path(args.config)
        if not p.is_file():
            raise QcoreError(f"no such file: {p}")
        arch = arch_from_config(p.read_text(encoding="utf-8", errors="replace"), p.stem)
    else:
        if not args.params > 0 or args.params != int(args.params):
            raise QcoreError(f"--params must be a positive whole number, got {args.params}")
        arch = arch_from_params(int(args.params))
    policy = SizePolicy(args.quantize_embeddings, args.quantize_head)
    options = _options(args)
    doc = arch_sizes(arch, args.method, options, policy)
    doc["kv_cache"] = {
        "context": args.context, "batch": args.batch, "kv_bits": args.kv_bits,
        "bytes": kv_cache_bytes(arch, args.context, args.batch, args.kv_bits),
    }  # fmt: skip
    if not args.no_accuracy:
        print("fitting accuracy on the presets ...", file=sys.stderr)
        doc["accuracy"] = predict_accuracy(
            fit_accuracy(args.method, options), arch, SizePolicy(args.quantize_embeddings, args.quantize_head)
        )
    if args.json:
        emit(doc)
        return 0
    print(
        f"{arch.name}: {arch.params:,} params; "
        + ", ".join(f"{k} {v:,}" for k, v in doc["params_by_kind"].items() if v)
    )
    print(
        f"{args.method}: {fmt_bytes(doc['fp16_bytes'])} -> {fmt_bytes(doc['quantized_bytes'])} "
        f"({doc['compression_ratio']:.2f}x, {doc['memory_saving']:.1%} saved, {doc['bpw']:.3f} bpw); "
        + ", ".join(f"{k} {fmt_bytes(v)}" for k, v in doc["bytes_by_kind"].items() if v)
    )
    kv = doc["kv_cache"]
    print(f"KV cache: {fmt_bytes(kv['bytes'])} at {kv['context']} tokens x {kv['batch']} in {kv['kv_bits']}-bit")
    if "accuracy" in doc:
        a = doc["accuracy"]
        print(
            f"weight cosine (extrapolated): {fmt_cos(a['weight_cosine'])} "
            f"[{fmt_cos(a['weight_cosine_low'])}, {fmt_cos(a['weight_cosine_high'])}], "
            f"back-test error {a['backtest_cosine_error']:+.5f}"
        )
    return 0


def cmd_archs(args) -> int:
    from .analysis.archs import ARCHS, arch_summary

    doc = [arch_summary(a) for a in ARCHS.values()]
    if args.json:
        emit({"archs": doc})
    else:
        for d in doc:
            print(f"{d['name']:13s} {d['params']:>15,} params")
    return 0


def cmd_methods(args) -> int:
    from .methods.registry import METHODS

    doc = [
        {"name": m.name, "summary": m.summary, "needs_calibration": m.needs_calibration, "options": m.options()}
        for m in METHODS.values()
    ]
    if args.json:
        emit({"methods": doc})
    else:
        for m in doc:
            opts = ", ".join(f"{o['name']}={o['default']}" + (" (fixed)" if o["fixed"] else "") for o in m["options"])
            print(f"{m['name']:6s} {m['summary']}\n       options: {opts}")
    return 0


def cmd_presets(args) -> int:
    import math

    from .models.presets import PRESETS, load_preset
    from .models.trained import CONFIGS, TRAINED, expected_shapes

    doc = []
    for name in PRESETS:
        m = load_preset(name)
        doc.append({"name": name, "params": m.params, "description": m.description, "trained": False})
    for name, desc in TRAINED.items():  # sizes from the config: listing never loads or trains
        params = sum(math.prod(s) for s in expected_shapes(CONFIGS[name]).values())
        doc.append({"name": name, "params": params, "description": desc, "trained": True})
    if args.json:
        emit({"presets": doc})
    else:
        for d in doc:
            print(f"{d['name']:7s} {d['params']:>10,} params  {d['description']}")
    return 0


COMMANDS = {
    "run": cmd_run,
    "report": cmd_report,
    "extrapolate": cmd_extrapolate,
    "archs": cmd_archs,
    "methods": cmd_methods,
    "presets": cmd_presets,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except QcoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:  # a bug, not bad input: still one line unless debugging
        if os.environ.get("QCORE_DEBUG"):
            raise
        print(f"error: internal {type(e).__name__}: {e} (set QCORE_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1
