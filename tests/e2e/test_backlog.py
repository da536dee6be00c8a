"""Many pending tasks with a small scheduler window: most wait in the store (the backlog),
across a manager crash, and still start oldest first once a node joins."""
from __future__ import annotations

from tests.e2e.harness import LiteCluster, wait_for
from tests.fixtures import make_app

TASKS = 200
WINDOW = 10


def scheduler(cluster) -> dict:
    return cluster.api.cluster_info()["scheduler"]


def test_backlogged_tasks_survive_a_restart_and_start_in_creation_order(tmp_path):
    config = {"actions": [{"name": "only", "condition": [], "main": "true"}]}
    with LiteCluster(str(tmp_path), queue_window=WINDOW) as cluster:
        cluster.start_manager()
        app_id = cluster.upload(make_app(str(tmp_path), config))
        ids = [cluster.api.task_create(app_id, f"t{i}", {"i": i})["task_id"] for i in range(TASKS)]
        stats = scheduler(cluster)
        assert stats["unfinished_tasks"] == WINDOW and stats["backlog_tasks"] == TASKS - WINDOW

        # a backlogged task is an ordinary pending task to every reader
        info = cluster.api.task_info(ids[-1])["task_info"]
        assert (info["stage"], info["task_name"], info["input_data"]) == ("pending", f"t{TASKS - 1}",
                                                                           {"i": TASKS - 1})
        assert "no node is registered" in info["waiting_for"]
        listed = cluster.api.task_list(limit=0, stage="pending")
        assert len(listed["tasks"]) == TASKS

        cluster.manager.kill()   # SIGKILL: only what was committed counts
        cluster.manager.log.close()
        cluster.start_manager()
        stats = scheduler(cluster)
        assert stats["unfinished_tasks"] == WINDOW and stats["backlog_tasks"] == TASKS - WINDOW

        # stop and delete tasks that were never loaded: committed when the call returns
        stopped, deleted = ids[150], ids[151]
        assert cluster.api.task_stop(stopped)["result"] == "ok"
        info = cluster.api.task_info(stopped)["task_info"]
        assert (info["stage"], info["status"]) == ("finished", "kill")
        assert cluster.api.task_delete(deleted)["result"] == "ok"
        assert cluster.api.task_info(deleted)["result"] == "TaskNotExists"

        cluster.add_node(slots=2)
        info = cluster.api.task_info(ids[-1])["task_info"]
        assert info["stage"] == "pending" and "queued" in info["waiting_for"]   # 190 tasks are ahead of it
        rest = [t for t in ids if t not in (stopped, deleted)]
        wait_for(lambda: scheduler(cluster)["unfinished_tasks"] == 0 and scheduler(cluster)["backlog_tasks"] == 0,
                 60, 0.1, "every task to end")
        infos = [cluster.api.task_info(t)["task_info"] for t in rest]
        assert {i["status"] for i in infos} == {"success"}
        starts = [i["start_at"] for i in infos]
        assert starts == sorted(starts)   # oldest first, across the window and the backlog
        assert cluster.api.task_info(stopped)["task_info"]["status"] == "kill"


def test_tasks_for_an_absent_label_are_parked_and_run_once_a_node_offers_it(tmp_path):
    """Many windows of tasks no node can take do not hold back a newer task; they wait in
    the store (task info says so) and all run once a node with their label joins."""
    config = {"actions": [{"name": "only", "condition": [], "main": "true"}]}
    gpu = {"target": {"only": {"labels": {"gpu": "a100"}}}}
    with LiteCluster(str(tmp_path), queue_window=WINDOW) as cluster:
        cluster.start_manager()
        app_id = cluster.upload(make_app(str(tmp_path), config))
        cluster.add_node(slots=1)
        waiting = [cluster.api.task_create(app_id, f"g{i}", gpu)["task_id"] for i in range(8 * WINDOW)]
        plain = cluster.api.task_create(app_id, "plain", {})["task_id"]
        assert cluster.api.task_info(plain, wait=30)["task_info"]["status"] == "success"
        stats = scheduler(cluster)
        assert stats["unfinished_tasks"] <= 4 * WINDOW and stats["backlog_tasks"] >= 4 * WINDOW
        info = cluster.api.task_info(waiting[-1])["task_info"]
        assert info["stage"] == "pending"
        assert "gpu=a100" in info["waiting_for"] and "held in the store" in info["waiting_for"]

        cluster.add_node(slots=2, labels={"gpu": "a100"})
        wait_for(lambda: scheduler(cluster)["unfinished_tasks"] == 0 and scheduler(cluster)["backlog_tasks"] == 0,
                 60, 0.1, "every task to end")
        assert {cluster.api.task_info(t)["task_info"]["status"] for t in waiting} == {"success"}
