"""Documents for ``chainrule explain``: a formula's derivatives, step by step, in four formats.

JSON contract (keys may be added, not changed)::

    {"formula": str,
     "derivatives": {"x": str, ...},      # each in the formula language
     "steps": {"x": [{"rule", "title", "identity", "depth", "expression", "result"}, ...], ...}}

and, with ``--order 2``, ``"hessian": {"x": {"y": str}}`` with ``"hessian_steps"``,
``"hessian_layout"`` and ``"hessian_equal"`` (the mixed pairs proven equal); with ``--at``,
``"point"``, ``"value"``, ``"values"``/``"checks"`` per derivative and, with ``--order 2``,
``"hessian_values"``/``"hessian_checks"``. A check holds ``finite_difference`` (the central
difference shown), ``relative_error`` and ``absolute_error`` (its real difference from the
value, never capped), ``step``, ``verdict``, ``passed``, and where the check meets a kink or
a jump, ``kinks`` and ``one_sided``. ``"notation"`` lists the special functions defined.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import sympy as sp

from .. import __version__, differences
from ..expr import to_formula
from .environment import html_environment, latex_environment, markdown_environment
from .rule_view import flatten, lines, step_view
from .width import matrix_width, printed_width

if TYPE_CHECKING:
    from ..explain import Derivative, Explanation


def _formula(expr: sp.Expr) -> str:
    return to_formula(expr)


#: How wide a display formula may be, in ems of ``printed_width``: the HTML column holds about 32
#: (34rem of math at 1.05em) and the PDF's line 40; a little is kept for the measure's error.
LINE = 30.0
#: A check's verdicts by name, for the templates' sentences: ``{% if c.verdict == verdicts.SIDES_AGREE %}``.
VERDICTS = SimpleNamespace(**{k: getattr(differences, k) for k in (
    "AGREES", "DIFFERS", "SIDES_AGREE", "BETWEEN_SIDES", "OUTSIDE_SIDES", "UNCHECKED")})  # fmt: skip


@dataclass(frozen=True)
class HessianLayout:
    """How the Hessian is shown: the whole matrix if it fits the line, else column by column, else entry by entry."""

    kind: str  # "matrix", "columns" or "entries"
    #: The entries, and what each is (∂²f/∂v∂u), row by row.
    rows: tuple[tuple[sp.Expr, ...], ...]
    names: tuple[tuple[sp.Expr, ...], ...]
    #: For each entry, the name of the entry it equals (Schwarz) or None.
    mirrors: tuple[tuple[sp.Expr | None, ...], ...]
    #: ``printed_width`` of the matrix and of its widest column shown as "names = entries".
    width: float
    column_width: float

    @property
    def columns(self) -> list[tuple[tuple[tuple[sp.Expr], ...], tuple[tuple[sp.Expr], ...]]]:
        """(names, entries) of each column, as one-column matrices: column j is the gradient differentiated by the j-th variable."""
        return [(tuple((n,) for n in names), tuple((r,) for r in rows)) for names, rows in zip(zip(*self.names), zip(*self.rows))]

    @property
    def entries(self) -> list[tuple[sp.Expr, sp.Expr, sp.Expr | None]]:
        """(name, entry, the name of the equal entry before it or None), in reading order."""
        return [(n, r, m) for names, rows, mirrors in zip(self.names, self.rows, self.mirrors) for n, r, m in zip(names, rows, mirrors)]


def hessian_layout(e: Explanation, f: sp.Expr) -> HessianLayout | None:
    """The layout of ``e``'s Hessian, chosen by its printed width against ``LINE`` (the same for every format)."""
    if not e.hessian:
        return None
    rows = tuple(tuple(h.result for h in row) for row in e.hessian)
    names = tuple(tuple(_lhs(h.wrt, f) for h in row) for row in e.hessian)
    mirrors = tuple(tuple(_lhs(h.mirror, f) if h.mirror else None for h in row) for row in e.hessian)
    h_equals = printed_width(sp.Symbol("H")) + 1.2
    width = h_equals + matrix_width(rows)
    column_width = max(matrix_width([[n] for n in names_j]) + 1.2 + matrix_width([[r] for r in rows_j])
                       for names_j, rows_j in zip(zip(*names), zip(*rows)))  # fmt: skip
    kind = "matrix" if width <= LINE else "columns" if column_width <= LINE else "entries"
    return HessianLayout(kind, rows, names, mirrors, width, column_width)


def _lhs(wrt, f: sp.Expr) -> sp.Expr:
    return sp.Derivative(f, *wrt, evaluate=False)


def _kink_groups(check) -> list[dict[str, Any]]:
    """The breaks a check meets, grouped by their argument: one sentence each."""
    groups: dict[sp.Expr, dict[str, Any]] = {}
    for k in check.kinks if check is not None else ():
        group = groups.setdefault(k.argument, {"argument": k.argument, "value": k.value, "kinks": []})
        group["kinks"].append(k)
    return list(groups.values())


def _view(derivative: Derivative, f: sp.Expr) -> dict[str, Any]:
    step = step_view(derivative.steps)
    lhs = _lhs(derivative.wrt, f)
    # The function the check differences: f for the gradient, ∂f/∂u for ∂²f/∂v∂u.
    of = f if len(derivative.wrt) == 1 else _lhs(derivative.wrt[:1], f)
    mirror = _lhs(derivative.mirror, f) if derivative.mirror else None
    return {"d": derivative, "lines": lines(step), "step": step, "lhs": lhs, "of": of, "mirror": mirror,
            "kinks": _kink_groups(derivative.check)}  # fmt: skip


def _context(e: Explanation) -> dict[str, Any]:
    names = ", ".join(str(v) for v in e.variables)
    f = sp.Function("f")(*e.variables)
    return {
        "title": f"Derivatives of f({names}) = {e.text}" if len(e.text) <= 60 else f"Derivatives of f({names})",
        "version": __version__,
        "e": e,
        "f": f,
        "gradient": [_view(d, f) for d in e.gradient],
        "hessian": hessian_layout(e, f),
        "hessian_views": [[_view(h, f) for h in row] for row in e.hessian],
        "notation": e.notation,
        "verdicts": VERDICTS,
        "tolerance": differences.TOLERANCE,
        "point_text": ", ".join(f"{v} = {e.point[v]:g}" for v in e.variables) if e.point else "",
    }


def _template(make, name: str):
    def render(e: Explanation) -> str:
        return make({}).get_template(name).render(_context(e))

    return render


def _steps_json(derivative: Derivative) -> list[dict[str, Any]]:
    return [
        {
            "rule": step.rule,
            "title": step.title,
            "identity": step.identity,
            "depth": depth,
            "expression": _formula(step.lhs.expr),
            "variable": str(step.lhs.variables[0]),
            "result": _formula(step.result),
        }
        for depth, step in flatten(step_view(derivative.steps))
    ]


def explanation_json(e: Explanation) -> str:
    doc: dict[str, Any] = {
        "formula": e.text,
        "parsed": _formula(e.formula),
        "variables": [str(v) for v in e.variables],
        "wrt": [str(v) for v in e.wrt],
        "derivatives": {str(d.wrt[0]): _formula(d.result) for d in e.gradient},
        "steps": {str(d.wrt[0]): _steps_json(d) for d in e.gradient},
    }
    if e.hessian:
        doc["hessian"] = {str(row[0].wrt[0]): {str(h.wrt[1]): _formula(h.result) for h in row} for row in e.hessian}
        doc["hessian_steps"] = {
            str(row[0].wrt[0]): {str(h.wrt[1]): _steps_json(h) for h in row} for row in e.hessian
        }
        doc["hessian_layout"] = hessian_layout(e, sp.Function("f")(*e.variables)).kind
        doc["hessian_equal"] = [[str(h.mirror[0]), str(h.mirror[1])] for row in e.hessian for h in row if h.mirror]
    if e.point:
        doc["point"] = {str(v): x for v, x in e.point.items()}
        doc["value"] = e.value
        doc["values"] = {str(d.wrt[0]): d.value for d in e.gradient}
        doc["checks"] = {str(d.wrt[0]): _check_json(d) for d in e.gradient}
        if e.hessian:
            doc["hessian_values"] = {str(row[0].wrt[0]): {str(h.wrt[1]): h.value for h in row} for row in e.hessian}
            doc["hessian_checks"] = {str(row[0].wrt[0]): {str(h.wrt[1]): _check_json(h) for h in row} for row in e.hessian}
    doc["notation"] = [{"name": d.name, "words": d.words} for d in e.notation]
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _check_json(d: Derivative) -> dict[str, Any]:
    c = d.check
    if not c.differences:
        return {"finite_difference": None, "relative_error": None, "passed": True, "unchecked": True, "verdict": c.verdict}
    out: dict[str, Any] = {
        "finite_difference": c.estimate,
        "relative_error": c.relative_error,
        "absolute_error": c.absolute_error,
        "step": c.step,
        "passed": c.passed,
        "verdict": c.verdict,
    }
    if c.kink is not None:
        out["kink"] = {"left": c.kink[0], "right": c.kink[1]}
    if c.one_sided is not None:
        out["one_sided"] = {"left": c.one_sided[0], "right": c.one_sided[1]}
    if c.kinks:
        out["kinks"] = [
            {"function": k.info.name, "kind": k.info.kind, "call": _formula(k.node), "argument": _formula(k.argument), "value": k.value}
            for k in c.kinks
        ]
    straddling = c.straddling
    if straddling is not None and straddling is not c.central:
        out["straddling"] = {"step": straddling.step, "finite_difference": straddling.value}
    return out


RENDERERS = {
    "html": _template(html_environment, "explain.html"),
    "tex": _template(latex_environment, "explain.tex"),
    "md": _template(markdown_environment, "explain.md"),
    "json": explanation_json,
}
SUFFIXES = {"html": ".html", "tex": ".tex", "md": ".md", "json": ".json"}


def render_explanation(e: Explanation, fmt: str) -> str:
    """One document for ``e`` as text: ``fmt`` is html, tex, md or json."""
    return RENDERERS[fmt](e)


def explanation_documents(e: Explanation, out_dir: str | Path, stem: str, formats) -> dict[Path, str]:
    """Every requested document as text, keyed by its path; nothing is written."""
    return {Path(out_dir) / f"{stem}{SUFFIXES[f]}": render_explanation(e, f) for f in formats}
