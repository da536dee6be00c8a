"""Why an unfinished task's actions are not running: one line for ``task info``.

Pure: it reads the scheduler core's view of a task and the live nodes, with the time
given, and says what a user can act on (start a node, wait for a slot, look at the
failure that sent an action back to pending).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Optional

from litepipeline.common import clock
from litepipeline.manager.placement import matches, unmatched
from litepipeline.manager.scheduler import NodeSlots, upstream_names
from litepipeline.manager.taskstate import DAG, TaskState

PENDING, RUNNING = "pending", "running"
NO_NODE = ("no node is registered: start a litenode whose manager_tcp_host and manager_tcp_port "
           "point at this manager")


def _names(actions: list) -> str:
    shown = ", ".join(f"'{a.name}'" for a in actions[:5])
    return shown + (f" and {len(actions) - 5} more" if len(actions) > 5 else "")


def waiting_for(task: Optional[TaskState], nodes: Mapping[str, NodeSlots], now: dt.datetime,
                mono: float) -> Optional[str]:
    """The reason ``task``'s next actions wait, or None when nothing waits (or it will start now).

    ``now`` is the wall clock (retry times are shown in it), ``mono`` the core's monotonic one
    (node suspensions are kept in it).
    """
    if task is None or task.stage not in (PENDING, RUNNING):
        return None
    pending = [a for a in task.actions.values() if a.kind == DAG and a.stage == PENDING
               and all(task.actions[u].succeeded for u in upstream_names(task, a) if u in task.actions)]
    ready = [a for a in pending if a.retry_at is None or a.retry_at <= now]
    if not ready:
        retrying = sorted((a for a in pending if a.retry_at is not None), key=lambda a: a.retry_at)
        if retrying:
            first = retrying[0]
            when = clock.fmt(first.retry_at)
            return f"action '{first.name}' is retried at {when}: {first.message or 'failed'}"
        return None
    if not nodes:
        return NO_NODE
    targeted = [a for a in ready if a.target is not None]
    if targeted:
        reason = _placement(targeted, nodes, mono)
        if reason:
            return reason
        ready = [a for a in ready if a.target is None] or targeted
    if all(node.free(mono) <= 0 for node in nodes.values()):
        refusing = [n.node_id for n in nodes.values()
                    if n.suspended_until is not None and mono < n.suspended_until]
        if refusing:
            return (f"action(s) {_names(ready)} wait: node(s) {', '.join(refusing)} refused or missed a "
                    f"dispatch just now, and no other node has a free slot")
        slots = sum(n.slots for n in nodes.values())
        return (f"action(s) {_names(ready)} wait for a free slot: all {slots} action slots of "
                f"{len(nodes)} node(s) are busy")
    sent_back = [a for a in ready if a.message]
    if sent_back:
        return f"action '{sent_back[0].name}' went back to pending: {sent_back[0].message}"
    return None


def _placement(targeted: list, nodes: Mapping[str, NodeSlots], mono: float) -> Optional[str]:
    """The first targeted action that no registered node allows, or whose allowed nodes are all busy."""
    facts = {node_id: node.facts for node_id, node in nodes.items()}
    for action in targeted:
        reason = unmatched(action.name, action.target, facts)
        if reason:
            return reason
    for action in targeted:
        allowed = [n for n in nodes.values() if matches(action.target, n.node_id, n.facts)]
        if all(n.free(mono) <= 0 for n in allowed):
            shown = ", ".join(n.node_id for n in allowed[:5]) + (" and more" if len(allowed) > 5 else "")
            if all(n.draining for n in allowed):
                return f"action '{action.name}' waits: the node(s) its target allows are shutting down: {shown}"
            return (f"action '{action.name}' waits for a free slot on the node(s) its target allows: {shown} "
                    f"({sum(n.slots for n in allowed)} slots, all busy)")
    return None
