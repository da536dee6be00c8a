"""What the interface shows for an action: one word, from its stage and status.

The word is the CSS class (its colour), and the page prints it next to an icon, so a
state is readable without colour.
"""
from __future__ import annotations

from typing import Any, Optional

from litepipeline.common.states import Stage, Status

WAITING, RETRYING, RUNNING, STOPPING = "waiting", "retrying", "running", "stopping"
SUCCESS, FAILED, KILLED, NOT_RUN = "success", "failed", "killed", "not-run"
FINISHED_WORDS = {Status.SUCCESS.value: SUCCESS, Status.FAIL.value: FAILED, Status.KILL.value: KILLED}


def action_state(stage: str, status: Optional[str], retry_at: Any = None, task_finished: bool = False) -> str:
    """One of the words above for an action in a task."""
    if stage == Stage.FINISHED.value:
        return FINISHED_WORDS.get(status or "", FAILED)
    if stage in (Stage.RUNNING.value, Stage.STOPPING.value):
        return RUNNING if stage == Stage.RUNNING.value else STOPPING
    if task_finished:   # still pending when its task ended: it never ran
        return NOT_RUN
    return RETRYING if retry_at is not None else WAITING


def task_state(stage: str, status: Optional[str]) -> str:
    """The same words for a task: waiting, running, stopping, success, failed, killed."""
    if stage == Stage.FINISHED.value:
        return FINISHED_WORDS.get(status or "", FAILED)
    return {Stage.RUNNING.value: RUNNING, Stage.STOPPING.value: STOPPING}.get(stage, WAITING)
