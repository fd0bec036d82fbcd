"""Weight files in: a path -> a Model of float32 tensors. Pure of UI; one error type."""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import QcoreError
from .presets import Model

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def read_safetensors(path: str | Path) -> Model:
    """Read a .safetensors file; float tensors become float32, others are listed and skipped."""
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    if not p.is_file():
        raise QcoreError(f"no such file: {p}")
    if p.suffix != ".safetensors":
        raise QcoreError(f"{p.name}: only .safetensors files are read so far")
    tensors, skipped = {}, []
    try:
        with safe_open(str(p), framework="pt") as f:
            for name in f.keys():
                t = f.get_tensor(name)
                if t.dtype in FLOAT_DTYPES:
                    tensors[name] = t.float()
                else:
                    skipped.append(f"{name} ({str(t.dtype).removeprefix('torch.')})")
    except (SafetensorError, OSError, ValueError) as e:
        raise QcoreError(f"{p.name}: not a readable safetensors file ({e})") from None
    if not tensors:
        raise QcoreError(f"{p.name}: no float tensors to quantize")
    desc = f"{len(tensors)} float tensors from {p.name}" + (f"; skipped {', '.join(skipped)}" if skipped else "")
    return Model(p.name, tensors, desc)
