"""A model folder that arrives as files: several uploaded together, or one .zip of the folder. Either way the
files are checked and written into a fresh folder that read_weights then opens like any other.

Only the files a model folder is made of are kept (MODEL_FILES); anything else is skipped and named. A zip is
checked as every archive is (archive.py: its directory sized first, path-traversal names and zip bombs refused)
and may hold at most MAX_MEMBERS members, whose inflated total must fit the memory budget; a top-level folder
inside it (`all-MiniLM-L6-v2/config.json`) is dropped. Uploaded files come without folders, so the one file a
sentence-transformers folder keeps in a subfolder, 1_Pooling/config.json, is recognised by its content.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from ..errors import QcoreError
from .archive import open_zip
from .budget import check_budget

MAX_MEMBERS = 256
MODEL_FILES = re.compile(
    r"^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json"
    r"|vocab\.txt|vocab\.json|merges\.txt|modules\.json|sentence_bert_config\.json"
    r"|config_sentence_transformers\.json|1_Pooling/config\.json|[\w.-]+\.safetensors(\.index\.json)?)$"
)
POOLING = "1_Pooling/config.json"
CHUNK = 1 << 20


def _place(name: str, data: bytes | None = None) -> str | None:
    """Where a file goes in the folder, or None to skip it. A second config.json holding pooling modes is
    sentence-transformers' pooling config."""
    if data is not None and name == "config.json":
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            doc = None
        if isinstance(doc, dict) and any(str(k).startswith("pooling_mode") for k in doc):
            return POOLING
    return name if MODEL_FILES.match(name) else None


def save_files(files: list[tuple[str, bytes]], dest: Path, label: str) -> tuple[Path, list[str]]:
    """Write uploaded (name, bytes) files into the new folder `dest`. Returns (dest, names skipped)."""
    dest.mkdir(parents=True, exist_ok=False)
    skipped = []
    for name, data in files:
        base = Path(name).name
        where = _place(base, data)
        if where is None or base != name.replace("\\", "/").rpartition("/")[2]:
            skipped.append(name)
            continue
        if (dest / where).exists():
            raise QcoreError(f"{label}: two uploaded files are both {where}; upload one model folder at a time")
        (dest / where).parent.mkdir(exist_ok=True)
        (dest / where).write_bytes(data)
    _check_folder(dest, label)
    return dest, skipped


def unpack_zip(path: Path, dest: Path, label: str) -> tuple[Path, list[str]]:
    """Extract a zipped model folder into the new folder `dest`, within the budget. Returns (dest, skipped)."""
    with open_zip(path, label, "zip of a model folder") as z:
        infos = [i for i in z.infolist() if not i.is_dir()]
        if len(infos) > MAX_MEMBERS:
            raise QcoreError(f"{label}: {len(infos):,} members; a model folder has at most {MAX_MEMBERS}")
        check_budget(label, sum(i.file_size for i in infos), "unpacking the zip")
        tops = {i.filename.split("/")[0] for i in infos}
        strip = len(tops) == 1 and all("/" in i.filename for i in infos)  # one top folder: drop it
        dest.mkdir(parents=True, exist_ok=False)
        skipped = []
        for info in infos:
            name = info.filename.split("/", 1)[1] if strip else info.filename
            where = _place(name) if not name.endswith("config.json") or "/" in name else _place(name, z.read(info))
            if where is None:
                skipped.append(name)
                continue
            (dest / where).parent.mkdir(exist_ok=True)
            with z.open(info) as src, open(dest / where, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
    _check_folder(dest, label)
    return dest, skipped


def _check_folder(folder: Path, label: str) -> None:
    if not any(folder.glob("*.safetensors")):
        raise QcoreError(f"{label}: no .safetensors weights among the files; a model folder needs them")
    if not (folder / "config.json").exists():
        raise QcoreError(f"{label}: no config.json among the files; upload the whole model folder")
