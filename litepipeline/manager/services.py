"""Services: one live task per enabled service, restarted with back-off when it ends.

:class:`ServiceCore` is pure: it is told what happened (a service was created, changed,
enabled or disabled; its task ended; time passed) with the time, changes its in-memory
rows and answers what to do (start a task now, stop one, when to look again). It does no
I/O; :class:`~litepipeline.manager.servicedriver.ServiceDriver` carries its answers out
inside scheduling rounds, so a service's row is written in the same transaction as the
task start or task end it follows.

Back-off: the first restart comes after 1 s, each further quick exit doubles the wait up
to 5 minutes; a task that ran 10 minutes or more resets it to 1 s.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
RESET_AFTER = 600.0
RESTART = ("always", "on-failure")
SUCCESS = "success"


def backoff(streak: int) -> float:
    """Seconds to wait before a restart after ``streak`` quick exits in a row (0 -> 1 s)."""
    return min(BACKOFF_FIRST * 2 ** min(streak, 30), BACKOFF_MAX)


@dataclass
class Exit:
    """What a task end did to a service: ``restart_at`` None means it stays down."""

    service_id: str
    restart_at: Optional[dt.datetime]


class ServiceCore:
    """The services' state (rows as the store has them) and the rules that change it."""

    def __init__(self) -> None:
        self.services: dict[str, dict] = {}
        self._by_task: dict[str, str] = {}   # live task_id -> service_id

    def load(self, row: dict, live: bool, now: dt.datetime) -> bool:
        """A service read from the store at start. ``live``: its task is unfinished (it is
        adopted, never started twice). Returns True when its row changed (a task that
        ended without the service having been told, which a crash cannot cause but an
        old store might hold)."""
        self.services[row["service_id"]] = row
        if live and row.get("task_id"):
            self._by_task[row["task_id"]] = row["service_id"]
            return False
        if row["enable"] and row.get("task_id") and row.get("next_start_at") is None \
                and row.get("last_exit") is None:
            row["next_start_at"] = now
            return True
        return False

    def add(self, row: dict, now: dt.datetime) -> None:
        row.update(task_id=None, started_at=None, restarts=0, streak=0, last_exit=None,
                   next_start_at=now if row["enable"] else None)
        self.services[row["service_id"]] = row

    def live_task(self, service_id: str) -> Optional[str]:
        row = self.services.get(service_id)
        task_id = row.get("task_id") if row else None
        return task_id if task_id in self._by_task else None

    def service_of(self, task_id: str) -> Optional[str]:
        return self._by_task.get(task_id)

    def set_enable(self, service_id: str, enable: bool, now: dt.datetime) -> Optional[str]:
        """Enable or disable. Returns the live task to stop (disabling), else None."""
        row = self.services[service_id]
        was = row["enable"]
        row["enable"] = enable
        if enable and not was:
            row["streak"] = 0
            row["next_start_at"] = None if self.live_task(service_id) else now
        elif not enable:
            row["next_start_at"] = None
            return self.live_task(service_id) if was else None
        return None

    def remove(self, service_id: str) -> Optional[str]:
        """Forget a deleted service; returns its live task (to stop)."""
        task_id = self.live_task(service_id)
        self.services.pop(service_id, None)
        if task_id:
            self._by_task.pop(task_id, None)
        return task_id

    def due(self, now: dt.datetime) -> list[str]:
        """Services whose (re)start time has come and that have no live task."""
        return [sid for sid, row in self.services.items()
                if row["enable"] and row.get("next_start_at") is not None and row["next_start_at"] <= now
                and self.live_task(sid) is None]

    def next_wakeup(self) -> Optional[dt.datetime]:
        times = [row["next_start_at"] for sid, row in self.services.items()
                 if row["enable"] and row.get("next_start_at") is not None and self.live_task(sid) is None]
        return min(times) if times else None

    def started(self, service_id: str, task_id: str, now: dt.datetime) -> None:
        """Its task was created (in the round that writes this row)."""
        row = self.services[service_id]
        if row.get("task_id") is not None:
            row["restarts"] += 1
        row.update(task_id=task_id, started_at=now, next_start_at=None)
        self._by_task[task_id] = service_id

    def start_failed(self, service_id: str, reason: str, now: dt.datetime) -> None:
        """Its task could not be created (e.g. the application is gone): try again later."""
        row = self.services[service_id]
        row["last_exit"] = "error"
        row["next_start_at"] = now + dt.timedelta(seconds=backoff(row["streak"]))
        row["streak"] += 1

    def ended(self, task_id: str, status: Optional[str], now: dt.datetime) -> Optional[Exit]:
        """A task ended (``status`` success/fail/kill). None unless it was a service's."""
        service_id = self._by_task.pop(task_id, None)
        row = self.services.get(service_id) if service_id else None
        if row is None:
            return None
        row["last_exit"] = status
        started = row.get("started_at")
        if started is not None and (now - started).total_seconds() >= RESET_AFTER:
            row["streak"] = 0
        if not row["enable"] or (row["restart"] == "on-failure" and status == SUCCESS):
            row["next_start_at"] = None
        else:
            row["next_start_at"] = now + dt.timedelta(seconds=backoff(row["streak"]))
            row["streak"] += 1
        return Exit(service_id, row["next_start_at"])
