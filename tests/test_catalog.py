"""Every catalog entry against SymPy's own derivative and against PyTorch float64.

Each test is parametrized over a whole table, so a new entry is checked as soon as it is
added. Numbers go through the path the network uses: ``sympy.lambdify`` with
``stable.NUMPY`` (the overflow-safe σ, softplus, log-sum-exp and xlogy) inside the same
``np.errstate`` as ``numeric.worked_example`` (exp(1000) in a Piecewise branch that is not
taken overflows on the way; only the results must be finite).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from conftest import TORCH_ACTIVATIONS, TORCH_LOSSES, TORCH_REGULARIZERS

from chainrule import catalog
from chainrule.catalog import ACTIVATIONS, LOSSES, REGULARIZERS
from chainrule.stable import NUMPY

#: -5..5 in steps of 1/8 (so 0 and hard tanh's kinks ±1 exactly), and far out to ±1000,
#: where exp overflows float64 and the textbook formulas of σ, softplus or elu do not work.
GRID = np.unique(np.concatenate([np.arange(-40, 41) / 8.0, [-1000, -100, -30, -20.5, 20.5, 30, 100, 1000]]))
#: |got - want| <= TOL * max(1, |want|) against PyTorch.
TOL = 1e-12
#: Exact points around and at every kink of the catalog (0 for relu, ±1 for hard tanh).
KINK_POINTS = tuple(sp.Rational(n, 7) for n in (-21, -7, -1, 0, 1, 7, 21))
#: Parameter values besides the defaults, where PyTorch takes them as arguments.
OTHER_VALUES = {"leaky_relu": {"alpha": 0.2}, "prelu": {"alpha": -0.5}, "elu": {"alpha": 0.5}, "huber": {"delta": 0.25}}

ELEMENTWISE = sorted(name for name, entry in ACTIVATIONS.items() if entry.elementwise)
LAYER_LEVEL = sorted(name for name, entry in ACTIVATIONS.items() if not entry.elementwise)
ERRSTATE = {"over": "ignore", "invalid": "ignore", "divide": "ignore", "under": "ignore"}


def _defaults(entry) -> dict[str, float]:
    return {p.name: p.default for p in entry.parameters}


def _bound(expr: sp.Expr, entry, values) -> sp.Expr:
    """``expr`` with the entry's parameter symbols replaced by ``values`` (by name)."""
    return expr.xreplace({p.symbol: sp.Float(values[p.name], 30) for p in entry.parameters})


def _evaluate(args, expr: sp.Expr, *arrays) -> np.ndarray:
    with np.errstate(**ERRSTATE):
        values = sp.lambdify(args, expr, modules=[NUMPY, np])(*arrays)
    return np.broadcast_to(np.asarray(values, dtype=np.float64), np.broadcast(*arrays).shape)


def _worst(got, want) -> float:
    """max |got - want| / max(1, |want|); NaN or inf anywhere in ``got`` is infinitely bad."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if not np.isfinite(got).all():
        return float("inf")
    return float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))


def _assert_equal_to_torch(got, want, what: str) -> None:
    worst = _worst(got, want)
    bad = np.flatnonzero(~(np.abs(np.asarray(got) - np.asarray(want)) <= TOL * np.maximum(1, np.abs(want))))
    assert worst <= TOL, f"{what}: worst {worst:.3g} at {bad[:5]}: got {np.asarray(got).ravel()[bad[:5]]}, want {np.asarray(want).ravel()[bad[:5]]}"


def _same_function(a: sp.Expr, b: sp.Expr, variables, points) -> None:
    """a == b: by simplify if it can tell, and always at exact points (to 40 digits).

    simplify is weak on Piecewise, Abs and named functions (xlogy, softplus); evaluating
    both sides exactly at points, kinks included, shows which branch each takes there.
    """
    for values in points:
        at = dict(zip(variables, values))
        difference = (a - b).xreplace(at).rewrite(sp.exp).rewrite(sp.log)
        assert abs(sp.N(difference, 50)) < 1e-40, (at, a.xreplace(at), b.xreplace(at))


# --- the tables ----------------------------------------------------------------------


def test_every_entry_has_a_torch_reference():
    assert set(ACTIVATIONS) == set(TORCH_ACTIVATIONS)
    assert set(LOSSES) == set(TORCH_LOSSES)
    assert set(REGULARIZERS) == set(TORCH_REGULARIZERS)


@pytest.mark.parametrize("table, name", [(t, n) for t in ("activation", "loss", "regularizer") for n in sorted(
    {"activation": ACTIVATIONS, "loss": LOSSES, "regularizer": REGULARIZERS}[t])])
def test_entry_is_named_by_its_key_and_uses_only_its_symbols(table, name):
    entry = {"activation": ACTIVATIONS, "loss": LOSSES, "regularizer": REGULARIZERS}[table][name]
    assert entry.name == name
    own = {p.symbol for p in entry.parameters}
    assert len({p.name for p in entry.parameters}) == len(entry.parameters)
    for p in entry.parameters:
        assert p.low <= p.default <= p.high
    if table == "activation":
        assert entry.formula.free_symbols <= {catalog.Z} | own
        assert entry.derivative.free_symbols <= {catalog.Z, catalog.A} | own
    elif table == "loss":
        assert entry.reduction in ("sum", "mean")
        assert entry.targets in ("real", "unit", "distribution", "sign")
        for form in (entry.term, entry.textbook):
            assert form is None or form.free_symbols <= {catalog.P, catalog.Y} | own
        assert entry.requires is None or entry.requires in ACTIVATIONS
    else:
        assert entry.term.free_symbols <= {catalog.W} | own


# --- activations: textbook forms against sympy.diff -----------------------------------


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_textbook_derivative_equals_sympy_diff(name):
    entry = ACTIVATIONS[name]
    textbook = entry.derivative.xreplace({catalog.A: entry.formula})
    expected = sp.diff(entry.formula, catalog.Z)
    assert sp.simplify(textbook - expected) == 0
    # simplify says nothing about which value a Piecewise takes *at* a kink beyond its
    # conditions, so evaluate both exactly on each side of every kink and at it: both
    # must take the branch PyTorch's backward takes (relu'(0) = 0, hard_tanh'(±1) = 0).
    for z in KINK_POINTS:
        assert sp.simplify(textbook.subs(catalog.Z, z) - expected.subs(catalog.Z, z)) == 0, z


@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if ACTIVATIONS[n].textbook is not None])
def test_textbook_formula_is_the_same_function(name):
    """σ(z) = 1/(1 + e⁻ᶻ), softplus(z) = log(1 + eᶻ): the form documents explain it by."""
    entry = ACTIVATIONS[name]
    _same_function(entry.textbook, entry.formula, [catalog.Z], [(z,) for z in (*KINK_POINTS, sp.Integer(40))])


@pytest.mark.parametrize("name", LAYER_LEVEL)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_layer_jacobian_equals_sympy_diff(name, n):
    entry = ACTIVATIONS[name]
    zs = sp.symbols(f"z1:{n + 1}", real=True)
    outputs = entry.outputs(zs)
    assert len(outputs) == n
    for j in range(n):
        for k in range(n):
            textbook = entry.jacobian(zs, outputs, j, k)
            assert sp.simplify((textbook - sp.diff(outputs[j], zs[k])).rewrite(sp.exp)) == 0, (j, k)


# --- activations: numbers against PyTorch ---------------------------------------------


def _activation_cases():
    cases = []
    for name in ELEMENTWISE:
        cases.append(pytest.param(name, _defaults(ACTIVATIONS[name]), id=name))
        if name in OTHER_VALUES:
            values = {**_defaults(ACTIVATIONS[name]), **OTHER_VALUES[name]}
            cases.append(pytest.param(name, values, id=f"{name}-{values}"))
    return cases


def activation_errors(name: str, values) -> dict[str, float]:
    """Worst relative errors on GRID against PyTorch: value, sympy.diff, textbook derivative."""
    entry = ACTIVATIONS[name]
    formula = _bound(entry.formula, entry, values)
    z = torch.tensor(GRID, dtype=torch.float64, requires_grad=True)
    want = TORCH_ACTIVATIONS[name](z, values)
    (slope,) = torch.autograd.grad(want.sum(), z)
    a = _evaluate(catalog.Z, formula, GRID)
    # The textbook form as the network uses it: A is the unit's own output f(z).
    textbook = _evaluate((catalog.Z, catalog.A), _bound(entry.derivative, entry, values), GRID, a)
    derivative = _evaluate(catalog.Z, sp.diff(formula, catalog.Z), GRID)
    return {
        "value": (a, want.detach().numpy()),
        "sympy.diff": (derivative, slope.numpy()),
        "textbook": (textbook, slope.numpy()),
    }


@pytest.mark.parametrize("name, values", _activation_cases())
def test_activation_value_and_derivative_equal_torch(name, values):
    for what, (got, want) in activation_errors(name, values).items():
        assert np.isfinite(got).all(), (what, GRID[~np.isfinite(got)])
        _assert_equal_to_torch(got, want, f"{name} {what}")


def test_selu_reference_is_torch_selu():
    """The reference writes selu as λ·elu(z, α) so the spec can set them; at the defaults it is F.selu."""
    z = torch.tensor(GRID, dtype=torch.float64)
    got = TORCH_ACTIVATIONS["selu"](z, _defaults(ACTIVATIONS["selu"]))
    _assert_equal_to_torch(got.numpy(), F.selu(z).numpy(), "selu")


def test_kinks_follow_torch():
    """At its kink each entry's derivative is the one PyTorch's autograd gives."""
    expected = {"relu": [(0, 0)], "leaky_relu": [(0, 0.01)], "prelu": [(0, 0.25)], "elu": [(0, 1)], "hard_tanh": [(-1, 0), (1, 0)]}
    for name, points in expected.items():
        entry = ACTIVATIONS[name]
        derivative = _bound(sp.diff(entry.formula, catalog.Z), entry, _defaults(entry))
        for z, slope in points:
            assert float(derivative.subs(catalog.Z, z)) == slope, (name, z)
            zt = torch.tensor([float(z)], dtype=torch.float64, requires_grad=True)
            (want,) = torch.autograd.grad(TORCH_ACTIVATIONS[name](zt, _defaults(entry)).sum(), zt)
            assert want.item() == slope, (name, z)
    # and just either side of relu's
    relu = ACTIVATIONS["relu"].derivative
    assert relu.subs(catalog.Z, sp.Rational(-1, 10**9)) == 0 and relu.subs(catalog.Z, sp.Rational(1, 10**9)) == 1


#: Rows of logits for softmax: huge and tiny together, all equal, ordinary, all very negative.
SOFTMAX_ROWS = [[1000.0, -1000.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [-1000.0, -1000.0, -999.0], [30.0, -20.5, 0.125, 5.0]]


@pytest.mark.parametrize("name", LAYER_LEVEL)
@pytest.mark.parametrize("row", SOFTMAX_ROWS, ids=str)
def test_layer_activation_and_jacobian_equal_torch(name, row):
    entry = ACTIVATIONS[name]
    n = len(row)
    zs = sp.symbols(f"z1:{n + 1}", real=True)
    outputs = entry.outputs(zs)
    z = torch.tensor(row, dtype=torch.float64)
    want = TORCH_ACTIVATIONS[name](z, {}).numpy()
    want_jacobian = torch.autograd.functional.jacobian(lambda v: TORCH_ACTIVATIONS[name](v, {}), z).numpy()
    got = np.array([_evaluate(zs, a, *row) for a in outputs])
    acts = sp.symbols(f"a1:{n + 1}", real=True)
    textbook = np.array([[_evaluate((*zs, *acts), entry.jacobian(zs, acts, j, k), *row, *got) for k in range(n)] for j in range(n)])
    derived = np.array([[_evaluate(zs, sp.diff(outputs[j], zs[k]), *row) for k in range(n)] for j in range(n)])
    for what, values, reference in (("value", got, want), ("textbook", textbook, want_jacobian), ("sympy.diff", derived, want_jacobian)):
        assert np.isfinite(values).all(), what
        _assert_equal_to_torch(values, reference, f"{name} {what}")


# --- losses ---------------------------------------------------------------------------

#: Probabilities for bce, from 1e-12 to 1 - 1e-12.
PROBABILITIES = np.array([1e-12, 1e-9, 1e-6, 1e-3, 0.1, 0.25, 0.5, 0.75, 0.9, 1 - 1e-3, 1 - 1e-6, 1 - 1e-9, 1 - 1e-12])
#: Targets of each kind (distributions are the cross-entropy tests' own).
TARGETS = {"real": [-1.0, 0.0, 0.5, 2.25], "unit": [0.0, 0.3, 1.0], "sign": [-1.0, 1.0]}
#: Losses whose prediction is a probability, not any real number.
ON_PROBABILITIES = {"bce"} | {name for name, entry in LOSSES.items() if entry.requires == "softmax"}
#: PyTorch's binary_cross_entropy backward divides by max(ŷ(1 - ŷ), 1e-12) and is off by
#: up to ~2e-5 relative within ~1e-11 of 0 and 1; there the gradient is compared with
#: autograd of the same loss written with xlogy, which is exact to rounding.
EXACT_NEAR_THE_EDGES = {
    "bce": lambda yhat, y, p: -torch.mean(torch.xlogy(y, yhat) + torch.xlogy(1 - y, 1 - yhat)),
}
ELEMENTWISE_LOSSES = sorted(name for name, entry in LOSSES.items() if entry.from_logits is None)
LOGIT_LOSSES = sorted(name for name, entry in LOSSES.items() if entry.from_logits is not None)


def _loss_rows(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Two outputs per row (so sum and mean differ): every prediction against every target."""
    predictions = PROBABILITIES if name in ON_PROBABILITIES else GRID
    targets = TARGETS[LOSSES[name].targets]
    pairs = np.array([(p, t) for p in predictions for t in targets])
    return np.stack([pairs[:, 0], pairs[::-1, 0]], axis=1), np.stack([pairs[:, 1], pairs[::-1, 1]], axis=1)


def loss_errors(name: str, values) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The loss and ∂L/∂ŷ as the network computes them, and PyTorch's, on every row."""
    entry = LOSSES[name]
    yhat, y = _loss_rows(name)
    ps, ts = sp.symbols("p1:3", real=True), sp.symbols("t1:3", real=True)
    term = _bound(entry.term, entry, values)
    formula = entry.formula(ps, ts, term)
    value = _evaluate((*ps, *ts), formula, *yhat.T, *y.T)
    gradient = np.stack([_evaluate((*ps, *ts), sp.diff(formula, p), *yhat.T, *y.T) for p in ps], axis=1)
    want, want_gradient = [], []
    for row, target in zip(yhat, y):
        p = torch.tensor(row, dtype=torch.float64, requires_grad=True)
        t = torch.tensor(target, dtype=torch.float64)
        loss = TORCH_LOSSES[name](p, t, values)
        want.append(loss.item())
        if name in EXACT_NEAR_THE_EDGES and np.min(np.minimum(row, 1 - row)) < 1e-10:
            loss = EXACT_NEAR_THE_EDGES[name](p, t, values)
        want_gradient.append(torch.autograd.grad(loss, p)[0].numpy())
    return {"value": (value, np.array(want)), "gradient": (gradient, np.array(want_gradient))}


def _loss_cases():
    cases = []
    for name in ELEMENTWISE_LOSSES:
        cases.append(pytest.param(name, _defaults(LOSSES[name]), id=name))
        if name in OTHER_VALUES:
            values = {**_defaults(LOSSES[name]), **OTHER_VALUES[name]}
            cases.append(pytest.param(name, values, id=f"{name}-{values}"))
    return cases


@pytest.mark.parametrize("name, values", _loss_cases())
def test_loss_value_and_gradient_equal_torch(name, values):
    errors = loss_errors(name, values)
    got, want = errors["value"]
    assert np.isfinite(got).all(), f"{name} value is not finite at {_loss_rows(name)[0][~np.isfinite(got)]}"
    _assert_equal_to_torch(got, want, f"{name} value")
    got, want = errors["gradient"]
    # ∂L/∂ŷ by sympy.diff of the term, as the network differentiates it.
    assert np.isfinite(got).all(), f"{name} gradient is not finite"
    _assert_equal_to_torch(got, want, f"{name} gradient")


@pytest.mark.parametrize("name", sorted(n for n, e in LOSSES.items() if e.textbook is not None))
def test_loss_forms_equal_the_term(name):
    """``textbook`` (as books write it) is the term itself."""
    entry = LOSSES[name]
    exact = [sp.Rational(n, 8) for n in (-24, -9, -8, -1, 0, 1, 4, 8, 9, 24)]
    predictions = [sp.Rational(n, 100) for n in (1, 30, 50, 99)] if name in ON_PROBABILITIES else exact
    targets = [sp.Rational(1, 4) + sp.Rational(i, 2) for i in range(2)] if entry.targets == "distribution" else [
        sp.nsimplify(t) for t in TARGETS[entry.targets]
    ]
    points = [(p, t) for p in predictions for t in targets]
    term = entry.term.xreplace({p.symbol: sp.nsimplify(p.default) for p in entry.parameters})
    form = entry.textbook.xreplace({p.symbol: sp.nsimplify(p.default) for p in entry.parameters})
    _same_function(form, term, (catalog.P, catalog.Y), points)


def test_log_cosh_is_finite_where_cosh_overflows():
    entry = LOSSES["log_cosh"]
    got = _evaluate((catalog.P, catalog.Y), entry.term, GRID, 0.0)
    textbook = _evaluate((catalog.P, catalog.Y), entry.textbook, GRID, 0.0)
    assert np.isfinite(got).all()
    assert not np.isfinite(textbook).all()  # the reason log cosh is a named function
    x = torch.tensor(GRID, dtype=torch.float64)
    want = torch.stack([TORCH_LOSSES["log_cosh"](v.reshape(1), torch.zeros(1, dtype=torch.float64), {}) for v in x])
    _assert_equal_to_torch(got, want.numpy(), "log_cosh vs torch")


#: Logit rows for cross-entropy and targets (distributions: one-hot and spread).
LOGIT_ROWS = [[1000.0, -1000.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [-1000.0, -1000.0, -999.0], [30.0, -20.5, 0.125]]
DISTRIBUTIONS = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.5, 0.3]]


def logit_loss_errors(name: str, logits, targets) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The loss of softmax(logits) and its gradient in the logits: by ``from_logits`` and
    by ``formula`` of the activation's outputs, against PyTorch's fused loss."""
    entry = LOSSES[name]
    activation = ACTIVATIONS[entry.requires]
    n = len(logits)
    zs, ts = sp.symbols(f"z1:{n + 1}", real=True), sp.symbols(f"t1:{n + 1}", real=True)
    from_logits = entry.from_logits(zs, ts)
    composed = entry.formula(activation.outputs(zs), ts)
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = TORCH_LOSSES[name](z, torch.tensor(targets, dtype=torch.float64), {})
    (slope,) = torch.autograd.grad(loss, z)
    result = {}
    for form, expr in (("from_logits", from_logits), ("formula(softmax)", composed)):
        value = _evaluate((*zs, *ts), expr, *logits, *targets)
        gradient = np.array([_evaluate((*zs, *ts), sp.diff(expr, v), *logits, *targets) for v in zs])
        result[f"{form} value"] = (value, np.array(loss.item()))
        result[f"{form} gradient"] = (gradient, slope.numpy())
    return result


@pytest.mark.parametrize("name", LOGIT_LOSSES)
@pytest.mark.parametrize("targets", DISTRIBUTIONS, ids=str)
@pytest.mark.parametrize("logits", LOGIT_ROWS, ids=str)
def test_logit_loss_equals_torch(name, logits, targets):
    for what, (got, want) in logit_loss_errors(name, logits, targets).items():
        if what.startswith("from_logits"):
            assert np.isfinite(got).all(), what  # the point of the form: finite at ±1000
        elif not np.isfinite(got).all():
            # formula∘softmax takes log of exp(-2000) = 0: it is the graph's symbolic form,
            # not the one evaluated; only logits of moderate size reach it here.
            assert max(logits) - min(logits) > 700, what
            continue
        _assert_equal_to_torch(got, want, f"{name} {what}")


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("n", [1, 2, 5])
def test_loss_formula_sums_or_averages_the_term(name, n):
    entry = LOSSES[name]
    yhat_s = sp.symbols(f"p1:{n + 1}", real=True)
    y_s = sp.symbols(f"t1:{n + 1}", real=True)
    formula = entry.formula(yhat_s, y_s)
    own = {p.symbol for p in entry.parameters}
    assert formula.free_symbols - own == set(yhat_s) | set(y_s)
    terms = [entry.term.xreplace({catalog.P: p, catalog.Y: t}) for p, t in zip(yhat_s, y_s)]
    expected = sp.Add(*terms) / (n if entry.reduction == "mean" else 1)
    assert sp.simplify(formula - expected) == 0


# --- regularizers ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REGULARIZERS))
@pytest.mark.parametrize("coefficient", [None, 0.5])
def test_regularizer_value_and_gradient_equal_torch(name, coefficient):
    entry = REGULARIZERS[name]
    values = {**_defaults(entry), **({} if coefficient is None else {"coefficient": coefficient})}
    # Three weights per row, as the graph adds the term over every weight; two weight
    # matrices for the reference, which sums over all of them.
    rows = np.stack([GRID, np.roll(GRID, 1), np.roll(GRID, 2)], axis=1)
    ws = sp.symbols("w1:4", real=True)
    term = _bound(entry.term, entry, values)
    total = sp.Add(*[term.xreplace({catalog.W: w}) for w in ws])
    value = _evaluate(ws, total, *rows.T)
    gradient = np.stack([_evaluate(ws, sp.diff(total, w), *rows.T) for w in ws], axis=1)
    want, slopes = [], []
    for row in rows:
        w = torch.tensor(row, dtype=torch.float64, requires_grad=True)
        penalty = TORCH_REGULARIZERS[name]([w[:2].reshape(1, 2), w[2:].reshape(1, 1)], values)
        want.append(penalty.item())
        slopes.append(torch.autograd.grad(penalty, w)[0].numpy())
    assert np.isfinite(value).all() and np.isfinite(gradient).all()
    _assert_equal_to_torch(value, np.array(want), f"{name} value")
    _assert_equal_to_torch(gradient, np.array(slopes), f"{name} gradient")
