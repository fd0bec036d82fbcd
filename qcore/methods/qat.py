"""Quantization-aware training for SEQ: learn weights and per-group scales through the quantizer.

The forward pass uses W_hat = s * clamp_level(W / s) with a straight-through estimator for the
rounding (Bengio et al. 2013) and a learned step size as in LSQ (Esser et al. 2020): inside the
clipping range the gradient passes to W unchanged, and s learns from both the rounding residual
and the clipped weights. Tensors kept in FP16 (biases, norms) train along. Starts from the SEQ
post-training scales, so zero steps gives exactly the PTQ result.
"""

from __future__ import annotations

import torch

from ..errors import QcoreError
from .common import FP16_MIN_NORMAL, as_matrix, store_scales
from .contract import ModelJob
from .quant import QuantizedTensor, to_groups
from .seq import SEQConfig, quantize_seq, seq_codes


def fake_quant_seq(W: torch.Tensor, scale: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """Differentiable SEQ quantization of W (out, in) with scales (out, G); returns W_hat (out, in)."""
    out, n = W.shape
    half = 2 ** (bits - 1)
    v = to_groups(W, group_size) / scale.unsqueeze(-1)  # (out, G, g) in units of scale
    inside = v.clamp(-half, half)  # gradient 0 outside the levels' range
    level = torch.floor(v.detach()).clamp(-half, half - 1) + 0.5
    v_q = inside + (level - inside).detach()  # forward: the level; backward: identity inside the range
    return (v_q * scale.unsqueeze(-1)).reshape(out, -1)[:, :n]  # (out, in)


def ptq_seq(job: ModelJob, cfg: SEQConfig) -> dict[str, QuantizedTensor]:
    """SEQ's post-training scales for every selected tensor, reporting the tensor about to be searched."""
    out = {}
    for i, (name, W) in enumerate(job.selected.items()):
        if job.progress:
            job.progress(i, len(job.selected), f"PTQ scale search: {name}")
        out[name] = quantize_seq(W, cfg)
    return out


def qat_seq(job: ModelJob, cfg: SEQConfig) -> dict[str, QuantizedTensor | torch.Tensor]:
    """SEQ with `cfg.qat_steps` steps of QAT on model.loss; PTQ alone when the model cannot train.

    Learned scales stay positive (a group of zeros starts from the smallest float16 normal, so it can learn) and
    are stored like SEQ's: float16 where they fit, else float32. Kept tensors come back trained, in their dtype.
    """
    selected, kept, model = job.selected, job.kept, job.model
    ptq = ptq_seq(job, cfg)
    if cfg.qat_steps == 0 or model.loss is None:
        return ptq
    weights = {n: as_matrix(W).float().clone().requires_grad_(True) for n, W in selected.items()}
    scales = {n: ptq[n].scale.float().clamp(min=FP16_MIN_NORMAL).requires_grad_(True) for n in selected}
    extras = {n: t.float().clone().requires_grad_(t.is_floating_point()) for n, t in kept.items()}
    params = list(weights.values()) + [t for t in extras.values() if t.requires_grad]
    opt = torch.optim.Adam([{"params": params, "lr": cfg.qat_lr}, {"params": list(scales.values()), "lr": cfg.qat_lr}])
    loss = None
    for step in range(cfg.qat_steps):
        if job.progress:  # before the step: the label names the step now running, with the last step's loss
            last = f", loss {loss.item():.4f}" if loss is not None else ""
            job.progress(step, cfg.qat_steps, f"QAT step {step + 1} of {cfg.qat_steps}{last}")
        tensors = dict(extras)
        for n, W in weights.items():
            tensors[n] = fake_quant_seq(W, scales[n], cfg.bits, cfg.group_size).reshape(selected[n].shape)
        loss = model.loss(tensors, step)
        if not torch.isfinite(loss):
            raise QcoreError(f"QAT diverged at step {step} (loss {float(loss)}); lower qat_lr")
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for s in scales.values():
                s.clamp_(min=FP16_MIN_NORMAL)
    out: dict[str, QuantizedTensor | torch.Tensor] = {}
    with torch.no_grad():
        for n, W in weights.items():
            scale = store_scales(scales[n].detach())  # (out, G)
            q = seq_codes(to_groups(W, cfg.group_size), scale.float(), cfg.bits).reshape(W.shape[0], -1)
            q = q[:, : W.shape[1]].contiguous()  # (out, in)
            p = ptq[n]
            out[n] = QuantizedTensor(q, scale, p.zero, p.bits, p.group_size, p.shape)
        for n, t in extras.items():
            out[n] = t.detach().to(kept[n].dtype)
    return out
