"""The "Notation" note of a document: each special function that occurs in it, defined once.

A reader meets H(x), step(x), σ(x) or δ(x) in a derivative and needs to know what they are,
and that H(0) = 1/2 while step(0) = 0. The note is data: ``glossary`` walks the expressions
a document shows and returns one ``Definition`` per function found, in the table's order;
the templates print each definition's equations with the same printers as the rest of the
document, so the note writes a function exactly as the formulas do. SymPy only.

Any document can have one: pass every expression it shows (a rule tree's steps through
``expressions_of``).

>>> from sympy import Heaviside, Symbol
>>> from chainrule.functions import relu
>>> x = Symbol("x", real=True)
>>> [d.name for d in glossary([relu(x) * Heaviside(x, 0), Heaviside(x)])]
['relu', 'step', 'H']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import sympy as sp
from sympy.core.function import AppliedUndef

from .functions import logcosh, logsumexp, relu, sigmoid, softplus
from .rules import children

_U = sp.Symbol("u", real=True)
_V = sp.Symbol("v", real=True)


@dataclass(frozen=True)
class Definition:
    """What a special function is: its equations (lhs, rhs), and a sentence on why it is there."""

    name: str
    equations: tuple[tuple[sp.Expr, sp.Expr], ...]
    words: str


def _is_step(node) -> bool:
    return isinstance(node, sp.Heaviside) and node.args[1:] == (sp.S.Zero,)


def _named(name: str) -> Callable[[sp.Basic], bool]:
    # an undefined function a catalog shows by name, such as ReLU(z)
    return lambda node: isinstance(node, AppliedUndef) and node.func.__name__ == name


def _cases(*pairs) -> sp.Piecewise:
    return sp.Piecewise(*pairs, evaluate=False)


#: (recognizes a call, its definition) — one line per function, in the order the note lists them.
GLOSSARY: tuple[tuple[Callable[[sp.Basic], bool], Definition], ...] = (
    (lambda n: isinstance(n, sigmoid), Definition(
        "sigma", ((sigmoid(_U), 1 / (1 + sp.exp(-_U))),), "the logistic sigmoid; its derivative is σ(u)·(1 − σ(u))")),
    (lambda n: isinstance(n, softplus), Definition(
        "softplus", ((softplus(_U), sp.log(1 + sp.exp(_U))),), "a smooth relu; its derivative is σ(u)")),
    (lambda n: isinstance(n, relu) or _named("ReLU")(n), Definition(
        "relu", ((relu(_U), sp.Max(_U, 0)),), "the rectified linear unit; it has a kink at 0, where the rules take relu′(0) = 0, as PyTorch does")),
    (_is_step, Definition(
        "step", ((sp.Heaviside(_U, 0), _cases((0, _U <= 0), (1, True))),), "the unit step that is 0 at 0: the slope of relu, relu′(0) = 0 as in PyTorch")),
    (lambda n: isinstance(n, sp.Heaviside) and not _is_step(n), Definition(
        "H", ((sp.Heaviside(_U), _cases((0, _U < 0), (sp.S.Half, sp.Eq(_U, 0)), (1, True))),),
        "Heaviside's step, 1/2 at 0 (the mean of its one-sided limits): SymPy's slope of max and min, ∂max(u, v)/∂u = H(u − v), so a tie shares the slope equally")),
    (lambda n: isinstance(n, sp.sign), Definition(
        "sign", ((sp.sign(_U), _cases((-1, _U < 0), (0, sp.Eq(_U, 0)), (1, True))),), "the sign; the slope of |u|, with sign(0) = 0 as in PyTorch")),
    (lambda n: isinstance(n, sp.DiracDelta), Definition(
        "delta", ((sp.DiracDelta(_U), _cases((0, sp.Ne(_U, 0)), (sp.oo, True))),),
        "Dirac's delta, the slope of a step: 0 away from the jump, with no finite value at it (and δ′ its derivative)")),
    (lambda n: isinstance(n, sp.erf), Definition(
        "erf", ((sp.Derivative(sp.erf(_U), _U), 2 * sp.exp(-(_U**2)) / sp.sqrt(sp.pi)),),
        "the error function: it is 0 at 0 and rises from −1 to 1 with this slope")),
    (lambda n: isinstance(n, logsumexp), Definition(
        "logsumexp", ((logsumexp(_U, _V), sp.log(sp.exp(_U) + sp.exp(_V))),),
        "and so for any number of arguments: the log of softmax's denominator, computed without overflow")),
    (lambda n: isinstance(n, logcosh), Definition(
        "logcosh", ((logcosh(_U), sp.log(sp.cosh(_U))),), "computed without overflow where cosh is too large for a float")),
)  # fmt: skip


def glossary(expressions: Iterable[sp.Basic]) -> tuple[Definition, ...]:
    """The definitions of the special functions that occur in ``expressions``, in the table's order."""
    nodes = {node for e in expressions for node in sp.preorder_traversal(e)}
    return tuple(definition for recognizes, definition in GLOSSARY if any(recognizes(n) for n in nodes))


def expressions_of(rule) -> Iterator[sp.Basic]:
    """Every expression a rule tree (``chainrule.rules``) shows: each step's fields and result.

    >>> from sympy import Symbol, sin
    >>> from chainrule.rules import derivative_steps
    >>> x = Symbol("x", real=True)
    >>> sorted(map(str, set(expressions_of(derivative_steps(sin(x), x)))))
    ['cos(x)', 'sin(x)', 'x']
    """
    yield rule.result
    for f in dataclasses.fields(rule):
        value = getattr(rule, f.name)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, sp.Basic):
                yield item
    for child in children(rule):
        yield from expressions_of(child)
