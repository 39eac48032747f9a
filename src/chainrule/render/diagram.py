"""The picture of a network: where each unit and connection is drawn, and which are lit.

A diagram is data (positions, labels, a flag per element); the HTML template turns it
into inline SVG. Lighting a parameter marks its own connection and every connection on a
path from it to the loss, the paths whose partial derivatives its chain multiplies.

>>> from chainrule.network import default_network
>>> from chainrule.derive import derive
>>> d = derive(default_network())
>>> pic = network_diagram(d, d.graph.parameters[0])
>>> sum(e.lit for e in pic.edges), len(pic.edges)
(5, 14)
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..derive import Derivation
from ..graph import Graph
from ..kinds import KINDS
from .printing import text_name

COLUMN = 150
ROW = 64
RADIUS = 21
MARGIN = 36
#: A layer wider than this is drawn as its first units, an ellipsis and its last unit, and
#: so is every layer wider than FIRST_UNITS + 1 if the picture would still have more weights
#: than MOST_EDGES: past that the lines are a blur (a 64-32-10 network has 2368 of them),
#: SVG pictures of it repeated per parameter ran to hundreds of megabytes, and LaTeX's
#: picture environment ran out of memory.
WIDEST_LAYER = 12
MOST_EDGES = 200
FIRST_UNITS = 3
#: Room under the units of a shortened picture for each column's size ("64 inputs").
CAPTION = 30


@dataclass(frozen=True)
class Unit:
    key: str
    label: str
    title: str
    x: float
    y: float
    kind: str  # "input", "unit", "bias", "loss", or "more" for the units an ellipsis stands for
    lit: bool
    symbol: sp.Basic | None = None
    #: A unit dropped in the worked example's first example (a dropout mask of 0): drawn crossed out.
    crossed: bool = False


@dataclass(frozen=True)
class Edge:
    key: str
    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    lit: bool
    #: True for the connection of the lit parameter itself.
    own: bool
    symbol: sp.Basic | None = None

    @property
    def label_at(self) -> tuple[float, float]:
        """Where the label goes: near the receiving unit, where the edges have fanned out."""
        return self.x1 + 0.7 * (self.x2 - self.x1), self.y1 + 0.7 * (self.y2 - self.y1) - 4


@dataclass(frozen=True)
class Caption:
    """Text under a column of a shortened picture: how many units it has."""

    text: str
    x: float
    y: float


@dataclass(frozen=True)
class Box:
    """A labelled box around a column of units: a stage that acts on its units together (a normalization)."""

    key: str
    label: str
    title: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Arc:
    """A skip connection: a curve from a unit of an earlier column over the columns between to a sum."""

    key: str
    x1: float
    y1: float
    x2: float
    y2: float
    #: How far below its lower end the curve dips (SVG y grows downward): the arcs run under the units.
    dip: float
    lit: bool = False


@dataclass(frozen=True)
class Diagram:
    width: float
    height: float
    units: tuple[Unit, ...]
    edges: tuple[Edge, ...]
    lit: str | None
    #: Whether the edges have room for their parameter's name.
    labels: bool
    #: Column sizes, when some columns are drawn shortened.
    captions: tuple[Caption, ...] = ()
    boxes: tuple[Box, ...] = ()
    arcs: tuple[Arc, ...] = ()
    #: What the boxes, crossed-out units and sums stand for: the kinds' captions, in order.
    legend: tuple[str, ...] = ()


def _descendants(derivation: Derivation, start: sp.Symbol) -> set[sp.Symbol]:
    children: dict[sp.Symbol, list[sp.Symbol]] = {}
    for node in derivation.graph.nodes:
        for parent in node.parents:
            children.setdefault(parent, []).append(node.symbol)
    seen: set[sp.Symbol] = set()
    todo = [start]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def _own_units(graph: Graph, lit: sp.Symbol | None) -> dict[int, set[int]]:
    """Column -> rows of the units joined by ``lit``'s own connection, which must be drawn."""
    own: dict[int, set[int]] = {}
    for layer in graph.layers:
        for j, row in enumerate(layer.weights):
            for k, w in enumerate(row):
                if w == lit:
                    own.setdefault(layer.number - 1, set()).add(k)
                    own.setdefault(layer.number, set()).add(j)
            if layer.biases is not None and layer.biases[j] == lit:
                own.setdefault(layer.number, set()).add(j)
    return own


def _drawn(sizes: list[int], own: dict[int, set[int]]) -> list[list[int | tuple[int, int]]]:
    """Each column's rows: a unit's index, or (first, last) for the run an ellipsis stands for."""

    def weights(widest: int) -> int:
        kept = [n if n <= widest else FIRST_UNITS + 1 for n in sizes]
        return sum(m * n for m, n in zip(kept, kept[1:]))

    widest = WIDEST_LAYER if weights(WIDEST_LAYER) <= MOST_EDGES else FIRST_UNITS + 1
    columns: list[list[int | tuple[int, int]]] = []
    for column, n in enumerate(sizes):
        shown = sorted(set(range(FIRST_UNITS)) | {n - 1} | own.get(column, set())) if n > widest else range(n)
        rows: list[int | tuple[int, int]] = []
        for before, index in zip([-1, *shown], shown):
            # An ellipsis takes a unit's room: it stands for two units or more.
            if index == before + 2:
                rows.append(before + 1)
            elif index > before + 2:
                rows.append((before + 1, index - 1))
            rows.append(index)
        columns.append(rows)
    return columns


def network_diagram(derivation: Derivation, lit: sp.Symbol | None = None, example=None) -> Diagram:
    """Lay out the network left to right; with ``lit``, mark that parameter's paths to the loss.

    A network too big to draw whole is drawn shortened (see WIDEST_LAYER); every unit on
    ``lit``'s own connection is drawn even then. Each stage is drawn as its kind's
    ``picture`` says: units, a box around them, units some of which are crossed out (those
    ``example`` drops in its first example), or sums with an arc from the skip's units.
    Over a batch, the units drawn are those of the first example.
    """
    graph, notation = derivation.graph, derivation.notation
    stages = derivation.network.stages
    pictures = [KINDS[stage.kind].picture(stage) for stage in stages]
    downstream = _descendants(derivation, lit) if lit is not None else set()
    first_inputs = graph.inputs[: derivation.network.inputs]
    columns = [first_inputs, *(layer.output_grid[0] for layer in graph.layers)]
    rows = _drawn([len(c) for c in columns], _own_units(graph, lit))
    shortened = any(isinstance(index, tuple) for column in rows for index in column)
    tallest = max(len(rows[0]), *(len(rows[layer.number]) + (layer.biases is not None) for layer in graph.layers))
    height = 2 * MARGIN + (tallest - 1) * ROW

    def place(column: int, row: int, count: int) -> tuple[float, float]:
        return MARGIN + column * COLUMN, height / 2 + (row - (count - 1) / 2) * ROW

    dropped: set[sp.Symbol] = set()
    if example is not None:
        for layer in graph.layers:
            for grid in layer.leaves.values():
                dropped |= {out for out, m in zip(layer.output_grid[0], grid[0]) if example.values.get(m, 1.0) == 0}
    units: list[Unit] = []
    position: dict[sp.Symbol, tuple[float, float]] = {}
    for column, symbols in enumerate(columns):
        style = pictures[column - 1].style if column else "input"
        for row, index in enumerate(rows[column]):
            if isinstance(index, tuple):
                first, last = index[0] + 1, index[1] + 1
                title = f"inputs {first} to {last}" if column == 0 else f"units {first} to {last} of layer {column}"
                at = place(column, row, len(rows[column]))
                units.append(Unit(f"more{column}_{first}", "⋮", title + ", not drawn", *at, "more", False))
                continue
            symbol = symbols[index]
            position[symbol] = place(column, row, len(rows[column]))
            kind = "input" if column == 0 else "sum" if style == "sum" else "unit"
            title = text_name(symbol, notation)
            label = "+" if style == "sum" else title
            crossed = symbol in dropped
            if crossed:
                title += ", dropped in the first example (mask 0)"
            units.append(Unit(str(symbol), label, title, *position[symbol], kind, symbol in downstream, symbol, crossed))
    edges: list[Edge] = []
    boxes: list[Box] = []
    arcs: list[Arc] = []
    for layer, picture in zip(graph.layers, pictures):
        x_bias = MARGIN + (layer.number - 0.5) * COLUMN
        y_bias = MARGIN / 2 + 4
        outputs, inputs = layer.output_grid[0], layer.input_grid[0]
        if layer.biases is not None:
            units.append(Unit(f"one{layer.number}", "+1", "bias input of layer " + str(layer.number), x_bias, y_bias, "bias", False))
        if picture.style == "box":
            drawn = [position[a][1] for a in outputs if a in position]
            x = MARGIN + layer.number * COLUMN
            top, bottom = min(drawn) - RADIUS - 22, max(drawn) + RADIUS + 6
            boxes.append(Box(f"box{layer.number}", picture.label, picture.caption, x - RADIUS - 8, top, 2 * RADIUS + 16, bottom - top))
        for j, a in enumerate(outputs):
            if a not in position:
                continue
            x2, y2 = position[a]
            if not layer.weights:
                # Unit by unit: a⁽ˡ⁾ⱼ reads a⁽ˡ⁻¹⁾ⱼ (and, for a sum, the skip's unit j too).
                if inputs[j] in position:
                    edges.append(Edge(f"{inputs[j]}_{a}", "", *position[inputs[j]], x2, y2, inputs[j] in downstream, False))
                if layer.skip is not None:
                    skip = columns[layer.skip][j]
                    if skip in position:
                        x1, y1 = position[skip]
                        arcs.append(Arc(f"skip{layer.number}_{j + 1}", x1, y1 + RADIUS, x2, y2 + RADIUS, 0, skip in downstream))
                continue
            for k, source in enumerate(inputs):
                if source not in position:
                    continue
                w = layer.weights[j][k]
                lit_edge = w == lit or source in downstream
                edges.append(Edge(str(w), text_name(w, notation), *position[source], x2, y2, lit_edge, w == lit, w))
            if layer.biases is not None:
                b = layer.biases[j]
                edges.append(Edge(str(b), text_name(b, notation), x_bias, y_bias, x2, y2, b == lit, b == lit, b))
    x_loss = MARGIN + len(columns) * COLUMN - COLUMN / 3
    y_loss = height / 2
    units.append(Unit("L", "L", "loss", x_loss, y_loss, "loss", lit is not None, graph.loss))
    for a in columns[-1]:
        if a in position:
            edges.append(Edge(f"{a}_L", "", *position[a], x_loss, y_loss, a in downstream, False))
    width = x_loss + MARGIN
    if arcs:
        # The skip arcs run under the units: the lowest unit of their span, then room for the curve.
        lowest = max(u.y for u in units) + RADIUS
        arcs = [Arc(a.key, a.x1, a.y1, a.x2, a.y2, lowest + 18 + 10 * i - max(a.y1, a.y2), a.lit) for i, a in enumerate(arcs)]
        height = max(height, lowest + 18 + 10 * len(arcs) + 8)
    captions: tuple[Caption, ...] = ()
    if shortened:
        sizes = [len(c) for c in columns]
        words = [f"{sizes[0]} input{'s' if sizes[0] > 1 else ''}"] + [f"{n} unit{'s' if n > 1 else ''}" for n in sizes[1:]]
        below = max(u.y for u in units if u.kind != "loss") + RADIUS + CAPTION / 2
        captions = tuple(Caption(text, MARGIN + column * COLUMN, below) for column, text in enumerate(words))
        height = max(height, below + CAPTION / 2)
    legend = tuple(dict.fromkeys(p.caption for p in pictures if p.style != "units"))
    if dropped:
        legend += ("a crossed-out unit is dropped in the worked example's first example (its mask is 0)",)
    return Diagram(width, height, tuple(units), tuple(edges), str(lit) if lit is not None else None, tallest <= 3, captions,
                   tuple(boxes), tuple(arcs), legend)  # fmt: skip
