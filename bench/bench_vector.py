"""`python -m bench.bench_vector`: the incoherence rotation, e8p and trellis on a 4096 x 4096 Gaussian matrix
(speed and normalized MSE beside the published figures), and the large preset past the scalar limit."""

import time

import torch

from qcore import get_method, load_preset, run
from qcore.measure.metrics import lloyd_max, rd_bound
from qcore.methods.rotation import make_rotation

SHAPE = (4096, 4096)
QUIP_SHARP_D, QTIP_D_L16 = 0.089, 0.069  # the papers' normalized MSE on i.i.d. Gaussian weights at 2 bits


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def distortion(W: torch.Tensor, W_hat: torch.Tensor) -> float:
    return float((W - W_hat).double().square().sum() / W.double().square().sum())


def bench_gaussian(L_values=(6, 8, 10, 12)) -> None:
    W = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(0))
    print(f"4096 x 4096 i.i.d. Gaussian, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"  limits at 2 bits: bound D {rd_bound(2):.4f}, best scalar (Lloyd-Max) D {lloyd_max(2):.4f}")
    rotation = make_rotation(*SHAPE, 0)
    _, seconds = timed(lambda: rotation.apply(W))
    print(f"  rotation (randomized Hadamard, both sides): {seconds:.2f} s")
    e8p = get_method("e8p")
    qt, seconds = timed(lambda: e8p.quantize(W, e8p.make_config()))
    D = distortion(W, qt.dequantize())
    print(f"  e8p: {seconds:.1f} s, D {D:.4f} ({D / QUIP_SHARP_D - 1:+.1%} against QuIP#'s {QUIP_SHARP_D})")
    trellis = get_method("trellis")
    for L in L_values:
        qt, seconds = timed(lambda L=L: trellis.quantize(W, trellis.make_config(L=L)))
        D = distortion(W, qt.dequantize())
        print(f"  trellis L={L}: {seconds:.1f} s, D {D:.4f} (QTIP reports {QTIP_D_L16} at L=16)")


def bench_large(L_values=(6, 8, 10, 12)) -> None:
    model = load_preset("large")
    print(f"\nlarge preset ({model.params:,} params), default policy: weight cosine, payload + metadata bpw, seconds")
    cases = [("e8p", {})] + [("trellis", {"L": L}) for L in L_values]
    cases += [
        ("rtn", {"bits": 2, "group_size": 64, "clip": True}),
        ("rtn", {"bits": 2, "group_size": 64, "clip": True, "rotate": True}),
    ]
    for method, options in cases:
        rec = run(model, method, options, keep=False).record
        label = method + "".join(f" {k}={v}" for k, v in options.items())
        print(f"  {label:42s} cosine {rec['weight_cosine']:.5f}  {rec['payload_meta_bpw']:.4f} bpw  "
              f"{rec['quant_seconds']:6.1f} s")  # fmt: skip


if __name__ == "__main__":
    bench_gaussian()
    bench_large()
