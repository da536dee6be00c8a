"""What the interface's JSON routes answer, built from store rows (pure functions)."""
from __future__ import annotations

from typing import Any, Callable, Optional

from litepipeline.common import clock
from litepipeline.common.states import Stage
from litepipeline.manager.taskstate import EVENT
from litepipeline.manager.ui.layout import layout
from litepipeline.manager.ui.states import action_state, task_state

MAX_DRAWN = 5000   # a task with more actions than this is listed, not drawn


def task_row_view(row: dict) -> dict:
    """A task as the list and the task page head show it."""
    return {"id": row.get("id"), "task_id": row["task_id"], "task_name": row["task_name"],
            "application_id": row["application_id"], "create_at": clock.fmt(row["create_at"]),
            "start_at": clock.fmt(row["start_at"]), "end_at": clock.fmt(row["end_at"]), "stage": row["stage"],
            "status": row["status"], "message": row.get("message"), "state": task_state(row["stage"], row["status"])}


def upstream(actions: list[dict]) -> dict[str, list[str]]:
    """Who each action waits for: its condition, generated actions aimed at it, and (for
    a generated action) the action that generated it — drawn as the edge into it."""
    ups = {a["name"]: list(a["condition"] or []) for a in actions}
    for a in actions:
        if a.get("to_action") in ups and a["name"] not in ups[a["to_action"]]:
            ups[a["to_action"]].append(a["name"])
        if a.get("parent") in ups and a["parent"] not in ups[a["name"]]:
            ups[a["name"]].append(a["parent"])
    return ups


def task_page(row: dict, actions: list[dict], attempts: list[dict],
              node_address: Callable[[str], Optional[str]], down: bool = False) -> dict:
    """The task page: the task, its actions with their drawn state, attempts, the DAG layout."""
    finished = row["stage"] == Stage.FINISHED.value
    ups = upstream(actions)
    items = []
    for a in actions:
        items.append({
            "name": a["name"], "kind": a["kind"], "parent": a["parent"], "to_action": a["to_action"],
            "condition": list(a["condition"] or []), "upstream": ups[a["name"]], "main": a["main"],
            "stage": a["stage"], "status": a["status"],
            "state": action_state(a["stage"], a["status"], a["retry_at"], finished),
            "attempt": a["attempt"], "retries": a["retries"], "node_id": a["node_id"],
            "node": node_address(a["node_id"]) if a["node_id"] else None,
            "start_at": clock.fmt(a["start_at"]), "end_at": clock.fmt(a["end_at"]),
            "retry_at": clock.fmt(a["retry_at"]), "returncode": a["returncode"], "message": a["message"]})
    drawn = None
    if len(actions) <= MAX_DRAWN:
        graph = [(a["name"], ups[a["name"]]) for a in actions]
        drawn = layout(graph, after_all=[a["name"] for a in actions if a["kind"] == EVENT], down=down).to_json()
        parents = {a["name"]: a["parent"] for a in actions}
        for edge in drawn["edges"]:
            edge["generated"] = parents.get(edge["to"]) == edge["from"]
    history = [{"attempt_id": t["attempt_id"], "name": t["name"], "attempt": t["attempt"], "node_id": t["node_id"],
                "node": node_address(t["node_id"]) if t["node_id"] else None,
                "dispatched_at": clock.fmt(t["dispatched_at"]), "start_at": clock.fmt(t["start_at"]),
                "end_at": clock.fmt(t["end_at"]), "status": t["status"], "returncode": t["returncode"],
                "message": t["message"]} for t in attempts]
    task = task_row_view(row)
    task["input_data"] = row.get("input_data")
    task["app_sha1"] = row.get("app_sha1")
    task["work_id"] = row.get("work_id")   # an entry (or event application) of this work
    return {"task": task, "actions": items, "attempts": history, "layout": drawn}


def cluster_page(info: dict, slots: dict[str, tuple[int, int]], last_seen: dict[str, float]) -> dict:
    """``/cluster/info`` plus each node's busy slots and seconds since it was last heard."""
    nodes = []
    for node in info["info"]["nodes"]:
        node = dict(node)
        total, busy = slots.get(node["node_id"], (node.get("action_slots") or 0, 0))
        node["slots_total"], node["slots_busy"] = total, busy
        seen: Any = last_seen.get(node["node_id"])
        node["last_heartbeat_seconds"] = round(seen, 1) if seen is not None else None
        nodes.append(node)
    return {"version": info["version"], "nodes": nodes, "scheduler": info.get("scheduler", {})}


# -- workflows and works ------------------------------------------------------------------
def _entry_layout(entries: list[dict], down: bool) -> dict:
    """A workflow's applications laid out as the task page lays out actions."""
    return layout([(e["name"], e["condition"]) for e in entries], down=down).to_json()


def entry_state(entry: dict, task: Optional[dict], work_finished: bool) -> str:
    """An entry's word: its task's while that runs (waiting/running/stopping), else the
    entry's own (finished, or never started: waiting, or not-run once the work ended)."""
    stage = entry.get("stage") or Stage.PENDING.value
    if stage != Stage.FINISHED.value and task is not None:
        return task_state(task["stage"], task["status"])
    if stage == Stage.RUNNING.value:   # its task is created in the same round: not read yet
        return action_state(Stage.PENDING.value, None)
    return action_state(stage, entry.get("status"), None, work_finished)


def workflow_page(workflow: dict, down: bool = False) -> dict:
    """A workflow (as ``/workflow/info`` shows it) with its applications drawn as a DAG."""
    config = workflow.get("configuration") or {}
    entries = [{"name": e["name"], "app_id": e["app_id"], "condition": list(e.get("condition") or []),
                "kind": "entry", "parent": None, "attempt": 1, "state": "waiting"}
               for e in config.get("applications", [])]
    events = [{"outcome": outcome, "app_id": e["app_id"]}
              for outcome, e in sorted((config.get("event_applications") or {}).items())]
    return {"workflow": workflow, "entries": entries, "events": events, "layout": _entry_layout(entries, down)}


def work_page(work: dict, tasks: list[dict], down: bool = False) -> dict:
    """A work (as ``/work/info`` shows it) with each entry's state, task and the DAG."""
    finished = work["stage"] == Stage.FINISHED.value
    by_id = {t["task_id"]: t for t in tasks}
    state = dict(work.get("result") or {})   # work_view names the entries' states 'result'
    entries = []
    for conf in (work.get("configuration") or {}).get("applications", []):
        entry = state.get(conf["name"]) or {}
        task = by_id.get(entry.get("task_id") or "")
        entries.append({
            "name": conf["name"], "app_id": conf["app_id"], "condition": list(conf.get("condition") or []),
            "kind": "entry", "parent": None, "attempt": 1, "task_id": entry.get("task_id"),
            "stage": entry.get("stage"), "status": entry.get("status"),
            "state": entry_state(entry, task, finished),
            "start_at": clock.fmt(task["start_at"]) if task else None,
            "end_at": clock.fmt(task["end_at"]) if task else None,
            "message": task.get("message") if task else None})
    view = {k: v for k, v in work.items() if k not in ("configuration", "result")}
    view["state"] = task_state(work["stage"], work["status"])
    return {"work": view, "entries": entries, "tasks": [task_row_view(t) for t in tasks],
            "layout": _entry_layout(entries, down)}
