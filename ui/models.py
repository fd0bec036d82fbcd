"""Where the model comes from: a preset, the session's own upload, or a file in the server's weights folder.

A model is named by qcore's frozen `ModelRef`, the key of every cached run: a preset name, an upload's file name
and sha256, or a server file's relative path with its size and mtime. Same key, same bytes, same result, so the
caches may be process-wide. The Model objects themselves
(which may read lazily from a file) live only in the session's own state, never in a shared cache.

Uploads are written under the session's own folder, each in a subfolder of its own under the user's file name
(ui.uploads, which also removes the folder when the session ends). Eager formats (.pt, .npz, .parquet) are read at
once and their file deleted; a lazy safetensors file stays while it is the session's upload and is deleted when the
upload changes or is cleared, or with the session.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd
import streamlit as st

from qcore import Model, ModelRef, Policy, QcoreError, load_model
from qcore.api.runs import open_model
from qcore.api.specs import RUN_POLICY
from qcore.format import fmt_bytes
from qcore.formats.model_folder import save_files, unpack_zip
from qcore.formats.readers import read_safetensors_header, read_weights, server_files, server_path, server_stamp
from qcore.models.catalog import listing
from qcore.models.policy import explain, totals
from ui.i18n import t, t_or
from ui.uploads import remove_upload, upload_path

UPLOAD_KEY, SERVER_KEY = "qlab_upload", "qlab_server"
POLICY_DEFAULTS = {  # the policy controls' defaults: qcore's one default policy, as the CLI's
    "pol_head": RUN_POLICY.quantize_head, "pol_emb": RUN_POLICY.quantize_embeddings,
    "pol_include": RUN_POLICY.include or "", "pol_exclude": RUN_POLICY.exclude or "",
}  # fmt: skip
FOLDER_NAME = "model-folder"  # what a model folder uploaded as separate files is called (its files carry no folder)
FOLDER_PARTS = (".json", ".txt")  # files that only make sense with the rest of their model folder
# Any file type is accepted: a folder's README or .gitattributes is skipped and named, and a lone file of an
# unknown type gets the reader's message listing the types it opens.


@dataclass
class Upload:
    """The session's current upload: what it was, where it is on disk, and the model (or why it failed).

    One weight file, one zipped model folder (unpacked), or a model folder's files uploaded together."""

    file_id: tuple[str, ...]
    digest: str
    name: str
    path: Path | None  # the saved file or folder while a lazy model reads from it; None once nothing is on disk
    model: Model | None = field(default=None, repr=False)
    error: str | None = None
    skipped: list[str] = field(default_factory=list)  # uploaded files that are not part of a model folder
    older: list[str] = field(default_factory=list)  # earlier single files still in the uploader, not read

    @property
    def ref(self) -> ModelRef:
        return ModelRef("upload", self.name, self.digest)


def upload_limit() -> int:
    """The upload size limit in bytes: server.maxUploadSize (in MiB) from .streamlit/config.toml."""
    return int(st.get_option("server.maxUploadSize")) * 2**20


def read_saved(path: Path, name: str) -> Model:
    """Read a saved upload (the testable part of the flow). Eager formats are in memory now: delete the file."""
    try:
        model = read_weights(path, max_bytes=upload_limit(), name=name)
    except BaseException:
        if path.is_file():
            path.unlink(missing_ok=True)
        raise
    if path.is_file() and not hasattr(model.tensors, "shape_of"):
        path.unlink(missing_ok=True)
    return model


def upload_digest(files: list) -> str:
    """One sha256 for what was uploaded: the file's own, or over the (name, sha256) of each file of a folder."""
    if len(files) == 1:
        return hashlib.sha256(files[0].getbuffer()).hexdigest()
    parts = sorted(f"{f.name}\0{hashlib.sha256(f.getbuffer()).hexdigest()}" for f in files)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def upload_name(files: list) -> str:
    return files[0].name if len(files) == 1 else FOLDER_NAME


def save_upload(files: list, digest: str, name: str) -> tuple[Path, list[str]]:
    """Write the upload under the session's folder: a file as it is, a zip unpacked into a model folder, several
    files as one model folder (qcore's model_folder checks). Returns (path, files skipped)."""
    if len(files) > 1:
        dest = upload_path(digest, name)
        return save_files([(f.name, bytes(f.getbuffer())) for f in files], dest, f"the {len(files)} files uploaded")
    path = upload_path(digest, name)
    if name.lower().endswith(FOLDER_PARTS):
        raise QcoreError(
            f"{name} is one file of a model folder: upload all of the folder's files together "
            "(config.json, the tokenizer files, the .safetensors weights), or one .zip of the folder"
        )
    path.write_bytes(files[0].getbuffer())
    if not name.lower().endswith(".zip"):
        return path, []
    try:
        return unpack_zip(path, path.parent / "model", name)
    finally:
        path.unlink(missing_ok=True)


def newest_unless_folder(files: list) -> tuple[list, list[str]]:
    """Several files with a config.json among them are a model folder; otherwise a new file dropped beside an earlier
    one replaces it, as a one-file uploader would: (the files to read, the names of those left unread)."""
    if len(files) < 2 or any(Path(f.name).name == "config.json" for f in files):
        return files, []
    return [files[-1]], [f.name for f in files[:-1]]


def accept_upload(files: list) -> Upload:
    """Save and read what the uploader holds, once per set of files; returns the session's Upload (maybe failed)."""
    ids = tuple(f.file_id for f in files)
    up = st.session_state.get(UPLOAD_KEY)
    if up is not None and up.file_id == ids:
        return up
    files, older = newest_unless_folder(files)
    digest, name = upload_digest(files), upload_name(files)
    if up is not None and (up.digest, up.name) == (digest, name):
        up.file_id = ids
        return up
    clear_upload()
    up = Upload(ids, digest, name, None)
    try:
        up.path, up.skipped = save_upload(files, digest, name)
        up.older = older
        up.model = read_saved(up.path, name)
    except QcoreError as e:
        up.error = str(e)
    finally:
        if up.path is None or not up.path.exists():  # read into memory, or refused: nothing of it stays on disk
            remove_upload(upload_path(digest, name))
            up.path = None
    st.session_state[UPLOAD_KEY] = up
    return up


def clear_upload() -> None:
    """Forget the session's upload and delete its file (best effort)."""
    up = st.session_state.pop(UPLOAD_KEY, None)
    if up is not None and up.path is not None:
        remove_upload(up.path)


def server_choices() -> list[str]:
    return server_files()


def server_ref(relative: str) -> ModelRef:
    return ModelRef("server", relative, server_stamp(relative))


def catalog() -> dict[str, int]:
    """Every built-in model's parameter count, in model_names() order; trained models are sized from their
    configs, so no checkpoint is read (qcore's listing)."""
    return {row["name"]: row["params"] for row in listing()}


@lru_cache(maxsize=1)
def descriptions() -> dict[str, str]:
    """Every built-in model's description (qcore's listing; static, so cached for the process)."""
    return {row["name"]: row["description"] for row in listing() if row["trained"]}


def model_caption(name: str, params: int) -> str:
    """What a built-in model is, in the chosen language: a synthesized preset, or a model trained here."""
    if name not in descriptions():
        return t("sb_model_caption", params=f"{params:,}")
    return t_or(f"model_desc_{name}", descriptions()[name]).format(params=f"{params:,}")


def preset_model(name: str) -> Model:
    """A built-in model by name (qcore's cache); the one place the UI opens presets."""
    return load_model(name)


def model_for(ref: ModelRef) -> Model:
    """The Model behind a ref, from the session's own state (presets from qcore's cache)."""
    if ref.kind == "preset":
        return preset_model(ref.name)
    if ref.kind == "upload":
        up = st.session_state.get(UPLOAD_KEY)
        if up is None or up.ref != ref or up.model is None or (up.path is not None and not up.path.exists()):
            raise QcoreError(f"the uploaded file {ref.name} is no longer open in this session; upload it again")
        return up.model
    held = st.session_state.get(SERVER_KEY)
    if held is None or held[0] != ref:
        held = st.session_state[SERVER_KEY] = (ref, open_model(ref))
    return held[1]


def available(ref: ModelRef) -> bool:
    try:
        model_for(ref)
    except QcoreError:
        return False
    return True


def stem(ref: ModelRef) -> str:
    name = Path(ref.label).name
    return name.split(".")[0] or "model"


# ---- the selection policy ----------------------------------------------------------------------


def current_policy() -> Policy:
    """The policy the Quantize page's controls set (kept in session state); QcoreError for a bad regex."""
    v = {k: st.session_state.get(k, d) for k, d in POLICY_DEFAULTS.items()}
    return Policy(
        bool(v["pol_head"]), bool(v["pol_emb"]), v["pol_include"].strip() or None, v["pol_exclude"].strip() or None
    )


def describe_policy(policy: Policy) -> str:
    """Policy.describe() in the chosen language."""
    parts = [
        t("pol_d_2d"),
        t("pol_d_head_q") if policy.quantize_head else t("pol_d_head_k"),
        t("pol_d_emb_q") if policy.quantize_embeddings else t("pol_d_emb_k"),
    ]
    parts += [t("pol_d_include", pattern=policy.include)] if policy.include else []
    return "; ".join(parts + ([t("pol_d_exclude", pattern=policy.exclude)] if policy.exclude else []))


# ---- the summary shown before a run ------------------------------------------------------------


def stored_dtypes(ref: ModelRef) -> dict[str, str]:
    """dtypes as stored in a safetensors file (the model holds float32 copies); {} where unknown."""
    if ref.kind == "upload":
        up = st.session_state.get(UPLOAD_KEY)
        path = up.path if up is not None and up.ref == ref else None
    elif ref.kind == "server":
        path = server_path(ref.name)
    else:
        path = None
    files = sorted(path.glob("*.safetensors")) if path is not None and path.is_dir() else [path]
    out = {}
    for file in files:
        if file is not None and file.is_file() and file.name.endswith(".safetensors"):
            header, _ = read_safetensors_header(file)
            out.update((k, e["dtype"]) for k, e in header.items())
    return out


def summary(model: Model, policy: Policy, dtypes: dict[str, str]) -> tuple[pd.DataFrame, dict]:
    """One row per tensor (skipped ones too) with the policy's decision (qcore's explain); and totals by decision."""
    decisions = explain(model, policy)
    rows = [
        {t("col_tensor"): d.name, t("col_shape"): " × ".join(map(str, d.shape)) or "scalar",
         t("col_dtype"): dtypes.get(d.name, "float32"), t("col_params"): d.params, t("col_role"): t(f"role_{d.decision}")}
        for d in decisions
    ]  # fmt: skip
    for item in model.skipped:
        name, _, dtype = item.rpartition(" (")
        rows.append(
            {t("col_tensor"): name, t("col_shape"): "", t("col_dtype"): dtype.rstrip(")"), t("col_params"): 0,
             t("col_role"): t("role_skipped")}
        )  # fmt: skip
    return pd.DataFrame(rows), totals(decisions)


def totals_text(model: Model, counts: dict) -> str:
    q_n, q_p = counts.get("quantize", (0, 0))
    kept = [
        t("q_kept_item", role=t(f"role_{k}"), n=n, params=f"{p:,}") for k, (n, p) in counts.items() if k != "quantize"
    ]
    return t(
        "q_summary_totals", q=q_n, q_params=f"{q_p:,}", kept="; ".join(kept) or t("none"),
        fp16=fmt_bytes(2 * model.params), params=f"{model.params:,}", n=len(model.tensors),
    )  # fmt: skip
