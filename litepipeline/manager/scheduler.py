"""The scheduler's core: a pure state machine over unfinished tasks and live nodes.

Events come in as method calls (a task was created, a node reported, a node joined or
left, a stop was requested, time passed); the core updates its in-memory state, records
every change in a :class:`Batch` for the store, and returns instructions (dispatch this
action to that node, stop that attempt). It does no I/O and takes an injectable clock, so
it is tested without network or database (see tests/unit/test_scheduler.py). The driver
(:mod:`litepipeline.manager.dispatcher`) persists each batch *before* carrying out the
instructions, which is what makes a manager crash at any moment recoverable.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from litepipeline.common import clock
from litepipeline.common.appspec import MAX_ACTIONS, ActionSpec, check_dag, is_venv_id, parse_action
from litepipeline.common.errors import InvalidApplication, OperationFailed, StaleAttempt, TaskAlreadyFinished, TaskNotExists
from litepipeline.common.messages import HeldAttempt, Report, RunAction
from litepipeline.common.states import AttemptState, Stage, Status
from litepipeline.manager.placement import NO_FACTS, FreeNodes, NodeFacts
from litepipeline.manager.taskstate import DAG, EVENT, ActionState, AttemptRecord, Batch, TaskState

LOG = logging.getLogger(__name__)
PENDING, RUNNING, STOPPING, FINISHED = (s.value for s in (Stage.PENDING, Stage.RUNNING, Stage.STOPPING,
                                                         Stage.FINISHED))
SUCCESS, FAIL, KILL = (s.value for s in (Status.SUCCESS, Status.FAIL, Status.KILL))
MAX_RETRY_DELAY = 300.0
STOP_RESEND = 5.0   # seconds between re-sent stop requests of a task still stopping
# what a node lists of an attempt whose process has ended (its report not yet acknowledged)
ENDED_ON_NODE = frozenset((AttemptState.FINISHED.value, AttemptState.REPORTING.value))


@dataclass
class Dispatch:
    """Send ``message`` to the node (a RUN frame or ``POST /action/run``)."""

    node_id: str
    message: RunAction


@dataclass
class Stop:
    """Send ``PUT /action/stop`` for one attempt on a node."""

    node_id: str
    task_id: str
    name: str
    attempt_id: Optional[str]
    signal: int


@dataclass
class NodeSlots:
    """A live node's capacity and the attempts occupying it; the one owner of node slots.

    Times are the core's monotonic clock (seconds).
    """

    node_id: str
    slots: int
    busy: dict = field(default_factory=dict)   # attempt_id -> when it started occupying a slot
    suspended_until: Optional[float] = None
    draining: bool = False                     # shutting down: it takes nothing new
    facts: NodeFacts = NO_FACTS                # labels, platform, address: what targets match

    def free(self, mono: float) -> int:
        if self.draining or (self.suspended_until is not None and mono < self.suspended_until):
            return 0
        return self.slots - len(self.busy)


def upstream_names(task: TaskState, action: ActionState) -> list[str]:
    """What ``action`` waits for: its condition plus generated actions aimed at it.

    Uses the task's index of ``to_action`` edges, so a round over a DAG of n actions
    costs O(n + edges), not O(n²).
    """
    feeders = task.feeders().get(action.name)
    if not feeders:
        return list(action.condition)
    names = list(action.condition)
    seen = set(names)
    names.extend(n for n in feeders if n not in seen)
    return names


def output_data(action: ActionState) -> Any:
    output = action.output if isinstance(action.output, dict) else {}
    return output.get("data", {})


def action_input(task: TaskState, action: ActionState) -> dict:
    """The ``input_data`` an action is dispatched with (SPEC §7)."""
    if action.kind == EVENT:
        # the task's own input too, as 0.1.5 gave it: a notifier must know whom to tell (SPEC §13a)
        return {**action.input_data, **task.input_data, "task_id": task.task_id, "task_status": task.status,
                "task_message": task.message, "results": {a.name: output_data(a) for a in task.actions.values()
                                                          if a.kind == DAG and a.succeeded}}
    upstream = upstream_names(task, action)
    if not upstream:
        if action.parent is None:
            return {**action.input_data, **task.input_data}
        return dict(action.input_data)
    data = dict(action.input_data)
    for name in upstream:
        data[name] = output_data(task.actions[name])
    return data


class SchedulerCore:
    """Decides what runs where; owns the in-memory view of unfinished tasks and nodes."""

    def __init__(self, clock_fn: Callable[[], dt.datetime] = clock.now, max_generated_actions: int = 1000,
                 recovery_timeout: float = 30.0, lost_grace: float = 3.0,
                 monotonic: Callable[[], float] = time.monotonic, max_actions: int = MAX_ACTIONS) -> None:
        # two clocks: wall time only for the timestamps shown and stored; every duration
        # (retry delays, grace periods, the recovery timeout) on the monotonic one, which
        # an NTP step or a DST change does not move
        self.now = clock_fn
        self.mono = monotonic
        self.max_generated_actions = max_generated_actions
        self.max_actions = max_actions
        self.recovery_timeout = recovery_timeout
        self.lost_grace = lost_grace
        self.tasks: dict[str, TaskState] = {}
        self.nodes: dict[str, NodeSlots] = {}
        self.started_at = clock_fn()
        self.started_mono = monotonic()
        self._order = 0
        self._batch = Batch()
        self._new_ids: set[int] = set()
        self._attempts: dict[str, AttemptRecord] = {}   # open attempt history rows by attempt_id
        # running attempts by id and by node: a heartbeat costs O(that node's attempts)
        self._running_ids: dict[str, ActionState] = {}
        self._on_node: dict[str, dict[str, ActionState]] = {}
        self._dispatched: dict[str, float] = {}           # attempt_id -> when this process sent it
        self._stop_sent: dict[str, float] = {}            # task_id -> when its stop was last sent
        self._retry_due: dict[tuple, float] = {}          # (task_id, name) -> when its retry is due
        # tasks that may hold an action waiting for its retry: next_wakeup() looks at these only
        self._retrying: set[str] = set()
        #: told of every task of a work that ends (the work controller decides what follows)
        self.on_task_end: Optional[Callable[[TaskState], None]] = None
        #: the active SHA-1 of a venv id, or None (set by the manager's Versions): pins a
        #: generated action whose env names a venv
        self.venv_sha1: Callable[[str], Optional[str]] = lambda venv_id: None
        # dropped nodes whose actions may still run until then: node_id -> (until (monotonic), reason)
        self._held: dict[str, tuple[float, str]] = {}
        #: the pending tasks kept in the store beyond the window (manager/backlog.py), or None
        self.backlog: Optional[Any] = None
        #: pending tasks the last schedule() could place nowhere while slots were free:
        #: their ready actions' targets allow only busy or absent nodes (the backlog does
        #: not count them toward its window, so they cannot hold newer tasks back)
        self.unplaced = 0
        #: those tasks, oldest first (the backlog parks the newest of them past its bound)
        self.unplaced_tasks: list[TaskState] = []
        #: node_id -> free slots left when the last schedule() ended (empty: none left); a
        #: node here had nothing in memory to take, so tasks parked for it can come back
        self.free_after: dict[str, int] = {}

    # -- change tracking ----------------------------------------------------------------
    def take_batch(self) -> Batch:
        """Everything changed since the last call, for one store transaction."""
        batch, self._batch, self._new_ids = self._batch, Batch(), set()
        return batch

    def record(self, write: str, row: Any) -> None:
        """Another controller's row (a fire, a service's state): written in this round's
        transaction, with the tasks it creates (``write``: a name in store/writes.py)."""
        self._batch.extra.append((write, row))

    def _touch_task(self, task: TaskState) -> None:
        task.update_at = self.now()
        if id(task) not in self._new_ids:
            self._batch.tasks[task.task_id] = task

    def _touch(self, action: ActionState) -> None:
        if id(action) not in self._new_ids:
            self._batch.actions[(action.task_id, action.name)] = action

    def _new_action(self, action: ActionState) -> None:
        self._new_ids.add(id(action))
        self._batch.new_actions.append(action)

    def _touch_attempt(self, record: AttemptRecord) -> None:
        if id(record) not in self._new_ids:
            self._batch.attempts[record.attempt_id] = record

    # -- loading ------------------------------------------------------------------------
    def load(self, task: TaskState) -> None:
        """Adopt a task read from the store at start (no batch entry: it is already stored)."""
        self._order += 1
        task.order = self._order
        self.tasks[task.task_id] = task
        for action in task.actions.values():
            if action.retry_at is not None:
                self._retrying.add(task.task_id)
            if action.stage == RUNNING and action.attempt_id:
                self._attempts[action.attempt_id] = AttemptRecord(
                    action.attempt_id, task.task_id, action.name, action.attempt, action.node_id,
                    action.dispatched_at or self.now(), action.start_at)
                self._index(action)

    def add_task(self, task: TaskState) -> None:
        """A newly created task (with its actions) — recorded as new rows; kept in memory
        unless the backlog takes it (then only its rows are written)."""
        if self.backlog is not None and self.backlog.takes_new(task):
            self._new_ids.add(id(task))
            self._batch.new_tasks.append(task)
            for action in task.actions.values():
                self._new_action(action)
            return
        self.load(task)
        self._new_ids.add(id(task))
        self._batch.new_tasks.append(task)
        for action in task.actions.values():
            self._new_action(action)

    # -- nodes --------------------------------------------------------------------------
    def node_up(self, node_id: str, running: Iterable[HeldAttempt], registering: bool,
                slots: Optional[int] = None, draining: bool = False,
                facts: Optional[NodeFacts] = None) -> list[Stop]:
        """A node registered (``registering``, with its ``slots`` and placement ``facts``) or
        sent a heartbeat listing its attempts; a ``draining`` node (shutting down) is sent
        nothing new.

        Reconciles: attempts the node holds that the manager doesn't expect are stopped;
        attempts the manager expects there but the node doesn't hold are re-queued (after a
        grace period covering dispatches still in flight).
        """
        mono = self.mono()
        self._held.pop(node_id, None)   # back: reconciliation below settles its attempts
        node = self.nodes.get(node_id)
        if node is None:
            if slots is None:   # a heartbeat of a node dropped meanwhile: its REGISTER comes next
                return []
            node = self.nodes[node_id] = NodeSlots(node_id, slots)
        if slots is not None:
            node.slots = slots
        if facts is not None:
            node.facts = facts
        node.draining = draining
        held = {entry.attempt_id: entry for entry in running if entry.attempt_id}
        stops = []
        expected = self._expected_on(node_id)
        for attempt_id, entry in held.items():
            action = expected.get(attempt_id)
            if action is None and entry.state in ENDED_ON_NODE:
                # its process has ended and its report, sent before this heartbeat was
                # answered, has been applied: no slot to count, nothing to stop
                continue
            node.busy.setdefault(attempt_id, mono)
            if action is not None:
                task = self.tasks[action.task_id]
                if registering and task.stage == STOPPING:
                    # the stop may have been decided by a manager that died before sending it
                    stops.append(Stop(node_id, task.task_id, action.name, attempt_id, task.signal or -15))
            else:
                stops.append(Stop(node_id, str(entry.task_id), str(entry.name), attempt_id, -9))
        for attempt_id, action in expected.items():
            if attempt_id in held:
                continue
            # An attempt dispatched by an earlier manager process cannot be in flight any
            # more: a node without it has lost it. One dispatched by this process may still
            # be on its way to the node, so it gets a grace period.
            sent = self._dispatched.get(attempt_id)
            if sent is None or mono - sent > self.lost_grace:
                node.busy.pop(attempt_id, None)
                self._lost(action, f"node {node_id} no longer holds attempt {attempt_id}")
        for attempt_id in list(node.busy):
            if attempt_id not in held and attempt_id not in expected:
                del node.busy[attempt_id]   # an unexpected attempt the node has since dropped
        return stops

    def node_down(self, node_id: str, reason: str, hold: float = 0.0) -> None:
        """A node's connection closed or its heartbeats stopped: re-queue its work, after
        ``hold`` seconds (the time the node may still run it: its lease) unless it is back."""
        self.nodes.pop(node_id, None)
        if hold > 0:
            self._held[node_id] = (self.mono() + hold, reason)
            return
        self._held.pop(node_id, None)
        for action in list(self._expected_on(node_id).values()):
            self._lost(action, f"node {node_id} lost: {reason}")

    def running_count(self) -> int:
        """Attempts running now (all nodes)."""
        return len(self._running_ids)

    def unfinished(self, task_id: Optional[str]) -> bool:
        """Whether ``task_id`` is unfinished: in memory, or waiting in the backlog."""
        task = self.tasks.get(task_id) if task_id else None
        if task is not None:
            return not task.finished
        return bool(task_id) and self.backlog is not None and task_id in self.backlog

    def _expected_on(self, node_id: str) -> dict[str, ActionState]:
        """The running attempts the manager placed on ``node_id`` (a copy)."""
        return dict(self._on_node.get(node_id, ()))

    def _index(self, action: ActionState) -> None:
        self._running_ids[action.attempt_id] = action
        self._on_node.setdefault(action.node_id, {})[action.attempt_id] = action

    def _unindex(self, action: ActionState) -> None:
        attempt_id = action.attempt_id
        self._running_ids.pop(attempt_id, None)
        self._dispatched.pop(attempt_id, None)
        on_node = self._on_node.get(action.node_id)
        if on_node is not None:
            on_node.pop(attempt_id, None)
            if not on_node:
                del self._on_node[action.node_id]

    def _lost(self, action: ActionState, reason: str) -> None:
        """The attempt cannot report any more: run the action again (or end it if stopping)."""
        task = self.tasks[action.task_id]
        LOG.warning("task %s action %s attempt %s: %s", task.task_id, action.name, action.attempt, reason)
        self._close_attempt(action, None, None, "lost", reason)
        if task.stage == STOPPING or (task.finished and action.kind == DAG):
            self._finish_action(action, KILL, reason)
            self._maybe_finish(task)
            return
        action.back_to_pending(reason)
        self._touch(action)

    def dispatch_failed(self, attempt_id: str, node_id: str, reason: str, node_full: bool) -> None:
        """The node refused or could not be reached for a dispatch: put the action back."""
        node = self.nodes.get(node_id)
        if node is not None:
            node.busy.pop(attempt_id, None)
            # don't hammer a node that said no; its next heartbeat or report lifts this
            node.suspended_until = self.mono() + (1.0 if node_full else 2.0)
        action = self._running_ids.get(attempt_id)
        if action is not None and action.stage == RUNNING:
            self._lost(action, f"dispatch to node {node_id} failed: {reason}")

    # -- reports ------------------------------------------------------------------------
    def report(self, report: Report) -> list[Stop]:
        """A node's ``PUT /action/update``; raises :class:`StaleAttempt` for a fenced attempt.

        A finished report for the attempt already recorded is accepted again without
        effect (the node retries until it hears back).
        """
        task_id, name, attempt_id = report.task_id, report.name, report.attempt_id
        stage = report.stage
        node = self.nodes.get(report.node_id or "")
        if node is not None:
            node.suspended_until = None
            if stage == FINISHED:
                node.busy.pop(attempt_id, None)
        task = self.tasks.get(task_id)
        action = task.actions.get(name) if task else None
        if action is None:
            raise StaleAttempt(f"task {task_id} has no unfinished action '{name}' (attempt {attempt_id})")
        if action.attempt_id != attempt_id:
            raise StaleAttempt(f"attempt {attempt_id} of action '{name}' in task {task_id} is not current")
        if action.stage != RUNNING:
            if stage == FINISHED and action.finished:
                return []   # a repeated delivery of a report already recorded
            raise StaleAttempt(f"action '{name}' of task {task_id} is not running (attempt {attempt_id})")
        if stage == RUNNING:
            action.start_at = clock.parse(report.start_at) or action.start_at or self.now()
            self._touch(action)
            return []
        if stage != FINISHED:
            raise StaleAttempt(f"report stage must be running or finished, got {stage!r}")
        action.start_at = clock.parse(report.start_at) or action.start_at
        action.end_at = clock.parse(report.end_at) or self.now()
        action.returncode = report.returncode
        action.output = report.result if isinstance(report.result, dict) else {}
        status = report.status
        message = report.message or None
        if status not in (SUCCESS, FAIL, KILL):
            status, message = FAIL, f"node reported unknown status {status!r}"
        if status == SUCCESS and task.stage == RUNNING and action.kind == DAG:
            try:
                self._add_generated(task, action)
            except InvalidApplication as exc:
                status, message = FAIL, f"generated actions rejected: {exc.message}"
        self._close_attempt(action, status, action.returncode, status, message)
        return self._after_result(task, action, status, message)

    def _close_attempt(self, action: ActionState, status: Optional[str], returncode: Optional[int],
                       history_status: str, message: Optional[str]) -> None:
        if action.attempt_id:
            self._unindex(action)
        record = self._attempts.get(action.attempt_id) if action.attempt_id else None
        if record is not None:
            record.status = history_status
            record.returncode = returncode
            record.message = message
            record.start_at = action.start_at
            record.end_at = action.end_at if status else self.now()
            self._touch_attempt(record)
            del self._attempts[action.attempt_id]

    def _after_result(self, task: TaskState, action: ActionState, status: str, message: Optional[str]) -> list:
        if status == SUCCESS:
            self._finish_action(action, SUCCESS, message)
            self._maybe_finish(task)
            return []
        if action.kind == EVENT:
            self._finish_action(action, status, message)
            self._maybe_finish(task)
            return []
        if status == FAIL and task.stage == RUNNING and action.attempt <= action.retries:
            delay = min(action.retry_delay * (2 ** (action.attempt - 1)), MAX_RETRY_DELAY)
            LOG.info("task %s action %s failed attempt %d; retry in %.1fs", task.task_id, action.name,
                     action.attempt, delay)
            # the failed attempt's times, return code and output stay visible until the retry
            action.back_to_pending(message, self.now() + dt.timedelta(seconds=delay), keep_times=True)
            self._retry_due[(task.task_id, action.name)] = self.mono() + delay
            self._retrying.add(task.task_id)
            self._touch(action)
            return []
        self._finish_action(action, status, message)
        if task.stage == RUNNING:
            reason = f"action '{action.name}' {'was killed' if status == KILL else 'failed'}"
            if message:
                reason += f": {message}"
            return self._end_task(task, FAIL, reason, signal=-15)
        self._maybe_finish(task)
        return []

    def _finish_action(self, action: ActionState, status: str, message: Optional[str]) -> None:
        action.stage = FINISHED
        action.status = status
        action.message = message
        action.retry_at = None
        if action.end_at is None and action.start_at is not None:
            action.end_at = self.now()
        self._touch(action)

    def _add_generated(self, task: TaskState, parent: ActionState) -> None:
        raw = (parent.output or {}).get("actions") or []
        if not isinstance(raw, list):
            raise InvalidApplication("'actions' in output.data must be a list")
        if not raw:
            return
        where = f"output.data of '{parent.name}'"
        specs = [parse_action(item, where) for item in raw]
        generated = sum(1 for a in task.actions.values() if a.parent is not None)
        if generated + len(specs) > self.max_generated_actions:
            raise InvalidApplication(f"a task may generate at most {self.max_generated_actions} actions")
        if len(task.actions) + len(specs) > self.max_actions:
            raise InvalidApplication(f"a task may hold at most {self.max_actions} actions, generated ones "
                                     f"included ({len(task.actions)} + {len(specs)} generated)")
        existing = {a.name for a in task.actions.values()}
        for spec in specs:
            if spec.name in existing:
                raise InvalidApplication(f"{where}: action name '{spec.name}' already exists in the task")
            target = spec.to_action
            if target is not None and target in task.actions:
                if task.actions[target].stage != PENDING or task.actions[target].kind != DAG:
                    raise InvalidApplication(f"{where}: to_action '{target}' has already started")
        # check the whole task's graph with the new actions: names, conditions, cycles
        current = [ActionSpec(a.name, a.main, list(a.condition), to_action=a.to_action)
                   for a in task.actions.values() if a.kind == DAG]
        check_dag(current + specs, where)
        seq = max((a.seq for a in task.actions.values()), default=0)
        for spec in specs:
            seq += 1
            action = ActionState.from_spec(task.task_id, spec, seq, DAG, parent=parent.name)
            action.env_sha1 = self._pin_venv(task, action, where)
            task.actions[action.name] = action
            self._new_action(action)

    def _pin_venv(self, task: TaskState, action: ActionState, where: str) -> Optional[str]:
        """A generated action naming a venv runs the version the task pinned for it, else the
        venv's active one."""
        if not is_venv_id(action.env):
            return None
        pinned = next((a.env_sha1 for a in task.actions.values() if a.env == action.env and a.env_sha1), None)
        sha1 = pinned or self.venv_sha1(action.env)
        if sha1 is None:
            raise InvalidApplication(f"{where}: action '{action.name}' env names venv {action.env}, "
                                     "which does not exist")
        return sha1

    # -- task ends ----------------------------------------------------------------------
    def _running(self, task: TaskState) -> list[ActionState]:
        return [a for a in task.actions.values() if a.stage == RUNNING]

    def _maybe_finish(self, task: TaskState) -> None:
        dag = [a for a in task.actions.values() if a.kind == DAG]
        if task.stage == RUNNING and all(a.succeeded for a in dag):
            self._end_task(task, SUCCESS, None)
        elif task.stage == STOPPING and not any(a.stage == RUNNING and a.kind == DAG for a in dag):
            self._end_task(task, KILL, task.message)
        self._maybe_forget(task)

    def _end_task(self, task: TaskState, status: str, message: Optional[str], signal: int = -15) -> list[Stop]:
        """Finish ``task``; stop its running DAG actions; queue its event action."""
        stops = []
        for action in self._running(task):
            if action.kind != DAG:
                continue
            stops.append(Stop(action.node_id, task.task_id, action.name, action.attempt_id, signal))
            self._close_attempt(action, KILL, None, KILL, message)
            self._finish_action(action, KILL, f"stopped: {message}" if message else "stopped")
        task.stage = FINISHED
        task.status = status
        task.message = message
        task.end_at = self.now()
        self._touch_task(task)
        if task.work_id and self.on_task_end is not None:
            self.on_task_end(task)
        event = task.on_success if status == SUCCESS else task.on_fail if status == FAIL else None
        if event and event in task.actions and task.actions[event].attempt == 0:
            task.actions[event].retry_at = None
        self._maybe_forget(task)
        return stops

    def _maybe_forget(self, task: TaskState) -> None:
        if task.finished and not any(a.stage == RUNNING for a in task.actions.values()) \
                and self._pending_event(task) is None:
            self.tasks.pop(task.task_id, None)
            self._stop_sent.pop(task.task_id, None)
            for action in task.actions.values():
                self._retry_due.pop((task.task_id, action.name), None)

    def _pending_event(self, task: TaskState) -> Optional[ActionState]:
        name = task.on_success if task.status == SUCCESS else task.on_fail if task.status == FAIL else None
        action = task.actions.get(name) if name else None
        if action is not None and action.stage == PENDING:
            return action
        return None

    def stop_task(self, task_id: str, signal: int) -> list[Stop]:
        """A user's ``task stop``: signal every running action; finish when they are gone."""
        task = self.tasks.get(task_id)
        if task is None and self.backlog is not None and task_id in self.backlog:
            self.backlog.defer_stop(task_id, signal)   # admitted and stopped in the next round
            return []
        if task is None:
            raise TaskNotExists(f"task {task_id} is not running")
        if task.finished:
            raise TaskAlreadyFinished(f"task {task_id} is already finished")
        if task.stage == STOPPING:   # a second stop, e.g. -9 after -15: signal again
            task.signal = signal
            self._touch_task(task)
            return [Stop(a.node_id, task.task_id, a.name, a.attempt_id, signal)
                    for a in self._running(task) if a.kind == DAG]
        task.signal = signal
        task.message = f"stopped by user with signal {signal}"
        running = [a for a in self._running(task) if a.kind == DAG]
        if not running:
            return self._end_task(task, KILL, task.message)
        task.stage = STOPPING
        self._stop_sent[task_id] = self.mono()
        self._touch_task(task)
        return [Stop(a.node_id, task.task_id, a.name, a.attempt_id, signal) for a in running]

    def fail_unstorable(self, problems: dict) -> list[Stop]:
        """Tasks whose rows the store refused (task_id -> why): end them ``fail``.

        Their rows were cleaned by the caller; every other task goes on as decided."""
        stops = []
        for task_id, message in problems.items():
            task = self.tasks.get(task_id)
            if task is None:
                continue   # already finished and forgotten: the cleaned rows are all there is
            message = f"cannot be stored: {message}"
            if task.finished:
                task.message = message
                self._touch_task(task)
            else:
                stops.extend(self._end_task(task, FAIL, message, signal=-9))
            self._maybe_forget(task)
        return stops

    def remove_task(self, task_id: str) -> None:
        """Forget a task being deleted; refused while any of its actions runs."""
        task = self.tasks.get(task_id)
        if task is None:
            if self.backlog is not None:
                self.backlog.discard(task_id)
            return
        if task.stage in (RUNNING, STOPPING) or self._running(task):
            raise OperationFailed(f"task {task_id} is {task.stage}; stop it first")
        del self.tasks[task_id]

    def unload(self, task_id: str) -> Optional[TaskState]:
        """Drop a pending task from memory, its rows left as stored (the backlog parks it
        there); None, and nothing dropped, when it is not a pending task with no action
        running or when this round has changes not yet written."""
        task = self.tasks.get(task_id)
        if task is None or task.stage != PENDING or self._batch or self._running(task):
            return None
        del self.tasks[task_id]
        self._stop_sent.pop(task_id, None)
        self._retrying.discard(task_id)
        for action in task.actions.values():
            self._retry_due.pop((task_id, action.name), None)
        return task

    def ready_targets(self, task: TaskState) -> list[dict]:
        """The distinct targets of ``task``'s ready actions (None for an action without one)."""
        out: list = []
        for action in self._ready(task, self.mono()):
            if action.target not in out:
                out.append(action.target)
        return out

    def recover(self, task: TaskState) -> None:
        """A user's ``task recover``: run a failed or killed ``task`` (read from the store) again in place.

        DAG actions that succeeded keep their outputs; every other action (failed, killed,
        never run, generated ones included, and the event actions) goes back to pending with
        its attempt counter kept and its attempt, node and result cleared. The task goes back
        to pending. The attempts history is not touched. Refused while the task is still in
        memory (e.g. its on_fail action runs) or when it did not end ``fail``/``kill``.
        """
        if task.task_id in self.tasks:
            raise OperationFailed(f"task {task.task_id} is still active; wait for its actions to end")
        if task.stage != FINISHED or task.status not in (FAIL, KILL):
            raise OperationFailed(f"task {task.task_id} is {task.stage}/{task.status}; only a failed or "
                                  f"killed task can be recovered")
        again = [a for a in task.actions.values() if not (a.kind == DAG and a.succeeded)]
        if not any(a.kind == DAG for a in again):
            raise OperationFailed(f"every action of task {task.task_id} succeeded; nothing to recover")
        for action in again:
            action.back_to_pending()
        task.ready = None
        task.stage = PENDING
        task.status = None
        task.signal = None
        task.message = None
        task.end_at = None
        self.load(task)
        self._touch_task(task)
        for action in again:
            self._touch(action)

    # -- dispatch -----------------------------------------------------------------------
    def _retry_wait(self, action: ActionState, mono: float) -> float:
        """Seconds until ``action``'s retry is due (0: now). A retry loaded from the store
        has only its wall time: what was left of it then counts from the load."""
        key = (action.task_id, action.name)
        due = self._retry_due.get(key)
        if due is None:
            left = (action.retry_at - self.now()).total_seconds()
            due = self._retry_due[key] = mono + min(max(left, 0.0), MAX_RETRY_DELAY)
        return max(due - mono, 0.0)

    def _ready(self, task: TaskState, mono: float) -> list[ActionState]:
        if task.finished:
            event = self._pending_event(task)
            return [event] if event is not None else []
        if task.stage not in (PENDING, RUNNING):
            return []
        if task.stage == PENDING and task.ready is not None:
            return task.ready
        ready = []
        actions = task.actions
        blockers = task.blockers
        timed = False
        for action in actions.values():
            if action.stage != PENDING or action.kind != DAG:
                continue
            if action.retry_at is not None and self._retry_wait(action, mono) > 0:
                timed = True
                continue
            # the upstream that held this action back last time, checked first: a round over
            # a long chain then costs one lookup per waiting action, not a walk of its upstreams
            blocker = actions.get(blockers.get(action.name, ""))
            if blocker is not None and not (blocker.stage == FINISHED and blocker.status == SUCCESS):
                continue
            for name in upstream_names(task, action):
                upstream = actions[name]
                if not (upstream.stage == FINISHED and upstream.status == SUCCESS):
                    blockers[action.name] = name
                    break
            else:
                ready.append(action)
        ready.sort(key=lambda a: a.seq)
        if task.stage == PENDING and not timed:
            # nothing of a task that has not started changes until it does (or is stopped,
            # recovered): kept, so a round over thousands of tasks no free node can take
            # does not work each one's DAG out again
            task.ready = ready
        return ready

    def schedule(self) -> list[Dispatch]:
        """Match ready actions to nodes with free slots, oldest task first, spreading load."""
        mono = self.mono()
        free = {n.node_id: n.free(mono) for n in self.nodes.values()}
        free = {k: v for k, v in free.items() if v > 0}
        out: list[Dispatch] = []
        # counted only by a scan that ends with slots still free
        self.unplaced, self.unplaced_tasks, self.free_after = 0, [], {}
        if not free:
            return out
        now = self.now()
        placed: Optional[FreeNodes] = None   # built for the round's first action with a target
        # targets no free node allows, this round (by identity: the tasks of one application
        # share their actions' targets); nodes only leave `free` during a round, so it holds
        nowhere: set[int] = set()
        unplaced: list[TaskState] = []
        for task in list(self.tasks.values()):   # insertion order is creation order: FIFO
            skipped = False
            for action in self._ready(task, mono):
                if action.target is None:
                    node_id = max(free, key=lambda k: (free[k], -len(self.nodes[k].busy)))
                else:   # only nodes its target allows; none free: it waits, the others go on
                    if id(action.target) in nowhere:
                        skipped = True
                        continue
                    if placed is None:
                        placed = FreeNodes(free, self.nodes)
                    fits = placed.allowed(action.target)
                    if not fits:
                        nowhere.add(id(action.target))
                        skipped = True
                        continue
                    node_id = max(fits, key=lambda k: (free[k], -len(self.nodes[k].busy)))
                out.append(self._dispatch(task, action, node_id, now))
                free[node_id] -= 1
                if free[node_id] == 0:
                    del free[node_id]
                if not free:
                    return out
            if skipped and task.stage == PENDING:
                unplaced.append(task)
        self.unplaced, self.unplaced_tasks, self.free_after = len(unplaced), unplaced, free
        return out

    def _dispatch(self, task: TaskState, action: ActionState, node_id: str, now: dt.datetime) -> Dispatch:
        action.attempt += 1
        action.attempt_id = str(uuid.uuid4())
        action.node_id = node_id
        action.stage = RUNNING
        action.status = None
        action.dispatched_at = now
        action.retry_at = None
        self._retry_due.pop((task.task_id, action.name), None)
        action.start_at = None
        action.end_at = None
        action.returncode = None
        action.output = None
        self._touch(action)
        record = AttemptRecord(action.attempt_id, task.task_id, action.name, action.attempt, node_id, now)
        self._attempts[action.attempt_id] = record
        self._new_ids.add(id(record))
        self._batch.new_attempts.append(record)
        mono = self.mono()
        self.nodes[node_id].busy[action.attempt_id] = mono
        self._index(action)
        self._dispatched[action.attempt_id] = mono
        if task.stage == PENDING:
            task.stage = RUNNING
            task.start_at = now
            self._touch_task(task)
        message = RunAction(name=action.name, main=action.main, task_id=task.task_id, app_id=task.application_id,
                            app_sha1=task.app_sha1, attempt_id=action.attempt_id, attempt=action.attempt,
                            env=action.env, condition=list(action.condition),
                            input_data=action_input(task, action), timeout=action.timeout,
                            # a venv of its own: the node fetches it by id and SHA-1
                            venv_id=action.env if action.env_sha1 else None, venv_sha1=action.env_sha1 or None)
        return Dispatch(node_id, message)

    # -- time ---------------------------------------------------------------------------
    def tick(self) -> list[Stop]:
        """The repair sweep: attempts on nodes that never came back after a restart, and
        stop requests that may have been lost (re-sent every ``STOP_RESEND`` seconds)."""
        mono = self.mono()
        stops = []
        for task in list(self.tasks.values()):
            if task.stage != STOPPING:
                continue
            last = self._stop_sent.get(task.task_id)
            if last is not None and mono - last < STOP_RESEND:
                continue
            self._stop_sent[task.task_id] = mono
            if last is None:
                continue    # the first stop was just sent by stop_task
            stops.extend(Stop(a.node_id, task.task_id, a.name, a.attempt_id, task.signal or -15)
                         for a in self._running(task) if a.kind == DAG and a.node_id in self.nodes)
        for node_id, (until, reason) in list(self._held.items()):
            if mono >= until:   # its lease has run out: the node has stopped them itself
                del self._held[node_id]
                for action in list(self._expected_on(node_id).values()):
                    self._lost(action, f"node {node_id} lost: {reason}")
        if mono - self.started_mono < self.recovery_timeout:
            return stops
        for node_id in [n for n in self._on_node if n not in self.nodes and n not in self._held]:
            for action in list(self._expected_on(node_id).values()):
                self._lost(action, f"node {node_id} did not come back")
        return stops

    def next_wakeup(self) -> Optional[float]:
        """Seconds until the earliest pending retry, so the driver can wake exactly then."""
        mono = self.mono()
        waits = []
        for task_id in list(self._retrying):
            task = self.tasks.get(task_id)
            waiting = [self._retry_wait(a, mono) for a in task.actions.values()
                       if a.stage == PENDING and a.retry_at is not None] if task is not None else []
            if waiting:
                waits.extend(waiting)
            else:   # its retries were dispatched or it ended: forget it
                self._retrying.discard(task_id)
        return min(waits) if waits else None

