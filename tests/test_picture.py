"""The network picture: every label where nothing else is, the targets feeding the loss, readable at every size.

Three views of the same diagram: its data (render/diagram.py: the boxes the labels were
placed in, checked against every unit and other label, for every example network), the
HTML page in headless Chromium (the text elements' laid-out boxes and font sizes at 1200
and 640 px), and the PDF from pdflatex (the labels typeset, and no wider than the boxes
they were placed in).
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import required_program

from chainrule import Dense, Dropout, Network, Residual, default_network, derive, load, worked_example
from chainrule.graph import build_graph
from chainrule.render import render
from chainrule.render.diagram import PAD, network_diagram, text_width
from chainrule.render.environment import latex_environment
from chainrule.render.printing import text_name

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMING = "too many lines to name each on the picture"


def _networks():
    yield "default", default_network
    for spec in sorted(EXAMPLES.glob("*.toml")):
        yield spec.stem, lambda spec=spec: load(spec)


NETWORKS = dict(_networks())


@pytest.fixture(scope="module")
def pictured():
    """An example's pictures from its graph alone (the diagram reads nothing else): whole, and lit for three parameters."""
    cache: dict[str, tuple] = {}

    def at(name: str):
        if name not in cache:
            net = NETWORKS[name]()
            graph = build_graph(net)
            d = SimpleNamespace(network=net, graph=graph, notation=graph.notation)
            params = graph.parameters
            lit = [params[0], params[len(params) // 2], params[-1]]
            cache[name] = (d, network_diagram(d), [network_diagram(d, p) for p in lit])
        return cache[name]

    return at


def _box(label) -> tuple[float, float, float, float]:
    return (label.x - label.width / 2, label.y - label.height / 2, label.x + label.width / 2, label.y + label.height / 2)


def _apart(a, b, gap: float = 1.0) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _shapes(pic):
    """Every unit as a circle (x, y, r) or, for the +1 boxes and the ellipses, a rectangle."""
    circles, rects = [], []
    for u in pic.units:
        if u.kind == "bias":
            rects.append((u.key, (u.x - 13, u.y - 11, u.x + 13, u.y + 11)))
        elif u.kind == "more":
            rects.append((u.key, (u.x - 3, u.y - 12.5, u.x + 3, u.y + 12.5)))
        else:
            circles.append((u.key, u.x, u.y))
    return circles, rects


def _distance_to_box(x: float, y: float, box) -> float:
    dx = max(box[0] - x, 0, x - box[2])
    dy = max(box[1] - y, 0, y - box[3])
    return (dx * dx + dy * dy) ** 0.5


def _check(pic) -> list[str]:
    """What is wrong with a diagram's layout, as sentences (none when it is right)."""
    geometry, r = pic.geometry, pic.radius
    wrong = []
    boxes = [(label.key, _box(label)) for label in pic.labels]
    for i, (key, box) in enumerate(boxes):
        for other, box2 in boxes[i + 1 :]:
            if not _apart(box, box2):
                wrong.append(f"labels {key} and {other} overlap")
        if not (0 <= box[0] and box[2] <= pic.width and 0 <= box[1] and box[3] <= pic.height):
            wrong.append(f"label {key} outside the picture")
    circles, rects = _shapes(pic)
    for key, box in boxes:
        for unit, x, y in circles:
            if _distance_to_box(x, y, box) < r + 1:
                wrong.append(f"label {key} overlaps unit {unit}")
        for unit, rect in rects:
            if not _apart(box, rect):
                wrong.append(f"label {key} overlaps {unit}")
        caption_boxes = [(c.x - text_width(c.text, geometry.caption_font) / 2, c.y - 0.93 * geometry.caption_font,
                          c.x + text_width(c.text, geometry.caption_font) / 2, c.y + 0.24 * geometry.caption_font) for c in pic.captions]  # fmt: skip
        if any(not _apart(box, c) for c in caption_boxes):
            wrong.append(f"label {key} overlaps a caption")
    # A label sits on its own line, between the circles at its ends.
    edges = {e.key: e for e in pic.edges}
    for label in pic.labels:
        e = edges[label.key]
        cross = (e.x2 - e.x1) * (label.y - e.y1) - (e.y2 - e.y1) * (label.x - e.x1)
        length = ((e.x2 - e.x1) ** 2 + (e.y2 - e.y1) ** 2) ** 0.5
        if abs(cross) / length > 0.5:
            wrong.append(f"label {label.key} is {abs(cross) / length:.1f} off its line")
    # Unit names fit their circles; units and captions do not overlap.
    for u in pic.units:
        if u.kind not in ("bias", "more") and text_width(u.label, geometry.font) > 2 * r - 4:
            wrong.append(f"unit {u.key}'s name {u.label!r} is wider than its circle")
    for unit, x, y in circles:
        if not (r <= x <= pic.width - r and r <= y <= pic.height - r):
            wrong.append(f"unit {unit} is not inside the picture")
    for i, (a, xa, ya) in enumerate(circles):
        for b, xb, yb in circles[i + 1 :]:
            if ((xa - xb) ** 2 + (ya - yb) ** 2) ** 0.5 < 2 * r + 4:
                wrong.append(f"units {a} and {b} overlap")
    # A skip arc runs between the rows it passes: it meets no unit but its two ends.
    for arc in pic.arcs:
        cy = max(arc.y1, arc.y2) + 2 * arc.dip
        for step in range(1, 40):
            t = step / 40
            x = (1 - t) ** 2 * arc.x1 + 2 * t * (1 - t) * (arc.x1 + arc.x2) / 2 + t * t * arc.x2
            y = (1 - t) ** 2 * arc.y1 + 2 * t * (1 - t) * cy + t * t * arc.y2
            for unit, ux, uy in circles:
                if (ux, uy) not in ((arc.x1, arc.y1), (arc.x2, arc.y2)) and ((x - ux) ** 2 + (y - uy) ** 2) ** 0.5 < r:
                    wrong.append(f"arc {arc.key} runs through unit {unit}")
    return sorted(set(wrong))


@pytest.mark.parametrize("name", list(NETWORKS))
def test_no_label_meets_another_label_or_a_unit(pictured, name: str) -> None:
    _, whole, lit = pictured(name)
    for pic in [whole, *lit]:
        assert _check(pic) == [], (pic.lit, _check(pic)[:10])


@pytest.mark.parametrize("name", list(NETWORKS))
def test_a_whole_picture_names_every_weight_on_its_line_or_says_how_lines_are_named(pictured, name: str) -> None:
    _, whole, _ = pictured(name)
    named = {e.key for e in whole.edges if e.label}
    if whole.labels:
        assert {label.key for label in whole.labels} == named
        assert not any(NAMING in c for c in whole.legend)
    else:
        assert any(NAMING in c for c in whole.legend), whole.legend


def test_the_small_examples_name_their_weights() -> None:
    for name in ("default", "xor-2-2-1", "softmax-3-class", "tanh-deep", "batchnorm-2-examples", "custom-formulas"):
        net = NETWORKS[name]()
        graph = build_graph(net)
        pic = network_diagram(SimpleNamespace(network=net, graph=graph, notation=graph.notation))
        weights = {str(w) for layer in graph.layers for row in layer.weights for w in row}
        assert weights <= {label.key for label in pic.labels}, name


@pytest.mark.parametrize("name", list(NETWORKS))
def test_the_targets_feed_the_loss(pictured, name: str) -> None:
    d, whole, lit = pictured(name)
    graph = d.graph
    for pic in [whole, *lit]:
        targets = [u for u in pic.units if u.kind == "target"]
        outputs = len(graph.layers[-1].output_grid[0])
        assert targets and all(u.symbol in graph.targets[:outputs] for u in targets)
        assert [u.label for u in targets] == [text_name(u.symbol, d.notation) for u in targets]
        loss = next(u for u in pic.units if u.kind == "loss")
        into_loss = {(e.x1, e.y1) for e in pic.edges if (e.x2, e.y2) == (loss.x, loss.y)}
        assert all((u.x, u.y) in into_loss for u in targets)
        # The last layer's drawn outputs feed it too.
        drawn = {u.symbol for u in pic.units if u.symbol in set(graph.layers[-1].output_grid[0])}
        assert len([e for e in pic.edges if e.key.endswith("_L") and not e.key.startswith("y")]) >= len(drawn)


def test_a_regularized_loss_reads_its_penalty() -> None:
    d = derive(load(EXAMPLES / "softmax-3-class.toml"))
    pic = network_diagram(d)
    penalty = [u for u in pic.units if u.kind == "penalty"]
    assert [u.label for u in penalty] == ["R"] and any(e.key == "R_L" for e in pic.edges)
    # Lit for a weight (which R penalizes), not for a bias.
    assert next(u for u in network_diagram(d, d.graph.parameters[0]).units if u.kind == "penalty").lit
    bias = d.graph.layers[0].biases[0]
    assert not next(u for u in network_diagram(d, bias).units if u.kind == "penalty").lit


def test_a_deep_network_is_drawn_with_a_gap_and_the_lit_layer() -> None:
    net = Network(2, tuple(Dense(2, "tanh") for _ in range(12)) + (Dense(1, "identity"),), "mse")
    graph = build_graph(net)
    d = SimpleNamespace(network=net, graph=graph, notation=graph.notation)
    whole = network_diagram(d)
    assert [(g.first, g.last) for g in whole.gaps] == [(3, 11)]
    assert "layers 3–11" in [c.text for c in whole.captions]
    w = graph.layers[6].weights[0][0]  # layer 7, in the middle of the gap
    pic = network_diagram(d, w)
    assert [(g.first, g.last) for g in pic.gaps] == [(3, 5), (8, 11)]
    assert [e.key for e in pic.edges if e.own] == [str(w)] and [label.key for label in pic.labels] == [str(w)]
    assert _check(whole) == [] and _check(pic) == []


def test_a_small_picture_names_its_parameter_and_fits_beside_the_steps() -> None:
    d = derive(default_network())
    for p in d.graph.parameters:
        pic = network_diagram(d, p)
        assert [label.key for label in pic.labels] == [str(p)] and pic.labels[0].own
        assert pic.beside and pic.size == "small"


def test_both_pictures_cross_out_the_dropped_units() -> None:
    d = derive(PAGES["dropout"]())
    ex = worked_example(d)
    pic = network_diagram(d, None, ex)
    crossed = [u for u in pic.units if u.crossed]
    assert 0 < len(crossed) < 3
    tex = render(d, "tex", ex)
    picture = tex[tex.index(r"\begin{picture}") : tex.index(r"\end{picture}")]
    # Two red strokes over each crossed circle, as the SVG's cross path.
    assert picture.count(r"\line(1,1)") == picture.count(r"\line(1,-1)") == len(crossed)
    assert render(d, "html", ex).count('<path class="cross"') == len(crossed)


def test_the_picture_is_the_same_every_time() -> None:
    d = derive(load(EXAMPLES / "softmax-3-class.toml"))
    env = latex_environment(d.notation)
    first = [network_diagram(d), network_diagram(d, d.graph.parameters[3])]
    again = [network_diagram(d), network_diagram(d, d.graph.parameters[3])]
    assert first == again
    template = env.from_string('<% import "picture.tex" as p %><< p.picture(pic)|safe >>')
    assert template.render(pic=first[0]) == template.render(pic=again[0])


# In the browser ----------------------------------------------------------------------

PROBE = """
<script>
window.addEventListener("load", function () {
  var out = [];
  document.querySelectorAll("svg.net").forEach(function (svg) {
    var r = svg.getBoundingClientRect(), scale = r.width / svg.viewBox.baseVal.width;
    var texts = Array.prototype.slice.call(svg.querySelectorAll("text")).map(function (t) {
      var b = t.getBoundingClientRect();
      return {text: t.textContent, left: b.left, right: b.right, top: b.top, bottom: b.bottom,
              px: parseFloat(getComputedStyle(t).fontSize) * scale};
    });
    var figure = svg.closest("figure");
    out.push({cls: svg.getAttribute("class"), width: r.width, left: r.left, right: r.right, top: r.top, bottom: r.bottom,
              figure: figure.getBoundingClientRect().width, texts: texts});
  });
  var pre = document.createElement("pre");
  pre.id = "chainrule-picture-result";
  pre.textContent = JSON.stringify({svgs: out, height: document.documentElement.scrollHeight});
  document.body.appendChild(pre);
});
</script>
"""

PAGES = {
    "default": default_network,
    "softmax-3-class": lambda: load(EXAMPLES / "softmax-3-class.toml"),
    "tanh-deep": lambda: load(EXAMPLES / "tanh-deep.toml"),
    "batchnorm-2-examples": lambda: load(EXAMPLES / "batchnorm-2-examples.toml"),
    "residual": lambda: Network(2, (Dense(2, "tanh"), Residual((Dense(2, "relu"),)), Dense(1, "identity")), "half_sse"),
    "dropout": lambda: Network(2, (Dense(3, "relu"), Dropout(0.5), Dense(1, "identity")), "mse"),
    "digits": lambda: load(EXAMPLES / "digits.toml"),
}


def _in_chromium(folder: Path, page: Path, width: int) -> dict:
    profile = folder / f"profile-{width}"
    command = [
        required_program("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-default-browser-check",
        f"--user-data-dir={profile}", f"--window-size={width},3000", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="chainrule-picture-result">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, "the measuring script did not run"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def laid_out(tmp_path_factory):
    required_program("chromium")
    folder = tmp_path_factory.mktemp("pictures")
    cache: dict[tuple[str, int], dict] = {}

    def at(name: str, width: int) -> dict:
        if (name, width) not in cache:
            page = folder / f"{name}.html"
            if not page.exists():
                d = derive(PAGES[name]())
                text = render(d, "html", worked_example(d))
                page.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
            cache[name, width] = _in_chromium(folder, page, width)
        return cache[name, width]

    return at


@pytest.mark.browser
@pytest.mark.parametrize("name", list(PAGES))
@pytest.mark.parametrize("width", [1200, 640])
def test_no_two_texts_of_a_picture_overlap_and_none_is_below_10px(laid_out, name: str, width: int) -> None:
    svgs = laid_out(name, width)["svgs"]
    assert len(svgs) >= 2  # the network, and a small picture per gradient shown
    for svg in svgs:
        texts = svg["texts"]
        assert texts, svg["cls"]
        smallest = min(t["px"] for t in texts)
        assert smallest >= 10 - 1e-6, (svg["cls"], smallest)
        for i, a in enumerate(texts):
            assert a["left"] >= svg["left"] - 0.5 and a["right"] <= svg["right"] + 0.5, (svg["cls"], a)
            for b in texts[i + 1 :]:
                apart = (
                    a["right"] <= b["left"] + 0.5 or b["right"] <= a["left"] + 0.5 or a["bottom"] <= b["top"] + 0.5 or b["bottom"] <= a["top"] + 0.5
                )
                assert apart, (svg["cls"], width, a, b)


@pytest.mark.browser
def test_the_small_pictures_stand_beside_the_steps_and_are_read_at_10px(laid_out) -> None:
    """At 1200 px the default's path pictures sit in the column beside the steps, wide enough to read, and the page stays short."""
    m = laid_out("default", 1200)
    small = [s for s in m["svgs"] if "small" in s["cls"].split()]
    assert len(small) == 12
    assert all(320 <= s["width"] <= 352 + 0.5 and s["left"] > 600 for s in small), [(s["width"], s["left"]) for s in small]
    assert all(min(t["px"] for t in s["texts"]) >= 10 for s in small)


# In the PDF --------------------------------------------------------------------------


def _pdf(folder: Path, name: str, tex: str) -> Path:
    required_program("pdflatex")
    (folder / f"{name}.tex").write_text(tex, encoding="utf-8")
    command = ["pdflatex", "-halt-on-error", "-no-shell-escape", "-interaction=nonstopmode", f"{name}.tex"]
    result = subprocess.run(command, check=False, cwd=folder, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:]
    return folder / f"{name}.pdf"


@pytest.mark.pdflatex
@pytest.mark.parametrize("name", ["default", "softmax-3-class", "batchnorm-2-examples"])
def test_the_pdf_draws_the_picture_with_its_labels(tmp_path, name: str) -> None:
    d = derive(PAGES[name]())
    tex = render(d, "tex", worked_example(d))
    pdf = _pdf(tmp_path, name, tex)
    pages = [required_program("pdftotext"), "-f", "1", "-l", "1", str(pdf), "-"]
    text = subprocess.run(pages, check=True, capture_output=True, text=True).stdout
    assert "needs \\usepackage{pict2e}" not in text  # the preamble loads what the picture draws with
    words = set(text.split())
    # Over a batch the units drawn are the first example's: x₁,₁ is its input 1.
    expected = {"+1", "L", "x1,1", "y1,1", "w11", "b1", "BN"} if name == "batchnorm-2-examples" else {"+1", "L", "x1", "y1", "w11", "w12", "b1"}
    assert expected <= words, sorted(words)[:80]
    pic = network_diagram(d, None, worked_example(d))
    assert tex.count(r"\circle*{") == sum(u.kind not in ("bias", "more") for u in pic.units)
    assert tex.count(r"\colorbox{white}") == len(pic.labels) > 0


@pytest.mark.pdflatex
def test_the_pdf_labels_fit_the_boxes_they_were_placed_in(tmp_path) -> None:
    """Typeset as the picture sets them (0.72 pt a unit), no label is wider or taller than its box in the diagram."""
    d = derive(PAGES["softmax-3-class"]())
    pic = network_diagram(d)
    env = latex_environment(d.notation)
    labels = [(label.width, label.height, label.symbol, "footnotesize") for label in pic.labels]
    r = pic.radius
    units = [(2 * r - 4, 2 * r - 4, u.symbol, "small") for u in pic.units if u.kind not in ("bias", "more", "sum")]
    body = env.from_string(
        r"""\documentclass{article}\usepackage{amsmath}\newsavebox{\probe}\begin{document}
<% for w, h, s, size in items %>\sbox{\probe}{<% if size == "small" %>\small<% else %>\footnotesize<% endif %>$<< s|sym >>$}\typeout{PROBE << w >> << h >> \the\wd\probe\space\the\dimexpr\ht\probe+\dp\probe\relax}
<% endfor %>\end{document}
"""
    ).render(items=labels + units)
    _pdf(tmp_path, "probe", body)
    log = (tmp_path / "probe.log").read_text(encoding="latin-1")
    found = re.findall(r"PROBE ([\d.]+) ([\d.]+) ([\d.]+)pt ([\d.]+)pt", log)
    assert len(found) == len(labels) + len(units)
    for w, h, tw, th in found:
        assert float(tw) <= float(w) * 0.72 and float(th) <= (float(h) + PAD) * 0.72, (w, h, tw, th)
