"""Builds an action's bash script (:func:`build_script`) and starts it, on a runner shell
when one is idle.

Starting an action cold costs a fork of the node, an exec of bash and bash's own
start-up before the action's command even begins (docs/architecture.md has the numbers). A runner is
a bash started once, in a session of its own, that runs one action at a time: told by a
byte on a pipe, it reads the action's script from a memfd, runs it as a background job
(forked under ``set -m``: a process group of its own, the action's), tells the node the
job's pid, waits for it and tells its exit status. Launching an action is then a write
of the script, one byte on a pipe and a fork of a small bash; the node itself spawns no
process while its runners last.

The job's first words redirect stdout+stderr into the workspace's ``stdout.data``; its
stdin is ``/dev/null`` and the runner's own descriptors are closed in it, so the action
sees what a new ``bash -c`` would give it (with one difference: ``$$`` is the runner's
pid). A runner exits when the node goes away (end-of-file on its pipe); the reaper kills
its job.

Processes are started with ``posix_spawn`` (a vfork-style clone, no Python in the child)
and awaited through a pidfd on the event loop: a fraction of what asyncio's subprocess
machinery costs per process. Kernels without pidfds (before Linux 5.3) get asyncio's
subprocesses and no runners.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import shlex
import shutil
import signal
from typing import Any, Optional

LOG = logging.getLogger(__name__)

RUNNERS_MAX = 16  # runners kept at most, whatever the node's slots: each holds a bash's memory
# stdin is the node's command pipe: a NUL byte means "run the script now in fd 4" (a memfd:
# read whole with one buffered read, where bash reads a pipe one byte per system call);
# fd 3 is the status pipe to the node: "PID" when a job starts, "STATUS" when it ends
# (set -m only while forking: the job gets a process group of its own, and wait, with job
# control off again, returns when the job ends, not when it is merely stopped)
# (a script it cannot read ends the runner: the node then starts that action cold)
RUNNER_SCRIPT = r"""while IFS= read -r -d '' __lp_go; do
  __lp_script=$(< /proc/self/fd/4)
  [ -n "$__lp_script" ] || break
  set -m
  ( eval "$__lp_script" ) 3>&- 4<&- </dev/null &
  set +m
  echo "$!" >&3
  wait "$!"
  echo "$?" >&3
done"""
# An ignored disposition survives exec, and an action must get defaults: Python ignores
# SIGPIPE and SIGXFSZ, and a node started from a script's background job (or by nohup)
# inherits SIGINT/SIGQUIT/SIGHUP ignored, which bash would pass on and cannot undo
DEFAULT_SIGNALS = tuple(sorted(signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}))


def _default_signals() -> None:
    """In a forked child before exec: what posix_spawn's ``setsigdef`` does."""
    for number in DEFAULT_SIGNALS:
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            pass


def _keep_inherited_fds_from_children() -> None:
    """Mark every descriptor above 2 close-on-exec. Python opens its own so (PEP 446), but
    the node may have inherited others (from a shell, a service manager), and posix_spawn,
    unlike subprocess, closes nothing: they would reach every action."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:   # the listing's own descriptor, closed by now
                pass


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


class Job:
    """One action run by a :class:`Runner`: ``pid`` (its process group), ``returncode``
    (bash's ``$?``: 128+N when killed by signal N), ``wait()``, ``kill()``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.pid = 0
        self.returncode: Optional[int] = None
        self.started: asyncio.Future = loop.create_future()
        self._exited: asyncio.Future = loop.create_future()

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def kill(self) -> None:
        if self.returncode is None and self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _ended(self, returncode: int) -> None:
        self.returncode = returncode
        if not self.started.done():
            self.started.set_exception(OSError("the runner ended before starting the action"))
        if not self._exited.done():
            self._exited.set_result(returncode)


class Runner:
    """The node's side of one runner shell (see the module docstring)."""

    def __init__(self, proc: Child, command_fd: int, status_fd: int, script_fd: int, on_idle: Any) -> None:
        self.proc = proc
        self.command_fd = command_fd
        self.status_fd = status_fd
        self.script_fd = script_fd
        self.job: Optional[Job] = None
        self.dead = False
        self._on_idle = on_idle
        self._buffer = b""
        self._loop = asyncio.get_running_loop()
        os.set_blocking(status_fd, False)
        self._loop.add_reader(status_fd, self._readable)

    def run(self, data: bytes) -> Job:
        """Hand ``data`` (a script without NUL bytes) to the idle runner."""
        job = self.job = Job(self._loop)
        try:
            os.ftruncate(self.script_fd, 0)
            os.pwrite(self.script_fd, data, 0)
            written = os.write(self.command_fd, b"\0")   # into a pipe the runner has emptied
        except OSError:   # the runner died (EPIPE), or the memfd could not take the script
            written = 0
        if written != 1:
            self._die()
        return job

    def close(self) -> None:
        """End-of-file for the runner: it exits once its current job (if any) has ended."""
        if self.command_fd >= 0:
            _close(self.command_fd)
            self.command_fd = -1   # never closed twice: the number may belong to another file by then

    def _readable(self) -> None:
        try:
            chunk = os.read(self.status_fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._die()
            return
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            job = self.job
            if job is None:
                continue
            try:
                number = int(line)
            except ValueError:   # only the runner writes here (its jobs don't have the pipe)
                LOG.error("runner %d wrote %r; stopping it", self.proc.pid, line[:60])
                self._die()
                return
            if not job.pid:
                job.pid = number
                job.started.set_result(number)
            else:
                self.job = None
                job._ended(number)
                self._on_idle(self)

    def _die(self) -> None:
        if self.dead:
            return
        self.dead = True
        self._loop.remove_reader(self.status_fd)
        _close(self.status_fd)
        _close(self.script_fd)
        self.close()
        self.proc.kill()
        job, self.job = self.job, None
        if job is not None:
            # the job may live on without its runner: its group goes, and it counts as killed
            if job.pid:
                try:
                    os.killpg(job.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            job._ended(128 + signal.SIGKILL)
        self._on_idle(self)


class Launcher:
    """Launches bash scripts as process-group leaders, on runners when one is idle.

    Args:
        env: the environment of every action.
        runners: how many runners to keep (0: always start a new bash).
    """

    def __init__(self, env: dict, runners: int) -> None:
        # encoded once: the spawn of every process would otherwise encode each variable again
        self.env = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
        self.pidfds = _pidfds_work()
        if self.pidfds:
            _keep_inherited_fds_from_children()
        # runners read their scripts through /proc/self/fd (absent in some sandboxes)
        self.runners = max(0, min(runners, RUNNERS_MAX)) if self.pidfds and os.path.isdir("/proc/self/fd") else 0
        # looked up once (the environment never changes): the child of every spawn would
        # otherwise try each directory of PATH with an execve of its own
        path = self.env.get(b"PATH")
        self._bash = shutil.which("bash", path=os.fsdecode(path) if path else None) or "bash"
        self._all: list[Runner] = []
        self._idle: list[Runner] = []
        self._starting = 0
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self.launched_on_runners = 0
        self.launched_cold = 0

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def launch(self, script: str, stdout_path: str) -> Any:
        """Run ``script`` with stdin from /dev/null and stdout+stderr into ``stdout_path``.

        Returns the process (``pid``, ``wait()``, ``returncode``, ``kill()``). Raises OSError
        when no bash can be started, ``stdout_path`` cannot be opened, or the script cannot
        be handed to bash (a NUL byte, text that is not valid Unicode).
        """
        try:
            data = os.fsencode(f"exec >{shlex.quote(stdout_path)} 2>&1\n" + script)
        except UnicodeEncodeError as exc:
            raise OSError(errno.EINVAL, f"the command is not valid text: {exc.reason}") from None
        if b"\0" in data:   # neither bash nor exec can take one
            raise OSError(errno.EINVAL, "the command contains a NUL byte")
        while self._idle:
            job = self._idle.pop().run(data)
            try:
                await job.started
            except OSError:   # that runner died: another one, or cold
                continue
            self.launched_on_runners += 1
            return job
        self.launched_cold += 1
        return await self._spawn(["bash", "-c", script], stdout_path=stdout_path)

    def refill(self) -> None:
        """Start runners in the background until ``runners`` are alive or starting."""
        while not self._closed and len(self._all) + self._starting < self.runners:
            self._starting += 1
            task = asyncio.ensure_future(self._start_one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """End every runner (end-of-file on its pipe) and wait for them briefly."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        runners, self._all, self._idle = self._all, [], []
        for runner in runners:
            runner.close()
        waits = [asyncio.ensure_future(r.proc.wait()) for r in runners]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=5)
            for runner in runners:
                runner.proc.kill()
            for task in pending:
                task.cancel()

    # -- internals ---------------------------------------------------------------------------
    def _runner_idle(self, runner: Runner) -> None:
        if runner.dead:
            if runner in self._all:
                self._all.remove(runner)
            if runner in self._idle:
                self._idle.remove(runner)
        elif not self._closed:
            self._idle.append(runner)

    async def _spawn(self, argv: list, stdin_fd: Optional[int] = None, stdout_path: Optional[str] = None,
                     status_fd: Optional[int] = None, script_fd: Optional[int] = None) -> Any:
        """``argv`` (bash, found once on PATH) as the leader of a new session; stdin
        ``stdin_fd`` (else /dev/null), stdout+stderr into ``stdout_path`` (else /dev/null),
        ``status_fd`` as fd 3 and ``script_fd`` as fd 4 when given."""
        if not self.pidfds:
            return await self._spawn_asyncio(argv, stdout_path)
        actions: list = [(os.POSIX_SPAWN_DUP2, stdin_fd, 0) if stdin_fd is not None
                         else (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
        if stdout_path is not None:
            actions.append((os.POSIX_SPAWN_OPEN, 1, stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        else:
            actions.append((os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0))
        actions.append((os.POSIX_SPAWN_DUP2, 1, 2))
        if status_fd is not None:
            actions.append((os.POSIX_SPAWN_DUP2, status_fd, 3))
        if script_fd is not None:
            actions.append((os.POSIX_SPAWN_DUP2, script_fd, 4))
        # every other descriptor of the node is close-on-exec (PEP 446): nothing else leaks;
        # argv[0] stays "bash": it is what $0 and bash's own error messages show
        spawn = os.posix_spawn if os.path.isabs(self._bash) else os.posix_spawnp
        pid = spawn(self._bash, argv, self.env, file_actions=actions, setsid=True, setsigdef=DEFAULT_SIGNALS,
                    setsigmask=())
        return Child(pid)

    async def _spawn_asyncio(self, argv: list, stdout_path: Optional[str]) -> Any:
        out = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if stdout_path else None
        try:
            return await asyncio.create_subprocess_exec(
                *argv, env=self.env, stdin=asyncio.subprocess.DEVNULL,
                stdout=out if out is not None else asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                # this fallback (no pidfd: kernels before 5.3) forks the node anyway
                preexec_fn=_default_signals)
        finally:
            if out is not None:
                os.close(out)

    async def _start_one(self) -> None:
        command_r, command_w = os.pipe()
        status_r, status_w = os.pipe()
        script_fd = -1
        try:
            try:
                script_fd = os.memfd_create("litepipeline-script", os.MFD_CLOEXEC)
                proc = await self._spawn(["bash", "-c", RUNNER_SCRIPT], stdin_fd=command_r, status_fd=status_w,
                                         script_fd=script_fd)
            finally:
                os.close(command_r)
                os.close(status_w)
        except BaseException as exc:
            _close(command_w)
            _close(status_r)
            if script_fd >= 0:
                _close(script_fd)
            self._starting -= 1
            if isinstance(exc, OSError):
                LOG.warning("cannot start a runner shell: %s", exc)
                return
            raise
        self._starting -= 1
        runner = Runner(proc, command_w, status_r, script_fd, self._runner_idle)
        if self._closed:
            runner.close()
            return
        self._all.append(runner)
        self._idle.append(runner)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


# bash's builtins and reserved words: a command named so is not a file, so never exec'd
SHELL_WORDS = frozenset(
    ". : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown "
    "echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local logout mapfile "
    "popd printf pushd pwd read readarray readonly return set shift shopt source suspend test times trap true "
    "type typeset ulimit umask unalias unset wait if then else elif fi case esac for select while until do done "
    "in function time { } ! [[ ]] coproc".split())
# a word bash takes literally: no quoting, expansion, glob, redirection or operator
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:@%+,=-]+")


def execs(main: str) -> bool:
    """Whether MAIN is one simple command that bash can ``exec`` in place of forking it:
    plain words only, the first neither an assignment, a builtin nor a reserved word."""
    words = [word for word in main.split(" ") if word]   # a newline or tab is not plain: a second line
    if not words or not all(_PLAIN_WORD.fullmatch(word) for word in words):
        return False
    first = words[0]
    # "-x" would be an option of exec, "%1" a job to bring to the foreground
    return "=" not in first and first[0] not in "-%" and first not in SHELL_WORDS


def build_script(app_dir: str, main: str, workspace: str, env_dir: Optional[str] = None) -> str:
    """The bash script running ``cd APP && [source ENV/bin/activate &&] MAIN WORKSPACE``.

    The TERM trap keeps bash alive through a stop's SIGTERM (bash runs the trap only after
    MAIN exits), so the node learns the action ended only once MAIN has finished its own
    clean-up; bash's exit status is MAIN's (128+N when MAIN died of signal N). A SIGTERM
    that comes before MAIN has started (during ``cd`` or the env's activation) is
    remembered, and MAIN is then not started at all (exit status 143). MAIN is the user's
    command, inserted as is; the paths are quoted. A MAIN that is one simple command
    (:func:`execs`, e.g. ``python3 first.py``) replaces bash (``exec``): the action's
    process is MAIN itself, with the same exit status and signals, and one fork fewer.
    """
    prefix = f"cd {shlex.quote(app_dir)} && "
    if env_dir:
        prefix += f"source {shlex.quote(os.path.join(env_dir, 'bin', 'activate'))} && "
    prefix += '{ [ -z "${__lp_stopped-}" ] || exit 143; } && '
    if execs(main):
        prefix += "exec "
    return f"trap '__lp_stopped=1' TERM\n{prefix}{main} {shlex.quote(workspace)}\n"


def shell_returncode(returncode: int) -> int:
    """asyncio's ``-N`` (killed by signal N) as the shell's ``128+N``, like bash reports MAIN's."""
    return 128 - returncode if returncode < 0 else returncode
