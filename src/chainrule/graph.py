"""The symbolic graph of a network: a named SymPy symbol for every quantity.

Notation (Nielsen's): w⁽ˡ⁾ⱼₖ joins unit k of layer l-1 to unit j of layer l,
z⁽ˡ⁾ⱼ = Σₖ w⁽ˡ⁾ⱼₖ a⁽ˡ⁻¹⁾ₖ + b⁽ˡ⁾ⱼ, a⁽ˡ⁾ⱼ = f(z⁽ˡ⁾ⱼ), δ⁽ˡ⁾ⱼ = ∂L/∂z⁽ˡ⁾ⱼ, and a⁽⁰⁾ₖ = xₖ.
Indices in documents count from 1. Symbol names are plain identifiers (``w1_2_1`` is
w⁽¹⁾₂₁) so that generated NumPy code can use them; how each is written lives in
``Graph.notation``.

Each node is defined by an expression in its parents. Nothing here knows which
activation or loss it holds: the catalog supplies expressions, and the optional
textbook forms of a node's partial derivatives (``Node.forms``).

>>> from chainrule.network import Network, Dense
>>> g = build_graph(Network(2, (Dense(1, "sigmoid"),), "half_sse"))
>>> [str(n.symbol) for n in g.nodes]
['z1_1', 'a1_1', 'L']
>>> g.nodes[0].expr
b1_1 + w1_1_1*x_1 + w1_1_2*x_2
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from .catalog import ACTIVATIONS, LOSSES, A, Z
from .network import Network


@dataclass(frozen=True)
class Notation:
    """How one symbol is written: a base letter, an optional layer superscript, indices."""

    base: str  # LaTeX: "w", "\\delta", "\\mathcal{L}"
    text: str  # Unicode: "w", "δ", "L"
    layer: int | None = None
    indices: tuple[int, ...] = ()
    #: Written as ∂of/∂(this symbol): for vectors of gradients such as ∂L/∂W⁽ˡ⁾.
    of: str | None = None
    #: Written as this symbol applied to ``arg``: f′⁽ˡ⁾(z⁽ˡ⁾).
    arg: Notation | None = None


@dataclass(frozen=True)
class Node:
    """A computed quantity: ``symbol = expr``, with ``expr`` written in parent symbols."""

    symbol: sp.Symbol
    expr: sp.Expr
    parents: tuple[sp.Symbol, ...]
    #: The definition as a reader sees it (σ(z) rather than 1/(1+exp(-z))).
    display: sp.Expr
    #: Textbook forms of ∂symbol/∂parent, in forward symbols, where the catalog has them.
    forms: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()


@dataclass(frozen=True)
class Layer:
    """The symbols of one dense layer, for layer-level equations and numeric arrays."""

    number: int
    activation: str
    weights: tuple[tuple[sp.Symbol, ...], ...]  # [j][k]
    biases: tuple[sp.Symbol, ...] | None
    inputs: tuple[sp.Symbol, ...]  # a⁽ˡ⁻¹⁾ (x for the first layer)
    z: tuple[sp.Symbol, ...]
    a: tuple[sp.Symbol, ...]
    deltas: tuple[sp.Symbol, ...]


@dataclass(frozen=True)
class Graph:
    """Leaves (inputs, targets, parameters) and nodes in topological order, ending in the loss."""

    inputs: tuple[sp.Symbol, ...]
    targets: tuple[sp.Symbol, ...]
    parameters: tuple[sp.Symbol, ...]
    nodes: tuple[Node, ...]
    loss: sp.Symbol
    layers: tuple[Layer, ...]
    notation: Mapping[sp.Symbol, Notation]
    #: Nodes whose ∂L/∂node has a name of its own (z -> δ); other adjoints are written out.
    adjoint_names: Mapping[sp.Symbol, sp.Symbol]

    def node(self, symbol: sp.Symbol) -> Node:
        for node in self.nodes:
            if node.symbol == symbol:
                return node
        raise KeyError(symbol)

    @property
    def outputs(self) -> tuple[sp.Symbol, ...]:
        return self.layers[-1].a


def _symbol(name: str, notation: Notation, table: dict[sp.Symbol, Notation]) -> sp.Symbol:
    symbol = sp.Symbol(name, real=True)
    table[symbol] = notation
    return symbol


def build_graph(net: Network) -> Graph:
    """Name every quantity of ``net`` and define each node by its parents."""
    notation: dict[sp.Symbol, Notation] = {}
    inputs = tuple(_symbol(f"x_{k}", Notation("x", "x", None, (k,)), notation) for k in range(1, net.inputs + 1))
    targets = tuple(_symbol(f"y_{j}", Notation("y", "y", None, (j,)), notation) for j in range(1, net.outputs + 1))
    nodes: list[Node] = []
    parameters: list[sp.Symbol] = []
    layers: list[Layer] = []
    adjoint_names: dict[sp.Symbol, sp.Symbol] = {}
    previous = inputs
    for l, spec in enumerate(net.layers, start=1):
        activation = ACTIVATIONS[spec.activation]
        weights, biases, zs, acts, deltas = [], [], [], [], []
        for j in range(1, spec.units + 1):
            row = tuple(
                _symbol(f"w{l}_{j}_{k}", Notation("w", "w", l, (j, k)), notation) for k in range(1, len(previous) + 1)
            )
            weights.append(row)
            parameters.extend(row)
            expr = sp.Add(*[w * a for w, a in zip(row, previous)])
            if spec.bias:
                b = _symbol(f"b{l}_{j}", Notation("b", "b", l, (j,)), notation)
                biases.append(b)
                parameters.append(b)
                expr = expr + b
            z = _symbol(f"z{l}_{j}", Notation("z", "z", l, (j,)), notation)
            a = _symbol(f"a{l}_{j}", Notation("a", "a", l, (j,)), notation)
            delta = _symbol(f"delta{l}_{j}", Notation("\\delta", "δ", l, (j,)), notation)
            nodes.append(Node(z, expr, tuple(row) + previous + ((b,) if spec.bias else ()), expr))
            own = {Z: z, A: a}
            display = activation.display(z) if activation.display is not None else activation.formula.xreplace(own)
            nodes.append(Node(a, activation.formula.xreplace(own), (z,), display, ((z, activation.derivative.xreplace(own)),)))
            adjoint_names[z] = delta
            zs.append(z)
            acts.append(a)
            deltas.append(delta)
        layers.append(
            Layer(l, spec.activation, tuple(weights), tuple(biases) if spec.bias else None, previous, tuple(zs), tuple(acts), tuple(deltas))
        )
        previous = tuple(acts)
    loss = _symbol("L", Notation("L", "L"), notation)
    loss_expr = LOSSES[net.loss].formula(previous, targets)
    nodes.append(Node(loss, loss_expr, previous + targets, loss_expr))
    return Graph(inputs, targets, tuple(parameters), tuple(nodes), loss, tuple(layers), notation, adjoint_names)


def parameter_names(graph: Graph) -> dict[str, tuple]:
    """Map "W1", "b1", ... to the nested tuples of symbols they hold."""
    names: dict[str, tuple] = {}
    for layer in graph.layers:
        names[f"W{layer.number}"] = layer.weights
        if layer.biases is not None:
            names[f"b{layer.number}"] = layer.biases
    return names
