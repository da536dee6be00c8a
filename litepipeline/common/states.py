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
