"""The reverse walk: every gradient against sympy.diff of the composed loss, and its structure."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from conftest import describe, exact_values, random_network

from chainrule import catalog
from chainrule.catalog import ACTIVATIONS, LOSSES
from chainrule.derive import Derivation, Partial, derive
from chainrule.graph import build_graph
from chainrule.network import Dense, Network
from chainrule.numeric import compose

#: Random networks for the gradient proofs: depth 1-3, widths 1-3. The size cap keeps
#: sympy.simplify (and, for relu, the composition of nested Piecewise) fast enough for
#: the whole file to run in seconds; the check itself is never weakened.
MAX_PARAMETERS = 14
SEEDS = (0, 1, 2)


#: The entries whose composed losses simplify decides (after freezing exp and tanh): their
#: networks go to depth 3. Kinks (nested Piecewise), erf and the rest are compared at exact
#: points instead, where composing them deeper than two layers takes SymPy minutes.
SIMPLIFIED = ({"identity", "sigmoid", "tanh", "relu"}, {"half_sse", "mse"})


def _cases():
    """Every activation (with a drawn loss) and every loss (with drawn activations), three seeds each."""
    cases = []
    pairs = [(a, None) for a in sorted(ACTIVATIONS)] + [(None, loss) for loss in sorted(LOSSES)]
    for i, (activation, loss) in enumerate(pairs):
        deep = activation in SIMPLIFIED[0] or loss in SIMPLIFIED[1]
        for seed in SEEDS:
            net = random_network(1000 * i + seed, activation, loss, 3 if deep else 2, 3, MAX_PARAMETERS if deep else 10)
            cases.append(pytest.param(net, id=describe(net)))
    return cases


CASES = _cases()


def test_cases_cover_depth_width_activations_and_losses():
    nets = [case.values[0] for case in CASES]
    assert {len(n.layers) for n in nets} == {1, 2, 3}
    assert {u for n in nets for u in n.sizes} == {1, 2, 3}
    assert {c.name for n in nets for c in n.activations} == set(ACTIVATIONS)
    assert {n.loss_choice.name for n in nets} == set(LOSSES)
    assert any(not l.bias for n in nets for l in n.layers)


def _frozen(a: sp.Expr, b: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Replace every exp(...) and tanh(...) atom, outermost first, by a fresh symbol in both.

    This is sound for proving a - b == 0: an identity among independent symbols stays an
    identity whatever is substituted back for them. It turns both sides into rational
    functions of polynomials, where simplify is fast; on the raw expressions a 2-2-2
    sigmoid network already takes seconds per parameter, a 2-3-2 one about a minute.
    """
    atoms = sorted(a.atoms(sp.exp, sp.tanh) | b.atoms(sp.exp, sp.tanh), key=sp.count_ops, reverse=True)
    table = {atom: sp.Dummy() for atom in atoms}
    return a.xreplace(table), b.xreplace(table)


#: Functions simplify decides quickly once exp and tanh are frozen; anything else (Piecewise
#: kinks, |x|, erf, log cosh, xlogy) is checked by exact evaluation instead.
_SIMPLIFY_FRIENDLY = (sp.exp, sp.tanh)


def _needs_evaluation(expr: sp.Expr) -> bool:
    return bool(expr.atoms(sp.Piecewise, sp.Abs, sp.sign, sp.erf, sp.Function) - expr.atoms(*_SIMPLIFY_FRIENDLY))


#: chainrule's named functions in 50-digit arithmetic, for the exact-point comparison.
_MPMATH = {
    "sigmoid": lambda x: 1 / (1 + mpmath.exp(-x)),
    "softplus": lambda x: mpmath.log(1 + mpmath.exp(x)),
    "logsumexp": lambda *xs: mpmath.log(mpmath.fsum(mpmath.exp(x) for x in xs)),
    "xlogy": lambda x, y: 0 if x == 0 else x * mpmath.log(y),
    "xdivy": lambda x, y: 0 if x == 0 else x / y,
    "logcosh": lambda x: mpmath.log(mpmath.cosh(x)),
}


def _at_points(exprs, symbols, points) -> list[list]:
    """Each expression at each point in 50-digit arithmetic.

    Substituting numbers into nested Piecewise makes SymPy decide conditions such as
    exp(…) - 1 <= 0 symbolically, which takes minutes; mpmath decides them in microseconds
    at a precision far beyond float64's.
    """
    function = sp.lambdify(symbols, exprs, modules=[_MPMATH, "mpmath"])
    with mpmath.workdps(50):
        return [function(*[mpmath.mpf(sp.Rational(v).p) / sp.Rational(v).q for v in (pt[s] for s in symbols)]) for pt in points]


def _targets(net: Network, graph, rng) -> dict:
    """Exact targets of the kind the loss is defined for (one-hot for cross-entropy)."""
    kind, n = net.loss_choice.entry.targets, len(graph.targets)
    if kind == "distribution":
        hot = int(rng.integers(n))
        return {t: sp.Integer(int(i == hot)) for i, t in enumerate(graph.targets)}
    if kind == "unit":
        return {t: sp.Rational(int(rng.integers(0, 101)), 100) for t in graph.targets}
    if kind == "sign":
        return {t: sp.Integer(1 if rng.random() < 0.5 else -1) for t in graph.targets}
    return exact_values(graph.targets, rng)


def _kink_values(graph, values: dict) -> dict:
    """Move a first-layer bias so that its unit's z is exactly 0 (the relu kink)."""
    layer = graph.layers[0]
    if layer.biases is None:
        return values
    moved = dict(values)
    moved[layer.biases[0]] = -sum(values[w] * values[x] for w, x in zip(layer.weights[0], layer.inputs))
    return moved


@pytest.mark.parametrize("net", CASES)
def test_every_gradient_equals_sympy_diff_of_the_composed_loss(net):
    d = derive(net)
    graph = d.graph
    composed = compose(graph)
    loss = composed[graph.loss]
    names = {c.name for c in net.activations}
    if names <= SIMPLIFIED[0] - {"relu"} and net.loss_choice.name in SIMPLIFIED[1]:
        for p in graph.parameters:
            got = d.gradient(p).closed.xreplace(composed)
            want = sp.diff(loss, p)
            assert want != 0
            assert sp.simplify(sp.Add(*_frozen(got, -want))) == 0, p
        return
    # Kinks (relu, hinge, |x|) make nested Piecewise that simplify cannot decide in
    # reasonable time, and erf or log cosh leave it standing. Evaluate both sides exactly
    # (rational inputs) at random points, which leaves every unit off its kink with
    # probability one, and at a point with a first-layer z exactly 0, where both must take
    # the same branch (relu'(0) = 0, PyTorch's convention, as sympy.diff of the catalog does).
    rng = np.random.default_rng(len(graph.parameters))
    leaves = graph.inputs + graph.parameters
    constants = {c: sp.nsimplify(v) for c, v in graph.constants.items()}
    points = [{**exact_values(leaves, rng), **_targets(net, graph, rng), **constants} for _ in range(6)]
    points.append(_kink_values(graph, points[0]))
    symbols = list(points[0])
    got = [d.gradient(p).closed.xreplace(composed) for p in graph.parameters]
    want = [sp.diff(loss, p) for p in graph.parameters]
    nonzero = 0
    for g_values, w_values in zip(_at_points(got, symbols, points), _at_points(want, symbols, points)):
        for p, g, w in zip(graph.parameters, g_values, w_values):
            assert abs(g - w) <= mpmath.mpf("1e-40") * max(1, abs(w)), (p, g, w)
            nonzero += w != 0
    assert nonzero > 0  # at least some unit was active, so the check compared something


def _small_networks():
    """One unit per layer (two for softmax), each activation with each loss it can feed."""
    nets = []
    for a, entry in sorted(ACTIVATIONS.items()):
        units = 1 if entry.elementwise else 2
        for loss in sorted(LOSSES):
            required = LOSSES[loss].requires
            if required is not None and required != a:
                continue
            net = Network(1, (Dense(units, a),), loss)
            if not _needs_evaluation(compose(build_graph(net))[build_graph(net).loss]):
                nets.append(net)
    nets += [Network(1, (Dense(1, a), Dense(1, a)), "half_sse") for a in ("identity", "sigmoid", "tanh", "softplus", "silu")]
    # relu where simplify can still decide the Piecewise: one relu layer, under or over another
    nets += [
        Network(1, (Dense(1, "relu"),), "mse"),
        Network(2, (Dense(2, "relu"),), "half_sse"),
        Network(1, (Dense(1, "relu"), Dense(1, "sigmoid")), "mse"),
        Network(1, (Dense(1, "tanh"), Dense(1, "relu")), "half_sse"),
    ]
    return nets


@pytest.mark.parametrize("net", _small_networks(), ids=describe)
def test_small_networks_without_freezing(net):
    """On the smallest networks plain simplify(a - b) == 0 decides it, no substitution needed."""
    d = derive(net)
    composed = compose(d.graph)
    for p in d.graph.parameters:
        got = d.gradient(p).closed.xreplace(composed)
        assert sp.simplify(got - sp.diff(composed[d.graph.loss], p)) == 0


def test_relu_kink_point_is_really_on_the_kink():
    net = Network(2, (Dense(2, "relu"), Dense(1, "relu")), "half_sse")
    graph = build_graph(net)
    values = _kink_values(graph, exact_values(graph.inputs + graph.targets + graph.parameters, np.random.default_rng(0)))
    assert graph.node(graph.layers[0].z[0]).expr.xreplace(values) == 0


def test_derive_returns_a_derivation(default_net):
    d = derive(default_net)
    assert isinstance(d, Derivation)
    assert d.network is default_net
    graph = d.graph
    every = {n.symbol for n in graph.nodes} | set(graph.parameters) | set(graph.inputs)
    assert set(d.adjoints) == every
    assert next(iter(d.adjoints)) == graph.loss
    assert [g.node for g in d.gradients] == list(graph.parameters)
    assert [a.node for a in d.deltas] == [z for layer in reversed(graph.layers) for z in layer.z]
    # closed forms use forward quantities only
    forward = set(graph.inputs) | set(graph.targets) | set(graph.parameters) | {n.symbol for n in graph.nodes}
    for adjoint in d.adjoints.values():
        assert adjoint.closed.free_symbols <= forward
    assert d.adjoint(graph.loss).closed == 1


def test_derive_builds_the_networks_graph(default_net):
    d = derive(default_net)
    graph = build_graph(default_net)
    assert [n.symbol for n in d.graph.nodes] == [n.symbol for n in graph.nodes]
    assert [n.expr for n in d.graph.nodes] == [n.expr for n in graph.nodes]
    assert d.graph.parameters == graph.parameters


def test_activation_derivatives_are_sympy_diff():
    net = Network(2, (Dense(2, "tanh"), Dense(2, "relu"), Dense(2, "sigmoid"), Dense(1, "tanh")), "mse")
    d = derive(net)
    found = d.activations
    assert [a.name for a in found] == ["tanh", "relu", "sigmoid"]
    for a in found:
        entry = ACTIVATIONS[a.name]
        assert a.formula == (entry.textbook if entry.textbook is not None else entry.formula)
        assert sp.simplify((d.activation_steps(a).result - sp.diff(entry.formula, catalog.Z)).rewrite(sp.exp)) == 0
        assert a.derivative == sp.diff(entry.formula, catalog.Z)
        assert a.textbook_in_output == entry.derivative
        # the textbook form, written in f(z), is the same function as sympy.diff's
        written = a.textbook.xreplace({a.written: entry.formula}) if a.written != entry.formula else a.textbook
        assert sp.simplify(written.xreplace({catalog.A: entry.formula}) - a.derivative) == 0


# --- (b) each δ is reused --------------------------------------------------------------

REUSE = [
    Network(2, (Dense(3, act), Dense(2, act), Dense(2, act)), "half_sse")
    for act in sorted(ACTIVATIONS)
    if ACTIVATIONS[act].elementwise
] + [Network(1, (Dense(2, "sigmoid"), Dense(3, "tanh"), Dense(1, "relu", bias=False)), "mse")]


def below_entry(net: Network, layer):
    return net.activations[layer.number - 1].entry


@pytest.mark.parametrize("net", REUSE, ids=describe)
def test_hidden_delta_is_written_with_the_deltas_above(net):
    d = derive(net)
    graph = d.graph
    all_deltas = {s for layer in graph.layers for s in layer.deltas}
    for below, above in zip(graph.layers, graph.layers[1:]):
        for j, z in enumerate(below.z):
            adjoint = d.adjoint(z)
            assert adjoint.name == below.deltas[j]
            expr = adjoint.substituted
            assert expr.free_symbols & all_deltas == set(above.deltas)
            if catalog.Z not in below_entry(net, below).derivative.free_symbols:
                # a textbook form in the output (σ' = a(1 - a)): nothing is recomputed from z
                assert not expr.atoms(sp.exp, sp.tanh)
            assert not expr.free_symbols & (set(graph.targets) | set(graph.inputs) | set(above.a) | set(above.z))
            # ∂L/∂a of the unit is exactly Σ_c δ_c w_cj: the δs are used, not re-derived
            upstream = d.adjoint(below.a[j]).substituted
            assert sp.expand(upstream - sum(delta * row[j] for delta, row in zip(above.deltas, above.weights))) == 0
    # every parameter's gradient is its unit's δ times one input
    for layer in graph.layers:
        for j, row in enumerate(layer.weights):
            for k, w in enumerate(row):
                assert d.gradient(w).substituted == layer.deltas[j] * layer.inputs[k]
            if layer.biases is not None:
                assert d.gradient(layer.biases[j]).substituted == layer.deltas[j]


def test_delta_size_does_not_grow_with_depth():
    sizes = []
    for depth in (2, 4, 6):
        d = derive(Network(2, tuple(Dense(2, "sigmoid") for _ in range(depth)), "half_sse"))
        sizes.append(sp.count_ops(d.adjoint(d.graph.layers[0].z[0]).substituted))
    assert sizes[0] == sizes[1] == sizes[2]


# --- (c) chains of partials ------------------------------------------------------------


def test_chain_of_a_hidden_weight(default_net):
    d = derive(default_net)
    layer = d.graph.layers[0]
    for j, row in enumerate(layer.weights):
        for w in row:
            a, z, L = layer.a[j], layer.z[j], d.graph.loss
            assert d.gradient(w).chain == (Partial(L, a), Partial(a, z), Partial(z, w))
    a, z = layer.a[0], layer.z[0]
    assert d.gradient(layer.biases[0]).chain == (Partial(d.graph.loss, a), Partial(a, z), Partial(z, layer.biases[0]))
    (term,) = d.gradient(layer.weights[0][1]).terms
    assert term.child == z
    assert term.upstream == layer.deltas[0]
    assert term.local.derivative == d.graph.inputs[1]


def test_chain_of_an_output_weight(default_net):
    d = derive(default_net)
    layer = d.graph.layers[-1]
    w = layer.weights[1][0]
    assert d.gradient(w).chain == (Partial(d.graph.loss, layer.a[1]), Partial(layer.a[1], layer.z[1]), Partial(layer.z[1], w))


def test_chain_follows_single_children_to_the_loss():
    d = derive(Network(1, (Dense(1, "tanh"), Dense(1, "sigmoid")), "mse"))
    (l1, l2), L = d.graph.layers, d.graph.loss
    w = l1.weights[0][0]
    assert d.gradient(w).chain == (
        Partial(L, l2.a[0]),
        Partial(l2.a[0], l2.z[0]),
        Partial(l2.z[0], l1.a[0]),
        Partial(l1.a[0], l1.z[0]),
        Partial(l1.z[0], w),
    )


def test_local_derivatives_are_shown_in_textbook_form(default_net):
    d = derive(default_net)
    z, a = d.graph.layers[0].z[0], d.graph.layers[0].a[0]
    (term,) = d.adjoint(z).terms
    assert term.local.shown == a * (1 - a)
    assert sp.simplify(term.local.derivative - term.local.shown.xreplace({a: d.graph.node(a).expr})) == 0


# --- (d) BP1-BP4 against the scalar derivation -----------------------------------------

EQUATION_NETS = [
    Network(2, (Dense(3, "sigmoid"), Dense(2, "tanh", bias=False), Dense(2, "relu")), "half_sse"),
    Network(3, (Dense(2, "identity", bias=False), Dense(1, "sigmoid")), "mse"),
    Network(1, (Dense(1, "tanh"),), "mse"),
]


@pytest.mark.parametrize("net", EQUATION_NETS, ids=describe)
def test_layer_equations_equal_the_scalar_derivation(net):
    d = derive(net)
    graph = d.graph
    last = len(graph.layers)
    by_layer: dict[int, list[str]] = {}
    for eq in d.equations:
        by_layer.setdefault(eq.layer, []).append(eq.label)
        layer = graph.layers[eq.layer - 1]
        units, fan_in = len(layer.z), len(layer.inputs)
        if eq.label in ("BP1", "BP2"):
            expected = sp.Matrix([d.adjoint(z).substituted for z in layer.z])
        elif eq.label == "BP3":
            expected = sp.Matrix([d.gradient(b).substituted for b in layer.biases])
        else:
            expected = sp.Matrix([[d.gradient(w).substituted for w in row] for row in layer.weights])
        assert eq.explicit.shape == expected.shape == ((units, fan_in) if eq.label == "BP4" else (units, 1))
        assert eq.lhs.shape == eq.explicit.shape
        for got, want in zip(eq.explicit, expected):
            assert sp.simplify(got - want) == 0, (eq.label, eq.layer, got, want)
    for number, labels in by_layer.items():
        first = "BP1" if number == last else "BP2"
        bias = graph.layers[number - 1].biases is not None
        assert labels == [first, *(["BP3"] if bias else []), "BP4"]
    assert sorted(by_layer) == list(range(1, last + 1))


@pytest.mark.parametrize("net", EQUATION_NETS, ids=describe)
def test_vector_form_equals_the_entries(net):
    """Substituting each layer's vectors into the vector form gives the explicit matrix."""
    d = derive(net)
    graph = d.graph
    vectors: dict[str, sp.Matrix] = {}
    for layer in graph.layers:
        l = layer.number
        vectors[f"delta{l}"] = sp.Matrix(layer.deltas)
        vectors[f"W{l}"] = sp.Matrix(layer.weights)
        vectors[f"a{l - 1}"] = sp.Matrix(layer.inputs)
        vectors[f"fprime{l}"] = sp.Matrix([d.adjoint(z).terms[0].local.shown for z in layer.z])
        vectors[f"grad_a{l}"] = sp.Matrix([d.adjoint(a).substituted for a in layer.a])
    for eq in d.equations:
        table = {m: vectors[m.name] for m in eq.rhs.atoms(sp.MatrixSymbol)}
        value = sp.Matrix(eq.rhs.xreplace(table).doit())
        assert value.shape == eq.explicit.shape
        assert (value - eq.explicit).applyfunc(sp.simplify) == sp.zeros(*value.shape), (eq.label, eq.layer)


# --- (e) the composed loss is never differentiated ------------------------------------


def test_derive_differentiates_only_local_expressions(monkeypatch):
    """Record every sympy differentiation during derive: each is of one node's definition.

    ``Expr.diff`` and ``sympy.diff`` both go through ``sympy.core.expr._derivative_dispatch``,
    so patching it there sees every call, including ones sympy makes recursively.
    """
    import sympy.core.expr as expr_module

    original = expr_module._derivative_dispatch
    seen: list[int] = []

    def recording(e, *symbols, **kwargs):
        seen.append(sp.count_ops(e))
        return original(e, *symbols, **kwargs)

    monkeypatch.setattr(expr_module, "_derivative_dispatch", recording)
    largest = {}
    for depth in (1, 3, 6):
        seen.clear()
        net = Network(2, tuple(Dense(2, "sigmoid") for _ in range(depth)), "half_sse")
        d = derive(net)
        assert seen, "derive differentiated nothing through sympy"
        largest[depth] = max(seen)
    monkeypatch.undo()
    composed_loss = compose(build_graph(Network(2, tuple(Dense(2, "sigmoid") for _ in range(6)), "half_sse")))
    assert largest[1] == largest[3] == largest[6]
    # 2 inputs and 2 outputs: a z node is w1 a1 + w2 a2 + b, the loss (y1 - a1)^2/2 + (y2 - a2)^2/2
    assert largest[6] <= 12
    assert sp.count_ops(composed_loss[d.graph.loss]) > 50 * largest[6]
