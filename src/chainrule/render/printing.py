"""SymPy printers that write chainrule's notation: w⁽ˡ⁾ⱼₖ, δ⁽ˡ⁾ⱼ, ∂L/∂W⁽ˡ⁾.

The printers are SymPy's own LaTeX and presentation-MathML printers with one more
setting, ``notation`` (a symbol -> ``Notation`` mapping), which ``_print_Symbol`` and
``_print_MatrixSymbol`` consult; symbols without an entry print as SymPy prints them.
Nothing here edits printed strings.

>>> import sympy as sp
>>> from chainrule.graph import Notation
>>> w = sp.Symbol("w1_2_1")
>>> latex(w, {w: Notation("w", "w", 1, (2, 1))})
'w^{(1)}_{21}'
>>> print(mathml(w, {w: Notation("w", "w", 1, (2, 1))}).replace(' stretchy="false" lspace="0" rspace="0"', ""))
<msubsup><mi>w</mi><mrow><mn>2</mn><mn>1</mn></mrow><mrow><mo>(</mo><mn>1</mn><mo>)</mo></mrow></msubsup>
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import sympy as sp
from sympy.printing.conventions import split_super_sub
from sympy.printing.latex import LatexPrinter, _between_two_numbers_p
from sympy.printing.mathml import MathMLPresentationPrinter
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.pretty.pretty_symbology import greek_unicode
from sympy.printing.str import StrPrinter
from sympy.simplify import fraction

from ..graph import Notation
from ..symbols import natural_key


def _indexed_notation(expr, notation: Mapping, show) -> Notation | None:
    """x̂⁽ˡ⁾ₘ of a generic index form: the base's notation with the indices as its subscript.

    The index goes where the symbol's own indices go, inside ∂L/∂(·) for an adjoint.
    """
    n = notation.get(expr.base.label)
    if n is None or n.indices:
        return None
    return replace(n, subscript=",".join(show(i) for i in expr.indices))


def _as_written(expr: sp.Mul) -> tuple[bool, list, list]:
    """An unevaluated product as written: (a leading minus?, numerator factors, denominator factors), in order.

    >>> x, y = sp.symbols("x y")
    >>> _as_written(sp.Mul(sp.Rational(-1, 2), y, sp.Pow(x, -1, evaluate=False), evaluate=False))
    (True, [y], [2, x])
    """
    args = list(expr.args)
    negative = bool(args and args[0].is_Number and args[0].is_negative)
    if negative:
        args[0] = -args[0]
    numer, denom = [], []
    for a in args:
        if a.is_Rational and a != 1 and a.q != 1:
            numer += [sp.Integer(a.p)] if a.p != 1 else []
            denom.append(sp.Integer(a.q))
        elif a.is_Pow and a.exp.is_Rational and a.exp.is_negative:
            denom.append(a.base if a.exp == -1 else sp.Pow(a.base, -a.exp, evaluate=False))
        elif a != 1 or len(args) == 1:
            numer.append(a)
    return negative, numer, denom


def _negated_term(term):
    """A sum's term with a leading minus, as the term it subtracts (−x̂ₙ Σ … → x̂ₙ Σ …), unevaluated."""
    if isinstance(term, sp.Mul) and term.args[0].is_Number and term.args[0].is_negative:
        rest = ((-term.args[0],) if term.args[0] != -1 else ()) + term.args[1:]
        return rest[0] if len(rest) == 1 else sp.Mul(*rest, evaluate=False)
    return None


def ordered_terms(expr: sp.Expr) -> list:
    """A sum's terms as chainrule writes them: higher degree first, indices in numeric order.

    The textbook order: ``w₁₁x₁ + w₁₂x₂ + … + w₁,₁₀x₁₀ + b₁`` (the weighted inputs, their
    indices counted, then the bias, a term of lower degree), ``1 + e⁻ᶻ`` and ``1 − σ``
    (SymPy's own rules for these). It is SymPy's ``grlex`` order over generators sorted by
    ``natural_key``; SymPy's default, ``lex`` over names as strings, wrote ``b + wx``,
    ``aw + b`` and ``x₁ + x₁₀ + x₂``.

    >>> b, w, x, a = sp.symbols("b1 w1 x1 a1")
    >>> ordered_terms(b + w * x), ordered_terms(a * w + b)
    ([w1*x1, b1], [a1*w1, b1])
    >>> ordered_terms(sum(sp.exp(sp.Symbol(f"z{i}")) for i in (1, 2, 10)))
    [exp(z1), exp(z2), exp(z10)]
    """
    args = sp.Add.make_args(expr)
    numbers = [a for a in args if isinstance(a, (sp.Number, sp.NumberSymbol))]
    if len(args) == 2 and len(numbers) == 1 and numbers[0].is_positive:
        # 1 − x, as SymPy writes it (Expr.as_ordered_terms' special case)
        other = args[0] if args[1] is numbers[0] else args[1]
        if isinstance(other, sp.Mul) and other.args[0].is_Number and other.args[0].is_negative:
            return [numbers[0], other]
    terms, gens = expr.as_terms()
    rank = sorted(range(len(gens)), key=lambda i: natural_key(gens[i]))

    def key(term):
        _, ((re_, im), monom, ncpart) = term
        powers = tuple(-monom[i] for i in rank)
        return -sum(monom), powers, tuple(natural_key(e) for e in ncpart), ((bool(im), im), (re_, im))

    return [term for term, _ in sorted(terms, key=key)]


def signed_terms(expr: sp.Expr) -> list[tuple[str, sp.Expr]] | None:
    """A sum's terms in the order the printers write them, each with the sign written before it.

    The first term's sign is "+" unless a form built in order (``UnevaluatedExpr``) starts
    with a minus; its terms stay unevaluated. A term after a "−" that is itself a sum is
    written in parentheses, which the caller must add: printed alone, it would lose them.

    >>> a, b, c = sp.symbols("a b c")
    >>> signed_terms(a - 2 * b)
    [('+', a), ('−', 2*b)]
    >>> signed_terms(a + sp.Mul(-1, b + c, evaluate=False))
    [('+', a), ('−', b + c)]
    """
    if isinstance(expr, sp.UnevaluatedExpr) and isinstance(expr.args[0], sp.Add):
        out = []
        for term in expr.args[0].args:
            negated = _negated_term(term)
            out.append(("−", sp.UnevaluatedExpr(negated)) if negated is not None else ("+", sp.UnevaluatedExpr(term)))
        return out
    if not isinstance(expr, sp.Add):
        return None
    return [("−", -t) if i and t.could_extract_minus_sign() else ("+", t) for i, t in enumerate(ordered_terms(expr))]


def ordered_factors(expr: sp.Mul, notation: Mapping) -> list:
    """A product's factors as chainrule writes them: numbers, then quantities with more indices, then the rest.

    ``w⁽²⁾ⱼₖ a⁽¹⁾ₖ`` and ``wⱼₖ δⱼ``, as the books write them (SymPy's order, by name, wrote
    ``a⁽¹⁾ₖ w⁽²⁾ⱼₖ`` in one layer and ``w⁽¹⁾ⱼₖ xₖ`` in the first); names in numeric order.

    >>> from chainrule.graph import Notation
    >>> a, w = sp.symbols("a1_1 w2_1_1")
    >>> ordered_factors(a * w, {w: Notation("w", "w", 2, (1, 1)), a: Notation("a", "a", 1, (1,))})
    [w2_1_1, a1_1]
    """

    def key(factor):
        n = notation.get(factor.base if factor.is_Pow else factor)
        return (not factor.is_Number, -len(n.indices) if n is not None else 0, natural_key(factor))

    commutative, rest = expr.args_cnc()
    return sorted(commutative, key=key) + rest


class _NaturalOrder:
    """What both printers share: sums in ``ordered_terms`` order, products in ``ordered_factors`` order."""

    def _as_ordered_terms(self, expr, order=None):
        if (order or self._settings["order"]) in ("old", "none") or not isinstance(expr, sp.Add):
            return super()._as_ordered_terms(expr, order=order)
        return ordered_terms(expr)

    def _ordered_factors(self, expr) -> list:
        return ordered_factors(expr, self._settings["notation"])


def notation_latex(n: Notation) -> str:
    # {f'}^{(2)}: a prime is itself a superscript, so the base needs braces.
    core = f"{{{n.base}}}" if "'" in n.base else n.base
    if n.layer is not None:
        core += f"^{{({n.layer})}}"
    if n.indices:
        core += f"_{{{n.separator.join(map(str, n.indices))}}}"
    elif n.subscript is not None:
        core += f"_{{{n.subscript}}}"
    if n.arg is not None:
        core += f"\\left({notation_latex(n.arg)}\\right)"
    if n.of is not None:
        core = f"\\frac{{\\partial {n.of}}}{{\\partial {core}}}"
    return core


#: Functions whose powers are written on their name, sin²(x), as textbooks do; any other
#: function keeps its power outside, relu(u)², since relu²(u) could be read as relu(relu(u)).
FOLDED_POWERS = (
    sp.sin, sp.cos, sp.tan, sp.cot, sp.sec, sp.csc, sp.sinh, sp.cosh, sp.tanh, sp.coth, sp.sech, sp.csch,
)


def _folds(power: sp.Pow) -> bool:
    return isinstance(power.base, FOLDED_POWERS) and power.exp.is_Integer and power.exp > 1


class NotationLatexPrinter(_NaturalOrder, LatexPrinter):
    """SymPy's LaTeX printer, writing chainrule's symbols through the ``notation`` setting."""

    printmethod = "_latex"
    # arcsin, as the MathML printer writes it (SymPy's LaTeX default is asin)
    _default_settings = {**LatexPrinter._default_settings, "notation": {}, "inv_trig_style": "full"}

    def _print_Symbol(self, expr, style="plain"):
        n = self._settings["notation"].get(expr)
        return notation_latex(n) if n is not None else super()._print_Symbol(expr, style)

    def _print_MatrixSymbol(self, expr):
        n = self._settings["notation"].get(expr)
        return notation_latex(n) if n is not None else super()._print_MatrixSymbol(expr)

    def _print_Indexed(self, expr):
        n = _indexed_notation(expr, self._settings["notation"], self._print)
        return notation_latex(n) if n is not None else super()._print_Indexed(expr)

    def _print_UnevaluatedExpr(self, expr):
        # A form built in a textbook's order (the batch-norm steps): print its terms and factors as given.
        return _in_order(self, expr.args[0])

    def _print_Pow(self, expr):
        if expr.base.is_Function and expr.exp.is_Integer and expr.exp > 1 and not _folds(expr):
            return f"{self._print(expr.base)}^{{{self._print(expr.exp)}}}"
        return super()._print_Pow(expr)

    def _print_Add(self, expr, order=None):
        if self._settings["order"] != "none":
            return super()._print_Add(expr, order)
        out = ""
        for i, term in enumerate(expr.args):
            negated = _negated_term(term)
            if i:
                out += " - " if negated is not None else " + "
            elif negated is not None:
                out += "- "
            shown = negated if negated is not None else term
            text = self._print(shown)
            out += f"\\left({text}\\right)" if negated is not None and isinstance(shown, sp.Add) else text
        return out

    def _print_Mul(self, expr):
        if self._settings["order"] == "old" or not isinstance(expr, sp.Mul):
            return super()._print_Mul(expr)
        if self._settings["order"] != "none":
            return self._print_ordered_Mul(expr)
        negative, numer, denom = _as_written(expr)

        def row(factors) -> str:
            return " ".join(f"\\left({self._print(f)}\\right)" if _needs_parens(f, i, len(factors)) else self._print(f) for i, f in enumerate(factors))

        top = row(numer) if numer else "1"
        return ("- " if negative else "") + (f"\\frac{{{top}}}{{{row(denom)}}}" if denom else top)

    def _print_ordered_Mul(self, expr) -> str:
        # SymPy's product, its factors in ordered_factors order; where that is SymPy's order
        # (most products), SymPy's own printer, unevaluated products with their 1s included.
        args = expr.args
        if args[0] is sp.S.One or any(isinstance(a, sp.Number) for a in args[1:]):
            return super()._print_Mul(expr)
        if self._ordered_factors(expr) == list(expr.as_ordered_factors()):
            return super()._print_Mul(expr)
        tex = ""
        if expr.could_extract_minus_sign():
            expr, tex = -expr, "- "
        numer, denom = fraction(expr, exact=True)

        def row(part) -> str:
            factors = self._ordered_factors(part) if isinstance(part, sp.Mul) else [part]
            out = last = ""
            for i, f in enumerate(factors):
                text = self._print(f)
                if self._needs_mul_brackets(f, first=(i == 0), last=(i == len(factors) - 1)):
                    text = f"\\left({text}\\right)"
                if out:
                    between = _between_two_numbers_p[0].search(last) and _between_two_numbers_p[1].match(text)
                    out += self._settings["mul_symbol_latex_numbers"] if between else self._settings["mul_symbol_latex"]
                out, last = out + text, text
            return out

        return tex + (row(numer) if denom is sp.S.One else f"\\frac{{{row(numer)}}}{{{row(denom)}}}")

    def _print_KroneckerDelta(self, expr, exp=None):
        # 𝟏[j = k], not δⱼₖ: δ is the error of a unit (amssymb has no blackboard 1).
        tex = f"\\mathbf{{1}}\\left[{self._print(expr.args[0])} = {self._print(expr.args[1])}\\right]"
        return f"\\left({tex}\\right)^{{{exp}}}" if exp is not None else tex

    def _print_sigmoid(self, expr, exp=None):
        inner = f"\\sigma\\left({self._print(expr.args[0])}\\right)"
        return f"{inner}^{{{exp}}}" if exp is not None else inner

    def _print_xdivy(self, expr, exp=None):
        # x/y (0 where x = 0 is NumPy's business, not the reader's)
        inner = self._print(sp.Mul(expr.args[0], sp.Pow(expr.args[1], -1, evaluate=False), evaluate=False))
        return f"\\left({inner}\\right)^{{{exp}}}" if exp is not None else inner

    def _print_xlogy(self, expr, exp=None):
        inner = self._print(sp.Mul(expr.args[0], sp.log(expr.args[1]), evaluate=False))
        return f"\\left({inner}\\right)^{{{exp}}}" if exp is not None else inner

    def _print_Piecewise(self, expr):
        # "if", as the MathML printer writes it (SymPy's LaTeX says "for").
        rows = [
            f"{self._print(value)} & \\text{{otherwise}}" if condition is sp.true else f"{self._print(value)} & \\text{{if}}\\: {self._print(condition)}"
            for value, condition in expr.args
        ]
        return "\\begin{cases} " + " \\\\".join(rows) + " \\end{cases}"

    def _print_Heaviside(self, expr, exp=None):
        # SymPy writes θ(x). H(x) is ½ at 0; H(x, 0) is 0 there, relu's slope, written step(x).
        name = "\\operatorname{step}" if len(expr.args) == 2 and expr.args[1] == 0 else "H"
        inner = f"{name}\\left({self._print(expr.args[0])}\\right)"
        return f"{inner}^{{{exp}}}" if exp is not None else inner


def _named_function(element) -> bool:
    """Whether a printed factor starts with a function's name of several letters (step(u), log(a))."""
    first = element.firstChild if element.tagName == "mrow" else None
    if first is not None and first.tagName == "msup":
        first = first.firstChild
    text = first.firstChild if first is not None and first.tagName == "mi" else None
    return text is not None and len(text.data) > 1 and element.childNodes.length > 1


class NotationMathMLPrinter(_NaturalOrder, MathMLPresentationPrinter):
    """SymPy's presentation MathML printer, with the ``notation`` setting and MathML Core output."""

    _default_settings = {**MathMLPresentationPrinter._default_settings, "notation": {}, "float_digits": None}

    def _el(self, tag: str, *children, text: str | None = None):
        element = self.dom.createElement(tag)
        if text is not None:
            element.appendChild(self.dom.createTextNode(text))
        for child in children:
            element.appendChild(child)
        return element

    def _notation(self, n: Notation):
        base = self._el("mi", text=n.text)
        subs = [self._el("mn", text=str(i)) for i in n.indices]
        if n.separator:
            subs = [x for i, node in enumerate(subs) for x in ((self._el("mo", text=","), node) if i else (node,))]
        if not subs and n.subscript is not None:
            subs = [self._token(part) for part in re.findall(r"[0-9]+|[A-Za-z]+|[^\sA-Za-z0-9]", n.subscript)]
        sub = subs[0] if len(subs) == 1 else self._el("mrow", *subs) if subs else None
        sup = None
        if n.layer is not None:
            sup = self._el("mrow", self._paren("("), self._el("mn", text=str(n.layer)), self._paren(")"))
        if sub is not None and sup is not None:
            core = self._el("msubsup", base, sub, sup)
        elif sub is not None:
            core = self._el("msub", base, sub)
        elif sup is not None:
            core = self._el("msup", base, sup)
        else:
            core = base
        if n.arg is not None:
            core = self._el("mrow", core, self._el("mo", text="("), self._notation(n.arg), self._el("mo", text=")"))
        if n.of is not None:
            top = self._el("mrow", self._el("mo", text="∂"), self._el("mi", text=n.of))
            core = self._el("mfrac", top, self._el("mrow", self._el("mo", text="∂"), core))
        return core

    def _token(self, part: str):
        if part.isdigit():
            return self._el("mn", text=part)
        if part.isalpha():
            return self._el("mi", text=part)
        return self._el("mo", text="−" if part == "-" else part)

    def _paren(self, text: str):
        # A layer's parentheses are part of a name, not a fence: no stretching, no spacing.
        element = self._el("mo", text=text)
        for attribute, value in (("stretchy", "false"), ("lspace", "0"), ("rspace", "0")):
            element.setAttribute(attribute, value)
        return element

    def _print_Symbol(self, sym, style="plain"):
        n = self._settings["notation"].get(sym)
        if n is not None:
            return self._notation(n)
        if "'" in sym.name:
            # u' names the derivative of a part u: a prime, as LaTeX writes it, not an apostrophe.
            return self._el("mi", text=sym.name.replace("'", "′"))
        name, supers, subs = split_super_sub(sym.name)
        if len(name) > 3 and name.endswith("hat") and not supers and not subs:
            # SymPy's LaTeX printer writes yhat as ŷ (its modifier "hat"); its MathML printer does not.
            return self._el("mover", super()._print_Symbol(sp.Symbol(name[:-3]), style), self._el("mo", text="^"))
        return super()._print_Symbol(sym, style)

    def _print_AppliedUndef(self, e):
        # σ(z): SymPy writes an undefined function's name as is ("sigma").
        name = greek_unicode.get(e.func.__name__, e.func.__name__)
        return self._el("mrow", self._el("mi", text=name), self._paren_comma_separated(*e.args))

    def _print_MatrixSymbol(self, sym):
        n = self._settings["notation"].get(sym)
        return self._notation(n) if n is not None else super()._print_MatrixSymbol(sym)

    def _print_Float(self, e):
        digits = self._settings.get("float_digits")
        return super()._print_Float(e if digits is None else sp.Float(e, digits))

    def _print_UnevaluatedExpr(self, e):
        # A worked step keeps its numbers as given (-0.25 stays -0.25), and a form built in a
        # textbook's order (the batch-norm steps) its terms and factors: print what is inside, as given.
        return _in_order(self, e.args[0])

    def _print_Indexed(self, e):
        n = _indexed_notation(e, self._settings["notation"], lambda i: str(i))
        return self._notation(n) if n is not None else super()._print_Indexed(e)

    def _print_Add(self, expr, order=None):
        if self._settings["order"] != "none":
            return super()._print_Add(expr, order)
        row = self._el("mrow")
        for i, term in enumerate(expr.args):
            negated = _negated_term(term)
            if i or negated is not None:
                row.appendChild(self._el("mo", text="-" if negated is not None else "+"))
            shown = negated if negated is not None else term
            row.appendChild(self._fenced(shown) if negated is not None and isinstance(shown, sp.Add) else self._print(shown))
        return row

    def _print_Mul(self, expr):
        if self._settings["order"] == "old" or not isinstance(expr, sp.Mul):
            return super()._print_Mul(expr)
        if self._settings["order"] != "none":
            return self._print_ordered_Mul(expr)
        negative, numer, denom = _as_written(expr)

        def row(factors):
            return self._el("mrow", *[self._fenced(f) if _needs_parens(f, i, len(factors)) else self._print(f) for i, f in enumerate(factors)])

        top = row(numer) if numer else self._el("mn", text="1")
        body = self._el("mfrac", top, row(denom)) if denom else top
        return self._el("mrow", self._el("mo", text="-"), body) if negative else body

    def _print_ordered_Mul(self, expr):
        # SymPy's MathML product, with two changes that make it agree with the LaTeX printer:
        # e⁻ᶻ stays a factor of the numerator (SymPy's fraction() made −e⁻ᶻ into −1/eᶻ), and
        # the factors come in ordered_factors order.
        mrow = self._el("mrow")
        if expr.could_extract_minus_sign():
            mrow.appendChild(self._el("mo", text="-"))
            expr = -expr
        numer, denom = fraction(expr, exact=True)
        if denom is not sp.S.One:
            mrow.appendChild(self._el("mfrac", self._print(numer), self._print(denom)))
            return mrow
        if not isinstance(expr, sp.Mul):
            mrow.appendChild(self._print(expr))
            return mrow
        coeff, terms = expr.as_coeff_mul()
        factors = self._ordered_factors(sp.Mul._from_args(terms)) if len(terms) > 1 else list(terms)
        if coeff is sp.S.One and len(factors) == 1:
            mrow.appendChild(self._print(factors[0]))
            return mrow
        if coeff != 1:
            mrow.appendChild(self._print(coeff))
        for i, factor in enumerate(factors):
            printed = self.parenthesize(factor, PRECEDENCE["Mul"])
            if i or coeff != 1:
                mrow.appendChild(self._el("mo", text=self.mathml_tag(expr)))
                if _named_function(printed):
                    # LaTeX's \operatorname puts a thin space here; MathML's invisible times does not.
                    space = self._el("mspace")
                    space.setAttribute("width", "0.1667em")
                    mrow.appendChild(space)
            mrow.appendChild(printed)
        return mrow

    def _print_Pow(self, e):
        # sin²(x), as the LaTeX printer writes the power of a function it has no printer of its own for.
        base = e.base
        if _folds(e):
            printed = self._print(base)
            if printed.tagName == "mrow" and printed.firstChild is not None and printed.firstChild.tagName == "mi":
                name = printed.firstChild
                printed.replaceChild(self._el("msup", name.cloneNode(True), self._print(e.exp)), name)
                return printed
        return super()._print_Pow(e)

    def _print_Sum(self, e):
        if self._settings["order"] != "none" or isinstance(e.function, sp.Add):
            return super()._print_Sum(e)
        # Σₘ ∂L/∂x̂ₘ x̂ₘ: a product after the sign needs no parentheses of its own.
        (var, low, high), = e.limits
        under = self._el("munderover", self._el("mo", text="∑"), self._el("mrow", self._print(var), self._el("mo", text="="), self._print(low)), self._print(high))
        return self._el("mrow", under, self._print(e.function))

    def _fenced(self, expr):
        return self._el("mrow", self._el("mo", text="("), self._print(expr), self._el("mo", text=")"))

    def _print_sigmoid(self, e):
        return self._el("mrow", self._el("mi", text="σ"), self._paren_comma_separated(*e.args))

    def _print_Heaviside(self, e):
        name = "step" if len(e.args) == 2 and e.args[1] == 0 else "H"
        return self._el("mrow", self._el("mi", text=name), self._paren_comma_separated(e.args[0]))

    def _print_xdivy(self, e):
        return self._print(sp.Mul(e.args[0], sp.Pow(e.args[1], -1, evaluate=False), evaluate=False))

    def _print_xlogy(self, e):
        return self._print(sp.Mul(e.args[0], sp.log(e.args[1]), evaluate=False))

    def _print_KroneckerDelta(self, e):
        # 𝟏[j = k] (SymPy writes "kroneckerdelta(j, k)"), not δⱼₖ: δ is the error of a unit.
        one = self._el("mn", text="\U0001d7cf")
        inside = self._el("mrow", self._print(e.args[0]), self._el("mo", text="="), self._print(e.args[1]))
        return self._el("mrow", one, self._el("mo", text="["), inside, self._el("mo", text="]"))

    def _print_DiracDelta(self, e):
        # δ⁽ᵏ⁾(x), the k-th derivative, as the LaTeX printer writes it.
        name = self._el("mi", text="δ")
        if len(e.args) == 2 and e.args[1] != 0:
            name = self._el("msup", name, self._el("mrow", self._paren("("), self._print(e.args[1]), self._paren(")")))
        return self._el("mrow", name, self._paren_comma_separated(e.args[0]))

    def _print_Derivative(self, e):
        # SymPy writes d/dx with &dd; (U+2146), which common math fonts lack; books write d.
        element = super()._print_Derivative(e)
        # ...and ∂²/∂²x, where the LaTeX printer (and every book) writes ∂²/∂x²: the power goes on the variable.
        below = element.firstChild.childNodes[1]
        for power in [c for c in below.childNodes if c.tagName == "msup" and c.firstChild.tagName == "mo"]:
            variable, count = power.nextSibling, power.childNodes[1]
            below.replaceChild(power.firstChild.cloneNode(True), power)
            below.replaceChild(self._el("msup", variable.cloneNode(True), count.cloneNode(True)), variable)
        for mo in list(element.getElementsByTagName("mo")):
            if mo.firstChild is not None and mo.firstChild.data == "&dd;":
                # an upright d set as a letter, without the space an operator gets
                d = self._el("mi", text="d")
                d.setAttribute("mathvariant", "normal")
                mo.parentNode.replaceChild(d, mo)
        # ...and d/dx a + b, where the LaTeX printer writes d/dx (a + b).
        if precedence(e.expr) < PRECEDENCE["Mul"] and element.childNodes:
            body = element.childNodes[-1]
            element.replaceChild(self._el("mrow", self._el("mo", text="("), body.cloneNode(True), self._el("mo", text=")")), body)
        return element

    def _print_Exp1(self, e):
        # &ExponentialE; (U+2147) is missing from common fonts; textbooks write e.
        return self._el("mi", text="e")

    def _print_Piecewise(self, expr):
        # SymPy writes "piecewise(...)"; readers expect a brace with one row per case.
        table = self._el("mtable")
        for value, condition in expr.args:
            cond = self._el("mtext", text="otherwise") if condition is sp.true else self._print(condition)
            row = self._el(
                "mtr",
                self._el("mtd", self._print(value)),
                self._el("mtd", self._el("mtext", text="if\u00a0") if condition is not sp.true else self._el("mrow"), cond),
            )
            table.appendChild(row)
        return self._el("mrow", self._el("mo", text="{"), table)


def _needs_parens(factor, position: int, count: int) -> bool:
    """A factor of a product of ``count`` as written: a sum, or a negative product after the first factor, gets parentheses."""
    if count == 1:
        return False
    if isinstance(factor, sp.Add):
        return True
    return position > 0 and (factor.is_Number and factor.is_negative or _negated_term(factor) is not None)


def _in_order(printer, expr):
    """``expr`` printed with its terms and factors in the order they were built (``order="none"``)."""
    before = printer._settings["order"]
    printer._settings["order"] = "none"
    try:
        return printer._print(expr)
    finally:
        printer._settings["order"] = before


def latex(expr, notation: Mapping = {}, **settings) -> str:
    return NotationLatexPrinter({"notation": notation, **settings}).doprint(expr)


_TALL = ("mfrac", "munder", "mover", "munderover", "mtable")


def _flat_parens(element) -> None:
    # Chromium draws a stretchy ( with room around it even beside a single letter ("sin ( x )");
    # parentheses around content no taller than a line need not stretch at all.
    if element.nodeType != element.ELEMENT_NODE:
        return
    kids = [c for c in element.childNodes if c.nodeType == c.ELEMENT_NODE]
    if (
        element.tagName == "mrow"
        and len(kids) >= 2
        and kids[0].tagName == "mo"
        and kids[-1].tagName == "mo"
        and kids[0].firstChild is not None
        and kids[0].firstChild.data == "("
        and kids[-1].firstChild is not None
        and kids[-1].firstChild.data == ")"
        and not any(kid.tagName in _TALL or kid.getElementsByTagName(tag) for kid in kids for tag in _TALL)
    ):
        for paren in (kids[0], kids[-1]):
            paren.setAttribute("stretchy", "false")
    for kid in kids:
        _flat_parens(kid)


def _escaped(element) -> None:
    # SymPy's MathML writer does not escape text (so that its entities pass through):
    # x < 0 came out as <mo><</mo>.
    for child in element.childNodes:
        if child.nodeType == child.TEXT_NODE:
            child.data = child.data.replace("<", "&lt;").replace(">", "&gt;")
        else:
            _escaped(child)


def _true_minus(element) -> None:
    # SymPy puts ASCII "-" in <mo> and before a negative number in <mn>; MathML Core draws it as a hyphen, so use U+2212.
    if element.nodeType == element.ELEMENT_NODE and element.tagName in ("mo", "mn"):
        for child in element.childNodes:
            if child.nodeType == child.TEXT_NODE and (child.data == "-" or element.tagName == "mn" and child.data.startswith("-")):
                child.data = "\u2212" + child.data[1:]
    for child in element.childNodes:
        _true_minus(child)


def mathml_printer(notation: Mapping, **settings) -> Callable[[Any], str]:
    """One printer for many expressions (a document's worth): expr -> MathML text."""
    printer = NotationMathMLPrinter({"notation": notation, **settings})

    def show(expr) -> str:
        element = printer._print(sp.Integer(expr) if isinstance(expr, int) else expr)
        _true_minus(element)
        _flat_parens(element)
        _escaped(element)
        return element.toxml()

    return show


def latex_printer(notation: Mapping, **settings) -> Callable[[Any], str]:
    """One printer for many expressions: expr -> LaTeX text."""
    return NotationLatexPrinter({"notation": notation, **settings}).doprint


class _SharingStrPrinter(StrPrinter):
    """``str(expr)``, printing each shared subexpression once: see ``plain_printer``."""

    def __init__(self) -> None:
        super().__init__({"order": None})  # the settings str() itself uses
        self._printed: dict = {}

    def _print(self, expr, **kwargs) -> str:
        if kwargs:
            return super()._print(expr, **kwargs)
        # A Float prints its trailing zeros only at the top level (full_prec="auto").
        key = (expr, self._print_level > 0)
        if key not in self._printed:
            self._printed[key] = super()._print(expr)
        return self._printed[key]


def plain_printer() -> Callable[[Any], str]:
    """One printer for many expressions: expr -> exactly ``str(expr)``.

    The gradients of a wide layer share their δs: printed with ``str``, a 64-32-10 network's
    2410 closed forms took seconds. This printer remembers what it printed, for one call.

    >>> x, y = sp.symbols("x y")
    >>> show = plain_printer()
    >>> show(sp.Float(2.5) * (x + y) ** 2) == str(sp.Float(2.5) * (x + y) ** 2), show(sp.Float(2.0))
    (True, '2.00000000000000')
    """
    return _SharingStrPrinter().doprint


def mathml(expr, notation: Mapping = {}, **settings) -> str:
    return mathml_printer(notation, **settings)(expr)


def partial_latex(of: str, wrt: str) -> str:
    """∂of/∂wrt as a LaTeX fraction, from the printed symbols."""
    return f"\\frac{{\\partial {of}}}{{\\partial {wrt}}}"


def partial_mathml(of: str, wrt: str) -> str:
    """∂of/∂wrt as a MathML fraction, from the printed symbols."""
    return f"<mfrac><mrow><mo>∂</mo>{of}</mrow><mrow><mo>∂</mo>{wrt}</mrow></mfrac>"


_SUPERSCRIPTS = str.maketrans("0123456789()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾")
_SUBSCRIPTS = str.maketrans("0123456789,", "₀₁₂₃₄₅₆₇₈₉‚")


def text_name(symbol, notation: Mapping) -> str:
    """A symbol in plain Unicode, for places without math layout (SVG labels, titles).

    >>> import sympy as sp
    >>> from chainrule.graph import Notation
    >>> w = sp.Symbol("w2_1_3")
    >>> text_name(w, {w: Notation("w", "w", 2, (1, 3))})
    'w⁽²⁾₁₃'
    """
    n = notation.get(symbol)
    if n is None:
        return str(symbol)
    sep = n.separator
    core = n.text
    if n.layer is not None:
        core += f"({n.layer})".translate(_SUPERSCRIPTS)
    core += sep.join(map(str, n.indices)).translate(_SUBSCRIPTS)
    return core
