"""Shared fixtures: the default network, seeded random networks, and a PyTorch reference.

The PyTorch reference shares nothing with chainrule but the spec: it rebuilds the forward
pass from ``Network`` and ``numeric.Point`` with ``torch.nn.functional`` in float64 and
lets autograd differentiate it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

import chainrule
from chainrule.catalog import ACTIVATIONS, LOSSES
from chainrule.graph import Graph, parameter_names
from chainrule.network import Choice, Dense, Network
from chainrule.numeric import Point

Tensor = torch.Tensor

#: What the reference applies for each catalog activation: ``f(z, values)`` with ``values``
#: the entry's parameters by name (a float, or for a learned one such as prelu's α the
#: tensor autograd differentiates). Softmax gets the whole layer's z. A catalog entry
#: without one here makes ``test_catalog.py::test_every_entry_has_a_torch_reference`` fail.
TORCH_ACTIVATIONS: dict[str, Callable[[Tensor, Mapping[str, Any]], Tensor]] = {
    "identity": lambda z, p: z,
    "sigmoid": lambda z, p: torch.sigmoid(z),
    "tanh": lambda z, p: torch.tanh(z),
    "relu": lambda z, p: F.relu(z),  # relu'(0) = 0 in torch's autograd
    "leaky_relu": lambda z, p: F.leaky_relu(z, p["alpha"]),
    "prelu": lambda z, p: F.prelu(z, torch.as_tensor(p["alpha"], dtype=torch.float64)),
    "elu": lambda z, p: F.elu(z, p["alpha"]),
    # F.selu fixes α and λ; the spec may set them, and λ·elu(z, α) is the same function
    # (test_catalog compares it with F.selu at the defaults).
    "selu": lambda z, p: p["scale"] * F.elu(z, p["alpha"]),
    # Not F.softplus: beyond its threshold (20) it returns z itself, which differs from
    # log(1 + e^z) by up to ~1e-9 relative; logaddexp(z, 0) is log(1 + e^z) to rounding.
    "softplus": lambda z, p: torch.logaddexp(z, torch.zeros_like(z)),
    "silu": lambda z, p: F.silu(z),
    "gelu": lambda z, p: F.gelu(z, approximate="none"),
    "gelu_tanh": lambda z, p: F.gelu(z, approximate="tanh"),
    "softsign": lambda z, p: F.softsign(z),
    "hard_tanh": lambda z, p: F.hardtanh(z),
    "softmax": lambda z, p: F.softmax(z, dim=-1),
}

#: The reference of each catalog loss: ``loss(output, y, values)`` over one example's
#: outputs. A loss that requires an output activation (cross-entropy on softmax) gets that
#: activation's inputs, the logits, as PyTorch's fused loss does.
TORCH_LOSSES: dict[str, Callable[[Tensor, Tensor, Mapping[str, Any]], Tensor]] = {
    "half_sse": lambda yhat, y, p: 0.5 * torch.sum((yhat - y) ** 2),
    "mse": lambda yhat, y, p: F.mse_loss(yhat, y),
    "mae": lambda yhat, y, p: F.l1_loss(yhat, y),
    "huber": lambda yhat, y, p: F.huber_loss(yhat, y, delta=p["delta"]),
    "bce": lambda yhat, y, p: F.binary_cross_entropy(yhat, y),
    "bce_logits": lambda yhat, y, p: F.binary_cross_entropy_with_logits(yhat, y),
    "cross_entropy": lambda logits, y, p: F.cross_entropy(logits, y),
    "hinge": lambda yhat, y, p: torch.mean(F.relu(1 - y * yhat)),
    "squared_hinge": lambda yhat, y, p: torch.mean(F.relu(1 - y * yhat) ** 2),
    # log cosh e = e + log(1 + e^-2e) - log 2, finite for every e (cosh overflows at |e| > 710).
    "log_cosh": lambda yhat, y, p: torch.mean(
        (yhat - y) + torch.logaddexp(-2 * (yhat - y), torch.zeros_like(yhat)) - np.log(2.0)
    ),
}

#: The reference of each regularizer: ``penalty(weights, values)``, summed over every weight.
TORCH_REGULARIZERS: dict[str, Callable[[list[Tensor], Mapping[str, Any]], Tensor]] = {
    "l1": lambda ws, p: p["coefficient"] * sum(w.abs().sum() for w in ws),
    "l2": lambda ws, p: p["coefficient"] / 2 * sum((w**2).sum() for w in ws),
}

#: Losses defined on probabilities: the output layer must give numbers in (0, 1).
PROBABILITY_OUTPUTS = {"bce": ("sigmoid", "softmax")}
#: Parameters ``random_network(..., parameters=True)`` draws: (low, high) for each name.
#: selu's α and λ are left at the values the literature fixes.
DRAWN_PARAMETERS = {
    "leaky_relu": {"alpha": (0.01, 0.5)},
    "prelu": {"alpha": (-0.5, 0.5)},
    "elu": {"alpha": (0.1, 2.0)},
    "huber": {"delta": (0.1, 2.0)},
}


@pytest.fixture
def default_net() -> Network:
    """The built-in 2-2-2 sigmoid network of Matt Mazur's worked example."""
    return chainrule.default_network()


def random_network(
    seed: int,
    activation: str | None = None,
    loss: str | None = None,
    max_depth: int = 3,
    max_width: int = 3,
    max_parameters: int | None = None,
    regularizer: str | Mapping[str, Any] | None = None,
    parameters: bool = False,
) -> Network:
    """A valid network drawn from ``seed``: depth 1..max_depth, every width 1..max_width.

    ``activation``/``loss`` fix them; ``None`` draws one per layer (catalog names only:
    formula-defined entries have no PyTorch reference). Only valid networks are drawn: a
    layer-level activation (softmax) goes on the output layer only, with at least two
    units, and hidden layers get elementwise ones; a loss that requires an output
    activation (cross-entropy: softmax) gets it; a loss on probabilities (bce) gets a
    sigmoid or softmax output. About one layer in four has no bias. ``regularizer`` is
    passed to the network as given. ``parameters=True`` writes drawn values of the
    entries' parameters (leaky α, elu α, prelu's starting α, huber Δ) as inline tables.
    ``max_parameters`` redraws (from the same rng, so still deterministic) until the
    network is at most that large.
    """
    rng = np.random.default_rng(seed)
    names = sorted(ACTIVATIONS)
    elementwise = [n for n in names if ACTIVATIONS[n].elementwise]
    while True:
        chosen = loss if loss is not None else sorted(LOSSES)[int(rng.integers(len(LOSSES)))]
        depth = int(rng.integers(1, max_depth + 1))
        inputs = int(rng.integers(1, max_width + 1))
        layers = []
        for number in range(1, depth + 1):
            last = number == depth
            drawn = names if last else elementwise
            if activation is not None and activation in drawn:
                name = activation
            else:
                name = drawn[int(rng.integers(len(drawn)))]
            if last:
                name = _output_activation(name, chosen, rng)
            narrowest = 1 if ACTIVATIONS[name].elementwise else min(2, max_width)
            units = int(rng.integers(narrowest, max_width + 1))
            bias = bool(rng.random() >= 0.25)
            layers.append(Dense(units, _with_parameters(name, rng) if parameters else name, bias))
        net = Network(inputs, tuple(layers), _with_parameters(chosen, rng) if parameters else chosen, regularizer=regularizer)
        if max_parameters is None or count_parameters(net) <= max_parameters:
            return net


def _output_activation(name: str, loss: str, rng: np.random.Generator) -> str:
    """The output layer's activation: ``name`` unless the loss asks for another."""
    required = LOSSES[loss].requires
    if required is not None:
        return required
    allowed = PROBABILITY_OUTPUTS.get(loss)
    if allowed is not None and name not in allowed:
        return allowed[int(rng.integers(len(allowed)))]
    return name


def _with_parameters(name: str, rng: np.random.Generator) -> str | dict[str, Any]:
    ranges = DRAWN_PARAMETERS.get(name)
    if ranges is None:
        return name
    return {"name": name, **{key: round(float(rng.uniform(low, high)), 2) for key, (low, high) in ranges.items()}}


def random_targets(net: Network, rows: int, rng: np.random.Generator) -> np.ndarray:
    """``rows`` target rows of the kind the network's loss is defined for: one-hot, 0/1, ±1, or any numbers."""
    kind, k = net.loss_choice.entry.targets, net.outputs
    if kind == "distribution":
        return np.eye(k)[rng.integers(k, size=rows)]
    if kind == "unit":
        return (rng.random((rows, k)) > 0.5).astype(float)
    if kind == "sign":
        return np.where(rng.random((rows, k)) > 0.5, 1.0, -1.0)
    return rng.normal(size=(rows, k))


def count_parameters(net: Network) -> int:
    return sum(int(np.prod(shape)) for shape in net.parameter_shapes().values())


def _short(choice: Choice) -> str:
    """``leaky_relu`` or, with parameters the spec sets, ``leaky_relu[alpha=0.1]``."""
    changed = {k: v for k, v in choice.values.items() if v != {p.name: p.default for p in choice.entry.parameters}.get(k)}
    return choice.name + ("[" + ",".join(f"{k}={v:g}" for k, v in changed.items()) + "]" if changed else "")


def describe(net: Network) -> str:
    """A short id for a parametrized case: ``2-3(sigmoid)-1(relu,nobias)/mse+l2``."""
    layers = "-".join(
        f"{l.units}({_short(c)}{'' if l.bias else ',nobias'})" for l, c in zip(net.layers, net.activations)
    )
    regularizer = "" if net.regularizer_choice is None else f"+{_short(net.regularizer_choice)}"
    return f"{net.inputs}-{layers}/{_short(net.loss_choice)}{regularizer}"


@dataclass(frozen=True)
class TorchResult:
    loss: float
    #: "W1", "b1", "alpha1", ... -> gradient with the parameter's shape (W: (units, inputs)).
    gradients: dict[str, np.ndarray]
    #: "z1", "a1", ... -> the forward values of each layer.
    forward: dict[str, np.ndarray]


def _reference(table: Mapping[str, Callable], catalog: Mapping[str, Any], choice: Choice) -> Callable:
    if catalog.get(choice.name) is not choice.entry:
        raise ValueError(f"{choice.name!r} is written as a formula; PyTorch has no reference for it")
    return table[choice.name]


def torch_reference(net: Network, point: Point) -> TorchResult:
    """Loss, forward values and gradients by PyTorch float64 autograd.

    Everything comes from the spec: each activation's parameter values, prelu's learned α
    (the point's ``alpha{l}``, differentiated like a weight), the loss's parameters, and
    the regularizer, added over the weights W (not the biases).
    """
    params = {
        name: torch.tensor(np.asarray(point.parameters[name], dtype=np.float64), dtype=torch.float64, requires_grad=True)
        for name in net.parameter_shapes()
    }
    a = torch.tensor(point.x, dtype=torch.float64)
    z = a
    forward: dict[str, np.ndarray] = {}
    for number, (layer, choice) in enumerate(zip(net.layers, net.activations), start=1):
        z = F.linear(a, params[f"W{number}"], params.get(f"b{number}"))
        values = {**choice.values, **{p.name: params[f"{p.name}{number}"] for p in choice.entry.parameters if p.learnable}}
        a = _reference(TORCH_ACTIVATIONS, ACTIVATIONS, choice)(z, values)
        forward[f"z{number}"] = z.detach().numpy().copy()
        forward[f"a{number}"] = a.detach().numpy().copy()
    loss_choice = net.loss_choice
    output = z if loss_choice.entry.requires is not None else a
    y = torch.tensor(point.y, dtype=torch.float64)
    loss = _reference(TORCH_LOSSES, LOSSES, loss_choice)(output, y, loss_choice.values)
    if net.regularizer_choice is not None:
        weights = [params[f"W{number}"] for number in range(1, len(net.layers) + 1)]
        loss = loss + TORCH_REGULARIZERS[net.regularizer_choice.name](weights, net.regularizer_choice.values)
    loss.backward()
    gradients = {name: p.grad.numpy().copy() for name, p in params.items()}
    return TorchResult(float(loss.detach()), gradients, forward)


def as_arrays(graph: Graph, values) -> dict[str, np.ndarray]:
    """Per-symbol numbers (a dict keyed by parameter symbol) as "W1", "b1", "alpha1", ... arrays."""
    return {name: np.array(_nested(symbols, values)) for name, symbols in parameter_names(graph).items()}


def _nested(symbols, values):
    if isinstance(symbols, sp.Symbol):
        return values[symbols]
    return [_nested(s, values) for s in symbols]


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float, floor: float) -> None:
    """|got - want| <= rtol * max(|want|, floor), entry by entry."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    bound = rtol * np.maximum(np.abs(want), floor)
    bad = ~(np.abs(got - want) <= bound)  # NaN anywhere fails too
    assert not bad.any(), f"got {got[bad]}, want {want[bad]} (rtol {rtol}, floor {floor})"


def exact_values(symbols, rng: np.random.Generator, low: float = -1.0, high: float = 1.0) -> dict[sp.Symbol, sp.Rational]:
    """Random exact rationals (two decimals) for ``symbols``, so evaluation has no round-off."""
    return {s: sp.Rational(int(rng.integers(int(low * 100), int(high * 100) + 1)), 100) for s in symbols}


@pytest.fixture
def make_network():
    """``make_network(seed, activation=None, loss=None, ...)``: see ``random_network``."""
    return random_network


@pytest.fixture
def reference():
    """``reference(network, point)``: PyTorch float64 loss, forward values and gradients."""
    return torch_reference


def required_program(name: str) -> str:
    """The path of a program the test needs: CI must have it, elsewhere the test skips."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {name} is not on PATH; these tests must run in CI")
        pytest.skip(f"{name} is not installed (shutil.which({name!r}) is None)")
    return path
