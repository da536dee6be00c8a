"""``GET /metrics`` on real manager and node processes (SPEC §14)."""
from __future__ import annotations

from typing import Optional

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import LiteCluster, wait_for
from tests.fixtures import dag, make_app

TOKEN = "metrics-secret"


class Scrape(dict):
    """(sample name, labels) -> value of one ``/metrics`` answer."""

    def get_value(self, name: str, **labels: str) -> float:
        return self.get((name, frozenset(labels.items())), 0.0)

    def delta(self, before: "Scrape", name: str, **labels: str) -> float:
        return self.get_value(name, **labels) - before.get_value(name, **labels)


def scrape(base: str, token: Optional[str] = TOKEN) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    reply = requests.get(f"{base}/metrics", headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = Scrape()
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


@pytest.fixture
def cluster(tmp_path):
    with LiteCluster(str(tmp_path), token=TOKEN) as c:
        c.start_manager()
        c.add_node(slots=2)
        c.app_id = c.upload(make_app(str(tmp_path), dag(("first", []), ("second", ["first"]))))
        yield c


def test_metrics_follow_tasks_on_manager_and_node(cluster):
    manager = f"http://{cluster.address}"
    node = f"http://127.0.0.1:{cluster.nodes[0].config['http_port']}"
    for base in (manager, node):   # the token is needed like on every other route
        reply = requests.get(f"{base}/metrics", timeout=10)
        assert reply.status_code == 401
        assert reply.json()["result"] == "Unauthorized"
        wrong = requests.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401
    m0, n0 = scrape(manager), scrape(node)
    for before in (m0, n0):   # the refusals are counted too, under the route
        assert before.get_value("litepipeline_http_requests_total", route="/metrics", code="401") == 2
    assert m0.get_value("litepipeline_nodes_up") == 1
    assert m0.get_value("litepipeline_slots") == 2
    assert n0.get_value("litepipeline_node_slots") == 2
    assert n0.get_value("litepipeline_node_cache_downloads_total", kind="application") == 0

    ok = cluster.run_task(cluster.app_id)
    assert ok["task_info"]["status"] == "success"
    m1, n1 = scrape(manager), scrape(node)
    assert m1.delta(m0, "litepipeline_tasks_finished_total", status="success") == 1
    assert m1.delta(m0, "litepipeline_attempts_finished_total", status="success") == 2
    # the application is fetched once: the second action finds the copy ready
    assert n1.get_value("litepipeline_node_cache_downloads_total", kind="application") == 1
    hits = n1.get_value("litepipeline_node_cache_hits_total", kind="application")
    assert hits >= 1

    failed = cluster.run_task(cluster.app_id, {"_first": {"exit": 3}})
    assert failed["task_info"]["status"] == "fail"
    # a heartbeat the node sent before its report was acknowledged still lists the attempt:
    # the manager counts its slot busy until the next heartbeat (heartbeat_interval)
    wait_for(lambda: scrape(manager).get_value("litepipeline_slots_busy") == 0, 10, 0.1, "slots to be free")
    m2, n2 = scrape(manager), scrape(node)
    assert m2.delta(m0, "litepipeline_tasks_finished_total", status="success") == 1
    assert m2.delta(m0, "litepipeline_tasks_finished_total", status="fail") == 1
    assert m2.delta(m0, "litepipeline_actions_finished_total", status="success") == 2
    assert m2.delta(m0, "litepipeline_actions_finished_total", status="fail") == 1
    assert m2.delta(m0, "litepipeline_attempts_finished_total", status="fail") == 1
    assert m2.delta(m0, "litepipeline_action_duration_seconds_count", status="success") == 2
    assert m2.delta(m0, "litepipeline_action_duration_seconds_count", status="fail") == 1
    assert m2.delta(m0, "litepipeline_dispatch_to_start_seconds_count") == 3
    assert m2.delta(m0, "litepipeline_store_commit_seconds_count") >= 3   # a round per create and report
    assert m2.get_value("litepipeline_store_commit_seconds_sum") > 0
    # requests counted by route pattern, never by URL (task/info carried a task id)
    assert m2.delta(m0, "litepipeline_http_requests_total", route="/task/create", code="200") == 2
    assert m2.delta(m0, "litepipeline_http_requests_total", route="/task/info", code="200") >= 2
    assert not any("task_id" in dict(labels).get("route", "") for _, labels in m2)
    assert m2.get_value("litepipeline_http_requests_total", route="/metrics", code="200") >= 2
    assert m2.get_value("litepipeline_http_request_duration_seconds_count", route="/task/create") >= 2
    for stage in ("pending", "running", "stopping"):
        assert m2.get_value("litepipeline_tasks_unfinished", stage=stage) == 0
    assert m2.get_value("litepipeline_actions_pending") == 0
    assert m2.get_value("litepipeline_slots_busy") == 0
    assert m2.get_value("litepipeline_slots_free") == 2
    # the node: one download for both tasks, every later action a hit
    assert n2.get_value("litepipeline_node_cache_downloads_total", kind="application") == 1
    assert n2.get_value("litepipeline_node_cache_hits_total", kind="application") == hits + 1
    assert n2.delta(n0, "litepipeline_node_actions_started_total") == 3
    assert n2.delta(n0, "litepipeline_node_actions_launched_total") == 3
    assert n2.delta(n0, "litepipeline_node_actions_finished_total", status="success") == 2
    assert n2.delta(n0, "litepipeline_node_actions_finished_total", status="fail") == 1
    assert n2.get_value("litepipeline_node_actions_running") == 0
    assert n2.get_value("litepipeline_node_slots_busy") == 0
    assert n2.get_value("litepipeline_http_requests_total", route="/metrics", code="200") >= 2
    assert n2.get_value("process_cpu_seconds_total") > 0


def test_metrics_public_answers_without_the_token(tmp_path):
    with LiteCluster(str(tmp_path), token=TOKEN, metrics_public=True) as cluster:
        cluster.start_manager()
        node = cluster.add_node(slots=1, metrics_public=True)
        manager = f"http://{cluster.address}"
        assert scrape(manager, token=None).get_value("litepipeline_nodes_up") == 1
        assert scrape(f"http://127.0.0.1:{node.config['http_port']}", token=None).get_value(
            "litepipeline_node_slots") == 1
        # only /metrics: every other route still needs the token
        assert requests.get(f"{manager}/cluster/info", timeout=10).status_code == 401
