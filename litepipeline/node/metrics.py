"""The node's Prometheus metrics (``GET /metrics``, SPEC §14): one registry, one owner.

Nothing is kept for them on the action path but plain integers the owners already keep
or bump (the executor's ``accepted``/``launched``/``ended``, the caches' ``downloads``/
``hits``): :class:`NodeCollector` turns them, and the node's state (slots, attempts by
phase, reports awaiting the manager), into metric families when Prometheus scrapes.
HTTP requests are counted by :class:`~litepipeline.common.httpmetrics.HttpMetrics`.
"""
from __future__ import annotations

from typing import Any, Iterator

from litepipeline.common.httpmetrics import HttpMetrics, exposition_text
from litepipeline.common.states import AttemptState


class NodeMetrics:
    """The node's registry: HTTP metrics, :class:`NodeCollector`, the process's own.

    The registry (and prometheus_client with it, ~2 MB) is made at the first scrape: a node
    nobody scrapes stays as small as before."""

    def __init__(self, node: Any, process: bool = True) -> None:
        self.node = node
        self.process = process
        self.http = HttpMetrics()
        self.registry: Any = None

    def text(self) -> bytes:
        if self.registry is None:
            from prometheus_client import CollectorRegistry
            from prometheus_client.process_collector import ProcessCollector

            self.registry = CollectorRegistry()
            self.registry.register(self.http.collector)
            self.registry.register(NodeCollector(self.node))
            if self.process:   # CPU, memory, open files of this process (read from /proc at scrape time)
                ProcessCollector(registry=self.registry)
        return exposition_text(self.registry)


class NodeCollector:
    """Reads the node's executor, reporter and caches at scrape time (on the event loop)."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def describe(self) -> list:
        return []   # collected only on scrape, never at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        node = self.node
        executor = node.executor
        yield CounterMetricFamily("litepipeline_node_actions_started", "Action attempts accepted (a slot "
                                  "reserved)", value=executor.accepted)
        yield CounterMetricFamily("litepipeline_node_actions_launched", "Action processes started",
                                  value=executor.launched)
        ended = CounterMetricFamily("litepipeline_node_actions_finished", "Action attempts ended, by the "
                                    "status reported (abandoned: the manager gave it up, not reported)",
                                    labels=["status"])
        for status, count in sorted(executor.ended.items()):
            ended.add_metric([status], count)
        yield ended
        phases = {state.value: 0 for state in (AttemptState.FETCHING, AttemptState.RUNNING,
                                               AttemptState.FINISHED)}
        for attempt in list(executor.attempts.values()):
            phase = getattr(attempt.state, "value", attempt.state)
            if phase in phases:
                phases[phase] += 1
        held = GaugeMetricFamily("litepipeline_node_attempts_held", "Attempts held, by phase (fetching: application, "
                                 "env or workspace being made ready)", labels=["phase"])
        for phase, count in phases.items():
            held.add_metric([phase], count)
        yield held
        yield GaugeMetricFamily("litepipeline_node_actions_running", "Action processes running",
                                value=phases[AttemptState.RUNNING.value])
        yield GaugeMetricFamily("litepipeline_node_slots", "Action slots (action_slots)",
                                value=node.config.action_slots)
        yield GaugeMetricFamily("litepipeline_node_slots_busy", "Action slots held by an attempt",
                                value=executor.slots_used)
        yield GaugeMetricFamily("litepipeline_node_draining", "1 while the node shuts down (takes nothing new)",
                                value=int(bool(executor.draining)))
        yield GaugeMetricFamily("litepipeline_node_reports_unacknowledged", "Finished reports the manager has "
                                "not acknowledged yet", value=len(node.reporter.pending))
        downloads = CounterMetricFamily("litepipeline_node_cache_downloads", "Downloads started of "
                                        "application and venv versions, by kind", labels=["kind"])
        hits = CounterMetricFamily("litepipeline_node_cache_hits", "Attempts that found their application or "
                                   "venv version ready (no download waited for), by kind", labels=["kind"])
        for kind, cache in (("application", node.appcache), ("venv", node.venvcache)):
            downloads.add_metric([kind], cache.downloads)
            hits.add_metric([kind], cache.hits)
        yield downloads
        yield hits
