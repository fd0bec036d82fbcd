"""A synthetic 1-billion-parameter F16 safetensors file through `python -m qcore run --weights`.

Generates the file tensor by tensor (never the whole model in memory), runs the CLI in a child
process with rtn 4-bit g128, reports wall time and the child's peak RSS, then deletes everything.
"""

import json
import math
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

from .child import run_qcore

# A Llama-style stack of about 1.0e9 parameters: 22 layers of d=2048, MLP 5632, vocab 32000.
D, MLP, LAYERS, VOCAB = 2048, 5632, 22, 32000


def shapes() -> dict[str, tuple[int, ...]]:
    out = {"embed_tokens.weight": (VOCAB, D)}
    for i in range(LAYERS):
        p = f"layers.{i}."
        out |= {p + "q_proj.weight": (D, D), p + "k_proj.weight": (D, D), p + "v_proj.weight": (D, D),
                p + "o_proj.weight": (D, D), p + "gate_proj.weight": (MLP, D), p + "up_proj.weight": (MLP, D),
                p + "down_proj.weight": (D, MLP), p + "input_norm.weight": (D,), p + "post_norm.weight": (D,)}  # fmt: skip
    out |= {"norm.weight": (D,), "lm_head.weight": (VOCAB, D)}
    return out


def write_f16_safetensors(path: Path) -> int:
    header, offset = {}, 0
    for name, shape in shapes().items():
        n = math.prod(shape) * 2
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for shape in shapes().values():
            for rows in np.array_split(np.arange(shape[0]), max(1, math.prod(shape) // (1 << 24))):
                block = rng.standard_normal((len(rows), *shape[1:]), dtype=np.float32) * 0.02
                f.write(block.astype(np.float16).tobytes())
    return sum(math.prod(s) for s in shapes().values())


def bench_stream() -> None:
    with tempfile.TemporaryDirectory(prefix="qcore-1b-") as tmp:
        src, out = Path(tmp) / "synthetic-1b.safetensors", Path(tmp) / "synthetic-1b-rtn4.parquet"
        t0 = time.perf_counter()
        params = write_f16_safetensors(src)
        print(f"wrote {params:,} F16 params ({src.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t0:.1f} s")
        run = run_qcore(["run", "--weights", str(src), "--method", "rtn", "--bits", "4", "--group-size", "128",
                         "--out", str(out), "--json"])  # fmt: skip
        if run.code:
            print(run.err[-2000:])
            raise SystemExit("the streamed run failed")
        wall, rss = run.wall_s, run.peak_bytes / 2**30
        rec = json.loads(run.out)
        print(
            f"rtn 4-bit g128 via the CLI: {wall:.1f} s wall (quantize alone {rec['quant_seconds']:.1f} s, "
            f"{rec['threads']} threads), peak RSS {rss:.2f} GiB; {rec['fp16_bytes'] / 2**30:.2f} GiB -> "
            f"{rec['quantized_bytes'] / 2**30:.3f} GiB ({rec['compression_ratio']:.2f}x), "
            f"weight cosine {rec['weight_cosine']:.6f}; targets: <= 120 s, <= 2 GiB"
        )
    print("deleted the synthetic file and its artifact")


if __name__ == "__main__":
    bench_stream()
