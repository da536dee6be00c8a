"""The node's lease: its actions may run only while it has heard from the manager lately.

A node cut off from the manager (a partition, or the node process frozen by SIGSTOP)
cannot know that the manager has given its actions to another node. So every answer from
the manager to a REGISTER or HEARTBEAT renews a lease of ``heartbeat_timeout`` seconds,
counted from when that frame was *sent* (the manager saw it no earlier); when the lease
runs out the reaper process kills the node's actions (it needs nothing from the node to do
so), and the node reports none of them: the manager re-queues them itself, and only after
``heartbeat_timeout`` plus a margin (see ``Cluster.hold_seconds``).
"""
from __future__ import annotations

import logging
import time
from typing import Optional

from litepipeline.node.groups import Reaper

LOG = logging.getLogger(__name__)


class Lease:
    """Owns the lease's deadline; tells the reaper at every renewal."""

    def __init__(self, timeout: float, reaper: Reaper, clock=time.monotonic) -> None:  # noqa: ANN001
        self.timeout = timeout
        self.reaper = reaper
        self.clock = clock
        self.until: Optional[float] = None   # None: never held (nothing can have run yet)
        #: when the last time the lease had run out ended (a renewal came): the reaper may
        #: have killed anything that ran up to then
        self.lapse_ended_at: Optional[float] = None

    def renew(self, sent_at: float) -> None:
        """The manager answered a frame sent at ``sent_at`` (this clock)."""
        until = sent_at + self.timeout
        if self.until is not None and until <= self.until:
            return
        if self.expired():
            self.lapse_ended_at = self.clock()
            LOG.warning("heard from the manager again; actions may run again")
        self.until = until
        self.reaper.lease(until - self.clock())

    def expired(self) -> bool:
        return self.until is not None and self.clock() >= self.until

    def lapsed_since(self, mark: float) -> bool:
        """Whether the lease was out at any moment from ``mark`` (this clock) until now: an
        action running then may have been killed by the reaper, and is not reported."""
        return self.expired() or (self.lapse_ended_at is not None and self.lapse_ended_at >= mark)
