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
from pathlib import Path

import pandas as pd
import streamlit as st

from qcore import Model, ModelRef, Policy, QcoreError, load_model
from qcore.api.runs import open_model
from qcore.format import fmt_bytes
from qcore.formats.readers import read_safetensors_header, read_weights, server_files, server_path
from qcore.models.catalog import listing
from qcore.models.policy import explain, totals
from ui.i18n import t
from ui.uploads import remove_upload, upload_path

UPLOAD_TYPES = ["safetensors", "pt", "pth", "bin", "npz", "parquet"]
UPLOAD_KEY, SERVER_KEY = "qlab_upload", "qlab_server"
POLICY_DEFAULTS = {"pol_head": True, "pol_emb": False, "pol_include": "", "pol_exclude": ""}  # = the CLI's


@dataclass
class Upload:
    """The session's current upload: what it was, where its file is, and the model (or why it failed)."""

    file_id: str
    digest: str
    name: str
    path: Path | None  # the saved file while a lazy model reads from it; None once nothing of it is on disk
    model: Model | None = field(default=None, repr=False)
    error: str | None = None

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
        path.unlink(missing_ok=True)
        raise
    if not hasattr(model.tensors, "shape_of"):
        path.unlink(missing_ok=True)
    return model


def accept_upload(uploaded) -> Upload:
    """Save and read a st.file_uploader file, once per upload; returns the session's Upload (maybe failed)."""
    up = st.session_state.get(UPLOAD_KEY)
    if up is not None and up.file_id == uploaded.file_id:
        return up
    digest = hashlib.sha256(uploaded.getbuffer()).hexdigest()
    if up is not None and (up.digest, up.name) == (digest, uploaded.name):
        up.file_id = uploaded.file_id
        return up
    clear_upload()
    path = upload_path(digest, uploaded.name)
    path.write_bytes(uploaded.getbuffer())
    up = Upload(uploaded.file_id, digest, uploaded.name, path)
    try:
        up.model = read_saved(path, uploaded.name)
    except QcoreError as e:
        up.error = str(e)
    finally:
        if not path.exists():  # read into memory, or refused: nothing of it stays on disk
            up.path = None
            remove_upload(path)
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
    stat = server_path(relative).stat()
    return ModelRef("server", relative, f"{stat.st_size}:{stat.st_mtime_ns}")


def catalog() -> dict[str, int]:
    """Every built-in model's parameter count, in model_names() order; trained models are sized from their
    configs, so no checkpoint is read (qcore's listing)."""
    return {row["name"]: row["params"] for row in listing()}


def preset_model(name: str) -> Model:
    """A built-in model by name (qcore's cache); the one place the UI opens presets."""
    return load_model(name)


def model_for(ref: ModelRef) -> Model:
    """The Model behind a ref, from the session's own state (presets from qcore's cache)."""
    if ref.kind == "preset":
        return preset_model(ref.name)
    if ref.kind == "upload":
        up = st.session_state.get(UPLOAD_KEY)
        if up is None or up.ref != ref or up.model is None or (up.path is not None and not up.path.is_file()):
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
    if path is None or not path.is_file() or not path.name.endswith(".safetensors"):
        return {}
    header, _ = read_safetensors_header(path)
    return {k: e["dtype"] for k, e in header.items()}


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
