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

from .catalog import A, Parameter, W, Z
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
    #: A subscript that is not a unit number, in plain text: the "t-1" of θₜ₋₁ (optimizers).
    subscript: str | None = None


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
    #: The same value computed without overflow, for NumPy (log-sum-exp for softmax
    #: cross-entropy); ``None`` when ``expr`` itself is safe to evaluate.
    numeric: sp.Expr | None = None


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
    #: Learned parameters of the activation, by the name their array has ("alpha1" of prelu).
    learned: tuple[tuple[str, sp.Symbol], ...] = ()


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
    #: Fixed numbers of the spec (leaky relu's α, huber's Δ, λ): leaves with no gradient.
    constants: Mapping[sp.Symbol, float]

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


def _parameter_symbols(
    parameters: tuple[Parameter, ...], values: Mapping[str, float], suffix: str, layer: int | None, table: dict, constants: dict
) -> dict[str, sp.Symbol]:
    """One symbol per parameter of a catalog entry; fixed ones get their value as a constant."""
    symbols = {}
    for parameter in parameters:
        # A suffix no other name uses keeps spec-chosen names (custom constants) apart
        # from the graph's own x_1, w1_1_1, ...
        symbol = _symbol(f"{parameter.name}_{suffix}", Notation(parameter.latex, parameter.text, layer), table)
        symbols[parameter.name] = symbol
        if not parameter.learnable:
            constants[symbol] = float(values[parameter.name])
    return symbols


def build_graph(net: Network) -> Graph:
    """Name every quantity of ``net`` and define each node by its parents."""
    notation: dict[sp.Symbol, Notation] = {}
    constants: dict[sp.Symbol, float] = {}
    inputs = tuple(_symbol(f"x_{k}", Notation("x", "x", None, (k,)), notation) for k in range(1, net.inputs + 1))
    targets = tuple(_symbol(f"y_{j}", Notation("y", "y", None, (j,)), notation) for j in range(1, net.outputs + 1))
    nodes: list[Node] = []
    parameters: list[sp.Symbol] = []
    layers: list[Layer] = []
    adjoint_names: dict[sp.Symbol, sp.Symbol] = {}
    previous = inputs
    for l, (spec, choice) in enumerate(zip(net.layers, net.activations), start=1):
        activation = choice.entry
        own_params = _parameter_symbols(activation.parameters, choice.values, f"l{l}", l, notation, constants)
        learned = tuple((f"{q.name}{l}", own_params[q.name]) for q in activation.parameters if q.learnable)
        learnable = tuple(symbol for _, symbol in learned)
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
            nodes.append(Node(z, expr, tuple(row) + previous + ((b,) if spec.bias else ()), expr))
            zs.append(z)
        for j, z in enumerate(zs, start=1):
            acts.append(_symbol(f"a{l}_{j}", Notation("a", "a", l, (j,)), notation))
            delta = _symbol(f"delta{l}_{j}", Notation("\\delta", "δ", l, (j,)), notation)
            adjoint_names[z] = delta
            deltas.append(delta)
        parameters.extend(learnable)
        nodes.extend(_activation_nodes(activation, own_params, learnable, zs, acts))
        layers.append(Layer(l, choice.label, tuple(weights), tuple(biases) if spec.bias else None, previous, tuple(zs), tuple(acts), tuple(deltas), learned))
        previous = tuple(acts)
    loss = _symbol("L", Notation("L", "L"), notation)
    entry = net.loss_choice.entry
    loss_params = _parameter_symbols(entry.parameters, net.loss_choice.values, "loss", None, notation, constants)
    bound = {p.symbol: loss_params[p.name] for p in entry.parameters}
    loss_expr = entry.formula(previous, targets).xreplace(bound)
    numeric = None if entry.from_logits is None else entry.from_logits(layers[-1].z, targets).xreplace(bound)
    parents = previous + targets + tuple(loss_params.values())
    display = loss_expr if entry.textbook is None else entry.formula(previous, targets, entry.textbook).xreplace(bound)
    if net.regularizer_choice is not None:
        reg = net.regularizer_choice.entry
        reg_params = _parameter_symbols(reg.parameters, net.regularizer_choice.values, "reg", None, notation, constants)
        term = reg.term.xreplace({p.symbol: reg_params[p.name] for p in reg.parameters})
        weights_all = [w for layer in layers for row in layer.weights for w in row]
        # The penalty is a node of its own, so the loss stays small: L = (data loss) + R, and
        # ∂L/∂a never differentiates the penalty on every weight.
        penalty = _symbol("R", Notation("R", "R"), notation)
        total = sp.Add(*[term.xreplace({W: w}) for w in weights_all])
        nodes.append(Node(penalty, total, tuple(weights_all) + tuple(reg_params.values()), total))
        loss_expr = loss_expr + penalty
        display = sp.Add(display, penalty, evaluate=False)
        numeric = None if numeric is None else numeric + penalty
        parents = parents + (penalty,)
    nodes.append(Node(loss, loss_expr, parents, display, (), numeric))
    return Graph(inputs, targets, tuple(parameters), tuple(nodes), loss, tuple(layers), notation, adjoint_names, constants)


def _activation_nodes(activation, params: Mapping[str, sp.Symbol], learnable, zs, acts) -> list[Node]:
    """a = f(z) for each unit: elementwise, or (softmax) each output from the whole layer."""
    bound = {p.symbol: params[p.name] for p in activation.parameters}
    nodes = []
    if activation.elementwise:
        for z, a in zip(zs, acts):
            own = {Z: z, A: a, **bound}
            formula = activation.formula.xreplace(own)
            display = activation.display(z) if activation.display is not None else formula
            form = activation.derivative.xreplace(own)
            nodes.append(Node(a, formula, (z, *learnable), display, ((z, form),)))
        return nodes
    outputs = activation.outputs(zs)
    total = sp.Add(*[sp.exp(z) for z in zs])
    for j, (a, formula) in enumerate(zip(acts, outputs)):
        forms = tuple((z, activation.jacobian(zs, acts, j, k)) for k, z in enumerate(zs))
        nodes.append(Node(a, formula, tuple(zs), sp.exp(zs[j]) / total, forms))
    return nodes


def parameter_names(graph: Graph) -> dict[str, tuple]:
    """Map "W1", "b1", ... to the nested tuples of symbols they hold."""
    names: dict[str, tuple] = {}
    for layer in graph.layers:
        names[f"W{layer.number}"] = layer.weights
        if layer.biases is not None:
            names[f"b{layer.number}"] = layer.biases
        names.update(layer.learned)
    return names
