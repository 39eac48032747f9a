"""Numbers: the worked example against PyTorch float64, Mazur's published values, and the check."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from conftest import (
    DRAWN_PARAMETERS,
    as_arrays,
    assert_close,
    count_parameters,
    describe,
    random_network,
    torch_reference,
)

import chainrule
from chainrule.catalog import ACTIVATIONS, LOSSES, REGULARIZERS
from chainrule.network import DEFAULT_LEARNING_RATE, Dense, Example, Network
from chainrule.numeric import (
    TOLERANCE,
    compose,
    draw_point,
    lambdify_checked,
    leaf_symbols,
    worked_example,
)

# --- (a) the default 2-2-2 example ----------------------------------------------------

#: Matt Mazur, "A Step by Step Backpropagation Example" (2015), as printed there.
MAZUR_TOTAL_ERROR = "0.298371109"
MAZUR_UPDATED = {
    ("W2", 0, 0): "0.35891648",  # w5
    ("W2", 0, 1): "0.408666186",  # w6
    ("W2", 1, 0): "0.511301270",  # w7
    ("W2", 1, 1): "0.561370121",  # w8
    ("W1", 0, 0): "0.149780716",  # w1
    ("W1", 0, 1): "0.19956143",  # w2
    ("W1", 1, 0): "0.24975114",  # w3
    ("W1", 1, 1): "0.29950229",  # w4
}
#: Intermediate values printed on the way: out_h1, out_h2, out_o1, out_o2 and ∂E/∂w5.
MAZUR_FORWARD = {("a1", 0): "0.593269992", ("a1", 1): "0.596884378", ("a2", 0): "0.75136507", ("a2", 1): "0.772928465"}
MAZUR_DE_DW5 = "0.082167041"


def matches_printed(value: float, printed: str) -> bool:
    """``value`` rounds to ``printed`` at the number of decimals printed."""
    decimals = len(printed.split(".")[1])
    return abs(value - float(printed)) <= 0.5 * 10.0**-decimals + 1e-15


def test_matches_printed_can_fail():
    assert matches_printed(0.1234564, "0.123456")
    assert not matches_printed(0.1234566, "0.123456")


@pytest.fixture(scope="module")
def mazur():
    net = chainrule.default_network()
    derivation = chainrule.derive(net)
    return net, derivation, chainrule.worked_example(derivation)


def test_default_example_uses_the_spec_values(mazur):
    _, _, example = mazur
    assert example.point.drawn == ()
    assert example.point.x == (0.05, 0.10) and example.point.y == (0.01, 0.99)
    assert example.point.learning_rate == 0.5
    np.testing.assert_array_equal(example.point.parameters["W1"], [[0.15, 0.20], [0.25, 0.30]])
    np.testing.assert_array_equal(example.point.parameters["b2"], [0.60, 0.60])


def test_default_example_equals_torch(mazur):
    net, derivation, example = mazur
    graph = derivation.graph
    ref = torch_reference(net, example.point)
    assert example.loss == pytest.approx(ref.loss, rel=1e-9, abs=0)
    gradients = as_arrays(graph, example.adjoints)
    updated = as_arrays(graph, example.updated)
    assert set(gradients) == set(ref.gradients) == {"W1", "b1", "W2", "b2"}
    for name, want in ref.gradients.items():
        assert_close(gradients[name], want, rtol=1e-9, floor=1e-12)
        assert_close(updated[name], example.point.parameters[name] - 0.5 * want, rtol=1e-9, floor=1e-12)
    for layer in graph.layers:
        assert_close([example.values[z] for z in layer.z], ref.forward[f"z{layer.number}"], rtol=1e-9, floor=1e-12)
        assert_close([example.values[a] for a in layer.a], ref.forward[f"a{layer.number}"], rtol=1e-9, floor=1e-12)


def test_default_example_equals_mazurs_published_numbers(mazur):
    _, derivation, example = mazur
    graph = derivation.graph
    assert matches_printed(example.loss, MAZUR_TOTAL_ERROR), example.loss
    updated = as_arrays(graph, example.updated)
    for (name, j, k), printed in MAZUR_UPDATED.items():
        assert matches_printed(updated[name][j, k], printed), (name, j, k, updated[name][j, k])
    for (vector, j), printed in MAZUR_FORWARD.items():
        layer = graph.layers[int(vector[1]) - 1]
        assert matches_printed(example.values[layer.a[j]], printed), (vector, j)
    assert matches_printed(example.adjoints[graph.layers[1].weights[0][0]], MAZUR_DE_DW5)


def test_default_example_passes_its_check(mazur):
    _, derivation, example = mazur
    check = example.check
    assert check.passed and check.tolerance == TOLERANCE
    assert check.max_relative_error <= 1e-6
    assert set(check.finite_differences) == set(derivation.graph.parameters)
    for p, estimate in check.finite_differences.items():
        assert estimate == pytest.approx(example.adjoints[p], rel=1e-6, abs=1e-12)
    assert check.worst in derivation.graph.parameters


def test_adjoint_of_every_node_is_reported(mazur):
    _, derivation, example = mazur
    assert set(example.adjoints) == set(derivation.adjoints)
    assert example.adjoints[derivation.graph.loss] == 1.0
    # δ of an output unit is (a - y) a (1 - a) for sigmoid with half the squared error
    layer = derivation.graph.layers[1]
    a, y = example.values[layer.a[0]], example.point.y[0]
    assert example.adjoints[layer.z[0]] == pytest.approx((a - y) * a * (1 - a), rel=1e-12)


# --- (b) random networks against PyTorch autograd -------------------------------------

#: Relative tolerance against PyTorch, with a floor: an entry is compared as
#: |got - want| <= RTOL * max(|want|, FLOOR). Below 1e-3 in magnitude an entry is held to
#: 1e-13 absolute: the gradients are sums of products of O(1) factors, so float64
#: rounding leaves absolute errors of order 1e-16 (the worst seen is ~3e-16), and a
#: wrong gradient is off by far more than 1e-13. Exact zeros (dead relu units) must be
#: within 1e-13 of zero as well.
RTOL, FLOOR = 1e-10, 1e-3
#: Depth 4 and width 4 with 4 inputs: at most 4 * (4 * 4 + 4) parameters.
MAX_PARAMETERS = 80
SEEDS = (0, 1, 2)
ELEMENTWISE = sorted(name for name, entry in ACTIVATIONS.items() if entry.elementwise)


def _random_cases():
    """Every activation and every loss in networks of their own, so none is left to chance,
    and parameters, prelu's learned α, regularizers and softmax with cross-entropy."""
    specs = []  # (kind, seed, random_network's keyword arguments)
    for a, activation in enumerate(sorted(ACTIVATIONS)):
        specs += [(f"activation {activation}", 10000 + 100 * a + s, {"activation": activation}) for s in SEEDS]
    for l, loss in enumerate(sorted(LOSSES)):
        specs += [(f"loss {loss}", 20000 + 100 * l + s, {"loss": loss}) for s in SEEDS]
    for p, name in enumerate(sorted(DRAWN_PARAMETERS)):
        key = "activation" if name in ACTIVATIONS else "loss"
        specs += [(f"parameters {name}", 30000 + 100 * p + s, {key: name, "parameters": True}) for s in SEEDS]
    for r, regularizer in enumerate(["l1", "l2", {"name": "l2", "coefficient": 0.1}]):
        specs += [(f"regularizer {r}", 40000 + 100 * r + s, {"regularizer": regularizer}) for s in SEEDS]
    specs += [("softmax cross_entropy", 50000 + s, {"activation": "softmax", "loss": "cross_entropy"}) for s in SEEDS]
    specs += [("everything drawn", 60000 + s, {"parameters": True}) for s in range(4)]
    cases = []
    for _, seed, options in specs:
        net = random_network(seed, max_depth=4, max_width=4, max_parameters=MAX_PARAMETERS, **options)
        point_seed = _live_seed(net, seed % 100)
        cases.append(pytest.param(net, point_seed, id=f"{describe(net)}@{point_seed}"))
    deep = Network(4, tuple(Dense(4, "relu") for _ in range(4)), "half_sse")
    cases.append(pytest.param(deep, _live_seed(deep, 0), id=describe(deep)))
    return cases


def _live_seed(net: Network, seed: int) -> int:
    """The first point seed from ``seed`` on where some gradient is nonzero.

    A relu output unit is dead at about half the drawn points, and then every gradient
    is 0 and comparing them shows nothing; the reference alone decides, before chainrule runs.
    """
    while not any(np.any(g != 0) for g in torch_reference(net, draw_point(net, seed)).gradients.values()):
        seed += 1
    return seed


RANDOM = _random_cases()


def test_random_cases_cover_the_catalog_depth_and_width():
    nets = [case.values[0] for case in RANDOM]
    assert {len(n.layers) for n in nets} == {1, 2, 3, 4}
    assert {u for n in nets for u in n.sizes} == {1, 2, 3, 4}
    assert {c.name for n in nets for c in n.activations} == set(ACTIVATIONS)
    assert {n.loss_choice.name for n in nets} == set(LOSSES)
    assert {n.regularizer_choice.name for n in nets if n.regularizer_choice is not None} == set(REGULARIZERS)
    changed = {c.name for n in nets for c in (*n.activations, n.loss_choice) if _set_by_spec(c)}
    assert changed >= set(DRAWN_PARAMETERS)
    assert any(n.activations[-1].name == "softmax" and n.loss_choice.name == "cross_entropy" for n in nets)
    assert any(len(n.layers) == 4 and all(c.name == "relu" for c in n.activations) for n in nets)
    assert any(not l.bias for n in nets for l in n.layers)
    assert all(count_parameters(n) <= MAX_PARAMETERS for n in nets)


def _set_by_spec(choice) -> bool:
    return any(choice.values[p.name] != p.default for p in choice.entry.parameters)


def _gradients_against_torch(net: Network, seed: int, check: bool = True):
    derivation = chainrule.derive(net)
    example = worked_example(derivation, seed=seed)
    ref = torch_reference(net, example.point)
    gradients = as_arrays(derivation.graph, example.adjoints)
    assert set(gradients) == set(ref.gradients)
    assert example.loss == pytest.approx(ref.loss, rel=RTOL, abs=RTOL * FLOOR)
    for name, want in ref.gradients.items():
        assert_close(gradients[name], want, RTOL, FLOOR)
    for layer in derivation.graph.layers:
        assert_close([example.values[a] for a in layer.a], ref.forward[f"a{layer.number}"], RTOL, FLOOR)
    if check:
        assert example.check.max_relative_error <= 1e-6
        assert example.check.passed
    return ref


@pytest.mark.parametrize("net, seed", RANDOM)
def test_gradients_equal_torch_and_finite_differences(net, seed):
    ref = _gradients_against_torch(net, seed)
    # the comparison compared something: not every gradient is zero
    assert any(np.any(g != 0) for g in ref.gradients.values())


#: Losses a relu output can feed: not those that need a softmax or a probability output.
RELU_LOSSES = sorted(name for name, entry in LOSSES.items() if entry.requires is None and name != "bce")


@pytest.mark.parametrize("loss", RELU_LOSSES)
def test_relu_after_relu_single_units(loss):
    """The smallest network with one relu feeding another: 1 input, 1 unit, 1 unit."""
    y = -1.0 if LOSSES[loss].targets == "sign" else 0.25
    example = Example(x=(1.0,), y=(y,), parameters={"W1": ((0.5,),), "b1": (0.25,), "W2": ((2.0,),), "b2": (-0.5,)})
    net = Network(1, (Dense(1, "relu"), Dense(1, "relu")), loss, example=example)
    ref = _gradients_against_torch(net, 0)
    assert ref.loss > 0  # z1 = 0.75, z2 = 1.0: both units active


def test_prelu_alpha_gradient_equals_torch():
    """z = (-0.25, 0.25): the first unit is on prelu's negative side, so ∂L/∂α ≠ 0."""
    example = Example(
        x=(1.0,), y=(0.5,), parameters={"W1": ((-0.5,), (0.75,)), "b1": (0.25, -0.5), "alpha1": 0.3, "W2": ((1.0, -2.0),)}
    )
    net = Network(1, (Dense(2, "prelu"), Dense(1, "identity", bias=False)), "half_sse", example=example)
    ref = _gradients_against_torch(net, 0)
    assert ref.gradients["alpha1"].shape == () and ref.gradients["alpha1"] != 0


def test_softmax_cross_entropy_at_large_logits_equals_torch():
    """Logits (30, -20, 0), target on the last: the loss, from the logits, is 30 + log(1 + e⁻³⁰ + e⁻⁵⁰)."""
    example = Example(x=(1.0,), y=(0.0, 0.0, 1.0), parameters={"W1": ((30.0,), (-20.0,), (0.0,))})
    net = Network(1, (Dense(3, "softmax", bias=False),), "cross_entropy", example=example)
    ref = _gradients_against_torch(net, 0)
    assert ref.loss == pytest.approx(30.0, rel=1e-12)


def test_softmax_cross_entropy_with_an_underflowing_output_equals_torch():
    """Logits (5, -1000, 0): a₂ = e⁻¹⁰⁰⁵/… is 0 in float64 and y₂ = 0; every parameter gradient is finite."""
    example = Example(x=(1.0,), y=(0.0, 0.0, 1.0), parameters={"W1": ((5.0,), (-1000.0,), (0.0,))})
    net = Network(1, (Dense(3, "softmax", bias=False),), "cross_entropy", example=example)
    _gradients_against_torch(net, 0, check=False)


def test_log_cosh_at_a_large_error_equals_torch():
    example = Example(x=(1.0,), y=(0.0,), parameters={"W1": ((800.0,),), "b1": (0.0,)})
    net = Network(1, (Dense(1, "identity"),), "log_cosh", example=example)
    _gradients_against_torch(net, 0, check=False)


@pytest.mark.parametrize("activation", ["identity", "sigmoid", "tanh", "relu"])
def test_relu_after_any_layer_2_2_2(activation):
    net = Network(2, (Dense(2, activation), Dense(2, "relu")), "half_sse")
    _gradients_against_torch(net, 3)


def test_relu_at_an_exact_kink_follows_torch():
    """z = 0.5 * 1 - 0.5 = 0 exactly: relu'(0) = 0 in chainrule and in PyTorch."""
    derivation = chainrule.derive(KINK)
    example = worked_example(derivation)
    assert example.values[derivation.graph.layers[0].z[0]] == 0.0
    ref = _gradients_against_torch(KINK, 0, check=False)
    assert ref.gradients["W1"][0, 0] == 0.0 and ref.gradients["b1"][0] == 0.0
    assert example.adjoints[derivation.graph.layers[0].biases[0]] == 0.0


def test_check_passes_for_correct_gradients_at_a_kink():
    """The gradients at the kink equal PyTorch's (test above), so the check must not fail them.

    Every central difference straddles an exact kink and measures the mean of the two
    one-sided slopes (1/2 here), so comparing it with relu'(0) = 0 reports a relative
    error of 1 for a correct gradient, and ``chainrule derive`` refuses to write anything
    ("this is a bug in chainrule").
    """
    example = worked_example(chainrule.derive(KINK))
    assert example.check.passed, example.check.max_relative_error


#: Batch norm over two examples that sit 30 apart, with a weight near 0: the normalized value
#: d/√(d² + 4ε) of their spread d = 30 w swings from −1 to 1 within |w| ≲ 1e-4, so every step of
#: the usual size (1e-3, 1e-4) straddles the swing and misses the derivative by 5 %.
SHARP = """
title = "a loss that bends within a step"
[network]
inputs = 1
layers = [{ units = 1, activation = "identity" }, { kind = "batch_norm" }, { units = 1, activation = "identity" }]
loss = "half_sse"
[example]
x = [[0.0], [30.0]]
y = [[1.0], [0.0]]
W1 = [[0.00002]]
b1 = [0.0]
gamma2 = [1.0]
beta2 = [0.0]
W3 = [[0.7]]
b3 = [0.1]
"""


def test_check_takes_smaller_steps_where_the_loss_bends_within_a_step():
    """The derived 1854.6166 is right (PyTorch and the compiled model agree); a step of 1e-3 or
    1e-4 gives 1755.9, and ``chainrule derive`` used to refuse the document as a bug."""
    from chainrule.network import loads

    derivation = chainrule.derive(loads(SHARP))
    example = worked_example(derivation)
    w = derivation.graph.layers[0].weights[0][0]
    assert example.adjoints[w] == pytest.approx(1854.6165956325692, rel=1e-12)
    assert example.check.passed, (example.check.worst, example.check.max_relative_error)
    assert example.check.finite_differences[w] == pytest.approx(example.adjoints[w], rel=1e-9)


def test_smaller_steps_do_not_pass_a_wrong_gradient_there():
    from chainrule.network import loads
    from chainrule.numeric import _check, _leaf_values, lambdify_graph

    derivation = chainrule.derive(loads(SHARP))
    example = worked_example(derivation)
    graph = derivation.graph
    w = graph.layers[0].weights[0][0]
    wrong = {**example.adjoints, w: example.adjoints[w] * (1 + 1e-4)}
    check = _check(graph, lambdify_graph(graph, [graph.loss]), _leaf_values(graph, example.point), example.loss, wrong)
    assert not check.passed and check.worst == w
    assert check.max_relative_error == pytest.approx(1e-4, rel=1e-3)


KINK = Network(
    1,
    (Dense(2, "relu"), Dense(1, "identity")),
    "half_sse",
    example=Example(x=(1.0,), y=(1.0,), parameters={"W1": ((0.5,), (1.0,)), "b1": (-0.5, 0.25), "W2": ((1.0, 1.0),)}),
)


# --- (c) draw_point -------------------------------------------------------------------

NET = Network(3, (Dense(2, "tanh"), Dense(2, "sigmoid", bias=False)), "mse")


def _same_point(p, q) -> bool:
    return (
        p.x == q.x
        and p.y == q.y
        and p.learning_rate == q.learning_rate
        and p.drawn == q.drawn
        and set(p.parameters) == set(q.parameters)
        and all(np.array_equal(p.parameters[k], q.parameters[k]) for k in p.parameters)
    )


def test_draw_point_is_deterministic_for_a_seed():
    assert _same_point(draw_point(NET, 7), draw_point(NET, 7))
    assert not _same_point(draw_point(NET, 7), draw_point(NET, 8))
    assert draw_point(NET, 7).seed == 7
    assert draw_point(NET).seed == 0 and _same_point(draw_point(NET), draw_point(NET, 0))


def test_draw_point_draws_everything_when_nothing_is_given():
    point = draw_point(NET, 1)
    assert point.drawn == ("x", "y", "W1", "b1", "W2")
    assert point.default_rate and point.learning_rate == DEFAULT_LEARNING_RATE
    assert len(point.x) == 3 and len(point.y) == 2
    assert {k: v.shape for k, v in point.parameters.items()} == {"W1": (2, 3), "b1": (2,), "W2": (2, 2)}
    assert all(-1 <= v <= 1 for v in point.x) and all(0 <= v <= 1 for v in point.y)
    for values in [point.x, point.y, *(v.ravel() for v in point.parameters.values())]:
        for v in values:
            assert round(v, 2) == v  # two decimals, for a reader
            assert np.copysign(1.0, v) == 1.0 or v != 0  # no -0.0


def test_draw_point_respects_given_values():
    given = Example(x=(0.1, 0.2, 0.3), learning_rate=0.05, parameters={"W2": ((1.0, 2.0), (3.0, 4.0))})
    net = Network(NET.inputs, NET.layers, NET.loss, example=given)
    point = draw_point(net, 1)
    assert point.x == (0.1, 0.2, 0.3)
    assert point.learning_rate == 0.05 and not point.default_rate
    np.testing.assert_array_equal(point.parameters["W2"], [[1.0, 2.0], [3.0, 4.0]])
    assert point.drawn == ("y", "W1", "b1")
    # what is still drawn does not move when other values are written into the spec
    free = draw_point(NET, 1)
    assert point.y == free.y
    np.testing.assert_array_equal(point.parameters["W1"], free.parameters["W1"])
    np.testing.assert_array_equal(point.parameters["b1"], free.parameters["b1"])


def test_worked_example_uses_the_point_it_is_given():
    derivation = chainrule.derive(NET)
    point = draw_point(NET, 5)
    a = worked_example(derivation, point)
    b = worked_example(derivation, seed=5)
    assert a.point is point
    assert a.loss == b.loss and a.adjoints == b.adjoints
    assert worked_example(derivation, seed=6).loss != a.loss
    for p in derivation.graph.parameters:
        assert a.updated[p] == pytest.approx(a.values[p] - point.learning_rate * a.adjoints[p], rel=1e-15)


# --- (d) lambdify_checked --------------------------------------------------------------


def test_lambdify_checked_refuses_an_undeclared_symbol():
    x, y, stray = sp.symbols("x y stray")
    with pytest.raises(ValueError, match="stray"):
        lambdify_checked((x, y), [x + y, x * stray])
    with pytest.raises(ValueError, match="y"):
        lambdify_checked((x,), [x + y])


def test_lambdify_checked_evaluates_declared_expressions():
    x, y = sp.symbols("x y")
    f = lambdify_checked((x, y), [x + y, sp.exp(x) * y, sp.Integer(3)])
    got = f(1.0, 2.0)
    assert got[0] == 3.0 and got[1] == pytest.approx(2 * np.e, rel=1e-15) and got[2] == 3


def test_every_worked_example_expression_is_in_the_leaves(default_net):
    graph = chainrule.derive(default_net).graph
    composed = compose(graph)
    assert composed[graph.loss].free_symbols <= set(leaf_symbols(graph))
    assert set(leaf_symbols(graph)) == set(graph.inputs) | set(graph.targets) | set(graph.parameters)


@pytest.mark.parametrize(
    "spec",
    [
        # elu at z = 0 exactly: f' is continuous there (α = 1), f'' jumps
        Network(1, (Dense(1, "elu"),), "mse", example=Example(x=(1.0,), y=(0.5,), parameters={"W1": ((1.0,),), "b1": (-1.0,)})),
        # huber with |ŷ - y| = Δ exactly
        Network(
            1,
            (Dense(1, "identity"),),
            {"name": "huber", "delta": 0.5},
            example=Example(x=(1.0,), y=(0.0,), parameters={"W1": ((0.25,),), "b1": (0.25,)}),
        ),
    ],
    ids=["elu-at-0", "huber-at-delta"],
)
def test_the_check_accepts_points_where_only_a_higher_derivative_jumps(spec):
    example = worked_example(chainrule.derive(spec))
    assert example.check.passed, example.check
    _gradients_against_torch(spec, 0, check=False)
