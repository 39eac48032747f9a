"""How wide a formula prints, in ems of display math: the measure a layout decides by.

An estimate from the expression tree, made the way SymPy's printers write it: a product
with a negative power is a fraction (as wide as the wider of its two parts), a power
raises its exponent at 70 % size, a function is its name and parentheses around its
arguments. Measured against pdflatex (Computer Modern, display style) on the Hessians of the
explain documents it errs wide, by up to a quarter: enough to tell a matrix that fits
a line from one that does not, and never the other way round. The same number decides for every format, so HTML, LaTeX and
Markdown lay a document out alike.

>>> x, y = sp.symbols("x y")
>>> round(printed_width(x / (1 + y**2)), 1)
3.0
>>> printed_width(sp.Matrix([[x, y], [y, x]])) > printed_width(x) * 2
True
"""

from __future__ import annotations

import sympy as sp
from sympy.core.function import AppliedUndef

#: ems of one character: an italic letter, a digit, an upright letter of a function name.
LETTER, DIGIT, UPRIGHT = 0.55, 0.5, 0.5
#: A binary operator with the spaces around it (+, −, =), and a pair of parentheses.
OPERATOR, PARENS = 1.2, 0.8
#: Superscripts and subscripts are set at this fraction of the size.
SCRIPT = 0.7
#: Space between the columns of a matrix, and its two brackets.
COLUMN_GAP, BRACKETS = 1.0, 1.0

_FUNCTION_NAMES = {"sigmoid": "σ", "Heaviside": "H", "DiracDelta": "δ"}


def printed_width(expr) -> float:
    """About how wide ``expr`` prints in display math, in ems of its font size."""
    return _width(sp.sympify(expr))


def matrix_width(rows) -> float:
    """The width of a matrix whose cells are set in display style: its widest cell per column, gaps and brackets."""
    columns = list(zip(*rows))
    return sum(max(printed_width(c) for c in column) for column in columns) + COLUMN_GAP * (len(columns) - 1) + BRACKETS


def _name(text: str) -> float:
    return LETTER * len(text) if len(text) == 1 else UPRIGHT * len(text)


def _symbol(s: sp.Symbol) -> float:
    from sympy.printing.conventions import split_super_sub

    name, supers, subs = split_super_sub(s.name)
    scripts = [*supers, *subs]
    return _name(name) + SCRIPT * sum(_name(t) for t in scripts)


def _number(n: sp.Number) -> float:
    if n.is_Rational and n.q != 1:
        return max(_number(sp.Integer(abs(n.p))), _number(sp.Integer(n.q))) + 0.2 + (OPERATOR * 0.8 if n < 0 else 0)
    text = str(n)
    return DIGIT * len(text.lstrip("-")) + (OPERATOR * 0.8 if text.startswith("-") else 0)


def _fenced(e: sp.Basic) -> float:
    return _width(e) + (PARENS if isinstance(e, (sp.Add, sp.Mul)) or (e.is_Number and e < 0) else 0)


def _width(e: sp.Basic) -> float:
    if isinstance(e, sp.MatrixBase):
        return matrix_width(e.tolist())
    if isinstance(e, sp.Symbol):
        return _symbol(e)
    if e is sp.E or e is sp.pi:
        return LETTER
    if isinstance(e, sp.Number):
        return _number(e)
    if isinstance(e, sp.Add):
        return sum(_width(t) for t in e.args) + OPERATOR * (len(e.args) - 1)
    if isinstance(e, sp.Mul):
        numer, denom = sp.fraction(e, exact=True)
        coefficient = numer.as_coeff_Mul()[0] if numer.is_Mul else sp.S.One
        sign = OPERATOR * 0.8 if coefficient.is_negative else 0.0
        if denom != 1:
            top = _width(-numer) if coefficient.is_negative else _width(numer)
            return sign + max(top, _width(denom)) + 0.4
        factors = sp.Mul.make_args(-e if coefficient.is_negative else e)
        return sign + sum(_fenced(f) for f in factors) + 0.15 * (len(factors) - 1)
    if isinstance(e, sp.Pow):
        base, exp = e.args
        if exp.is_Rational and exp.is_negative:
            return max(DIGIT, _width(base ** -exp)) + 0.4
        if exp == sp.S.Half:
            return _width(base) + 1.0
        if isinstance(e, sp.exp) or base is sp.E:
            return LETTER + SCRIPT * _width(exp)
        inner = _width(base) + (PARENS if isinstance(base, (sp.Add, sp.Mul, sp.Pow, sp.Function)) else 0)
        return inner + SCRIPT * _width(exp)
    if isinstance(e, sp.exp):
        return LETTER + SCRIPT * _width(e.args[0])
    if isinstance(e, sp.Abs):
        return _width(e.args[0]) + 0.6
    if isinstance(e, sp.Derivative):
        order = sum(n for _, n in e.variable_count)
        variables = sum(_width(v) + UPRIGHT + (SCRIPT * DIGIT if n > 1 else 0) for v, n in e.variable_count)
        return max(UPRIGHT + (SCRIPT * DIGIT if order > 1 else 0), variables) + 0.4 + _fenced(e.expr)
    if isinstance(e, sp.Piecewise):
        return 1.0 + max(_width(v) for v, _ in e.args) + 1.0 + max(_width(c) if c is not sp.true else 3.0 for _, c in e.args)
    if isinstance(e, (sp.Function, AppliedUndef)):
        name = "step" if e.func is sp.Heaviside and e.args[1:] == (0,) else _FUNCTION_NAMES.get(type(e).__name__, type(e).__name__)
        # Heaviside's second argument is its value at 0: the name (H or step) says it, not a printed argument
        shown = e.args[:1] if isinstance(e, sp.Heaviside) else e.args
        return _name(name) + PARENS + sum(_width(a) for a in shown) + 0.5 * (len(shown) - 1)
    if isinstance(e, sp.core.relational.Relational):
        return _width(e.lhs) + OPERATOR + _width(e.rhs)
    return UPRIGHT * len(str(e))
