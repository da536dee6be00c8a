"""Workflows and works (SPEC §10): configuration validation and the work state machine.

A workflow's configuration is a DAG of application *entries*; a work is one run of it.
:class:`WorkCore` is pure, like the task scheduler's core: events come in as method calls
(a work was created or recovered, an entry's task ended, a stop was asked for) and it
returns instructions (:class:`CreateTask`, :class:`StopTask`), recording every work it
changed for the round's store transaction (:meth:`WorkCore.take_changes`). It does no
I/O and reads time from an injected clock. :mod:`litepipeline.manager.workservice`
drives it inside the dispatcher's rounds, so a work step and the tasks it creates are
committed together.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from litepipeline.common import clock
from litepipeline.common.appspec import AppSpec, check_plain_name, find_cycle, parse_action
from litepipeline.common.errors import InvalidApplication, InvalidParameters, LiteError, OperationFailed
from litepipeline.common.states import Stage, Status
from litepipeline.manager.scheduler import output_data, upstream_names
from litepipeline.manager.taskstate import DAG, EVENT, ActionState, TaskState

PENDING, RUNNING, STOPPING, FINISHED = (s.value for s in (Stage.PENDING, Stage.RUNNING, Stage.STOPPING,
                                                         Stage.FINISHED))
SUCCESS, FAIL, KILL = (s.value for s in (Status.SUCCESS, Status.FAIL, Status.KILL))
EVENTS = (SUCCESS, FAIL)
CONFIG_KEYS = {"applications", "event_applications"}
ENTRY_KEYS = {"name", "app_id", "condition"}
EVENT_KEYS = {"app_id"}
MAX_ENTRIES = 1000


class WorkflowNotExists(LiteError):
    name = "WorkflowNotExists"
    http_status = 404


class WorkNotExists(LiteError):
    name = "WorkNotExists"
    http_status = 404


class WorkflowDisabled(LiteError):
    name = "WorkflowDisabled"
    http_status = 409


# -- configuration ------------------------------------------------------------------------


def _unknown_keys(raw: dict, allowed: set, where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidParameters(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                                f"(allowed: {', '.join(sorted(allowed))})")


def validate_configuration(raw: Any, app_exists: Callable[[str], bool]) -> dict:
    """A workflow configuration checked and normalised; :class:`InvalidParameters` names the rule.

    Unique entry names, ``condition`` naming known entries, existing ``app_id``s (through
    ``app_exists``), no cycle (its path named), at least one application, no unknown key.
    """
    if not isinstance(raw, dict):
        raise InvalidParameters(f"configuration must be a JSON object, got {type(raw).__name__}")
    _unknown_keys(raw, CONFIG_KEYS, "configuration")
    apps = raw.get("applications")
    if not isinstance(apps, list):
        raise InvalidParameters("configuration: 'applications' must be a list")
    if not apps:
        raise InvalidParameters("configuration: 'applications' is empty; a workflow needs at least one")
    if len(apps) > MAX_ENTRIES:
        raise InvalidParameters(f"configuration: at most {MAX_ENTRIES} applications")
    entries = []
    names: set = set()
    for index, item in enumerate(apps):
        where = f"configuration: applications[{index}]"
        if not isinstance(item, dict):
            raise InvalidParameters(f"{where} must be a JSON object")
        _unknown_keys(item, ENTRY_KEYS, where)
        try:
            name = check_plain_name(item.get("name"), f"{where} name")
        except InvalidApplication as exc:
            raise InvalidParameters(exc.message) from None
        if name in names:
            raise InvalidParameters(f"configuration: duplicate application name '{name}'")
        names.add(name)
        condition = item.get("condition")
        condition = [] if condition is None else condition
        if not isinstance(condition, list) or not all(isinstance(c, str) for c in condition):
            raise InvalidParameters(f"configuration: '{name}' condition must be a list of application names")
        if len(set(condition)) != len(condition):
            raise InvalidParameters(f"configuration: '{name}' lists a condition twice")
        entries.append({"name": name, "app_id": _app_id(item, f"configuration: '{name}'"),
                        "condition": list(condition)})
    for entry in entries:
        for upstream in entry["condition"]:
            if upstream == entry["name"]:
                raise InvalidParameters(f"configuration: '{upstream}' lists itself in its condition")
            if upstream not in names:
                raise InvalidParameters(f"configuration: '{entry['name']}' condition names unknown "
                                        f"application entry '{upstream}'")
    cycle = find_cycle({e["name"]: e["condition"] for e in entries})
    if cycle:
        raise InvalidParameters(f"configuration: applications form a cycle: {' -> '.join(cycle)}")
    events_raw = raw.get("event_applications")
    events: dict = {}
    if events_raw is not None:
        if not isinstance(events_raw, dict):
            raise InvalidParameters("configuration: 'event_applications' must be a JSON object")
        _unknown_keys(events_raw, set(EVENTS), "configuration: event_applications")
        for outcome, item in events_raw.items():
            where = f"configuration: event_applications.{outcome}"
            if not isinstance(item, dict):
                raise InvalidParameters(f"{where} must be a JSON object with an 'app_id'")
            _unknown_keys(item, EVENT_KEYS, where)
            events[outcome] = {"app_id": _app_id(item, where)}
    for app_id in [e["app_id"] for e in entries] + [e["app_id"] for e in events.values()]:
        if not app_exists(app_id):
            raise InvalidParameters(f"configuration: application {app_id} does not exist")
    return {"applications": entries, "event_applications": events}


def _app_id(item: dict, where: str) -> str:
    app_id = item.get("app_id")
    if not isinstance(app_id, str) or not app_id.strip():
        raise InvalidParameters(f"{where}: 'app_id' must be a non-empty string")
    return app_id


def config_app_ids(config: dict) -> list:
    """Every application id a (validated) configuration names, entries then events."""
    ids = [e["app_id"] for e in config["applications"]]
    ids += [e["app_id"] for e in config.get("event_applications", {}).values()]
    return list(dict.fromkeys(ids))


# -- pinned application specs -------------------------------------------------------------


def spec_to_dict(spec: AppSpec) -> dict:
    """What a work pins of one application version: its actions and named actions."""
    return {"actions": [a.to_dict() for a in spec.actions], "on_success": spec.on_success,
            "on_fail": spec.on_fail, "output_action": spec.output_action}


def spec_from_dict(data: dict) -> AppSpec:
    spec = AppSpec([parse_action(a) for a in data["actions"]], data.get("on_success"), data.get("on_fail"))
    return spec


def build_task(task_id: str, task_name: str, app_id: str, sha1: str, pinned: dict, input_data: dict,
               work_id: str, now: dt.datetime) -> TaskState:
    """A new task of one application version, as ``POST /task/create`` makes it, tied to a work."""
    spec = spec_from_dict(pinned)
    task = TaskState(task_id=task_id, task_name=task_name, application_id=app_id, app_sha1=sha1,
                     input_data=input_data, stage=PENDING, create_at=now, update_at=now,
                     on_success=spec.on_success, on_fail=spec.on_fail, work_id=work_id)
    events = {spec.on_success, spec.on_fail}
    for seq, action_spec in enumerate(spec.actions):
        kind = EVENT if action_spec.name in events else DAG
        task.actions[action_spec.name] = ActionState.from_spec(task_id, action_spec, seq, kind)
    return task


def entry_result(task: TaskState, output_action: Optional[str]) -> Any:
    """An entry's result: ``output_action``'s data, else ``{name: data}`` of the task's sinks."""
    if output_action and output_action in task.actions:
        return output_data(task.actions[output_action])
    dag = [a for a in task.actions.values() if a.kind == DAG]
    needed = set()
    for action in dag:
        needed.update(upstream_names(task, action))
    return {a.name: output_data(a) for a in dag if a.name not in needed}


# -- the state machine --------------------------------------------------------------------


@dataclass
class CreateTask:
    """Create task ``task_id`` of entry ``entry`` (or of the work's event application)."""

    work_id: str
    entry: str
    task_id: str
    task_name: str
    app_id: str
    sha1: str
    spec: dict          # the pinned spec_to_dict() of that application version
    input_data: dict
    event: bool = False


@dataclass
class StopTask:
    task_id: str
    signal: int


@dataclass
class WorkState:
    """One work: a row of ``works``. ``entries`` maps entry name → its current state
    ``{name, app_id, task_id, stage, status, result}`` (``work_info.result``)."""

    work_id: str
    name: str
    workflow_id: str
    configuration: dict          # the pinned configuration (validated)
    pinned: dict                 # app_id -> {"sha1": ..., "spec": spec_to_dict(...)}
    input_data: dict
    stage: str
    create_at: dt.datetime
    update_at: dt.datetime
    entries: dict = field(default_factory=dict)
    status: Optional[str] = None
    signal: Optional[int] = None
    message: Optional[str] = None
    event_task_id: Optional[str] = None
    start_at: Optional[dt.datetime] = None
    end_at: Optional[dt.datetime] = None

    ROW_FIELDS = ("work_id", "name", "workflow_id", "configuration", "pinned", "input_data", "stage", "status",
                  "signal", "message", "entries", "event_task_id", "create_at", "start_at", "update_at", "end_at")
    #: what an update writes (the pinned configuration and the input never change)
    CHANGING = ("stage", "status", "signal", "message", "entries", "event_task_id", "start_at", "update_at",
                "end_at")

    def to_row(self) -> dict:
        return {k: getattr(self, k) for k in self.ROW_FIELDS}

    @classmethod
    def from_row(cls, row: dict) -> WorkState:
        state = cls(**{k: row[k] for k in cls.ROW_FIELDS})
        state.entries = {k: dict(v) for k, v in (state.entries or {}).items()}
        return state

    @property
    def finished(self) -> bool:
        return self.stage == FINISHED


def new_work(work_id: str, name: str, workflow_id: str, configuration: dict, pinned: dict, input_data: dict,
             now: dt.datetime) -> WorkState:
    work = WorkState(work_id=work_id, name=name, workflow_id=workflow_id, configuration=configuration,
                     pinned=pinned, input_data=input_data, stage=PENDING, create_at=now, update_at=now)
    for entry in configuration["applications"]:
        work.entries[entry["name"]] = {"name": entry["name"], "app_id": entry["app_id"], "task_id": None,
                                       "stage": PENDING, "status": None, "result": None}
    return work


class WorkCore:
    """The unfinished works in memory, and what happens to them."""

    def __init__(self, clock_fn: Callable[[], dt.datetime] = clock.now,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self.now = clock_fn
        self.new_id = new_id
        self.works: dict[str, WorkState] = {}
        self.by_task: dict[str, tuple[str, str]] = {}   # entry task_id -> (work_id, entry name)
        self._new: dict[str, WorkState] = {}
        self._changed: dict[str, WorkState] = {}

    # -- change tracking ----------------------------------------------------------------
    def take_changes(self) -> tuple[list, list]:
        """(new works, changed works) since the last call, for the round's transaction."""
        new, changed = list(self._new.values()), [w for k, w in self._changed.items() if k not in self._new]
        self._new, self._changed = {}, {}
        return new, changed

    def _touch(self, work: WorkState) -> None:
        work.update_at = self.now()
        self._changed[work.work_id] = work

    # -- events -------------------------------------------------------------------------
    def load(self, work: WorkState) -> None:
        """Adopt an unfinished work read from the store at start."""
        self.works[work.work_id] = work
        for name, entry in work.entries.items():
            if entry.get("task_id") and entry["stage"] != FINISHED:
                self.by_task[entry["task_id"]] = (work.work_id, name)

    def create(self, work: WorkState) -> list:
        """A new work: its entries without conditions become tasks."""
        if work.work_id in self.works:
            raise OperationFailed(f"work {work.work_id} already exists")
        self.works[work.work_id] = work
        self._new[work.work_id] = work
        work.stage = RUNNING
        work.start_at = self.now()
        self._touch(work)
        return self._advance(work)

    def recover(self, work: WorkState) -> list:
        """A failed or killed work (read from the store) runs again: entries that did not
        succeed go back to pending; succeeded ones keep their task and result."""
        if work.work_id in self.works:
            raise OperationFailed(f"work {work.work_id} is {self.works[work.work_id].stage}; wait for it to end")
        if work.stage != FINISHED or work.status not in (FAIL, KILL):
            raise OperationFailed(f"work {work.work_id} is {work.stage}/{work.status}; only a failed or killed "
                                  f"work can be recovered (rerun makes a new work)")
        for entry in work.entries.values():
            if entry["status"] != SUCCESS:
                entry.update(task_id=None, stage=PENDING, status=None, result=None)
        work.stage, work.status, work.signal, work.message = RUNNING, None, None, None
        work.end_at = None
        work.event_task_id = None
        self.load(work)
        self._touch(work)
        return self._advance(work)

    def task_ended(self, task: TaskState) -> list:
        """The task of an entry ended: record its status and result, then decide what follows."""
        found = self.by_task.pop(task.task_id, None)
        if found is None:
            return []   # not an entry's task (an event application's, or a work's that ended)
        work = self.works.get(found[0])
        if work is None:
            return []
        entry = work.entries[found[1]]
        status = task.status
        result = None
        if status == SUCCESS:
            result = entry_result(task, work.pinned[entry["app_id"]]["spec"].get("output_action"))
        entry.update(stage=FINISHED, status=status, result=result)
        if status != SUCCESS and work.message is None:
            work.message = f"application entry '{entry['name']}' ended {status}"
        self._touch(work)
        return self._advance(work)

    def stop(self, work_id: str, signal: int) -> list:
        """A user's ``work stop``: stop every unfinished task; nothing new starts."""
        work = self.works.get(work_id)
        if work is None:
            raise OperationFailed(f"work {work_id} is not running")
        work.signal = signal
        if work.stage != STOPPING:
            work.stage = STOPPING
            work.message = f"stopped by user with signal {signal}"
        self._touch(work)
        stops = [StopTask(e["task_id"], signal) for e in work.entries.values() if e["stage"] == RUNNING]
        return stops + self._advance(work)

    # -- decisions ----------------------------------------------------------------------
    def _advance(self, work: WorkState) -> list:
        """Start what became ready, or end the work when nothing runs and nothing can start."""
        if work.finished:
            return []
        entries = work.entries
        failed = any(e["stage"] == FINISHED and e["status"] != SUCCESS for e in entries.values())
        out: list = []
        if work.stage == RUNNING and not failed:
            for conf in work.configuration["applications"]:
                entry = entries[conf["name"]]
                if entry["stage"] != PENDING:
                    continue
                if all(entries[u]["status"] == SUCCESS for u in conf["condition"]):
                    out.append(self._start_entry(work, conf))
        if any(e["stage"] == RUNNING for e in entries.values()):
            return out
        if work.stage == STOPPING:
            status = KILL
        elif failed:
            statuses = {e["status"] for e in entries.values() if e["stage"] == FINISHED}
            status = FAIL if FAIL in statuses else KILL
        elif all(e["status"] == SUCCESS for e in entries.values()):
            status = SUCCESS
        else:   # cannot happen with a validated (acyclic) configuration: say so instead of hanging
            status = FAIL
            work.message = "no application entry can start"
        return out + self._end(work, status)

    def _start_entry(self, work: WorkState, conf: dict) -> CreateTask:
        entry = work.entries[conf["name"]]
        task_id = self.new_id()
        entry.update(task_id=task_id, stage=RUNNING, status=None, result=None)
        self.by_task[task_id] = (work.work_id, conf["name"])
        data = dict(work.input_data)
        for upstream in conf["condition"]:
            data[upstream] = work.entries[upstream]["result"]
        self._touch(work)
        pin = work.pinned[conf["app_id"]]
        return CreateTask(work.work_id, conf["name"], task_id, f"{work.name}/{conf['name']}", conf["app_id"],
                          pin["sha1"], pin["spec"], data)

    def _end(self, work: WorkState, status: str) -> list:
        work.stage = FINISHED
        work.status = status
        work.end_at = self.now()
        if status == SUCCESS:
            work.message = None
        self._touch(work)
        del self.works[work.work_id]
        out = []
        event = work.configuration.get("event_applications", {}).get(status)
        if event is not None:
            task_id = self.new_id()
            work.event_task_id = task_id
            results = {name: e["result"] for name, e in work.entries.items() if e["status"] == SUCCESS}
            data = {**work.input_data, "work_id": work.work_id, "work_status": status, "results": results}
            pin = work.pinned[event["app_id"]]
            out.append(CreateTask(work.work_id, status, task_id, f"{work.name}/event_{status}", event["app_id"],
                                  pin["sha1"], pin["spec"], data, event=True))
        return out

