"""The node's launcher: warm shells run an action exactly as a newly started bash would."""
from __future__ import annotations

import asyncio
import os
import shlex
import signal
import sys

import pytest

from litepipeline.node.executor import build_script, shell_returncode
from litepipeline.node.launcher import WARM_MAX, Launcher

GLIBC_INTERNAL = (1 << 31) | (1 << 32)   # signals 32 and 33, as SigIgn bits
# what an action can observe of how it was started
PROBE = ("import os, sys; print('cwd', os.getcwd()); print('pgid-is-parent', os.getpgid(0) == os.getppid()); "
         "print('sid-is-pgid', os.getsid(0) == os.getpgid(0)); print('stdin', os.readlink('/proc/self/fd/0')); "
         "print('env', os.environ.get('PROBE_ENV')); print('err', file=sys.stderr); sys.exit(3)")


@pytest.fixture(params=[True, False], ids=["pidfd", "asyncio"])
def pidfds(request):
    """Both ways of starting processes: posix_spawn + pidfd, and asyncio's (old kernels)."""
    return request.param


def make(env: dict, warm: int, pidfds: bool) -> Launcher:
    launcher = Launcher(env, warm)
    launcher.pidfds = launcher.pidfds and pidfds
    return launcher


def _run(coro):
    """Run ``coro`` with the pidfd child watcher, as the node does."""
    async def main():
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(watcher)
        return await coro()
    return asyncio.run(main())


async def _until(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def _probe_script(app, ws) -> str:
    # grep: a plain program sees the signal dispositions and mask an action inherits
    return build_script(str(app), "grep -E '^Sig(Ign|Blk)' /proc/self/status; "
                        f"{shlex.quote(sys.executable)} -c {shlex.quote(PROBE)} #", str(ws))


def _setup(tmp_path):
    app, ws = tmp_path / "my app", tmp_path / "ws 1"
    app.mkdir()
    ws.mkdir()
    return app, ws


def test_warm_and_cold_launches_look_the_same_to_the_action(tmp_path, pidfds):
    app, ws = _setup(tmp_path)
    env = dict(os.environ, PROBE_ENV="yes")

    async def run(warm: int) -> tuple[int, str, int]:
        launcher = make(env, warm, pidfds)
        launcher.refill()
        await _until(lambda: launcher.idle == warm)
        out = ws / f"stdout-{warm}.data"
        proc = await launcher.launch(_probe_script(app, ws), str(out))
        code = shell_returncode(await proc.wait())
        await launcher.close()
        return code, out.read_text(), launcher.launched_warm

    for warm in (1, 0):
        code, text, used_warm = _run(lambda: run(warm))
        assert (code, used_warm) == (3, warm)
        lines = text.splitlines()
        ignored = int(lines.pop(1).split()[1], 16)
        # none ignored (glibc's posix_spawn may leave its internal signals 32 and 33 ignored;
        # programs never use them): the node's SIGPIPE/SIGXFSZ dispositions stay behind
        assert ignored & ~GLIBC_INTERNAL == 0
        assert lines == [f"SigBlk:\t{'0' * 16}", f"cwd {app}", "pgid-is-parent True", "sid-is-pgid True",
                         "stdin /dev/null", "env yes", "err"]


def test_a_warm_shell_is_its_own_process_group_and_session(tmp_path, pidfds):
    app, ws = _setup(tmp_path)

    async def run() -> None:
        launcher = make(dict(os.environ), 1, pidfds)
        launcher.refill()
        await _until(lambda: launcher.idle == 1)
        proc = await launcher.launch(build_script(str(app), "sleep 30 #", str(ws)), str(ws / "out"))
        assert os.getpgid(proc.pid) == proc.pid and os.getsid(proc.pid) == proc.pid
        os.killpg(proc.pid, signal.SIGTERM)   # the whole group, as a stop does
        assert shell_returncode(await proc.wait()) == 143
        await launcher.close()

    _run(run)


def test_big_or_nul_scripts_and_dead_shells_fall_back_to_a_cold_start(tmp_path, pidfds):
    app, ws = _setup(tmp_path)

    async def run() -> tuple[int, int]:
        launcher = make(dict(os.environ), 2, pidfds)
        launcher.refill()
        await _until(lambda: launcher.idle == 2)
        big = build_script(str(app), "true " + "x" * 8000 + " #", str(ws))
        proc = await launcher.launch(big, str(ws / "big"))
        assert await proc.wait() == 0
        assert launcher.idle == 2                 # no warm shell was used for it
        for shell in list(launcher._idle):        # someone kills the idle shells
            shell.proc.kill()
            await shell.proc.wait()
        proc = await launcher.launch(build_script(str(app), "exit 4 #", str(ws)), str(ws / "out"))
        assert await proc.wait() == 4             # started cold, still run
        await launcher.close()
        return launcher.launched_warm, launcher.launched_cold

    assert _run(run) == (0, 2)


def test_refill_keeps_at_most_warm_idle_and_close_ends_them(pidfds):
    async def run() -> list:
        launcher = make(dict(os.environ), 100, pidfds)
        assert launcher.warm == WARM_MAX
        launcher.refill()
        launcher.refill()                         # no double start
        await _until(lambda: launcher.idle == WARM_MAX)
        await asyncio.sleep(0.1)
        assert launcher.idle == WARM_MAX
        procs = [s.proc for s in launcher._idle]
        await launcher.close()
        launcher.refill()                         # closed: starts nothing
        assert launcher.idle == 0
        return [p.returncode for p in procs]

    assert _run(run) == [0] * WARM_MAX            # each sourced nothing and exited


def test_idle_shells_exit_when_their_pipe_closes(pidfds):
    # a node killed with SIGKILL closes every fd: an idle shell reads end-of-file and exits
    async def run() -> int:
        launcher = make(dict(os.environ), 1, pidfds)
        launcher.refill()
        await _until(lambda: launcher.idle == 1)
        shell = launcher._idle.pop()
        os.close(shell.fd)
        return await asyncio.wait_for(shell.proc.wait(), 5)

    assert _run(run) == 0


def test_bash_names_itself_bash_both_ways(tmp_path, pidfds):
    # $0 (and so bash's own error messages) reads "bash", as with the original's bash -c
    app, ws = _setup(tmp_path)

    async def run(warm: int) -> str:
        launcher = make(dict(os.environ), warm, pidfds)
        launcher.refill()
        await _until(lambda: launcher.idle == warm)
        out = ws / f"zero-{warm}"
        proc = await launcher.launch(build_script(str(app), 'echo "$0"; no-such-command-here #', str(ws)), str(out))
        assert shell_returncode(await proc.wait()) == 127
        await launcher.close()
        return out.read_text()

    for warm in (1, 0):
        text = _run(lambda: run(warm))
        assert text.startswith("bash\nbash: ") and "no-such-command-here" in text and "stdin" not in text, text
