"""Every catalog entry against SymPy's own derivative and against PyTorch float64."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from chainrule import catalog
from chainrule.catalog import ACTIVATIONS, LOSSES

from conftest import TORCH_ACTIVATIONS, TORCH_LOSSES

#: Ordinary inputs: -5..5 in steps of 1/8, which contains 0 exactly; exp(±5) cannot overflow.
GRID = np.arange(-40, 41) / 8.0
#: Exact points on both sides of relu's kink and at it, for the Piecewise comparison.
KINK_POINTS = (sp.Integer(-3), sp.Rational(-1, 7), sp.Integer(0), sp.Rational(1, 7), sp.Integer(3))


def test_every_entry_has_a_torch_reference():
    assert set(ACTIVATIONS) == set(TORCH_ACTIVATIONS)
    assert set(LOSSES) == set(TORCH_LOSSES)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_entry_is_named_by_its_key(name):
    assert ACTIVATIONS[name].name == name
    assert ACTIVATIONS[name].formula.free_symbols <= {catalog.Z}
    assert ACTIVATIONS[name].derivative.free_symbols <= {catalog.Z, catalog.A}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_textbook_derivative_equals_sympy_diff(name):
    entry = ACTIVATIONS[name]
    textbook = entry.derivative.xreplace({catalog.A: entry.formula})
    expected = sp.diff(entry.formula, catalog.Z)
    assert sp.simplify(textbook - expected) == 0
    # simplify proves the identity for every entry today, relu's Piecewise included. It
    # says nothing about which value a Piecewise takes *at* a kink beyond its conditions,
    # so evaluate both exactly on each side of 0 and at 0 as well: sympy.diff of
    # Piecewise((0, z <= 0), (z, True)) differentiates branch by branch and keeps the
    # condition z <= 0, so both sides must give 0 at z = 0 (PyTorch's convention).
    for z in KINK_POINTS:
        assert sp.simplify(textbook.subs(catalog.Z, z) - expected.subs(catalog.Z, z)) == 0, z


def _numeric(expr: sp.Expr) -> np.ndarray:
    values = sp.lambdify(catalog.Z, expr, modules=[np])(GRID)
    return np.broadcast_to(np.asarray(values, dtype=np.float64), GRID.shape)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_value_and_derivative_equal_torch(name):
    entry = ACTIVATIONS[name]
    z = torch.tensor(GRID, dtype=torch.float64, requires_grad=True)
    a = TORCH_ACTIVATIONS[name](z)
    (slope,) = torch.autograd.grad(a.sum(), z)
    values = _numeric(entry.formula)
    # The textbook form as the network uses it: A is the unit's own output f(z).
    textbook = sp.lambdify((catalog.Z, catalog.A), entry.derivative, modules=[np])(GRID, values)
    textbook = np.broadcast_to(np.asarray(textbook, dtype=np.float64), GRID.shape)
    np.testing.assert_allclose(values, a.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(textbook, slope.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(_numeric(sp.diff(entry.formula, catalog.Z)), slope.numpy(), rtol=0, atol=1e-12)


def test_relu_at_the_kink_follows_torch():
    relu = ACTIVATIONS["relu"]
    assert relu.formula.subs(catalog.Z, 0) == 0
    assert relu.derivative.subs(catalog.Z, 0) == 0
    z = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(torch.relu(z).sum(), z)
    assert slope.item() == 0.0
    # and just either side of it
    assert relu.derivative.subs(catalog.Z, sp.Rational(-1, 10**9)) == 0
    assert relu.derivative.subs(catalog.Z, sp.Rational(1, 10**9)) == 1


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("n", [1, 2, 5])
def test_loss_formula_equals_torch(name, n):
    rng = np.random.default_rng(n)
    yhat_s = sp.symbols(f"p1:{n + 1}", real=True)
    y_s = sp.symbols(f"t1:{n + 1}", real=True)
    formula = LOSSES[name].formula(yhat_s, y_s)
    assert formula.free_symbols == set(yhat_s) | set(y_s)
    evaluate = sp.lambdify((*yhat_s, *y_s), formula, modules=[np])
    for _ in range(5):
        yhat, y = rng.normal(size=n) * 2, rng.normal(size=n) * 2
        want = TORCH_LOSSES[name](torch.tensor(yhat, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)).item()
        got = float(evaluate(*yhat, *y))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_summary_equals_formula(name):
    """The Σ form shown in documents is the same function as the formula."""
    n = 3
    yhat, y, j = sp.IndexedBase("yhat"), sp.IndexedBase("y"), sp.Symbol("j", integer=True)
    summary = LOSSES[name].summary(yhat, y, j, sp.Integer(n)).doit()
    formula = LOSSES[name].formula([yhat[i] for i in range(1, n + 1)], [y[i] for i in range(1, n + 1)])
    assert sp.simplify(summary - formula) == 0
    assert formula != 0
