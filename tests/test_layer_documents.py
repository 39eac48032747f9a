"""The batch-level rules in the derivation documents: every rule, its NumPy code, the kernels, the proof.

``layers.layer_rules`` builds the rules and ``proof.prove`` checks them; these tests check
that every format shows what they built, and that the render layer adds nothing of its own.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import sympy as sp

from chainrule import (
    Activation,
    Dense,
    Dropout,
    Network,
    Residual,
    default_network,
    derive,
    load,
    worked_example,
)
from chainrule.expr import parse
from chainrule.layers import layer_rules
from chainrule.proof import prove
from chainrule.render import render, render_documents
from chainrule.render.environment import escape_latex, escape_markdown
from chainrule.render.printing import text_name

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SPECS = {
    "default": default_network,
    "mazur-2-2-2": lambda: load(EXAMPLES / "mazur-2-2-2.toml"),
    "softmax-3-class": lambda: load(EXAMPLES / "softmax-3-class.toml"),
    "tanh-deep": lambda: load(EXAMPLES / "tanh-deep.toml"),
    "custom-formulas": lambda: load(EXAMPLES / "custom-formulas.toml"),
}
TITLE = "The whole batch at once: layer-level rules"
TEXT_FORMATS = ("html", "tex", "md")


@dataclass
class Case:
    name: str
    derivation: object
    example: object
    proof: object
    docs: dict[str, str]

    @property
    def rules(self):
        return layer_rules(self.derivation.network)

    @property
    def layer_json(self) -> dict:
        return json.loads(self.docs["json"])["layer_rules"]


def _documents(derivation, example, proof) -> dict[str, str]:
    docs = render_documents(derivation, example, "out", "doc", proof=proof)
    return {path.suffix.lstrip("."): text for path, text in docs.items()}


@pytest.fixture(scope="module", params=list(SPECS))
def case(request) -> Case:
    d = derive(SPECS[request.param]())
    ex = worked_example(d)
    proof = prove(d.network)
    return Case(request.param, d, ex, proof, _documents(d, ex, proof))


def _code_as_written(fmt: str, line: str) -> str:
    """How a line of code appears in each format's text: escaped for HTML and LaTeX, verbatim in a Markdown fence."""
    return {"html": html.escape(line, quote=True), "tex": escape_latex(line), "md": line}[fmt]


def heading(fmt: str, title: str) -> str:
    return {"html": f"<h2>{title}</h2>", "tex": f"\\section*{{{title}}}", "md": f"\n## {title}\n"}[fmt]


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_every_format_has_the_section_after_the_layer_equations(case: Case, fmt: str) -> None:
    text = case.docs[fmt]
    assert text.count(heading(fmt, TITLE)) == 1
    assert text.index(heading(fmt, "Layer-level equations")) < text.index(heading(fmt, TITLE))


def test_json_has_the_section(case: Case) -> None:
    assert set(case.layer_json) == {"forward", "loss", "backward", "kernels", "proof"}


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_every_rule_shows_its_code(case: Case, fmt: str) -> None:
    text = case.docs[fmt]
    section = text[text.index(heading(fmt, TITLE)) :]
    rules = [*case.rules.forward, *case.rules.loss, *case.rules.backward]
    assert rules
    for rule in rules:
        for line in rule.code.splitlines():
            assert _code_as_written(fmt, line) in section, (rule.label, line)


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_every_kernel_is_named(case: Case, fmt: str) -> None:
    section = case.docs[fmt][case.docs[fmt].index(heading(fmt, TITLE)) :]
    for name in case.rules.kernels:
        written = {
            "html": f'<mtext class="code">{name}</mtext>',
            "tex": f"\\texttt{{{escape_latex(name)}}}",
            "md": f"\\mathtt{{{escape_latex(name)}}}",
        }[fmt]
        assert written in section, name


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_the_proof_sentence_says_n_of_n(case: Case, fmt: str) -> None:
    n = case.proof.entries
    assert case.proof.passed and n > 20
    text = re.sub(r"\s+", " ", case.docs[fmt])
    assert f"{n} of {n} entries equal" in text
    p = case.proof
    assert f"({p.identical} identical, {p.expanded} after expanding, {p.evaluated} to 50 digits at exact points)" in text
    assert "Checked: the generated code, run on symbols for a batch of 2 examples through this network" in text
    narrowed = case.proof.network.sizes != case.derivation.network.sizes
    assert ("at width ≤ 2" in case.docs["html"]) == narrowed


def test_the_json_rules_are_the_rules(case: Case) -> None:
    doc, rules = case.layer_json, case.rules
    for group in ("forward", "loss", "backward"):
        written = doc[group]
        assert [r["code"] for r in written] == [r.code for r in getattr(rules, group)]
        for r in written:
            assert set(r) == {"label", "layer", "lhs", "rhs", "code", "note"}
            assert r["lhs"] and r["rhs"] and isinstance(r["label"], str)
            assert r["layer"] is None or isinstance(r["layer"], int)
    assert [k["name"] for k in doc["kernels"]] == list(rules.kernels)
    for k in doc["kernels"]:
        assert {"name", "args", "expr", "title"} <= set(k)
        assert k["expr"] is None or isinstance(k["expr"], str)
    assert doc["proof"]["passed"] is True and doc["proof"]["failures"] == []
    assert {"batch", "entries", "identical", "expanded", "evaluated", "failures", "passed"} <= set(doc["proof"])
    p = doc["proof"]
    assert p["entries"] == p["identical"] + p["expanded"] + p["evaluated"] == case.proof.entries


def test_kernel_formulas_read_back_as_the_kernels(case: Case) -> None:
    written = [k for k in case.layer_json["kernels"] if k["expr"] is not None]
    assert written
    for k in written:
        kernel = case.rules.kernels[k["name"]]
        back = parse(k["expr"], sorted(str(s) for s in kernel.expr.free_symbols))
        assert sp.simplify(back - kernel.expr) == 0, k


def test_rendering_twice_gives_the_same_bytes(case: Case) -> None:
    again = _documents(case.derivation, case.example, case.proof)
    assert again == case.docs


def test_without_a_proof_the_rules_are_shown_and_nothing_is_claimed() -> None:
    d = derive(default_network())
    for fmt in TEXT_FORMATS:
        text = render(d, fmt)
        assert heading(fmt, TITLE) in text and "Z1 = X @ W1.T" in text and "Z1 += b1" in text
        assert "entries equal" not in text
    assert json.loads(render(d, "json"))["layer_rules"]["proof"] is None


def test_a_failed_proof_is_reported_not_hidden() -> None:
    d = derive(default_network())
    proof = prove(d.network)
    failed = replace(proof, identical=proof.identical - 1, failures=("gW1[0, 1]",))
    docs = _documents(d, worked_example(d), failed)
    for fmt in TEXT_FORMATS:
        text = re.sub(r"\s+", " ", docs[fmt])
        assert "Checked:" not in text and f"{proof.entries - 1} of {proof.entries} entries equal" in text
        escape = {"html": html.escape, "tex": escape_latex, "md": escape_markdown}[fmt]
        assert f"These differ: {escape('gW1[0, 1]')}." in text
    assert json.loads(docs["json"])["layer_rules"]["proof"]["passed"] is False


# The batch-norm backward in documents: the compact form equals the scalar walk ----------

def _normalization_derivation(kind):
    from chainrule.derive import derive
    from chainrule.kinds import BatchNorm, LayerNorm
    from chainrule.network import Dense, Network

    norm = BatchNorm() if kind == "batch_norm" else LayerNorm()
    return derive(Network(2, (Dense(2, "identity"), norm, Dense(1, "identity")), "mse"), batch=2)


@pytest.mark.parametrize("kind", ["batch_norm", "layer_norm"])
def test_compact_backward_equals_the_scalar_walk(kind) -> None:
    import sympy as sp

    from chainrule.kinds.normalize_equations import in_inputs

    d = _normalization_derivation(kind)
    steps = {eq.label: eq for eq in d.equations if eq.layer == 2}
    assert list(steps) == ["normalize-walk", "normalize-variance", "normalize-mean", "normalize-substituted", "normalize-compact"]
    layer, names = d.graph.layers[1], d.graph.adjoint_names
    compact = steps["normalize-compact"]
    checked = 0
    for symbol, entry in zip([s for row in compact.of for s in row], compact.explicit):
        # The walk's ∂L/∂a of the stage's input, with its own ∂L/∂μ and ∂L/∂σ² substituted.
        walk = d.adjoints[symbol].substituted
        for _ in range(2):
            walk = walk.xreplace({names[n]: d.adjoints[n].substituted for n in layer.nodes if n in names and "xhat" not in str(n)})
        difference = in_inputs(walk, layer, d.graph) - in_inputs(entry, layer, d.graph)
        assert sp.simplify(difference) == 0, symbol
        checked += 1
    assert checked == 4


def test_batch_norm_document_shows_the_steps() -> None:
    import json

    from chainrule.derive import derive
    from chainrule.network import load
    from chainrule.numeric import worked_example
    from chainrule.render import render

    net = load(Path(__file__).parent.parent / "examples" / "batchnorm-2-examples.toml")
    d = derive(net)
    ex = worked_example(d)
    html = render(d, "html", ex)
    assert 'id="steps-2"' in html and "step by step" in html
    for node in ("xhat2_1_1", "var2_1", "mu2_1", "a1_1_1", "z1_1_1"):
        assert f'id="adjoint-{node}"' in html
    doc = json.loads(render(d, "json", ex))
    assert [s["kind"] for s in doc["network"]["stages"]] == ["dense", "batch_norm", "dense"]
    assert set(doc["adjoints"]) == {str(s) for s in d.adjoints}
    assert {str(n.symbol) for n in d.graph.nodes} == set(doc["nodes"])
    assert render(d, "json", ex) == render(d, "json", ex)


# The generic steps read as the textbooks write them -----------------------------------

def test_generic_steps_keep_the_textbook_order_and_the_index_inside_the_fraction() -> None:
    from chainrule.render.printing import latex

    d = derive(load(EXAMPLES / "batchnorm-2-examples.toml"))
    steps = {eq.label: latex(eq.lhs, d.notation) + " = " + latex(eq.rhs, d.notation) for eq in d.equations if eq.of}
    h_m = r"\frac{\partial L}{\partial \hat{x}^{(2)}_{m}}"
    root = r"\sqrt{{\sigma^{2}}^{(2)} + \epsilon^{(2)}}"
    assert steps["normalize-walk"] == (
        r"\frac{\partial L}{\partial a^{(1)}_{n}} = \frac{\partial L}{\partial \hat{x}^{(2)}_{n}} \frac{1}{" + root + "} + "
        r"\frac{\partial L}{\partial {\sigma^{2}}^{(2)}} \frac{2 \left(a^{(1)}_{n} - \mu^{(2)}\right)}{B} + \frac{\partial L}{\partial \mu^{(2)}} \frac{1}{B}"
    )
    assert steps["normalize-variance"].endswith(
        r"= - \frac{\sum_{m=1}^{B} " + h_m + r" \left(a^{(1)}_{m} - \mu^{(2)}\right)}{2 \left({\sigma^{2}}^{(2)} + \epsilon^{(2)}\right)^{\frac{3}{2}}}"
    )
    assert steps["normalize-compact"].endswith(
        r"= \frac{1}{B " + root + r"} \left(B \frac{\partial L}{\partial \hat{x}^{(2)}_{n}} - \sum_{m=1}^{B} " + h_m
        + r" - \hat{x}^{(2)}_{n} \sum_{m=1}^{B} " + h_m + r" \hat{x}^{(2)}_{m}\right)"
    )
    for text in steps.values():
        assert r"\right)_{m}" not in text and "- \\mu^{(2)} + a" not in text and r"\epsilon^{(2)} + {\sigma" not in text
    page = render(d, "html", worked_example(d))
    # ∂L/∂x̂⁽²⁾ₘ in MathML: the m sits in the denominator's msubsup, not on a fraction in parentheses.
    assert "<mo>∂</mo><msubsup><mi>x̂</mi><mi>m</mi>" in page


def test_long_entries_go_on_over_lines_and_each_note_stands_above_its_step() -> None:
    d = derive(load(EXAMPLES / "batchnorm-2-examples.toml"))
    ex = worked_example(d)
    page = render(d, "html", ex)
    block = page[page.index('id="steps-2"'):page.index("</article>", page.index('id="steps-2"'))]
    assert block.count('class="step-note"') == 5
    assert block.count('class="continued"') >= 4  # the substituted entries, a line of two terms after the first
    assert 'class="stepwise"' not in block and 'block stepwise' in page
    # The same rows in LaTeX and Markdown: counted in the block itself (other sections have continued rows too).
    tex = render(d, "tex", ex)
    start = tex.index("the backward of batch normalization")
    assert tex[start : tex.index("\\subsubsection*", start)].count(r"\crrow{}{}{") == block.count('class="continued"')
    md = render(d, "md", ex)
    start = md.index("the backward of batch normalization")
    assert sum(md[start : md.index("\n#### ", start)].count(t) for t in (r"$$\quad ", r"$$\begin{aligned}&\quad ")) == block.count('class="continued"')


def test_a_run_of_superscripts_is_one_superscript_in_latex() -> None:
    assert escape_latex("a⁽³⁾ = a⁽¹⁾ + F") == r"a\ensuremath{^{(3)}} = a\ensuremath{^{(1)}} + F"
    assert escape_latex("σ² and x₁₂") == r"\ensuremath{\sigma}\ensuremath{^{2}} and x\ensuremath{_{12}}"


# The network picture shows every kind --------------------------------------------------

KIND_NETWORKS = {
    "batch_norm": lambda: load(EXAMPLES / "batchnorm-2-examples.toml"),
    "residual": lambda: Network(2, (Dense(2, "tanh"), Residual((Dense(2, "relu"),)), Dense(1, "identity")), "half_sse"),
    "dropout": lambda: Network(2, (Dense(3, "relu"), Dropout(0.5), Dense(1, "identity")), "mse"),
    "activation": lambda: Network(2, (Dense(2, "identity"), Activation("tanh"), Dense(1, "identity")), "mse"),
}


def _picture(name: str):
    """The derivation, its worked example, and the network picture's SVG and LaTeX picture, as text."""
    d = derive(KIND_NETWORKS[name]())
    ex = worked_example(d)
    page = render(d, "html", ex)
    start = page.index('<figure class="network">')
    svg = page[start:page.index("</figure>", start)]  # the picture and its legend
    tex = render(d, "tex", ex)
    picture = tex[tex.index(r"\begin{picture}"):tex.index(r"\end{picture}")]
    return d, ex, svg, picture


def test_the_picture_boxes_a_batch_norm() -> None:
    d, _, svg, picture = _picture("batch_norm")
    assert svg.count('<g class="box">') == 1 and ">BN</text>" in svg
    assert "batch normalization: μ and σ² over the batch, per unit, then γ x̂ + β" in svg
    assert picture.count(r"\framebox") == 1 and r"\bfseries BN" in picture
    # Its two outputs (first example) are drawn inside the box.
    box = re.search(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" rx="8">', svg)
    x, y, w, h = map(float, box.groups())
    names = [text_name(a, d.notation) for a in d.graph.layers[1].output_grid[0]]
    centres = [tuple(map(float, re.search(f'<title>{n}</title>\n<circle cx="([\\d.]+)" cy="([\\d.]+)"', svg).groups())) for n in names]
    assert len(centres) == 2 and all(x < cx < x + w and y < cy < y + h for cx, cy in centres)


def test_the_picture_crosses_out_the_units_the_mask_drops() -> None:
    d, ex, svg, picture = _picture("dropout")
    mask = [ex.values[m] for m in d.graph.layers[1].leaves["M2"][0]]
    dropped = [j + 1 for j, m in enumerate(mask) if m == 0]
    assert 0 < len(dropped) < len(mask), mask  # the seed drops some units, not all
    assert svg.count('<path class="cross"') == len(dropped)
    for j in dropped:
        assert f"{text_name(d.graph.layers[1].output_grid[0][j - 1], d.notation)}, dropped in the first example (mask 0)" in svg
    assert svg.count("dropped in the first example") == len(dropped)
    assert picture.count(r"\line(1,1)") == picture.count(r"\line(1,-1)") == len(dropped)
    assert "A crossed-out unit is dropped in the worked example" in svg


def test_the_picture_draws_a_residual_sum_and_its_skip_arcs() -> None:
    d, ex, svg, picture = _picture("residual")
    assert svg.count('<g class="unit sum') == 2  # one ⊕ per unit of the sum
    assert svg.count('<path class="skip') == 2  # one arc per unit, from the skip's unit to its sum
    assert svg.count("the skip connection: the identity path") == 2
    # In LaTeX the arcs are curves beside the straight edges, which are drawn as curves too.
    assert picture.count(r"$\oplus$") == 2 and picture.count(r"\qbezier") == 2 + svg.count('<line class="edge')
    assert "residual sum" in svg
    # The legend's a⁽³⁾ = a⁽¹⁾ + F is set with real superscripts in the PDF.
    tex = render(d, "tex", ex)
    assert r"a\ensuremath{^{(3)}} = a\ensuremath{^{(1)}} + F" in tex


def test_the_picture_boxes_an_activation() -> None:
    _, _, svg, picture = _picture("activation")
    assert svg.count('<g class="box">') == 1 and ">f</text>" in svg
    assert "the activation tanh, unit by unit" in svg
    assert picture.count(r"\framebox") == 1
