"""Layer-level rules: their kernels, the shortened output δ, and how each rule is written."""

from __future__ import annotations

import pytest
import sympy as sp

from chainrule.catalog import ACTIVATIONS, LOSSES, A, P, Y, Z
from chainrule.layers import layer_rules, output_delta
from chainrule.network import Dense, Network


@pytest.mark.parametrize("name", sorted(n for n, a in ACTIVATIONS.items() if a.elementwise))
def test_activation_kernels_are_f_and_its_derivative(name: str) -> None:
    rules = layer_rules(Network(2, (Dense(3, name), Dense(1, "identity")), "mse"))
    f, df = rules.kernels["k_f1"], rules.kernels["k_df1"]
    assert f.args[0] == Z and df.args[:2] == (Z, A)
    # f′ may be written in the output a (σ(1 − σ) = a(1 − a)); with a = f(z) it is sympy.diff.
    written = df.expr.xreplace({A: f.expr})
    values = {s: sp.nsimplify(v) for s, v in rules.constants.items()}
    difference = (written - sp.diff(f.expr, Z)).xreplace(values)
    if difference.has(sp.Piecewise):
        points = [sp.Rational(k, 7) for k in range(-14, 15) if k]
        assert all(sp.N(difference.subs(Z, p)) == 0 for p in points)
    else:
        assert sp.simplify(difference) == 0


@pytest.mark.parametrize("loss", sorted(n for n, e in LOSSES.items() if e.requires is None))
def test_loss_kernels_are_the_term_and_its_derivative(loss: str) -> None:
    output = "sigmoid" if loss == "bce" else "identity"
    rules = layer_rules(Network(2, (Dense(2, output),), loss))
    term, dloss = rules.kernels["k_loss"], rules.kernels["k_dloss"]
    assert term.args == dloss.args == (P, Y)
    assert sp.simplify(sp.diff(term.expr, P) - dloss.expr) == 0


def test_sigmoid_with_bce_cancels_to_a_minus_y() -> None:
    rules = layer_rules(Network(2, (Dense(1, "sigmoid"),), "bce"))
    assert rules.kernels["k_delta"].expr == A - Y
    assert rules.backward[0].code == "D1 = k_delta(Z1, A1, Y) / (n * 1)"
    dloss = sp.diff(LOSSES["bce"].term, P).xreplace({P: A})
    assert output_delta(dloss, ACTIVATIONS["sigmoid"].derivative) == A - Y
    # tanh with mse has nothing shorter than the product of the two.
    assert output_delta(sp.diff(LOSSES["mse"].term, P).xreplace({P: A}), ACTIVATIONS["tanh"].derivative) is None


def test_softmax_with_cross_entropy_works_on_the_logits() -> None:
    rules = layer_rules(Network(3, (Dense(4, "relu"), Dense(3, "softmax")), "cross_entropy"))
    assert [r.code for r in rules.loss] == ["L = (Y * (S2 - Z2)).sum() / n"]
    assert rules.backward[0].code == "D2 = A2 - Y\nD2 /= n"
    assert "targets add up to 1" in rules.backward[0].note
    assert "k_loss" not in rules.kernels


def test_every_matrix_in_the_rules_has_a_written_form() -> None:
    net = Network(2, (Dense(3, "prelu"), Dense(2, "softmax")), "mse", regularizer="l1")
    rules = layer_rules(net)
    for rule in rules.forward + rules.loss + rules.backward:
        for symbol in rule.lhs.atoms(sp.MatrixSymbol) | rule.rhs.atoms(sp.MatrixSymbol) | {rule.lhs}:
            if isinstance(symbol, (sp.MatrixSymbol,)) or rule.label == "parameter":
                assert symbol in rules.notation or symbol.name in ("L", "R"), (rule.code, symbol)
    assert rules.parameters == ("W1", "b1", "alpha1", "W2", "b2")


def test_a_layer_without_bias_has_no_bias_rule() -> None:
    rules = layer_rules(Network(2, (Dense(2, "tanh", bias=False), Dense(1, "identity")), "mse"))
    assert rules.forward[0].code == "Z1 = X @ W1.T"
    assert layer_rules(Network(2, (Dense(2, "tanh"), Dense(1, "identity")), "mse")).forward[0].code == "Z1 = X @ W1.T\nZ1 += b1"
    assert not any(r.code.startswith("gb1") for r in rules.backward)
    assert rules.parameters == ("W1", "W2", "b2")


def test_a_derivative_that_is_its_own_argument_is_not_multiplied_in_place() -> None:
    # f(z) = z²/2 has f′(z) = z: the kernel returns Z itself, which `*=` would overwrite.
    rules = layer_rules(Network(2, (Dense(2, "z**2/2"), Dense(1, "identity")), "mse"))
    assert "D1 = G1 * k_df1(Z1, A1)" in [r.code for r in rules.backward]
    tanh = layer_rules(Network(2, (Dense(2, "tanh"), Dense(1, "identity")), "mse"))
    assert "D1 = k_df1(Z1, A1)\nD1 *= G1" in [r.code for r in tanh.backward]
