"""Why gradients vanish or explode: bounds on every factor of δ⁽ˡ⁾'s product of layer Jacobians.

Unrolled from the output down, BP2 writes δ⁽ˡ⁾ = diag f′(z⁽ˡ⁾) W⁽ˡ⁺¹⁾ᵀ ⋯ W⁽ᴸ⁾ᵀ δ⁽ᴸ⁾, so
‖δ⁽ˡ⁾‖ ≤ Π (sup |f′| · ‖W⁽ᵏ⁺¹⁾‖₂) ‖δ⁽ᴸ⁾‖. This module derives the factors with SymPy, as
a teacher would on the board: f′ and f″ by ``sympy.diff`` of the catalog formula, the
critical points of f′ where f″ = 0 (in the output a where the catalog writes f′ in it,
σ″ = σ(1 − σ)(1 − 2σ) = 0 ⇔ σ = 1/2 ⇔ z = 0), its limits at ±∞, and each piece of a
piecewise f′ on its own; then softmax's Jacobian diag(a) − aaᵀ (‖·‖₂ ≤ 1/2, by
Gershgorin) and the normalizations' γ/√(σ² + ε) (I − 𝟏𝟏ᵀ/N − x̂x̂ᵀ/N). Every step is a
frozen dataclass whose docstring is the identity it applies; ``flow_bound`` puts them
together for a network. SymPy only: documents use this without NumPy.

>>> derivative_bound("sigmoid").sup, derivative_bound("sigmoid").at
(1/4, 0)
>>> derivative_bound("tanh").sup, derivative_bound("relu").values
(1, {0, 1})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import mpmath
import sympy as sp
from sympy.series.gruntz import gruntz

from .catalog import ACTIVATIONS, A, Activation, Z
from .functions import sigmoid, softplus

#: Where f″ is scanned for sign changes when SymPy finds no closed form for its zeros.
SCAN = (-20, 20, 161)
#: How far out a limit at ±∞ is checked against f′ itself, and how closely: softsign′ = 1/(1 + z)²
#: is within 1e-3 of its limit there, and SymPy's wrong 0 for silu′ at ∞ is off by 1.
FAR, LIMIT_AGREES = 10**4, 1e-3


@dataclass(frozen=True)
class Differentiate:
    """f⁽ⁿ⁾(z) = dⁿf/dzⁿ, by ``sympy.diff``; in the output a = f(z) where the catalog writes f′ in it."""

    order: int
    function: sp.Expr
    result: sp.Expr
    #: The same derivative written in a: a(1 − a) for σ′, a(1 − a)(1 − 2a) for σ″ (checked equal).
    in_output: sp.Expr | None = None


@dataclass(frozen=True)
class CriticalPoints:
    """f′ has its interior extremes where f″(z) = 0."""

    #: f″, as the equation f″ = 0 is solved: in a (a polynomial) or in z.
    equation: sp.Expr
    variable: sp.Symbol
    #: Its zeros in ``variable``; in a, those no z reaches (a = 0 or 1 for σ) are ``excluded``.
    roots: tuple[sp.Expr, ...]
    excluded: tuple[sp.Expr, ...]
    #: The z of each root, and whether SymPy found them only numerically (nsolve).
    points: tuple[sp.Expr, ...]
    numeric: bool = False


@dataclass(frozen=True)
class Evaluate:
    """f′(z₀): the derivative at a candidate point."""

    point: sp.Expr
    value: sp.Expr
    #: f′ in a at the candidate's output, as substituted: ½(1 − ½) for σ′(0).
    written: sp.Expr | None = None


@dataclass(frozen=True)
class Limit:
    """lim f′(z) as z → ±∞: what f′ approaches far from the origin."""

    direction: sp.Expr
    expr: sp.Expr
    value: sp.Expr


@dataclass(frozen=True)
class Piece:
    """On each piece of a piecewise f′, its bounds there; f′ is bounded by the largest of them."""

    expr: sp.Expr
    interval: sp.Set
    substeps: tuple


@dataclass(frozen=True)
class Supremum:
    """sup |f′| = the largest |f′| among the candidates: critical points, limits, ends of pieces."""

    #: (where, value, attained) of every candidate: where is a point, ±∞ or a piece's interval.
    candidates: tuple[tuple[sp.Basic, sp.Expr, bool], ...]

    def eval(self) -> tuple[sp.Basic, sp.Expr, bool]:
        """The candidate with the largest |f′|, an attained one before one only approached."""
        return max(self.candidates, key=lambda c: (_float(sp.Abs(c[1])), c[2]))

    def lowest(self) -> tuple[sp.Basic, sp.Expr, bool]:
        """The candidate with the smallest f′ (inf f′)."""
        return min(self.candidates, key=lambda c: (_float(c[1]), not c[2]))

    def highest(self) -> tuple[sp.Basic, sp.Expr, bool]:
        """The candidate with the largest f′ (sup f′)."""
        return max(self.candidates, key=lambda c: (_float(c[1]), c[2]))


@dataclass(frozen=True)
class DerivativeBound:
    """How large f′ gets: the steps, sup |f′| and where it is attained (or approached)."""

    name: str
    #: f(z) as written (σ(z)), the formula with the network's parameter values, and f′ = sympy.diff.
    written: sp.Expr
    formula: sp.Expr
    derivative: sp.Expr
    steps: tuple
    sup: sp.Expr
    at: sp.Basic
    attained: bool
    #: The values f′ takes: {0, 1} for relu, (0, 1/4] for σ.
    values: sp.Set

    @property
    def sup_value(self) -> float:
        return _float(self.sup)


def _float(value: sp.Basic) -> float:
    return float(sp.N(value, 30)) if value.is_finite is not False else float(value)


def _number(value: float) -> sp.Expr:
    """A spec's number exactly where it is short (0.01 → 1/100), else as a float (SELU's α)."""
    text = repr(float(value))
    return sp.Rational(text) if len(text) <= 8 else sp.Float(value, 17)


def _numeric(expr: sp.Expr):
    """A float function of z through mpmath (no overflow far out), for checks; the real part where exp forms go complex (atan)."""
    f = sp.lambdify(Z, expr.rewrite(sp.exp), modules="mpmath")
    return lambda z: float(mpmath.re(f(z)))


def _equal(a: sp.Expr, b: sp.Expr) -> bool:
    """Whether ``a - b`` simplifies to 0, trying the cheap ways first."""
    difference = a - b
    return difference == 0 or sp.expand(difference) == 0 or sp.simplify(difference.rewrite(sp.exp)) == 0


def _named_in_exp(expr: sp.Expr) -> sp.Expr:
    """σ and softplus written out in exp, the rest as it is (tanh stays tanh)."""
    return expr.replace(lambda e: isinstance(e, (sigmoid, softplus)), lambda e: e.rewrite(sp.exp))


def _limit_form(term: sp.Expr) -> sp.Expr:
    """A term as SymPy's limit takes it fastest: 1 − tanh² as sech², σ and softplus in exp."""
    sech = {1 - t**2: sp.sech(t.args[0]) ** 2 for t in term.atoms(sp.tanh)}
    return _named_in_exp(term.xreplace(sech))


def _limit(expr: sp.Expr, direction: sp.Expr) -> sp.Expr:
    """lim f′ at ±∞ by SymPy, checked against f′ far out (SymPy 1.14 gets silu′ at ∞ wrong as written).

    Substituting ±∞ is tried first (tanh(∞) = 1, e^(−∞) = 0): it is exact where it gives a number.
    """
    side = 1 if direction > 0 else -1
    probe = _numeric(expr)(mpmath.mpf(FAR) * side)
    plain = expr.rewrite(sp.exp)

    def agrees(value: sp.Expr) -> bool:
        if value.is_infinite:  # growing without bound: larger still further out, with the limit's sign
            further = _numeric(expr)(mpmath.mpf(FAR) ** 2 * side)
            return abs(further) > 1.5 * abs(probe) and (further > 0) == (value > 0)
        return bool(value.is_real and value.is_finite) and abs(_float(value) - probe) <= LIMIT_AGREES * max(1.0, abs(probe))

    def substituted(e: sp.Expr) -> sp.Expr | None:
        for form in (e, e.rewrite(sp.exp)):
            value = form.subs(Z, direction)
            if value.is_number and value.is_real and value.is_finite:
                return value
        return None

    # Term by term: substituting is exact where it gives a number, and only the indeterminate
    # terms (z·σ(z)(1 − σ(z)) of silu′) go to SymPy's limit, which is slow on whole sums.
    total = sp.Integer(0)
    for term in sp.Add.make_args(expr):
        value = substituted(term)
        if value is None:
            value = gruntz(_limit_form(term), Z, direction)
        total += value
    if agrees(total):
        return total
    for form in (sp.together(plain), expr):
        value = sp.limit(form, Z, direction)
        if agrees(value):
            return value
    raise ValueError(f"no limit of {expr} at {direction} agrees with its value at {FAR}")


def _preimage(formula: sp.Expr, value: sp.Expr) -> tuple[sp.Expr, ...]:
    """The real z with f(z) = value, smallest first: none where f never takes the value (σ = 1)."""
    inverse = getattr(formula, "inverse", None) if formula.args == (Z,) else None
    if inverse is not None:
        z = inverse()(value)  # tanh's atanh: atanh(±1) = ±∞ is no z
        return (z,) if z.is_real and z.is_finite else ()
    # f a rational function of w = eˣ (σ): the positive roots of a polynomial in w, z = log w.
    w = sp.Dummy("w", positive=True)
    numer, denom = sp.together(formula.rewrite(sp.exp).subs(sp.exp(Z), w) - value).as_numer_denom()
    if Z in (numer * denom).free_symbols:
        found = sp.solveset(sp.Eq(formula.rewrite(sp.exp), value), Z, sp.S.Reals)
        return tuple(sorted(found, key=_float)) if isinstance(found, sp.FiniteSet) else ()
    roots = [r for r in dict.fromkeys(sp.Poly(numer, w).real_roots()) if r > 0 and denom.subs(w, r) != 0]
    return tuple(sp.log(r) for r in sorted(roots, key=_float))


def _never_zero(factor: sp.Expr) -> bool:
    return factor.is_positive or factor.is_negative or isinstance(factor, sp.exp) or (factor.is_Pow and factor.exp.is_negative)


def _zeros(second: sp.Expr, interval: sp.Set) -> tuple[tuple[sp.Expr, ...], bool]:
    """The z in ``interval`` where f″ changes sign: exactly where what can vanish is a polynomial, else by nsolve."""
    numer, _ = sp.together(second.rewrite(sp.exp)).as_numer_denom()
    left = sp.Mul(*[f for f in sp.Mul.make_args(sp.factor_terms(numer)) if not _never_zero(f)])
    if left.is_number:
        return (), False
    if left.is_polynomial(Z):
        roots = sp.Poly(left, Z).real_roots()
        return tuple(sorted({r for r in roots if r in interval}, key=_float)), False
    # f″ has the sign of what can vanish; in floats it is quick, and nothing overflows for |z| ≤ 20.
    f = sp.lambdify(Z, _named_in_exp(second), modules="math")
    low, high, count = SCAN
    grid = [low + (high - low) * i / (count - 1) for i in range(count)]
    grid = [x for x in grid if sp.Float(x) in interval]
    values = [f(x) for x in grid]
    roots = [sp.nsolve(left, Z, (a, b), solver="bisect", verify=False) for a, b, fa, fb in zip(grid, grid[1:], values, values[1:]) if fa * fb < 0]
    return tuple(sp.Float(r, 15) for r in roots), True


def _smooth(fprime: sp.Expr, interval: sp.Set, in_output: sp.Expr | None, formula: sp.Expr, written: tuple) -> tuple[list, list]:
    """The steps that bound a smooth f′ on ``interval``, and its candidates (where, value, attained).

    ``written`` is what f″ is written as the derivative of: (σ(z), 2), or (a piece of f′, 1).
    """
    steps: list = []
    candidates: list = []
    second = sp.diff(fprime, Z)
    if second == 0:
        return [], [(interval, fprime, True)]
    if in_output is not None:
        # f″ = d/dz f′(a) = (df′/da)·(da/dz) = (df′/da)·f′: a polynomial in a where f′ is one.
        equation = sp.UnevaluatedExpr(sp.Mul(in_output, sp.diff(in_output, A), evaluate=False))
        if not _equal(equation.doit().xreplace({A: formula}), second):
            raise ValueError(f"f″ in the output does not equal sympy.diff for {formula}")
        steps.append(Differentiate(written[1], written[0], second, equation))
        roots, excluded, points = [], [], []
        for root in dict.fromkeys(sp.Poly(equation.doit(), A).real_roots()):
            reached = _preimage(formula, root)
            (roots if reached else excluded).append(root)
            if reached:
                points.append(reached[0])
        steps.append(CriticalPoints(equation, A, tuple(roots), tuple(excluded), tuple(points)))
        for root, point in zip(roots, points):
            value = in_output.xreplace({A: root})
            steps.append(Evaluate(point, value, in_output.xreplace({A: sp.UnevaluatedExpr(root)})))
            candidates.append((point, value, True))
    else:
        steps.append(Differentiate(written[1], written[0], second))
        points, numeric = _zeros(second, interval)
        steps.append(CriticalPoints(second, Z, points, (), points, numeric))
        for point in points:
            value = fprime.subs(Z, point)
            value = sp.N(value, 15) if numeric else value
            steps.append(Evaluate(point, value))
            candidates.append((point, value, True))
    for end, closed in ((interval.inf, not interval.left_open), (interval.sup, not interval.right_open)):
        if end.is_infinite:
            value = _limit(fprime, end)
            steps.append(Limit(end, fprime, value))
            candidates.append((end, value, False))
        else:
            value = fprime.subs(Z, end)
            steps.append(Evaluate(end, value))
            candidates.append((end, value, closed))
    return steps, candidates


def _as_set(condition: sp.Basic) -> sp.Set:
    """The z a piece's condition holds for: z ≤ c and its kin directly (``as_set`` imports sympy.physics, 0.5 s)."""
    if condition is sp.true:
        return sp.S.Reals
    if isinstance(condition, sp.core.relational.Relational) and condition.lhs == Z and condition.rhs.is_number:
        c = condition.rhs
        return {
            sp.LessThan: sp.Interval(-sp.oo, c), sp.StrictLessThan: sp.Interval.open(-sp.oo, c),
            sp.GreaterThan: sp.Interval(c, sp.oo), sp.StrictGreaterThan: sp.Interval.open(c, sp.oo),
        }.get(type(condition)) or condition.as_set()  # fmt: skip
    if isinstance(condition, sp.And):
        return sp.Intersection(*[_as_set(c) for c in condition.args])
    if isinstance(condition, sp.Or):
        return sp.Union(*[_as_set(c) for c in condition.args])
    return condition.as_set()


def _pieces(piecewise: sp.Piecewise) -> list[tuple[sp.Expr, sp.Set]]:
    """Each piece of a Piecewise in z with the set of z it holds on (what earlier pieces leave over).

    ``Piecewise.as_expr_set_pairs`` does the same but simplifies every condition: 0.8 s for hard tanh.
    """
    left: sp.Set = sp.S.Reals
    out = []
    for expr, condition in piecewise.args:
        where = sp.Intersection(left, _as_set(condition))
        if where is not sp.S.EmptySet:
            out.append((expr, where))
        left = sp.Complement(left, where)
    return out


def derivative_bound(activation: str | Activation, values: Mapping[str, float] | None = None) -> DerivativeBound:
    """sup |f′| of an elementwise activation, derived step by step; ``values`` sets its parameters (α).

    >>> b = derivative_bound("leaky_relu", {"alpha": 0.1})
    >>> b.sup, b.values, b.at
    (1, {1/10, 1}, Interval.open(0, oo))
    """
    entry = ACTIVATIONS[activation] if isinstance(activation, str) else activation
    if not entry.elementwise:
        raise ValueError(f"{entry.name} is not elementwise: its Jacobian is bounded by softmax_bound()")
    given = {} if values is None else values
    bound = {p.symbol: _number(given.get(p.name, p.default)) for p in entry.parameters}
    formula = entry.formula.xreplace(bound)
    written = entry.display(Z) if entry.display is not None else formula
    derivative = sp.diff(formula, Z)
    in_output = entry.derivative.xreplace(bound) if entry.derivative.free_symbols <= {A} else None
    if in_output is not None and (in_output.is_number or not _equal(in_output.xreplace({A: formula}), derivative)):
        in_output = None  # a constant f′ (identity) has nothing to say in a; a wrong form is not used
    steps: list = [Differentiate(1, written, derivative, in_output)]
    # Kinks (|z|, max) as pieces, so that each piece is smooth and bounded on its own.
    fprime = sp.piecewise_fold(sp.diff(sp.piecewise_fold(formula.rewrite(sp.Piecewise)), Z).rewrite(sp.Piecewise))
    if isinstance(fprime, sp.Piecewise):
        candidates = []
        for expr, interval in _pieces(fprime):
            for part in sp.Union.make_args(interval):
                substeps, found = _smooth(expr, part, None, formula, (expr, 1))
                steps.append(Piece(expr, part, tuple(substeps)))
                candidates += found
    else:
        substeps, candidates = _smooth(fprime, sp.S.Reals, in_output, formula, (written, 2))
        steps += substeps
    top = Supremum(tuple(candidates))
    steps.append(top)
    at, sup, attained = top.eval()
    low, high = top.lowest(), top.highest()
    constants = [value for where, value, _ in candidates if isinstance(where, sp.Set)]
    if len(constants) == len(candidates):
        image: sp.Set = sp.FiniteSet(*constants)
    else:
        image = sp.Interval(low[1], high[1], not low[2], not high[2])
    return DerivativeBound(entry.name, written, formula, derivative, tuple(steps), sp.Abs(sup), at, attained, image)


# Layer-level factors: softmax's Jacobian and the normalizations' -----------------------


@dataclass(frozen=True)
class Jacobian:
    """J = ∂(outputs)/∂(inputs) by ``sympy.diff``, equal to its textbook form (checked)."""

    matrix: sp.ImmutableMatrix
    textbook: sp.ImmutableMatrix


@dataclass(frozen=True)
class Gershgorin:
    """Every eigenvalue of J lies within R = Σⱼ≠ᵢ |Jᵢⱼ| of some Jᵢᵢ (Gershgorin's circle theorem)."""

    center: sp.Expr
    radius: sp.Expr
    #: ``center + radius`` after Σ a = 1: the largest an eigenvalue can be.
    largest: sp.Expr


@dataclass(frozen=True)
class Eigenvector:
    """P v = λ v: v is an eigenvector of P with eigenvalue λ (checked by expanding P v − λ v to 0)."""

    vector: sp.ImmutableMatrix
    value: sp.Expr
    #: What v is, in words ("𝟏", "x̂", "𝟏 × x̂"), and as a symbol for documents.
    name: str
    symbol: sp.MatrixSymbol | None = None


@dataclass(frozen=True)
class LayerBound:
    """A layer's Jacobian and the bound on its spectral norm, derived step by step."""

    name: str
    steps: tuple
    #: ‖J‖₂ ≤ norm (softmax: 1/2; batch norm: |γ|/√(σ² + ε)), attained where ``at`` says.
    norm: sp.Expr
    at: str
    #: The Jacobian's entry as books write it, for any size (∂yₙ/∂xₘ = γ/√(σ² + ε) (δₙₘ − 1/N − x̂ₙx̂ₘ/N)),
    #: and what to put in for the small case's symbols to write the rest that way (s → √(σ² + ε)).
    written: tuple[sp.Expr, sp.Expr] | None = None
    written_for: tuple[tuple[sp.Basic, sp.Basic], ...] = ()


def softmax_bound(units: int = 3) -> LayerBound:
    """‖diag(a) − aaᵀ‖₂ ≤ 1/2 for softmax over ``units`` outputs, by Gershgorin, attained at a = (½, ½, 0, …).

    >>> softmax_bound().norm
    1/2
    """
    entry = ACTIVATIONS["softmax"]
    zs = sp.symbols(f"z1:{units + 1}", real=True)
    acts = sp.symbols(f"a1:{units + 1}", positive=True)
    outputs = entry.outputs(zs)
    derived = sp.Matrix(units, units, lambda j, k: sp.diff(outputs[j], zs[k]))
    textbook = sp.Matrix(units, units, lambda j, k: entry.jacobian(zs, acts, j, k))
    if (derived - textbook.xreplace(dict(zip(acts, outputs)))).applyfunc(sp.expand) != sp.zeros(units, units):
        raise ValueError("softmax's textbook Jacobian differs from sympy.diff")
    steps: list = [Jacobian(sp.ImmutableMatrix(derived), sp.ImmutableMatrix(textbook))]
    center = textbook[0, 0]
    radius = sp.Add(*[sp.Abs(textbook[0, k]) for k in range(1, units)])
    largest = sp.Mul(2, acts[0], 1 - acts[0], evaluate=False)  # as books write it; checked equal just below
    if sp.expand((center + radius).xreplace({acts[-1]: 1 - sp.Add(*acts[:-1])}) - largest) != 0:
        raise ValueError("Gershgorin's bound on softmax's Jacobian is not 2a(1 − a)")
    steps.append(Gershgorin(center, radius, largest))
    a = acts[0]
    steps.append(Differentiate(1, largest, sp.diff(largest, a)))
    (peak,) = sp.Poly(sp.diff(largest, a), a).real_roots()
    steps.append(CriticalPoints(sp.diff(largest, a), a, (peak,), (), (peak,)))
    top = largest.xreplace({a: peak})
    steps.append(Evaluate(peak, top))
    point = [sp.Rational(1, 2), sp.Rational(1, 2)] + [sp.Integer(0)] * (units - 2)
    at = textbook.xreplace(dict(zip(acts, point)))
    steps.append(Jacobian(sp.ImmutableMatrix(at), sp.ImmutableMatrix(at)))
    if max(at.eigenvals(), key=_float) != top:
        raise ValueError("softmax's Jacobian does not reach its bound at a = (1/2, 1/2, 0, …)")
    return LayerBound("softmax", tuple(steps), top, "a = (1/2, 1/2, 0, …): two outputs share all the probability")


def normalization_bound(over: str = "examples", size: int = 3) -> LayerBound:
    """The Jacobian of batch norm (``over`` the examples) or layer norm (the units), derived for ``size`` entries.

    y = γ (x − μ)/√(σ² + ε) + β gives ∂y/∂x = γ/√(σ² + ε) (I − 𝟏𝟏ᵀ/N − x̂x̂ᵀ/N) (with diag(γ) in
    front for layer norm, one γ per unit); the bracket P has eigenvalues 0 (along 𝟏),
    ε/(σ² + ε) (along x̂) and 1 (the rest), so ‖∂y/∂x‖₂ ≤ |γ|/√(σ² + ε).

    >>> normalization_bound().norm
    Abs(gamma)/s
    """
    x = sp.symbols(f"x1:{size + 1}", real=True)
    s, eps = sp.Symbol("s", positive=True), sp.Symbol("epsilon", positive=True)
    per_unit = over == "units"
    gammas = sp.symbols(f"gamma1:{size + 1}", real=True) if per_unit else (sp.Symbol("gamma", real=True),) * size
    mu = sp.Add(*x) / size
    variance = sp.Add(*[(v - mu) ** 2 for v in x]) / size
    y = [g * (v - mu) / sp.sqrt(variance + eps) for g, v in zip(gammas, x)]
    # s = √(σ² + ε) once differentiated: the check is then a polynomial identity.
    derived = sp.Matrix(size, size, lambda n, m: sp.diff(y[n], x[m])).xreplace({variance + eps: s**2})
    xhat = sp.Matrix([(v - mu) / s for v in x])
    ones = sp.ones(size, 1)
    bracket = sp.eye(size) - ones * ones.T / size - xhat * xhat.T / size
    scale = sp.diag(*gammas) if per_unit else gammas[0] * sp.eye(size)
    closed = scale * bracket / s
    if (derived - closed).applyfunc(sp.expand) != sp.zeros(size, size):
        raise ValueError(f"the {over} normalization's Jacobian differs from its closed form")
    steps: list = [Jacobian(sp.ImmutableMatrix(derived), sp.ImmutableMatrix(closed))]
    back = {eps: s**2 - variance}
    across = ones.cross(xhat) if size == 3 else None
    n = sp.Symbol("N", positive=True, integer=True)
    one_, xhat_, across_ = sp.MatrixSymbol("1", n, 1), sp.MatrixSymbol("xhat", n, 1), sp.MatrixSymbol("u", n, 1)
    for vector, value, name, symbol in ((ones, 0, "𝟏", one_), (xhat, eps / s**2, "x̂", xhat_), (across, 1, "𝟏 × x̂", across_)):
        if vector is None:
            continue
        if (bracket * vector - value * vector).applyfunc(lambda e: sp.expand(e.xreplace(back))) != sp.zeros(size, 1):
            raise ValueError(f"{name} is not an eigenvector of the normalization's bracket")
        steps.append(Eigenvector(sp.ImmutableMatrix(vector), sp.sympify(value), name, symbol))
    norm = sp.Max(*[sp.Abs(g) for g in dict.fromkeys(gammas)]) / s
    # The entry as books write it, for any N (layer norm's γ is the output unit's own).
    variance_ = sp.Symbol("sigma^2", positive=True)
    i, j = sp.symbols("n m", integer=True, positive=True)
    y_, x_, xh = sp.IndexedBase("y"), sp.IndexedBase("x"), sp.IndexedBase("xhat")
    gamma_ = sp.IndexedBase("gamma")[i] if per_unit else sp.Symbol("gamma", real=True)
    bracket_ = sp.UnevaluatedExpr(sp.Add(sp.KroneckerDelta(i, j), -1 / n, -xh[i] * xh[j] / n, evaluate=False))
    written = (sp.Derivative(y_[i], x_[j]), sp.Mul(gamma_ / sp.sqrt(variance_ + eps), bracket_, evaluate=False))
    name = "layer_norm" if per_unit else "batch_norm"
    return LayerBound(name, tuple(steps), norm, "every ε: the bracket has eigenvalue 1", written, ((s, sp.sqrt(variance_ + eps)),))
