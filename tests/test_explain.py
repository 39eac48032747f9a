"""``chainrule explain``: any formula's derivatives, step by step, checked and written in four formats."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import sympy as sp
from test_rules import CORPUS

from chainrule.explain import ExplainError, explain
from chainrule.expr import FormulaError, parse, to_formula
from chainrule.render.explanation import explanation_json, render_explanation

x, w, b = (sp.Symbol(n, real=True) for n in "xwb")


def _printable(expr: sp.Expr) -> str | None:
    """The corpus formula in the formula language, where the language can write it."""
    try:
        text = to_formula(expr)
        names = sorted(str(s) for s in expr.free_symbols)
        return text if parse(text, names) == expr else None
    except (FormulaError, TypeError, ValueError):
        return None


#: The rules corpus (sympy expressions) written as text, so each goes through the parser.
FORMULAS = [t for t in dict.fromkeys(_printable(f) for f in CORPUS) if t is not None]


def test_corpus_has_two_hundred_formulas():
    assert len(FORMULAS) >= 200


@pytest.mark.parametrize("text", FORMULAS)
def test_every_formula_renders_in_all_four_formats(text):
    e = explain(text)
    for d in e.gradient:
        assert sp.simplify((d.result - sp.diff(e.formula, d.wrt[0])).rewrite(sp.exp)) == 0 or _equal_at_points(
            d.result, sp.diff(e.formula, d.wrt[0]), e.variables
        )
    documents = {fmt: render_explanation(e, fmt) for fmt in ("html", "tex", "md", "json")}
    data = json.loads(documents["json"])
    assert data["formula"] == text
    for d in e.gradient:
        name = str(d.wrt[0])
        back = parse(data["derivatives"][name], [str(v) for v in e.variables])
        assert back == d.result or sp.simplify(back - d.result) == 0
        assert data["steps"][name][0]["result"] == data["derivatives"][name]
    assert documents["html"].count("<math") >= 2 * len(e.gradient)
    assert "\\begin{document}" in documents["tex"] and documents["tex"].rstrip().endswith("\\end{document}")
    assert "$$" in documents["md"]


def _equal_at_points(a: sp.Expr, b: sp.Expr, variables) -> bool:
    for k in range(1, 6):
        point = {v: sp.Rational(k * (i + 2), 7) for i, v in enumerate(variables)}
        if sp.N(a.xreplace(point) - b.xreplace(point), 30) != 0:
            diff = sp.N(a.xreplace(point), 30) - sp.N(b.xreplace(point), 30)
            if abs(diff) > 1e-25:
                return False
    return True


def test_product_rule_example():
    e = explain("x**2*sin(x)", wrt=["x"])
    (d,) = e.gradient
    assert d.result == x**2 * sp.cos(x) + 2 * x * sp.sin(x)
    assert type(d.steps).__name__ == "ProductRule"
    data = json.loads(explanation_json(e))
    assert data["derivatives"] == {"x": "x**2*cos(x) + 2*x*sin(x)"}
    assert [s["rule"] for s in data["steps"]["x"]] == ["ProductRule", "PowerRule", "TrigRule"]


def test_logistic_example_at_a_point():
    e = explain("log(1+exp(w*x+b))", wrt=["w", "b"], at={"w": 0.5, "x": 2, "b": -1})
    assert [d.wrt[0] for d in e.gradient] == [w, b]
    # w*x + b = 0 at the point: ∂/∂w = x·σ(0) = 1, ∂/∂b = σ(0) = 1/2
    assert [d.value for d in e.gradient] == pytest.approx([1.0, 0.5], abs=1e-15)
    assert e.value == pytest.approx(math.log(2), abs=1e-15)
    for d in e.gradient:
        assert d.check.passed and d.check.relative_error < 1e-9
    data = json.loads(explanation_json(e))
    assert set(data["derivatives"]) == {"w", "b"}
    assert data["values"] == pytest.approx({"w": 1.0, "b": 0.5})


def test_hessian_is_second_derivatives_and_symmetric():
    e = explain("x**3*y + exp(x*y)", order=2, at={"x": 0.5, "y": -0.25})
    y = sp.Symbol("y", real=True)
    for row in e.hessian:
        for h in row:
            u, v = h.wrt
            assert sp.simplify(h.result - sp.diff(e.formula, u, v)) == 0
            assert h.check.passed
    assert e.hessian[0][1].value == pytest.approx(e.hessian[1][0].value, rel=1e-14)
    assert json.loads(explanation_json(e))["hessian"]["x"]["y"]
    assert e.variables == (x, y)


def test_a_kink_is_reported_not_failed():
    e = explain("abs(x)", at={"x": 0})
    (d,) = e.gradient
    assert d.value == 0.0  # sign(0) = 0, as PyTorch
    assert d.check.kink == pytest.approx((-1.0, 1.0))
    assert d.check.passed


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"text": "x*y", "wrt": ["z"]}, "--wrt"),
        ({"text": "x*y", "at": {"x": 1.0}}, "--at"),
        ({"text": "x*y", "at": {"x": 1.0, "y": 2.0, "q": 3.0}}, "--at"),
        ({"text": "log(x)", "at": {"x": -1.0}}, "--at"),
        ({"text": "3 + 4"}, "formula"),
    ],
)
def test_bad_requests_name_their_field(kwargs, field):
    text = kwargs.pop("text")
    with pytest.raises(ExplainError) as info:
        explain(text, **kwargs)
    assert str(info.value).startswith(f"{field}: ")


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "chainrule", "explain", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_cli_writes_every_format(tmp_path):
    result = _run("x**2*sin(x)", "--wrt", "x", "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explain.html", "explain.json", "explain.md", "explain.tex"]
    assert "d/dx: x**2*cos(x) + 2*x*sin(x)" in result.stdout


def test_cli_at_a_point_with_a_name(tmp_path):
    result = _run(
        "log(1+exp(w*x+b))", "--wrt", "w", "--wrt", "b", "--at", "w=0.5,x=2,b=-1", "--name", "logistic", "--format", "json",
        "--out", str(tmp_path), cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "logistic.json").read_text())
    assert data["values"] == pytest.approx({"w": 1.0, "b": 0.5})


@pytest.mark.parametrize(
    "args, words",
    [
        (["__import__('os').system('id')"], ["formula", "column"]),
        (["x**2", "--wrt", "y"], ["--wrt", "'y'"]),
        (["x**2", "--at", "x=abc"], ["--at", "number"]),
        (["x**2", "--at", "x"], ["--at", "NAME=VALUE"]),
        (["x**2", "--order", "3"], ["--order"]),
        (["x**2", "--format", "pdf"], ["unknown format"]),
        (["x**2", "--name", "../evil"], ["--name"]),
        (["log(x)", "--at", "x=-1"], ["--at", "domain"]),
        (["9**9**9"], ["formula"]),
        (["1/x", "--at", "x=0"], ["--at", "domain"]),
        (["x**2", "--at", "x=1e309"], ["--at", "finite"]),
        (["x", "--at", "x=1,x=2"], ["--at", "twice"]),
        ([""], ["formula", "empty"]),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, args, words):
    result = _run(*args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "text, slope",
    [("relu(x)", 1.0), ("step(x)*x", 1.0), ("heaviside(x) + x", 1.0), ("sign(x)*x", 1.0), ("max(x, 0)*min(x, 1)", 1.4)],
)
def test_kinked_functions_evaluate_away_from_their_kinks(text, slope):
    e = explain(text, at={"x": 0.7}, order=2)
    assert e.gradient[0].value == pytest.approx(slope, rel=1e-14)
    assert e.gradient[0].check.passed and e.gradient[0].check.kink is None


def test_relu_at_its_kink_follows_torch_and_reports_the_kink():
    e = explain("relu(x)", at={"x": 0.0})
    (d,) = e.gradient
    assert d.value == 0.0  # step(0) = 0: relu'(0) = 0, as in PyTorch
    assert d.check.kink == pytest.approx((0.0, 1.0))


def test_a_second_derivative_through_a_jump_is_refused_there():
    with pytest.raises(ExplainError, match="no finite value"):
        explain("relu(x - 0.5)", at={"x": 0.5}, order=2)


@pytest.mark.parametrize(
    "text, x",
    [("log(x)", 0.001), ("1/x", 0.001), ("sqrt(x)", 0.0005), ("asin(x)", 0.9995), ("x*abs(x)", 0.0), ("relu(x)^2", 0.0)],
)
def test_the_check_stays_in_the_domain_and_accepts_converging_quotients(text, x):
    """Near the edge of a domain the step shrinks; where only f'' jumps, the quotients close in on f'."""
    (d,) = explain(text, at={"x": x}).gradient
    assert d.check.passed, d.check


def test_the_check_still_catches_a_wrong_value():
    from chainrule.explain import check_derivative

    for at, wrong in [(0.0, 1e-3), (0.5, 1.0 * (1 + 1e-4)), (0.001, 0.0021)]:
        assert not check_derivative(x * sp.Abs(x), (x,), {x: at}, x, wrong).passed, (at, wrong)


def test_a_derivative_the_language_cannot_write_is_refused_before_anything_is_written(tmp_path):
    result = _run("abs(sqrt(x))", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
