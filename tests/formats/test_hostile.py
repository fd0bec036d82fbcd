"""Every hostile or broken file of hostile.py is refused with one specific line naming the user's file, by the CLI
(exit 2) and by the reader; valid but unusual files read correctly; bombs are refused before their memory is taken.

The CLI cases run in forked children of one warm process (hostile.py's harness), each under RLIMIT_AS = 4 GiB and
a 10 s limit. Importing qcore (torch included) maps about 1 GiB of address space here, so 4 GiB leaves the
default memory budget about 0.7 GiB in each child: every bomb is over it, every honest file under it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from qcore import ModelRef, QcoreError, RunSpec
from qcore.api.runs import run_spec
from qcore.formats.budget import BUDGET_ENV, SESSIONS_ENV
from qcore.formats.readers import WEIGHTS_DIR_ENV, read_server_weights, read_weights
from tests.conftest import ROOT
from tests.formats.hostile import CASES, MARKER, PREFIX, Case

CAP = 4 << 30  # address space of each CLI case
TIMEOUT = 10  # seconds of each CLI case
RSS_GROWTH = 200 << 20  # bytes a refused bomb may add to the peak resident memory
REFUSED = [c for c in CASES if c.expect is not None]
VALID = [c for c in CASES if c.expect is None]
BOMBS = [c for c in CASES if c.bomb]


class Harness:
    """hostile.py's harness process: one JSON request in, one JSON reply out."""

    def __init__(self):
        env = {k: v for k, v in os.environ.items() if k not in (BUDGET_ENV, SESSIONS_ENV, WEIGHTS_DIR_ENV)}
        env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.formats.hostile"], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps({"cap": CAP, "timeout": TIMEOUT, **req}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def harness():
    h = Harness()
    yield h
    h.close()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Each case's (folder, path), written once for the module (a bomb takes a second to write)."""
    base = tmp_path_factory.mktemp("hostile")
    cache: dict[str, tuple[Path, Path]] = {}

    def get(case: Case) -> tuple[Path, Path]:
        if case.id not in cache:
            folder = base / case.id
            folder.mkdir()
            cache[case.id] = folder, case.make(folder)
        return cache[case.id]

    return get


def shown_name(case: Case, path: Path) -> str:
    """The name the user knows the file by: the CLI's file name, or a server file's relative name."""
    return path.name.replace("\0", "\\0") if case.server else path.name


def ask_cli(harness: Harness, case: Case, folder: Path, path: Path) -> dict:
    if case.server:
        return harness.ask(action="server", relative=str(path), env={WEIGHTS_DIR_ENV: str(folder)})
    return harness.ask(action="cli", argv=["run", "--weights", str(path), "--method", "int8", "--json"])


def assert_clean(message: str, case: Case, folder: Path) -> None:
    assert case.expect in message, message
    assert "\x1b" not in message and "weights_only=False" not in message, message
    for secret in case.forbid:
        assert secret not in message, message
    assert not (folder / MARKER).exists(), "the file's pickle code ran"


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.id)
def test_cli_refuses_with_one_line_naming_the_file(case, harness, made):
    folder, path = made(case)
    reply = ask_cli(harness, case, folder, path)
    assert not reply["timed_out"], f"over {TIMEOUT} s"
    assert reply["rc"] == 2, reply["stderr"]
    assert reply["stdout"] == ""
    lines = reply["stderr"].splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert shown_name(case, path) in lines[0]
    assert_clean(lines[0], case, folder)


def read_and_run(case: Case, folder: Path, path: Path, label: str, monkeypatch):
    """Open the file as the dashboard does (an upload under a temp name, labelled; or a server file), decode every
    tensor, and run int8 on it."""
    if case.server:
        monkeypatch.setenv(WEIGHTS_DIR_ENV, str(folder))
        model = read_server_weights(str(path))
    else:
        model = read_weights(path, name=label)
    for name in model.tensors:
        model.tensors[name]  # a lazy reader decodes here
    run_spec(RunSpec.make(ModelRef("upload", label, "digest"), "int8"), model=model, keep=False)
    return model


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.id)
def test_reader_names_the_label_never_the_temp_file(case, made, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "512M")  # the bombs are over it on any machine
    folder, path = made(case)
    label = shown_name(case, path) if case.server else f"My {case.file}"
    with pytest.raises(QcoreError) as info:
        read_and_run(case, folder, path, label, monkeypatch)
    message = str(info.value)
    assert label in message, message
    assert PREFIX not in message and str(folder) not in message, message
    assert "\n" not in message
    assert_clean(message, case, folder)


@pytest.mark.parametrize("case", VALID, ids=lambda c: c.id)
def test_valid_unusual_files_read_correctly(case, made, harness, monkeypatch):
    folder, path = made(case)
    case.check(read_and_run(case, folder, path, case.file, monkeypatch))
    reply = ask_cli(harness, case, folder, path)
    assert reply["rc"] == 0, reply["stderr"]
    record = json.loads(reply["stdout"])
    assert record["source"] == path.name and record["params"] > 0


@pytest.mark.parametrize("case", BOMBS, ids=lambda c: c.id)
def test_bombs_are_refused_before_their_memory_is_taken(case, made, harness):
    _, path = made(case)
    reply = harness.ask(action="rss", path=str(path))
    assert reply["rc"] == 0, reply["stderr"]
    result = reply["result"]
    assert result["refused"] and case.expect in result["refused"]
    assert (result["after_kib"] - result["before_kib"]) * 1024 < RSS_GROWTH, result


def test_the_harness_answers_as_python_m_qcore_does(made, harness):
    """The harness runs the CLI's own main; a real `python -m qcore` under the same cap prints the same line."""
    case = next(c for c in CASES if c.id == "pt-pickle-code")
    folder, path = made(case)
    argv = ["run", "--weights", str(path), "--method", "int8", "--json"]
    proc = subprocess.run(
        [sys.executable, "-m", "qcore", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP)),
    )  # fmt: skip
    reply = harness.ask(action="cli", argv=argv)
    assert (proc.returncode, proc.stdout, proc.stderr) == (reply["rc"], reply["stdout"], reply["stderr"])
    assert not (folder / MARKER).exists()


def test_there_are_at_least_forty_distinct_cases():
    assert len({c.id for c in CASES}) == len(CASES) >= 40
