"""Where uploads live on disk, and for how long.

A session that uploads gets a temp folder of its own (`qlab-upload-<pid>-*` under the system temp folder), and each
upload a subfolder named by the first 16 hex digits of its sha256, holding the file under the user's own file name
(made safe for the file system): any message about the file, from the reader or the OS, names the user's file.

A folder goes when its session ends. Streamlit has no public end-of-session hook, so a janitor thread (one per
server process) asks the runtime every JANITOR_PERIOD seconds which sessions are connected, and removes the folders
of sessions gone for GRACE seconds: a closed tab. A reconnect within the grace keeps its files; a later one is asked
to upload a lazily read file again. Where the runtime cannot be asked (AppTest, or a Streamlit without
`Runtime.is_active_session`), a folder goes when its session's state is dropped (a weakref finalizer) or at exit.
When the janitor starts, it also removes the folders of server processes that have died.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

FOLDER_KEY = "qlab_upload_dir"
PREFIX = "qlab-upload-"
JANITOR_PERIOD, GRACE = 5.0, 15.0  # seconds: a closed tab's files are gone within GRACE + JANITOR_PERIOD
NAME_BYTES = 200  # the longest file name kept (bytes, under every file system's 255)

log = logging.getLogger("qlab")


class Folder:
    """A session's temp folder; removed by `remove()`, when the object is dropped, or at exit (best effort)."""

    def __init__(self, root: Path | None = None):
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))
        self.remove = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)


def safe_name(name: str) -> str:
    """The last component of a user's file name, with only word characters, dots and dashes, never '.' or '..'."""
    safe = re.sub(r"[^\w.-]", "_", Path(name.replace("\\", "/")).name)
    if not safe.strip("."):
        safe = "upload"
    while len(safe.encode()) > NAME_BYTES:
        safe = safe[1:]
    return safe


def upload_path(digest: str, name: str) -> Path:
    """A fresh subfolder of the session's folder for one upload, and the path of its file (the user's name)."""
    sub = session_folder() / digest[:16]
    sub.mkdir(exist_ok=True)
    return sub / safe_name(name)


def remove_upload(path: Path) -> None:
    """Delete one upload's file and its subfolder (best effort)."""
    shutil.rmtree(path.parent, ignore_errors=True)


def session_folder() -> Path:
    """The session's upload folder, made (and handed to the janitor) on first use."""
    folder = st.session_state.get(FOLDER_KEY)
    if folder is None or not folder.path.is_dir():
        folder = st.session_state[FOLDER_KEY] = Folder()
        ctx = get_script_run_ctx()
        if ctx is not None and (j := janitor()) is not None:
            j.watch(ctx.session_id, folder)
    return folder.path


class Janitor:
    """Removes the folders of sessions that `is_active(session_id)` has called gone for `grace` seconds."""

    def __init__(self, is_active: Callable[[str], bool], grace: float = GRACE):
        self.is_active, self.grace = is_active, grace
        self._folders: dict[str, Folder] = {}
        self._gone_since: dict[str, float] = {}
        self._lock = threading.Lock()

    def watch(self, session_id: str, folder: Folder) -> None:
        with self._lock:
            self._folders[session_id] = folder
            self._gone_since.pop(session_id, None)

    def sweep(self, now: float) -> list[Path]:
        """One look at every watched session; returns the folders removed."""
        removed = []
        with self._lock:
            for sid in list(self._folders):
                if self.is_active(sid):
                    self._gone_since.pop(sid, None)
                    continue
                since = self._gone_since.setdefault(sid, now)
                if now - since >= self.grace:
                    folder = self._folders.pop(sid)
                    del self._gone_since[sid]
                    folder.remove()
                    removed.append(folder.path)
        return removed

    def run_forever(self, period: float) -> None:
        while True:
            time.sleep(period)
            try:
                self.sweep(time.monotonic())
            except Exception:  # the janitor must outlive any one bad sweep
                log.exception("upload janitor sweep failed")


_JANITOR: list[Janitor] = []  # the process's janitor, once started
_START = threading.Lock()


def janitor() -> Janitor | None:
    """The process's janitor (started on first call), or None where the runtime cannot say which sessions live."""
    runtime = Runtime.instance() if Runtime.exists() else None
    if type(runtime) is not Runtime or not hasattr(runtime, "is_active_session"):  # AppTest runs a stand-in
        return None
    with _START:
        if not _JANITOR:
            remove_dead_folders(Path(tempfile.gettempdir()))
            j = Janitor(runtime.is_active_session)
            threading.Thread(target=j.run_forever, args=(JANITOR_PERIOD,), name="qlab-janitor", daemon=True).start()
            _JANITOR.append(j)
        return _JANITOR[0]


def remove_dead_folders(root: Path) -> list[Path]:
    """Remove this user's upload folders whose server process has died (their names carry its pid)."""
    removed = []
    for path in root.glob(f"{PREFIX}*"):
        pid = path.name[len(PREFIX) :].split("-", 1)[0]
        try:
            if not pid.isdigit() or not path.is_dir() or path.stat().st_uid != os.getuid() or _alive(int(pid)):
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
