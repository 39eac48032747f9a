"""Where the formula language's functions break: relu, |·|, max and min bend, step, H and sign jump.

A finite difference whose stencil reaches across such a break measures the break, not the
derivative; the check (``chainrule.explain``) asks this table which breaks a formula has
and what the rules take at them, so a document can say so instead of reporting a
difference that means nothing. Each break sits where an argument is 0 (for max(a, b) and
min(a, b), where a − b is), and is one table entry: SymPy only.

>>> from sympy import Symbol
>>> from chainrule.functions import relu
>>> w, x, b = (Symbol(n, real=True) for n in "wxb")
>>> [(str(k.argument), k.info.name, k.info.kind) for k in breaks(relu(w*x + b)**2)]
[('b + w*x', 'relu', 'kink')]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from .functions import relu


@dataclass(frozen=True)
class Break:
    """f bends (a kink: its slope jumps) or jumps (its value does) where its argument crosses 0."""

    #: How a sentence names the function: "relu", "max".
    name: str
    #: "kink" or "jump".
    kind: str
    #: Just left and right of 0: the slopes (a kink) or the values (a jump), in the argument.
    sides: tuple[sp.Expr, sp.Expr]
    #: What the rules take at 0, in words: "relu′(0) = 0, as in PyTorch".
    convention: str


@dataclass(frozen=True)
class Kinked:
    """A breaking function as it occurs in a formula: the call, the argument that is 0 at the break, the break."""

    node: sp.Expr
    argument: sp.Expr
    info: Break


def _tie(node: sp.Expr) -> list[sp.Expr]:
    # max(a, b) breaks where a = b; SymPy may hold more than two arguments (max(max(a, b), c)).
    # Its sides are the same in a − b and in b − a, so the difference is written without a leading minus.
    differences = [a - b for i, a in enumerate(node.args) for b in node.args[i + 1 :]]
    return [-d if d.could_extract_minus_sign() else d for d in differences]


def _is_step(node) -> bool:
    return isinstance(node, sp.Heaviside) and node.args[1:] == (sp.S.Zero,)


#: (recognizes the call, the arguments that are 0 at its breaks, the break) — one line per function.
BREAKS: tuple[tuple[Callable[[sp.Basic], bool], Callable[[sp.Expr], list[sp.Expr]], Break], ...] = (
    (lambda n: isinstance(n, relu), lambda n: [n.args[0]], Break("relu", "kink", (sp.S.Zero, sp.S.One), "relu′(0) = 0, as in PyTorch")),
    (lambda n: isinstance(n, sp.Abs), lambda n: [n.args[0]], Break("|·|", "kink", (-sp.S.One, sp.S.One), "|u|′ = sign(u) with sign(0) = 0, as in PyTorch")),
    (lambda n: isinstance(n, sp.Max), _tie, Break("max", "kink", (sp.S.Zero, sp.S.One), "∂max(a, b)/∂a = H(a − b), which is 1/2 at a tie")),
    (lambda n: isinstance(n, sp.Min), _tie, Break("min", "kink", (sp.S.One, sp.S.Zero), "∂min(a, b)/∂a = H(b − a), which is 1/2 at a tie")),
    (_is_step, lambda n: [n.args[0]], Break("step", "jump", (sp.S.Zero, sp.S.One), "step(0) = 0, as relu′(0) = 0 in PyTorch")),
    (lambda n: isinstance(n, sp.Heaviside) and not _is_step(n), lambda n: [n.args[0]],
     Break("H", "jump", (sp.S.Zero, sp.S.One), "H(0) = 1/2, the mean of its one-sided limits")),
    (lambda n: isinstance(n, sp.sign), lambda n: [n.args[0]], Break("sign", "jump", (-sp.S.One, sp.S.One), "sign(0) = 0")),
)  # fmt: skip


def breaks(expr: sp.Basic) -> tuple[Kinked, ...]:
    """Every call in ``expr`` that bends or jumps, once each, in reading order (preorder)."""
    found: dict[tuple[sp.Expr, sp.Expr], Kinked] = {}
    for node in sp.preorder_traversal(expr):
        for recognizes, arguments, info in BREAKS:
            if recognizes(node):
                for argument in arguments(node):
                    found.setdefault((node, argument), Kinked(node, argument, info))
    return tuple(found.values())
