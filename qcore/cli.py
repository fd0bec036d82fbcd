"""The command line: `python -m qcore <command> [options] [--json]` (the CLI contract in DESIGN.md).

With --json, stdout carries one JSON document and nothing else; progress and logs go to stderr.
Bad input exits 2 with a one-line message on stderr. Every command builds a spec (qcore.api) and calls the same
function a page calls, so both print the same figures.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .analysis.archs import ARCHS, arch_summary
from .analysis.gpus import GPUS, Overhead
from .analysis.report import parse_spec, scaling_rows, write_report
from .api.extrapolate import extrapolate
from .api.runs import run_spec
from .api.specs import EXTRAPOLATE_POLICY, RUN_POLICY, ExtrapolationSpec, ModelRef, RunSpec, Target, flag
from .errors import QcoreError, one_line
from .format import fmt_bytes, fmt_cos, fmt_db, to_json
from .labels import option_label
from .methods.registry import METHODS, get_method
from .models.catalog import listing, model_names
from .models.policy import Policy
from .models.presets import PRESETS

EXIT_BAD_INPUT = 2


BAR = {"open": False}  # a terminal bar is drawn on the current line (cleared before an error message)


def progress_bar(label: str):
    """A Progress callback that draws a bar on stderr: redrawn in place on a terminal; otherwise one line per step
    from the first finished step on (a run refused at its first tensor leaves only its one-line error)."""
    tty = sys.stderr.isatty()

    def update(done: int, total: int, what: str) -> None:
        width = 24
        filled = int(width * done / max(total, 1))
        line = f"{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}"
        if tty:
            BAR["open"] = done != total
            sys.stderr.write("\r" + line.ljust(79) + ("\n" if done == total else ""))
        elif done:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return update


def error_line(message: str) -> None:
    """The one line of an error on stderr, on a line of its own (a terminal bar in progress is cleared first)."""
    if BAR["open"]:
        sys.stderr.write("\r" + " " * 79 + "\r")
        BAR["open"] = False
    print(message, file=sys.stderr)


def emit(doc) -> None:
    sys.stdout.write(to_json(doc) + "\n")


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes exit 2 with one line on stderr, like every other bad input (--help still prints usage)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m qcore", description="Post-training weight quantization lab")
    sub = p.add_subparsers(dest="command", required=True)
    _report_parser(sub)
    _run_parser(sub)
    _extrapolate_parser(sub)
    for name, text in (
        ("archs", "the architecture catalogue with exact parameter counts"),
        ("methods", "the method registry: names, options, defaults"),
        ("presets", "the built-in models"),
    ):
        sub.add_parser(name, help=text).add_argument("--json", action="store_true")
    return p


def _report_parser(sub) -> None:
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


def _run_parser(sub) -> None:
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
    _add_policy_options(q, RUN_POLICY)
    q.add_argument("--out", help="write the artifact here (.parquet)")
    q.add_argument("--json", action="store_true", help="print one record")


def _extrapolate_parser(sub) -> None:
    e = sub.add_parser("extrapolate", help="sizes, KV cache and predicted accuracy for a real architecture")
    tgt = e.add_mutually_exclusive_group(required=True)
    tgt.add_argument("--arch", help="a catalogued architecture (see `archs`)")
    tgt.add_argument("--params", type=float, help="a plain parameter count, e.g. 7e9 (generic Llama-style shape)")
    tgt.add_argument("--config", help="a Hugging Face config.json")
    e.add_argument("--method", required=True, help=f"one of {', '.join(METHODS)}")
    _add_method_options(e)
    _add_policy_options(e, EXTRAPOLATE_POLICY)
    e.add_argument("--context", type=int, default=4096, help="tokens of KV cache")
    e.add_argument("--batch", type=int, default=1, help="sequences of KV cache")
    e.add_argument("--kv-bits", type=int, default=16, choices=(16, 8, 4), help="KV cache precision")
    e.add_argument("--no-accuracy", action="store_true", help="skip the accuracy fit (sizes only)")
    e.add_argument("--gpu", metavar="NAME", help=f"fit and tokens/s bounds on one of: {', '.join(GPUS)}")
    over = Overhead()  # activations and framework: pct % of the weights + fixed GiB
    e.add_argument("--overhead-pct", type=float, help=f"with --gpu: overhead, %% of the weights (default {over.pct:g})")
    e.add_argument("--overhead-gib", type=float, help=f"with --gpu: fixed overhead, GiB (default {over.fixed_gib:g})")
    e.add_argument("--json", action="store_true")


def method_option_specs() -> dict[str, dict]:
    """Every option some method lets the user set, once per name: its type, help, and each method's default."""
    specs: dict[str, dict] = {}
    for m in METHODS.values():
        for opt in m.options():
            if not opt.fixed:
                help_ = option_label(opt.name).described("en")  # the sidebar's English label and help
                spec = specs.setdefault(opt.name, {"type": opt.type, "help": help_, "methods": {}})
                spec["methods"][m.name] = opt.default
    return specs


def _add_method_options(p: argparse.ArgumentParser) -> None:
    """One flag per registry option (--group-size for group_size); unset flags keep each method's default."""
    for name, spec in method_option_specs().items():
        defaults = ", ".join(f"{m} {d}" for m, d in spec["methods"].items())
        help_ = f"{spec['help']}; default {defaults}".replace("%", "%%")  # argparse formats help with %
        kw: dict = {"default": None, "help": help_}
        if spec["type"] == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = {"int": int, "float": float}.get(spec["type"], str)
            kw["metavar"] = name.upper()  # the method's config checks the value, with its own message
        p.add_argument(flag(name), **kw)


def _add_policy_options(p: argparse.ArgumentParser, default: Policy) -> None:
    """Which tensors are quantized; the command's own default is stated in the help."""
    for dest, word, noun, on in (
        ("head", "head", "the output head", default.quantize_head),
        ("emb", "embeddings", "embedding tables", default.quantize_embeddings),
    ):
        pair = p.add_mutually_exclusive_group()
        yes, no = (" (default)", "") if on else ("", " (default)")
        pair.add_argument(
            f"--quantize-{word}", dest=dest, action="store_true", default=None, help=f"quantize {noun}{yes}"
        )
        pair.add_argument(f"--keep-{word}", dest=dest, action="store_false", help=f"keep {noun} in FP16{no}")
    p.add_argument("--include", help="regex: quantize only matching tensor names")
    p.add_argument("--exclude", help="regex: keep matching tensor names in FP16")


def policy_of(args, default: Policy) -> Policy:
    head = default.quantize_head if args.head is None else args.head
    emb = default.quantize_embeddings if args.emb is None else args.emb
    return Policy(head, emb, args.include or None, args.exclude or None)


def options_of(args) -> dict:
    """The method options given on the command line (the method's config says which it takes)."""
    return {k: getattr(args, k) for k in method_option_specs() if getattr(args, k, None) is not None}


def cmd_run(args) -> int:
    if args.out and not args.out.endswith(".parquet"):
        raise QcoreError(f"--out must name a .parquet file, got '{args.out}'")
    ref = ModelRef("preset", args.preset) if args.preset else ModelRef("file", args.weights)
    spec = RunSpec.make(ref, args.method, options_of(args), policy_of(args, RUN_POLICY), args.codec)
    bar = progress_bar(f"{ref.label} {args.method}")
    rec = run_spec(spec, out=args.out, progress=bar, keep=False).record  # only the record: stream tensor by tensor
    if args.json:
        emit(rec)
    else:
        print(summary_line(rec))
    return 0


def summary_line(rec: dict) -> str:
    if rec["output_cosine"] is None and rec.get("synthetic_output_cosine") is not None:
        output = f"synthetic-input output cosine {fmt_cos(rec['synthetic_output_cosine'])}"
    else:
        output = f"output cosine {fmt_cos(rec['output_cosine'])}"
    theoretical = f"{rec['theoretical_ratio']:.2f}x" if rec["theoretical_ratio"] else "n/a"
    return (
        f"{rec['source']} {rec['method']}: {fmt_bytes(rec['fp16_bytes'])} -> {fmt_bytes(rec['quantized_bytes'])} "
        f"({rec['compression_ratio']:.2f}x, theoretical {theoretical}, {rec['bpw']:.3f} bpw), "
        f"weight cosine {fmt_cos(rec['weight_cosine'])} ({rec['quality']}), SQNR {fmt_db(rec['sqnr_db'])}, "
        f"{output}{task_text(rec.get('task'))}, {rec['quant_seconds']:.4f} s on {rec['threads']} threads"
    )


def task_text(task: dict | None) -> str:
    """', task: perplexity 5.8251 (FP 5.7159), kl 0.012158, ...': measured on the model's real outputs."""
    if not task:
        return ""
    parts = [
        f"{k} {v:.6g}" + (f" (FP {task[k + '_ref']:.6g})" if k + "_ref" in task else "")
        for k, v in task.items()
        if not k.endswith("_ref") and isinstance(v, int | float)
    ]
    return ", task: " + ", ".join(parts)


def cmd_report(args) -> int:
    presets, methods = _csv(args.presets), _csv(args.methods)
    if not presets or not methods:
        raise QcoreError("--presets and --methods each need at least one name")
    for name in presets:
        if name not in model_names():
            raise QcoreError(f"unknown preset '{name}'; choose from {', '.join(model_names())}")
    for spec in methods:
        get_method(parse_spec(spec)[0])
    rows = scaling_rows(presets, methods, options_of(args), args.out, progress_bar("report"))
    if args.out:
        for path in write_report(rows, args.out, args.lang):
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        emit({"rows": rows})
    else:
        for rec in rows:
            print(summary_line(rec))
    return 0


def target_of(args) -> Target:
    if args.arch:
        return Target("catalog", args.arch)
    if args.config:
        p = Path(args.config)
        if not p.is_file():
            raise QcoreError(f"no such file: {p}")
        return Target("config", p.read_text(encoding="utf-8", errors="replace"), p.stem)
    if not args.params > 0 or args.params != int(args.params):
        raise QcoreError(f"--params must be a positive whole number, got {args.params}")
    return Target("params", int(args.params))


def overhead_of(args) -> Overhead:
    if not args.gpu and (args.overhead_pct is not None or args.overhead_gib is not None):
        raise QcoreError("--overhead-pct and --overhead-gib set the --gpu what-if: name a GPU with --gpu")
    default = Overhead()
    pct = default.pct if args.overhead_pct is None else args.overhead_pct
    return Overhead(pct, default.fixed_gib if args.overhead_gib is None else args.overhead_gib)


def cmd_extrapolate(args) -> int:
    spec = ExtrapolationSpec.make(
        target_of(args), args.method, options_of(args), policy_of(args, EXTRAPOLATE_POLICY),
        context=args.context, batch=args.batch, kv_bits=args.kv_bits, accuracy=not args.no_accuracy,
        gpu=args.gpu or "", overhead=overhead_of(args),
    )  # fmt: skip
    doc = extrapolate(spec, progress=progress_bar("fitting accuracy on the presets"))
    if args.json:
        emit(doc)
        return 0
    for line in extrapolation_lines(doc):
        print(line)
    return 0


def extrapolation_lines(doc: dict) -> list[str]:
    kinds = ", ".join(f"{k} {v:,}" for k, v in doc["params_by_kind"].items() if v)
    parts = ", ".join(f"{k} {fmt_bytes(v)}" for k, v in doc["bytes_by_kind"].items() if v)
    kv = doc["kv_cache"]
    lines = [
        f"{doc['arch']}: {doc['params']:,} params; {kinds}",
        f"{doc['method']}: {fmt_bytes(doc['fp16_bytes'])} -> {fmt_bytes(doc['quantized_bytes'])} "
        f"({doc['compression_ratio']:.2f}x, {doc['memory_saving']:.1%} saved, {doc['bpw']:.3f} bpw); {parts}",
        f"KV cache: {fmt_bytes(kv['bytes'])} at {kv['context']} tokens x {kv['batch']} in {kv['kv_bits']}-bit"
        + (
            f" (beyond {doc['arch']}'s {kv['max_context']:,}-token context)"
            if kv["context"] > kv["max_context"]
            else ""
        ),
    ]
    if "accuracy" in doc:
        a = doc["accuracy"]
        lines.append(
            f"weight cosine (extrapolated): {fmt_cos(a['weight_cosine'])} "
            f"[{fmt_cos(a['weight_cosine_low'])}, {fmt_cos(a['weight_cosine_high'])}], "
            f"back-test error {a['backtest_cosine_error']:+.5f}"
        )
    return lines + (gpu_lines(doc["gpu"]) if "gpu" in doc else [])


def gpu_lines(g: dict) -> list[str]:
    """The GPU what-if: memory needed against the card, then the tokens/s bounds (none where it does not fit)."""
    over = g["overhead"]
    need = (
        f"{g['gpu']} ({g['memory_gib']:g} GiB, {g['bandwidth_gbs']:g} GB/s, {g['tflops']:g} TFLOPS): needs "
        f"{fmt_bytes(g['needed_bytes'])} = weights {fmt_bytes(g['weights_bytes'])} + KV cache "
        f"{fmt_bytes(g['kv_bytes'])} + overhead {fmt_bytes(g['overhead_bytes'])} ({over['pct']:g}% + "
        f"{over['fixed_gib']:g} GiB)"
    )
    if not g["fits"]:
        return [need, f"does not fit: {fmt_bytes(-g['headroom_bytes'])} short"]
    return [
        need,
        f"fits: {fmt_bytes(g['headroom_bytes'])} free",
        f"decode: at most {g['decode_tokens_per_s']:.1f} tokens/s (upper bound, {g['decode_bound']}-bound: "
        f"{fmt_bytes(g['read_bytes_per_step'])} read per step)",
        f"prefill: about {g['prefill_tokens_per_s']:.0f} tokens/s (compute-bound estimate at peak TFLOPS, "
        f"{g['prefill_flops_per_token'] / 1e9:.2f} GFLOP per token)",
    ]


def cmd_archs(args) -> int:
    doc = [arch_summary(a) for a in ARCHS.values()]
    if args.json:
        emit({"archs": doc})
    else:
        for d in doc:
            print(f"{d['name']:13s} {d['params']:>15,} params")
    return 0


def cmd_methods(args) -> int:
    doc = [
        {"name": m.name, "summary": m.summary, "needs_calibration": m.needs_calibration,
         "options": [o.as_dict() for o in m.options()]}
        for m in METHODS.values()
    ]  # fmt: skip
    if args.json:
        emit({"methods": doc})
    else:
        for m in METHODS.values():
            print(f"{m.name:6s} {m.summary}")
            for o in m.options():  # group_size=128  Group size (weights): Weights along a row ...
                value = f"{o.name}={o.default}" + (" (fixed)" if o.fixed else "")
                print(f"       {value:22s} {o.label.described('en')}")
    return 0


def cmd_presets(args) -> int:
    doc = listing()
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
        error_line(f"error: {e}")
        return EXIT_BAD_INPUT
    except Exception as e:  # a bug, not bad input: still one line unless debugging
        if os.environ.get("QCORE_DEBUG"):
            raise
        error_line(f"error: internal {type(e).__name__}: {one_line(str(e))} (set QCORE_DEBUG=1 for a traceback)")
        return 1
