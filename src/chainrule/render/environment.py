"""Jinja environments, one per output format, and the filters templates format math with.

Templates receive data (a Derivation, a WorkedExample) and only format it: ``math`` prints
an expression, ``partial`` writes ∂of/∂wrt, ``sym`` a symbol, ``num`` a number. Every
other string a template outputs is escaped for its format by ``finalize`` (HTML through
autoescape), so a title from a spec file is always text, never markup or TeX.
"""

from __future__ import annotations

import math as _math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import sympy as sp
from markupsafe import Markup
from sympy.printing.conventions import requires_partial
from sympy.simplify import fraction

from ..derive import Partial
from . import printing
from .steps import Call, Number, Op, written_size
from .summary import More

#: How templates tell the pieces of a row apart: ``{% if p is op %}``.
PIECE_TESTS = {
    "op": lambda p: isinstance(p, Op),
    "call": lambda p: isinstance(p, Call),
    "number": lambda p: isinstance(p, Number),
    "partial": lambda p: isinstance(p, Partial),
    "text": lambda p: isinstance(p, str),
    "run": lambda p: isinstance(p, tuple),
    # A line of a table standing for the rows a summary leaves out.
    "more": lambda p: isinstance(p, More),
    # The pieces of a long formula broken across lines (``atoms``).
    "fence": lambda p: isinstance(p, Fence),
    "operator": lambda p: isinstance(p, Operator),
}


def template_dir() -> Path:
    """``chainrule/templates`` in an installed wheel, else ``templates/`` of the source tree."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "templates", package.parent.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"chainrule's templates are missing: looked in {package / 'templates'}")


class TeX(str):
    """A string that is already LaTeX; ``finalize`` passes it through unescaped."""


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "%": r"\%",
    "~": r"\textasciitilde{}",
    # The few non-Latin characters chainrule's own prose uses, as pdflatex can set them.
    "δ": r"\ensuremath{\delta}",
    "σ": r"\ensuremath{\sigma}",
    "η": r"\ensuremath{\eta}",
    "∂": r"\ensuremath{\partial}",
    "−": r"\ensuremath{-}",
    "·": r"\ensuremath{\cdot}",
    "∘": r"\ensuremath{\circ}",
    "…": r"\dots{}",
    "—": "---",
    "–": "--",
}


# pdflatex sets text in the OT1 encoding here (T1 would need fonts that a basic TeX
# install lacks): it builds accented letters from a base letter and an accent, has a few
# letters of its own, and takes <, > and | from the math fonts.
_OT1_ACCENTS = {
    0x300: "`", 0x301: "'", 0x302: "^", 0x303: "~", 0x304: "=", 0x306: "u",
    0x307: ".", 0x308: '"', 0x30A: "r", 0x30B: "H", 0x30C: "v", 0x327: "c",
}  # fmt: skip
_OT1_LETTERS = {
    "ß": r"\ss{}", "æ": r"\ae{}", "Æ": r"\AE{}", "ø": r"\o{}", "Ø": r"\O{}", "œ": r"\oe{}",
    "Œ": r"\OE{}", "ł": r"\l{}", "Ł": r"\L{}", "ı": r"\i{}", "£": r"\pounds{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}  # fmt: skip


def _latex_char(ch: str) -> str:
    if ch in _LATEX_SPECIALS:
        return _LATEX_SPECIALS[ch]
    if ch in _OT1_LETTERS:
        return _OT1_LETTERS[ch]
    if " " <= ch <= "~":
        return ch
    if ch in "\t\n\r":
        return " "
    base, *marks = unicodedata.normalize("NFD", ch)
    if len(marks) == 1 and base.isascii() and base.isalpha() and ord(marks[0]) in _OT1_ACCENTS:
        return f"\\{_OT1_ACCENTS[ord(marks[0])]}{{{base}}}"
    math = _math_char(ch)
    # \ensuremath, not $...$: two in a row as $a$$b$ would open display math.
    return f"\\ensuremath{{{math}}}" if math is not None else f"[U+{ord(ch):04X}]"


#: Math characters of rule identities (d/dx σ(x) = σ(x)·(1 − σ(x)), Σᵢ uᵢ′, √x, x²).
_MATH_SYMBOLS = {
    "′": "'", "√": r"\surd{}", "Σ": r"\Sigma{}", "Π": r"\Pi{}", "≠": r"\neq{}", "≤": r"\leq{}",
    "≥": r"\geq{}", "∈": r"\in{}", "∞": r"\infty{}", "→": r"\to{}", "×": r"\times{}", "±": r"\pm{}",
    "⁻": "^{-}", "⁺": "^{+}", "∑": r"\sum{}", "≈": r"\approx{}", "ℓ": r"\ell{}",
    # and of prose about norms and gradients: ‖∂L/∂W‖, −1, u ⊙ v, a · b
    "‖": r"\|", "∂": r"\partial{}", "−": "-", "⊙": r"\odot{}", "·": r"\cdot{}",
}  # fmt: skip
_GREEK_CAPITALS = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}


def _math_char(ch: str) -> str | None:
    """A Greek letter, a sub- or superscript, or a math sign, as pdflatex sets it in math mode."""
    if ch in _MATH_SYMBOLS:
        return _MATH_SYMBOLS[ch]
    name = unicodedata.name(ch, "")
    if name.startswith("GREEK SMALL LETTER ") and " " not in name[19:]:
        letter = name[19:].lower().replace("lamda", "lambda")
        return "o" if letter == "omicron" else f"\\{letter}{{}}"
    if name.startswith("GREEK CAPITAL LETTER ") and name[21:].capitalize().replace("Lamda", "Lambda") in _GREEK_CAPITALS:
        return f"\\{name[21:].capitalize().replace('Lamda', 'Lambda')}{{}}"
    tag, _, code = unicodedata.decomposition(ch).partition(" ")
    if tag in ("<sub>", "<super>") and code:
        inner = chr(int(code, 16))
        inner = _math_char(inner) or (inner if " " < inner <= "~" and inner not in _LATEX_SPECIALS else None)
        if inner is not None:
            return ("_" if tag == "<sub>" else "^") + "{" + inner + "}"
    return None


def escape_latex(text: str) -> str:
    r"""Text as LaTeX that typesets it literally; characters pdflatex lacks become [U+XXXX].

    >>> print(escape_latex("50% of {x}_1 \\ é <b> ★"))
    50\% of \{x\}\_1 \textbackslash{} \'{e} \textless{}b\textgreater{} [U+2605]
    """
    # A letter with a combining hat (x̂ in prose about batch norm) has no precomposed form: set it as math.
    parts = text.split("x\u0302")
    return r"\ensuremath{\hat{x}}".join(_latex_run(part) for part in parts)


def _script(ch: str) -> tuple[str, str] | None:
    """A superscript or subscript character as ("^" or "_", what it raises or lowers in math mode)."""
    math = _math_char(ch) if unicodedata.decomposition(ch).partition(" ")[0] in ("<sub>", "<super>") else None
    return (math[0], math[2:-1]) if math is not None else None


def _latex_run(text: str) -> str:
    r"""Characters escaped one by one, a run of superscripts (or subscripts) set as one: a⁽³⁾ as a\ensuremath{^{(3)}}.

    >>> print(_latex_run("a⁽³⁾ = x₁₂"))
    a\ensuremath{^{(3)}} = x\ensuremath{_{12}}
    """
    out, run, mark = [], [], ""
    for ch in text + "\0":
        script = _script(ch) if ch != "\0" else None
        if run and (script is None or script[0] != mark):
            out.append(f"\\ensuremath{{{mark}{{{''.join(run)}}}}}")
            run = []
        if script is not None:
            mark = script[0]
            run.append(script[1])
        elif ch != "\0":
            out.append(_latex_char(ch))
    return "".join(out)


# What can start markup anywhere in a line; "-", "+", "." and "!" only do at a line's
# start, where a template never puts a value.
_MARKDOWN_SPECIALS = set("\\`*_{}[]<>#|$~&")


def escape_markdown(text: str) -> str:
    r"""Text as Markdown that renders literally (no emphasis, links, HTML or math).

    >>> escape_markdown("a_b *c* <script>")
    'a\\_b \\*c\\* \\<script\\>'
    """
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else (" " if ch in "\r\n" else ch) for ch in text)


def format_number(value: float, digits: int = 10) -> str:
    """Ten significant digits, no exponent for ordinary magnitudes, never "-0".

    >>> format_number(0.2983711087600027), format_number(-0.0), format_number(1.5e-12)
    ('0.2983711088', '0', '1.5e-12')
    """
    if value == 0:
        return "0"
    if not _math.isfinite(value):
        return str(value)
    text = f"{value:.{digits}g}"
    return text


def format_error(value: float) -> str:
    """A relative error needs two significant digits.

    >>> format_error(1.37568164e-10)
    '1.4e-10'
    """
    return f"{value:.2g}"


#: A sum longer than this (``written_size``) may break between its terms; a shorter one stays whole.
LONG_SUM = 16
#: The operators a formula may break before, as text breaks at a space, and after (a list's commas).
BREAKS = ("=", "+", "−", "≈", "·")
BREAKS_AFTER = (",",)


AUTO = -1


@dataclass(frozen=True)
class Fence:
    """One side, "(" or ")", of the parentheses around a sum that breaks across lines.

    ``size`` is how tall what it holds is set: 0 letters, 1 with scripts (w⁽¹⁾₁₂), 2 with fractions;
    ``AUTO`` around what stays on one line, as tall as what it holds there.
    """

    text: str
    size: int = 0


@dataclass(frozen=True)
class Operator:
    """d/dx or ∂/∂x before a sum in parentheses that breaks across lines."""

    wrt: sp.Basic
    partial: bool


@dataclass(frozen=True)
class _Breaking:
    """How a formula is cut into parts: the printers' notation (for the order of factors), the
    longest sum that stays whole, and whether a long fraction may be written 1/d · n₁ · n₂ ⋯."""

    notation: Mapping
    longest: int = LONG_SUM
    fractions: bool = False

    def long(self, expr) -> bool:
        return isinstance(expr, sp.Basic) and written_size(expr, self.longest) > self.longest


def atoms(pieces: tuple, lead: str | None = None, notation: Mapping = {}, longest: int = LONG_SUM, fractions: bool = False) -> list[tuple]:
    """A run of pieces cut where a line may break, each part to be kept whole on a line.

    A line may break before an "=", "+" or "−" between pieces, after a ",", between the terms
    of a long sum, also inside the parentheses of a sum in a product (a(1 − a)(w₁δ₁ + … + w₉δ₉))
    or after d/dx, and with ``fractions`` before each "·" of a long fraction written
    1/d · n₁ · n₂ ⋯; each part after the first starts with the operator it breaks before.
    ``lead`` is an operator put before the run ("=" for the right side of a row); a sum of at
    most ``longest`` symbols (``written_size``) stays whole.

    >>> w, x = sp.symbols("w1:11"), sp.symbols("x1:11")
    >>> parts = atoms((sp.Symbol("z"), Op("="), sum(a * b for a, b in zip(w, x))))
    >>> len(parts), parts[0], parts[1], parts[-1]
    (11, (z,), (Op(text='='), w1*x1), (Op(text='+'), w10*x10))
    """
    how = _Breaking(notation, longest, fractions)
    run = ((Op(lead),) if lead else ()) + tuple(pieces)
    out: list[list] = [[]]
    for i, p in enumerate(run):
        if isinstance(p, Op) and p.text in BREAKS and out[-1]:
            out.append([])
        if isinstance(p, Op) and p.text in BREAKS_AFTER:
            out[-1].append(p)
            out.append([])
            continue
        parts = _split(p, how) if _between_breaks(run, i) else None
        if parts is None:
            out[-1].append(p)
            continue
        out[-1] += parts[0]
        out += [list(part) for part in parts[1:]]
    return [tuple(part) for part in out if part]


def _between_breaks(run: tuple, i: int) -> bool:
    """Whether nothing but an operator a line may break at (or the run's end) stands on either side of ``run[i]``."""
    return all(j < 0 or j >= len(run) or (isinstance(run[j], Op) and run[j].text in BREAKS + BREAKS_AFTER) for j in (i - 1, i + 1))


def _split(expr, how: _Breaking) -> list[list] | None:
    """The parts of a long formula, each after the first opening with the operator it breaks before; None if it stays whole."""
    if not how.long(expr):
        return None
    if isinstance(expr, sp.Equality):
        left, right = (_split(side, how) or [[side]] for side in expr.args)
        return left + [[Op("="), *right[0]]] + right[1:]
    if isinstance(expr, sp.Derivative) and len(expr.variable_count) == 1 and expr.variable_count[0][1] == 1:
        inner = _split_sum(expr.expr, how)
        operator = Operator(expr.variables[0], requires_partial(expr.expr))
        return _fenced([operator], inner, _size(expr.expr, how.notation)) if inner is not None else None
    if isinstance(expr, sp.Mul) and fraction(expr, exact=True)[1] != 1:
        return _split_fraction(expr, how) if how.fractions else None
    if isinstance(expr, sp.Mul):
        sign: list = [Op("−")] if expr.could_extract_minus_sign() else []
        parts = _split_product(printing.ordered_factors(-expr if sign else expr, how.notation), how, dots=False)
        if parts is None:
            return None
        parts[0] = sign + parts[0]
        return parts
    return _split_sum(expr, how)


def _split_product(factors: list, how: _Breaking, dots: bool) -> list[list] | None:
    """A product's factors as parts: each long sum among them breaks inside its parentheses, the
    others stay whole; with ``dots``, a line may also break before a "·" between any two factors."""
    inners = [_split_sum(f, how) if isinstance(f, sp.Add) else None for f in factors]
    if not dots and not any(inners):
        return None
    parts: list[list] = [[]]
    group: list = []
    for f, inner in [*zip(factors, inners), (None, None)]:
        if inner is None and f is not None and not (dots and group):
            group.append(f)
            continue
        parts[-1] += _whole(group)
        group = [f] if inner is None and f is not None else []
        if f is not None and dots:
            parts.append([Op("·")])
        if inner is not None:
            fenced = _fenced([], inner, _size(f, how.notation))
            parts[-1] += fenced[0]
            parts += fenced[1:]
    parts[-1] += _whole(group)
    return [part for part in parts if part]


def _split_fraction(expr: sp.Mul, how: _Breaking) -> list[list] | None:
    """n/d with a long numerator as (1/d) n₁ · n₂ ⋯ (what SymPy's LaTeX printer does with its
    ``long_frac_ratio``), so that the numerator may break between its factors."""
    sign: list = [Op("−")] if expr.could_extract_minus_sign() else []
    numer, denom = fraction(-expr if sign else expr, exact=True)
    if written_size(numer) <= 2 * written_size(denom):
        return None
    factors = printing.ordered_factors(numer, how.notation) if isinstance(numer, sp.Mul) else [numer]
    parts = _split_product(factors, how, dots=True)
    parts[0] = [*sign, sp.Pow(denom, -1, evaluate=False)] + parts[0]
    return parts


def _split_sum(expr, how: _Breaking) -> list[list] | None:
    terms = printing.signed_terms(expr) if how.long(expr) else None
    if terms is None:
        return None
    parts: list[list] = []
    for k, (sign, term) in enumerate(terms):
        signed = [Op(sign)] if k or sign == "−" else []
        bare = term.args[0] if isinstance(term, sp.UnevaluatedExpr) else term
        if sign == "−" and isinstance(bare, sp.Add):
            # − (a + b): the parentheses the printer would write
            inner = _split_sum(term, how)
            size = _size(bare, how.notation)
            inner = _fenced([], inner, size) if inner is not None else [[Fence("(", size), term, Fence(")", size)]]
        else:
            inner = _split(term, how) if term is bare else None
        if inner is None:
            parts.append(signed + [term])
        else:
            parts.append(signed + inner[0])
            parts += inner[1:]
    return parts


def _whole(factors: list) -> list:
    """Factors of a product that stay whole, as pieces: one product, or one factor in parentheses where a product would have them."""
    if len(factors) > 1:
        return [sp.Mul(*factors, evaluate=False)]
    if factors and (isinstance(factors[0], (sp.Add, sp.Piecewise, sp.core.relational.Relational)) or factors[0].could_extract_minus_sign()):
        return [Fence("(", AUTO), factors[0], Fence(")", AUTO)]
    return list(factors)


def _fenced(before: list, inner: list[list], size: int) -> list[list]:
    """``before (inner)``, the parentheses one size on every line."""
    parts = [list(part) for part in inner]
    parts[0] = before + [Fence("(", size)] + parts[0]
    parts[-1] = parts[-1] + [Fence(")", size)]
    return parts


def _size(expr, notation: Mapping) -> int:
    """How tall ``expr`` is set: 2 with fractions (a negative power, a ratio, a derivative), 1 with scripts, else 0."""
    parts = list(sp.preorder_traversal(expr))
    if any(isinstance(e, sp.Derivative) or (e.is_Pow and e.exp.is_negative) or (e.is_Rational and not e.is_Integer) for e in parts):
        return 2
    return 1 if any(e.is_Pow or (notation.get(e) is not None and (notation[e].layer is not None or notation[e].indices)) for e in parts) else 0


#: How wide a line of a Markdown formula may be, in characters of its LaTeX source (commands and braces not counted).
MARKDOWN_LINE = 72


def _tex_width(tex: str) -> int:
    r"""Roughly how many characters wide ``tex`` is set: a command counts one, braces and spaces none.

    >>> _tex_width(r"w^{(1)}_{11} x_{1} + \delta")
    10
    """
    return len(re.sub(r"\\(left|right|frac|displaystyle|operatorname|mathbf)\b|\\[a-zA-Z]+|[{}^_ ]", lambda m: "" if m.group(1) or m.group(0) in "{}^_ " else "x", tex))


def lines_of(parts: list[tuple], width: Callable[[tuple], int], room: int) -> list[list[tuple]]:
    """``atoms`` grouped into lines at most ``room`` wide (a part wider than that is a line of its own).

    >>> lines_of([(1,), (2,), (3,)], lambda part: 4, 9)
    [[(1,), (2,)], [(3,)]]
    """
    lines: list[list[tuple]] = [[]]
    used = 0
    for part in parts:
        w = width(part)
        if lines[-1] and used + w > room:
            lines.append([])
            used = 0
        lines[-1].append(part)
        used += w
    return lines


@dataclass
class Formatter:
    """Prints math for one render call; remembers what it printed only for that call."""

    show: Callable[[Any], str]
    partial_of: Callable[[str, str], str]
    wrap: Callable[[str], Any]
    memo: dict = field(default_factory=dict)

    def math(self, expr) -> Any:
        if expr not in self.memo:
            self.memo[expr] = self.wrap(self.show(expr))
        return self.memo[expr]

    def partial(self, p) -> Any:
        return self.wrap(self.partial_of(self.math(p.of), self.math(p.wrt)))


def _html_filters(notation: Mapping) -> dict[str, Callable]:
    fmt = Formatter(printing.mathml_printer(notation), printing.partial_mathml, Markup)
    return {
        "math": fmt.math,
        "partial": fmt.partial,
        # −0.25 with a minus sign, not a hyphen, in text and in <mn> alike
        "num": lambda v: format_number(v).replace("-", "\u2212", 1) if format_number(v).startswith("-") else format_number(v),
        "err": format_error,
        "sym": fmt.math,
        "atoms": lambda pieces, lead=None, longest=None, fractions=False: atoms(pieces, lead, notation, longest or LONG_SUM, fractions),
        "eq": _equation,
        # One side of the parentheses of a sum broken across lines: each line's <math> is its own,
        # so a stretchy "(" would take the size of its line only; both sides get one size.
        "fence": _mathml_fence,
        "operator": lambda o: _mathml_operator(o, fmt.math(o.wrt)),
        # The name of a function of the generated code, inside a formula.
        "code": lambda name: Markup('<mtext class="code">{}</mtext>').format(name),
    }


#: The height of a fence of each ``Fence.size``, as MathML's minsize and maxsize.
_FENCE_HEIGHTS = ("1.2em", "1.8em", "2.6em")


def _mathml_fence(f: Fence) -> Markup:
    if f.size == AUTO:
        return Markup("<mo>{}</mo>").format(f.text)
    return Markup('<mo stretchy="true" symmetric="true" minsize="{0}" maxsize="{0}">{1}</mo>').format(_FENCE_HEIGHTS[f.size], f.text)


def _mathml_operator(o: Operator, wrt: Markup) -> Markup:
    if o.partial:
        return Markup(printing.partial_mathml("", wrt))
    return Markup('<mfrac><mi mathvariant="normal">d</mi><mrow><mi mathvariant="normal">d</mi>{}</mrow></mfrac>').format(wrt)


#: A fence of each ``Fence.size`` in LaTeX (AUTO: \left( and \right), sized by what they hold on one line).
_LATEX_FENCES = {"(": ("\\bigl(", "\\Bigl(", "\\biggl(", "\\left("), ")": ("\\bigr)", "\\Bigr)", "\\biggr)", "\\right)")}


def _latex_filters(notation: Mapping) -> dict[str, Callable]:
    fmt = Formatter(printing.latex_printer(notation), printing.partial_latex, TeX)
    return {
        "math": fmt.math,
        "partial": fmt.partial,
        "num": lambda v: TeX(_tex_number(format_number(v))),
        "err": lambda v: TeX(_tex_number(format_error(v))),
        "sym": fmt.math,
        "op": lambda op: TeX(_LATEX_OPERATORS.get(op.text, op.text)),
        "atoms": lambda pieces, lead=None, longest=None, fractions=False: atoms(pieces, lead, notation, longest or LONG_SUM, fractions),
        "eq": _equation,
        "fence": lambda f: TeX(_LATEX_FENCES[f.text][f.size]),
        "operator": lambda o: TeX(printing.partial_latex("", fmt.math(o.wrt)) if o.partial else f"\\frac{{d}}{{d {fmt.math(o.wrt)}}}"),
        "code": lambda name: TeX(f"\\texttt{{{escape_latex(name)}}}"),
        # Macro output is made of pieces that were escaped as they were written; ``safe``
        # says so, as in HTML templates, and is for nothing else.
        "safe": TeX,
    }


def _equation(sides) -> tuple:
    """``(a, b, c)|eq``: the run a = b = c, for a template that has the sides but no "=" of its own."""
    out: tuple = ()
    for side in sides:
        out += ((Op("="),) if out else ()) + (tuple(side) if isinstance(side, tuple) else (side,))
    return out


def _tex_number(text: str) -> str:
    r"""Python's 1.5e-12 as math: 1.5 \times 10^{-12}.

    >>> _tex_number("1.5e-12"), _tex_number("0.25")
    ('1.5 \\times 10^{-12}', '0.25')
    """
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa} \\times 10^{{{int(exponent)}}}"


_LATEX_OPERATORS = {"·": r"\cdot", "←": r"\leftarrow", "−": "-", ",": r",\,", "×": r"\times"}


def _finalize_latex(value: Any) -> Any:
    if isinstance(value, TeX) or value is None:
        return "" if value is None else value
    return escape_latex(str(value))


def _finalize_markdown(value: Any) -> Any:
    if isinstance(value, TeX) or value is None:
        return "" if value is None else value
    return escape_markdown(str(value))


def _environment(folder: str, **options) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir() / folder),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        **options,
    )
    env.tests.update(PIECE_TESTS)
    return env


def html_environment(notation: Mapping) -> jinja2.Environment:
    env = _environment("html", autoescape=True)
    env.filters.update(_html_filters(notation))
    return env


def latex_environment(notation: Mapping) -> jinja2.Environment:
    # LaTeX is full of braces and percent signs, so its templates use <% %> and << >>.
    env = _environment(
        "latex",
        autoescape=False,
        finalize=_finalize_latex,
        block_start_string="<%",
        block_end_string="%>",
        variable_start_string="<<",
        variable_end_string=">>",
        comment_start_string="<#",
        comment_end_string="#>",
    )
    env.filters.update(_latex_filters(notation))
    return env


def fenced(text: str, language: str = "") -> str:
    """A fenced code block that shows ``text`` as it is: its fence is longer than any run of backticks in it.

    >>> print(fenced("a = b  # `x`", "python"))
    ```python
    a = b  # `x`
    ```
    """
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def markdown_environment(notation: Mapping) -> jinja2.Environment:
    env = _environment("markdown", autoescape=False, finalize=_finalize_markdown)
    env.filters.update(_latex_filters(notation))
    # Numbers in Markdown mostly stand in table cells, outside math.
    env.filters.update({"num": lambda v: TeX(format_number(v)), "err": lambda v: TeX(format_error(v))})
    # Math mode: MathJax reads \_ inside \texttt only with its textmacros extension.
    env.filters["code"] = lambda name: TeX(f"\\mathtt{{{escape_latex(name)}}}")
    env.filters["fenced"] = lambda lines, language="": TeX(fenced("\n".join(lines), language))
    # A long formula as lines of an aligned block: Markdown's math has no line breaking of its own.
    env.filters["lines"] = lambda pieces, lead=None: lines_of(env.filters["atoms"](pieces, lead), lambda part: sum(_tex_width(_latex_piece(env, p)) for p in part), MARKDOWN_LINE)
    return env


def _latex_piece(env: jinja2.Environment, p) -> str:
    """A piece as the Markdown macros print it, to measure its width."""
    if isinstance(p, Op):
        return env.filters["op"](p)
    if isinstance(p, Number):
        return env.filters["num"](p.value)
    if isinstance(p, Partial):
        return env.filters["partial"](p)
    if isinstance(p, Call):
        return p.name + "()" + "".join(env.filters["math"](a) for a in p.args)
    return env.filters["math"](p)
