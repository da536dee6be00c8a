"""The node's process groups: the reaper, the journal, reaping at start-up (node/groups.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import time

from litepipeline.node.groups import Journal, ProcessGroups, Reaper, process_start_time
from tests.fixtures import live_group_members


def _live(pgid: int) -> bool:
    return bool(live_group_members(pgid))


def _kill(*procs: subprocess.Popen) -> None:
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


# -- the reaper: groups die with the node -----------------------------------------------------------
def _spawn_group() -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", "(sleep 30 &); sleep 30"], start_new_session=True)


def _wait_gone(pgid: int, seconds: float = 3) -> bool:
    deadline = time.monotonic() + seconds
    while _live(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _live(pgid)


def test_reaper_kills_listed_groups_when_the_node_pipe_closes():
    reaper = Reaper()
    reaper.start()
    watched, forgotten = _spawn_group(), _spawn_group()
    try:
        reaper.watch(watched.pid)
        reaper.watch(forgotten.pid)
        reaper.forget(forgotten.pid)
        time.sleep(0.2)
        assert _live(watched.pid)
        # what a dying node does to the pipe, SIGKILL included: its end closes
        reaper._proc.stdin.close()
        assert _wait_gone(watched.pid)
        assert _live(forgotten.pid)          # an ended action's pgid is never killed later
    finally:
        _kill(watched, forgotten)
        reaper.close()


def test_reaper_ignores_terminal_signals():
    reaper = Reaper()
    reaper.start()
    group = _spawn_group()
    try:
        reaper.watch(group.pid)
        time.sleep(0.1)
        os.kill(reaper._proc.pid, signal.SIGTERM)
        os.kill(reaper._proc.pid, signal.SIGINT)
        time.sleep(0.2)
        assert reaper._proc.poll() is None
        reaper.close()
        assert _wait_gone(group.pid)
    finally:
        _kill(group)


# -- the journal: groups left behind are reaped at the next start -------------------------------------

def test_journal_lists_what_started_and_did_not_end(tmp_path):
    journal = Journal(str(tmp_path / "running"))
    assert journal.leftovers() == []
    journal.started({"attempt_id": "a1", "pgid": 11})
    journal.started({"attempt_id": "a2", "pgid": 12})
    journal.ended("a1", [{"attempt_id": "a2", "pgid": 12}])
    with open(journal.path, "ab") as fp:
        fp.write(b'{"attempt_id": "a3", "pg')          # a line torn by a crash
    assert journal.leftovers() == [{"attempt_id": "a2", "pgid": 12}]
    journal.reset()
    assert journal.leftovers() == [] and not os.path.exists(journal.path)


def test_journal_is_compacted_when_big(tmp_path, monkeypatch):
    monkeypatch.setattr("litepipeline.node.groups.COMPACT_AT", 300)
    journal = Journal(str(tmp_path))
    long_running = {"attempt_id": "long", "pgid": 99}
    journal.started(long_running)
    for i in range(5):
        journal.started({"attempt_id": f"a{i}", "pgid": 100 + i})
        journal.ended(f"a{i}", [long_running])
    # past the limit: rewritten with what still runs, and appended to as before
    assert os.path.getsize(journal.path) < 300
    assert journal.leftovers() == [long_running]
    journal.started({"attempt_id": "next", "pgid": 201})
    assert journal.leftovers() == [long_running, {"attempt_id": "next", "pgid": 201}]
    for i in range(5):
        journal.started({"attempt_id": f"b{i}", "pgid": 300 + i})
        journal.ended(f"b{i}", [])
    journal.ended("long", [])
    assert journal.leftovers() == []          # told nothing runs any more: emptied on the way
    assert not os.path.exists(journal.path + ".tmp")
    journal.close()


def test_reap_orphans_kills_groups_listed_by_an_earlier_run(tmp_path):
    running = tmp_path / "running"
    left, ended, reused = _spawn_group(), _spawn_group(), _spawn_group()
    try:
        earlier = ProcessGroups(str(running))
        boot = earlier.boot_id
        earlier.journal.started({"attempt_id": "left", "pgid": left.pid, "start_time": process_start_time(left.pid),
                                 "boot_id": boot})
        earlier.journal.started({"attempt_id": "ended", "pgid": ended.pid,
                                 "start_time": process_start_time(ended.pid), "boot_id": boot})
        earlier.journal.ended("ended", [])
        # a pid now used by another process (its start time differs): not ours to kill
        earlier.journal.started({"attempt_id": "reused", "pgid": reused.pid, "start_time": 1, "boot_id": boot})
        earlier.journal.close()
        later = ProcessGroups(str(running))
        assert later.reap_leftovers() == 1
        assert _wait_gone(left.pid)
        assert _live(ended.pid) and _live(reused.pid)
        assert os.listdir(running) == []
    finally:
        _kill(left, ended, reused)


def test_a_restarted_reaper_still_protects_the_groups_started_before(tmp_path):
    groups = ProcessGroups(str(tmp_path / "running"))
    groups.start()
    before, after = _spawn_group(), _spawn_group()
    try:
        groups.started("a1", before.pid, "t", "before")
        old = groups.reaper._proc
        old.kill()                       # the reaper dies (OOM killer, a stray kill)
        old.wait()
        groups.started("a2", after.pid, "t", "after")     # finds it dead: a new one starts
        assert groups.reaper._proc is not old and groups.reaper._proc.poll() is None
        time.sleep(0.2)
        groups.reaper._proc.stdin.close()     # then the node dies
        assert _wait_gone(after.pid)
        assert _wait_gone(before.pid)         # re-announced to the new reaper: it dies too
    finally:
        _kill(before, after)
        groups.close()


def test_ended_groups_leave_the_journal_and_the_reaper(tmp_path):
    groups = ProcessGroups(str(tmp_path / "running"))
    groups.start()
    proc = _spawn_group()
    try:
        groups.started("a1", proc.pid, "t", "x")
        assert [r["attempt_id"] for r in groups.journal.leftovers()] == ["a1"]
        assert groups.reaper.groups == {proc.pid}
        groups.ended("a1")
        assert groups.journal.leftovers() == [] and groups.reaper.groups == set()
        groups.ended("a1")     # twice: nothing happens
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        groups.close()
