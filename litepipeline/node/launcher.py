"""Starts action scripts, from a warm shell when one is ready.

Starting an action costs a fork of the node, an exec of bash and bash's own start-up
(~1.5 ms of CPU together) before the action's command even begins. A warm shell is a
bash started ahead of time, in a session of its own, blocked reading its script from a
pipe (``eval "$(< /dev/stdin)"``): launching an action is then one ``write`` of the script
and a ``close``. Warm shells are started when the node starts and again whenever an action
ends, so the cost is paid while the node waits for its next dispatch, not on the path
from a dispatch to the action's first instruction.

A warm shell runs the same script a cold one would, after redirecting its own stdin from
``/dev/null`` and stdout+stderr into the workspace's ``stdout.data``: the action cannot
tell the difference. An idle warm shell exits by itself when the node goes away (its
pipe reaches end-of-file and it sources nothing).

Processes are started with ``posix_spawn`` (a vfork-style clone, no Python in the child)
and awaited through a pidfd on the event loop: a fraction of what asyncio's subprocess
machinery costs per process, which matters at hundreds of actions a second. Kernels
without pidfds (before Linux 5.3) get asyncio's subprocesses instead.
"""
from __future__ import annotations

import asyncio
import logging
import os
import select
import shlex
import shutil
import signal
from dataclasses import dataclass
from typing import Any, Optional

LOG = logging.getLogger(__name__)

WARM_MAX = 4  # idle shells kept at most, whatever the node's slots: each is ~3 MB of RSS
# the script is read whole (buffered, no fork) and run by eval: bash's own messages then read
# "bash: ..." as with bash -c, where sourcing /dev/stdin would name "/dev/stdin" in them
WARM_SCRIPT = 'eval "$(< /dev/stdin)"'
# Python ignores these; an ignored disposition survives exec, and an action must get defaults
DEFAULT_SIGNALS = tuple(s for s in (getattr(signal, "SIGPIPE", None), getattr(signal, "SIGXFSZ", None)) if s)


def _pidfds_work() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
        return True
    except (AttributeError, OSError):
        return False


class Child:
    """A started process, awaited through a pidfd: ``pid``, ``returncode``, ``wait()``, ``kill()``.

    ``returncode`` follows asyncio's convention: ``-N`` when killed by signal N.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: Optional[int] = None
        self._loop = asyncio.get_running_loop()
        self._exited: asyncio.Future = self._loop.create_future()
        self._fd = os.pidfd_open(pid)
        self._loop.add_reader(self._fd, self._reap)

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:   # reaped by someone else: its status is lost, assume the worst
            LOG.warning("process %d was reaped elsewhere; its exit status is unknown", self.pid)
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self.returncode = os.waitstatus_to_exitcode(status)
        self._exited.set_result(self.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@dataclass
class _Shell:
    proc: Any   # Child, or an asyncio Process without pidfds
    fd: int     # the write end of its stdin


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
        self.pidfds = _pidfds_work()
        # looked up once (the environment never changes): the child of every spawn would
        # otherwise try each directory of PATH with an execve of its own
        path = self.env.get(b"PATH")
        self._bash = shutil.which("bash", path=os.fsdecode(path) if path else None) or "bash"
        self._idle: list[_Shell] = []
        self._starting = 0
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self.launched_warm = 0
        self.launched_cold = 0

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def launch(self, script: str, stdout_path: str) -> Any:
        """Run ``script`` with stdin from /dev/null and stdout+stderr into ``stdout_path``.

        Returns the process (``pid``, ``wait()``, ``returncode``, ``kill()``). Raises OSError
        when no bash can be started or ``stdout_path`` cannot be opened.
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
        return await self._spawn(["bash", "-c", script], stdout_path=stdout_path)

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
            _, pending = await asyncio.wait(waits, timeout=5)
            for shell in shells:
                if shell.proc.returncode is None:
                    try:
                        shell.proc.kill()
                    except ProcessLookupError:
                        pass
            for task in pending:
                task.cancel()

    # -- internals ---------------------------------------------------------------------------
    async def _spawn(self, argv: list, stdin_fd: Optional[int] = None, stdout_path: Optional[str] = None) -> Any:
        """``argv`` (bash, found once on PATH) as the leader of a new session; stdin ``stdin_fd`` (else /dev/null),
        stdout+stderr into ``stdout_path`` (else /dev/null)."""
        if not self.pidfds:
            return await self._spawn_asyncio(argv, stdin_fd, stdout_path)
        actions: list = [(os.POSIX_SPAWN_DUP2, stdin_fd, 0) if stdin_fd is not None
                         else (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
        if stdout_path is not None:
            actions.append((os.POSIX_SPAWN_OPEN, 1, stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        else:
            actions.append((os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0))
        actions.append((os.POSIX_SPAWN_DUP2, 1, 2))
        # every other descriptor of the node is close-on-exec (PEP 446): nothing else leaks
        # argv[0] stays "bash": it is what $0 and bash's own error messages show
        spawn = os.posix_spawn if os.path.isabs(self._bash) else os.posix_spawnp
        pid = spawn(self._bash, argv, self.env, file_actions=actions, setsid=True, setsigdef=DEFAULT_SIGNALS,
                    setsigmask=())
        return Child(pid)

    async def _spawn_asyncio(self, argv: list, stdin_fd: Optional[int], stdout_path: Optional[str]) -> Any:
        out = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if stdout_path else None
        try:
            return await asyncio.create_subprocess_exec(
                *argv, env=self.env, stdin=stdin_fd if stdin_fd is not None else asyncio.subprocess.DEVNULL,
                stdout=out if out is not None else asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        finally:
            if out is not None:
                os.close(out)

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
                proc = await self._spawn(["bash", "-c", WARM_SCRIPT], stdin_fd=read_fd)
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
