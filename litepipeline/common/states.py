"""Task and action stages/statuses: one truth for the store, the API and the CLI."""
from __future__ import annotations

from enum import Enum


class Stage(str, Enum):
    """Where a task or an action is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"

    def __str__(self) -> str:
        return self.value


class Status(str, Enum):
    """How a finished task or action ended."""

    SUCCESS = "success"
    FAIL = "fail"
    KILL = "kill"

    def __str__(self) -> str:
        return self.value


UNFINISHED_STAGES = (Stage.PENDING, Stage.RUNNING, Stage.STOPPING)


class AttemptState(str, Enum):
    """Where an attempt is on a node: what a node lists in REGISTER/HEARTBEAT ``running``."""

    FETCHING = "fetching"     # accepted; the application, env or workspace is being made ready
    RUNNING = "running"       # its process group runs
    FINISHED = "finished"     # its process ended; the report is being made
    REPORTING = "reporting"   # its finished report awaits the manager's acknowledgement

    def __str__(self) -> str:
        return self.value
