"""The tables of activations and losses: each name maps to SymPy expressions.

An activation is written in two catalog symbols, ``Z`` (its input) and ``A`` (its
output). ``formula`` is what the network computes; ``derivative`` is the textbook form
of f'(z), written with the output ``A`` where that is the familiar form
(σ' = σ(1-σ) = a(1-a)). The textbook form is shown to readers, so ``tests/test_catalog.py``
proves for every entry that it equals ``sympy.diff(formula, Z)``.

A loss is a function of the output vector ŷ and the target vector y. ``summary`` writes
it once with a Σ over an index for the document's notation section.

>>> ACTIVATIONS["sigmoid"].formula
1/(1 + exp(-z))
>>> LOSSES["half_sse"].formula((A,), (Y,))
(-a + y)**2/2
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy as sp

#: The input and output of an activation in the catalog's formulas.
Z = sp.Symbol("z", real=True)
A = sp.Symbol("a", real=True)
#: One output and one target, for single-output examples and tests.
Y = sp.Symbol("y", real=True)


@dataclass(frozen=True)
class Activation:
    """a = f(z), applied to every unit of a layer."""

    name: str
    title: str
    formula: sp.Expr
    derivative: sp.Expr
    #: How f is written in documents, e.g. σ; ``None`` writes the formula itself.
    display: sp.FunctionClass | None


@dataclass(frozen=True)
class Loss:
    """L = loss(ŷ, y), a scalar from the network's outputs and the targets."""

    name: str
    title: str
    formula: Callable[[Sequence[sp.Expr], Sequence[sp.Expr]], sp.Expr]
    summary: Callable[[sp.IndexedBase, sp.IndexedBase, sp.Symbol, sp.Expr], sp.Expr]


def _half_sse(yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> sp.Expr:
    return sp.Rational(1, 2) * sp.Add(*[(t - p) ** 2 for p, t in zip(yhat, y)])


def _mse(yhat: Sequence[sp.Expr], y: Sequence[sp.Expr]) -> sp.Expr:
    return sp.Add(*[(p - t) ** 2 for p, t in zip(yhat, y)]) / len(yhat)


ACTIVATIONS: dict[str, Activation] = {
    entry.name: entry
    for entry in (
        Activation("identity", "identity", Z, sp.Integer(1), None),
        Activation(
            "sigmoid",
            "logistic sigmoid",
            1 / (1 + sp.exp(-Z)),
            A * (1 - A),
            sp.Function("sigma"),
        ),
        Activation("tanh", "hyperbolic tangent", sp.tanh(Z), 1 - A**2, None),
        # The kink at 0 follows PyTorch: relu(0) = 0 and relu'(0) = 0.
        Activation(
            "relu",
            "rectified linear unit",
            sp.Piecewise((0, Z <= 0), (Z, True)),
            sp.Piecewise((0, Z <= 0), (1, True)),
            sp.Function("ReLU"),
        ),
    )
}

LOSSES: dict[str, Loss] = {
    entry.name: entry
    for entry in (
        Loss(
            "half_sse",
            "half the sum of squared errors",
            _half_sse,
            lambda yhat, y, j, n: sp.Rational(1, 2) * sp.Sum((y[j] - yhat[j]) ** 2, (j, 1, n)),
        ),
        Loss(
            "mse",
            "mean squared error over the outputs",
            _mse,
            lambda yhat, y, j, n: sp.Sum((yhat[j] - y[j]) ** 2, (j, 1, n)) / n,
        ),
    )
}
