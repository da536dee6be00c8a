"""Starts action scripts, from a warm shell when one is ready.

Starting an action costs a fork of the node, an exec of bash and bash's own start-up
(~1.5 ms of CPU together) before the action's command even begins. A warm shell is a
bash started ahead of time, in a session of its own, blocked reading its script from a
pipe (``. /dev/stdin``): launching an action is then one ``write`` of the script and a
``close``. Warm shells are started when the node starts and again whenever an action
ends, so the cost is paid while the node waits for its next dispatch, not on the path
from a dispatch to the action's first instruction.

A warm shell runs the same script a cold one would, after redirecting its own stdin from
``/dev/null`` and stdout+stderr into the workspace's ``stdout.data``: the action cannot
tell the difference. An idle warm shell exits by itself when the node goes away (its
pipe reaches end-of-file and it sources nothing).
"""
from __future__ import annotations

import asyncio
import logging
import os
import select
import shlex
from dataclasses import dataclass

LOG = logging.getLogger(__name__)

WARM_MAX = 4  # idle shells kept at most, whatever the node's slots: each is ~3 MB of RSS
WARM_SCRIPT = ". /dev/stdin"


@dataclass
class _Shell:
    proc: asyncio.subprocess.Process
    fd: int  # the write end of its stdin


class Launcher:
    """Launches bash scripts as process-group leaders; keeps up to ``warm`` shells ready.

    Args:
        env: the environment of every action.
        warm: how many idle shells to keep (0: always start a new bash).
    """

    def __init__(self, env: dict, warm: int) -> None:
        # encoded once: the spawn of every shell would otherwise encode each variable again
        self.env = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
        self.warm = max(0, min(warm, WARM_MAX))
        self._idle: list[_Shell] = []
        self._starting = 0
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self.launched_warm = 0
        self.launched_cold = 0

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def launch(self, script: str, cwd: str, stdout_path: str) -> asyncio.subprocess.Process:
        """Run ``script`` with stdin from /dev/null and stdout+stderr into ``stdout_path``.

        Raises OSError when no bash can be started or ``stdout_path`` cannot be opened.
        """
        data = (f"exec </dev/null >{shlex.quote(stdout_path)} 2>&1\n" + script).encode()
        # a script a pipe cannot take whole without blocking (or that a shell could not
        # read, with a NUL byte) starts cold, as does any script when no warm shell is idle
        if len(data) <= select.PIPE_BUF and b"\0" not in data:
            while self._idle:
                shell = self._idle.pop()
                if shell.proc.returncode is None and self._hand_over(shell, data):
                    self.launched_warm += 1
                    return shell.proc
        self.launched_cold += 1
        fd = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            return await asyncio.create_subprocess_exec(
                "bash", "-c", script, cwd=cwd, env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=fd,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        finally:
            os.close(fd)

    def refill(self) -> None:
        """Start shells in the background until ``warm`` are idle or starting."""
        while not self._closed and len(self._idle) + self._starting < self.warm:
            self._starting += 1
            task = asyncio.ensure_future(self._start_one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Let every idle shell exit (end-of-file on its pipe) and wait for them briefly."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        shells, self._idle = self._idle, []
        for shell in shells:
            _close(shell.fd)
        waits = [asyncio.ensure_future(s.proc.wait()) for s in shells]
        if waits:
            done, pending = await asyncio.wait(waits, timeout=5)
            for shell in shells:
                if shell.proc.returncode is None:
                    try:
                        shell.proc.kill()
                    except ProcessLookupError:
                        pass
            for task in pending:
                task.cancel()

    # -- internals ---------------------------------------------------------------------------
    @staticmethod
    def _hand_over(shell: _Shell, data: bytes) -> bool:
        try:
            # at most PIPE_BUF bytes into a pipe nobody has written to: taken whole, at once
            written = os.write(shell.fd, data)
        except OSError:   # the shell died (EPIPE)
            written = -1
        _close(shell.fd)
        return written == len(data)

    async def _start_one(self) -> None:
        read_fd, write_fd = os.pipe()
        try:
            try:
                proc = await asyncio.create_subprocess_exec(
                    "bash", "-c", WARM_SCRIPT, env=self.env, stdin=read_fd, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
            finally:
                os.close(read_fd)
        except BaseException as exc:
            _close(write_fd)
            self._starting -= 1
            if isinstance(exc, OSError):
                LOG.warning("cannot start a warm shell: %s", exc)
                return
            raise
        self._starting -= 1
        if self._closed:
            _close(write_fd)
            return
        self._idle.append(_Shell(proc, write_fd))


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
