"""`python -m bench`: RTN throughput against a straightforward torch baseline, the large preset's run, GPTQ, and the
rotation, e8p and trellis (bench_vector), and a real checkpoint end to end (bench_hf)."""

import statistics
import time
from functools import partial

import torch

from qcore import get_method, load_preset, run

from .baseline import baseline_rtn
from .bench_gptq import bench_gptq
from .bench_hf import bench_minilm
from .bench_vector import bench_gaussian, bench_large

CASES = (("rtn int4 g128", "rtn", {"bits": 4, "group_size": 128}), ("int8", "int8", {}))
SHAPES = ((4096, 4096), (8192, 8192))
REPEATS = 5


def best_seconds(fn, repeats: int = REPEATS) -> float:
    fn()  # warm-up: allocator, thread pool
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_rtn() -> None:
    print(
        f"RTN quantization throughput, torch {torch.__version__}, {torch.get_num_threads()} threads, best of {REPEATS}"
    )
    print(f"{'case':15s} {'shape':>11s} {'ours Mparams/s':>15s} {'baseline':>10s} {'speedup':>8s}  same codes")
    gen = torch.Generator().manual_seed(0)
    for shape in SHAPES:
        W = torch.randn(*shape, generator=gen)
        n = W.numel()
        for label, name, opts in CASES:
            m = get_method(name)
            cfg = m.make_config(**opts)
            ours = best_seconds(partial(m.quantize, W, cfg))
            base = best_seconds(partial(baseline_rtn, W, cfg.bits, cfg.group_size, cfg.sym))
            same = torch.equal(m.quantize(W, cfg).q, baseline_rtn(W, cfg.bits, cfg.group_size, cfg.sym)[0])
            print(
                f"{label:15s} {shape[0]:>5d}x{shape[1]:<5d} {n / ours / 1e6:15.0f} {n / base / 1e6:10.0f} "
                f"{base / ours:7.1f}x  {same}"
            )


def bench_large_run() -> None:
    model = load_preset("large")
    print(f"\nlarge preset ({model.params:,} params): whole run = quantize + pack + write + metrics, in memory")
    for method in ("int8", "int2"):
        times = []
        for _ in range(REPEATS + 1):
            t0 = time.perf_counter()
            res = run(model, method)
            times.append(time.perf_counter() - t0)
        rec = res.record
        print(
            f"{method:5s} first {times[0]:.3f} s, median of next {REPEATS} {statistics.median(times[1:]):.3f} s "
            f"(quantize alone {rec['quant_seconds']:.4f} s), {rec['compression_ratio']:.2f}x, "
            f"cosine {rec['weight_cosine']:.6f}"
        )


if __name__ == "__main__":
    bench_rtn()
    bench_large_run()
    print()
    bench_gptq()
    print()
    bench_gaussian()
    bench_large()
    print()
    bench_minilm()
