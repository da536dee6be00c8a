"""How the API shows applications, tasks and their actions (SPEC §3): rows in, dicts out."""
from __future__ import annotations

from typing import Callable, Optional

from litepipeline.common import clock
from litepipeline.common.states import Stage
from litepipeline.manager.scheduler import action_input
from litepipeline.manager.taskstate import EVENT, ActionState, TaskState


def app_view(row: dict) -> dict:
    return {"application_id": row["application_id"], "name": row["name"], "create_at": clock.fmt(row["create_at"]),
            "update_at": clock.fmt(row["update_at"]), "sha1": row["sha1"], "description": row["description"]}


def report_view(action: dict) -> dict:
    """An action as ``task_info.result`` shows it: the node's report (SPEC §3)."""
    return {"name": action["name"], "task_id": action["task_id"], "stage": action["stage"],
            "status": action["status"], "node_id": action["node_id"], "start_at": clock.fmt(action["start_at"]),
            "end_at": clock.fmt(action["end_at"]), "returncode": action["returncode"],
            "result": action["output"] if action["output"] is not None else {}, "message": action["message"],
            "attempt": action["attempt"]}


def task_view(row: dict, actions: Optional[list] = None) -> dict:
    view = {"id": row["id"], "task_id": row["task_id"], "task_name": row["task_name"],
            "application_id": row["application_id"], "app_sha1": row["app_sha1"],
            "create_at": clock.fmt(row["create_at"]), "start_at": clock.fmt(row["start_at"]),
            "update_at": clock.fmt(row["update_at"]), "end_at": clock.fmt(row["end_at"]), "stage": row["stage"],
            "status": row["status"], "input_data": row["input_data"], "message": row["message"],
            "work_id": row.get("work_id")}
    if actions is not None:
        view["result"] = {a["name"]: report_view(a) for a in actions
                          if a["stage"] == Stage.FINISHED.value and a["attempt"] > 0}
        targets = {a["name"]: a["target"] for a in actions if a.get("target")}
        if targets:   # where each placed action may run (configured, with the input's merged in)
            view["targets"] = targets
    return view


def attempt_view(attempt: dict) -> dict:
    return {"name": attempt["name"], "attempt": attempt["attempt"], "node_id": attempt["node_id"],
            "dispatched_at": clock.fmt(attempt["dispatched_at"]), "start_at": clock.fmt(attempt["start_at"]),
            "end_at": clock.fmt(attempt["end_at"]), "status": attempt["status"],
            "returncode": attempt["returncode"], "message": attempt["message"]}


def running_view(row: dict, actions: list, node_address: Callable[[str], Optional[str]]) -> list:
    """``task_running_info``: each running action as it was dispatched, and where."""
    running = [a for a in actions if a["stage"] == Stage.RUNNING.value]
    if not running:
        return []
    # only the rows the running actions' inputs need: a task may hold 10,000 actions
    names = {a["name"] for a in running}
    if any(a["kind"] == EVENT for a in running):
        needed = None   # an event action's input holds every action's result
    else:
        needed = set(names)
        for a in running:
            needed.update(a["condition"] or ())
        needed.update(a["name"] for a in actions if a["to_action"] in names)
    task = TaskState.from_row(row)
    for a in actions:
        if needed is None or a["name"] in needed:
            state = ActionState.from_row(a)
            task.actions[state.name] = state
    out = []
    for action in task.actions.values():
        if action.stage != Stage.RUNNING.value:
            continue
        out.append({"app_id": task.application_id, "app_sha1": task.app_sha1, "condition": action.condition,
                    "env": action.env, "input_data": action_input(task, action), "main": action.main,
                    "name": action.name, "node": node_address(action.node_id or ""),
                    "node_id": action.node_id, "task_id": task.task_id, "attempt": action.attempt,
                    "dispatched_at": clock.fmt(action.dispatched_at),
                    "start_at": clock.fmt(action.start_at)})
    return out
