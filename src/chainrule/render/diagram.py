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
from .printing import text_name

COLUMN = 150
ROW = 64
RADIUS = 21
MARGIN = 36


@dataclass(frozen=True)
class Unit:
    key: str
    label: str
    title: str
    x: float
    y: float
    kind: str  # "input", "unit", "bias" or "loss"
    lit: bool
    symbol: sp.Basic | None = None


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
class Diagram:
    width: float
    height: float
    units: tuple[Unit, ...]
    edges: tuple[Edge, ...]
    lit: str | None
    #: Whether the edges have room for their parameter's name.
    labels: bool


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


def network_diagram(derivation: Derivation, lit: sp.Symbol | None = None) -> Diagram:
    """Lay out the network left to right; with ``lit``, mark that parameter's paths to the loss."""
    graph, notation = derivation.graph, derivation.notation
    downstream = _descendants(derivation, lit) if lit is not None else set()
    tallest = max(len(graph.inputs), *(len(layer.a) + (layer.biases is not None) for layer in graph.layers))
    height = 2 * MARGIN + (tallest - 1) * ROW
    columns = [graph.inputs, *(layer.a for layer in graph.layers)]

    def place(column: int, row: int, count: int) -> tuple[float, float]:
        return MARGIN + column * COLUMN, height / 2 + (row - (count - 1) / 2) * ROW

    units: list[Unit] = []
    position: dict[sp.Symbol, tuple[float, float]] = {}
    for column, symbols in enumerate(columns):
        for row, symbol in enumerate(symbols):
            position[symbol] = place(column, row, len(symbols))
            kind = "input" if column == 0 else "unit"
            title = text_name(symbol, notation)
            units.append(Unit(str(symbol), title, title, *position[symbol], kind, symbol in downstream, symbol))
    edges: list[Edge] = []
    for layer in graph.layers:
        x_bias = MARGIN + (layer.number - 0.5) * COLUMN
        y_bias = MARGIN / 2 + 4
        if layer.biases is not None:
            units.append(Unit(f"one{layer.number}", "+1", "bias input of layer " + str(layer.number), x_bias, y_bias, "bias", False))
        for j, a in enumerate(layer.a):
            x2, y2 = position[a]
            for k, source in enumerate(layer.inputs):
                w = layer.weights[j][k]
                lit_edge = w == lit or source in downstream
                edges.append(Edge(str(w), text_name(w, notation), *position[source], x2, y2, lit_edge, w == lit, w))
            if layer.biases is not None:
                b = layer.biases[j]
                edges.append(Edge(str(b), text_name(b, notation), x_bias, y_bias, x2, y2, b == lit, b == lit, b))
    x_loss = MARGIN + len(columns) * COLUMN - COLUMN / 3
    y_loss = height / 2
    units.append(Unit("L", "L", "loss", x_loss, y_loss, "loss", lit is not None, graph.loss))
    for a in graph.outputs:
        edges.append(Edge(f"{a}_L", "", *position[a], x_loss, y_loss, a in downstream, False))
    width = x_loss + MARGIN
    return Diagram(width, height, tuple(units), tuple(edges), str(lit) if lit is not None else None, tallest <= 3)
