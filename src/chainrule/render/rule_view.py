"""How a rule tree reads: one line per step, substeps nested under the step that uses them.

A step with substeps reads as its rule ("product rule: d/dx (u·v) = u′·v + u·v′"), then its
substeps, then the conclusion ("so d/dx f = …"); a step without substeps is one line,
"d/dx f = f′ (power rule)". Dispatch is on the rule's class name, like SymPy's printers:
``_given_<ClassName>`` says what a rule introduces (the u of the chain rule), and every
other rule needs nothing of its own. Nothing here computes math: results come from the
rule tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..rules import Rule, children


@dataclass(frozen=True)
class Step:
    """One step as documents show it."""

    rule: str  # the class name, for a CSS class and a JSON key
    title: str
    identity: str
    #: d/dx f, unevaluated.
    lhs: sp.Expr
    result: sp.Expr
    #: Pieces that say what the rule introduces: ("with ", u, " = ", inner).
    given: tuple = ()
    substeps: tuple[Step, ...] = ()


def derivative_of(rule: Rule) -> sp.Expr:
    return sp.Derivative(rule.expr, rule.variable, evaluate=False)


def _given_ChainRule(rule) -> tuple:
    return ("with ", rule.u, " = ", rule.inner)


def _given_FamiliarFormRule(rule) -> tuple:
    return ("recognizing ", rule.name)


def _given_ConstantMultipleRule(rule) -> tuple:
    return ("the constant ", rule.constant, " stays")


def step_view(rule: Rule) -> Step:
    """The view of a rule tree, substeps first-to-last as the rule uses them."""
    given = globals().get(f"_given_{type(rule).__name__}")
    return Step(
        type(rule).__name__,
        rule.title,
        (rule.identity or "").strip(),
        derivative_of(rule),
        rule.result,
        given(rule) if given is not None else (),
        tuple(step_view(child) for child in children(rule)),
    )


def flatten(step: Step, depth: int = 0) -> list[tuple[int, Step]]:
    """Every step with its depth, in reading order (for JSON and plain lists)."""
    out = [(depth, step)]
    for sub in step.substeps:
        out.extend(flatten(sub, depth + 1))
    return out


@dataclass(frozen=True)
class Line:
    """One line of a tree as documents print it, indented by ``depth``.

    ``kind`` is "rule" (a step that has substeps: its rule and identity), "leaf" (a step
    without substeps: d/dx f = f′ and its rule) or "so" (the conclusion after substeps).
    Lines rather than nested lists, because LaTeX refuses lists nested more than a few deep.
    """

    depth: int
    kind: str
    step: Step


def lines(step: Step, depth: int = 0) -> list[Line]:
    if not step.substeps:
        return [Line(depth, "leaf", step)]
    out = [Line(depth, "rule", step)]
    for sub in step.substeps:
        out.extend(lines(sub, depth + 1))
    out.append(Line(depth, "so", step))
    return out
