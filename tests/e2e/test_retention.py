"""``task_retention`` on real processes: old finished tasks and their workspaces go, recent ones stay."""
from __future__ import annotations

import os
import time

import pytest

from tests.e2e.harness import LiteCluster, wait_for
from tests.fixtures import make_app

AGE = 5.0   # seconds: the retention, as a fraction of a day in the configuration
WRITE = 'import sys, os; open(os.path.join(sys.argv[1], "note.txt"), "w").write("kept?")'


@pytest.mark.slow
def test_old_tasks_and_their_workspaces_go_recent_ones_stay(tmp_path):
    with LiteCluster(str(tmp_path / "c"), task_retention=AGE / 86400) as cluster:
        cluster.start_manager()
        node = cluster.add_node(slots=1)
        app_id = cluster.upload(make_app(str(tmp_path), {"actions": [{"name": "a", "main": "python3 a.py"}]},
                                         {"a.py": WRITE}))
        workspaces = os.path.join(node.config["data_path"], "workspaces")
        old = cluster.run_task(app_id)["task_info"]["task_id"]
        assert os.path.exists(os.path.join(workspaces, old, "a", "note.txt"))
        time.sleep(AGE / 2)   # the next task ends about half the age after the first
        recent = cluster.run_task(app_id)["task_info"]["task_id"]

        wait_for(lambda: cluster.api.task_info(old)["result"] == "TaskNotExists", timeout=30,
                 what="the old task to be deleted")
        # the pass that deleted the old task ran when the recent one was about half the age old
        assert cluster.api.task_info(recent)["result"] == "ok"
        listed = cluster.api.task_list(0, 0)
        assert [t["task_id"] for t in listed["tasks"]] == [recent] and listed["total"] == 1
        assert not os.path.exists(os.path.join(workspaces, old))
        assert os.path.exists(os.path.join(workspaces, recent, "a", "note.txt"))

        wait_for(lambda: cluster.api.task_info(recent)["result"] == "TaskNotExists", timeout=30,
                 what="the recent task to be deleted once old enough")
        assert not os.path.exists(os.path.join(workspaces, recent))
        assert cluster.api.task_list(0, 0)["total"] == 0
