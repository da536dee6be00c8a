"""The node's lease: the reaper kills the node's actions when it runs out, on its own."""
from __future__ import annotations

import os
import signal
import subprocess
import time

from litepipeline.node.lease import Lease
from litepipeline.node.reaper import Reaper
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
