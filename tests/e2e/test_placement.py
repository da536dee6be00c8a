"""Placement on a real 2-node cluster: labels, targets, an action nothing matches, stop."""
from __future__ import annotations

import platform

import requests

from tests.e2e.harness import wait_for
from tests.fixtures import make_app


def test_actions_land_on_the_nodes_their_targets_name(cluster, tmp_path):
    cluster.add_node(slots=2, labels={"zone": "a"})
    cluster.add_node(slots=2, labels={"gpu": "a100", "zone": "b"})
    nodes = {n["http_port"]: n for n in cluster.api.cluster_info()["info"]["nodes"]}
    plain = nodes[cluster.nodes[0].config["http_port"]]
    gpu = nodes[cluster.nodes[1].config["http_port"]]
    assert plain["labels"] == {"zone": "a"} and gpu["labels"] == {"gpu": "a100", "zone": "b"}
    assert gpu["platform"] == platform.machine()
    page = requests.get(f"http://{cluster.address}/ui/api/cluster", timeout=10).json()   # the web page's read
    assert {n["node_id"]: n["labels"] for n in page["nodes"]} == {plain["node_id"]: {"zone": "a"},
                                                                   gpu["node_id"]: {"gpu": "a100", "zone": "b"}}
    long = cluster.cli("cluster", "info", "--long", check=True).stdout
    assert "platform" in long.splitlines()[0] and "gpu=a100,zone=b" in long

    config = {"actions": [
        {"name": "train", "main": "python3 echo.py", "target": {"labels": {"gpu": "a100"}}},
        {"name": "prep", "main": "python3 echo.py", "target_env": {"platform": platform.machine().upper(),
                                                                    "docker_support": False}},
        {"name": "anywhere", "main": "python3 echo.py"},
        {"name": "nowhere", "main": "python3 echo.py", "target": {"labels": {"gpu": "h100"}}},
        {"name": "last", "main": "python3 echo.py", "condition": ["nowhere"]}]}
    app_id = cluster.upload(make_app(str(tmp_path), config))
    # the task's input adds targets: prep must also be on the zone-a node, anywhere on the gpu node by id
    reply = cluster.api.task_create(app_id, "placed", {
        "target": {"prep": {"labels": {"zone": "a"}}}, "target_env": {"anywhere": {"node_id": gpu["node_id"]}}})
    assert reply["result"] == "ok", reply
    task_id = reply["task_id"]

    def three_done():
        info = cluster.task(task_id)["task_info"]
        return info if {"train", "prep", "anywhere"} <= set(info["result"]) else None

    info = wait_for(three_done, what="the matched actions to finish")
    result = info["result"]
    assert result["train"]["node_id"] == gpu["node_id"]
    assert result["prep"]["node_id"] == plain["node_id"]
    assert result["anywhere"]["node_id"] == gpu["node_id"]
    assert all(result[n]["status"] == "success" for n in ("train", "prep", "anywhere"))
    assert info["targets"]["prep"] == {"platform": platform.machine().lower(), "labels": {"zone": "a"}}
    # the unmatched one stays pending, and task info says why
    assert info["stage"] == "running" and "nowhere" not in result
    assert info["waiting_for"].startswith("action 'nowhere' waits for a node with labels gpu=h100 "
                                          "(no registered node offers it; nodes: ")
    assert "{gpu: a100, zone: b}" in info["waiting_for"]
    waiting = cluster.cli("task", "info", "-t", task_id).stderr
    assert "gpu=h100" in waiting

    stopped = cluster.api.task_stop(task_id)
    assert stopped["result"] == "ok", stopped
    info = cluster.wait_task(task_id)["task_info"]
    assert (info["stage"], info["status"]) == ("finished", "kill")


def test_bad_targets_are_refused_whole(cluster, tmp_path):
    bad = {"actions": [{"name": "a", "main": "python3 echo.py", "target_env": {"docker_support": True}}]}
    reply = cluster.api.app_create(make_app(str(tmp_path), bad), "bad", "")
    assert reply["result"] == "InvalidParameters"   # as every invalid upload
    assert "docker_support true cannot be met" in reply["message"]
    app_id = cluster.upload(make_app(str(tmp_path), {"actions": [{"name": "a", "main": "python3 echo.py"}]},
                                     name="good.tar.gz"))
    reply = cluster.api.task_create(app_id, "typo", {"target_env": {"b": {"platform": "x86_64"}}})
    assert reply["result"] == "InvalidParameters"
    assert reply["message"] == "input_data.target_env names unknown action 'b'"
    assert cluster.api.task_list(0, 0).get("tasks") == []   # nothing half-written
