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

from .catalog import Parameter, W
from .kinds import KINDS, Layer
from .network import Network
from .symbols import Node, Notation


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
    #: Fixed numbers of the spec (leaky relu's α, huber's Δ, λ, batch norm's ε): leaves with no gradient.
    constants: Mapping[sp.Symbol, float]
    #: How many examples the graph holds (their mean is the loss).
    batch: int = 1
    #: Per-example leaves with no gradient, such as dropout's mask entries.
    masks: tuple[sp.Symbol, ...] = ()

    def node(self, symbol: sp.Symbol) -> Node:
        for node in self.nodes:
            if node.symbol == symbol:
                return node
        raise KeyError(symbol)

    @property
    def outputs(self) -> tuple[sp.Symbol, ...]:
        return self.layers[-1].a


class GraphBuilder:
    """What a layer kind adds its nodes through: named symbols, nodes, leaves and adjoint names.

    Over a batch of one, symbols have no example index (z⁽¹⁾₂); over a larger batch the
    example comes first (z⁽¹⁾₃,₂ is unit 2 of example 3), as in the batch matrices.
    """

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.written: dict[sp.Symbol, Notation] = {}
        self.constants: dict[sp.Symbol, float] = {}
        self.nodes: list[Node] = []
        self.parameters: list[sp.Symbol] = []
        self.masks: list[sp.Symbol] = []
        self.adjoint_names: dict[sp.Symbol, sp.Symbol] = {}
        self.outputs: dict[int, tuple[tuple[sp.Symbol, ...], ...]] = {}

    def symbol(self, name: str, notation: Notation) -> sp.Symbol:
        symbol = sp.Symbol(name, real=True)
        self.written[symbol] = notation
        return symbol

    def name(self, prefix: str, example: int | None, *indices: int) -> str:
        """A symbol's identifier: ``z1_2`` over a batch of one, ``z1_3_2`` for example 3 of a batch."""
        parts = ([example] if example is not None and self.batch > 1 else []) + list(indices)
        return prefix + "".join(f"_{i}" for i in parts)

    def notation(self, base: str, text: str, layer: int | None, example: int | None, *indices: int) -> Notation:
        """How a symbol of ``example`` (None: one per unit, shared by the batch) is written."""
        if example is not None and self.batch > 1:
            return Notation(base, text, layer, (example, *indices), batched=True)
        return Notation(base, text, layer, tuple(indices))

    def add(self, node: Node) -> None:
        self.nodes.append(node)

    def parameter(self, symbol: sp.Symbol) -> None:
        self.parameters.append(symbol)

    def constant(self, symbol: sp.Symbol, value: float) -> None:
        self.constants[symbol] = float(value)

    def mask(self, symbol: sp.Symbol) -> None:
        self.masks.append(symbol)

    def adjoint_name(self, node: sp.Symbol, name: sp.Symbol) -> None:
        self.adjoint_names[node] = name

    def output(self, stage: int) -> tuple[tuple[sp.Symbol, ...], ...]:
        """a⁽ˡ⁾ of a stage (x for stage 0), by example and unit."""
        return self.outputs[stage]

    def catalog_parameters(self, parameters: tuple[Parameter, ...], values: Mapping[str, float], suffix: str, layer: int | None) -> dict[str, sp.Symbol]:
        """One symbol per parameter of a catalog entry; fixed ones get their value as a constant."""
        symbols = {}
        for parameter in parameters:
            # A suffix no other name uses keeps spec-chosen names (custom constants) apart
            # from the graph's own x_1, w1_1_1, ...
            symbol = self.symbol(f"{parameter.name}_{suffix}", Notation(parameter.latex, parameter.text, layer))
            symbols[parameter.name] = symbol
            if not parameter.learnable:
                self.constants[symbol] = float(values[parameter.name])
        return symbols


def build_graph(net: Network, batch: int | None = None) -> Graph:
    """Name every quantity of ``net`` and define each node by its parents.

    ``batch`` examples (by default the spec's example's, see ``Network.batch``) each get their
    own inputs, targets and nodes; the loss is their mean.
    """
    batch = net.batch if batch is None else batch
    g = GraphBuilder(batch)
    inputs = tuple(
        tuple(g.symbol(g.name("x", n, k), g.notation("x", "x", None, n, k)) for k in range(1, net.inputs + 1))
        for n in range(1, batch + 1)
    )
    targets = tuple(
        tuple(g.symbol(g.name("y", n, j), g.notation("y", "y", None, n, j)) for j in range(1, net.outputs + 1))
        for n in range(1, batch + 1)
    )
    g.outputs[0] = inputs
    layers: list[Layer] = []
    for stage in net.stages:
        layer = KINDS[stage.kind].graph(stage, g)
        g.outputs[stage.number] = layer.output_grid
        layers.append(layer)
    loss = g.symbol("L", Notation("L", "L"))
    entry = net.loss_choice.entry
    loss_params = g.catalog_parameters(entry.parameters, net.loss_choice.values, "loss", None)
    bound = {p.symbol: loss_params[p.name] for p in entry.parameters}
    outputs = layers[-1].output_grid
    last = net.stages[-1]
    logits = layers[-1].z if last.choice is not None else ()

    def mean(terms):
        # Over a batch of one the loss is the example's own; over more, their mean.
        return terms[0] if batch == 1 else sp.Add(*terms) / batch

    def mean_display(terms):
        return terms[0] if batch == 1 else sp.Mul(sp.Rational(1, batch), sp.Add(*terms, evaluate=False), evaluate=False)

    loss_expr = mean([entry.formula(a, y).xreplace(bound) for a, y in zip(outputs, targets)])
    numeric = None
    if entry.from_logits is not None and logits:
        width = len(outputs[0])
        rows = [logits[n * width : (n + 1) * width] for n in range(batch)]
        numeric = mean([entry.from_logits(z, y).xreplace(bound) for z, y in zip(rows, targets)])
    parents = tuple(s for row in outputs for s in row) + tuple(s for row in targets for s in row) + tuple(loss_params.values())
    if entry.textbook is None:
        display = loss_expr if batch == 1 else mean_display([entry.formula(a, y).xreplace(bound) for a, y in zip(outputs, targets)])
    else:
        display = mean_display([entry.formula(a, y, entry.textbook).xreplace(bound) for a, y in zip(outputs, targets)])
    if net.regularizer_choice is not None:
        reg = net.regularizer_choice.entry
        reg_params = g.catalog_parameters(reg.parameters, net.regularizer_choice.values, "reg", None)
        term = reg.term.xreplace({p.symbol: reg_params[p.name] for p in reg.parameters})
        weights_all = [w for layer in layers for row in layer.weights for w in row]
        # The penalty is a node of its own, so the loss stays small: L = (data loss) + R, and
        # ∂L/∂a never differentiates the penalty on every weight.
        penalty = g.symbol("R", Notation("R", "R"))
        total = sp.Add(*[term.xreplace({W: w}) for w in weights_all])
        g.add(Node(penalty, total, tuple(weights_all) + tuple(reg_params.values()), total))
        loss_expr = loss_expr + penalty
        display = sp.Add(display, penalty, evaluate=False)
        numeric = None if numeric is None else numeric + penalty
        parents = parents + (penalty,)
    g.add(Node(loss, loss_expr, parents, display, (), numeric))
    flat_inputs = tuple(s for row in inputs for s in row)
    flat_targets = tuple(s for row in targets for s in row)
    return Graph(flat_inputs, flat_targets, tuple(g.parameters), tuple(g.nodes), loss, tuple(layers), g.written,
                 g.adjoint_names, g.constants, batch, tuple(g.masks))  # fmt: skip


def parameter_names(graph: Graph) -> dict[str, tuple]:
    """Map "W1", "b1", "gamma2", ... to the nested tuples of symbols they hold."""
    names: dict[str, tuple] = {}
    for layer in graph.layers:
        names.update(layer.arrays)
    return names


def leaf_arrays(graph: Graph) -> dict[str, tuple]:
    """Map per-example leaves ("M3" of dropout) to their grids of symbols."""
    return {name: grid for layer in graph.layers for name, grid in layer.leaves.items()}
