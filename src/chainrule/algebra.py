"""Lines of algebra: ``Rewrite`` steps, each equal to the line before it, and the familiar forms they reach.

A derivative the rules leave as exponentials (e⁻ᶻ/(1 + e⁻ᶻ)²) is shown in the form a reader
knows (σ(z)(1 − σ(z))) by the lines a student writes, one ``Rewrite`` each; ``rewrite_holds``
checks every line against the one before it. ``FAMILIAR_FORMS`` is the table of forms, one
entry per form, each with its routes of algebra; ``rules.FamiliarFormRule`` uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from .functions import sigmoid


def fraction(numerator: sp.Expr, denominator: sp.Expr) -> sp.Expr:
    return sp.Mul(numerator, sp.Pow(denominator, -1, evaluate=False), evaluate=False)


def in_order(expr: sp.Expr) -> sp.Expr:
    """A form kept as built: printers write its terms and factors in this order, and ``doit()`` evaluates it."""
    return sp.UnevaluatedExpr(expr)


@dataclass(frozen=True)
class Rewrite:
    """f = g, one line of algebra: the expression before it written another way, simplify(f − g) = 0"""

    expr: sp.Expr
    #: What is done, in words: "splitting the square".
    title: str
    #: Why it holds, as pieces of text and formulas, read after the title and a colon:
    #: ("a/b² = (1/b)·(a/b)",), (Eq(y₁ + y₂ + y₃, 1),).
    why: tuple = ()
    #: A fact the step stands on (Σₖ yₖ = 1); the check substitutes it.
    assuming: sp.Eq | None = None
    #: Set when the line has a left side of its own, ``lhs = expr``: a fact a later line uses
    #: (1 − σ(u) = e⁻ᵘ/(1 + e⁻ᵘ)), or a new row (∂aⱼ/∂zⱼ = …). Without it the line goes on
    #: from the line before, as "= expr"; either way the next line goes on from this one.
    lhs: sp.Expr | None = None


def rewritten(start: sp.Expr, steps: tuple[Rewrite, ...]) -> list[tuple[sp.Expr, Rewrite]]:
    """Each step with the expression it rewrites: its own ``lhs``, else the line before it (``start`` first).

    >>> x = sp.Symbol("x")
    >>> steps = (Rewrite(x * (x + 1) - x, "factoring"), Rewrite(x**2, "multiplying out"))
    >>> [(str(before), str(step.expr)) for before, step in rewritten(x**2 + x - x, steps)]
    [('x**2', 'x*(x + 1) - x'), ('x*(x + 1) - x', 'x**2')]
    """
    out, before = [], start
    for step in steps:
        out.append((before if step.lhs is None else step.lhs, step))
        before = step.expr
    return out


def rewrite_holds(before: sp.Expr, step: Rewrite) -> bool:
    """simplify(before − step) = 0, with σ and tanh written by exponentials and ``assuming`` substituted.

    >>> y1, y2, a = sp.symbols("y1 y2 a")
    >>> rewrite_holds(a * (y1 + y2) - y1, Rewrite(a - y1, "the targets add up to 1", assuming=sp.Eq(y1 + y2, 1)))
    True
    """
    difference = (before - step.expr).doit()
    if step.assuming is not None:
        equation = step.assuming
        unknown = max(equation.lhs.free_symbols, key=sp.default_sort_key)
        (value,) = sp.solve(equation, unknown)
        difference = difference.xreplace({unknown: value})
    difference = difference.rewrite(sp.exp)
    return sp.cancel(sp.expand(difference)) == 0 or sp.simplify(difference) == 0




@dataclass(frozen=True)
class FamiliarForm:
    """F(u), a form a reader recognises, and the algebra that reaches it from the rules' exponentials.

    Each route starts from one way the rules write the derivative (e^(−u) or eᵘ) and
    gives the lines a student writes from there; all of them are in u, for any u.
    """

    name: str
    form: Callable[[sp.Expr], sp.Expr]
    #: (u, c) -> (c times the start, the lines of algebra from it to c·F(u)).
    routes: tuple[Callable[[sp.Expr, sp.Expr], tuple[sp.Expr, tuple[Rewrite, ...]]], ...]


def _times(*factors: sp.Expr) -> sp.Expr:
    """A product of fractions as written, each factor a fraction of its own: 1/(1 + e⁻ᵘ) · e⁻ᵘ/(1 + e⁻ᵘ)."""
    return sp.Mul(*[sp.UnevaluatedExpr(f) for f in factors], evaluate=False)


def _sigma_by_e_minus(u, c):
    # σ(u) = 1/(1 + e⁻ᵘ): divide eᵘ/(1 + eᵘ) above and below by eᵘ.
    return c * sp.exp(u) / (1 + sp.exp(u)), (
        Rewrite(c * in_order(fraction(sp.Integer(1), sp.exp(-u) + 1)), "dividing above and below by the exponential",
                ("eᵘ/(1 + eᵘ) = 1/(e⁻ᵘ + 1)",)),
        Rewrite(c * sigmoid(u), "recognizing σ", ("σ(u) = 1/(1 + e⁻ᵘ)",)),
    )


def _sigma_slope_by_e_minus(u, c):
    # The chain rule on 1/(1 + e⁻ᵘ) gives e⁻ᵘ/(1 + e⁻ᵘ)².
    b = 1 + sp.exp(-u)
    split = c * _times(1 / b, sp.exp(-u) / b)
    return c * sp.exp(-u) / b**2, (
        Rewrite(split, "splitting the square", ("a/b² = (1/b)·(a/b)",)),
        Rewrite(sp.exp(-u) / b, "one minus σ", ("1 − 1/(1 + e⁻ᵘ) = (1 + e⁻ᵘ − 1)/(1 + e⁻ᵘ)",), lhs=1 - sigmoid(u)),
        Rewrite(c * sigmoid(u) * (1 - sigmoid(u)), "recognizing σ and 1 − σ",
                ("σ(u) = 1/(1 + e⁻ᵘ), and 1 − σ(u) as above",), lhs=split),
    )


def _sigma_slope_by_e_plus(u, c):
    # The quotient rule on eᵘ/(1 + eᵘ) gives eᵘ/(1 + eᵘ)² once its numerator is multiplied out.
    b = 1 + sp.exp(u)
    split = c * _times(sp.exp(u) / b, 1 / b)
    return c * sp.exp(u) / b**2, (
        Rewrite(split, "splitting the square", ("a/b² = (a/b)·(1/b)",)),
        Rewrite(sp.exp(u) / b, "σ with eᵘ", ("1/(1 + e⁻ᵘ) multiplied above and below by eᵘ",), lhs=sigmoid(u)),
        Rewrite(1 / b, "one minus σ", ("1 − eᵘ/(1 + eᵘ) = (1 + eᵘ − eᵘ)/(1 + eᵘ)",), lhs=1 - sigmoid(u)),
        Rewrite(c * sigmoid(u) * (1 - sigmoid(u)), "recognizing σ and 1 − σ", ("both as above",), lhs=split),
    )


def _tanh_by_definition(u, c):
    return c * (sp.exp(u) - sp.exp(-u)) / (sp.exp(u) + sp.exp(-u)), (
        Rewrite(c * sp.tanh(u), "recognizing tanh", ("tanh(u) = (eᵘ − e⁻ᵘ)/(eᵘ + e⁻ᵘ)",)),
    )


def _tanh_slope_by_definition(u, c):
    # The quotient rule on (eᵘ − e⁻ᵘ)/(eᵘ + e⁻ᵘ) gives ((eᵘ + e⁻ᵘ)² − (eᵘ − e⁻ᵘ)²)/(eᵘ + e⁻ᵘ)².
    p, m = sp.exp(u) + sp.exp(-u), sp.exp(u) - sp.exp(-u)
    square = sp.Pow(p, 2, evaluate=False)
    return c * (p**2 - m**2) / p**2, (
        Rewrite(c * in_order(sp.Add(fraction(square, square), sp.Mul(-1, fraction(sp.Pow(m, 2, evaluate=False), square),
                                                                         evaluate=False), evaluate=False)),
                "splitting the fraction", ("(a − b)/c = a/c − b/c",)),
        Rewrite(c * in_order(sp.Add(1, sp.Mul(-1, sp.Pow(sp.UnevaluatedExpr(m / p), 2), evaluate=False), evaluate=False)),
                "a square over itself is 1", ("a²/a² = 1 and b²/a² = (b/a)²",)),
        Rewrite(c * (1 - sp.tanh(u) ** 2), "recognizing tanh", ("tanh(u) = (eᵘ − e⁻ᵘ)/(eᵘ + e⁻ᵘ)",)),
    )


#: Forms a reader recognises; a derivative equal to c·F(u) for some u (taken from the
#: exponentials in the formula) and a c free of exp is shown in that form, by its algebra.
FAMILIAR_FORMS = {
    entry.name: entry
    for entry in (
        FamiliarForm("σ(u)", sigmoid, (_sigma_by_e_minus,)),
        FamiliarForm("σ(u)(1 − σ(u))", lambda u: sigmoid(u) * (1 - sigmoid(u)), (_sigma_slope_by_e_minus, _sigma_slope_by_e_plus)),
        FamiliarForm("1 − tanh(u)²", lambda u: 1 - sp.tanh(u) ** 2, (_tanh_slope_by_definition,)),
        FamiliarForm("tanh(u)", sp.tanh, (_tanh_by_definition,)),
    )
}
