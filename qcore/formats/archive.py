"""Zip archives (.pt checkpoints and .npz files), checked before anything in them is inflated or parsed.

The central directory is sized from its end record before Python lists it; every member's name must stay inside
the archive, and no member may inflate more than MAX_RATIO times (a zip bomb). The memory budget then covers
what the members decode to.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from ..errors import QcoreError
from .budget import check_budget

MAX_RATIO = 200  # inflated / stored bytes beyond which a member is a zip bomb
BOMB_FLOOR = 1 << 20  # members that inflate to less than this are never called bombs
MEMBER_BYTES = 1024  # Python bytes per listed member (a ZipInfo measures about 500)
END_RECORD = b"PK\x05\x06"
END_RECORD_64 = b"PK\x06\x06"
LOCATOR_64 = b"PK\x06\x07"


def central_directory(path: Path) -> tuple[int, int] | None:
    """(members, bytes) that the zip's end record declares, or None when the file is not a zip."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        tail_len = min(size, 22 + 0xFFFF)
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        i = tail.rfind(END_RECORD)
        if i < 0 or len(tail) - i < 22:
            return None
        count, cd_bytes = struct.unpack_from("<HI", tail, i + 10)
        if (count == 0xFFFF or cd_bytes == 0xFFFFFFFF) and i >= 20 and tail[i - 20 : i - 16] == LOCATOR_64:
            (where,) = struct.unpack_from("<Q", tail, i - 20 + 8)
            f.seek(where)
            rec = f.read(56)
            if len(rec) == 56 and rec[:4] == END_RECORD_64:
                count, cd_bytes = struct.unpack_from("<QQ", rec, 32)
    return count, cd_bytes


def open_zip(path: Path, label: str, kind: str) -> zipfile.ZipFile:
    """The archive, once its central directory fits the budget and every member passes the checks."""
    declared = central_directory(path)
    if declared is None:
        raise QcoreError(f"{label}: not a valid {kind} (not a zip archive, or truncated)")
    count, cd_bytes = declared
    members = max(count, cd_bytes // 46)  # a central directory entry takes at least 46 bytes
    check_budget(label, min(cd_bytes, path.stat().st_size) + members * MEMBER_BYTES, f"{members:,} zip members")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError):
        raise QcoreError(f"{label}: not a valid {kind} (a damaged zip archive)") from None
    try:
        check_members(z, label)
    except BaseException:
        z.close()
        raise
    return z


def check_members(z: zipfile.ZipFile, label: str) -> None:
    for info in z.infolist():
        name = info.filename
        if name.startswith("/") or "\\" in name or ".." in name.split("/") or ":" in name.split("/")[0]:
            raise QcoreError(f"{label}: member '{name[:80]}' escapes the archive (a path-traversal name); refused")
        if info.flag_bits & 0x1:
            raise QcoreError(f"{label}: member '{name[:80]}' is encrypted; refused")
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > MAX_RATIO and info.file_size > BOMB_FLOOR:
            raise QcoreError(
                f"{label}: member {name[:80]} inflates {ratio:,.0f}x, from {info.compress_size:,} to "
                f"{info.file_size:,} bytes (a zip bomb); refused"
            )
