"""One process per data directory: an exclusive ``flock`` on ``data_path/.lock``.

Two nodes on one ``data_path`` shared a node_id and knocked each other off the manager;
two managers would share a database and applications. The lock is held for the
process's life (the kernel drops it when the process ends, even by SIGKILL, so a stale
file never blocks a restart); the file holds the holder's pid for the refusal message.
"""
from __future__ import annotations

import fcntl
import os
import sys
from typing import Optional

LOCK_NAME = ".lock"


class DataPathLocked(Exception):
    """Another live process holds the data directory."""


def lock_data_path(data_path: str) -> int:
    """Take the lock (returns its descriptor, to keep open) or raise :class:`DataPathLocked`."""
    path = os.path.join(os.path.abspath(data_path), LOCK_NAME)
    # O_CLOEXEC (Python's default): actions and runners never inherit the lock
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        who = f"pid {holder}" if holder else "another process"
        raise DataPathLocked(
            f"data_path {os.path.dirname(path)} is in use by {who} (lock file {path})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _read_pid(fd: int) -> Optional[int]:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def lock_or_exit(prog: str, data_path: str) -> int:
    """:func:`lock_data_path`, or one line on stderr and exit code 2 (as a config error)."""
    try:
        return lock_data_path(data_path)
    except DataPathLocked as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        print(f"{prog}: error: cannot lock data_path {data_path}: {exc}", file=sys.stderr)
        sys.exit(2)
