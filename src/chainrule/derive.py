"""The reverse-mode walk: from a graph to a Derivation of every ∂L/∂parameter.

One loop over the nodes in reverse topological order. For each node n,

    ∂L/∂n = Σ over children c of  ∂L/∂c · ∂c/∂n      (multivariable chain rule)

where ∂L/∂c is the child's named adjoint (δ) if it has one, and its expression
otherwise. Only the small local expressions are differentiated; the composed loss
never is. Results are frozen dataclasses; rendering them is ``chainrule.render``'s job.

>>> from chainrule.network import Network, Dense
>>> d = derive(Network(1, (Dense(1, "sigmoid"),), "half_sse"))
>>> d.gradient(d.graph.parameters[0]).substituted
delta1_1*x_1
>>> d.adjoint(d.graph.layers[0].z[0]).closed
a1_1*(1 - a1_1)*(a1_1 - y_1)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from .catalog import ACTIVATIONS, A, Z
from .graph import Graph, Node, Notation, build_graph
from .network import Network


@dataclass(frozen=True)
class Partial:
    """The symbol ∂of/∂wrt, as written in a chain; a notation, not a value."""

    of: sp.Symbol
    wrt: sp.Symbol


@dataclass(frozen=True)
class LocalDerivative:
    """∂child/∂parent of one edge: differentiate the child's definition in its parents."""

    of: sp.Symbol
    wrt: sp.Symbol
    definition: sp.Expr
    #: ``sympy.diff(definition, wrt)``
    derivative: sp.Expr
    #: The textbook form (in forward symbols) if the catalog has one, else ``derivative``.
    shown: sp.Expr
    #: d/dz σ(z) for a definition written with a named function; ``None`` otherwise.
    written: sp.Expr | None = None


@dataclass(frozen=True)
class ChainTerm:
    """One term of the multivariable chain rule: ∂L/∂child · ∂child/∂node."""

    child: sp.Symbol
    #: ∂L/∂child: its δ symbol, or its expression when it has no name.
    upstream: sp.Expr
    local: LocalDerivative


@dataclass(frozen=True)
class Adjoint:
    """∂L/∂node = Σ over children c of ∂L/∂c · ∂c/∂node."""

    node: sp.Symbol
    #: δ⁽ˡ⁾ⱼ for z nodes; ``None`` where the adjoint is written out.
    name: sp.Symbol | None
    #: The general form: ∂L/∂u · ∂u/∂v · … · ∂v/∂node, down the path with one child at a time.
    chain: tuple[Partial, ...]
    terms: tuple[ChainTerm, ...]
    #: In named adjoints (δ of the layer above) and forward quantities.
    substituted: sp.Expr
    #: In forward quantities (x, y, w, b, z, a) only.
    closed: sp.Expr


@dataclass(frozen=True)
class LayerEquation:
    """One of BP1-BP4 for one layer, in vector form and written out entry by entry."""

    label: str
    layer: int
    lhs: sp.Expr
    rhs: sp.Expr
    #: The same right-hand side as an explicit matrix of forward symbols and δs.
    explicit: sp.ImmutableMatrix

    def __post_init__(self) -> None:
        object.__setattr__(self, "explicit", sp.ImmutableMatrix(self.explicit))


@dataclass(frozen=True)
class ActivationDerivative:
    """f'(z) for an activation the network uses: f(z) = formula, f'(z) = derivative = textbook."""

    name: str
    title: str
    #: f(z) as written (σ(z)), or the formula itself.
    written: sp.Expr
    formula: sp.Expr
    #: ``sympy.diff(formula, z)``
    derivative: sp.Expr
    #: The textbook form in f(z) (σ(z)(1 - σ(z))) and in the output a (a(1 - a)).
    textbook: sp.Expr
    textbook_in_output: sp.Expr


@dataclass(frozen=True)
class Derivation:
    """Everything the documents show, as data."""

    network: Network
    graph: Graph
    #: Every adjoint in the order the walk found it: the loss first, inputs last.
    adjoints: Mapping[sp.Symbol, Adjoint]
    equations: tuple[LayerEquation, ...]
    activations: tuple[ActivationDerivative, ...]
    #: How every symbol is written: the graph's scalars and the equations' vectors.
    notation: Mapping[sp.Basic, Notation]

    def adjoint(self, symbol: sp.Symbol) -> Adjoint:
        return self.adjoints[symbol]

    def gradient(self, parameter: sp.Symbol) -> Adjoint:
        return self.adjoints[parameter]

    def local(self, of: sp.Symbol, wrt: sp.Symbol) -> LocalDerivative:
        """The local derivative ∂of/∂wrt of one edge of the graph."""
        for term in self.adjoints[wrt].terms:
            if term.child == of:
                return term.local
        raise KeyError((of, wrt))

    @property
    def gradients(self) -> tuple[Adjoint, ...]:
        """∂L/∂p for every parameter p, in the order W1, b1, W2, ..."""
        return tuple(self.adjoints[p] for p in self.graph.parameters)

    @property
    def deltas(self) -> tuple[Adjoint, ...]:
        """δ for every unit, from the output layer down."""
        return tuple(self.adjoints[z] for layer in reversed(self.graph.layers) for z in layer.z)

    def _repr_html_(self) -> str:
        from .render import render

        return render(self, "html-fragment")

    def _repr_latex_(self) -> str:
        from .render import render

        return render(self, "latex-fragment")

    def _repr_markdown_(self) -> str:
        from .render import render

        return render(self, "md")


def derive(network: Network) -> Derivation:
    """Derive ∂L/∂p for every parameter p of ``network`` by one reverse walk over its graph."""
    graph = build_graph(network)
    children: dict[sp.Symbol, list[Node]] = {}
    for node in graph.nodes:
        for parent in node.parents:
            children.setdefault(parent, []).append(node)
    upstream: dict[sp.Symbol, sp.Expr] = {graph.loss: sp.Integer(1)}
    closed: dict[sp.Symbol, sp.Expr] = {graph.loss: sp.Integer(1)}
    adjoints: dict[sp.Symbol, Adjoint] = {graph.loss: Adjoint(graph.loss, None, (), (), sp.Integer(1), sp.Integer(1))}
    leaves = graph.parameters + graph.inputs
    for symbol in [n.symbol for n in reversed(graph.nodes[:-1])] + list(leaves):
        terms = tuple(ChainTerm(c.symbol, upstream[c.symbol], local_derivative(c, symbol)) for c in children[symbol])
        substituted = sp.Add(*[t.upstream * t.local.shown for t in terms])
        closed[symbol] = sp.Add(*[closed[t.child] * t.local.shown for t in terms])
        name = graph.adjoint_names.get(symbol)
        upstream[symbol] = name if name is not None else substituted
        adjoints[symbol] = Adjoint(symbol, name, _chain(symbol, children, graph.loss), terms, substituted, closed[symbol])
    vectors: dict[sp.Basic, Notation] = {}
    equations = _layer_equations(graph, adjoints, vectors)
    return Derivation(network, graph, adjoints, equations, _activation_derivatives(graph), {**graph.notation, **vectors})


def local_derivative(child: Node, parent: sp.Symbol) -> LocalDerivative:
    """∂child/∂parent from the child's own definition, with its textbook form if known."""
    derivative = sp.diff(child.expr, parent)
    shown = dict(child.forms).get(parent, derivative)
    written = None if child.display == child.expr else sp.Derivative(child.display, parent, evaluate=False)
    return LocalDerivative(child.symbol, parent, child.expr, derivative, shown, written)


def _chain(symbol: sp.Symbol, children: Mapping[sp.Symbol, list[Node]], loss: sp.Symbol) -> tuple[Partial, ...]:
    """∂L/∂node as a product of partials, following single children up to a branch or the loss."""
    factors: list[Partial] = []
    current = symbol
    while len(children.get(current, ())) == 1 and children[current][0].symbol != loss:
        child = children[current][0].symbol
        factors.append(Partial(child, current))
        current = child
    factors.append(Partial(loss, current))
    return tuple(reversed(factors))


def _layer_equations(graph: Graph, adjoints: Mapping[sp.Symbol, Adjoint], notation: dict) -> tuple[LayerEquation, ...]:
    """BP1-BP4 (Nielsen, ch. 2) in vector form for each layer, with their entries written out."""

    def vector(name: str, rows: int, cols: int, written: Notation) -> sp.MatrixSymbol:
        symbol = sp.MatrixSymbol(name, rows, cols)
        notation[symbol] = written
        return symbol

    equations: list[LayerEquation] = []
    last = len(graph.layers)
    for layer in reversed(graph.layers):
        l, units, fan_in = layer.number, len(layer.z), len(layer.inputs)
        delta = vector(f"delta{l}", units, 1, Notation("\\delta", "δ", l))
        slope = sp.Matrix([adjoints[z].terms[0].local.shown for z in layer.z])
        fprime = vector(f"fprime{l}", units, 1, Notation("f'", "f′", l, arg=Notation("z", "z", l)))
        if l == last:
            grad = vector(f"grad_a{l}", units, 1, Notation("a", "a", l, of="L"))
            explicit = sp.Matrix([adjoints[a].substituted for a in layer.a]).multiply_elementwise(slope)
            equations.append(LayerEquation("BP1", l, delta, sp.HadamardProduct(grad, fprime, evaluate=False), explicit))
        else:
            above = graph.layers[l]
            weights = vector(f"W{l + 1}", len(above.z), units, Notation("W", "W", l + 1))
            upper = vector(f"delta{l + 1}", len(above.z), 1, Notation("\\delta", "δ", l + 1))
            explicit = (sp.Matrix(above.weights).T * sp.Matrix(above.deltas)).multiply_elementwise(slope)
            rhs = sp.HadamardProduct(weights.T * upper, fprime, evaluate=False)
            equations.append(LayerEquation("BP2", l, delta, rhs, explicit))
        if layer.biases is not None:
            grad_b = vector(f"grad_b{l}", units, 1, Notation("b", "b", l, of="L"))
            equations.append(LayerEquation("BP3", l, grad_b, delta, sp.Matrix(layer.deltas)))
        written = Notation("x", "x") if l == 1 else Notation("a", "a", l - 1)
        previous = vector(f"a{l - 1}", fan_in, 1, written)
        grad_w = vector(f"grad_W{l}", units, fan_in, Notation("W", "W", l, of="L"))
        explicit = sp.Matrix(layer.deltas) * sp.Matrix(layer.inputs).T
        equations.append(LayerEquation("BP4", l, grad_w, delta * previous.T, explicit))
    return tuple(equations)


def _activation_derivatives(graph: Graph) -> tuple[ActivationDerivative, ...]:
    out = []
    for name in dict.fromkeys(layer.activation for layer in graph.layers):
        entry = ACTIVATIONS[name]
        written = entry.display(Z) if entry.display is not None else entry.formula
        out.append(
            ActivationDerivative(
                name,
                entry.title,
                written,
                entry.formula,
                sp.diff(entry.formula, Z),
                entry.derivative.xreplace({A: written}),
                entry.derivative,
            )
        )
    return tuple(out)
