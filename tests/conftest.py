"""Shared fixtures: the default network, seeded random networks, and a PyTorch reference.

The PyTorch reference shares nothing with chainrule but the spec: it rebuilds the forward
pass from ``Network`` and ``numeric.Point`` with ``torch.nn.functional`` in float64 and
lets autograd differentiate it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import numpy as np
import pytest
import sympy as sp
import torch

import chainrule
from chainrule.catalog import ACTIVATIONS, LOSSES
from chainrule.graph import Graph, parameter_names
from chainrule.network import Dense, Network
from chainrule.numeric import Point

#: What the reference applies for each catalog name; a catalog entry without one here
#: makes ``test_catalog.py::test_every_activation_has_a_reference`` fail.
TORCH_ACTIVATIONS = {
    "identity": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,  # relu'(0) = 0 in torch's autograd
}

TORCH_LOSSES = {
    "half_sse": lambda yhat, y: 0.5 * torch.sum((y - yhat) ** 2),
    "mse": lambda yhat, y: torch.mean((yhat - y) ** 2),
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
) -> Network:
    """A network drawn from ``seed``: depth 1..max_depth, every width 1..max_width.

    ``activation``/``loss`` fix them for every layer; ``None`` draws one per layer.
    About one layer in four has no bias. ``max_parameters`` redraws (from the same rng,
    so still deterministic) until the network is at most that large.
    """
    rng = np.random.default_rng(seed)
    names = sorted(ACTIVATIONS)
    while True:
        depth = int(rng.integers(1, max_depth + 1))
        inputs = int(rng.integers(1, max_width + 1))
        layers = tuple(
            Dense(
                int(rng.integers(1, max_width + 1)),
                activation if activation is not None else names[int(rng.integers(len(names)))],
                bool(rng.random() >= 0.25),
            )
            for _ in range(depth)
        )
        chosen = loss if loss is not None else sorted(LOSSES)[int(rng.integers(len(LOSSES)))]
        net = Network(inputs, layers, chosen)
        if max_parameters is None or count_parameters(net) <= max_parameters:
            return net


def count_parameters(net: Network) -> int:
    return sum(int(np.prod(shape)) for shape in net.parameter_shapes().values())


def describe(net: Network) -> str:
    """A short id for a parametrized case: ``2-3(sigmoid)-1(relu,nobias)/mse``."""
    layers = "-".join(f"{l.units}({l.activation}{'' if l.bias else ',nobias'})" for l in net.layers)
    return f"{net.inputs}-{layers}/{net.loss}"


@dataclass(frozen=True)
class TorchResult:
    loss: float
    #: "W1", "b1", ... -> gradient with the parameter's shape (W: (units, inputs)).
    gradients: dict[str, np.ndarray]
    #: "z1", "a1", ... -> the forward values of each layer.
    forward: dict[str, np.ndarray]


def torch_reference(net: Network, point: Point) -> TorchResult:
    """Loss, forward values and gradients by PyTorch float64 autograd."""
    params = {
        name: torch.tensor(np.asarray(point.parameters[name], dtype=np.float64), dtype=torch.float64, requires_grad=True)
        for name in net.parameter_shapes()
    }
    a = torch.tensor(point.x, dtype=torch.float64)
    forward: dict[str, np.ndarray] = {}
    for number, layer in enumerate(net.layers, start=1):
        z = torch.nn.functional.linear(a, params[f"W{number}"], params.get(f"b{number}"))
        a = TORCH_ACTIVATIONS[layer.activation](z)
        forward[f"z{number}"] = z.detach().numpy().copy()
        forward[f"a{number}"] = a.detach().numpy().copy()
    loss = TORCH_LOSSES[net.loss](a, torch.tensor(point.y, dtype=torch.float64))
    loss.backward()
    gradients = {name: p.grad.numpy().copy() for name, p in params.items()}
    return TorchResult(float(loss.detach()), gradients, forward)


def as_arrays(graph: Graph, values) -> dict[str, np.ndarray]:
    """Per-symbol numbers (a dict keyed by parameter symbol) as "W1", "b1", ... arrays."""
    return {
        name: np.array([[values[s] for s in row] for row in symbols] if name.startswith("W") else [values[s] for s in symbols])
        for name, symbols in parameter_names(graph).items()
    }


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float, floor: float) -> None:
    """|got - want| <= rtol * max(|want|, floor), entry by entry."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    bound = rtol * np.maximum(np.abs(want), floor)
    bad = np.abs(got - want) > bound
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
