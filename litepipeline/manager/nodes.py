"""A registered node as the manager's registry holds it: identity, address, connection.

The cluster (:mod:`litepipeline.manager.cluster`) adds and drops these as connections
register and end; the node link reaches a node through one; the scheduler core keeps the
node's slots (:class:`~litepipeline.manager.scheduler.NodeSlots`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from litepipeline.common.messages import Answer

NODE_FIELDS = ("node_id", "http_host", "http_port", "action_slots", "heartbeat_interval", "heartbeat_timeout",
               "data_path", "app_path", "python3", "version", "tls", "labels", "platform")


@dataclass
class NodeInfo:
    """One registered node, as ``cluster info`` shows it."""

    node_id: str
    info: dict
    stream: Any = field(repr=False, default=None)
    last_seen: float = field(default_factory=time.monotonic)
    features: frozenset = frozenset()
    runs: dict = field(default_factory=dict, repr=False)   # attempt_id -> future of the RUN answer

    @property
    def address(self) -> str:
        return f"{self.info['http_host']}:{self.info['http_port']}"

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the node's HTTP API (HTTPS when it registered with tls)."""
        return f"{'https' if self.info.get('tls') is True else 'http'}://{self.address}"

    @property
    def timeout(self) -> float:
        return float(self.info.get("heartbeat_timeout") or 30)

    def public(self) -> dict:
        out = {k: self.info.get(k) for k in NODE_FIELDS}
        out["node_id"] = self.node_id
        return out

    def answered(self, answer: Answer) -> None:
        """The node's answer to a RUN frame (see :class:`~litepipeline.manager.nodelink.NodeLink`)."""
        waiter = self.runs.get(str(answer.attempt_id))
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    def fail_runs(self, reason: str) -> None:
        """The connection is gone: every RUN still waiting gets ``NodeGone``."""
        for attempt_id, waiter in self.runs.items():
            if not waiter.done():
                waiter.set_result(Answer(attempt_id, 0, "NodeGone", reason))
        self.runs.clear()
