"""How formulas are written and laid out, the same in every format.

The printers write a sum's terms and a product's factors in one order (indices counted as
numbers, weights with their inputs, the bias last), agree with each other on every form
(−e⁻ᶻ, ∂²/∂x², 𝟏[j = k]), and a long formula is cut into parts that a line may break between
(``render.environment.atoms``), which put back together are the printer's own formula.
The browser and pdflatex tests measure the laid-out result.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sympy as sp
from test_rules import CORPUS

from chainrule import Dense, Network, default_network, derive, load, worked_example
from chainrule.explain import explain
from chainrule.render import render
from chainrule.render.environment import (
    MARKDOWN_LINE,
    Fence,
    Operator,
    _tex_width,
    atoms,
    latex_environment,
)
from chainrule.render.explanation import render_explanation
from chainrule.render.printing import latex, mathml
from chainrule.render.steps import Number, Op

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def wide():
    """A layer of 12 inputs: indices past 9, written w_{1,10}."""
    return derive(Network(12, (Dense(2, "sigmoid"),), "mse"))


def _z(d, layer: int, unit: int):
    z = d.graph.layers[layer - 1].z[unit - 1]
    return d.graph.node(z).display


# --- the order of terms and factors -------------------------------------------------------


def test_latex_writes_a_long_sum_in_numeric_index_order_with_the_bias_last(wide) -> None:
    text = latex(_z(wide, 1, 1), wide.notation)
    assert re.findall(r"x_\{(\d+)\}", text) == [str(k) for k in range(1, 13)], text
    assert re.findall(r"w\^\{\(1\)\}_\{(1,?\d+)\}", text) == [f"1{k}" for k in range(1, 10)] + ["1,10", "1,11", "1,12"]
    assert text.endswith("b^{(1)}_{1}"), text


def test_mathml_writes_a_long_sum_in_numeric_index_order_with_the_bias_last(wide) -> None:
    text = mathml(_z(wide, 1, 1), wide.notation)
    assert re.findall(r"<msub><mi>x</mi><mn>(\d+)</mn></msub>", text) == [str(k) for k in range(1, 13)]
    assert text.rfind("<mi>b</mi>") > text.rfind("<mi>x</mi>")


def test_markdown_writes_a_long_sum_in_numeric_index_order(wide) -> None:
    doc = render(wide, "md", worked_example(wide))
    row = next(line for line in doc.splitlines() if line.startswith("$$") and "z^{(1)}_{1}  &=" in line)
    assert re.findall(r"x_\{(\d+)\}", row) == [str(k) for k in range(1, 13)], row


def test_a_softmax_denominator_counts_its_indices() -> None:
    total = sp.Add(*[sp.exp(sp.Symbol(f"z{i}")) for i in range(1, 11)])
    assert re.findall(r"e\^\{z_\{(\d+)\}\}", latex(total)) == [str(i) for i in range(1, 11)]
    assert re.findall(r"<msub><mi>z</mi><mi>(\d+)</mi></msub>", mathml(total)) == [str(i) for i in range(1, 11)]


@pytest.mark.parametrize(
    "network",
    [
        pytest.param(default_network, id="default-2-2-2"),
        pytest.param(lambda: load(EXAMPLES / "relu-regression.toml"), id="relu-regression"),
        pytest.param(lambda: load(EXAMPLES / "tanh-deep.toml"), id="tanh-deep"),
    ],
)
def test_every_layer_writes_weights_with_their_inputs_then_the_bias(network) -> None:
    """w x + b in the first layer and w a + b in the next, never b + w x or a w + b."""
    d = derive(network())
    for layer in d.graph.layers:
        for z in layer.z:
            text = latex(d.graph.node(z).display, d.notation)
            assert text.startswith(f"w^{{({layer.number})}}"), text
            for term in text.split(" + ")[:-1]:
                assert re.fullmatch(r"w\^\{\(\d\)\}_\{[\d,]+\} (x_\{\d+\}|a\^\{\(\d\)\}_\{\d+\})", term), term
            if layer.biases is not None:
                assert re.search(r" \+ b\^\{\(\d\)\}_\{\d+\}$", text), text


# --- one form in every format --------------------------------------------------------------


def _corpus_and_derivatives() -> list[sp.Expr]:
    out = []
    for f in CORPUS:
        out.append(f)
        out += [sp.diff(f, s) for s in sorted(f.free_symbols, key=str)[:1]]
    return out


def test_mathml_and_latex_write_the_same_fractions_and_roots() -> None:
    """SymPy's MathML printer moved e⁻ᶻ into a denominator (−e⁻ᶻ became −1/eᶻ); the LaTeX printer did not."""
    differ = []
    for e in _corpus_and_derivatives():
        tex, ml = latex(e), mathml(e)
        if (tex.count(r"\frac"), tex.count(r"\sqrt")) != (ml.count("<mfrac"), ml.count("<msqrt") + ml.count("<mroot")):
            differ.append(tex)
    assert differ == [], differ[:5]


def test_minus_e_to_the_minus_z_is_one_form() -> None:
    z = sp.Symbol("z")
    assert latex(-sp.exp(-z)) == "- e^{- z}"
    assert mathml(-sp.exp(-z)) == "<mrow><mo>−</mo><msup><mi>e</mi><mrow><mo>−</mo><mi>z</mi></mrow></msup></mrow>"


def test_the_sigmoid_derivative_reads_e_to_the_minus_z_in_html() -> None:
    d = derive(default_network())
    doc = render(d, "html", worked_example(d))
    section = doc[doc.index('id="activations"') : doc.index('id="backward"')]
    assert "<msup><mi>e</mi><mrow><mo>−</mo><mi>z</mi></mrow></msup>" in section
    assert "<msup><mi>e</mi><mi>z</mi></msup>" not in section


def test_a_power_of_a_function_is_written_alike() -> None:
    x = sp.Symbol("x")
    assert latex(sp.tanh(x) ** 2) == r"\tanh^{2}{\left(x \right)}"
    assert mathml(sp.tanh(x) ** 2).startswith("<mrow><msup><mi>tanh</mi><mn>2</mn></msup>")


def test_a_condition_reads_if_in_both_printers() -> None:
    x = sp.Symbol("x")
    relu = sp.Piecewise((0, x < 0), (x, True))
    assert r"\text{if}" in latex(relu) and "for" not in latex(relu)
    assert "<mtext>if\u00a0</mtext>" in mathml(relu) and "<mo>&lt;</mo>" in mathml(relu)


_DERIVATIVE_DENOMINATOR = re.compile(r"<mfrac><mrow><msup><mo>(?:∂|&#x2202;)</mo><mn>2</mn></msup></mrow><mrow>(.*?)</mrow></mfrac>")


def test_the_html_headings_of_second_derivatives_read_d2_over_dx2() -> None:
    doc = render_explanation(explain("x/(1+y**2)", [], None, 2), "html")
    hessian = doc[doc.index('id="hessian"') :]
    headings = re.findall(r"<h3>(.*?)</h3>", hessian)
    below = [_DERIVATIVE_DENOMINATOR.search(h).group(1).replace("&#x2202;", "∂") for h in headings]
    assert below == [
        "<mo>∂</mo><msup><mi>x</mi><mn>2</mn></msup>",
        "<mo>∂</mo><mi>y</mi><mo>∂</mo><mi>x</mi>",
        "<mo>∂</mo><mi>x</mi><mo>∂</mo><mi>y</mi>",
        "<mo>∂</mo><msup><mi>y</mi><mn>2</mn></msup>",
    ]


def test_the_kronecker_delta_cannot_be_read_as_an_error() -> None:
    j, k = sp.symbols("j k")
    assert latex(sp.KroneckerDelta(j, k)) == r"\mathbf{1}\left[j = k\right]"
    ml = mathml(sp.KroneckerDelta(j, k))
    assert ml.startswith("<mrow><mn>𝟏</mn><mo>[</mo>") and "δ" not in ml


def test_negative_numbers_in_html_have_a_minus_sign() -> None:
    d = derive(default_network())
    doc = render(d, "html", worked_example(d))
    assert re.search(r"<mn>−\d", doc) and not re.search(r"<mn>-", doc)


# --- long formulas: parts a line may break between -----------------------------------------


def _normalized(tex: str) -> str:
    tex = re.sub(r"\\(big|Big|bigg)l\(|\\left\(", "(", tex)
    tex = re.sub(r"\\(big|Big|bigg)r\)|\\right\)", ")", tex)
    return re.sub(r"\s+|\{\}", "", tex)


def _latex_of_parts(parts: list[tuple], notation=None) -> str:
    env = latex_environment(notation or {})
    out = []
    for part in parts:
        for p in part:
            if isinstance(p, Op):
                out.append(env.filters["op"](p))
            elif isinstance(p, Fence):
                out.append(env.filters["fence"](p))
            elif isinstance(p, Operator):
                out.append(env.filters["operator"](p))
            elif isinstance(p, Number):
                out.append(env.filters["num"](p.value))
            else:
                out.append(env.filters["math"](p))
    return " ".join(out)


_w = sp.symbols("w1:21")
_x = sp.symbols("x1:21")
_a, _b, _y = sp.symbols("a b y")
_LONG = {
    "sum": sum(w * x for w, x in zip(_w, _x)) + _b,
    "negative terms": sum(w * x for w, x in zip(_w, _x)) - 3 * _a * _b,
    "product with a sum": _a * (1 - _a) * sum(w * x for w, x in zip(_w[:8], _x)),
    "sum in a product, not last": sum(w * x for w, x in zip(_w[:8], _x)) * sp.Piecewise((0, _a < 0), (1, True)),
    "minus a sum": sp.Add(_y, sp.Mul(-1, sum(w * sp.log(x) for w, x in zip(_w[:6], _x)), evaluate=False), evaluate=False),
    "derivative of a sum": sp.Derivative(sum(w * x for w, x in zip(_w[:10], _x)), _x[0]),
    "equation": sp.Eq(sum(sp.Symbol(f"y{i}") for i in range(1, 21)), 1),
}


@pytest.mark.parametrize("name", list(_LONG))
def test_the_parts_of_a_long_formula_put_together_are_the_formula(name: str) -> None:
    expr = _LONG[name]
    parts = atoms((expr,))
    assert len(parts) > 3, parts
    assert all(isinstance(part[0], Op) for part in parts[1:]), parts
    assert _normalized(_latex_of_parts(parts)) == _normalized(latex(expr))


def test_a_sum_of_64_terms_breaks_before_each_plus() -> None:
    w, x = sp.symbols("w1:65"), sp.symbols("x1:65")
    parts = atoms((sp.Symbol("z"), Op("="), sum(a * b for a, b in zip(w, x)) + _b), lead=None)
    assert len(parts) == 1 + 65
    assert [p[0].text for p in parts[1:]] == ["="] + ["+"] * 64


def test_a_short_formula_stays_whole() -> None:
    assert atoms((_a * _b + 1,), "=") == [(Op("="), _a * _b + 1)]


def test_a_long_fraction_may_be_written_one_over_its_denominator_times_its_factors() -> None:
    pieces = [sp.Piecewise((w, x < 0), (1, True)) for w, x in zip(_w[:4], _x)]
    expr = sp.Mul(*pieces) / (_a + 1) ** 2
    assert atoms((expr,)) == [(expr,)]
    parts = atoms((expr,), fractions=True)
    assert parts[0][0] == sp.Pow((_a + 1) ** 2, -1, evaluate=False)
    assert [p[0] for p in parts[1:]] == [Op("·")] * 3
    assert sp.simplify(sp.Mul(*[p for part in parts for p in part if isinstance(p, sp.Basic)]) - expr) == 0


def test_markdown_writes_a_long_row_as_lines_of_an_aligned_block() -> None:
    d = derive(Network(30, (Dense(1, "identity"),), "mse"))
    doc = render(d, "md", worked_example(d))
    row = next(line for line in doc.splitlines() if line.startswith(r"$$\begin{aligned}z^{(1)}_{1}"))
    lines = row.removeprefix("$$").removesuffix("$$").split(r" \\ ")
    assert len(lines) >= 3
    assert all(_tex_width(line) <= MARKDOWN_LINE + 20 for line in lines), [_tex_width(line) for line in lines]
    assert re.findall(r"x_\{(\d+)\}", row) == [str(k) for k in range(1, 31)]


@pytest.mark.parametrize("fmt", ["html", "tex", "md"])
def test_documents_are_the_same_bytes_each_time(fmt: str) -> None:
    d = derive(load(EXAMPLES / "softmax-3-class.toml"))
    ex = worked_example(d)
    assert render(d, fmt, ex) == render(d, fmt, ex)


def test_a_function_named_by_a_word_keeps_its_power_outside_and_its_space():
    import sympy as sp

    from chainrule.functions import relu

    u, x = sp.symbols("u x")
    assert latex(relu(u) ** 2, {}) == "\\operatorname{relu}{\\left(u \\right)}^{2}"
    assert mathml(relu(u) ** 2, {}).startswith("<msup><mrow><mi>relu</mi>")
    assert latex(sp.tanh(u) ** 2, {}).startswith("\\tanh^{2}") and "<msup><mi>tanh</mi>" in mathml(sp.tanh(u) ** 2, {})
    # x step(u), as LaTeX's \operatorname spaces it; x y stays tight.
    assert '<mspace width="0.1667em"/><mrow><mi>step</mi>' in mathml(x * sp.Heaviside(u, 0), {})
    assert "mspace" not in mathml(x * u, {})
    assert mathml(sp.Symbol("u'"), {}) == "<mi>u′</mi>"
