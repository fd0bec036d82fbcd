"""Hugging Face model folders run through `transformers`: the model's own code, tokenizer and outputs.

A folder with config.json, its safetensors weights (one file or shards with an index) and tokenizer.json becomes a
Model that can run: `forward` loads the lab's tensors (original, or dequantized) into a transformers module built
from the config, on the CPU in float32 and eval mode. Nothing from the folder is executed: a config that asks for
remote code (auto_map) or names a model type outside MODEL_TYPES is refused, and the module is built with its
parameters on the meta device, so the weights are never allocated twice (load_state_dict(assign=True) takes the
lab's tensors as they are).

Text comes from the repo (texts.py), tokenized with the model's own tokenizer: decoders are measured on held-out
windows of the docstring corpus (perplexity, KL, same-top), encoders on a fixed set of sentences (embedding
cosine after the model's pooling, Spearman agreement of pairwise similarities, nearest-neighbour agreement).
Calibration takes windows or sentences from the corpus's training split, never the evaluation text.

GPT-2's Conv1D layers store weights as (in, out); the lab sees them transposed, (out, in) like every other linear
weight, so methods quantize along the same axis everywhere, and they are transposed back when loaded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from ..errors import QcoreError
from .hf_eval import (
    MAX_CONFIG_BYTES,
    calibration_batch,
    context_length,
    decoder_task,
    decoder_windows,
    encoder_task,
    load_tokenizer,
    pooling_mode,
    random_windows,
    sentence_batch,
    token_ids,
)
from .hf_replay import BlockReplay
from .model import LazyTensors, Model, StopForward
from .texts import corpus_text, eval_sentences

# model_type -> (kind, transformers Auto class): the architectures the lab runs; anything else is refused
MODEL_TYPES = {
    "bert": "encoder",
    "gpt2": "decoder",
    "llama": "decoder",
    "mistral": "decoder",
    "qwen2": "decoder",
    "qwen3": "decoder",
}
MEMORY_FACTOR = 2.5  # output metrics need FP32 weights x this much free memory (a reference and a quantized copy,
# activations and the reference outputs); a larger model falls back to weight metrics
LIMITS = {  # config fields that size the model: anything beyond these is not a model this lab could build
    "num_hidden_layers": 1024, "n_layer": 1024, "hidden_size": 1 << 16, "n_embd": 1 << 16,
    "intermediate_size": 1 << 18, "n_inner": 1 << 18, "vocab_size": 1 << 22, "num_attention_heads": 1024,
    "n_head": 1024, "num_key_value_heads": 1024, "max_position_embeddings": 1 << 20, "n_positions": 1 << 20,
}  # fmt: skip
MAX_PARAMS = 200e9  # a config claiming more parameters than this is refused outright
EVAL_WINDOWS = 64  # held-out decoder windows
CALIB_TOKENS = 4096  # default calibration tokens: 32 windows of 128


def read_config(folder: Path, label: str) -> dict:
    """config.json, validated: a JSON object, a model type the lab runs, no remote code, sane sizes."""
    path = folder / "config.json"
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise QcoreError(f"{label}: config.json is over {MAX_CONFIG_BYTES:,} bytes; not a model config")
    try:
        cfg = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        where = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        raise QcoreError(f"{label}: config.json is not valid JSON{where}") from None
    if not isinstance(cfg, dict):
        raise QcoreError(f"{label}: config.json is not a JSON object")
    if "auto_map" in cfg or cfg.get("trust_remote_code"):
        raise QcoreError(
            f"{label}: config.json asks for the checkpoint's own Python code (auto_map); the lab never runs code "
            "from a checkpoint"
        )
    kind = cfg.get("model_type")
    if kind not in MODEL_TYPES:
        raise QcoreError(f"{label}: model_type {kind!r} is not one the lab runs (it runs {', '.join(MODEL_TYPES)})")
    for key, limit in LIMITS.items():
        v = cfg.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= limit:
            raise QcoreError(f"{label}: config.json's {key} = {v!r} is not a size the lab can build (1..{limit:,})")
    params = config_params(cfg)
    if params > MAX_PARAMS:
        raise QcoreError(f"{label}: config.json describes {params:,.0f} parameters, over the {MAX_PARAMS:,.0f} limit")
    return cfg


def config_params(cfg: dict) -> float:
    """The parameter count a config implies (embeddings, attention, MLP, head), before anything is built."""
    d = cfg.get("hidden_size") or cfg.get("n_embd") or 0
    layers = cfg.get("num_hidden_layers") or cfg.get("n_layer") or 0
    ff = cfg.get("intermediate_size") or cfg.get("n_inner") or 4 * d
    vocab = cfg.get("vocab_size") or 0
    mlp = (3 if cfg["model_type"] in ("llama", "mistral", "qwen2", "qwen3") else 2) * d * ff
    return float(layers) * (4 * d * d + mlp) + 2.0 * vocab * d


BUILD_LOCK = threading.Lock()  # params_on_meta patches a torch method process-wide: one build at a time


@contextmanager
def params_on_meta():
    """Build modules with their parameters moved to the meta device as they are registered (each is allocated
    only for that moment); buffers stay real on the CPU. Holds BUILD_LOCK, so concurrent builds cannot leave
    the patch behind."""
    with BUILD_LOCK:
        yield from _patched_register()


def _patched_register():
    register = torch.nn.Module.register_parameter

    def on_meta(module, name, param):
        register(module, name, param)
        if param is not None:
            p = module._parameters[name]
            module._parameters[name] = torch.nn.Parameter(p.to("meta"), requires_grad=False)

    torch.nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register


def build_module(cfg: dict) -> torch.nn.Module:
    """The transformers module for a validated config, parameters on meta, eval mode, float32."""
    import transformers  # heavy: only when a model folder is opened
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    transformers.logging.set_verbosity_error()
    fields = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures", "transformers_version")}
    fields.update(torch_dtype="float32", attn_implementation="sdpa")
    try:
        config = AutoConfig.for_model(cfg["model_type"], **fields)
        auto = AutoModel if MODEL_TYPES[cfg["model_type"]] == "encoder" else AutoModelForCausalLM
        with params_on_meta():
            module = auto.from_config(config)
    except QcoreError:
        raise
    except Exception as e:  # transformers' own checks of a config (head counts, sizes)
        raise QcoreError(
            f"transformers cannot build this {cfg['model_type']} config ({type(e).__name__}: {e})"
        ) from None
    return module.eval()


def linear_modules(module: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """{parameter name of the weight: module} for every nn.Linear and GPT-2 Conv1D."""
    from transformers.pytorch_utils import Conv1D

    return {f"{name}.weight": m for name, m in module.named_modules() if isinstance(m, torch.nn.Linear | Conv1D)}


class HFCode:
    """A transformers module and the map between its parameter names and the checkpoint's tensor names.

    One module per model: forward() loads the tensors it is given (assign, no copy) and runs under a lock, so
    sessions sharing the model take turns."""

    def __init__(self, cfg: dict, names: Mapping[str, tuple[int, ...]], label: str):
        self.cfg, self.kind = cfg, MODEL_TYPES[cfg["model_type"]]
        self.pooling = "mean"  # sentence-transformers' default; hf_model reads 1_Pooling/config.json
        self.module = build_module(cfg)
        self.lock = threading.Lock()
        own = {k: tuple(p.shape) for k, p in self.module.named_parameters()}
        prefix = self.module.base_model_prefix
        self.names: dict[str, str] = {}  # module parameter -> checkpoint tensor
        for k in own:
            for cand in (k, f"{prefix}.{k}", k.removeprefix(f"{prefix}.")):
                if cand in names:
                    self.names[k] = cand
                    break
        linear = linear_modules(self.module)
        from transformers.pytorch_utils import Conv1D

        self.transposed = {self.names[k] for k, m in linear.items() if isinstance(m, Conv1D) and k in self.names}
        self.tied = {}
        missing = [k for k in own if k not in self.names]
        for k in missing:
            if k.endswith("lm_head.weight") and cfg.get("tie_word_embeddings", True):
                emb = self.module.get_input_embeddings().weight
                emb_name = next((n for m, n in self.names.items() if self.module.get_parameter(m) is emb), None)
                if emb_name is not None:
                    self.tied[k] = emb_name
                    continue
            raise QcoreError(f"{label}: the weights lack '{k}', which the {cfg['model_type']} config needs")
        for k, n in self.names.items():  # as stored: Conv1D's (in, out) too
            if tuple(names[n]) != own[k]:
                raise QcoreError(f"{label}: tensor '{n}' is {list(names[n])}, the config needs {list(own[k])}")
        self.captured = {self.names[k]: m for k, m in linear.items() if k in self.names}  # checkpoint name -> module
        self.replay = BlockReplay(self.module, self.names)  # calibration passes skip the blocks already final

    def load(self, tensors: Mapping[str, torch.Tensor]) -> None:
        state = {}
        for k, n in self.names.items():
            t = tensors[n]
            state[k] = t.T if n in self.transposed else t  # GPT-2's Conv1D keeps (in, out)
        for k, n in self.tied.items():
            state[k] = state[next(m for m, v in self.names.items() if v == n)]
        self.module.load_state_dict(state, strict=False, assign=True)

    def forward(self, tensors: Mapping[str, torch.Tensor], x: torch.Tensor, capture: dict | None = None):
        """x (B, T) token ids (-1 marks padding) -> decoder logits (B, T, V), or encoder embeddings (B, d) after the
        model's pooling. With a dict `capture`, stores every linear layer's input there as (real tokens, in),
        padding left out; when the dict's `until` names a layer, the pass stops there and returns None."""
        mask = x >= 0
        with self.lock, torch.no_grad():
            self.load(tensors)
            hooks = [] if capture is None else [self._hook(capture, name, mask) for name in self.captured]
            if capture is None:
                self.replay.clear()  # not calibrating (any more): hold no block output
            try:
                with self.replay.replaying(tensors, x, getattr(capture, "until", None)):
                    return self._run(x.clamp(min=0), mask)
            except StopForward:
                return None
            finally:
                for h in hooks:
                    h.remove()

    def _hook(self, capture: dict, name: str, mask: torch.Tensor):
        until = getattr(capture, "until", None)

        def hook(module, args):
            h = args[0]  # (B, T, in)
            capture[name] = h[mask] if h.shape[:2] == mask.shape else h.reshape(-1, h.shape[-1])
            if name == until:
                raise StopForward

        return self.captured[name].register_forward_pre_hook(hook)

    def _run(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.kind == "decoder":
            return self.module(input_ids=ids, attention_mask=mask.long(), use_cache=False).logits.float()
        out = self.module(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (B, T, d)
        if self.pooling == "cls":
            return out[:, 0]
        m = mask.unsqueeze(-1).float()
        return (out * m).sum(1) / m.sum(1).clamp(min=1)  # mean pooling over real tokens


# ---- the Model ---------------------------------------------------------------------------------


def module_view(tensors: Mapping, order: list[str], transposed: set[str]) -> Mapping:
    """The checkpoint's tensors in the module's order (forward order, which calibration follows layer by layer; a
    file lists them alphabetically), the rest after, with Conv1D weights seen as (out, in)."""
    names = [n for n in order if n in tensors] + [n for n in tensors if n not in set(order)]
    if isinstance(tensors, LazyTensors):
        shapes = {n: tensors.shape_of(n)[::-1] if n in transposed else tensors.shape_of(n) for n in names}
        return LazyTensors(shapes, lambda n: tensors[n].T.contiguous() if n in transposed else tensors[n])
    return {n: tensors[n].T.contiguous() if n in transposed else tensors[n] for n in names}


def hf_model(folder: Path, base: Model, label: str, memory: int, calib_tokens: int = CALIB_TOKENS) -> Model:
    """A model folder's weights (`base`, as a reader opened them) with its transformers code, text and metrics.

    `memory` is what this run may allocate (the reader's memory budget). When FP32 weights x MEMORY_FACTOR exceed
    it, or the folder has no tokenizer.json, the weights come back as they are (weight metrics only) with the
    reason in the description; nothing is built or allocated for the model code."""
    cfg = read_config(folder, label)
    names = {n: base.shape_of(n) for n in base.tensors}
    fp32 = 4 * base.params
    if fp32 * MEMORY_FACTOR > memory:
        note = (
            f"output metrics off: FP32 weights ({fp32 / 2**30:.2f} GiB) x {MEMORY_FACTOR} exceed the memory budget "
            f"({memory / 2**30:.2f} GiB, QCORE_MEMORY_BUDGET); weight metrics only"
        )
        return replace(base, description=f"{base.description}; {note}")
    tok = load_tokenizer(folder, label)
    if tok is None:
        note = "no tokenizer.json, so no text to run it on: weight metrics only"
        return replace(base, description=f"{base.description}; {note}")
    code = HFCode(cfg, names, label)
    tensors = module_view(base.tensors, list(code.names.values()), code.transposed)
    if code.kind == "decoder":
        window = context_length(cfg)
        train, held = (token_ids(tok, t) for t in corpus_text())
        w = decoder_windows(held, window, EVAL_WINDOWS)
        x, targets = w[:, :-1], w[:, 1:]
        calib = random_windows(train, window, max(1, calib_tokens // window))
        task = lambda ref, got: decoder_task(code.forward, x, targets, ref, got)  # noqa: E731
        what = "perplexity, KL and same-top on held-out docstrings"
    else:
        code.pooling = pooling_mode(folder)
        x = sentence_batch(tok, eval_sentences())
        calib = calibration_batch(tok, calib_tokens)
        task = lambda ref, got: encoder_task(code.forward, x, ref, got)  # noqa: E731
        what = f"embedding cosine ({code.pooling} pooling), Spearman and nearest-neighbour agreement on fixed sentences"
    desc = f"{base.description}; {cfg['model_type']} through transformers, task: {what}"
    return replace(
        base,
        tensors=tensors,
        description=desc,
        forward=code.forward,
        eval_inputs=x,
        calib_inputs=calib,
        task=task,
    )
