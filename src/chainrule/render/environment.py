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
from markupsafe import Markup

from ..derive import Partial
from . import printing
from .steps import Call, Number, Op
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
        "num": format_number,
        "err": format_error,
        "sym": fmt.math,
        # The name of a function of the generated code, inside a formula.
        "code": lambda name: Markup('<mtext class="code">{}</mtext>').format(name),
    }


def _latex_filters(notation: Mapping) -> dict[str, Callable]:
    fmt = Formatter(printing.latex_printer(notation), printing.partial_latex, TeX)
    return {
        "math": fmt.math,
        "partial": fmt.partial,
        "num": lambda v: TeX(_tex_number(format_number(v))),
        "err": lambda v: TeX(_tex_number(format_error(v))),
        "sym": fmt.math,
        "op": lambda op: TeX(_LATEX_OPERATORS.get(op.text, op.text)),
        "code": lambda name: TeX(f"\\texttt{{{escape_latex(name)}}}"),
        # Macro output is made of pieces that were escaped as they were written; ``safe``
        # says so, as in HTML templates, and is for nothing else.
        "safe": TeX,
    }


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
    return env
