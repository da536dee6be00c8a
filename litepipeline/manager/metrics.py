"""The manager's Prometheus metrics (``GET /metrics``, SPEC §14): one registry, one owner.

Two kinds of numbers, so the scheduling path stays cheap:

- *events* (tasks, actions and attempts that ended, their durations, dispatch-to-start
  latency, store commits, HTTP requests) are counted as they happen: the dispatcher hands
  every committed round's :class:`~litepipeline.manager.taskstate.Batch` to
  :meth:`ManagerMetrics.saved`, which looks only at the rows that round changed;
- *state* (tasks by stage, pending actions, nodes, slots) is read from the scheduler core
  when Prometheus scrapes (:class:`StateCollector`): nothing is kept up to date per event.

Durations come from the attempt rows' timestamps: ``start_at``/``end_at`` as the node
reported them, ``dispatched_at`` from the manager's clock when it sent the dispatch (so
dispatch-to-start across machines is as good as their clock sync; below zero counts as 0).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterator, Optional

from litepipeline.common.httpmetrics import HttpMetrics, exposition_text
from litepipeline.common.states import Stage
from litepipeline.common.tallies import Buckets, Tally, TallyCollector
from litepipeline.manager.taskstate import DAG

FINISHED, RUNNING, PENDING, STOPPING = (s.value for s in (Stage.FINISHED, Stage.RUNNING, Stage.PENDING,
                                                          Stage.STOPPING))
#: attempt run time buckets, seconds: a no-op action to a long batch job
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                    4 * 3600.0, 24 * 3600.0)
#: dispatch -> start buckets, seconds: a ready copy starts in milliseconds, a download takes longer
START_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                 300.0)
#: store commit buckets, seconds: SQLite inline commits take ~0.1-0.5 ms, PostgreSQL ~1-2 ms
COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
#: attempts whose start was seen in a running report, kept until they end; past this many
#: (attempts the manager stopped tracking) the set is cleared rather than grown
MAX_STARTED = 100_000


def seconds_between(start: Optional[dt.datetime], end: Optional[dt.datetime]) -> Optional[float]:
    """``end - start`` in seconds, at least 0; None when either is unknown."""
    if start is None or end is None:
        return None
    try:
        return max((end - start).total_seconds(), 0.0)
    except TypeError:   # naive against aware: a timestamp that came in without its zone
        return None


class ManagerMetrics:
    """The manager's registry and every metric on it; ``saved`` and ``commit`` are the hooks
    the dispatcher calls, ``text()`` is what ``GET /metrics`` answers.

    The registry (and prometheus_client with it, ~1.5 MB) is made at the first scrape: the
    counts are plain numbers until then (common/tallies.py)."""

    def __init__(self, core: Any, process: bool = True) -> None:
        self.process = process
        self.registry: Any = None
        self.tasks = Tally("litepipeline_tasks_finished", "Tasks that ended, by final status", ["status"])
        self.actions = Tally("litepipeline_actions_finished", "Actions that ended (after their retries), by final "
                             "status", ["status"])
        self.attempts = Tally("litepipeline_attempts_finished", "Action attempts that ended, by status (success, "
                              "fail, kill, lost)", ["status"])
        self.duration = Buckets("litepipeline_action_duration_seconds", "Action attempt run time, from its start "
                                "to its end as the node reported them, by status", DURATION_BUCKETS, ["status"])
        self.dispatch_start = Buckets("litepipeline_dispatch_to_start_seconds", "Time from the dispatch of an "
                                      "attempt to its start on the node (application copy, workspace, process "
                                      "start)", START_BUCKETS)
        self.commit_seconds = Buckets("litepipeline_store_commit_seconds", "Time to write one scheduling round's "
                                      "changes to the store (one transaction)", COMMIT_BUCKETS)
        self.http = HttpMetrics()
        self.state = StateCollector(core)
        self._started: set[str] = set()

    def watch(self, dispatcher: Any) -> None:
        """Hear of every committed round and every store commit of ``dispatcher``."""
        dispatcher.saved_listeners.append(self.saved)
        dispatcher.on_commit = self.commit

    def commit(self, seconds: float) -> None:
        """One store transaction of a round took ``seconds`` (the dispatcher's hook)."""
        self.commit_seconds.observe(seconds)

    def saved(self, batch: Any) -> None:
        """A round was committed: count what ended in it, observe the starts it recorded.

        Each ending is in exactly one round's batch: tasks and actions are written
        ``finished`` once (a recovered task ends again: a new ending), attempts are closed once.
        """
        for task in (*batch.new_tasks, *batch.tasks.values()):
            if task.stage == FINISHED and task.status:
                self.tasks.inc(task.status)
        for action in batch.actions.values():
            if action.stage == FINISHED and action.status:
                self.actions.inc(action.status)
            elif action.stage == RUNNING and action.start_at is not None and action.attempt_id:
                # a "running" report: the start is known now, long before the attempt ends
                if action.attempt_id not in self._started:
                    self._observe_start(action.dispatched_at, action.start_at, action.attempt_id)
        for record in (*batch.new_attempts, *batch.attempts.values()):
            if record.status is None:
                continue
            self.attempts.inc(record.status)
            took = seconds_between(record.start_at, record.end_at)
            if took is not None:
                self.duration.observe(took, record.status)
            if record.attempt_id in self._started:
                self._started.discard(record.attempt_id)
            else:
                self._observe_start(record.dispatched_at, record.start_at, None)

    def _observe_start(self, dispatched_at: Optional[dt.datetime], start_at: Optional[dt.datetime],
                       attempt_id: Optional[str]) -> None:
        latency = seconds_between(dispatched_at, start_at)
        if latency is None:
            return
        self.dispatch_start.observe(latency)
        if attempt_id is not None:
            if len(self._started) >= MAX_STARTED:
                self._started.clear()
            self._started.add(attempt_id)

    def text(self) -> bytes:
        if self.registry is None:
            from prometheus_client import CollectorRegistry
            from prometheus_client.process_collector import ProcessCollector

            self.registry = CollectorRegistry()
            self.registry.register(TallyCollector(self.tasks, self.actions, self.attempts, self.duration,
                                                  self.dispatch_start, self.commit_seconds))
            self.registry.register(self.http.collector)
            self.registry.register(self.state)
            if self.process:   # CPU, memory, open files of this process (read from /proc at scrape time)
                ProcessCollector(registry=self.registry)
        return exposition_text(self.registry)


class StateCollector:
    """Gauges read from the scheduler core at scrape time (on the event loop, as the core's
    owner reads it: ``GET /metrics`` is answered there)."""

    def __init__(self, core: Any) -> None:
        self.core = core

    def describe(self) -> list:
        return []   # collected only on scrape, never at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        core = self.core
        stages = {PENDING: 0, RUNNING: 0, STOPPING: 0}
        pending_actions = 0
        for task in list(core.tasks.values()):
            if task.stage in stages:
                stages[task.stage] += 1
                if task.stage != STOPPING:   # a stopping task's pending actions never run
                    for action in task.actions.values():
                        if action.stage == PENDING and action.kind == DAG:
                            pending_actions += 1
        backlog = getattr(core, "backlog", None)
        waiting = len(backlog.state) if backlog is not None else 0   # pending tasks kept in the store
        stages[PENDING] += waiting
        tasks = GaugeMetricFamily("litepipeline_tasks_unfinished", "Tasks not finished yet, by stage "
                                  "(pending: none of its actions started yet)", labels=["stage"])
        for stage, count in stages.items():
            tasks.add_metric([stage], count)
        yield tasks
        yield GaugeMetricFamily("litepipeline_tasks_backlog", "Pending tasks beyond the scheduler's window, "
                                "waiting in the store (queue_window)", value=waiting)
        yield GaugeMetricFamily("litepipeline_actions_pending", "Actions of pending and running tasks waiting "
                                "to run (for their upstream actions, a retry or a free slot); event actions "
                                "not included", value=pending_actions)
        mono = core.mono()
        nodes = list(core.nodes.values())
        yield GaugeMetricFamily("litepipeline_nodes_up", "Registered nodes (draining ones included)",
                                value=len(nodes))
        yield GaugeMetricFamily("litepipeline_nodes_draining", "Registered nodes shutting down (given nothing "
                                "new)", value=sum(1 for n in nodes if n.draining))
        yield GaugeMetricFamily("litepipeline_slots", "Action slots of the registered nodes",
                                value=sum(n.slots for n in nodes))
        yield GaugeMetricFamily("litepipeline_slots_busy", "Action slots holding an attempt",
                                value=sum(len(n.busy) for n in nodes))
        yield GaugeMetricFamily("litepipeline_slots_free", "Action slots a dispatch may use now (not on "
                                "draining or paused nodes)", value=sum(max(n.free(mono), 0) for n in nodes))
