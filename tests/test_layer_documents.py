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

from chainrule import default_network, derive, load, worked_example
from chainrule.expr import parse
from chainrule.layers import layer_rules
from chainrule.proof import prove
from chainrule.render import render, render_documents
from chainrule.render.environment import escape_latex, escape_markdown

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
    from chainrule.network import load
    from chainrule.numeric import worked_example
    from chainrule.derive import derive
    from chainrule.render import render
    import json

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
