"""A Hugging Face model folder (config.json, safetensors weights, tokenizer.json) opened as a Model that runs:
the folder's own files are confined like every other file, the config is checked before any weights are read,
and the model code comes from qcore.models.hf within this process's memory budget."""

from __future__ import annotations

from pathlib import Path

from ..models.hf import hf_model, read_config
from ..models.model import Model
from .budget import memory_budget
from .common import confine
from .safetensors_file import safetensors_model

SIDE_FILES = (
    "config.json",
    "tokenizer.json",
    "1_Pooling/config.json",
)  # read by the model code; each must stay inside the folder too


def is_hf_folder(folder: Path) -> bool:
    return (folder / "config.json").exists()


def hf_folder_model(folder: Path, files: list[Path], label: str, root: Path | None) -> Model:
    """The folder's weights (`files`, confined already) with their transformers code and text metrics."""
    for name in SIDE_FILES:
        if (folder / name).exists():
            confine(folder / name, root, label)
    read_config(folder, label)  # a config the lab refuses is refused before the weights are opened
    return hf_model(folder, safetensors_model(files, label, root), label, memory_budget())
