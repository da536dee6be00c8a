"""A layered drawing of a task's DAG, left to right, computed in Python (pure).

The classic recipe in four steps, small enough to own:

1. layers: each action one column past its furthest upstream (longest path);
2. an edge that spans several columns gets a chain of invisible points, one per
   column it crosses, so it bends around boxes instead of through them;
3. order in each column: a few down-and-up sweeps sorting by the mean position of the
   neighbours in the previous column (the barycenter heuristic), which removes most
   crossings;
4. coordinates: columns at fixed steps, each column's boxes stacked and centred.

The browser only draws what this returns; a DAG that gains generated actions is laid
out again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence, Union

NODE_W = 176     # box size, px
NODE_H = 46
GAP_X = 64       # between columns
GAP_Y = 18       # between boxes of a column
GAP_DOWN = 40    # between rows, drawn top to bottom (narrow screens)
GAP_ACROSS = 14  # between boxes of a row
BEND_H = 10      # height a passing edge takes in a column
MARGIN = 12
SWEEPS = 4
MAX_BENDS = 5000   # beyond this many bend points, long edges are drawn straight (cost bound)

Key = Union[str, tuple]   # an action's name, or ("bend", source, target, column)


@dataclass
class Layout:
    width: float
    height: float
    nodes: dict = field(default_factory=dict)    # name -> {"x", "y", "layer"}
    edges: list = field(default_factory=list)    # {"from", "to", "points": [[x, y], ...]}

    def to_json(self) -> dict:
        return {"width": self.width, "height": self.height, "node_width": NODE_W, "node_height": NODE_H,
                "nodes": self.nodes, "edges": self.edges}


def assign_layers(graph: Sequence[tuple[str, Sequence[str]]], after_all: Iterable[str] = ()) -> dict[str, int]:
    """Column of each name: 0 for sources, else one past its furthest upstream.

    Upstream names not in ``graph`` are ignored; ``after_all`` names (event actions) go
    one column past everything else. A cycle (which validation rejects) cannot loop:
    what is left of it goes last.
    """
    names = [name for name, _ in graph]
    known = set(names)
    late = [n for n in after_all if n in known]
    late_set = set(late)
    ups = {name: [d for d in deps if d in known and d != name and d not in late_set]
           for name, deps in graph if name not in late_set}
    downs: dict[str, list[str]] = {name: [] for name in ups}
    missing = {name: len(set(deps)) for name, deps in ups.items()}
    for name, deps in ups.items():
        for dep in set(deps):
            downs[dep].append(name)
    layer = {name: 0 for name in ups}
    ready = [name for name in ups if missing[name] == 0]
    done: set[str] = set()
    while ready:
        name = ready.pop(0)
        done.add(name)
        for down in downs[name]:
            layer[down] = max(layer[down], layer[name] + 1)
            missing[down] -= 1
            if missing[down] == 0:
                ready.append(down)
    deepest = max(layer.values(), default=-1)
    for name in ups:
        if name not in done:   # only in a cycle
            layer[name] = deepest + 1
    last = max(layer.values(), default=-1) + 1
    for name in late:
        layer[name] = last
    return layer


def layout(graph: Sequence[tuple[str, Sequence[str]]], after_all: Iterable[str] = (), down: bool = False) -> Layout:
    """Positions for ``graph``: ``(name, upstream names)`` pairs, in the order to prefer.

    Left to right, or top to bottom with ``down`` (for narrow screens)."""
    layer = assign_layers(graph, after_all)
    columns: list[list[Key]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for name, _ in graph:
        columns[layer[name]].append(name)
    preds: dict[Key, list[Key]] = {key: [] for col in columns for key in col}
    succs: dict[Key, list[Key]] = {key: [] for key in preds}
    chains: list[tuple[str, str, list[Key]]] = []
    seen = set()
    spans = sum(max(layer[name] - layer[dep] - 1, 0) for name, deps in graph for dep in set(deps) if dep in layer)
    bend = spans <= MAX_BENDS
    for name, deps in graph:
        for dep in deps:
            if dep not in layer or dep == name or (dep, name) in seen or layer[dep] >= layer[name]:
                continue
            seen.add((dep, name))
            chain: list[Key] = [dep]
            for col in range(layer[dep] + 1, layer[name]) if bend else ():
                point = ("bend", dep, name, col)
                columns[col].append(point)
                preds[point], succs[point] = [], []
                chain.append(point)
            chain.append(name)
            for a, b in zip(chain, chain[1:]):
                succs[a].append(b)
                preds[b].append(a)
            chains.append((dep, name, chain))
    _order(columns, preds, succs)
    return _place(columns, chains, layer, down)


def _order(columns: list[list[Key]], preds: dict, succs: dict) -> None:
    """Barycenter sweeps, in place; ties keep their current order (the sort is stable)."""
    for _ in range(SWEEPS):
        for index in range(1, len(columns)):
            _sort_by(columns[index], columns[index - 1], preds)
        for index in range(len(columns) - 2, -1, -1):
            _sort_by(columns[index], columns[index + 1], succs)


def _sort_by(column: list[Key], neighbours: list[Key], links: dict) -> None:
    if len(column) < 2:
        return
    position = {key: i for i, key in enumerate(neighbours)}
    current = {key: i for i, key in enumerate(column)}

    def barycenter(key: Key) -> float:
        places = [position[k] for k in links[key] if k in position]
        if not places:
            # no neighbour on that side: stay where it is, relative to the column
            return current[key] * max(len(neighbours), 1) / max(len(column), 1)
        return sum(places) / len(places)

    column.sort(key=barycenter)


def _place(columns: list[list[Key]], chains: list, layer: dict, down: bool) -> Layout:
    """Coordinates along the main axis (columns: x, or y when ``down``) and the cross axis."""
    main_size, cross_size = (NODE_H, NODE_W) if down else (NODE_W, NODE_H)
    main_gap, cross_gap = (GAP_DOWN, GAP_ACROSS) if down else (GAP_X, GAP_Y)
    extents = [sum((cross_size if isinstance(k, str) else BEND_H) for k in col) + cross_gap * max(len(col) - 1, 0)
               for col in columns]
    widest = max(extents, default=0)
    main_total = 2 * MARGIN + len(columns) * main_size + max(len(columns) - 1, 0) * main_gap
    cross_total = 2 * MARGIN + widest

    def xy(main: float, cross: float) -> list:
        return [cross, main] if down else [main, cross]

    centre: dict[Key, float] = {}   # cross-axis centre of every key
    width, height = xy(main_total, cross_total)
    out = Layout(width=width, height=height)
    starts = []
    for index, col in enumerate(columns):
        main = MARGIN + index * (main_size + main_gap)
        starts.append(main)
        cross = MARGIN + (widest - extents[index]) / 2
        for key in col:
            size = cross_size if isinstance(key, str) else BEND_H
            if isinstance(key, str):
                x, y = xy(main, cross)
                out.nodes[key] = {"x": x, "y": y, "layer": layer[key]}
            centre[key] = cross + size / 2
            cross += size + cross_gap
    for source, target, chain in chains:
        points = [xy(starts[layer[source]] + main_size, centre[source])]
        for key in chain[1:-1]:   # straight across the column it passes
            column = starts[key[3]]
            points += [xy(column, centre[key]), xy(column + main_size, centre[key])]
        points.append(xy(starts[layer[target]], centre[target]))
        out.edges.append({"from": source, "to": target, "points": points})
    return out
