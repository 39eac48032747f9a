"""Every step tree against ``sympy.diff``, every rule exercised, and trees a teacher would write."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest
import sympy as sp
from sympy import (
    Abs,
    DiracDelta,
    E,
    Heaviside,
    Max,
    Min,
    Piecewise,
    Rational,
    acos,
    asin,
    atan,
    cos,
    cosh,
    erf,
    exp,
    log,
    pi,
    sign,
    sin,
    sinh,
    sqrt,
    tan,
    tanh,
)

from chainrule import rules
from chainrule.functions import logsumexp, sigmoid, softplus, xlogy
from chainrule.functions import relu as relu_fn
from chainrule.rules import derivative, derivative_steps, walk

x, y, w, b, z = sp.symbols("x y w b z", real=True)
half = Rational(1, 2)
gelu = z / 2 * (1 + erf(z / sqrt(2)))
relu = Piecewise((0, z <= 0), (z, True))
hardtanh = Piecewise((-1, x < -1), (x, x <= 1), (1, True))
huber = Piecewise((x**2 / 2, Abs(x) <= 1), (Abs(x) - half, True))

CORPUS = [
    # relu as a named function (the formula language's relu)
    relu_fn(x), relu_fn(w * x + b), relu_fn(x) ** 2, x * relu_fn(x - 1),
    # polynomials
    x, x**2, 3 * x**2, x**3 - 2 * x + 1, 5 * x**4 + 3 * x**2 - 7, (x + 1) ** 2, (2 * x - 3) ** 5,
    x * y, x**2 * y + y**2 * x, w * x + b, (w * x + b) ** 2, x**10, -x, x - y,
    x**2 + y**2 + z**2, (x + y) ** 3, x * y * z, x**2 * y**3 * z, half * x**2, x / 3,
    (x - 1) * (x + 1) * (x - 2), 3 * x**2 * y - 2 * x * y**2 + y,
    # rational functions
    1 / x, 1 / x**2, 3 / x, x / (x + 1), (x + 1) / (x - 1), x / (x**2 + 1),
    (x**2 + 1) / (x**3 - x), 1 / (1 + x**2), y / x, x / y, (w * x + b) / (w**2 + 1),
    1 / (x * y), (x + y) / (x - y), x**2 / (1 + x) ** 2, 1 / (x * (x + 1)),
    # powers, roots and u**v
    sqrt(x), sqrt(x**2 + 1), sqrt(1 - x**2), x ** Rational(3, 2), x ** Rational(-1, 2),
    sqrt(x**2 + y**2), x ** Rational(1, 3), (1 + x) ** y, x**y, 2**x, 3 ** (x**2), E ** (3 * x),
    x**x, x ** sin(x), (x**2 + 1) ** x, y**x, x**pi, sqrt(x) * sqrt(y), x * sqrt(x + 1),
    x / sqrt(x**2 + 1),
    # exponentials and logarithms
    exp(x), exp(-x), exp(2 * x + 1), exp(x**2), exp(-(x**2) / 2), x * exp(x), exp(x) * sin(x),
    log(x), log(x**2 + 1), log(2 * x), log(x) / x, x * log(x), log(log(x)), log(sin(x)),
    log(1 + exp(x)), log(1 + exp(-x)), exp(x * y), exp(-((x - y) ** 2)), log(x * y),
    log(x, 2), 10**x, exp(exp(x)), log(exp(x) + exp(-x)), exp(x) / (1 + exp(x)),
    # trigonometric and inverse trigonometric
    sin(x), cos(x), tan(x), asin(x), acos(x), atan(x), sin(2 * x), cos(x**2), tan(3 * x + 1),
    sin(x) * cos(x), sin(x) ** 2, cos(x) ** 3, sin(x) / x, x / sin(x), sin(cos(x)),
    atan(y / x), asin(x / 2), acos(x**2), atan(exp(x)), sin(x * y), cos(w * x + b),
    tan(x) ** 2, sin(sqrt(x)),
    # hyperbolic
    sinh(x), cosh(x), tanh(x), tanh(2 * x), tanh(w * x + b), sinh(x) * cosh(x), cosh(x**2),
    log(cosh(x)), tanh(x) ** 2, 1 / cosh(x), sinh(x) / x,
    (exp(x) - exp(-x)) / (exp(x) + exp(-x)), (exp(x) - exp(-x)) / 2,
    # products of three factors
    x * sin(x) * exp(x), x**2 * exp(x) * log(x), x * y * sin(x * y), (x + 1) * (x + 2) * (x + 3),
    sin(x) * cos(x) * tan(x), w * x * sigmoid(w * x), x * exp(-x) * cos(x),
    sqrt(x) * log(x) * sin(x),
    # nested chains
    sin(exp(x**2)), exp(sin(cos(x))), log(1 + sin(x) ** 2), sqrt(1 + exp(2 * x)),
    (1 + sin(x)) ** 3, cos(log(x**2 + 1)), tanh(sin(x)), sigmoid(sigmoid(x)), exp(-exp(-x)),
    log(log(log(x + 3))), atan(sqrt(x)), sin(sin(sin(x))),
    # abs, sign, Heaviside
    Abs(x), Abs(x - y), Abs(w * x + b), x * Abs(x), Abs(sin(x)), sqrt((x - 1) ** 2), sign(x),
    x * sign(x), Heaviside(x), Heaviside(x - 1), x * Heaviside(x),
    Heaviside(w * x + b) * (w * x + b), Abs(x) / x, Abs(log(x)), sign(x - y) * (x - y),
    Abs(x) ** 3,
    # Max and Min
    Max(0, x), Max(x, y), Min(x, y), Max(0, w * x + b), Min(1, Max(-1, x)), Max(x, x**2),
    Min(0, x) * y, Max(x, y, z), Min(x, 2 * x + 1, y), Max(0, 1 - y * (w * x + b)),
    Max(0, x) ** 2,
    # Piecewise: relu, leaky relu, hard tanh, huber, elu
    relu, Piecewise((x / 100, x < 0), (x, True)), Piecewise((z / 100, z <= 0), (z, True)),
    hardtanh, huber, Piecewise((x**2, x < 0), (sin(x), True)),
    Piecewise((exp(x) - 1, x < 0), (x, True)), Piecewise((0, w * x + b <= 0), (w * x + b, True)),
    Piecewise(((x - y) ** 2 / 2, Abs(x - y) <= 1), (Abs(x - y) - half, True)),
    Piecewise((x * y, x > y), (y**2, True)),
    # erf, sigmoid, softplus, logsumexp, xlogy
    erf(x), erf(2 * x), erf(x / sqrt(2)), gelu, x * erf(x), erf(x) ** 2, sigmoid(x),
    sigmoid(w * x + b), sigmoid(x) ** 2, z * sigmoid(z), sigmoid(-x), log(sigmoid(x)),
    log(1 - sigmoid(x)), softplus(x), softplus(w * x + b), softplus(-x), x * softplus(x),
    logsumexp(x, y), logsumexp(x, y, z), logsumexp(w * x, b), logsumexp(x, 0),
    logsumexp(x, y) - x, xlogy(x, y), xlogy(y, sigmoid(x)), xlogy(y, x) + xlogy(1 - y, 1 - x),
    xlogy(x, x), x * tanh(softplus(x)), softplus(x) - x,
    # machine learning
    log(1 + exp(-y * (w * x + b))), (w * x + b - y) ** 2, (w * x + b - y) ** 2 / 2,
    -y * log(sigmoid(w * x + b)) - (1 - y) * log(1 - sigmoid(w * x + b)),
    -(y * log(x) + (1 - y) * log(1 - x)), -y * log(z), z / (1 + Abs(z)), log(cosh(x - y)),
    1 / (1 + exp(-x)), 1 / (1 + exp(-(w * x + b))), (sigmoid(w * x + b) - y) ** 2,
    Abs(w * x + b - y), w**2 / 2 + (w * x - y) ** 2, Abs(w) + (w * x - y) ** 2,
    exp(-((x - w) ** 2) / (2 * b**2)), x * tanh(log(1 + exp(x))),
    z * (1 + tanh(sqrt(2 / pi) * (z + Rational(44715, 10**6) * z**3))) / 2,
    -((1 - sigmoid(x)) ** 2) * log(sigmoid(x)), x * sigmoid(b * x), Max(0, 1 - y * x) ** 2,
    exp(w * x) - y * w * x, log(cosh(w * x + b - y)), 1 / (1 + exp(-2 * x)),
    # SymPy's own derivative for anything without a rule
    sp.gamma(x), sp.Function("f")(x), DiracDelta(x), x * sp.gamma(x), sp.sec(x), sp.cot(x),
    # second derivatives: Hessian entries are derivatives of first derivatives
    derivative(sigmoid(w * x + b), w), derivative(log(1 + exp(-y * (w * x + b))), w),
    derivative(Max(0, w * x + b), w), derivative(Abs(w * x + b), w), derivative(tanh(x), x),
    derivative(x**2 * sin(x), x), derivative(softplus(w * x + b), w), derivative(relu, z),
    derivative(x * Abs(x), x), derivative(logsumexp(x, y), x), derivative(gelu, z),
    derivative((w * x + b - y) ** 2, w), derivative(xlogy(y, sigmoid(x)), x),
    derivative(1 / (1 + exp(-x)), x), derivative(exp(-(x**2) / 2), x), derivative(Max(x, y), x),
]

CASES = [(i, v) for i, f in enumerate(CORPUS) for v in sorted(f.free_symbols, key=str)]
#: Exact points with every symbol at or near the kinks of relu, hard tanh and huber.
VALUES = [Rational(n, 4) for n in range(-8, 9)]
#: Differences larger than this are not handed to simplify, which gets slow.
SIMPLIFY_LIMIT = 80


@pytest.fixture(scope="module")
def trees():
    return {(i, v): derivative_steps(CORPUS[i], v) for i, v in CASES}


def _agree_at_points(a, b, symbols):
    rng = random.Random(0)
    kinks = [{s: value for s in symbols} for value in (-1, 0, 1)]
    points = kinks + [{s: rng.choice(VALUES) for s in symbols} for _ in range(30)]
    for point in points:
        difference = (a - b).xreplace(point)
        if difference == 0 or difference.has(DiracDelta, sp.nan, sp.zoo):
            continue  # δ(0) is no number, and both sides say the same δ(0) in any case
        assert abs(complex(difference.rewrite(exp).evalf(30))) < 1e-20, point
    return True


def _same(a, b, symbols):
    """simplify(a − b) == 0, first; exact points where Piecewise or Heaviside defeat it."""
    difference = a - b
    if difference == 0:
        return True
    small = sp.count_ops(difference) <= SIMPLIFY_LIMIT
    if small and (sp.simplify(difference) == 0 or sp.simplify(difference.rewrite(exp)) == 0):
        return True
    if difference.has(Piecewise, Heaviside, Max, Min, Abs, sign, DiracDelta):
        return _agree_at_points(a, b, symbols)
    return False


def _classes(base=rules.Rule):
    for cls in base.__subclasses__():
        if not cls.__name__.startswith("_"):
            yield cls
        yield from _classes(cls)


RULE_CLASSES = sorted(set(_classes()), key=lambda cls: cls.__name__)


@pytest.mark.parametrize(("i", "v"), CASES, ids=[f"{i}-{CORPUS[i]}-{v}"[:60] for i, v in CASES])
def test_tree_equals_sympy_diff(trees, i, v):
    tree = trees[i, v]
    symbols = sorted(CORPUS[i].free_symbols, key=str)
    assert _same(tree.eval(), sp.diff(CORPUS[i], v), symbols)
    assert _same(tree.result, tree.eval(), symbols)


def test_corpus_is_large():
    assert len(CORPUS) >= 220
    assert len(set(CORPUS)) == len(CORPUS)


@pytest.mark.parametrize("cls", RULE_CLASSES, ids=lambda cls: cls.__name__)
def test_every_rule_is_exercised(trees, cls):
    assert any(type(step) is cls for tree in trees.values() for step in walk(tree))


@pytest.mark.parametrize("cls", RULE_CLASSES, ids=lambda cls: cls.__name__)
def test_docstring_states_one_identity(cls):
    assert "\n" not in cls.__doc__.strip()
    assert "=" in cls.__doc__
    assert cls.title and cls.title != rules.Rule.title
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


@pytest.mark.parametrize("name", sorted(rules.FAMILIAR_FORMS))
def test_every_familiar_form_is_reached_and_proven(trees, name):
    found = [step for tree in trees.values() for step in walk(tree)
             if isinstance(step, rules.FamiliarFormRule) and step.name == name]
    assert found
    for step in found:
        assert sp.simplify((step.form - step.substep.result).rewrite(exp)) == 0


def test_simplification_is_shown_only_when_shorter(trees):
    for step in (s for tree in trees.values() for s in walk(tree)):
        if isinstance(step, rules.SimplifyRule):
            assert sp.count_ops(step.simplified) < sp.count_ops(step.substep.result)


def test_every_result_is_its_eval(trees):
    for step in (s for tree in trees.values() for s in walk(tree)):
        assert step.result == step.eval()


def test_no_chain_through_the_variable_itself(trees):
    for tree in trees.values():
        for step in walk(tree):
            if isinstance(step, rules.ChainRule):
                assert not isinstance(step.substep, rules.VariableRule)
                assert step.inner != step.variable


def test_sin_is_one_step():
    tree = derivative_steps(sin(x), x)
    assert type(tree) is rules.TrigRule and list(walk(tree)) == [tree]
    assert tree.result == cos(x)


def test_constant_multiple_of_a_power():
    tree = derivative_steps(3 * x**2, x)
    assert type(tree) is rules.ConstantMultipleRule and tree.constant == 3
    assert type(tree.substep) is rules.PowerRule and tree.result == 6 * x


def test_product_of_power_and_sine():
    tree = derivative_steps(x**2 * sin(x), x)
    assert type(tree) is rules.ProductRule
    assert [type(s) for s in tree.substeps] == [rules.PowerRule, rules.TrigRule]


def test_sigmoid_reaches_its_familiar_form():
    tree = derivative_steps(1 / (1 + exp(-x)), x)
    assert type(tree) is rules.FamiliarFormRule
    assert tree.result == sigmoid(x) * (1 - sigmoid(x))


def test_tanh_and_its_exponential_form():
    assert derivative(tanh(x), x) == 1 - tanh(x) ** 2
    tree = derivative_steps((exp(x) - exp(-x)) / (exp(x) + exp(-x)), x)
    assert type(tree) is rules.FamiliarFormRule and tree.result == 1 - tanh(x) ** 2


def test_softplus_formula_reaches_sigmoid():
    assert derivative(log(1 + exp(x)), x) == sigmoid(x)
    assert derivative(log(1 + exp(-y * (w * x + b))), w) == -x * y * sigmoid(-y * (w * x + b))


def test_difference_shows_one_constant_step():
    tree = derivative_steps(x - y - 2 * z + 5, x)
    assert type(tree) is rules.SumRule
    assert [type(s) for s in tree.substeps] == [rules.VariableRule, rules.ConstantRule]


def test_chain_rule_names_a_fresh_u():
    tree = derivative_steps(sin(exp(x**2)), x)
    assert type(tree) is rules.ChainRule and type(tree.outer) is rules.TrigRule
    assert tree.inner == exp(x**2) and type(tree.substep) is rules.ChainRule
    assert tree.u != tree.substep.u
    assert tree.u not in tree.result.free_symbols


def test_square_root_says_so():
    tree = derivative_steps(sqrt(x), x)
    assert type(tree) is rules.SqrtRule and isinstance(tree, rules.PowerRule)
    assert tree.exp == half


def test_reciprocal_goes_by_power_and_quotient_needs_x_on_both_sides():
    assert type(derivative_steps(1 / (x + 1), x)) is rules.ChainRule
    assert type(derivative_steps(x / (x + 1), x)) is rules.QuotientRule
    assert type(derivative_steps(2 / (x + 1), x)) is rules.ConstantMultipleRule


def test_kink_takes_the_branch_whose_condition_holds():
    assert derivative(relu, z).subs(z, 0) == 0
    assert derivative(hardtanh, x).subs(x, 1) == 1
    assert derivative(Abs(x), x).subs(x, 0) == 0


def test_second_derivatives():
    hessian = derivative(derivative(sigmoid(w * x + b), w), b)
    assert hessian.has(sigmoid)
    assert derivative(derivative(Max(0, x), x), x) == DiracDelta(x)
    assert derivative(derivative(Abs(x), x), x) == 2 * DiracDelta(x)
    second = derivative(derivative(x * Abs(x), x), x)
    assert second.has(sign) and sp.expand(second - sp.diff(x * Abs(x), x, 2)) == 0
    assert derivative(derivative(Max(0, x) ** 2, x), x).has(Heaviside)


def test_every_local_derivative_has_a_builder():
    assert set(rules.DERIVATIVES) <= set(rules.BUILDERS)
    for f, local in rules.DERIVATIVES.items():
        arg = (x,) if f is not Heaviside else (x, half)
        assert sp.simplify(local(x) - sp.diff(f(*arg), x)) == 0


def test_a_constant_and_the_fallback():
    assert type(derivative_steps(sp.Integer(7), x)) is rules.ConstantRule
    tree = derivative_steps(sp.gamma(x), x)
    assert type(tree) is rules.FallbackRule and tree.result == sp.diff(sp.gamma(x), x)


def test_walk_is_pre_order_and_steps_are_frozen():
    tree = derivative_steps(x * y * sin(x), x).substep
    steps = list(walk(tree))
    assert steps[0] is tree and steps[1:] == list(
        itertools.chain.from_iterable(walk(s) for s in tree.substeps))
    with pytest.raises(dataclasses.FrozenInstanceError):
        tree.result = 0
    assert tree.identity in type(tree).__doc__  # two factors: the docstring's u·v example
