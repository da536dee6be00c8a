"""The last lines of an action's output, quoted in a failed action's message.

A user reading ``task info`` of a failed task sees why at once (the traceback's last
lines) instead of having to fetch the log. Bounded both in lines and bytes, so a
report stays small whatever the action printed.
"""
from __future__ import annotations

import os

TAIL_LINES = 5
TAIL_BYTES = 1024


def tail_text(data: bytes, max_lines: int = TAIL_LINES, cut: bool = False) -> str:
    """The last ``max_lines`` non-blank lines of ``data``; ``cut``: data starts mid-file, so
    its first line may be partial and is marked with ``…``."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if cut:
        lines[0] = "…" + lines[0]
    lines = [line.rstrip() for line in lines if line.strip()]
    return "\n".join(lines[-max_lines:])


def read_tail(path: str, max_bytes: int = TAIL_BYTES, max_lines: int = TAIL_LINES) -> str:
    """The tail of the file at ``path`` (at most ``max_bytes`` read); ``""`` if absent or empty.

    Blocking (one small read): the executor runs it in a thread.
    """
    try:
        with open(path, "rb") as fp:
            size = os.fstat(fp.fileno()).st_size
            fp.seek(max(size - max_bytes, 0))
            data = fp.read(max_bytes)
    except OSError:
        return ""
    return tail_text(data, max_lines, cut=size > max_bytes)


def with_tail(message: str, tail: str) -> str:
    """``message`` ending with the output's tail, when there is one."""
    return f"{message}; last output:\n{tail}" if tail else message
