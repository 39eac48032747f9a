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

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import expr
from .numeric import lambdify_checked
from .rules import Rule, derivative_steps

#: A derivative whose relative difference from central differences exceeds this fails.
TOLERANCE = 1e-6
#: More variables than this make a Hessian no reader follows step by step.
MAX_HESSIAN_VARIABLES = 6


class ExplainError(ValueError):
    """A request ``explain`` cannot answer: ``field: what is wrong; what would be right``."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Check:
    """A derivative's value against a fourth-order central difference of the formula."""

    estimate: float
    relative_error: float
    #: Left and right one-sided slopes where they differ: the formula has a kink here.
    kink: tuple[float, float] | None = None
    #: True when every stencil left the formula's domain, so no difference could be taken.
    unchecked: bool = False
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return self.unchecked or self.kink is not None or self.relative_error <= self.tolerance


@dataclass(frozen=True)
class Derivative:
    """∂f/∂v (or ∂²f/∂v∂u): the variables, in the order taken, and the rule tree."""

    wrt: tuple[sp.Symbol, ...]
    steps: Rule
    value: float | None = None
    check: Check | None = None

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
    hessian = [[derivative_steps(g.result, v) for v in chosen] for g in gradient] if order == 2 else []
    for step in [*gradient, *[h for row in hessian for h in row]]:
        try:
            expr.to_formula(step.result)
        except ValueError:
            # e.g. abs(sqrt(x)): SymPy writes the derivative with atan2, re and im
            raise ExplainError(
                "formula",
                f"its derivative by {step.variable} needs functions the formula language cannot write "
                "(SymPy answers with complex parts); rewrite the formula for real values, e.g. sqrt(abs(x)) for abs(sqrt(x))",
            ) from None
    if not point:
        return Explanation(
            text,
            formula,
            tuple(symbols.values()),
            chosen,
            tuple(Derivative((v,), g) for v, g in zip(chosen, gradient)),
            tuple(tuple(Derivative((u, v), h) for v, h in zip(chosen, row)) for u, row in zip(chosen, hessian)),
        )
    args = tuple(symbols.values())
    flat = [formula, *[g.result for g in gradient], *[h.result for row in hessian for h in row]]
    numbers = _evaluate(args, flat, point)
    # One NumPy function per differentiated expression, shared by the checks of every variable.
    f_numeric = lambdify_checked(args, [formula])
    value, rest = numbers[0], numbers[1:]
    first = [
        Derivative((v,), g, rest[i], _check(f_numeric, args, point, v, rest[i])) for i, (v, g) in enumerate(zip(chosen, gradient))
    ]
    second = []
    n = len(chosen)
    for i, (u, row) in enumerate(zip(chosen, hessian)):
        g_numeric = lambdify_checked(args, [gradient[i].result])
        entries = []
        for j, (v, h) in enumerate(zip(chosen, row)):
            entry_value = rest[n + i * n + j]
            entries.append(Derivative((u, v), h, entry_value, _check(g_numeric, args, point, v, entry_value)))
        second.append(tuple(entries))
    return Explanation(text, formula, args, chosen, tuple(first), tuple(second), point, value)


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


def _check(function, args, point, v: sp.Symbol, derived: float) -> Check:
    """Fourth-order central differences of ``function`` (lambdified, one result) in ``v``; one-sided slopes tell a kink apart.

    The step shrinks until the stencil stays inside the formula's domain (log near 0). A
    derivative is accepted when a difference quotient agrees to ``TOLERANCE``, or when the
    quotients close in on it as the step shrinks, which is what they do where only a higher
    derivative jumps (x·|x| at 0).
    """
    scale = max(1.0, abs(point[v]))
    estimates = []
    for h in (1e-3 * scale, 1e-4 * scale, 1e-5 * scale):
        offsets = [-2 * h, -h, 0.0, h, 2 * h]
        columns = [np.array([point[a] + (o if a == v else 0.0) for o in offsets]) for a in args]
        with np.errstate(all="ignore"):
            values = np.broadcast_to(np.asarray(function(*columns)[0]), (5,))
        if np.iscomplexobj(values) or not np.all(np.isfinite(values)):
            continue
        m2, m1, f0, p1, p2 = (float(x) for x in values)
        estimates.append((h, (m2 - 8 * m1 + 8 * p1 - p2) / (12 * h), f0, m2, m1, p1, p2))
    if not estimates:
        return Check(math.nan, math.nan, None, unchecked=True)
    floor = 1e-6 * max(1.0, abs(estimates[0][2]))
    errors = [abs(e - derived) / max(abs(e), abs(derived), floor) for _, e, *_ in estimates]
    best = min(range(len(errors)), key=errors.__getitem__)
    # one-sided slopes from the smallest step: a kink near the point but not at it leaves them equal
    h, _, f0, m2, m1, p1, p2 = estimates[-1]
    left, right = (3 * f0 - 4 * m1 + m2) / (2 * h), (-3 * f0 + 4 * p1 - p2) / (2 * h)
    kink = None
    # One-sided slopes of a smooth function agree to O(h²); a kink makes them differ by O(1).
    if abs(left - right) > 1e-3 * max(abs(left), abs(right), 1e-9):
        kink = (float(left), float(right))
    gaps = [abs(e - derived) for _, e, *_ in estimates]
    converging = len(gaps) > 1 and all(b <= 0.2 * a + 1e-15 for a, b in itertools.pairwise(gaps)) and gaps[-1] <= 1e-3
    error = errors[best] if not converging else min(errors[best], TOLERANCE)
    return Check(float(estimates[best][1]), float(error), kink)
