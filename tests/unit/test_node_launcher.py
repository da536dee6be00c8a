"""The node's launcher: runner shells run an action as a newly started bash would."""
from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import sys

import pytest

from litepipeline.node.launcher import RUNNERS_MAX, Launcher, build_script, shell_returncode

GLIBC_INTERNAL = (1 << 31) | (1 << 32)   # signals 32 and 33, as SigIgn bits
# what an action can observe of how it was started
PROBE = ("import os, sys; print('cwd', os.getcwd()); print('pgid-is-parent', os.getpgid(0) == os.getppid()); "
         "print('own-session', os.getsid(0) != int(os.environ['PROBE_SID'])); "
         "print('stdin', os.readlink('/proc/self/fd/0')); print('fds', sorted(os.listdir('/proc/self/fd'))); "
         "print('env', os.environ.get('PROBE_ENV')); print('err', file=sys.stderr); sys.exit(3)")


@pytest.fixture(params=[True, False], ids=["pidfd", "asyncio"])
def pidfds(request):
    """Both ways of starting processes: posix_spawn + pidfd (with runners), and asyncio's
    (old kernels: always a new bash)."""
    return request.param


def make(env: dict, runners: int, pidfds: bool) -> Launcher:
    launcher = Launcher(env, runners)
    if not pidfds:
        launcher.pidfds, launcher.runners = False, 0
    return launcher


def _run(coro):
    """Run ``coro`` with the pidfd child watcher, as the node does; the default watcher is
    back afterwards (one attached to this closed loop would refuse every later test's
    subprocesses in this worker: the browser tests' playwright driver, say)."""
    async def main():
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(watcher)
        try:
            return await coro()
        finally:
            asyncio.set_child_watcher(None)   # the policy makes its default one when next asked
            watcher.close()
    return asyncio.run(main())


def _group_runs(pgid: int, command: bytes) -> bool:
    """Whether a live process of group ``pgid`` runs ``command``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fp:
                stat = fp.read()
        except OSError:
            continue
        name = stat[stat.index(b"(") + 1:stat.rindex(b")")]
        fields = stat[stat.rindex(b")") + 2:].split()
        if name == command and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


async def _until(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def _started(runners: int, pidfds: bool, env: dict | None = None) -> Launcher:
    launcher = make(env or dict(os.environ), runners, pidfds)
    launcher.refill()
    await _until(lambda: launcher.idle == launcher.runners)
    return launcher


def _probe_script(app, ws) -> str:
    # grep: a plain program sees the signal dispositions and mask an action inherits
    return build_script(str(app), "grep -E '^Sig(Ign|Blk)' /proc/self/status; "
                        f"{shlex.quote(sys.executable)} -c {shlex.quote(PROBE)} #", str(ws))


def _setup(tmp_path):
    app, ws = tmp_path / "my app", tmp_path / "ws 1"
    app.mkdir()
    ws.mkdir()
    return app, ws


def test_signals_the_node_inherited_ignored_are_default_again_for_the_action(tmp_path, pidfds):
    """A node started from a script's background job (or by nohup) has SIGINT, SIGQUIT or
    SIGHUP ignored; bash cannot undo an ignored signal, so the launch itself must."""
    app, ws = _setup(tmp_path)
    inherited = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)
    before = {s: signal.signal(s, signal.SIG_IGN) for s in inherited}
    try:
        for runners in (1, 0):
            async def run(runners: int = runners) -> str:
                launcher = await _started(runners, pidfds)
                out = ws / f"stdout-{runners}.data"
                proc = await launcher.launch(_probe_script(app, ws), str(out))
                await proc.wait()
                await launcher.close()
                return out.read_text()

            ignored = int(_run(run).splitlines()[1].split()[1], 16)
            assert ignored & ~GLIBC_INTERNAL == 0, f"{ignored:x} ignored (runners={runners})"
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def test_runner_and_cold_launches_look_the_same_to_the_action(tmp_path, pidfds):
    app, ws = _setup(tmp_path)
    env = dict(os.environ, PROBE_ENV="yes", PROBE_SID=str(os.getsid(0)))

    async def run(runners: int) -> tuple[int, str, int]:
        launcher = await _started(runners, pidfds, env)
        out = ws / f"stdout-{runners}.data"
        proc = await launcher.launch(_probe_script(app, ws), str(out))
        code = shell_returncode(await proc.wait())
        await launcher.close()
        return code, out.read_text(), launcher.launched_on_runners

    for runners in (1, 0):
        code, text, used = _run(lambda: run(runners))
        assert (code, used) == (3, runners if pidfds else 0)
        lines = text.splitlines()
        ignored = int(lines.pop(1).split()[1], 16)
        # none ignored (glibc's posix_spawn may leave its internal signals 32 and 33 ignored;
        # programs never use them): the node's SIGPIPE/SIGXFSZ dispositions stay behind
        assert ignored & ~GLIBC_INTERNAL == 0
        # stdin, stdout and stderr only: nothing of the node's or the runner's pipes
        assert lines == [f"SigBlk:\t{'0' * 16}", f"cwd {app}", "pgid-is-parent True", "own-session True",
                         "stdin /dev/null", "fds ['0', '1', '2', '3']", "env yes", "err"]


def test_an_action_is_a_process_group_of_its_own(tmp_path, pidfds):
    app, ws = _setup(tmp_path)

    async def run() -> None:
        launcher = await _started(1, pidfds)
        proc = await launcher.launch(build_script(str(app), "touch started; sleep 30 #", str(ws)), str(ws / "out"))
        assert os.getpgid(proc.pid) == proc.pid and os.getsid(proc.pid) != os.getsid(0)
        await _until(lambda: (app / "started").exists())
        # sleep itself must be running: a SIGTERM between touch and sleep goes to bash alone,
        # whose trap lets MAIN go on (sleep then ran its 30 s and the test failed now and then)
        await _until(lambda: _group_runs(proc.pid, b"sleep"))
        os.killpg(proc.pid, signal.SIGTERM)   # the whole group, as a stop does
        assert shell_returncode(await proc.wait()) == 143
        # the runner lives on and takes the next action
        proc = await launcher.launch(build_script(str(app), "exit 5 #", str(ws)), str(ws / "out2"))
        assert shell_returncode(await proc.wait()) == 5
        assert launcher.launched_on_runners == (2 if pidfds else 0)
        await launcher.close()

    _run(run)


def test_big_scripts_run_on_runners_nul_scripts_and_dead_runners_start_cold(tmp_path):
    app, ws = _setup(tmp_path)

    async def run() -> tuple[int, int]:
        launcher = await _started(2, True)
        big = build_script(str(app), "echo " + "x" * 70000 + " #", str(ws))   # more than a pipe holds
        proc = await launcher.launch(big, str(ws / "big"))
        assert await proc.wait() == 0 and (ws / "big").read_text() == "x" * 70000 + "\n"
        await _until(lambda: launcher.idle == 2)
        with pytest.raises(OSError, match="NUL byte"):   # neither bash nor exec can take one
            await launcher.launch(build_script(str(app), "echo 'a\0b' #", str(ws)), str(ws / "nul"))
        for runner in list(launcher._idle):       # someone kills the runners
            runner.proc.kill()
            await runner.proc.wait()
        proc = await launcher.launch(build_script(str(app), "exit 4 #", str(ws)), str(ws / "out"))
        assert await proc.wait() == 4             # started cold, still run
        launcher.refill()                         # dead runners are replaced
        await _until(lambda: launcher.idle == 2)
        await launcher.close()
        return launcher.launched_on_runners, launcher.launched_cold

    assert _run(run) == (1, 1)


def test_a_runner_killed_under_its_action_ends_it_as_killed(tmp_path):
    app, ws = _setup(tmp_path)

    async def run() -> int:
        launcher = await _started(1, True)
        proc = await launcher.launch(build_script(str(app), "sleep 30 #", str(ws)), str(ws / "out"))
        runner = launcher._all[0]
        runner.proc.kill()
        code = shell_returncode(await asyncio.wait_for(proc.wait(), 5))
        await _until(lambda: not _alive(proc.pid))   # its group went with it
        await launcher.close()
        return code

    assert _run(run) == 137


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_refill_keeps_at_most_runners_and_close_ends_them():
    async def run() -> list:
        launcher = make(dict(os.environ), 100, True)
        assert launcher.runners == RUNNERS_MAX
        launcher.refill()
        launcher.refill()                         # no double start
        await _until(lambda: launcher.idle == RUNNERS_MAX)
        await asyncio.sleep(0.1)
        assert launcher.idle == RUNNERS_MAX
        procs = [r.proc for r in launcher._idle]
        await launcher.close()
        launcher.refill()                         # closed: starts nothing
        assert launcher.idle == 0
        return [p.returncode for p in procs]

    assert _run(run) == [0] * RUNNERS_MAX         # each read end-of-file and exited


def test_idle_runners_exit_when_their_pipe_closes():
    # a node killed with SIGKILL closes every fd: an idle runner reads end-of-file and exits
    async def run() -> int:
        launcher = await _started(1, True)
        runner = launcher._idle.pop()
        runner.close()
        return await asyncio.wait_for(runner.proc.wait(), 5)

    assert _run(run) == 0


def test_bash_names_itself_bash_both_ways(tmp_path, pidfds):
    # $0 (and so bash's own error messages) reads "bash", as with the original's bash -c
    app, ws = _setup(tmp_path)

    async def run(runners: int) -> str:
        launcher = await _started(runners, pidfds)
        out = ws / f"zero-{runners}"
        proc = await launcher.launch(build_script(str(app), 'echo "$0"; no-such-command-here #', str(ws)), str(out))
        assert shell_returncode(await proc.wait()) == 127
        await launcher.close()
        return out.read_text()

    for runners in (1, 0):
        text = _run(lambda: run(runners))
        assert text.startswith("bash\nbash: ") and "no-such-command-here" in text and "stdin" not in text, text


def test_a_stopped_action_has_not_ended(tmp_path):
    app, ws = _setup(tmp_path)

    async def run() -> int:
        launcher = await _started(1, True)
        proc = await launcher.launch(build_script(str(app), "sleep 0.5 #", str(ws)), str(ws / "out"))
        os.killpg(proc.pid, signal.SIGSTOP)
        await asyncio.sleep(0.8)
        assert proc.returncode is None            # stopped is not finished
        os.killpg(proc.pid, signal.SIGCONT)
        code = await asyncio.wait_for(proc.wait(), 5)
        await launcher.close()
        return code

    assert _run(run) == 0


def test_a_runner_that_cannot_read_its_script_hands_the_action_to_a_cold_start(tmp_path):
    app, ws = _setup(tmp_path)

    async def run() -> tuple[int, int, int]:
        launcher = await _started(1, True)
        runner = launcher._idle[0]
        # the script goes somewhere the runner does not read: it finds nothing and ends
        os.close(runner.script_fd)
        runner.script_fd = os.memfd_create("elsewhere")
        proc = await launcher.launch(build_script(str(app), "exit 6 #", str(ws)), str(ws / "out"))
        code = await proc.wait()
        await launcher.close()
        return code, launcher.launched_on_runners, launcher.launched_cold

    assert _run(run) == (6, 0, 1)


def test_only_one_plain_simple_command_is_execd():
    from litepipeline.node.launcher import execs
    for main in ("python3 first.py", "./bin/first --level=2", "/usr/bin/env python3 a.py", "bin/first/first"):
        assert execs(main), main
    for main in ("", "echo hi", "exit 3", "source x", "FOO=1 python3 a.py", "python3 a.py; echo x",
                 "python3 a.py && b", "python3 $HOME/a.py", "python3 'a b.py'", "cd x", "python3 a.py > out",
                 "time python3 a.py", "python3 *.py", "~/bin/first", "sleep 30 #", "python3 a.py | cat",
                 "python3 `x`", "python3 a.py &", "-x y", "%1", "{ python3 a.py; }", "python3 a.py\nrm x"):
        assert not execs(main), main
    assert "exec python3 first.py" in build_script("/app", "python3 first.py", "/ws")
    assert "exec" not in build_script("/app", "echo hi", "/ws")


TRAPS_TERM = """import os, signal, sys, time
def term(*_):
    time.sleep(0.2)
    open(os.path.join(sys.argv[2], "cleaned"), "w").close()
    sys.exit(7)
if sys.argv[1] == "trap":
    signal.signal(signal.SIGTERM, term)
open(os.path.join(sys.argv[2], "pid"), "w").write(str(os.getpid()))
time.sleep(30)
"""


def test_an_execd_command_is_the_actions_process_with_its_own_status_and_signals(tmp_path, pidfds):
    """``python3 x.py`` replaces bash: the process the node waits for and signals is the
    program itself, a stop's SIGTERM reaches it, and the node hears of the end only after
    the program's own clean-up, with its exit status (128+N when a signal killed it)."""
    app, ws = _setup(tmp_path)
    (app / "probe.py").write_text(TRAPS_TERM)
    python = sys.executable
    if not re.fullmatch(r"[\w./-]+", python):
        pytest.skip(f"this interpreter's path is not a plain word: {python}")

    async def run(runners: int, mode: str) -> tuple[int, bool]:
        launcher = await _started(runners, pidfds)
        for name in ("pid", "cleaned"):
            (ws / name).unlink(missing_ok=True)
        proc = await launcher.launch(build_script(str(app), f"{python} probe.py {mode}", str(ws)), str(ws / "out"))
        await _until(lambda: (ws / "pid").exists() and (ws / "pid").read_text())
        assert int((ws / "pid").read_text()) == proc.pid        # no bash between the node and it
        assert os.getpgid(proc.pid) == proc.pid                   # still a process group of its own
        os.killpg(proc.pid, signal.SIGTERM)
        code = shell_returncode(await proc.wait())
        await launcher.close()
        return code, (ws / "cleaned").exists()

    for runners in (1, 0):
        assert _run(lambda: run(runners, "trap")) == (7, True)
        assert _run(lambda: run(runners, "plain")) == (143, False)
