"""The services' pure controller (litepipeline.manager.services): back-off, restart
policy, enable/disable, adoption; time is passed in, nothing sleeps."""
from __future__ import annotations

import datetime as dt

from litepipeline.manager.services import ServiceCore, backoff

T0 = dt.datetime(2026, 5, 4, 10, 0, 0)


def seconds(n: float) -> dt.timedelta:
    return dt.timedelta(seconds=n)


def service(core: ServiceCore, restart: str = "always", enable: bool = True, now: dt.datetime = T0) -> dict:
    row = {"service_id": "s1", "name": "svc", "enable": enable, "restart": restart}
    core.add(row, now)
    return row


def test_backoff_doubles_from_one_second_to_five_minutes():
    assert [backoff(n) for n in range(11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff(10_000) == 300


def test_quick_exits_back_off_and_ten_minutes_up_resets():
    core = ServiceCore()
    service(core)
    assert core.due(T0) == ["s1"]
    now, waits = T0, []
    for n in range(10):
        core.started("s1", f"t{n}", now)
        assert core.due(now) == [] and core.live_task("s1") == f"t{n}"
        now += seconds(3)                        # runs 3 s, then fails
        exit_ = core.ended(f"t{n}", "fail", now)
        waits.append((exit_.restart_at - now).total_seconds())
        assert core.due(exit_.restart_at - seconds(0.5)) == []
        now = exit_.restart_at
        assert core.due(now) == ["s1"]
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    core.started("s1", "long", now)
    later = now + seconds(600)                   # up for 10 minutes: back to 1 s
    assert (core.ended("long", "fail", later).restart_at - later).total_seconds() == 1
    assert core.services["s1"]["restarts"] == 10 and core.services["s1"]["last_exit"] == "fail"


def test_on_failure_does_not_restart_after_success_but_does_after_fail():
    core = ServiceCore()
    service(core, restart="on-failure")
    core.started("s1", "t1", T0)
    assert core.ended("t1", "success", T0 + seconds(5)).restart_at is None
    assert core.due(T0 + seconds(3600)) == [] and core.next_wakeup() is None
    core.set_enable("s1", False, T0 + seconds(10))
    core.set_enable("s1", True, T0 + seconds(20))   # enabling again starts it
    assert core.due(T0 + seconds(20)) == ["s1"]
    core.started("s1", "t2", T0 + seconds(20))
    assert core.ended("t2", "fail", T0 + seconds(25)).restart_at == T0 + seconds(26)
    assert core.ended("unrelated", "fail", T0) is None


def test_disable_returns_the_live_task_to_stop_and_nothing_restarts_it():
    core = ServiceCore()
    service(core)
    core.started("s1", "t1", T0)
    assert core.set_enable("s1", False, T0 + seconds(1)) == "t1"
    assert core.set_enable("s1", False, T0 + seconds(2)) is None     # already disabled: nothing new
    assert core.ended("t1", "kill", T0 + seconds(3)).restart_at is None
    assert core.due(T0 + seconds(3600)) == []
    # enabled while its task is still stopping: no second task; it restarts after the end
    core2 = ServiceCore()
    service(core2)
    core2.started("s1", "t1", T0)
    core2.set_enable("s1", False, T0)
    core2.set_enable("s1", True, T0 + seconds(1))
    assert core2.due(T0 + seconds(1)) == []
    assert core2.ended("t1", "kill", T0 + seconds(2)).restart_at == T0 + seconds(3)


def test_a_created_disabled_service_waits_and_a_deleted_one_hands_back_its_task():
    core = ServiceCore()
    service(core, enable=False)
    assert core.due(T0 + seconds(60)) == [] and core.next_wakeup() is None
    core.set_enable("s1", True, T0 + seconds(60))
    assert core.next_wakeup() == T0 + seconds(60)
    core.started("s1", "t1", T0 + seconds(60))
    assert core.remove("s1") == "t1"
    assert core.ended("t1", "kill", T0 + seconds(61)) is None


def test_load_adopts_a_live_task_and_never_starts_a_second():
    core = ServiceCore()
    row = {"service_id": "s1", "name": "svc", "enable": True, "restart": "always", "task_id": "t1",
           "started_at": T0, "restarts": 2, "streak": 1, "last_exit": "fail", "next_start_at": None}
    assert core.load(row, live=True, now=T0 + seconds(5)) is False
    assert core.live_task("s1") == "t1" and core.due(T0 + seconds(3600)) == []
    assert core.ended("t1", "fail", T0 + seconds(10)).restart_at == T0 + seconds(12)   # streak 1: 2 s
    # a row whose restart time was recorded before the manager went away is due at once
    other = ServiceCore()
    row2 = dict(row, task_id="t9", next_start_at=T0)
    assert other.load(row2, live=False, now=T0 + seconds(60)) is False
    assert other.due(T0 + seconds(60)) == ["s1"]
