"""Placement: which nodes an action's target allows, pure and cheap.

The scheduler core asks :func:`matches` only for actions that carry a target (an action
without one costs nothing here). A node's facts come from its REGISTER (labels, platform,
its address). A task's ``input_data`` may add targets per action name (``target`` and
0.1.5's ``target_env``), merged over the configured ones when the task is created
(:func:`apply_input_targets`). :func:`unmatched` says, for ``task info``, what no
registered node offers.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from litepipeline.common.errors import InvalidParameters
from litepipeline.common.targets import BadTarget, describe, merge_targets, parse_target

INPUT_KEYS = ("target_env", "target")   # merged in this order: ``target`` wins over ``target_env``
SHOWN_NODES = 5


@dataclass(frozen=True)
class NodeFacts:
    """What a target is compared with: a node's labels, platform (lower case) and address."""

    labels: Mapping[str, str] = field(default_factory=dict)
    platform: Optional[str] = None
    ip: Optional[str] = None

    @classmethod
    def of(cls, labels: Optional[Mapping[str, str]], platform: Optional[str], ip: Optional[str]) -> "NodeFacts":
        return cls(dict(labels or {}), platform.lower() if platform else None, ip)


NO_FACTS = NodeFacts()


def matches(target: dict, node_id: str, facts: NodeFacts) -> bool:
    """Does the node satisfy every key of ``target`` (labels: a superset)?"""
    labels = target.get("labels")
    if labels:
        have = facts.labels
        for key, value in labels.items():
            if have.get(key) != value:
                return False
    want = target.get("node_id")
    if want is not None and want != node_id:
        return False
    want = target.get("platform")
    if want is not None and want != facts.platform:
        return False
    want = target.get("node_ip")
    return want is None or want == facts.ip


class FreeNodes:
    """The nodes with free slots at the start of one ``schedule()`` round, indexed by label,
    so a targeted action costs a few lookups however many nodes there are (one nothing
    matches: one lookup), not a match against every node.

    ``free`` is the round's node_id -> free slots (nodes leave it as they fill up);
    ``nodes`` maps node_id -> an object with ``facts``.
    """

    def __init__(self, free: Mapping[str, int], nodes: Mapping[str, Any]) -> None:
        self.free = free
        self.nodes = nodes
        self.by_label: dict = {}
        for node_id in free:
            for pair in nodes[node_id].facts.labels.items():
                self.by_label.setdefault(pair, []).append(node_id)

    def allowed(self, target: dict) -> list:
        """The node ids with a free slot now that ``target`` allows."""
        free = self.free
        want = target.get("node_id")
        if want is not None:
            candidates: Iterable[str] = (want,)
        elif target.get("labels"):
            lists = []
            for pair in target["labels"].items():
                found = self.by_label.get(pair)
                if not found:
                    return []
                lists.append(found)
            candidates = min(lists, key=len)
        else:
            candidates = free
        return [k for k in candidates if k in free and matches(target, k, self.nodes[k].facts)]


# -- a task's input ------------------------------------------------------------------------------
def input_targets(input_data: Any, names: Iterable[str]) -> dict:
    """Targets per action name from ``input_data``'s ``target_env`` and ``target`` maps,
    merged (``target`` over ``target_env``); raises :class:`InvalidParameters`.

    A ``target`` that is not an object is the task's own data and left alone.
    """
    if not isinstance(input_data, dict):
        return {}
    known = list(names)
    out: dict = {}
    for key in INPUT_KEYS:
        block = input_data.get(key)
        if block is None or (key == "target" and not isinstance(block, dict)):
            continue
        if not isinstance(block, dict):
            raise InvalidParameters(f"input_data.{key} must be an object of action name -> target")
        for name, raw in block.items():
            if name not in known:
                hint = _near(name, known)
                raise InvalidParameters(f"input_data.{key} names unknown action {str(name)[:60]!r}{hint}")
            try:
                target = parse_target(raw, f"input_data.{key}.{name}")
            except BadTarget as exc:
                raise InvalidParameters(str(exc)) from None
            out[name] = merge_targets(out.get(name), target)
    return out


def _near(name: Any, known: list) -> str:
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def apply_input_targets(actions: Mapping[str, Any], input_data: Any) -> None:
    """Merge the task input's targets over its actions' own (``actions``: name -> ActionState)."""
    if not isinstance(input_data, dict) or not any(k in input_data for k in INPUT_KEYS):
        return
    for name, target in input_targets(input_data, actions).items():
        action = actions[name]
        action.target = merge_targets(action.target, target)


# -- why nothing matches -------------------------------------------------------------------------
def unmatched(name: str, target: dict, nodes: Mapping[str, NodeFacts]) -> Optional[str]:
    """The wait reason of action ``name`` when no registered node satisfies ``target``;
    None when one does (it then waits for a slot, not for a node)."""
    if any(matches(target, node_id, facts) for node_id, facts in nodes.items()):
        return None
    missing = []
    labels = target.get("labels") or {}
    absent = {k: v for k, v in labels.items() if not any(f.labels.get(k) == v for f in nodes.values())}
    if absent:
        missing.append("labels " + ", ".join(f"{k}={v}" for k, v in absent.items()))
    for key, has in (("node_id", lambda n, f, v: n == v), ("node_ip", lambda n, f, v: f.ip == v),
                     ("platform", lambda n, f, v: f.platform == v)):
        value = target.get(key)
        if value is not None and not any(has(n, f, value) for n, f in nodes.items()):
            missing.append(f"{key} {value}")
    if missing:
        count = len(absent) + len(missing) - (1 if absent else 0)
        why = f"no registered node offers {'it' if count == 1 else 'them'}"
        wanted = "; ".join(missing)
    else:
        why = "no registered node matches all of them together"
        wanted = describe(target)
    return f"action '{name}' waits for a node with {wanted} ({why}; nodes: {_nodes(nodes, target)})"


def _nodes(nodes: Mapping[str, NodeFacts], target: dict) -> str:
    shown = []
    for node_id, facts in list(nodes.items())[:SHOWN_NODES]:
        text = f"{node_id} {{{', '.join(f'{k}: {v}' for k, v in facts.labels.items())}}}"
        extra = [value for key, value in (("platform", facts.platform), ("node_ip", facts.ip))
                 if key in target and value]
        if extra:
            text += f" ({', '.join(extra)})"
        shown.append(text)
    more = len(nodes) - SHOWN_NODES
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")
