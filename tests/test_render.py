"""chainrule.render: every format renders, the JSON contract holds, titles stay text.

The networks cover the shapes a template can trip on: the built-in 2-2-2 example, a 1-1
relu without bias under mse, a 3-3-2-1 net mixing three activations, and a deep net of
width 1. Expected strings (how a symbol is written, how a title is escaped) are written
out here from the notation's definition, not taken from the printers under test.
"""

from __future__ import annotations

import html
import html.parser
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule import Dense, Network, default_network, derive, worked_example
from chainrule.render import DOCUMENT_FORMATS, render

NETWORKS = {
    "default-2-2-2": default_network,
    "relu-1-1-mse-nobias": lambda: Network(1, (Dense(1, "relu", bias=False),), "mse"),
    "mixed-3-3-2-1": lambda: Network(
        3, (Dense(3, "tanh"), Dense(2, "relu"), Dense(1, "identity")), "half_sse", title="A 3-3-2-1 mixed net"
    ),
    "width-1-depth-4": lambda: Network(1, tuple(Dense(1, "sigmoid") for _ in range(4)), "mse"),
}

FORMATS = ("html", "tex", "md", "json")

#: A title that tries every way into a document: closing tags, scripts, TeX commands,
#: Jinja syntax of both delimiter sets, and every character that is special somewhere.
HOSTILE_TITLE = (
    r"</title><script>alert(1)</script> \input{/etc/passwd} {{ 7*7 }} << 7*7 >> "
    r"$x$ _ ^ % & # ~ <% print %> {% raw %} <# c #> `code` *em* [a](b) |"
)


class Case:
    """One network, derived once, with its worked example and every document."""

    def __init__(self, name: str, network: Network) -> None:
        self.name = name
        self.network = network
        self.derivation = derive(network)
        self.example = worked_example(self.derivation)
        self.docs = {fmt: render(self.derivation, fmt, self.example) for fmt in FORMATS}


@pytest.fixture(scope="module", params=list(NETWORKS))
def case(request) -> Case:
    return Case(request.param, NETWORKS[request.param]())


@pytest.fixture(scope="module")
def hostile() -> Case:
    return Case("hostile", Network(2, (Dense(2, "sigmoid"), Dense(1, "identity")), "mse", title=HOSTILE_TITLE))


@pytest.fixture(scope="module")
def plain() -> Case:
    """The same network as ``hostile`` with a harmless title."""
    return Case("plain", Network(2, (Dense(2, "sigmoid"), Dense(1, "identity")), "mse", title="T"))


# --- helpers: how the notation writes a parameter, and reading numbers back -------------

_PARAM = re.compile(r"^(?:w(\d+)_(\d+)_(\d+)|b(\d+)_(\d+))$")


def _parts(symbol) -> tuple[str, int, tuple[int, ...]]:
    m = _PARAM.match(str(symbol))
    assert m, f"unexpected parameter name {symbol}"
    if m.group(1):
        return "w", int(m.group(1)), (int(m.group(2)), int(m.group(3)))
    return "b", int(m.group(4)), (int(m.group(5)),)


def tex_name(symbol) -> str:
    """w⁽ˡ⁾ⱼₖ as LaTeX: ``w^{(l)}_{jk}``."""
    base, layer, indices = _parts(symbol)
    return f"{base}^{{({layer})}}_{{{''.join(map(str, indices))}}}"


def mathml_name(symbol) -> re.Pattern:
    """w⁽ˡ⁾ⱼₖ as MathML: msubsup of the base, the indices and a parenthesized layer."""
    base, layer, indices = _parts(symbol)
    sub = "".join(f"<mn>{i}</mn>" for i in indices)
    sub = f"<mrow>{sub}</mrow>" if len(indices) > 1 else sub
    sup = rf"<mrow><mo[^>]*>\(</mo><mn>{layer}</mn><mo[^>]*>\)</mo></mrow>"
    return re.compile(rf"<msubsup><mi>{base}</mi>{sub}{sup}</msubsup>")


def _number(text: str) -> float:
    """A number as a document prints it: 0.25, -1.5e-12, or TeX's 1.5 \\times 10^{-12}."""
    text = text.strip().strip("$").strip()
    m = re.fullmatch(r"(-?[0-9.]+)\s*\\times\s*10\^\{(-?\d+)\}", text)
    if m:
        return float(m.group(1)) * 10 ** int(m.group(2))
    return float(text.replace("−", "-"))


def _close(printed: float, value: float) -> bool:
    # Documents print ten significant digits.
    return math.isclose(printed, value, rel_tol=1e-9, abs_tol=1e-300)


def _section(text: str, start: str, end: str | None = None) -> str:
    i = text.index(start)
    j = text.index(end, i) if end is not None and end in text[i:] else len(text)
    return text[i:j]


def _update_rows(fmt: str, doc: str) -> list[tuple[str, list[float]]]:
    """The rows of the gradient-descent table: (the row's symbol text, [value, gradient, updated])."""
    rows = []
    if fmt == "html":
        part = _section(doc, 'id="update"', "</table>")
        for tr in re.findall(r"<tr>(.*?)</tr>", part, re.DOTALL):
            cells = re.findall(r"<td[^>]*>(.*?)</td>", tr, re.DOTALL)
            if cells:
                rows.append((cells[0], [_number(html.unescape(c)) for c in cells[1:]]))
    elif fmt == "tex":
        part = _section(doc, "One gradient-descent step", r"\end{longtable}")
        for line in part.splitlines():
            if line.startswith("$") and line.rstrip().endswith(r"\\"):
                cells = [c.strip() for c in line.rstrip()[:-2].split("&")]
                rows.append((cells[0], [_number(c) for c in cells[1:]]))
    elif fmt == "md":
        part = _section(doc, "## One gradient-descent step", "\n## ")
        for line in part.splitlines():
            if line.startswith("| $"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                rows.append((cells[0], [_number(c) for c in cells[1:]]))
    return rows


# --- every format, every network -------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_a_whole_document(case: Case, fmt: str) -> None:
    doc = case.docs[fmt]
    assert isinstance(doc, str) and doc.endswith("\n")
    if fmt == "html":
        assert doc.lstrip().startswith("<!DOCTYPE html>")
        assert doc.rstrip().endswith("</html>")
        assert doc.count("<math") > 20
    elif fmt == "tex":
        assert doc.count(r"\begin{document}") == 1 and doc.rstrip().endswith(r"\end{document}")
        assert doc.count(r"\begin{crblock}") == doc.count(r"\end{crblock}") > 0
    elif fmt == "md":
        assert doc.startswith("# ")
        assert doc.count("$$") % 2 == 0 and doc.count("$$") > 0
    else:
        assert isinstance(json.loads(doc), dict)


def test_default_formats_are_the_four_documents() -> None:
    assert tuple(DOCUMENT_FORMATS) == FORMATS


def test_json_contract(case: Case) -> None:
    doc = json.loads(case.docs["json"])
    ex, net, graph = case.example, case.network, case.derivation.graph
    assert isinstance(doc["loss"], float) and doc["loss"] == ex.loss
    expected_names = []
    for number, layer in enumerate(net.layers, start=1):
        expected_names.append(f"W{number}")
        if layer.bias:
            expected_names.append(f"b{number}")
    assert list(doc["parameters"]) == expected_names
    fan_in = net.inputs
    for number, (layer, spec) in enumerate(zip(graph.layers, net.layers), start=1):
        w = doc["parameters"][f"W{number}"]
        for key, table in (("value", ex.values), ("gradient", ex.adjoints), ("updated", ex.updated)):
            rows = w[key]
            assert len(rows) == spec.units and all(len(row) == fan_in for row in rows), (number, key)
            for j in range(spec.units):
                for k in range(fan_in):
                    symbol = layer.weights[j][k]
                    assert str(symbol) == f"w{number}_{j + 1}_{k + 1}"
                    assert isinstance(rows[j][k], float) and rows[j][k] == table[symbol], (symbol, key)
            if spec.bias:
                b = doc["parameters"][f"b{number}"][key]
                assert len(b) == spec.units and not any(isinstance(v, list) for v in b)
                assert b == [table[s] for s in layer.biases]
        fan_in = spec.units
    # One gradient-descent step, in the document's own numbers.
    rate = doc["learning_rate"]
    for entry in doc["parameters"].values():
        for v, g, u in zip(_flat(entry["value"]), _flat(entry["gradient"]), _flat(entry["updated"]), strict=True):
            assert math.isclose(u, v - rate * g, rel_tol=1e-12, abs_tol=1e-15)


def _flat(nested: list) -> list[float]:
    return [v for item in nested for v in (_flat(item) if isinstance(item, list) else [item])]


@pytest.mark.parametrize("fmt", FORMATS)
def test_rendering_twice_gives_the_same_text(case: Case, fmt: str) -> None:
    assert render(case.derivation, fmt, case.example) == case.docs[fmt]
    again = derive(case.network)
    assert render(again, fmt, worked_example(again)) == case.docs[fmt]


@pytest.mark.parametrize("fmt", ["html", "tex", "md"])
def test_every_parameter_appears_with_its_numbers(case: Case, fmt: str) -> None:
    doc, ex = case.docs[fmt], case.example
    params = case.derivation.graph.parameters
    for p in params:
        if fmt == "html":
            assert f'id="gradient-{p}"' in doc, p
            assert mathml_name(p).search(doc), p
        else:
            assert "\\frac{\\partial L}{\\partial " + tex_name(p) + "}" in doc, p
    rows = _update_rows(fmt, doc)
    assert len(rows) == len(params)
    for p, (label, numbers) in zip(params, rows):
        if fmt == "html":
            assert mathml_name(p).search(label), (p, label)
        else:
            assert label.strip("$").strip() == tex_name(p), (p, label)
        expected = [ex.values[p], ex.adjoints[p], ex.updated[p]]
        assert len(numbers) == 3 and all(map(_close, numbers, expected)), (p, numbers, expected)


def test_every_parameter_appears_in_json(case: Case) -> None:
    doc = json.loads(case.docs["json"])
    shapes = case.network.parameter_shapes()
    assert {n: _shape(doc["parameters"][n]["value"]) for n in doc["parameters"]} == shapes


def _shape(nested) -> tuple[int, ...]:
    return (len(nested),) + (_shape(nested[0]) if nested and isinstance(nested[0], list) else ())


@pytest.mark.parametrize("fmt", FORMATS)
def test_renders_without_an_example(case: Case, fmt: str) -> None:
    doc = render(case.derivation, fmt)
    if fmt == "json":
        parsed = json.loads(doc)
        assert "loss" not in parsed
        assert list(parsed["parameters"]) == list(case.network.parameter_shapes())
        return
    for p in case.derivation.graph.parameters:
        if fmt == "html":
            assert f'id="gradient-{p}"' in doc and mathml_name(p).search(doc), p
        else:
            assert "\\frac{\\partial L}{\\partial " + tex_name(p) + "}" in doc, p
    assert "0.2983711088" not in doc  # no number from the default example leaks in


def test_unknown_format_is_a_value_error(plain: Case) -> None:
    with pytest.raises(ValueError, match="nope"):
        render(plain.derivation, "nope", plain.example)


def test_jupyter_reprs(plain: Case) -> None:
    d = plain.derivation
    shown = d._repr_html_()
    assert isinstance(shown, str) and "<math" in shown and f'id="gradient-{d.graph.parameters[0]}"' in shown
    latex = d._repr_latex_()
    assert isinstance(latex, str) and "\\frac{\\partial L}{\\partial " + tex_name(d.graph.parameters[0]) + "}" in latex
    markdown = d._repr_markdown_()
    assert isinstance(markdown, str) and markdown.startswith("# T")


# --- HTML stands alone ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["html", "html-fragment"])
def test_html_loads_nothing_from_outside(case: Case, fmt: str) -> None:
    doc = case.docs["html"] if fmt == "html" else render(case.derivation, fmt, case.example)
    lower = doc.lower()
    assert "<script" not in lower
    assert "<link" not in lower and "@import" not in lower and "url(" not in lower
    external = re.findall(r"""\b(?:src|href|srcset|action|data)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|//)""", lower)
    assert external == []
    # Every in-page link points at an element of the page.
    ids = set(re.findall(r'\bid="([^"]+)"', doc))
    targets = re.findall(r'href="#([^"]*)"', doc)
    assert targets and set(targets) <= ids


# --- a title is text in every format ------------------------------------------------------


class _TextOf(html.parser.HTMLParser):
    def __init__(self, tags: set[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.tags, self.open, self.found = tags, [], {}

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in self.open:
            while self.open.pop() != tag:
                pass

    def handle_data(self, data):
        for tag in self.tags & set(self.open):
            self.found.setdefault(tag, []).append(data)


#: The LaTeX escapes a title may use, and what each typesets.
_TEX_ESCAPES = {
    r"\textbackslash{}": "\\",
    r"\textbackslash ": "\\",
    r"\{": "{",
    r"\}": "}",
    r"\$": "$",
    r"\&": "&",
    r"\#": "#",
    r"\%": "%",
    r"\_": "_",
    r"\textasciicircum{}": "^",
    r"\textasciitilde{}": "~",
    r"\textless{}": "<",
    r"\textgreater{}": ">",
    r"\textbar{}": "|",
}


def _untex(text: str) -> str:
    """What a TeX title typesets, failing on anything that is not text or a known escape."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            for escape, char in _TEX_ESCAPES.items():
                if text.startswith(escape, i):
                    out.append(char)
                    i += len(escape)
                    break
            else:
                raise AssertionError(f"unescaped TeX command at {text[i:i + 20]!r}")
        else:
            assert text[i] not in "{}$&#^_%~", f"unescaped TeX special {text[i]!r} at {text[i:i + 20]!r}"
            out.append(text[i])
            i += 1
    return "".join(out)


def _tex_title(doc: str) -> str:
    start = doc.index("\\title{") + len("\\title{")
    depth, i = 1, start
    while depth:
        if doc[i] == "\\":
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(doc[i], 0)
        i += 1
    return doc[start : i - 1]


_MARKDOWN_SPECIALS = set("\\`*_{}[]<>#|$~&")


def _unmarkdown(text: str) -> str:
    bare = re.sub(r"\\.", "", text)
    leftover = _MARKDOWN_SPECIALS & set(bare)
    assert not leftover, f"unescaped Markdown specials {sorted(leftover)} in {text!r}"
    return re.sub(r"\\(.)", r"\1", text)


def test_hostile_title_is_text_in_html(hostile: Case) -> None:
    doc = hostile.docs["html"]
    assert "<script" not in doc.lower()
    head, body = doc.split("</head>", 1)
    parser = _TextOf({"title"})
    parser.feed(head)
    assert "".join(parser.found["title"]) == HOSTILE_TITLE
    parser = _TextOf({"h1"})
    parser.feed(body)
    assert "".join(parser.found["h1"]) == HOSTILE_TITLE


def test_hostile_title_is_text_in_tex(hostile: Case) -> None:
    doc = hostile.docs["tex"]
    assert "\\input" not in doc
    assert _untex(_tex_title(doc)) == HOSTILE_TITLE


def test_hostile_title_typesets_angle_brackets_and_bars_as_themselves(hostile: Case) -> None:
    """In pdflatex's default OT1 encoding a text-mode < > | print as ¡ ¿ —.

    A title's < > | must come out as written: either the document selects T1 (where they
    are themselves) or the title writes them as \\textless{}, \\textgreater{}, \\textbar{}.
    """
    doc = hostile.docs["tex"]
    t1 = re.search(r"\\usepackage\[[^\]]*\bT1\b[^\]]*\]\{fontenc\}", doc) is not None
    title = _tex_title(doc)
    raw = sorted({ch for ch in title if ch in "<>|"})
    assert t1 or not raw, f"the title writes {raw} raw in OT1 encoding: {title[:60]!r}"


def test_hostile_title_is_text_in_markdown(hostile: Case) -> None:
    heading = [line for line in hostile.docs["md"].splitlines() if line.startswith("# ")]
    assert len(heading) == 1
    assert _unmarkdown(heading[0][2:]) == HOSTILE_TITLE


def test_hostile_title_is_verbatim_in_json(hostile: Case) -> None:
    assert json.loads(hostile.docs["json"])["title"] == HOSTILE_TITLE


@pytest.mark.parametrize("fmt", ["html", "tex", "md"])
def test_a_title_changes_nothing_but_the_title(hostile: Case, plain: Case, fmt: str) -> None:
    """Jinja never evaluates a title ({{ 7*7 }} is not 49) and a title never breaks out of its place."""
    doc = hostile.docs[fmt]
    if fmt == "html":
        written = html.escape(HOSTILE_TITLE, quote=False)
        assert written in doc
    elif fmt == "tex":
        written = _tex_title(doc)
    else:
        written = next(line for line in doc.splitlines() if line.startswith("# "))[2:]
    assert doc.replace(written, "T") == plain.docs[fmt]


def test_a_line_break_in_a_title_stays_in_the_heading() -> None:
    net = Network(1, (Dense(1, "identity"),), "mse", title="first\n# second\n\\end{document}")
    d = derive(net)
    md = render(d, "md")
    assert "\n# second" not in md and "\n\\end{document}\n" not in md
    tex = render(d, "tex")
    assert tex.count("\\end{document}") == 1 and "\n\n" not in _tex_title(tex)


# --- the same documents from two processes ----------------------------------------------

SPEC = """\
title = "Determinism: sets, dicts & hashes"
[network]
inputs = 3
layers = [ { units = 3, activation = "tanh" }, { units = 2, activation = "relu" }, { units = 1, activation = "identity" } ]
loss = "half_sse"
[example]
x = [0.5, -0.25, 0.75]
"""


def test_two_processes_write_byte_identical_files(tmp_path: Path) -> None:
    spec = tmp_path / "mixed.toml"
    spec.write_text(SPEC, encoding="utf-8")
    written = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"out{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-m", "chainrule", "derive", str(spec), "--out", str(out), "--seed", "3"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        written.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert sorted(written[0]) == ["mixed.html", "mixed.json", "mixed.md", "mixed.tex"]
    for name in written[0]:
        assert written[0][name] == written[1][name], name


def test_closed_forms_too_long_to_read_are_summarized_not_typeset() -> None:
    """Five relu/sigmoid/tanh layers of four: first-layer closed forms have thousands of symbols."""
    from chainrule.render.steps import LONGEST_CLOSED_FORM, written_size

    net = Network(4, tuple(Dense(4, a) for a in ("relu", "relu", "sigmoid", "relu", "tanh")), "mse")
    d = derive(net)
    ex = worked_example(d, seed=3)
    first = d.graph.parameters[0]
    assert written_size(d.gradient(first).closed) > LONGEST_CLOSED_FORM
    md = render(d, "md", ex)
    assert f"it would take {written_size(d.gradient(first).closed)} symbols" in md
    doc = json.loads(render(d, "json", ex))
    assert doc["parameters"]["W1"]["symbolic"]["closed"][0][0] is None
    assert doc["parameters"]["W5"]["symbolic"]["closed"][0][0] is not None
    assert len(md) < 400_000
