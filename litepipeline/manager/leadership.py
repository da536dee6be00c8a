"""The decisions of manager leadership (fail-over on PostgreSQL), without a database.

Several managers share one PostgreSQL database; one row of the ``leadership`` table says
which of them leads, under which ``epoch``, until when (``expires_at``, the database's
clock). The leader renews the row every :data:`RENEW_INTERVAL`; a standby reads it every
:data:`POLL_INTERVAL` and takes an expired row over with ``epoch + 1``. The SQL lives in
:mod:`litepipeline.manager.leader`; this module only decides, from the rows it is shown
and an injected monotonic clock:

- a standby: take over now, or keep waiting (and who leads meanwhile);
- a leader: whether it still holds the lease (its own deadline runs on *this* machine's
  monotonic clock, counted from when the renewal was *sent*, so it always ends before
  the database's ``expires_at``), and when it must step down.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Callable, Optional

TTL = 3.0               # seconds a lease lasts without renewal
RENEW_INTERVAL = 1.0    # seconds between a leader's renewals
POLL_INTERVAL = 0.5     # seconds between a standby's looks at the lease


@dataclasses.dataclass(frozen=True)
class LeaseRow:
    """The ``leadership`` row as read, with the database's ``now()`` of the same read."""

    epoch: int
    manager_id: Optional[str]
    leader: Optional[dict]       # the leader's identity (see :func:`identity`)
    expires_at: dt.datetime
    db_now: dt.datetime

    @property
    def expired(self) -> bool:
        return self.manager_id is None or self.expires_at <= self.db_now


def identity(manager_id: str, http_host: str, http_port: int, tcp_host: str, tcp_port: int,
             epoch: Optional[int] = None) -> dict:
    """The leader's identity as the fail-over contract names it (``leader`` wherever it appears)."""
    return {"manager_id": manager_id, "http_host": http_host, "http_port": http_port, "tcp_host": tcp_host,
            "tcp_port": tcp_port, "address": f"{http_host}:{http_port}", "epoch": epoch}


class Lease:
    """One manager's view of the lease: standby until it takes over, then leader until deposed.

    Args:
        manager_id: this manager process's id.
        ttl: seconds a lease lasts (the SQL grants the same).
        clock: a monotonic clock (seconds).
    """

    def __init__(self, manager_id: str, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.manager_id = manager_id
        self.ttl = ttl
        self.clock = clock
        self.epoch: Optional[int] = None     # set while this manager leads
        self.deadline = float("-inf")        # monotonic time the lease ends, as this machine counts
        self.leader: Optional[dict] = None   # who leads, as last read (standby) or ourselves
        self.deposed: Optional[str] = None   # why this manager stopped leading

    # -- standby ------------------------------------------------------------------------
    def should_take_over(self, row: LeaseRow) -> bool:
        """A standby read ``row``: True to try the take-over (``epoch + 1``) now."""
        self.leader = None if row.expired else _with_epoch(row.leader, row.epoch)
        return row.expired

    def acquired(self, epoch: int, sent_at: float, leader: dict) -> None:
        """The take-over sent at ``sent_at`` (monotonic) succeeded with ``epoch``."""
        self.epoch = epoch
        self.deadline = sent_at + self.ttl
        self.leader = _with_epoch(leader, epoch)

    # -- leader -------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        return self.epoch is not None and self.deposed is None

    def holds(self) -> bool:
        """Whether this manager may act as leader right now (write, dispatch)."""
        return self.leading and self.clock() < self.deadline

    def renewed(self, sent_at: float) -> None:
        """A renewal sent at ``sent_at`` found the row still ours: the lease runs ``ttl`` from then."""
        if self.leading:
            self.deadline = max(self.deadline, sent_at + self.ttl)

    def renewal_refused(self, row: Optional[LeaseRow]) -> str:
        """The renewal found the row no longer ours (``row``: what it holds now): deposed."""
        who = _describe(row.leader, row.epoch) if row is not None and not row.expired else "no manager"
        return self.depose(f"lost the lease: epoch {self.epoch} is over, {who} leads now")

    def renewal_failed(self, error: str) -> Optional[str]:
        """A renewal could not reach the database: deposed (the reason) once the lease has
        run out here, else None (try again)."""
        if self.leading and self.clock() >= self.deadline:
            return self.depose(f"could not renew the lease before it expired ({error})")
        return None

    def fence_failed(self, found_epoch: Optional[int]) -> str:
        """A write transaction found ``found_epoch`` in the row instead of ours: deposed."""
        return self.depose(f"a write found epoch {found_epoch} in the lease, not ours ({self.epoch})")

    def depose(self, reason: str) -> str:
        if self.deposed is None:
            self.deposed = reason
        return self.deposed

    def next_renewal(self) -> float:
        """Seconds until the next renewal: every ``ttl / 3``, sooner when the last ones failed."""
        return max(0.05, min(self.ttl / 3, (self.deadline - self.clock()) / 3))


def _with_epoch(leader: Optional[dict], epoch: int) -> Optional[dict]:
    return {**leader, "epoch": epoch} if isinstance(leader, dict) else None


def _describe(leader: Optional[dict], epoch: int) -> str:
    if not isinstance(leader, dict):
        return f"the manager of epoch {epoch}"
    return f"manager {leader.get('manager_id')} at {leader.get('address')} (epoch {epoch})"
