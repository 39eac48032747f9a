"""Documents of networks too large to show every entry: summaries that stay readable and small.

Above ``DETAIL_LIMIT`` parameters a document derives one representative of each layer and
parameter array step by step, lists the first rows of each table, and says how many more
there are; the JSON document stays complete. Expected counts are worked out here from the
network's shape, not taken from the code under test.
"""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import pytest

from chainrule import Dense, Network, derive, load, worked_example
from chainrule.render import render, render_documents
from chainrule.render.diagram import MOST_EDGES, WIDEST_LAYER, network_diagram
from chainrule.render.environment import escape_latex, escape_markdown
from chainrule.render.summary import DETAIL_LIMIT, SUMMARY_ROWS, is_summary

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LARGE = ("digits", "moons", "iris")
#: The examples that teach: every entry derived, exactly as before summaries existed.
SMALL = ("mazur-2-2-2", "softmax-3-class", "tanh-deep", "custom-formulas", "relu-regression", "xor-2-2-1")
TEXT_FORMATS = ("html", "tex", "md")
#: What a summary may weigh: a 64-32-10 network once wrote 659 MB of HTML.
MOST_BYTES = {"html": 2_000_000, "md": 300_000, "tex": 600_000}


class Case:
    def __init__(self, name: str) -> None:
        self.name = name
        self.network = load(EXAMPLES / f"{name}.toml")
        self.derivation = derive(self.network)
        self.example = worked_example(self.derivation)
        started = time.perf_counter()
        docs = render_documents(self.derivation, self.example, "out", name)
        self.seconds = time.perf_counter() - started
        self.docs = {path.suffix.lstrip("."): text for path, text in docs.items()}

    @property
    def graph(self):
        return self.derivation.graph

    def written(self, fmt: str, text: str) -> str:
        """Plain text as the format writes it."""
        return {"html": lambda t: html.escape(t, quote=False), "tex": escape_latex, "md": escape_markdown}[fmt](text)


@pytest.fixture(scope="module", params=LARGE)
def case(request) -> Case:
    return Case(request.param)


@pytest.fixture(scope="module", params=SMALL)
def small(request) -> Case:
    return Case(request.param)


def _arrays(graph) -> list[tuple[str, list]]:
    """(plural noun, entries) of each parameter array, in the document's order."""
    out = []
    for layer in graph.layers:
        out.append((f"weights of layer {layer.number}", [w for row in layer.weights for w in row]))
        if layer.biases is not None:
            out.append((f"biases of layer {layer.number}", list(layer.biases)))
        out.extend((name, [symbol]) for name, symbol in layer.learned)
    return out


def test_the_large_examples_are_summaries(case: Case) -> None:
    assert len(case.graph.parameters) > DETAIL_LIMIT and is_summary(case.derivation)


def test_the_limit_is_on_the_parameter_count() -> None:
    at = derive(Network(DETAIL_LIMIT - 1, (Dense(1, "sigmoid"),), "bce"))
    above = derive(Network(DETAIL_LIMIT, (Dense(1, "sigmoid"),), "bce"))
    assert len(at.graph.parameters) == DETAIL_LIMIT and not is_summary(at)
    assert len(above.graph.parameters) == DETAIL_LIMIT + 1 and is_summary(above)
    assert render(at, "md").count("#### The weight into") == DETAIL_LIMIT - 1
    md = render(above, "md")
    assert md.count("#### The weight into") == 1 and md.count("#### The bias of") == 1
    assert f"The other {DETAIL_LIMIT - 1} of the {DETAIL_LIMIT + 1} gradients are not shown" in md


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_documents_stay_small(case: Case, fmt: str) -> None:
    assert len(case.docs[fmt].encode()) < MOST_BYTES[fmt], (case.name, fmt, len(case.docs[fmt].encode()))


def test_documents_are_quick_to_render(case: Case) -> None:
    # All four formats of digits took over two minutes before summaries; they take about a second now.
    assert case.seconds < 30, case.seconds


def test_the_representative_blocks_are_shown_and_only_they(case: Case) -> None:
    doc, graph = case.docs["html"], case.graph
    shown = set(re.findall(r'<article class="block[^"]*" id="((?:gradient|adjoint|input)-[^"]+)"', doc))
    expected = {f"gradient-{entries[0]}" for _, entries in _arrays(graph)}
    for layer in graph.layers:
        expected |= {f"adjoint-{layer.a[0]}", f"adjoint-{layer.z[0]}"}
    expected.add(f"input-{graph.inputs[0]}")
    assert shown == expected
    # Each shown gradient has its picture, and no other picture is drawn.
    assert doc.count('<figure class="path">') == len(_arrays(graph))


@pytest.mark.parametrize("fmt", ["tex", "md"])
def test_the_representative_gradients_are_derived_in_every_format(case: Case, fmt: str) -> None:
    doc = case.docs[fmt]
    derived = re.findall(r"The (?:weight into|bias of) unit", doc)
    assert len(derived) == sum(1 for name, _ in _arrays(case.graph) if name.startswith(("weights", "biases")))
    assert "\\frac{\\partial L}{\\partial w^{(1)}_{11}}" in doc and "\\frac{\\partial L}{\\partial w^{(1)}_{12}}" not in doc


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_each_section_says_how_many_entries_it_leaves_out(case: Case, fmt: str) -> None:
    doc, graph = case.docs[fmt], case.graph
    parameters = len(graph.parameters)
    others = parameters - len(_arrays(graph))
    units = sum(len(layer.z) - 1 for layer in graph.layers)
    inputs = len(graph.inputs) - 1
    for sentence in (
        f"The other {others} of the {parameters} gradients are not shown: "
        "each takes the same steps as the one shown for its array",
        f"The δ and ∂L/∂a of the other {units} units are not shown",
        f"The gradients of the other {inputs} input{'s' if inputs > 1 else ''} are not shown",
    ):
        assert case.written(fmt, sentence) in doc, sentence
    # The general form where the data has it: BP1 and BP2 for the δs, BP3 and BP4 for the gradients.
    end = case.written(fmt, "Every value is in the JSON document")
    for start, labels in (("The δ and ∂L/∂a of the other", ("BP1", "BP2")), ("The other ", ("BP3", "BP4"))):
        i = doc.index(case.written(fmt, start))
        sentence = doc[i : doc.index(end, i)]
        assert [label for label in labels if f"({label})" not in sentence] == [], (start, sentence[-300:])


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_tables_show_the_first_rows_of_each_list(case: Case, fmt: str) -> None:
    doc, graph = case.docs[fmt], case.graph
    lists = [("inputs", list(graph.inputs)), ("targets", list(graph.targets)), *_arrays(graph)]
    for what, entries in lists:
        # A one-hot target's hidden entries are all 0, and the line says so.
        each = ", each 0" if what == "targets" and case.name == "digits" else ""
        line = case.written(fmt, f"… and {len(entries) - SUMMARY_ROWS} more {what}{each} (all in the JSON document)")
        if len(entries) > SUMMARY_ROWS:
            # The example's table, the gradient-descent step and the finite-difference check; inputs and
            # targets are in the first only.
            assert doc.count(line) == (1 if what in ("inputs", "targets") else 3), (what, fmt)
        else:
            assert case.written(fmt, f"more {what} (all") not in doc
    for layer in graph.layers:
        hidden = len(layer.z) - SUMMARY_ROWS
        line = case.written(fmt, f"… and {hidden} more units of layer {layer.number} (all in the JSON document)")
        assert (line in doc) == (hidden > 0), (layer.number, fmt)


def test_markdown_tables_list_only_the_first_rows(case: Case) -> None:
    part = case.docs["md"].split("## One gradient-descent step")[1].split("\n## ")[0]
    rows = [line for line in part.splitlines() if line.startswith("| $")]
    assert len(rows) == sum(min(len(entries), SUMMARY_ROWS) for _, entries in _arrays(case.graph))


def test_the_json_document_is_complete(case: Case) -> None:
    doc = json.loads(case.docs["json"])
    ex, graph = case.example, case.graph

    def flat(nested):
        return [v for item in nested for v in (flat(item) if isinstance(item, list) else [item])]

    gradients = [v for entry in doc["parameters"].values() for v in flat(entry["gradient"])]
    assert len(gradients) == len(graph.parameters) == {"digits": 2410, "moons": 337, "iris": 67}[case.name]
    assert gradients == [ex.adjoints[p] for _, entries in _arrays(graph) for p in entries]
    assert sum(len(flat(entry["symbolic"]["substituted"])) for entry in doc["parameters"].values()) == len(graph.parameters)
    assert sum(len(v) for v in doc["deltas"].values()) == sum(len(layer.z) for layer in graph.layers)
    assert doc["input_gradient"] == [ex.adjoints[x] for x in graph.inputs]


def test_a_wide_picture_is_drawn_shortened(case: Case) -> None:
    pic, graph = network_diagram(case.derivation), case.graph
    sizes = [len(graph.inputs), *(len(layer.z) for layer in graph.layers)]
    weights = {w for layer in graph.layers for row in layer.weights for w in row}
    assert len([e for e in pic.edges if e.symbol in weights]) <= MOST_EDGES
    if max(sizes) > WIDEST_LAYER or len(weights) > MOST_EDGES:
        assert [c.text for c in pic.captions][0] == f"{sizes[0]} inputs"
        assert any(u.kind == "more" for u in pic.units)
        assert '<text class="size"' in case.docs["html"] and "\\vdots" in case.docs["tex"]
    else:
        assert pic.captions == () and all(u.kind != "more" for u in pic.units)


def test_a_shortened_picture_draws_the_lit_connection() -> None:
    """A 1-14-1 network is small enough to derive in full, but its hidden layer is drawn shortened."""
    d = derive(Network(1, (Dense(14, "tanh"), Dense(1, "identity")), "mse"))
    assert not is_summary(d)
    for parameter in d.graph.parameters:
        pic = network_diagram(d, parameter)
        assert any(u.kind == "more" for u in pic.units)
        assert [e.symbol for e in pic.edges if e.own] == [parameter], parameter


def test_small_examples_show_every_entry(small: Case) -> None:
    graph = small.graph
    assert not is_summary(small.derivation)
    doc = small.docs["html"]
    assert doc.count('<figure class="path">') == len(graph.parameters)
    assert len(re.findall(r'id="gradient-', doc)) == len(graph.parameters)
    assert len(re.findall(r'id="input-', doc)) == len(graph.inputs)
    assert len(re.findall(r'id="adjoint-', doc)) == 2 * sum(len(layer.z) for layer in graph.layers)
    for fmt in TEXT_FORMATS:
        assert "not shown" not in small.docs[fmt] and "(all in the JSON document)" not in small.docs[fmt]
    assert network_diagram(small.derivation).captions == ()
