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

from .algebra import Rewrite
from .catalog import A, Z
from .functions import xdivy
from .graph import Graph, Node, Notation, build_graph
from .kinds import KINDS, LayerEquation
from .network import Network
from .rules import Rule, derivative_steps
from .symbols import natural_key


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
    #: ``substituted`` made shorter (softmax with cross-entropy: aⱼ - yⱼ), or ``None``.
    simplified: sp.Expr | None = None
    #: What the simplification assumes, for the reader ("the targets add up to 1").
    assumption: str | None = None
    #: The algebra from ``substituted`` to ``simplified``, a line at a time (cancelling, multiplying
    #: out, collecting, Σₖ yₖ = 1); its last line is ``simplified``.
    steps: tuple[Rewrite, ...] = ()

    @property
    def value(self) -> sp.Expr:
        """The form the numbers are computed from: the simplified one where there is one."""
        return self.substituted if self.simplified is None else self.simplified


@dataclass(frozen=True)
class ActivationDerivative:
    """f'(z) for an activation the network uses: f(z) = formula, f'(z) = derivative = textbook."""

    name: str
    title: str
    #: What is differentiated by what: a by z, or aⱼ by zₖ for softmax.
    output: sp.Expr
    input: sp.Expr
    #: f(z) as written (σ(z)), or the formula itself.
    written: sp.Expr
    formula: sp.Expr
    #: ``sympy.diff(formula, z)``
    derivative: sp.Expr
    #: The textbook form in f(z) (σ(z)(1 - σ(z))) and in the output a (a(1 - a)).
    textbook: sp.Expr
    textbook_in_output: sp.Expr
    #: False for softmax, whose Jacobian is derived by ``steps`` instead of rule-by-rule steps.
    elementwise: bool = True
    #: The derivation of ``textbook`` line by line where no rule tree gives it (the softmax
    #: Jacobian by the quotient rule, in index notation); its last line is ``textbook``.
    steps: tuple[Rewrite, ...] = ()


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

    def activation_steps(self, act: ActivationDerivative) -> Rule | None:
        """d formula/dz one rule at a time, from the textbook definition (1/(1 + e^-z), not σ(z)).

        Built when asked for, like ``local_steps``; ``None`` for softmax.
        """
        return derivative_steps(act.formula, act.input) if act.elementwise else None

    def local_steps(self, of: sp.Symbol, wrt: sp.Symbol) -> Rule:
        """∂of/∂wrt of one edge, one differentiation rule at a time, from of's definition.

        Built when asked for: documents show the steps for the first edge of each kind
        and refer back to them after, so most edges never need theirs.
        """
        node = self.graph.node(of)
        # The textbook definition (-y log a rather than xlogy(y, a)) where it is one SymPy can
        # differentiate; σ(z) written as an undefined function is not.
        written = node.display if not node.display.atoms(sp.core.function.AppliedUndef) else node.expr
        return derivative_steps(written, wrt)

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


def derive(network: Network, batch: int | None = None) -> Derivation:
    """Derive ∂L/∂p for every parameter p of ``network`` by one reverse walk over its graph.

    ``batch`` examples (by default ``network.batch``) make up the loss, their mean.
    """
    graph = build_graph(network, batch)
    children: dict[sp.Symbol, list[Node]] = {}
    for node in graph.nodes:
        for parent in node.parents:
            children.setdefault(parent, []).append(node)
    simplify_at = _output_simplifier(network, graph)
    upstream: dict[sp.Symbol, sp.Expr] = {graph.loss: sp.Integer(1)}
    closed: dict[sp.Symbol, sp.Expr] = {graph.loss: sp.Integer(1)}
    adjoints: dict[sp.Symbol, Adjoint] = {graph.loss: Adjoint(graph.loss, None, (), (), sp.Integer(1), sp.Integer(1))}
    leaves = graph.parameters + graph.inputs
    # Each sum's terms by the symbols they hold, built once per node: z = Σₖ wₖaₖ + b is
    # differentiated by each of its parents, and scanning every term for each was quadratic.
    indexes: dict[sp.Symbol, Mapping[sp.Symbol, list[sp.Expr]]] = {}

    def local(child: Node, parent: sp.Symbol) -> LocalDerivative:
        if isinstance(child.expr, sp.Add) and child.symbol not in indexes:
            indexes[child.symbol] = _terms_by_symbol(child.expr)
        return local_derivative(child, parent, indexes.get(child.symbol))

    for symbol in [n.symbol for n in reversed(graph.nodes[:-1])] + list(leaves):
        terms = tuple(ChainTerm(c.symbol, upstream[c.symbol], local(c, symbol)) for c in children[symbol])
        substituted = sp.Add(*[t.upstream * t.local.shown for t in terms])
        closed[symbol] = sp.Add(*[closed[t.child] * t.local.shown for t in terms])
        steps = simplify_at(symbol, substituted)
        simplified = steps[-1].expr if steps else None
        assumption = next((s.title for s in steps if s.assuming is not None), None)
        if simplified is not None:
            closed[symbol] = simplified
        name = graph.adjoint_names.get(symbol)
        upstream[symbol] = name if name is not None else substituted
        chain = _chain(symbol, children, graph.loss)
        adjoints[symbol] = Adjoint(symbol, name, chain, terms, substituted, closed[symbol], simplified, assumption, steps)
    vectors: dict[sp.Basic, Notation] = {}
    equations = _layer_equations(network, graph, adjoints, vectors)
    return Derivation(network, graph, adjoints, equations, _activation_derivatives(network), {**graph.notation, **vectors})


#: Output δs longer than this are left as the chain rule gives them; cancelling takes too long.
_LONGEST_SIMPLIFIED = 200


def _output_simplifier(network: Network, graph: Graph):
    """δ of an output unit in its shortest form, a line of algebra at a time: (a - y) for
    sigmoid with cross-entropy and the like; no lines where nothing gets shorter.

    Softmax with cross-entropy reaches aⱼ·Σᵢyᵢ - yⱼ, which is aⱼ - yⱼ only because the
    targets add up to 1; the loss's own statement of its targets licenses that step.
    """
    last = graph.layers[-1]
    width = len(last.output_grid[0])
    # Each output unit's example, and that example's targets: they add up to 1 example by example.
    totals = {
        z: sp.Add(*graph.targets[(i // width) * width : (i // width + 1) * width]) for i, z in enumerate(last.z)
    }
    outputs = set(last.z)
    distribution = network.loss_choice.entry.targets == "distribution"

    def simplify_at(symbol: sp.Symbol, expr: sp.Expr) -> tuple[Rewrite, ...]:
        if symbol not in outputs or sp.count_ops(expr) > _LONGEST_SIMPLIFIED:
            return ()
        plain = expr.replace(xdivy, lambda x, y: x / y)  # the 0/0 guard says nothing about the algebra
        shorter = sp.factor_terms(sp.cancel(sp.expand(plain)))
        steps: list[Rewrite] = []
        cancelled = _cancelled(plain)
        if sp.count_ops(cancelled) != sp.count_ops(expr):
            below = sorted({d.args[1] for d in expr.atoms(xdivy)} - {sp.denom(t) for t in sp.Add.make_args(cancelled)},
                           key=natural_key)
            steps.append(Rewrite(cancelled, "cancelling", (*_listed(below), ", each against the same factor beside it")
                                 if below else ("a factor against the same factor below it",)))
        expanded = sp.expand(cancelled)
        if expanded != cancelled:
            steps.append(Rewrite(expanded, "multiplying out"))
        if distribution and width > 1:
            # Over a batch the δ carries the mean's 1/N: collect inside it.
            coefficient, core = shorter.as_coeff_Mul()
            collected = sp.expand(core).collect(last.a)
            summed = collected.subs(totals[symbol], 1)
            if summed != sp.expand(core) and sp.count_ops(coefficient * summed) < sp.count_ops(shorter):
                shorter = coefficient * summed
                mine = [a for a in last.a if a in collected.free_symbols]
                written = collected if coefficient == 1 else sp.UnevaluatedExpr(sp.Mul(coefficient, collected, evaluate=False))
                total = sp.Eq(totals[symbol], 1)
                steps += [
                    Rewrite(written, "collecting", ("the terms in ", *mine)),
                    Rewrite(shorter, "the targets add up to 1", (total,), assuming=total),
                ]
        if sp.count_ops(shorter) >= sp.count_ops(expr) or shorter == expr:
            return ()
        if not steps or steps[-1].expr != shorter:
            steps.append(Rewrite(shorter, "taking out the common factors"))
        return tuple(steps)

    return simplify_at


def _listed(items: list) -> tuple:
    """a, b and c, as pieces of a note."""
    out: list = []
    for i, item in enumerate(items):
        out += [", " if i < len(items) - 1 else " and "] if i else []
        out.append(item)
    return tuple(out)


def _cancelled(expr: sp.Expr) -> sp.Expr:
    """Each term with its factors cancelled: a product beside a sum of fractions is multiplied
    into it term by term, so that a factor meets the same factor below it.

    >>> a, y = sp.symbols("a y")
    >>> _cancelled(a * (1 - a) * (-y / a + (1 - y) / (1 - a)))
    a*(1 - y) - y*(1 - a)
    """

    def into(term: sp.Expr) -> sp.Expr:
        sums = [f for f in sp.Mul.make_args(term) if f.is_Add and any(sp.denom(t) != 1 for t in f.args)]
        if len(sums) != 1:
            return term
        rest = term / sums[0]
        return sp.Add(*[rest * t for t in sums[0].args])

    return sp.Add(*[into(t) for t in sp.Add.make_args(expr)])


def local_derivative(child: Node, parent: sp.Symbol, index: Mapping[sp.Symbol, list[sp.Expr]] | None = None) -> LocalDerivative:
    """∂child/∂parent from the child's own definition, with its textbook form if known.

    ``index`` gives the terms of a sum that hold each symbol (``_terms_by_symbol``), when known.
    """
    derivative = _diff(child.expr, parent, index)
    shown = dict(child.forms).get(parent, derivative)
    written = None if child.display == child.expr else sp.Derivative(child.display, parent, evaluate=False)
    return LocalDerivative(child.symbol, parent, child.expr, derivative, shown, written)


def _diff(expr: sp.Expr, symbol: sp.Symbol, index: Mapping[sp.Symbol, list[sp.Expr]] | None = None) -> sp.Expr:
    """``sp.diff``, skipping the terms of a sum that do not hold ``symbol``.

    z = Σₖ wₖaₖ + b has a term per input; differentiating every term for every parent
    made deriving a 64-32-10 network take seconds.
    """
    if isinstance(expr, sp.Add):
        holding = index.get(symbol, []) if index is not None else [t for t in expr.args if symbol in t.free_symbols]
        return sp.Add(*[_diff_term(term, symbol) for term in holding])
    return sp.diff(expr, symbol)


def _terms_by_symbol(expr: sp.Add) -> dict[sp.Symbol, list[sp.Expr]]:
    """The terms of a sum that hold each of its symbols, in the sum's order."""
    index: dict[sp.Symbol, list[sp.Expr]] = {}
    for term in expr.args:
        for symbol in term.free_symbols:
            index.setdefault(symbol, []).append(term)
    return index


def _diff_term(term: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    # d(w·a)/dw = a: a product holding the symbol once, as a plain factor, loses that factor.
    if term == symbol:
        return sp.Integer(1)
    if isinstance(term, sp.Mul) and symbol in term.args:
        rest = [f for f in term.args if f != symbol]
        if not any(symbol in f.free_symbols for f in rest):
            return sp.Mul(*rest)
    return term.diff(symbol)


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


@dataclass(frozen=True)
class _EquationContext:
    """What a kind's ``equations`` reads: the adjoints, the layers, and a maker of vector symbols."""

    network: Network
    graph: Graph
    adjoints: Mapping[sp.Symbol, Adjoint]
    notation: dict

    @property
    def batch(self) -> int:
        return self.graph.batch

    @property
    def regularized(self) -> bool:
        return self.network.regularizer_choice is not None

    def vector(self, name: str, rows: int, cols: int, written: Notation) -> sp.MatrixSymbol:
        symbol = sp.MatrixSymbol(name, rows, cols)
        self.notation[symbol] = written
        return symbol

    def layer(self, number: int):
        return self.graph.layers[number - 1]

    def consumers(self, number: int) -> list:
        """The stages that read stage ``number``'s output."""
        return [s for s in self.network.stages if s.source == number or s.skip == number]


def _layer_equations(
    network: Network, graph: Graph, adjoints: Mapping[sp.Symbol, Adjoint], notation: dict
) -> tuple[LayerEquation, ...]:
    """Each stage's layer-level equations (BP1–BP4 of a dense layer), from the output layer down."""
    context = _EquationContext(network, graph, adjoints, notation)
    equations: list[LayerEquation] = []
    for stage in reversed(network.stages):
        equations.extend(KINDS[stage.kind].equations(stage, graph.layers[stage.number - 1], context))
    return tuple(equations)


def _activation_derivatives(network: Network) -> tuple[ActivationDerivative, ...]:
    out = []
    for choice in {c.label: c for c in network.activations}.values():
        entry = choice.entry
        if not entry.elementwise:
            out.append(_layer_activation_derivative(choice))
            continue
        written = entry.display(Z) if entry.display is not None else entry.formula
        out.append(
            ActivationDerivative(
                entry.name,
                entry.title,
                A,
                Z,
                written,
                entry.formula if entry.textbook is None else entry.textbook,
                sp.diff(entry.formula, Z),
                entry.derivative.xreplace({A: written}),
                entry.derivative,
            )
        )
    return tuple(out)


def _layer_activation_derivative(choice) -> ActivationDerivative:
    """Softmax: aⱼ = exp(zⱼ)/Σₘ exp(zₘ), ∂aⱼ/∂zₖ = aⱼ(𝟙[j = k] - aₖ), in index notation."""
    j, k, m, n = sp.symbols("j k m n", integer=True, positive=True)
    z, a = sp.IndexedBase("z", real=True), sp.IndexedBase("a", real=True)
    formula = sp.exp(z[j]) / sp.Sum(sp.exp(z[m]), (m, 1, n))
    steps = _softmax_jacobian_steps(z, a, j, k, m, n)
    textbook = steps[-1].expr.doit()  # aⱼ(𝟙[j = k] - aₖ), the last line as SymPy keeps it
    return ActivationDerivative(
        choice.entry.name, choice.entry.title, a[j], z[k], formula, formula, textbook, textbook, textbook, False, steps
    )


def _softmax_jacobian_steps(z, a, j, k, m, n) -> tuple[Rewrite, ...]:
    """∂aⱼ/∂zₖ by the quotient rule on aⱼ = u/v, u = e^(zⱼ), v = Σₘ e^(zₘ): u′ and v′, the
    rule with them plugged in, the cases k = j and k ≠ j, and the one formula for both.

    A line with ``lhs`` starts a row (lhs = expr); the others go on from the line above.
    """
    u, v = sp.Symbol("u", positive=True), sp.Symbol("v", positive=True)
    # u′ and v′ as names in the quotient rule: ∂u/∂zₖ · v would read as ∂(u·v)/∂zₖ.
    u1, v1 = sp.Symbol("u'"), sp.Symbol("v'")
    eu, total, ek = sp.exp(z[j]), sp.Sum(sp.exp(z[m]), (m, 1, n)), sp.exp(z[k])
    one = sp.KroneckerDelta(j, k)
    du, dv = sp.Derivative(u, z[k], evaluate=False), sp.Derivative(v, z[k], evaluate=False)
    djk, djj = sp.Derivative(a[j], z[k], evaluate=False), sp.Derivative(a[j], z[j], evaluate=False)
    ordered, frac = sp.UnevaluatedExpr, _written_fraction

    def quotient(top_left, top_right, bottom):
        return ordered(frac(sp.Add(top_left, sp.Mul(-1, top_right, evaluate=False), evaluate=False),
                            sp.Pow(bottom, 2, evaluate=False)))

    def times(*factors):
        return sp.Mul(*[ordered(f) for f in factors], evaluate=False)

    return (
        Rewrite(eu, "the numerator of aⱼ = u/v", (), lhs=u),
        Rewrite(total, "the denominator, the same for every j", (), lhs=v),
        Rewrite(eu * one, "u′", (eu, " depends on zₖ only when k = j; ", one, " is 1 when j = k and 0 otherwise (not the error δ)"),
                lhs=du),
        Rewrite(ek, "v′", ("of the terms of the sum, only ", ek, " depends on zₖ"), lhs=dv),
        Rewrite(quotient(sp.Mul(u1, v, evaluate=False), sp.Mul(u, v1, evaluate=False), v),
                "the quotient rule", ("d/dx (u/v) = (u′·v − u·v′)/v², with u′ = ∂u/∂zₖ and v′ = ∂v/∂zₖ",), lhs=djk),
        Rewrite(quotient(sp.Mul(eu, one, total, evaluate=False), sp.Mul(eu, ek, evaluate=False), total),
                "plugging in u, u′, v and v′"),
        Rewrite(quotient(sp.Mul(eu, total, evaluate=False), sp.Mul(eu, eu, evaluate=False), total),
                "for k = j", (one, " = 1"), assuming=sp.Eq(k, j), lhs=djj),
        Rewrite(times(eu / total, frac(sp.Add(total, -eu, evaluate=False), total)), "splitting the fraction",
                assuming=sp.Eq(k, j)),
        Rewrite(ordered(sp.Mul(a[j], sp.Add(1, -a[j], evaluate=False), evaluate=False)), "writing it with the output", (sp.Eq(a[j], eu / total), ", so the second factor is 1 − aⱼ"),
                assuming=sp.Eq(k, j)),
        Rewrite(quotient(sp.Mul(0, total, evaluate=False), sp.Mul(eu, ek, evaluate=False), total),
                "for k ≠ j", (one, " = 0"), assuming=sp.Ne(k, j), lhs=djk),
        Rewrite(sp.Mul(-1, times(eu / total, ek / total), evaluate=False), "splitting the fraction", assuming=sp.Ne(k, j)),
        Rewrite(-a[j] * a[k], "writing it with the outputs", (sp.Eq(a[k], ek / total), ", like aⱼ"), assuming=sp.Ne(k, j)),
        Rewrite(ordered(sp.Mul(a[j], sp.Add(one, -a[k], evaluate=False), evaluate=False)), "both cases in one formula", (one, " = 1 gives aⱼ(1 − aⱼ), and 0 gives −aⱼaₖ"),
                lhs=djk),
    )


def _written_fraction(numerator: sp.Expr, denominator: sp.Expr) -> sp.Expr:
    return sp.Mul(numerator, sp.Pow(denominator, -1, evaluate=False), evaluate=False)
