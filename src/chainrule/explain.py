"""Any formula, explained: its gradient (and Hessian), every step, and the values at a point.

``explain`` is what ``chainrule explain`` documents: the formula comes in through the
safe formula language (``chainrule.expr``), each derivative is a rule tree
(``chainrule.rules``), and at a point every value is computed by the same NumPy code the
networks use and checked against central differences of the formula itself.

>>> e = explain("x**2*sin(x)", wrt=["x"])
>>> e.gradient[0].steps.result
x**2*cos(x) + 2*x*sin(x)
>>> e = explain("log(1+exp(w*x+b))", wrt=["w", "b"], at={"w": 0.5, "x": 2, "b": -1})
>>> [round(d.value, 6) for d in e.gradient]
[1.0, 0.5]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import expr
from .differences import (
    ONE_SIDED_STEP,
    STEPS,
    TOLERANCE,
    Check,
    Difference,
    Kink,
    verdict,
)
from .glossary import Definition, expressions_of, glossary
from .kinks import breaks
from .numeric import lambdify_checked
from .rules import Rule, SimplifyRule, derivative_steps

__all__ = ["TOLERANCE", "Check", "Derivative", "ExplainError", "Explanation", "explain"]

#: More variables than this make a Hessian no reader follows step by step.
MAX_HESSIAN_VARIABLES = 6


class ExplainError(ValueError):
    """A request ``explain`` cannot answer: ``field: what is wrong; what would be right``."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Derivative:
    """∂f/∂v (or ∂²f/∂v∂u): the variables, in the order taken, and the rule tree."""

    wrt: tuple[sp.Symbol, ...]
    steps: Rule
    value: float | None = None
    check: Check | None = None
    #: For ∂²f/∂v∂u: the variables (u, v) of the mixed derivative taken the other way round when
    #: the two are proven equal (Schwarz), and written alike; None otherwise.
    mirror: tuple[sp.Symbol, ...] | None = None

    @property
    def result(self) -> sp.Expr:
        return self.steps.result


@dataclass(frozen=True)
class Explanation:
    text: str
    formula: sp.Expr
    #: Every variable of the formula, in the order they first appear.
    variables: tuple[sp.Symbol, ...]
    wrt: tuple[sp.Symbol, ...]
    gradient: tuple[Derivative, ...]
    #: ``hessian[i][j]`` = ∂/∂wrtⱼ (∂f/∂wrtᵢ); empty unless order 2 was asked for.
    hessian: tuple[tuple[Derivative, ...], ...] = ()
    point: Mapping[sp.Symbol, float] = field(default_factory=dict)
    value: float | None = None
    #: The special functions the document shows (H, step, σ, …), each defined once.
    notation: tuple[Definition, ...] = ()

    @property
    def order(self) -> int:
        return 2 if self.hessian else 1


def explain(
    text: str, wrt: Sequence[str] = (), at: Mapping[str, float] | None = None, order: int = 1
) -> Explanation:
    """Differentiate the formula ``text`` step by step with respect to ``wrt`` (default: every variable)."""
    names = expr.names(text)
    formula = expr.parse(text, names)
    symbols = {name: sp.Symbol(name, real=True) for name in names}
    if not names:
        raise ExplainError("formula", "has no variables to differentiate by; write one, such as x**2")
    for name in wrt:
        if name not in symbols:
            raise ExplainError("--wrt", f"{_short(name)} is not a variable of the formula; its variables are {', '.join(names)}")
    chosen = tuple(symbols[name] for name in dict.fromkeys(wrt or names))
    if order not in (1, 2):
        raise ExplainError("--order", f"must be 1 (the gradient) or 2 (the Hessian), got {order}")
    if order == 2 and len(chosen) > MAX_HESSIAN_VARIABLES:
        raise ExplainError("--order", f"a Hessian of {len(chosen)} variables is too big to explain; take at most {MAX_HESSIAN_VARIABLES}")
    point = _point(at, names, symbols)
    gradient = [derivative_steps(formula, v) for v in chosen]
    hessian = _alike([[derivative_steps(g.result, v) for v in chosen] for g in gradient], chosen) if order == 2 else []
    for step in [*gradient, *[h for row in hessian for h, _ in row]]:
        try:
            expr.to_formula(step.result)
        except ValueError:
            # e.g. abs(sqrt(x)): SymPy writes the derivative with atan2, re and im
            raise ExplainError(
                "formula",
                f"its derivative by {step.variable} needs functions the formula language cannot write "
                "(SymPy answers with complex parts); rewrite the formula for real values, e.g. sqrt(abs(x)) for abs(sqrt(x))",
            ) from None
    notation = glossary([formula, *[e for rule in [*gradient, *[h for row in hessian for h, _ in row]] for e in expressions_of(rule)]])
    args = tuple(symbols.values())
    if not point:
        return Explanation(
            text,
            formula,
            args,
            chosen,
            tuple(Derivative((v,), g) for v, g in zip(chosen, gradient)),
            tuple(tuple(Derivative((u, v), h, mirror=m) for v, (h, m) in zip(chosen, row)) for u, row in zip(chosen, hessian)),
            notation=notation,
        )
    flat = [formula, *[g.result for g in gradient], *[h.result for row in hessian for h, _ in row]]
    numbers = _evaluate(args, flat, point)
    value, rest = numbers[0], numbers[1:]
    first = [
        Derivative((v,), g, rest[i], check_derivative(formula, args, point, v, rest[i])) for i, (v, g) in enumerate(zip(chosen, gradient))
    ]
    second = []
    n = len(chosen)
    for i, (u, row) in enumerate(zip(chosen, hessian)):
        entries = []
        for j, (v, (h, mirror)) in enumerate(zip(chosen, row)):
            # ∂²f/∂v∂u by central differences of ∂f/∂u in v
            entry_value = rest[n + i * n + j]
            entries.append(Derivative((u, v), h, entry_value, check_derivative(gradient[i].result, args, point, v, entry_value), mirror))
        second.append(tuple(entries))
    return Explanation(text, formula, args, chosen, tuple(first), tuple(second), point, value, notation)


def _alike(hessian: list[list[Rule]], wrt: tuple[sp.Symbol, ...]) -> list[list[tuple[Rule, tuple | None]]]:
    """The Hessian's rule trees, each mixed pair proven equal ending in the same form: (tree, the mirror's variables).

    ∂²f/∂y∂x and ∂²f/∂x∂y come by different paths and SymPy may simplify one and not the
    other; when their difference simplifies to 0 (Schwarz's theorem says it must where the
    second derivatives are continuous), both end in the shorter form.
    """
    out = [[(rule, None) for rule in row] for row in hessian]
    for i, row in enumerate(hessian):
        for j in range(i + 1, len(row)):
            a, b = row[j], hessian[j][i]
            if a.result != b.result and sp.simplify(a.result - b.result) != 0:
                continue
            form = min((a.result, b.result), key=lambda e: (sp.count_ops(e), sp.default_sort_key(e)))
            out[i][j] = (_ending_in(a, form), None)
            out[j][i] = (_ending_in(b, form), (wrt[i], wrt[j]))
    return out


def _ending_in(rule: Rule, form: sp.Expr) -> Rule:
    """``rule``, its last step rewritten to ``form`` (a SimplifyRule) unless it already gives that."""
    if rule.result == form:
        return rule
    found = rule.substep if isinstance(rule, SimplifyRule) else rule
    if found.result == form:
        return found
    return SimplifyRule(rule.expr, rule.variable, substep=found, simplified=form)


def _short(name: str) -> str:
    """A name from the command line, quoted and cut short: never echo a whole long argument."""
    return ascii(name if len(name) <= 24 else name[:24] + "...")


def _point(at: Mapping[str, float] | None, names: Sequence[str], symbols: Mapping[str, sp.Symbol]) -> dict:
    if not at:
        return {}
    for name, value in at.items():
        if name not in symbols:
            raise ExplainError("--at", f"{_short(name)} is not a variable of the formula; its variables are {', '.join(names)}")
        if not math.isfinite(value):
            raise ExplainError("--at", f"{name} must be a finite number, got {value!r}")
    missing = [name for name in names if name not in at]
    if missing:
        raise ExplainError("--at", f"give a value for every variable; missing {', '.join(missing)}")
    return {symbols[name]: float(at[name]) for name in names}


def _evaluate(args: tuple[sp.Symbol, ...], exprs: list[sp.Expr], point: Mapping[sp.Symbol, float]) -> list[float]:
    function = lambdify_checked(args, exprs)
    with np.errstate(all="ignore"):
        # NumPy scalars, not floats: 0.0**-1 is inf there, a ZeroDivisionError in Python.
        results = function(*[np.float64(point[a]) for a in args])
        values = [float(np.real_if_close(np.asarray(v, dtype=complex))) if np.iscomplexobj(v) else float(v) for v in results]
    if not math.isfinite(values[0]):
        raise ExplainError("--at", "the formula has no finite real value at this point; choose a point in its domain")
    if not all(math.isfinite(v) for v in values):
        raise ExplainError(
            "--at", "a derivative has no finite value at this point (a jump of step or sign, or a pole); choose another point"
        )
    return values


def _real(result, n: int) -> np.ndarray:
    # a stencil that left the real domain (sqrt of a negative) counts as outside it, like a NaN
    values = np.asarray(result)
    return np.full(n, np.nan) if np.iscomplexobj(values) else np.broadcast_to(values.astype(float), (n,))


def check_derivative(function: sp.Expr, args: tuple[sp.Symbol, ...], point: Mapping[sp.Symbol, float], v: sp.Symbol, derived: float) -> Check:
    """``derived`` (the value of d function/dv at ``point``) against finite differences of ``function`` in ``v``.

    The breaks of ``function`` (``chainrule.kinks``) whose argument moves with ``v`` are
    evaluated on every stencil: a stencil on which one reaches 0 straddles it.

    >>> from chainrule.functions import relu
    >>> x = sp.Symbol("x", real=True)
    >>> c = check_derivative(relu(x) ** 2, (x,), {x: 0.0}, x, 0.0)
    >>> c.verdict, c.one_sided, round(c.straddling.value, 12)
    ('sides agree', (0.0, 0.0), 0.000333333333)
    >>> check_derivative(x**3, (x,), {x: 1.0}, x, 3.0).verdict
    'agrees'
    """
    numeric = lambdify_checked(args, [function])
    found = [k for k in breaks(function) if v in k.argument.free_symbols]
    arguments = lambdify_checked(args, [k.argument for k in found]) if found else None
    scale = max(1.0, abs(point[v]))

    def along(f, offsets: list[float]) -> np.ndarray:
        columns = [np.array([point[a] + (o if a == v else 0.0) for o in offsets]) for a in args]
        with np.errstate(all="ignore"):
            return np.array([_real(r, len(offsets)) for r in f(*columns)])

    def crossed(offsets: list[float]) -> list[bool]:
        # A break is crossed when its argument changes along the stencil and reaches 0 on it (or changes sign).
        if arguments is None:
            return []
        values = along(arguments, offsets)
        return [bool(np.ptp(row) > 0 and row.min() <= 0 <= row.max()) for row in values]

    differences, met, f0 = [], [False] * len(found), None
    for step in STEPS:
        h = step * scale
        offsets = [-2 * h, -h, 0.0, h, 2 * h]
        values = along(numeric, offsets)[0]
        if not np.all(np.isfinite(values)):
            continue
        m2, m1, f0, p1, p2 = (float(x) for x in values)
        hits = crossed(offsets)
        if not differences:  # the largest stencil in the domain: the breaks it meets are the ones to speak of
            met = hits
        differences.append(Difference(h, (m2 - 8 * m1 + 8 * p1 - p2) / (12 * h), any(hits)))
    if not differences:
        return Check(derived)
    floor = 1e-6 * max(1.0, abs(f0))
    zero = along(arguments, [0.0])[:, 0] if arguments is not None else []
    kinks = tuple(Kink(k.node, k.argument, float(z) + 0.0, k.info) for k, hit, z in zip(found, met, zero) if hit)
    at_kink = all(d.straddles for d in differences)
    one_sided = _one_sided(lambda offsets: along(numeric, offsets)[0], scale, differences, at_kink) if kinks else None
    return Check(derived, tuple(differences), kinks, at_kink, one_sided, verdict(derived, differences, at_kink, one_sided, floor), floor)


def _one_sided(values, scale: float, differences: list[Difference], at_kink: bool) -> tuple[float, float] | None:
    """Second-order one-sided differences: on a break with a small step, else with the largest step clear of it."""
    h = ONE_SIDED_STEP * scale if at_kink else next(d.step for d in differences if not d.straddles)
    m2, m1, f0, p1, p2 = (float(x) for x in values([-2 * h, -h, 0.0, h, 2 * h]))
    left, right = (3 * f0 - 4 * m1 + m2) / (2 * h), (-3 * f0 + 4 * p1 - p2) / (2 * h)
    if not (math.isfinite(left) and math.isfinite(right)):
        return None
    # Rounding leaves about 1e-16/h where a slope is 0 (-8.9e-16 for relu(w·x + b)² at its kink): that is 0.
    noise = 1e-9 * max(1.0, abs(left), abs(right))
    return tuple(0.0 if abs(side) < noise else side for side in (left, right))
