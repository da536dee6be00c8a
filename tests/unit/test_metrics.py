"""The metrics' collectors and hooks computed from real scheduler state and fake nodes."""
from __future__ import annotations

import asyncio
import datetime as dt
import types
from collections import Counter

import pytest
import tornado.web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from litepipeline.common import clock as wall
from litepipeline.common.httpmetrics import REQUEST_BUCKETS, HttpMetrics, MeteredApplication
from litepipeline.common.states import AttemptState
from litepipeline.common.tallies import Buckets, Tally, TallyCollector
from litepipeline.manager import metrics as manager_metrics
from litepipeline.manager.metrics import ManagerMetrics, seconds_between
from litepipeline.node.metrics import NodeMetrics
from tests.unit.test_scheduler import T0, make_task, node_up, report


def values(registry_owner) -> dict:
    """(sample name, labels as a frozenset) -> value, parsed back from the text format."""
    out = {}
    for family in text_string_to_metric_families(registry_owner.text().decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def at(seconds: float) -> str:
    return wall.fmt(T0 + dt.timedelta(seconds=seconds))


def finished(core, dispatch, status, start: float, end: float, stage: str = "finished"):
    m = dispatch.message
    return report(core, {"task_id": m.task_id, "name": m.name, "attempt_id": m.attempt_id,
                         "node_id": dispatch.node_id, "stage": stage, "status": status if stage == "finished"
                         else None, "returncode": 0 if status == "success" else 1, "result": {"data": {}},
                         "start_at": at(start), "end_at": at(end) if stage == "finished" else None})


def test_rounds_count_endings_durations_and_starts(core):
    metrics = ManagerMetrics(core, process=False)
    core.add_task(make_task("t1", ("a", []), ("b", ["a"])))
    core.add_task(make_task("t2", ("c", [])))
    first = core.schedule()
    metrics.saved(core.take_batch())   # created and dispatched: nothing ended yet
    s = values(metrics)
    assert value(s, "litepipeline_tasks_finished_total", status="success") == 0
    assert value(s, "litepipeline_dispatch_to_start_seconds_count") == 0
    a, c = sorted(first, key=lambda d: d.message.name)
    # a long action's "running" report: its start is observed then, not again when it ends
    finished(core, c, None, start=0.5, end=0, stage="running")
    metrics.saved(core.take_batch())
    assert value(values(metrics), "litepipeline_dispatch_to_start_seconds_count") == 1
    finished(core, a, "success", start=0.02, end=1.52)
    (b,) = core.schedule()
    metrics.saved(core.take_batch())
    finished(core, b, "success", start=0.03, end=0.13)
    finished(core, c, "fail", start=0.5, end=40.5)
    metrics.saved(core.take_batch())
    s = values(metrics)
    assert value(s, "litepipeline_tasks_finished_total", status="success") == 1
    assert value(s, "litepipeline_tasks_finished_total", status="fail") == 1
    assert value(s, "litepipeline_actions_finished_total", status="success") == 2
    assert value(s, "litepipeline_actions_finished_total", status="fail") == 1
    assert value(s, "litepipeline_attempts_finished_total", status="success") == 2
    assert value(s, "litepipeline_action_duration_seconds_count", status="success") == 2
    assert value(s, "litepipeline_action_duration_seconds_sum", status="success") == pytest.approx(1.6)
    assert value(s, "litepipeline_action_duration_seconds_bucket", status="success", le="0.25") == 1
    assert value(s, "litepipeline_action_duration_seconds_bucket", status="success", le="2.5") == 2
    assert value(s, "litepipeline_action_duration_seconds_bucket", status="fail", le="30.0") == 0
    assert value(s, "litepipeline_action_duration_seconds_bucket", status="fail", le="60.0") == 1
    # every attempt's start once: a, b, and c (seen at its running report)
    assert value(s, "litepipeline_dispatch_to_start_seconds_count") == 3
    assert value(s, "litepipeline_dispatch_to_start_seconds_sum") == pytest.approx(0.5 + 0.02 + 0.03)
    assert not metrics._started   # nothing kept for attempts that ended
    # an empty round (a heartbeat) counts nothing again
    metrics.saved(core.take_batch())
    assert values(metrics) == s


def test_lost_attempts_and_killed_tasks(core, clock):
    metrics = ManagerMetrics(core, process=False)
    core.add_task(make_task("t1", ("a", []), ("b", [])))
    core.schedule()
    metrics.saved(core.take_batch())
    core.node_down("n1", "connection closed")   # both attempts lost, the actions back to pending
    metrics.saved(core.take_batch())
    s = values(metrics)
    assert value(s, "litepipeline_attempts_finished_total", status="lost") == 2
    assert value(s, "litepipeline_action_duration_seconds_count", status="lost") == 0   # never started
    assert value(s, "litepipeline_actions_finished_total", status="lost") == 0
    assert value(s, "litepipeline_actions_pending") == 2
    core.stop_task("t1", -9)
    metrics.saved(core.take_batch())
    assert value(values(metrics), "litepipeline_tasks_finished_total", status="kill") == 1


def test_state_is_read_from_the_core_at_scrape_time(core, clock):
    metrics = ManagerMetrics(core, process=False)
    node_up(core, "n2", 3, [], True)
    node_up(core, "n3", 1, [], True, draining=True)
    core.add_task(make_task("t1", ("a", []), ("b", ["a"])))
    core.add_task(make_task("t2", ("c", []), ("d", []), ("e", []), ("f", []), ("g", []), ("h", [])))
    core.schedule()
    s = values(metrics)
    assert value(s, "litepipeline_nodes_up") == 3
    assert value(s, "litepipeline_nodes_draining") == 1
    assert value(s, "litepipeline_slots") == 6
    assert value(s, "litepipeline_slots_busy") == 5   # 2 + 3 free slots, draining n3 takes nothing
    assert value(s, "litepipeline_slots_free") == 0
    assert value(s, "litepipeline_tasks_unfinished", stage="running") == 2
    assert value(s, "litepipeline_tasks_unfinished", stage="pending") == 0
    assert value(s, "litepipeline_actions_pending") == 3   # b waits for a; two of t2's for a slot
    core.add_task(make_task("t3", ("x", []), ("on_fail", [], {"kind": "event"}), on_fail="on_fail"))
    core.stop_task("t1", -15)
    s = values(metrics)
    assert value(s, "litepipeline_tasks_unfinished", stage="pending") == 1
    assert value(s, "litepipeline_tasks_unfinished", stage="stopping") == 1
    # t1's b never runs now; t3's x waits, its event action is not work waiting
    assert value(s, "litepipeline_actions_pending") == 3


def test_commits_are_observed(core):
    metrics = ManagerMetrics(core, process=False)
    dispatcher = types.SimpleNamespace(saved_listeners=[], on_commit=None)
    metrics.watch(dispatcher)
    assert dispatcher.saved_listeners == [metrics.saved]
    dispatcher.on_commit(0.0003)
    dispatcher.on_commit(0.002)
    s = values(metrics)
    assert value(s, "litepipeline_store_commit_seconds_count") == 2
    assert value(s, "litepipeline_store_commit_seconds_bucket", le="0.0005") == 1
    assert value(s, "litepipeline_store_commit_seconds_bucket", le="0.0025") == 2


@pytest.mark.parametrize("buckets", [manager_metrics.DURATION_BUCKETS, manager_metrics.START_BUCKETS,
                                     manager_metrics.COMMIT_BUCKETS, REQUEST_BUCKETS])
def test_buckets_are_sane(buckets):
    assert list(buckets) == sorted(set(buckets)) and buckets[0] > 0
    assert 8 <= len(buckets) <= 20   # fine enough to read, few enough series
    # neighbours at most ~5x apart: a quantile read from them is within one bucket's ratio
    assert all(b / a <= 6 for a, b in zip(buckets, buckets[1:]))


def test_durations_never_negative_and_unknown_when_missing():
    assert seconds_between(T0, T0 - dt.timedelta(seconds=3)) == 0   # clocks apart
    assert seconds_between(None, T0) is None and seconds_between(T0, None) is None


def test_two_daemons_in_one_process_keep_their_own_registries(core):
    one, two = ManagerMetrics(core, process=False), ManagerMetrics(core, process=False)
    one.commit(0.1)
    assert value(values(one), "litepipeline_store_commit_seconds_count") == 1
    assert value(values(two), "litepipeline_store_commit_seconds_count") == 0


def fake_node(**executor) -> types.SimpleNamespace:
    attempts = {str(i): types.SimpleNamespace(state=state) for i, state in enumerate(executor.pop("states", []))}
    ex = types.SimpleNamespace(accepted=5, launched=4, ended=Counter({"success": 3, "fail": 1}), attempts=attempts,
                               slots_used=len(attempts), draining=False)
    ex.__dict__.update(executor)
    return types.SimpleNamespace(
        executor=ex, config=types.SimpleNamespace(action_slots=4),
        reporter=types.SimpleNamespace(pending={"x": 1}),
        appcache=types.SimpleNamespace(downloads=2, hits=7), venvcache=types.SimpleNamespace(downloads=1, hits=0))


def test_node_collector_reads_the_node():
    node = fake_node(states=[AttemptState.RUNNING, AttemptState.FETCHING, AttemptState.RUNNING], draining=True)
    s = values(NodeMetrics(node, process=False))
    assert value(s, "litepipeline_node_actions_started_total") == 5
    assert value(s, "litepipeline_node_actions_launched_total") == 4
    assert value(s, "litepipeline_node_actions_finished_total", status="success") == 3
    assert value(s, "litepipeline_node_actions_finished_total", status="fail") == 1
    assert value(s, "litepipeline_node_actions_running") == 2
    assert value(s, "litepipeline_node_attempts_held", phase="fetching") == 1
    assert value(s, "litepipeline_node_slots") == 4
    assert value(s, "litepipeline_node_slots_busy") == 3
    assert value(s, "litepipeline_node_draining") == 1
    assert value(s, "litepipeline_node_reports_unacknowledged") == 1
    assert value(s, "litepipeline_node_cache_downloads_total", kind="application") == 2
    assert value(s, "litepipeline_node_cache_hits_total", kind="application") == 7
    assert value(s, "litepipeline_node_cache_downloads_total", kind="venv") == 1
    # read at scrape time: a change shows in the next scrape without any hook
    node.executor.ended["kill"] += 1
    node.appcache.hits += 1
    s = values(NodeMetrics(node, process=False))
    assert value(s, "litepipeline_node_actions_finished_total", status="kill") == 1
    assert value(s, "litepipeline_node_cache_hits_total", kind="application") == 8


class Hello(tornado.web.RequestHandler):
    def get(self, *args: str) -> None:
        if self.get_query_argument("fail", None):
            raise tornado.web.HTTPError(400)
        self.finish("hello")


class Other(Hello):
    pass


def test_http_requests_are_counted_by_route_pattern():
    registry = CollectorRegistry()
    http = HttpMetrics(registry)
    owner = types.SimpleNamespace(text=lambda: generate_latest(registry))

    async def run() -> None:
        app = MeteredApplication([(r"/hello", Hello), (r"/item/([0-9]+)", Hello), (r"/other", Other)], http)
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app)
        server.add_sockets(sockets)
        base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        client = AsyncHTTPClient(force_instance=True)
        try:
            for path in ("/hello", "/item/1", "/item/2", "/item/3?x=1", "/other", "/nowhere", "/hello?fail=1"):
                try:
                    await client.fetch(base + path)
                except HTTPClientError:
                    pass
        finally:
            client.close()
            server.stop()

    asyncio.run(run())
    s = values(owner)
    assert value(s, "litepipeline_http_requests_total", route="/hello", code="200") == 1
    assert value(s, "litepipeline_http_requests_total", route="/hello", code="400") == 1
    assert value(s, "litepipeline_http_requests_total", route="/item/([0-9]+)", code="200") == 3
    assert value(s, "litepipeline_http_requests_total", route="/other", code="200") == 1
    assert value(s, "litepipeline_http_requests_total", route="ErrorHandler", code="404") == 1
    assert value(s, "litepipeline_http_request_duration_seconds_count", route="/item/([0-9]+)") == 3
    routes = {dict(labels).get("route") for name, labels in s if name == "litepipeline_http_requests_total"}
    assert routes == {"/hello", "/item/([0-9]+)", "/other", "ErrorHandler"}   # never a raw URL


def test_tallies_expose_cumulative_buckets_with_inclusive_bounds():
    registry = CollectorRegistry()
    hist = Buckets("h_seconds", "a histogram", (0.1, 1.0, 10.0), ["kind"])
    plain = Buckets("p_seconds", "no labels", (1.0, 2.0))
    count = Tally("c", "a counter", ["kind"])
    registry.register(TallyCollector(hist, plain, count))
    for v in (0.05, 0.1, 0.5, 1.0, 99.0):   # a value equal to a bound is in that bucket (le)
        hist.observe(v, "a")
    hist.observe(3.0, "b")
    count.inc("a")
    count.inc("a")
    owner = types.SimpleNamespace(text=lambda: generate_latest(registry))
    s = values(owner)
    assert [value(s, "h_seconds_bucket", kind="a", le=le) for le in ("0.1", "1.0", "10.0", "+Inf")] == [2, 4, 4, 5]
    assert value(s, "h_seconds_count", kind="a") == 5
    assert value(s, "h_seconds_sum", kind="a") == pytest.approx(100.65)
    assert [value(s, "h_seconds_bucket", kind="b", le=le) for le in ("1.0", "10.0", "+Inf")] == [0, 1, 1]
    assert value(s, "c_total", kind="a") == 2
    # a series without labels is there from the start, at zero
    assert ("p_seconds_count", frozenset()) in s and value(s, "p_seconds_bucket", le="+Inf") == 0
    with pytest.raises(ValueError):
        Buckets("bad", "unordered", (1.0, 0.5))
