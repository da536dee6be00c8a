"""The node's lease: the reaper kills the node's actions when it runs out, on its own."""
from __future__ import annotations

import os
import signal
import subprocess
import time

from litepipeline.node.lease import Lease
from litepipeline.node.groups import Reaper
from tests.fixtures import live_group_members


class FakeReaper:
    def __init__(self) -> None:
        self.leases: list = []

    def lease(self, seconds: float) -> None:
        self.leases.append(seconds)


def test_lease_counts_from_the_send_time_and_never_shrinks():
    now = [100.0]
    reaper = FakeReaper()
    lease = Lease(3.0, reaper, clock=lambda: now[0])
    assert not lease.expired()                  # never held: nothing can have run
    lease.renew(99.5)
    assert reaper.leases == [2.5] and lease.until == 102.5
    lease.renew(99.0)                           # an older frame's answer: no change
    assert reaper.leases == [2.5]
    now[0] = 102.5
    assert lease.expired()
    lease.renew(102.4)
    assert not lease.expired() and abs(reaper.leases[-1] - 2.9) < 1e-9


def _group() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def _wait_dead(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not live_group_members(pgid):
            return True
        time.sleep(0.05)
    return False


def test_reaper_kills_the_groups_when_the_lease_runs_out_even_with_the_node_silent():
    reaper = Reaper()
    reaper.start()
    first, later = _group(), None
    try:
        reaper.watch(first.pid)
        reaper.lease(0.5)
        # nothing more is written (as from a frozen node): the reaper acts on its own
        assert _wait_dead(first.pid, 10)
        later = _group()
        reaper.watch(later.pid)          # listed after the lease ran out: killed at once
        assert _wait_dead(later.pid, 10)
        reaper.lease(30)                 # a new lease: groups live again
        third = _group()
        reaper.watch(third.pid)
        time.sleep(0.3)
        assert live_group_members(third.pid)
        os.killpg(third.pid, signal.SIGKILL)
        third.wait()
    finally:
        reaper.close()
        for proc in (first, later):
            if proc is not None:
                proc.wait(5)


def test_a_lapse_is_remembered_after_the_renewal():
    """The reaper killed an action while the lease was out; the manager's answer came just
    before the node saw the action end: it must still not be reported (it was, as a failure)."""
    now = [100.0]
    lease = Lease(3.0, FakeReaper(), clock=lambda: now[0])
    lease.renew(100.0)
    started = 101.0
    assert not lease.lapsed_since(started)
    now[0] = 104.0          # out since 103
    assert lease.lapsed_since(started)
    lease.renew(103.9)      # a late answer renews it
    now[0] = 104.1
    assert not lease.expired() and lease.lapsed_since(started)
    assert lease.lapsed_since(103.5)          # started while out: killed at once by the reaper
    assert not lease.lapsed_since(104.05)     # started after the renewal
