"""Documents for ``chainrule explain``: a formula's derivatives, step by step, in four formats.

JSON contract (keys may be added, not changed)::

    {"formula": str,
     "derivatives": {"x": str, ...},      # each in the formula language
     "steps": {"x": [{"rule", "title", "identity", "depth", "expression", "result"}, ...], ...}}

and, with ``--order 2``, ``"hessian": {"x": {"y": str}}`` with ``"hessian_steps"``; with
``--at``, ``"point"``, ``"value"`` and ``"values"``/``"checks"`` per derivative.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sympy as sp

from .. import __version__
from ..expr import to_formula
from .environment import html_environment, latex_environment, markdown_environment
from .rule_view import flatten, lines, step_view

if TYPE_CHECKING:
    from ..explain import Derivative, Explanation


def _formula(expr: sp.Expr) -> str:
    return to_formula(expr)


def _view(derivative: Derivative, f: sp.Expr) -> dict[str, Any]:
    step = step_view(derivative.steps)
    lhs = sp.Derivative(f, *derivative.wrt, evaluate=False)
    return {"d": derivative, "lines": lines(step), "step": step, "lhs": lhs}


def _context(e: Explanation) -> dict[str, Any]:
    names = ", ".join(str(v) for v in e.variables)
    f = sp.Function("f")(*e.variables)
    hessian = sp.ImmutableMatrix([[h.result for h in row] for row in e.hessian]) if e.hessian else None
    return {
        "title": f"Derivatives of f({names}) = {e.text}" if len(e.text) <= 60 else f"Derivatives of f({names})",
        "version": __version__,
        "e": e,
        "f": f,
        "gradient": [_view(d, f) for d in e.gradient],
        "hessian": hessian,
        "hessian_views": [[_view(h, f) for h in row] for row in e.hessian],
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
    if e.point:
        doc["point"] = {str(v): x for v, x in e.point.items()}
        doc["value"] = e.value
        doc["values"] = {str(d.wrt[0]): d.value for d in e.gradient}
        doc["checks"] = {str(d.wrt[0]): _check_json(d) for d in e.gradient}
        if e.hessian:
            doc["hessian_values"] = {str(row[0].wrt[0]): {str(h.wrt[1]): h.value for h in row} for row in e.hessian}
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _check_json(d: Derivative) -> dict[str, Any]:
    c = d.check
    if c.unchecked:
        return {"finite_difference": None, "relative_error": None, "passed": True, "unchecked": True}
    out: dict[str, Any] = {"finite_difference": c.estimate, "relative_error": c.relative_error, "passed": c.passed}
    if c.kink is not None:
        out["kink"] = {"left": c.kink[0], "right": c.kink[1]}
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
