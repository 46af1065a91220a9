"""StepGraph -> picture coordinates: layers, node boxes, edge curves and label boxes.

The frontend only draws what this returns. Layers are the longest path from a source step, so
every edge points down; an edge that spans several layers passes through a waypoint in each
layer between, which takes room there like a thin node, so no edge runs through a step. Within
a layer, items are ordered by the mean position of what feeds them (one downward sweep), ties
in notebook order. Sizes assume the monospace font the frontend draws with (0.6 em a char).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nb2pipe.model import Edge, StepGraph

NODE_FONT = 12
LABEL_FONT = 11
CHAR_WIDTH = 0.6  # of the font size, for a monospace font
NODE_HEIGHT = 32
NODE_PADDING = 24
NODE_MIN_WIDTH = 72
WAYPOINT_WIDTH = 16
NODE_GAP = 28  # between neighbours in a layer
LAYER_GAP = 64  # between layers: the edges and their labels live here
LABEL_HEIGHT = 16
LABEL_PADDING = 8
LABEL_GAP = 6
LABEL_MAX_NAMES = 3
MARGIN = 16

Point = tuple[float, float]


@dataclass
class _Item:
    """A step's box, or a waypoint of a long edge, in one layer."""

    key: str
    layer: int
    width: float
    order: int  # notebook order of the step (of the edge's target, for a waypoint)
    feeds: list[str] = field(default_factory=list)  # items in the layer above that lead here
    x: float = 0.0

    @property
    def center(self) -> float:
        return self.x + self.width / 2

    def y(self) -> float:
        return MARGIN + self.layer * (NODE_HEIGHT + LAYER_GAP)


def layers(graph: StepGraph) -> dict[str, int]:
    """Layer of each step: 0 for a step with no incoming edge, else 1 + its deepest source."""
    incoming: dict[str, list[str]] = {s.name: [] for s in graph.steps}
    for edge in graph.edges:
        incoming[edge.target].append(edge.source)
    layer: dict[str, int] = {}
    for name in graph.order:
        layer[name] = max((layer[s] + 1 for s in incoming[name] if s in layer), default=0)
    for step in graph.steps:  # a cycle leaves steps out of `order`; draw them at the top
        layer.setdefault(step.name, 0)
    return layer


def edge_label(variables: tuple[str, ...]) -> str:
    shown = ", ".join(variables[:LABEL_MAX_NAMES])
    more = len(variables) - LABEL_MAX_NAMES
    return f"{shown}, +{more}" if more > 0 else shown


def layout(graph: StepGraph) -> dict[str, Any]:
    """The drawing of the graph as JSON: sizes, node boxes, edge curves and label boxes."""
    layer_of = layers(graph)
    notebook_order = {s.name: i for i, s in enumerate(graph.steps)}
    items = {
        s.name: _Item(s.name, layer_of[s.name],
                      max(NODE_MIN_WIDTH, len(s.name) * NODE_FONT * CHAR_WIDTH + NODE_PADDING),
                      notebook_order[s.name])
        for s in graph.steps
    }
    routes = {}  # edge -> the items it passes, source to target
    for edge in graph.edges:
        route = [edge.source]
        for layer in range(layer_of[edge.source] + 1, max(layer_of[edge.target],
                                                          layer_of[edge.source] + 1)):
            key = f"{edge.source}->{edge.target}@{layer}"
            items[key] = _Item(key, layer, WAYPOINT_WIDTH, notebook_order[edge.target])
            route.append(key)
        route.append(edge.target)
        for above, below in zip(route, route[1:], strict=False):
            items[below].feeds.append(above)
        routes[(edge.source, edge.target)] = route
    rows = _ordered_rows(items)
    inner_width = _place(rows)

    edges = [_edge(e, [items[k] for k in routes[(e.source, e.target)]], graph) for e in graph.edges]
    _separate_labels(edges)
    boxes = [e["label_box"] for e in edges if e["label_box"]]
    left = min([MARGIN] + [b["x"] for b in boxes])
    shift = MARGIN - left  # labels pushed past the left edge move the whole picture right
    right = max([MARGIN + inner_width] + [b["x"] + b["width"] for b in boxes])
    if shift > 0:
        for item in items.values():
            item.x += shift
        edges = [_edge(e, [items[k] for k in routes[(e.source, e.target)]], graph)
                 for e in graph.edges]
        _separate_labels(edges)
        right += shift
    rows_count = len(rows)
    first_cells = {s.name: s.first_cell for s in graph.steps}
    return {
        "width": round(right + MARGIN, 1),
        "height": round(2 * MARGIN + rows_count * NODE_HEIGHT + max(rows_count - 1, 0) * LAYER_GAP,
                        1),
        "node_font": NODE_FONT,
        "label_font": LABEL_FONT,
        "nodes": [
            {
                "name": s.name,
                "layer": items[s.name].layer,
                "first_cell": first_cells[s.name],
                "x": round(items[s.name].x, 1),
                "y": round(items[s.name].y(), 1),
                "width": round(items[s.name].width, 1),
                "height": NODE_HEIGHT,
            }
            for s in graph.steps
        ],
        "edges": edges,
    }


def _ordered_rows(items: dict[str, _Item]) -> list[list[_Item]]:
    """Each layer left to right: by the mean position of the items feeding it, then notebook
    order (steps before the waypoints of edges into the same step)."""
    count = max((i.layer for i in items.values()), default=-1) + 1
    rows: list[list[_Item]] = [[] for _ in range(count)]
    for item in items.values():
        rows[item.layer].append(item)
    position: dict[str, int] = {}
    for row in rows:
        def key(item: _Item) -> tuple[float, int, int]:
            feeds = [position[f] for f in item.feeds if f in position]
            mean = sum(feeds) / len(feeds) if feeds else -1.0
            return (mean, item.order, "@" in item.key)
        row.sort(key=key)
        position.update((item.key, index) for index, item in enumerate(row))
    return rows


def _place(rows: list[list[_Item]]) -> float:
    """x of every item: each layer centred on the widest. Returns the widest layer's width."""
    widths = [sum(i.width for i in row) + NODE_GAP * (len(row) - 1) for row in rows]
    inner = max(widths, default=0.0)
    for row, width in zip(rows, widths, strict=True):
        x = MARGIN + (inner - width) / 2
        for item in row:
            item.x = x
            x += item.width + NODE_GAP
    return inner


def _edge(edge: Edge, route: list[_Item], graph: StepGraph) -> dict[str, Any]:
    """A curve down through the route's items, and the label's box in one of its gaps."""
    anchors: list[Point] = [(route[0].center, route[0].y() + NODE_HEIGHT)]
    for waypoint in route[1:-1]:
        anchors += [(waypoint.center, waypoint.y()), (waypoint.center, waypoint.y() + NODE_HEIGHT)]
    anchors.append((route[-1].center, route[-1].y()))
    points: list[Point] = [anchors[0]]
    for start, end in zip(anchors, anchors[1:], strict=False):
        bend = (end[1] - start[1]) / 2
        points += [(start[0], start[1] + bend), (end[0], end[1] - bend), end]
    label = edge_label(edge.variables)
    label_box = None
    if label:
        # fan-out: near the target, where the curves have spread; fan-in: near the source
        fan_out = sum(e.source == edge.source for e in graph.edges)
        fan_in = sum(e.target == edge.target for e in graph.edges)
        segment = len(anchors) - 2 if fan_out >= fan_in else 0
        curve = points[3 * segment: 3 * segment + 4]
        x, y = _point_at_height(curve, (curve[0][1] + curve[3][1]) / 2)
        width = len(label) * LABEL_FONT * CHAR_WIDTH + LABEL_PADDING
        label_box = {"x": x - width / 2, "y": y - LABEL_HEIGHT / 2, "width": width,
                     "height": LABEL_HEIGHT}
    return {
        "source": edge.source,
        "target": edge.target,
        "variables": list(edge.variables),
        "label": label,
        "dashed": not edge.variables,
        "points": [[round(px, 1), round(py, 1)] for px, py in points],
        "label_box": label_box,
    }


def _bezier(points: list[Point], t: float) -> Point:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points
    u = 1 - t
    return (
        u**3 * x0 + 3 * u**2 * t * x1 + 3 * u * t**2 * x2 + t**3 * x3,
        u**3 * y0 + 3 * u**2 * t * y1 + 3 * u * t**2 * y2 + t**3 * y3,
    )


def _point_at_height(points: list[Point], y: float) -> Point:
    """The point of a downward curve at height y (bisection: y grows with t)."""
    low, high = 0.0, 1.0
    for _ in range(40):
        mid = (low + high) / 2
        if _bezier(points, mid)[1] < y:
            low = mid
        else:
            high = mid
    return _bezier(points, (low + high) / 2)


def _separate_labels(edges: list[dict[str, Any]]) -> None:
    """Labels in the same gap that would overlap are pushed apart, left to right."""
    bands: dict[float, list[dict[str, Any]]] = {}
    for edge in edges:
        if edge["label_box"]:
            bands.setdefault(round(edge["label_box"]["y"], 1), []).append(edge["label_box"])
    for boxes in bands.values():
        boxes.sort(key=lambda b: b["x"])
        for before, box in zip(boxes, boxes[1:], strict=False):
            box["x"] = max(box["x"], before["x"] + before["width"] + LABEL_GAP)
        for box in boxes:
            for key in ("x", "y", "width"):
                box[key] = round(box[key], 1)
