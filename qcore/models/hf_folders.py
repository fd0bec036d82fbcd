"""The lab's own language models as Hugging Face folders, so the path an uploaded checkpoint takes is tested on
trained weights: charlm written in GPT-2's format, and a small Llama-architecture LM (RMSNorm, RoPE, SwiGLU,
grouped-query attention) trained with transformers' LlamaForCausalLM on the same corpus and saved in Llama's
format. Both use a character tokenizer (tokenizer.json, the `tokenizers` library) over charlm's alphabet.

    python -m qcore.models.hf_folders gpt2 OUT_DIR     # charlm as a GPT-2 folder
    python -m qcore.models.hf_folders llama            # retrain the shipped Llama folder (minutes on a CPU)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from ..errors import QcoreError
from .charlm import VOCAB
from .trained import checkpoint_path

LLAMA_FOLDER = checkpoint_path("charlm").parent / "llama-char"
LLAMA_CONFIG = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "vocab_size": len(VOCAB),
    "hidden_size": 128,
    "intermediate_size": 352,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "attention_bias": False,
    "mlp_bias": False,
    "bos_token_id": 0,
    "eos_token_id": 0,
}
LLAMA_TRAINING = {"steps": 1500, "batch_size": 16, "lr": 3e-3, "warmup": 50, "weight_decay": 0.1, "seed": 0}


def char_tokenizer_json() -> str:
    """tokenizer.json for charlm's alphabet: one token per character, ids as charlm numbers them."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({c: i for i, c in enumerate(VOCAB)}, unk_token=" "))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return tok.to_str()


def write_folder(out: Path, config: dict, tensors: dict[str, torch.Tensor]) -> Path:
    """config.json, model.safetensors (float32) and tokenizer.json, written to a temp folder beside `out` and
    renamed into place, so a reader never sees half a folder."""
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (tmp / "tokenizer.json").write_text(char_tokenizer_json())
        save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, str(tmp / "model.safetensors"))
        tmp.chmod(0o755)
        for f in tmp.iterdir():
            f.chmod(0o644)  # a shared checkpoint, not a private temp file
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# ---- charlm in GPT-2's format -------------------------------------------------------------------


def gpt2_config(d: int, n_layer: int, n_head: int, block: int) -> dict:
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": len(VOCAB),
        "n_positions": block,
        "n_embd": d,
        "n_layer": n_layer,
        "n_head": n_head,
        "n_inner": 4 * d,
        "activation_function": "gelu",  # charlm's exact GELU, not GPT-2's tanh approximation
        "layer_norm_epsilon": 1e-5,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 0,
    }


def charlm_gpt2_tensors(tensors: dict[str, torch.Tensor], n_layer: int) -> dict[str, torch.Tensor]:
    """charlm's tensors under GPT-2's names; linear weights become Conv1D's (in, out), with zero biases."""
    out = {"transformer.wte.weight": tensors["tok_emb.weight"], "transformer.wpe.weight": tensors["pos_emb.weight"]}
    for i in range(n_layer):
        a, b = f"blocks.{i}.", f"transformer.h.{i}."
        for ours, theirs in (("ln1", "ln_1"), ("ln2", "ln_2")):
            out[f"{b}{theirs}.weight"], out[f"{b}{theirs}.bias"] = (
                tensors[f"{a}{ours}.weight"],
                tensors[f"{a}{ours}.bias"],
            )
        for ours, theirs in (
            ("attn.qkv", "attn.c_attn"),
            ("attn.proj", "attn.c_proj"),
            ("mlp.fc", "mlp.c_fc"),
            ("mlp.proj", "mlp.c_proj"),
        ):
            W = tensors[f"{a}{ours}.weight"]  # (out, in)
            out[f"{b}{theirs}.weight"] = W.T.contiguous()  # (in, out)
            out[f"{b}{theirs}.bias"] = torch.zeros(W.shape[0])
    out["transformer.ln_f.weight"], out["transformer.ln_f.bias"] = tensors["ln_f.weight"], tensors["ln_f.bias"]
    out["lm_head.weight"] = tensors["lm_head.weight"]
    return out


def charlm_as_gpt2(out: Path) -> Path:
    """Write the trained charlm as a GPT-2 folder at `out`."""
    from .catalog import load_model
    from .trained import CONFIGS

    cfg = CONFIGS["charlm"]
    model = load_model("charlm")
    tensors = charlm_gpt2_tensors(dict(model.tensors), cfg.n_layer)
    return write_folder(out, gpt2_config(cfg.d_model, cfg.n_layer, cfg.n_head, cfg.block_size), tensors)


# ---- a small Llama, trained -----------------------------------------------------------------------


def train_llama(progress=None) -> tuple[dict[str, torch.Tensor], dict]:
    """Train LLAMA_CONFIG's model on random windows of the corpus's training split (charlm's recipe: AdamW, warm-up
    then cosine decay, clipped gradients). Returns (tensors, stats with the held-out perplexity)."""
    import torch.nn.functional as F
    from transformers import LlamaConfig, LlamaForCausalLM

    from .charlm import corpus_split, windows
    from .train import lr_at

    t = LLAMA_TRAINING
    torch.manual_seed(t["seed"])
    fields = {k: v for k, v in LLAMA_CONFIG.items() if k not in ("model_type", "architectures")}
    model = LlamaForCausalLM(LlamaConfig(**fields)).float().train()
    train_ids, held = corpus_split()
    T = LLAMA_CONFIG["max_position_embeddings"]
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": t["weight_decay"]}, {"params": rest, "weight_decay": 0.0}],
        lr=t["lr"],
        betas=(0.9, 0.99),
    )
    t0 = time.perf_counter()
    for step in range(t["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, t["steps"], t["lr"], t["warmup"])
        gen = torch.Generator().manual_seed(t["seed"] * 100_003 + step)
        starts = torch.randint(0, len(train_ids) - T, (t["batch_size"],), generator=gen)
        w = windows(train_ids, starts, T + 1)  # (B, T + 1)
        logits = model(input_ids=w[:, :-1], use_cache=False).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if progress and (step % 50 == 0 or step == t["steps"] - 1):
            progress(step + 1, t["steps"], f"loss {loss.item():.4f} ({time.perf_counter() - t0:.0f} s)")
    model.eval()
    starts = torch.linspace(0, len(held) - T - 1, 64).long()
    w = windows(held, starts, T + 1)
    with torch.no_grad():
        logits = model(input_ids=w[:, :-1], use_cache=False).logits
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), w[:, 1:].reshape(-1))
    stats = {"perplexity": float(nll.exp()), "train_seconds": time.perf_counter() - t0}
    return {k: v.detach() for k, v in model.state_dict().items()}, stats


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["gpt2"] and len(args) == 2:
        print(f"wrote {charlm_as_gpt2(Path(args[1]))}", file=sys.stderr)
        return 0
    if args == ["llama"]:
        log = lambda done, total, msg: print(f"[llama] {done}/{total} {msg}", file=sys.stderr)  # noqa: E731
        tensors, stats = train_llama(log)
        write_folder(LLAMA_FOLDER, {**LLAMA_CONFIG, "qcore_training": {**LLAMA_TRAINING, **stats}}, tensors)
        print(f"wrote {LLAMA_FOLDER}: {json.dumps(stats)}", file=sys.stderr)
        return 0
    print("usage: python -m qcore.models.hf_folders {gpt2 OUT_DIR | llama}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except QcoreError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
