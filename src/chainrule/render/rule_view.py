"""How a rule tree reads: one line per step, substeps nested under the step that uses them.

A step with substeps reads as its rule ("product rule, with u = x², v = sin(x): d/dx (u·v) =
u′·v + u·v′"), then its substeps (each saying which part it differentiates: "u′, power
rule"), then the parts plugged in (u′·v + u·v′ = 2x·sin(x) + x²·cos(x)), then the conclusion
("so d/dx f = …"); a step without substeps is one line, "d/dx f = f′ (power rule)". A step
that rewrites a derivative already found (a simplification, a familiar form) comes after
the tree that found it, as a teacher writes it. Dispatch is on the rule's class name, like
SymPy's printers: ``_given_<ClassName>`` says what a rule introduces (the u of the chain
rule) and ``_working_<ClassName>`` the lines of algebra after its substeps; every other
rule needs nothing of its own. Nothing here computes math: every expression comes from the
rule tree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp

from ..algebra import rewritten
from ..rules import Rule, children

_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


@dataclass(frozen=True)
class Step:
    """One step as documents show it."""

    rule: str  # the class name, for a CSS class and a JSON key
    title: str
    identity: str
    #: d/dx f, unevaluated (for a line of algebra: the expression it rewrites).
    lhs: sp.Expr
    result: sp.Expr
    #: Pieces that say what the rule introduces: ("with ", u, " = ", inner).
    given: tuple = ()
    substeps: tuple[Step, ...] = ()
    #: Lines of algebra after the substeps: the parts plugged in, the way to a familiar form.
    working: tuple[Step, ...] = ()
    #: True for a step that rewrites its substep's result (simplification, familiar form):
    #: it reads after that substep's tree, not before it.
    follows: bool = False


def derivative_of(rule: Rule) -> sp.Expr:
    return sp.Derivative(rule.expr, rule.variable, evaluate=False)


def _name(symbol: sp.Symbol) -> str:
    """u, or u₁ for a name u_1, in plain text."""
    base, _, sub = symbol.name.partition("_")
    return base + sub.translate(_SUBSCRIPTS)


def _named(names, parts) -> tuple:
    """("with ", u, " = ", x, ", ", v, " = ", 1 + y²): what each part of a product or quotient is called."""
    out: list = ["with "]
    for i, (name, part) in enumerate(zip(names, parts)):
        out += [", "] if i else []
        out += [name, " = ", part]
    return tuple(out)


def _given_ChainRule(rule) -> tuple:
    return ("with ", rule.u, " = ", rule.inner)


def _given_FamiliarFormRule(rule) -> tuple:
    return ("writing it as ", rule.name)


def _given_ConstantMultipleRule(rule) -> tuple:
    return ("the constant ", rule.constant, " stays")


def _given_QuotientRule(rule) -> tuple:
    return _named(rule.names, (rule.numerator, rule.denominator))


def _given_ProductRule(rule) -> tuple:
    return _named(rule.names, rule.factors)


def _plugged_in(rule) -> tuple[Step, ...]:
    """The rule's formula in the parts' names, and the same with the parts and their derivatives put in."""
    if len(rule.names) != len(children(rule)):
        return ()  # a rule made without names for its parts
    names = ", ".join(_name(n) for n in rule.names)
    why = f"{names} and their derivatives {', '.join(_name(n) + '′' for n in rule.names)} from the lines above"
    return (Step("PluggedIn", "plugging in", why, rule.in_names, rule.plugged),)


_working_QuotientRule = _working_ProductRule = _plugged_in


def _working_FamiliarFormRule(rule) -> tuple[Step, ...]:
    return tuple(
        Step("Rewrite", step.title, "".join(p for p in step.why if isinstance(p, str)), before, step.expr)
        for before, step in rewritten(rule.substep.result, rule.algebra)
    )


def _parts(rule: Rule) -> tuple[str, ...]:
    """What each substep differentiates, when the rule names its parts: ("u′", "v′")."""
    names = getattr(rule, "names", ())
    return tuple(f"{_name(n)}′" for n in names) if len(names) == len(children(rule)) else ()


def step_view(rule: Rule, part: str = "") -> Step:
    """The view of a rule tree, substeps first-to-last as the rule uses them.

    ``part`` names what the step differentiates for the rule above it ("u′").
    """
    kind = type(rule).__name__
    given = globals().get(f"_given_{kind}")
    working = globals().get(f"_working_{kind}")
    subs = children(rule)
    parts = _parts(rule) or ("",) * len(subs)
    return Step(
        kind,
        f"{part}, {rule.title}" if part else rule.title,
        (rule.identity or "").strip(),
        derivative_of(rule),
        rule.result,
        given(rule) if given is not None else (),
        tuple(step_view(child, p) for child, p in zip(subs, parts)),
        working(rule) if working is not None else (),
        type(rule).rewrites,
    )


def flatten(step: Step, depth: int = 0) -> list[tuple[int, Step]]:
    """Every step of the rule tree with its depth, root first (for JSON and plain lists).

    The root carries the final result, a simplification or familiar form included; documents
    read such a step after its tree instead (``lines``).
    """
    out = [(depth, step)]
    for sub in step.substeps:
        out.extend(flatten(sub, depth + 1))
    return out


@dataclass(frozen=True)
class Line:
    """One line of a tree as documents print it, indented by ``depth``.

    ``kind`` is "rule" (a step that has substeps: its rule and identity), "leaf" (a step
    without substeps, d/dx f = f′ and its rule, or a line of algebra, before = after and
    why) or "so" (the conclusion after substeps).
    Lines rather than nested lists, because LaTeX refuses lists nested more than a few deep.
    """

    depth: int
    kind: str
    step: Step


def lines(step: Step, depth: int = 0) -> list[Line]:
    """The lines of a tree: each rule, its substeps and working one deeper, then "so"; a
    simplification after the tree it shortens, as "before = after (simplification)"."""
    if step.follows:
        (sub,) = step.substeps
        out = lines(sub, depth)
        if not (step.working or step.given):
            # simplification: the longer form found above, then the shorter one
            return [*out, Line(depth, "leaf", replace(step, lhs=sub.result))]
        return [*out, *_with_working(step, depth)]
    if not step.substeps:
        return [Line(depth, "leaf", step)]
    out = [Line(depth, "rule", step)]
    for sub in step.substeps:
        out.extend(lines(sub, depth + 1))
    out.extend(Line(depth + 1, "leaf", w) for w in step.working)
    out.append(Line(depth, "so", step))
    return out


def _with_working(step: Step, depth: int) -> list[Line]:
    return [Line(depth, "rule", step), *(Line(depth + 1, "leaf", w) for w in step.working), Line(depth, "so", step)]
