"""How a quantity is written and how it is defined: ``Notation`` and ``Node``.

The graph, the layer kinds and the printers share these two records; they hold SymPy
objects and plain text only.

>>> Notation("w", "w", 2, (1, 3)).layer
2
>>> superscript(12)
'¹²'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp
from sympy.core.sorting import default_sort_key


@dataclass(frozen=True)
class Notation:
    """How one symbol is written: a base letter, an optional layer superscript, indices."""

    base: str  # LaTeX: "w", "\\delta", "\\mathcal{L}"
    text: str  # Unicode: "w", "δ", "L"
    layer: int | None = None
    indices: tuple[int, ...] = ()
    #: Written as ∂of/∂(this symbol): for vectors of gradients such as ∂L/∂W⁽ˡ⁾.
    of: str | None = None
    #: Written as this symbol applied to ``arg``: f′⁽ˡ⁾(z⁽ˡ⁾).
    arg: Notation | None = None
    #: A subscript that is not a unit number, in plain text: the "t-1" of θₜ₋₁ (optimizers).
    subscript: str | None = None
    #: The first index is the example of a batch (x₂,₁ is input 1 of example 2): indices
    #: are then always separated by commas.
    batched: bool = False

    @property
    def separator(self) -> str:
        # w_{12} is unambiguous only while every index has one digit; past 9, use commas.
        return "," if self.batched or any(i > 9 for i in self.indices) else ""


@dataclass(frozen=True)
class Node:
    """A computed quantity: ``symbol = expr``, with ``expr`` written in parent symbols."""

    symbol: sp.Symbol
    expr: sp.Expr
    parents: tuple[sp.Symbol, ...]
    #: The definition as a reader sees it (σ(z) rather than 1/(1+exp(-z))).
    display: sp.Expr
    #: Textbook forms of ∂symbol/∂parent, in forward symbols, where the catalog has them.
    forms: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()
    #: The same value computed without overflow, for NumPy (log-sum-exp for softmax
    #: cross-entropy); ``None`` when ``expr`` itself is safe to evaluate.
    numeric: sp.Expr | None = None


def superscript(number: int) -> str:
    """A layer number (or a power of ten) as Unicode superscript digits, for plain text: the 3 of a⁽³⁾, the −3 of 10⁻³."""
    return str(number).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _natural(key):
    """A sort key with every name in it split into text and numbers, so that x₂ sorts before x₁₀."""
    if isinstance(key, str):
        return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", key)))
    if isinstance(key, tuple):
        return tuple(_natural(k) for k in key)
    return key


def natural_key(expr) -> tuple:
    """SymPy's ``default_sort_key`` with names compared by their numbers: x2 before x10.

    >>> x2, x10 = sp.symbols("x2 x10")
    >>> sorted([x10, x2], key=natural_key)
    [x2, x10]
    """
    return _natural(default_sort_key(expr))
