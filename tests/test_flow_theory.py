"""The gradient-flow theory: sup |f′| derived for every activation, the layer Jacobians, and the bound on ‖δ⁽ˡ⁾‖."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp

from chainrule import derive, worked_example
from chainrule.catalog import ACTIVATIONS, Z
from chainrule.flow_bound import bound_walk, jacobian_product, spectral_norm
from chainrule.flow_numbers import flow_numbers
from chainrule.flow_theory import (
    CriticalPoints,
    derivative_bound,
    normalization_bound,
    softmax_bound,
)
from chainrule.model import compile
from chainrule.network import (
    Activation,
    BatchNorm,
    Dense,
    Dropout,
    LayerNorm,
    Network,
    Residual,
)
from chainrule.render.json_document import json_document
from chainrule.stable import NUMPY

ELEMENTWISE = [name for name, entry in ACTIVATIONS.items() if entry.elementwise]
#: The grid sup |f′| is compared on: far enough that σ(30) is 1 to 13 digits; fine enough, with the
#: derived point itself, for 1e-6.
GRID = np.linspace(-30.0, 30.0, 60_001)


@pytest.fixture(scope="module")
def bounds() -> dict:
    """Each activation's bound at its default parameters, derived once for the tests that share it."""
    return {name: derivative_bound(name) for name in ELEMENTWISE}


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_the_derived_sup_is_the_largest_slope_on_a_dense_grid(name: str, bounds: dict) -> None:
    entry, bound = ACTIVATIONS[name], bounds[name]
    assert sp.simplify(bound.derivative - sp.diff(bound.formula, Z)) == 0
    # The formula is the catalog's with its default parameters (SELU's as 17-digit floats).
    expected = sp.lambdify(Z, sp.diff(entry.formula, Z).xreplace({p.symbol: p.default for p in entry.parameters}), modules=[NUMPY, "numpy"])
    slope = sp.lambdify(Z, bound.derivative, modules=[NUMPY, "numpy"])
    probe = np.linspace(-3.7, 3.1, 41)
    np.testing.assert_allclose(np.broadcast_to(slope(probe), probe.shape), np.broadcast_to(expected(probe), probe.shape), rtol=1e-14, atol=1e-14)
    points = GRID if not (bound.attained and bound.at.is_number) else np.append(GRID, float(bound.at))
    with np.errstate(over="ignore", under="ignore"):
        values = np.abs(np.broadcast_to(slope(points), points.shape))
    assert values.max() <= bound.sup_value + 1e-9
    assert abs(values.max() - bound.sup_value) <= 1e-6


def test_sigmoid_tanh_and_relu_bounds_are_exact(bounds: dict) -> None:
    sigmoid, tanh, relu = bounds["sigmoid"], bounds["tanh"], bounds["relu"]
    assert sigmoid.sup == sp.Rational(1, 4) and sigmoid.at == 0 and sigmoid.attained
    (critical,) = [s for s in sigmoid.steps if isinstance(s, CriticalPoints)]
    # σ″ = σ(1 − σ)(1 − 2σ) = 0 ⇔ σ = 1/2 ⇔ z = 0: in the output a, only a = 1/2 is reached.
    assert critical.roots == (sp.Rational(1, 2),) and set(critical.excluded) == {0, 1} and critical.points == (0,)
    assert tanh.sup == 1 and tanh.at == 0 and tanh.values == sp.Interval.Lopen(0, 1)
    assert relu.values == sp.FiniteSet(0, 1) and relu.sup == 1
    assert bounds["softplus"].sup == 1 and not bounds["softplus"].attained  # approached as z → ∞
    assert derivative_bound("leaky_relu", {"alpha": 3.0}).sup == 3  # a parameter takes the network's value


def test_the_batch_norm_jacobian_is_derived_and_bounded() -> None:
    bound = normalization_bound("examples")
    jacobian = bound.steps[0]
    assert sp.simplify(jacobian.matrix - jacobian.textbook) == sp.zeros(3, 3)
    assert [(s.name, s.value) for s in bound.steps[1:]] == [("𝟏", 0), ("x̂", sp.Symbol("epsilon", positive=True) / sp.Symbol("s", positive=True) ** 2), ("𝟏 × x̂", 1)]
    assert bound.norm == sp.Abs(sp.Symbol("gamma", real=True)) / sp.Symbol("s", positive=True)
    # The closed form at numbers: a finite difference of batch norm itself agrees.
    x, gamma, eps = np.array([0.3, -1.2, 2.0]), 1.7, 1e-5

    def bn(v):
        return gamma * (v - v.mean()) / np.sqrt(v.var() + eps)

    numeric = np.array([(bn(x + 1e-6 * e) - bn(x - 1e-6 * e)) / 2e-6 for e in np.eye(3)]).T
    values = {**dict(zip(sp.symbols("x1:4", real=True), x)), sp.Symbol("gamma", real=True): gamma,
              sp.Symbol("s", positive=True): np.sqrt(x.var() + eps)}  # fmt: skip
    closed = np.array(jacobian.textbook.xreplace(values).evalf(), dtype=float)
    np.testing.assert_allclose(closed, numeric, atol=1e-6)
    assert abs(np.linalg.norm(closed, 2) - gamma / np.sqrt(x.var() + eps)) < 1e-9


def test_softmax_jacobian_has_norm_at_most_one_half() -> None:
    assert softmax_bound().norm == sp.Rational(1, 2)
    rng = np.random.default_rng(0)
    norms = []
    for _ in range(200):
        a = rng.dirichlet(np.full(4, rng.uniform(0.05, 3)))
        norms.append(np.linalg.norm(np.diag(a) - np.outer(a, a), 2))
    assert max(norms) <= 0.5 and np.linalg.norm(np.diag([0.5, 0.5, 0]) - np.outer([0.5, 0.5, 0], [0.5, 0.5, 0]), 2) == pytest.approx(0.5)


def test_spectral_norm_in_plain_python_matches_numpy() -> None:
    W = np.random.default_rng(3).normal(size=(7, 12))
    assert spectral_norm(W.tolist()) == pytest.approx(np.linalg.norm(W, 2), rel=1e-12)


def _random_network(rng: np.random.Generator, activations: list[str]) -> Network:
    """Depth 2 to 8 stages, widths 1 to 5, activations from the table, some residual blocks, batch norm, dropout."""
    inputs = int(rng.integers(1, 5))
    width, layers, stages = inputs, [], 0
    depth = int(rng.integers(2, 9))
    while stages < depth - 1:
        kind = rng.choice(["dense", "dense", "dense", "residual", "batch_norm", "layer_norm", "dropout", "activation"])
        act = str(rng.choice(activations))
        if kind == "dense":
            width = int(rng.integers(1, 6))
            layers.append(Dense(width, act))
            stages += 1
        elif kind == "residual":
            layers.append(Residual((Dense(int(rng.integers(1, 6)), act), Dense(width, str(rng.choice(activations))))))
            stages += 3
        elif kind == "batch_norm" and width > 1:
            layers.append(BatchNorm())
            stages += 1
        elif kind == "layer_norm" and width > 1:
            layers.append(LayerNorm())
            stages += 1
        elif kind == "dropout":
            layers.append(Dropout(0.3))
            stages += 1
        elif kind == "activation":
            layers.append(Activation(act))
            stages += 1
    layers.append(Dense(int(rng.integers(1, 4)), "identity"))
    return Network(inputs, tuple(layers), "mse")


def _product_at(row, network: Network, model, params, arrays, example: int) -> np.ndarray:
    """A row of ``jacobian_product`` with one example's matrices put in for its symbols."""
    n = arrays["X"].shape[0]
    last = network.stages[-1]
    values = {f"delta^({last.number})": n * arrays[f"D{last.number}"][example][:, None]}
    for s in network.stages:
        l = s.number
        if s.kind == "dense":
            values[f"W^({l})"] = params[f"W{l}"]
        if s.kind in ("dense", "activation"):
            inputs = arrays[f"Z{l}"] if s.kind == "dense" else arrays["X" if s.source == 0 else f"A{s.source}"]
            alpha = [params[f"{p.name}{l}"] for p in s.choice.entry.parameters if p.learnable]
            slopes = np.broadcast_to(model.kernels[f"k_df{l}"](inputs, arrays[f"A{l}"], *alpha), inputs.shape)
            values[f"D^({l})"] = np.diag(slopes[example])
        if s.kind == "dropout":
            values[f"M^({l})"] = np.diag(arrays[f"M{l}"][example])
    expr = row.unrolled.xreplace({m: sp.ImmutableMatrix(values[m.name]) for m in row.unrolled.atoms(sp.MatrixSymbol)})
    return np.array(expr.doit(), dtype=float).ravel()


def test_the_bound_holds_for_twenty_random_networks(bounds: dict) -> None:
    rng = np.random.default_rng(2024)
    checked = coupled = products = residual = 0
    for trial in range(20):
        network = _random_network(rng, ELEMENTWISE)
        residual += any(s.inner for s in network.stages)
        model = compile(network)
        params = model.init_params(trial, "standard_normal" if trial % 2 else "glorot_uniform")
        X, Y = rng.normal(size=(6, network.inputs)), rng.normal(size=(6, network.outputs))
        stage_bounds = {s.number: bounds[s.choice.name] for s in network.stages if s.choice is not None}
        masks = {f"M{s.number}": (rng.random((6, s.units)) < 0.7) / 0.7 for s in network.stages if s.kind == "dropout"}
        numbers = flow_numbers(network, params, X, Y, masks=masks, bounds=stage_bounds, model=model)
        assert numbers.coupled == network.couples_batch
        coupled += numbers.coupled
        for row in numbers.stages:
            for measured, sharper, bound in zip(row.measured, row.sharper, row.bound):
                assert measured <= sharper * (1 + 1e-9) + 1e-12, (trial, row)
                assert sharper <= bound * (1 + 1e-9) + 1e-12, (trial, row)
            checked += 1
        assert numbers.stages[0].measured == numbers.stages[0].bound  # the bound starts at the measured δ⁽ᴸ⁾
        if not numbers.coupled:
            _, _, arrays = model.trace(params, X, Y, masks=masks)
            for row in jacobian_product(network):
                # Every δ the product writes without a normalization's J is the one ``trace`` computes.
                if row.quantity == "delta" and not any(m.name.startswith("J") for m in row.unrolled.atoms(sp.MatrixSymbol)):
                    D = len(X) * arrays[f"D{row.stage}"][0]
                    np.testing.assert_allclose(_product_at(row, network, model, params, arrays, 0), D, rtol=1e-9, atol=1e-12)
                    products += 1
    assert checked > 60 and coupled >= 2 and residual >= 2 and products >= 10


def test_batch_norm_needs_the_bound_over_the_batch() -> None:
    """Per example the bound fails under batch norm (an example with δ⁽ᴸ⁾ = 0 still gets a δ below); over the batch it holds."""
    network = Network(2, (Dense(3, "tanh"), BatchNorm(), Dense(1, "identity")), "mse")
    model = compile(network)
    params = model.init_params(0)
    X = np.array([[0.5, -1.0], [1.5, 0.2], [-0.7, 0.9], [0.1, 0.4]])
    Y = model.predict(params, X, state={"mean2": np.zeros(3), "var2": np.ones(3)})
    _, _, arrays = model.trace(params, X, Y)
    Y[0] = arrays["A3"][0]  # example 0 fits exactly: its δ⁽³⁾ is 0
    numbers = flow_numbers(network, params, X, Y, bounds={1: derivative_bound("tanh"), 3: derivative_bound("identity")})
    assert numbers.coupled and numbers.holds
    _, _, arrays = model.trace(params, X, Y)
    per_example = np.linalg.norm(4 * arrays["D3"], axis=1)
    slope = float(np.abs(model.kernels["k_df1"](arrays["Z1"], arrays["A1"])).max())
    scale = float((np.abs(params["gamma2"]) / np.sqrt(arrays["Var2"] + 1e-5)).max())
    walked = bound_walk(network, per_example, lambda l: slope, lambda l: float(np.linalg.norm(params[f"W{l}"], 2)), lambda l: scale)
    measured = np.linalg.norm(4 * arrays["D1"], axis=1)
    assert per_example[0] == 0 and walked["delta", 1][0] == 0 and measured[0] > 1e-3


def test_the_json_document_shows_the_derived_sups() -> None:
    d = derive(Network(2, (Dense(2, "tanh"), Dense(1, "sigmoid")), "bce"))
    doc = json.loads(json_document(d, worked_example(d)))
    flow = doc["gradient_flow"]
    assert flow["activations"]["sigmoid"]["sup"] == 0.25 and flow["activations"]["sigmoid"]["sup_exact"] == "1/4"
    assert flow["activations"]["tanh"]["sup"] == 1.0 and flow["activations"]["tanh"]["at"] == "0"
    assert flow["numbers"]["holds"] and [s["quantity"] for s in flow["numbers"]["stages"]] == ["delta", "gradient", "delta"]
    top, below = flow["numbers"]["stages"][0], flow["numbers"]["stages"][2]
    assert top["measured"] == top["bound"] and 0 < below["measured"][0] <= below["sharper"][0] <= below["bound"][0]
