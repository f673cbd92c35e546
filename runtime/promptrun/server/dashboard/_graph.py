"""A workflow drawn as a graph: a layered DAG layout, as data a template turns into SVG.

Pure: the definition in, boxes and curves out. Values flow left to right: each node sits one
layer after the latest node it reads from (the longest path from a source), so a column holds
what can run together. An edge that spans several layers passes through invisible waypoints
(one per layer it crosses), and each layer is reordered a few times by the mean position of
its neighbours (the barycentre heuristic), which untangles most crossings. Edges from a
conditional to its branches are labelled ``true`` and ``false``; output nodes are marked;
with an execution's node statuses each box takes its status's colour.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from promptrun.workflows.definition import DefinitionError, parse_definition

__all__ = ["Graph", "GraphEdge", "GraphNode", "workflow_graph"]

NODE_W = 184
NODE_H = 54
STATUS_H = 16  # a third line in each box when an execution's statuses are shown
COLUMN = 258  # from one layer's left edge to the next's
GAP = 24  # between two boxes of one column
MARGIN = 16
_SWEEPS = 4
_NAME_CHARS = 22


@dataclass(frozen=True, slots=True)
class GraphNode:
    name: str
    label: str  # the name, shortened to fit its box
    kind: str
    x: float
    y: float
    output: bool
    status: str | None


@dataclass(frozen=True, slots=True)
class GraphEdge:
    source: str
    target: str
    path: str  # SVG path data
    label: str  # "true" / "false" on a conditional's branches, else ""
    label_x: float
    label_y: float


@dataclass(frozen=True, slots=True)
class Graph:
    width: float
    height: float
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    node_width: float = NODE_W
    node_height: float = NODE_H


def _layers(order: list[str], preds: Mapping[str, set[str]]) -> dict[str, int]:
    layer: dict[str, int] = {}
    visiting: set[str] = set()

    def place(name: str) -> int:
        if name in layer:
            return layer[name]
        if name in visiting:  # a cycle a stored definition should not have: cut it here
            return 0
        visiting.add(name)
        layer[name] = 1 + max((place(p) for p in preds[name]), default=-1)
        visiting.discard(name)
        return layer[name]

    for name in order:
        place(name)
    return layer


def _order(
    columns: list[list[str]], ups: Mapping[str, list[str]], downs: Mapping[str, list[str]]
) -> None:
    """Reorder each column in place by its neighbours' mean position, sweeping both ways."""
    for sweep in range(_SWEEPS):
        forward = sweep % 2 == 0
        indices = range(1, len(columns)) if forward else range(len(columns) - 2, -1, -1)
        for i in indices:
            neighbour = columns[i - 1] if forward else columns[i + 1]
            links = ups if forward else downs
            position = {name: p for p, name in enumerate(neighbour)}
            current = {name: p for p, name in enumerate(columns[i])}
            mean: dict[str, float] = {}
            for name in columns[i]:
                linked = [position[n] for n in links[name] if n in position]
                mean[name] = sum(linked) / len(linked) if linked else current[name]
            columns[i].sort(key=lambda name: (mean[name], current[name]))


def workflow_graph(definition: Any, statuses: Mapping[str, str] | None = None) -> Graph | None:
    """The layout of a stored definition (None if it no longer parses)."""
    try:
        spec = parse_definition(definition)
    except DefinitionError:
        return None
    names = list(spec.nodes)
    preds = {name: set(spec.nodes[name].dependencies) for name in names}
    branch_of: dict[tuple[str, str], str] = {}
    for conditional, (if_true, if_false) in spec.branches().items():
        for target in if_true:
            branch_of[(conditional, target)] = "true"
        for target in if_false:
            branch_of[(conditional, target)] = "false"
    layer = _layers(names, preds)
    # Long edges become chains through one waypoint per layer they cross.
    ups: dict[str, list[str]] = {name: [] for name in names}
    downs: dict[str, list[str]] = {name: [] for name in names}
    chains: list[tuple[str, str, list[str]]] = []
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=0) + 1)]
    for name in names:
        columns[layer[name]].append(name)
    for target in names:
        for source in sorted(preds[target], key=names.index):
            if layer[source] >= layer[target]:
                continue  # only from a cut cycle
            chain = [source]
            for between in range(layer[source] + 1, layer[target]):
                waypoint = f"\x00{source}\x00{target}\x00{between}"
                columns[between].append(waypoint)
                ups[waypoint], downs[waypoint] = [], []
                chain.append(waypoint)
            chain.append(target)
            for a, b in itertools.pairwise(chain):
                downs[a].append(b)
                ups[b].append(a)
            chains.append((source, target, chain[1:-1]))
    _order(columns, ups, downs)
    height = NODE_H + (STATUS_H if statuses is not None else 0)
    row = height + GAP
    tallest = max((len(c) for c in columns), default=1)
    point: dict[str, tuple[float, float]] = {}
    for i, column in enumerate(columns):
        offset = (tallest - len(column)) * row / 2  # centre each column
        for slot, name in enumerate(column):
            point[name] = (MARGIN + i * COLUMN, MARGIN + offset + slot * row)
    nodes = [
        GraphNode(
            name=name,
            label=name if len(name) <= _NAME_CHARS else name[: _NAME_CHARS - 1] + "…",
            kind=spec.nodes[name].type,
            x=point[name][0],
            y=point[name][1],
            output=spec.nodes[name].is_output_node,
            status=(statuses or {}).get(name),
        )
        for name in names
    ]
    # Where several edges leave or reach one box, spread their ends along its side, in the
    # order of where they come from or go to, so each arrow and its label can be told apart.
    outs: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
    ins: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
    for index, (source, target, waypoints) in enumerate(chains):
        outs[source].append((point[(waypoints or [target])[0]][1], index))
        ins[target].append((point[(waypoints or [source])[-1]][1], index))
    start: dict[int, float] = {}
    end: dict[int, float] = {}
    for ends, found in ((outs, start), (ins, end)):
        for listed in ends.values():
            step = min(10.0, height * 0.6 / max(1, len(listed) - 1))
            for slot, (_, index) in enumerate(sorted(listed)):
                found[index] = height / 2 + (slot - (len(listed) - 1) / 2) * step
    edges = [
        _edge(
            source,
            target,
            waypoints,
            point,
            (start[i], end[i], height / 2),
            branch_of.get((source, target), ""),
        )
        for i, (source, target, waypoints) in enumerate(chains)
    ]
    return Graph(
        width=MARGIN * 2 + (len(columns) - 1) * COLUMN + NODE_W,
        height=MARGIN * 2 + (tallest - 1) * row + height,
        nodes=nodes,
        edges=edges,
        node_height=height,
    )


def _edge(
    source: str,
    target: str,
    waypoints: list[str],
    point: Mapping[str, tuple[float, float]],
    ends: tuple[float, float, float],
    label: str,
) -> GraphEdge:
    """A smooth curve from the source's right side, through the waypoints, to the target's
    left side (where the arrowhead is); a branch's label sits just before the arrowhead.
    ``ends``: how far down the source's and the target's sides it leaves and arrives, and
    the middle (where it passes waypoints)."""
    leave, arrive, middle = ends
    sx, sy = point[source]
    tx, ty = point[target]
    stops = [(sx + NODE_W, sy + leave)]
    for waypoint in waypoints:
        wx, wy = point[waypoint]
        stops += [(wx, wy + middle), (wx + NODE_W, wy + middle)]
    stops.append((tx - 2, ty + arrive))
    parts = [f"M{stops[0][0]:g},{stops[0][1]:g}"]
    for (x1, y1), (x2, y2) in itertools.pairwise(stops):
        bend = (x2 - x1) / 2
        parts.append(f"C{x1 + bend:g},{y1:g} {x2 - bend:g},{y2:g} {x2:g},{y2:g}")
    return GraphEdge(
        source=source,
        target=target,
        path=" ".join(parts),
        label=label,
        label_x=tx - 40,
        label_y=ty + arrive - 5,
    )
