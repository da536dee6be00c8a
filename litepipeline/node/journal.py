"""The node's journal of the process groups it started, for reaping them after a crash.

One append-only file, ``data_path/running/journal``: a JSON line when an action's process
group starts (``pgid``, ``start_time``, ``boot_id``, ``task_id``, ``name``, ``attempt_id``)
and ``{"end": attempt_id}`` when it has ended. The reaper kills the groups of a node that
dies; the journal is the net under it (should the reaper die too): the next start kills
the groups still listed, if they are still the same processes. An event costs one
``write``, where the file per attempt it replaces cost five file-system operations on the
path of every action (create, write, close, rename, unlink). Past :data:`COMPACT_AT` it is
rewritten with only the groups still running (emptied when none is).
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any

LOG = logging.getLogger(__name__)

COMPACT_AT = 256 * 1024   # bytes


class Journal:
    """``started``/``ended`` while the node runs; ``leftovers`` and ``reset`` at its start."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, "journal")
        self._fd = -1
        self._size = 0

    def started(self, record: dict) -> None:
        self._append(record)

    def ended(self, attempt_id: str, running: list[dict]) -> None:
        """``running``: the records of the groups that still run (kept by a compaction)."""
        self._append({"end": attempt_id})
        if self._size <= COMPACT_AT or self._fd < 0:
            return
        try:
            if not running:
                os.ftruncate(self._fd, 0)   # O_APPEND: the next line goes to the new end
                self._size = 0
                return
            # a new file in place of the old in one rename: a crash leaves one or the other
            tmp = self.path + ".tmp"
            data = b"".join((json.dumps(r) + "\n").encode() for r in running)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            self.close()   # the next line reopens the new file
        except OSError as exc:
            LOG.warning("cannot compact %s: %s", self.path, exc)

    def leftovers(self) -> list[dict]:
        """The groups listed as started and never as ended (a torn last line is skipped)."""
        try:
            with open(self.path, "rb") as fp:
                lines = fp.read().splitlines()
        except FileNotFoundError:
            return []
        started: dict[str, dict] = {}
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict):
                continue
            if "end" in entry:
                started.pop(str(entry["end"]), None)
            elif "attempt_id" in entry:
                started[str(entry["attempt_id"])] = entry
        return list(started.values())

    def reset(self) -> None:
        """Start afresh (after the leftovers were dealt with)."""
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _append(self, entry: Any) -> None:
        line = (json.dumps(entry) + "\n").encode()
        try:
            if self._fd < 0:
                os.makedirs(self.directory, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
                self._size = os.fstat(self._fd).st_size
            os.write(self._fd, line)   # one line, O_APPEND: whole, after the others
            self._size += len(line)
        except OSError as exc:   # only the crash-recovery net is lost; the action runs on
            LOG.warning("cannot write to %s: %s", self.path, exc)
