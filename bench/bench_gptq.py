"""`python -m bench.bench_gptq`: GPTQ wall time on a 4096 x 4096 layer (and a 1024 x 1024 one).

The layer is Gaussian; the calibration inputs are correlated Gaussian rows X = Z A (A a random mixing
matrix near the identity). H = 2 X^T X / n is timed on its own, then quantize_gptq (4-bit, g128,
act_order), then the total. Times are wall clock and depend on what else the machine runs.
"""

import time

import torch

from qcore.measure.metrics import cosine
from qcore.methods.gptq import GPTQConfig, quantize_gptq
from qcore.methods.quant import dequantize
from qcore.methods.rtn import RTNConfig, quantize_rtn

CASES = ((4096, 4096, 2048), (1024, 1024, 2048))  # (out, in, calibration rows)
CONFIG = GPTQConfig(bits=4, group_size=128, act_order=True)


def layer_error(W: torch.Tensor, W_hat: torch.Tensor, X: torch.Tensor) -> float:
    """||W X^T - W_hat X^T||^2 / ||W X^T||^2 on the calibration rows."""
    return float((X @ (W - W_hat).T).square().sum() / (X @ W.T).square().sum())


def bench_gptq() -> None:
    print(f"GPTQ {CONFIG}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    gen = torch.Generator().manual_seed(0)
    for out, n, rows in CASES:
        W = torch.randn(out, n, generator=gen)
        A = torch.randn(n, n, generator=gen) / n**0.5 + torch.eye(n)  # (in, in)
        X = torch.randn(rows, n, generator=gen) @ A  # (rows, in)
        t0, c0 = time.perf_counter(), time.process_time()
        H = (2.0 / rows) * (X.T @ X)  # (in, in)
        t1, c1 = time.perf_counter(), time.process_time()
        qt = quantize_gptq(W, CONFIG, H=H)
        t2, c2 = time.perf_counter(), time.process_time()
        W_hat = dequantize(qt)
        rtn = dequantize(quantize_rtn(W, RTNConfig(bits=CONFIG.bits, group_size=CONFIG.group_size)))
        print(
            f"{out:>5d}x{n:<5d} X^T X ({rows} rows) {t1 - t0:6.2f} s (cpu {c1 - c0:5.2f})  "
            f"quantize_gptq {t2 - t1:6.2f} s (cpu {c2 - c1:5.2f})  total {t2 - t0:6.2f} s (cpu {c2 - c0:5.2f})"
        )
        print(
            f"{'':11s} relative layer error gptq {layer_error(W, W_hat, X):.5f}, rtn {layer_error(W, rtn, X):.5f}; "
            f"weight cosine gptq {cosine(W, W_hat):.5f}, rtn {cosine(W, rtn):.5f}"
        )


if __name__ == "__main__":
    bench_gptq()
