"""Telling a full disk apart: the message names it ("no space left on device") and the path.

Without this a download that hit ENOSPC failed as "Connection closed" (the write error
surfaced as the HTTP client's), and an action that filled the disk failed with an empty
log (its own error message had nowhere to go).
"""
from __future__ import annotations

import errno
import os
from typing import Optional

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# below this many free bytes a failed action is said to have met a full disk
LOW_SPACE = 64 * 1024


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FULL_ERRNOS


def no_space(path: Optional[str]) -> str:
    return f"no space left on device: {path}" if path else "no space left on device"


def describe(exc: OSError, path: Optional[str] = None) -> str:
    """One line for an OSError met while writing ``path`` (the error's own file name first)."""
    where = exc.filename if isinstance(exc.filename, str) else path
    if is_disk_full(exc):
        return no_space(where)
    return f"cannot write {where}: {exc.strerror or exc}" if where else str(exc)


def volume_full(path: str) -> bool:
    """Whether the file system holding ``path`` has (next to) no space left for its users."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < LOW_SPACE
