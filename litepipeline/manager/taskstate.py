"""In-memory state of unfinished tasks: what the scheduler decides on.

Each object mirrors one store row field for field (``to_row``/``from_row``), so the
scheduler can hand whatever it changed to the store in one batch. Only unfinished tasks
are kept in memory; the store is the truth and rebuilds this at start.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Iterable, Optional

from litepipeline.common.appspec import ActionSpec
from litepipeline.common.states import Stage, Status

_FIELDS: dict = {}
# plain strings: an Enum member's .value is a descriptor call, and these are read per task
_FINISHED = Stage.FINISHED.value
_SUCCESS = Status.SUCCESS.value


def _field_names(cls: type) -> list:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = [f.name for f in dataclasses.fields(cls)]
    return names


_GETTERS: dict = {}


def _row_of(obj: Any, names: Any) -> dict:
    """``obj``'s fields ``names`` as a dict, shallow (dataclasses.asdict deep-copies the
    JSON values): one attrgetter per class, on every write of every row."""
    getter = _GETTERS.get(type(obj))
    if getter is None:
        getter = _GETTERS[type(obj)] = attrgetter(*names)
    return dict(zip(names, getter(obj)))


DAG = "dag"          # part of the task's DAG
EVENT = "event"      # on_success / on_fail action, runs after the task ends


@dataclass
class ActionState:
    """One action of a task and its current attempt."""

    task_id: str
    name: str
    main: str
    seq: int = 0
    condition: list = field(default_factory=list)
    env: Optional[str] = None
    input_data: dict = field(default_factory=dict)
    to_action: Optional[str] = None
    parent: Optional[str] = None
    kind: str = DAG
    timeout: Optional[float] = None
    retries: int = 0
    retry_delay: float = 0
    stage: str = Stage.PENDING.value
    status: Optional[str] = None
    attempt: int = 0
    attempt_id: Optional[str] = None
    node_id: Optional[str] = None
    dispatched_at: Optional[dt.datetime] = None
    retry_at: Optional[dt.datetime] = None
    start_at: Optional[dt.datetime] = None
    end_at: Optional[dt.datetime] = None
    returncode: Optional[int] = None
    output: Optional[Any] = None
    message: Optional[str] = None
    #: SHA-1 of the venv version pinned at creation when ``env`` is a venv id (never changes)
    env_sha1: Optional[str] = None
    #: where it may run: the configured target with the task input's merged over it (see
    #: manager/placement.py); None runs anywhere. Set at creation, never changed.
    target: Optional[dict] = None

    @classmethod
    def from_spec(cls, task_id: str, spec: ActionSpec, seq: int, kind: str = DAG,
                  parent: Optional[str] = None) -> "ActionState":
        return cls(task_id=task_id, name=spec.name, main=spec.main, seq=seq, condition=list(spec.condition),
                   env=spec.env, input_data=dict(spec.input_data), to_action=spec.to_action, parent=parent,
                   kind=kind, timeout=spec.timeout, retries=spec.retries, retry_delay=spec.retry_delay,
                   target=spec.target)

    #: the fields an update writes; the others are set at creation and never change, so
    #: updates don't re-encode (and re-write) an action's input_data or condition
    CHANGING = ("stage", "status", "attempt", "attempt_id", "node_id", "dispatched_at", "retry_at", "start_at",
                "end_at", "returncode", "output", "message")

    @property
    def finished(self) -> bool:
        return self.stage == _FINISHED

    def back_to_pending(self, message: Optional[str] = None, retry_at: Optional[dt.datetime] = None,
                        keep_times: bool = False) -> None:
        """Forget the current attempt (fencing its reports); the attempt counter stays."""
        self.stage = Stage.PENDING.value
        self.status = None
        self.attempt_id = None
        self.node_id = None
        self.message = message
        self.retry_at = retry_at
        if not keep_times:
            self.dispatched_at = None
            self.start_at = None
            self.end_at = None
            self.returncode = None
            self.output = None

    @property
    def succeeded(self) -> bool:
        return self.finished and self.status == _SUCCESS

    def to_row(self) -> dict:
        return _row_of(self, self.row_fields())

    @classmethod
    def row_fields(cls) -> list:
        return _field_names(cls)

    @classmethod
    def from_row(cls, row: dict) -> "ActionState":
        names = _field_names(cls)   # cached: a task may have 10,000 rows to read
        return cls(**{k: row[k] for k in names if k in row})


@dataclass
class AttemptRecord:
    """History of one dispatch (a row of ``attempts``)."""

    attempt_id: str
    task_id: str
    name: str
    attempt: int
    node_id: Optional[str]
    dispatched_at: dt.datetime
    start_at: Optional[dt.datetime] = None
    end_at: Optional[dt.datetime] = None
    status: Optional[str] = None
    returncode: Optional[int] = None
    message: Optional[str] = None

    CHANGING = ("start_at", "end_at", "status", "returncode", "message")   # what an update writes

    def to_row(self) -> dict:
        return _row_of(self, self.row_fields())

    @classmethod
    def row_fields(cls) -> list:
        return _field_names(cls)


@dataclass
class TaskState:
    """An unfinished task and its actions, by name."""

    task_id: str
    task_name: str
    application_id: str
    app_sha1: str
    input_data: dict
    stage: str
    create_at: dt.datetime
    update_at: dt.datetime
    status: Optional[str] = None
    signal: Optional[int] = None
    message: Optional[str] = None
    on_success: Optional[str] = None
    on_fail: Optional[str] = None
    start_at: Optional[dt.datetime] = None
    end_at: Optional[dt.datetime] = None
    work_id: Optional[str] = None   # the work this task is an entry (or event application) of
    actions: dict = field(default_factory=dict, repr=False)
    #: create order, for FIFO dispatch across tasks
    order: int = 0
    #: action name -> an upstream it last waited for (a hint for the scheduler, see ``_ready``)
    blockers: dict = field(default_factory=dict, repr=False, compare=False)
    #: (action count when built, to_action target -> names aimed at it); see :meth:`feeders`
    _feeders: tuple = field(default=(-1, {}), repr=False, compare=False)
    #: while the task is pending: its ready actions, as the scheduler last found them
    ready: Optional[list] = field(default=None, repr=False, compare=False)

    _ROW_FIELDS = ("task_id", "task_name", "application_id", "app_sha1", "input_data", "stage", "status",
                   "signal", "message", "on_success", "on_fail", "create_at", "start_at", "update_at",
                   "end_at", "work_id")
    #: what an update writes (the task's input_data, names and creation time never change)
    CHANGING = ("stage", "status", "signal", "message", "start_at", "update_at", "end_at")

    def to_row(self) -> dict:
        return _row_of(self, self._ROW_FIELDS)

    @classmethod
    def from_row(cls, row: dict, order: int = 0) -> "TaskState":
        return cls(**{k: row.get(k) for k in cls._ROW_FIELDS}, order=order)

    @classmethod
    def from_rows(cls, row: dict, action_rows: Iterable[dict]) -> "TaskState":
        """The task with its actions, as the store holds them."""
        task = cls.from_row(row)
        for action_row in action_rows:
            action = ActionState.from_row(action_row)
            task.actions[action.name] = action
        return task

    @property
    def finished(self) -> bool:
        return self.stage == _FINISHED

    def feeders(self) -> dict:
        """``to_action`` target -> the names of the actions aimed at it, in creation order.

        Rebuilt only when the action count changed: actions are only ever added to a task
        (never removed or renamed) and ``to_action`` never changes once created.
        """
        count, index = self._feeders
        if count != len(self.actions):
            index = {}
            for action in self.actions.values():
                if action.to_action is not None:
                    index.setdefault(action.to_action, []).append(action.name)
            self._feeders = (len(self.actions), index)
        return index


@dataclass
class Batch:
    """What one round of scheduling changed: written to the store in one transaction."""

    new_tasks: list = field(default_factory=list)
    tasks: dict = field(default_factory=dict)        # task_id -> TaskState (updates)
    new_actions: list = field(default_factory=list)
    actions: dict = field(default_factory=dict)      # (task_id, name) -> ActionState (updates)
    new_attempts: list = field(default_factory=list)
    attempts: dict = field(default_factory=dict)     # attempt_id -> AttemptRecord (updates)
    new_works: list = field(default_factory=list)    # manager.workflows.WorkState
    works: list = field(default_factory=list)        # WorkState (updates)
    #: other controllers' rows (schedules, services): (write name in store/writes.py, row),
    #: written in this order after the rows above
    extra: list = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.new_tasks or self.tasks or self.new_actions or self.actions or self.new_attempts
                    or self.attempts or self.new_works or self.works or self.extra)
