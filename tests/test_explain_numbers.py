"""``chainrule explain``'s numbers and notation: honest checks at kinks, checked Hessians, a glossary, a Hessian that fits."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys

import pytest
import sympy as sp
from conftest import required_program

from chainrule.differences import BETWEEN_SIDES, SIDES_AGREE
from chainrule.explain import explain
from chainrule.functions import relu
from chainrule.glossary import GLOSSARY, glossary
from chainrule.kinks import BREAKS, breaks
from chainrule.render.explanation import LINE, hessian_layout, render_explanation
from chainrule.render.width import printed_width

x, y, u = (sp.Symbol(n, real=True) for n in "xyu")

RELU_KINK = ("relu(w*x+b)**2", {"w": 0.5, "x": 2, "b": -1})


def _text(document: str) -> str:
    """An HTML document's words, its math reduced to the characters it shows."""
    return html.unescape(re.sub(r"<[^>]+>", "", document))


# --- the relu kink: the real difference, and a sentence on the kink ---


def test_the_relu_kink_reports_the_real_difference():
    e = explain(RELU_KINK[0], at=RELU_KINK[1])
    for d in e.gradient:
        c = d.check
        assert d.value == 0.0
        # f = (c·t)² right of the kink and 0 left of it (c = ∂u/∂v): the central difference is c²h/3, never 0
        assert c.straddling is c.central and c.estimate > 1e-5
        assert c.absolute_error == pytest.approx(c.estimate)
        assert c.relative_error == 1.0  # was capped at the tolerance, 1e-06
        assert c.one_sided == (0.0, 0.0) and c.verdict == SIDES_AGREE and c.passed
    (w,) = [d for d in e.gradient if str(d.wrt[0]) == "w"]
    assert w.check.estimate == pytest.approx(4e-3 / 3, rel=1e-9) and w.check.step == 1e-3
    checks = json.loads(render_explanation(e, "json"))["checks"]
    assert checks["w"]["finite_difference"] == pytest.approx(4e-3 / 3, rel=1e-9)
    assert checks["w"]["relative_error"] == 1.0 and checks["w"]["absolute_error"] == pytest.approx(4e-3 / 3, rel=1e-9)
    assert checks["w"]["one_sided"] == {"left": 0.0, "right": 0.0} and checks["w"]["verdict"] == SIDES_AGREE
    assert checks["w"]["kinks"] == [{"function": "relu", "kind": "kink", "call": "relu(b + w*x)", "argument": "b + w*x", "value": 0.0}]
    text = _text(render_explanation(e, "html"))
    assert "a relative difference of 1e-06" not in text and "a relative difference of 1)" in text


@pytest.mark.parametrize("fmt", ["html", "tex", "md"])
def test_the_relu_kink_is_said_in_one_sentence_in_every_format(fmt):
    document = render_explanation(explain(RELU_KINK[0], at=RELU_KINK[1]), fmt)
    text = _text(document) if fmt == "html" else document
    assert text.count("has a kink (slopes") == 3  # one per derivative
    assert "relu′(0) = 0, as in PyTorch" in text or r"relu\ensuremath{'}(0) = 0, as in PyTorch" in text
    assert text.count("straddles the kink") == 3
    assert text.count("has a derivative here after all") == 3


def test_the_cli_exits_0_at_the_kink_and_prints_no_capped_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "chainrule", "explain", RELU_KINK[0], "--at", "w=0.5,x=2,b=-1", "--format", "json", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "explain.json").read_text())
    assert all(c["passed"] and c["relative_error"] == 1.0 for c in data["checks"].values())


#: One formula and point per break of the table: where the check meets it, what it concludes.
AT_BREAKS = {
    "relu": ("relu(x)", {"x": 0.0}, BETWEEN_SIDES, (0.0, 1.0)),
    "|·|": ("abs(x)", {"x": 0.0}, BETWEEN_SIDES, (-1.0, 1.0)),
    "max": ("max(x, y)", {"x": 0.5, "y": 0.5}, BETWEEN_SIDES, (0.0, 1.0)),
    "min": ("min(x, y)", {"x": 0.5, "y": 0.5}, BETWEEN_SIDES, (1.0, 0.0)),
    # a jump's derivative has no value on it (a δ), so these stand near it, within the step
    "step": ("step(x - 0.0005)*x", {"x": 0.0}, "agrees", (0.0, 0.0)),
    "H": ("heaviside(x - 0.0005)*x", {"x": 0.0}, "agrees", (0.0, 0.0)),
    "sign": ("sign(x - 0.0005)*x", {"x": 0.0}, "agrees", (-1.0, -1.0)),
}


def test_every_break_of_the_table_has_a_case():
    assert set(AT_BREAKS) == {info.name for _, _, info in BREAKS}


@pytest.mark.parametrize("name", sorted(AT_BREAKS))
def test_the_check_names_the_break_it_meets(name):
    text, at, verdict, sides = AT_BREAKS[name]
    d = explain(text, wrt=["x"], at=at).gradient[0]
    c = d.check
    assert [k.info.name for k in c.kinks] == [name]
    assert c.verdict == verdict and c.passed
    assert c.one_sided == pytest.approx(sides, abs=1e-8)
    if verdict == "agrees":
        # near the break: a smaller step, clear of it, decides; the straddling one is reported too
        assert c.straddling is not None and not c.central.straddles and c.relative_error < 1e-9
        assert abs(c.straddling.value - d.value) > 1e-3
    sentence = _text(render_explanation(explain(text, wrt=["x"], at=at), "html"))
    assert ("has a kink" if AT_BREAKS[name][2] == BETWEEN_SIDES else "jumps (from") in sentence
    assert ("has no derivative here" in sentence) == (verdict == BETWEEN_SIDES)


def test_a_wrong_value_on_a_kink_still_fails():
    from chainrule.explain import check_derivative

    assert not check_derivative(relu(x), (x,), {x: 0.0}, x, 2.0).passed  # outside the slopes 0 and 1
    assert not check_derivative(x * sp.Abs(x), (x,), {x: 0.0}, x, 1e-3).passed  # both sides say 0
    assert check_derivative(relu(x), (x,), {x: 0.0}, x, 0.0).passed


@pytest.mark.parametrize("entry", BREAKS, ids=[b.name for _, _, b in BREAKS])
def test_the_sides_of_each_break_are_right(entry):
    """A break's sides (slopes of a kink, values of a jump) against the function itself, just left and right of 0."""
    recognizes, arguments, info = entry
    samples = {"relu": relu(u), "|·|": sp.Abs(u), "max": sp.Max(u, 0), "min": sp.Min(u, 0),
               "step": sp.Heaviside(u, 0), "H": sp.Heaviside(u), "sign": sp.sign(u)}  # fmt: skip
    node = samples[info.name]
    assert recognizes(node) and [k.info for k in breaks(node)] == [info]
    (argument,) = arguments(node)
    assert argument == u  # min(u, 0), max(u, 0) break at u − 0 = u
    t = sp.Rational(1, 1000)
    if info.kind == "kink":
        left = (node.subs(u, 0) - node.subs(u, -t)) / t
        right = (node.subs(u, t) - node.subs(u, 0)) / t
    else:
        left, right = node.subs(u, -t), node.subs(u, t)
    assert (left, right) == info.sides


# --- the Hessian: every entry checked, mixed partials alike ---


@pytest.mark.parametrize(
    "text, at",
    [("x/(1+y**2)", {"x": 1, "y": 2}), ("exp(x)*sin(y)/(1+x*y)", {"x": 0.3, "y": 0.4}), ("relu(w*x+b)**2", {"w": 0.5, "x": 2, "b": -0.999})],
)
def test_every_second_derivative_is_checked_in_json(text, at):
    e = explain(text, order=2, at=at)
    data = json.loads(render_explanation(e, "json"))
    names = [str(v) for v in e.wrt]
    assert set(data["hessian_checks"]) == set(names)
    for row in e.hessian:
        for h in row:
            u_, v_ = (str(s) for s in h.wrt)
            check = data["hessian_checks"][u_][v_]
            assert check["passed"] and check["relative_error"] < 1e-7, (u_, v_, check)
            assert check["finite_difference"] == pytest.approx(data["hessian_values"][u_][v_], rel=1e-8, abs=1e-12)
            assert check["relative_error"] == h.check.relative_error


@pytest.mark.parametrize("fmt", ["html", "tex", "md"])
def test_every_second_derivative_is_checked_in_every_format(fmt):
    e = explain("x/(1+y**2)", order=2, at={"x": 1, "y": 2})
    document = render_explanation(e, fmt)
    text = _text(document) if fmt == "html" else document
    # two first derivatives and four second ones, each with its central difference
    assert text.count("A central difference gives") == 6


@pytest.mark.parametrize("text", ["exp(x)*sin(y)/(1+x*y)", "relu(w*x+b)**2", "x**3*y + exp(x*y)"])
def test_mixed_partials_are_written_alike_and_said_equal(text):
    e = explain(text, order=2)
    n = len(e.wrt)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = e.hessian[i][j], e.hessian[j][i]
            assert a.result == b.result
            assert b.mirror == a.wrt and a.mirror is None
            for h in (a, b):
                assert sp.simplify(h.result - sp.diff(e.formula, *h.wrt)) == 0
    assert _text(render_explanation(e, "html")).count("Schwarz") == n * (n - 1) // 2
    assert json.loads(render_explanation(e, "json"))["hessian_equal"] == [[str(e.wrt[i]), str(e.wrt[j])] for j in range(n) for i in range(j)]


# --- the Hessian's layout ---


def _layout(text: str):
    e = explain(text, order=2)
    return hessian_layout(e, sp.Function("f")(*e.variables))


def test_the_quotient_hessian_is_a_matrix_of_display_size_cells_that_fits():
    layout = _layout("x/(1+y**2)")
    assert layout.kind == "matrix" and layout.width <= LINE
    document = render_explanation(explain("x/(1+y**2)", order=2, at={"x": 1, "y": 2}), "html")
    section = document[document.index('<section id="hessian">') :]
    (matrix,) = re.findall(r'<mtable class="hessian">(.*?)</mtable>', section[: section.index("<article")])
    cells = re.findall(r"<mtd>(.*?)</mtd>", matrix)
    assert len(cells) == 4 and all(c.startswith('<mstyle displaystyle="true">') for c in cells)
    assert "\\displaystyle" in render_explanation(explain("x/(1+y**2)", order=2), "tex").split("The Hessian")[1].split("subsection")[0]


@pytest.mark.parametrize(
    "text, kind",
    [("x/(1+y**2)", "matrix"), ("x*y*z + exp(x*y*z)", "columns"), ("x*y*z/(x**2+y**2+z**2+1)", "entries"), ("exp(x)*sin(y)/(1+x*y)", "entries")],
)
def test_no_hessian_matrix_is_wider_than_a_line(text, kind):
    """Every matrix the Hessian section shows fits ``LINE``: the whole, its columns, or the matrix of names."""
    layout = _layout(text)
    assert layout.kind == kind
    e = explain(text, order=2)
    document = render_explanation(e, "html")
    section = document[document.index('<section id="hessian">') : document.index('<article class="block" id="h-')]
    shown = {"matrix": 1, "columns": len(e.wrt), "entries": 1}[kind]
    assert section.count('<mtable class="hessian">') == shown * (2 if kind == "columns" else 1)
    widths = {"matrix": layout.width, "columns": layout.column_width, "entries": printed_width(sp.Matrix(layout.names)) + 2}
    assert widths[kind] <= LINE
    if kind == "entries":  # and each entry is listed, the equal mixed ones by name
        assert section.count("<li>") == len(e.wrt) ** 2


def test_printed_width_is_a_fair_measure():
    """Against the widths pdflatex gives these formulas in display style (ems of 10.95 pt, measured once)."""
    w, b = sp.symbols("w b", real=True)
    measured = {  # pdflatex \wd of $\displaystyle ...$ / 10.95pt
        x / (1 + y**2): 2.9,
        -2 * y / (y**2 + 1) ** 2: 4.9,
        x**3 * y + sp.exp(x * y): 4.1,
        3 * x**2 + x * y * sp.exp(x * y) + sp.exp(x * y): 7.8,
        sp.log(sp.exp(b + w * x) + 1): 6.8,
        x * y / (x**2 + y**2 + 1): 5.1,
    }
    for expr, width in measured.items():
        assert 0.95 * width <= printed_width(expr) <= 1.3 * width, expr


# --- the glossary ---


@pytest.mark.parametrize(
    "text, defined",
    [
        ("x**2", []),
        ("heaviside(x)*x", ["H", "delta"]),
        ("relu(x)", ["relu", "step"]),
        ("step(x)*x", ["step", "delta"]),
        ("max(x, y)", ["H"]),
        ("abs(x) + sigmoid(x)", ["sigma", "sign"]),
        ("softplus(x) + erf(x)", ["sigma", "softplus", "erf"]),
    ],
)
def test_the_notation_defines_what_appears_and_nothing_else(text, defined):
    e = explain(text)
    assert [d.name for d in e.notation] == defined
    data = json.loads(render_explanation(e, "json"))
    assert [d["name"] for d in data["notation"]] == defined
    document = render_explanation(e, "html")
    assert ('<section id="notation">' in document) == bool(defined)
    if "H" in defined:  # H(0) = 1/2 is said where H is defined
        notes = document[document.index('<section id="notation">') : document.index('<section id="gradient">')]
        assert "<mfrac><mn>1</mn><mn>2</mn></mfrac>" in notes and "1/2 at 0" in notes
    tex = render_explanation(e, "tex")
    assert ("\\section*{Notation}" in tex) == bool(defined)


def test_h_and_step_are_told_apart():
    e = explain("heaviside(x) + step(y)", order=1)
    notes = {d.name: d for d in e.notation}
    assert set(notes) >= {"H", "step"}
    tex = render_explanation(e, "tex")
    block = tex[tex.index("\\section*{Notation}") : tex.index("\\section*{The gradient}")]
    assert "H\\left(u\\right) =" in block and "\\operatorname{step}\\left(u\\right) =" in block


@pytest.mark.parametrize("entry", GLOSSARY, ids=[d.name for _, d in GLOSSARY])
def test_each_definition_is_true(entry):
    """Each definition's two sides agree (at points on either side of 0, and at 0 where both have a value)."""
    recognizes, definition = entry
    for lhs, rhs in definition.equations:
        assert any(recognizes(n) for n in sp.preorder_traversal(lhs))
        assert glossary([lhs])[0] is definition if not isinstance(lhs, sp.Derivative) else True
        at_zero = () if definition.name == "delta" else (0,)
        for value in (-sp.Rational(3, 2), *at_zero, sp.Rational(7, 10)):
            point = {s: value for s in lhs.free_symbols}
            left, right = (side.subs(point).rewrite(sp.exp) for side in (lhs.doit(), rhs))
            assert abs(sp.N(left - right, 30)) < 1e-25, (definition.name, value, left, right)


# --- in a browser: the quotient's Hessian neither scrolls nor shrinks ---

MEASURE = """
<script>
window.addEventListener("load", function () {
  var boxes = Array.prototype.slice.call(document.querySelectorAll("#hessian > div.scroll"));
  var over = boxes.filter(function (e) { return e.scrollWidth > e.clientWidth + 1; }).length;
  function height(selector, last) {
    var all = document.querySelectorAll(selector), f = all[last ? all.length - 1 : 0];
    return f ? f.getBoundingClientRect().height : 0;
  }
  var result = {boxes: boxes.length, over: over,
                cell: height("#hessian > div.scroll mtable.hessian mfrac", false), result: height("#d-y div.result mfrac", true)};
  var pre = document.createElement("pre");
  pre.id = "chainrule-test-result";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>
"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [1200, 640])
def test_the_quotient_hessian_fits_the_page_at_full_size(tmp_path, width):
    chromium = required_program("chromium")
    document = render_explanation(explain("x/(1+y**2)", order=2, at={"x": 1, "y": 2}), "html")
    page = tmp_path / "probe.html"
    page.write_text(document.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
               f"--window-size={width},3000", "--dump-dom", page.as_uri()]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False).stdout
    found = re.search(r'<pre id="chainrule-test-result">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom[-500:]
    measured = json.loads(html.unescape(found.group(1)))
    assert measured["boxes"] == 1 and measured["over"] == 0, measured
    # a cell's fraction −2y/(y² + 1)² is as tall as the same fraction in the result line of ∂f/∂y
    assert measured["cell"] >= 0.95 * measured["result"] > 0, measured
