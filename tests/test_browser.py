"""The HTML document in a real browser: headless Chromium lays out its MathML and SVG.

The product's HTML has no JavaScript. The test injects one inline script into a copy of
it; the script measures the laid-out page with getBoundingClientRect and writes the
numbers into the DOM as JSON, which ``chromium --dump-dom`` hands back.
"""

from __future__ import annotations

import html
import json
import re
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import required_program

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
from chainrule.explain import explain
from chainrule.render import render
from chainrule.render.explanation import render_explanation

pytestmark = pytest.mark.browser

WIDE = 1200
NARROW = 640

MEASURE = """
<script>
window.addEventListener("load", function () {
  function box(e) { if (!e) return null; var r = e.getBoundingClientRect(); return {w: r.width, h: r.height, top: r.top, bottom: r.bottom, left: r.left, right: r.right}; }
  function where(e) { var p = e.closest("[id]"); return e.tagName.toLowerCase() + (p ? " in #" + p.id : ""); }
  function sizes(selector) {
    var all = Array.prototype.slice.call(document.querySelectorAll(selector)).map(function (e) { return [box(e), e]; });
    var empty = all.filter(function (x) { return !(x[0].w > 0 && x[0].h > 0); }).map(function (x) { return where(x[1]); });
    return {count: all.length, minW: Math.min.apply(null, all.map(function (x) { return x[0].w; })),
            minH: Math.min.apply(null, all.map(function (x) { return x[0].h; })), empty: empty.slice(0, 10)};
  }
  var probe = document.createElement("span");
  probe.textContent = "x";
  document.querySelector("main").appendChild(probe);
  var line = probe.getBoundingClientRect().height;
  probe.remove();
  var fractions = Array.prototype.slice.call(document.querySelectorAll("mfrac"));
  var flat = fractions.filter(function (f) {
    var num = f.children[0].getBoundingClientRect(), den = f.children[1].getBoundingClientRect();
    return !(num.bottom <= den.top + 1);
  }).map(where);
  var vw = document.documentElement.clientWidth;
  function scroller(e) {
    for (var p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      var o = getComputedStyle(p).overflowX;
      if (o === "auto" || o === "scroll" || o === "hidden" || o === "clip") return p;
    }
    return null;
  }
  var outside = [];
  document.querySelectorAll("body *").forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.width > 0 && (r.right > vw + 0.5 || r.left < -0.5)) {
      var s = scroller(e);
      var sr = s && s.getBoundingClientRect();
      if (!s || sr.right > vw + 0.5 || sr.left < -0.5) outside.push(where(e) + " " + Math.round(r.left) + ".." + Math.round(r.right));
    }
  });
  var clipped = [];
  document.querySelectorAll("body *").forEach(function (e) {
    var style = getComputedStyle(e);
    if (style.overflowX === "visible" && style.overflowY === "visible") return;
    if (!e.querySelector("math")) return;
    var max = parseFloat(style.maxWidth);
    var roomy = !(max > 0) || e.clientWidth < max - 2;
    if (e.scrollHeight > e.clientHeight + 1 || (roomy && e.scrollWidth > e.clientWidth + 1))
      clipped.push(where(e) + " client " + e.clientWidth + "x" + e.clientHeight + " content " + e.scrollWidth + "x" + e.scrollHeight);
  });
  // A formula wider than the block that holds it (a table cell, a list item) must scroll in a box of its own,
  // not run over what stands beside it.
  var past = [];
  document.querySelectorAll("math").forEach(function (m) {
    var r = m.getBoundingClientRect(), block = null;
    for (var p = m.parentElement; p && p !== document.body; p = p.parentElement) {
      var s = getComputedStyle(p);
      if (s.overflowX !== "visible") return;
      if (!block && s.display !== "inline") {
        var b = p.getBoundingClientRect();
        if (!(r.right > b.right + 1 || r.left < b.left - 1)) return;
        block = where(m) + " " + Math.round(r.left) + ".." + Math.round(r.right) + " in " + p.tagName.toLowerCase() + " " + Math.round(b.left) + ".." + Math.round(b.right);
      }
    }
    if (block) past.push(block);
  });
  // A box that scrolls sideways though no formula in it is wider than the box: its formula could
  // have broken into lines; scrolling is the last resort, for a part that no line can hold.
  var scrolling = [];
  document.querySelectorAll("div.scroll, .rule-tree").forEach(function (e) {
    if (!(e.scrollWidth > e.clientWidth + 1)) return;
    var widest = 0;
    e.querySelectorAll("math").forEach(function (m) { widest = Math.max(widest, m.getBoundingClientRect().width); });
    // (a line that goes on is indented by the box's left padding)
    if (widest + parseFloat(getComputedStyle(e).paddingLeft) <= e.clientWidth + 1) scrolling.push(where(e) + " " + e.clientWidth + " < " + e.scrollWidth + ", widest part " + Math.round(widest));
  });
  // How large formulas are set, against the text around them.
  var body = parseFloat(getComputedStyle(document.body).fontSize);
  var mathScale = Math.min.apply(null, Array.prototype.slice.call(document.querySelectorAll("math")).map(function (m) { return parseFloat(getComputedStyle(m).fontSize) / body; }));
  var scrolledSteps = [];
  document.querySelectorAll("article.stepwise div.scroll").forEach(function (e) {
    if (e.scrollWidth > e.clientWidth + 1) scrolledSteps.push(where(e) + " " + e.clientWidth + " < " + e.scrollWidth);
  });
  var result = {
    past: past.slice(0, 10), pastCount: past.length, scrolledSteps: scrolledSteps.slice(0, 10), scrolledStepsCount: scrolledSteps.length,
    scrolling: scrolling.slice(0, 10), scrollingCount: scrolling.length, mathScale: mathScale,
    math: sizes("math"), mfrac: sizes("mfrac"), msubsup: sizes("msubsup"), svg: sizes("svg"),
    network: box(document.querySelector("figure.network svg")),
    fractionMinHeight: Math.min.apply(null, fractions.map(function (f) { return f.getBoundingClientRect().height; })),
    line: line, flat: flat.slice(0, 10), flatCount: flat.length,
    viewport: vw, pageWidth: document.documentElement.scrollWidth,
    outside: outside.slice(0, 10), outsideCount: outside.length,
    clipped: clipped.slice(0, 10), clippedCount: clipped.length,
    mathDisplay: getComputedStyle(document.querySelector("main math")).display
  };
  var pre = document.createElement("pre");
  pre.id = "chainrule-test-result";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>
"""


def chromium() -> str:
    return required_program("chromium")


def run_chromium(workdir: Path, page: Path, width: int, *args: str) -> subprocess.CompletedProcess:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-default-browser-check",
        f"--user-data-dir={workdir / 'profile'}",
        f"--window-size={width},3000",
        *args,
        page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    chromium()  # skip or fail before any work
    d = derive(default_network())
    folder = tmp_path_factory.mktemp("browser")
    path = folder / "default.html"
    path.write_text(render(d, "html", worked_example(d)), encoding="utf-8")
    return path


def _measure(page: Path, width: int) -> dict:
    workdir = page.parent / f"measure-{page.stem}-{width}"
    workdir.mkdir(exist_ok=True)
    probe = workdir / "probe.html"
    text = page.read_text(encoding="utf-8")
    assert text.count("</body>") == 1
    probe.write_text(text.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = run_chromium(workdir, probe, width, "--dump-dom").stdout
    found = re.search(r'<pre id="chainrule-test-result">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the measuring script did not run: " + dom[-500:]
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def measured(page: Path):
    """Measure the page at a given window width (once per width)."""
    cache: dict[int, dict] = {}

    def at(width: int) -> dict:
        if width not in cache:
            cache[width] = _measure(page, width)
        return cache[width]

    return at


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: More documents whose layout must hold: the new catalog entries and ``chainrule explain``.
OTHER_PAGES = {
    "softmax-3-class": lambda: _derived(load(EXAMPLES / "softmax-3-class.toml")),
    "custom-formulas": lambda: _derived(load(EXAMPLES / "custom-formulas.toml")),
    # Summaries of wide networks: long notes and shortened pictures must fit too.
    "iris": lambda: _derived(load(EXAMPLES / "iris.toml")),
    "moons": lambda: _derived(load(EXAMPLES / "moons.toml")),
    "digits": lambda: _derived(load(EXAMPLES / "digits.toml")),
    "explain-logistic": lambda: render_explanation(explain("log(1+exp(w*x+b))", ["w", "b"], {"w": 0.5, "x": 2, "b": -1}), "html"),
    "training-report": lambda: _training_report(),
    "explain-hessian": lambda: render_explanation(explain("x**3*y + exp(x*y)", [], {"x": 0.5, "y": -0.25}, 2), "html"),
    # Three variables: the Hessian is listed entry by entry, each entry breaking into lines.
    "explain-hessian-entries": lambda: render_explanation(
        explain("exp(-x**2-y**2-z**2)*sin(x*y*z)", [], {"x": 0.5, "y": 1, "z": -1}, 2), "html"
    ),
}


def _training_report() -> str:
    from chainrule.datasets import load_dataset
    from chainrule.model import compile
    from chainrule.optim import NOTATION, OPTIMIZERS, SCHEDULES, worked_step
    from chainrule.render.training import render_training
    from chainrule.train import fit, settings

    net = load(EXAMPLES / "iris.toml")
    run = settings(net.training, {"epochs": 40, "schedule": "cosine"})
    result = fit(compile(net), load_dataset("iris", outputs=3, targets="distribution"), run, title=net.title)
    update = worked_step(OPTIMIZERS[run.optimizer], *result.first_step, run.learning_rate, run.hyperparameters)
    return render_training(result, "html", update, OPTIMIZERS[run.optimizer], SCHEDULES[run.schedule], NOTATION)


def _derived(network) -> str:
    d = derive(network)
    return render(d, "html", worked_example(d))


@pytest.mark.parametrize("name", list(OTHER_PAGES))
@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_other_documents_fit_the_window(tmp_path, name: str, width: int) -> None:
    chromium()
    page = tmp_path / f"{name}.html"
    page.write_text(OTHER_PAGES[name](), encoding="utf-8")
    m = _measure(page, width)
    assert m["math"]["count"] >= 10 and m["math"]["empty"] == [], m["math"]
    assert m["outsideCount"] == 0, m["outside"]
    assert m["pageWidth"] <= m["viewport"], (m["pageWidth"], m["viewport"])
    assert m["flatCount"] == 0, m["flat"]
    assert m["pastCount"] == 0, m["past"]
    assert m["scrollingCount"] == 0, m["scrolling"]
    assert m["mathScale"] >= 0.7, m["mathScale"]
    if width == WIDE:
        assert m["clippedCount"] == 0, m["clipped"]


#: Documents of the layer kinds: the batch-norm example a teacher hands out (about 1 MB of
#: HTML), and tiny networks with a residual block, dropout and an activation stage.
KIND_PAGES = {
    "batchnorm-2-examples": lambda: load(EXAMPLES / "batchnorm-2-examples.toml"),
    "residual": lambda: Network(2, (Dense(2, "tanh"), Residual((Dense(2, "relu"),)), Dense(1, "identity")), "half_sse"),
    "dropout": lambda: Network(2, (Dense(3, "relu"), Dropout(0.5), Dense(1, "identity")), "mse"),
    "activation": lambda: Network(2, (Dense(2, "identity"), Activation("tanh"), Dense(1, "identity")), "mse"),
}


@pytest.fixture(scope="module")
def kind_page(tmp_path_factory):
    """Each kind's document, derived and written once, measured once per width."""
    chromium()
    folder = tmp_path_factory.mktemp("kinds")
    pages: dict[str, Path] = {}
    measured: dict[tuple[str, int], dict] = {}

    def at(name: str, width: int) -> dict:
        if name not in pages:
            pages[name] = folder / f"{name}.html"
            pages[name].write_text(_derived(KIND_PAGES[name]()), encoding="utf-8")
        if (name, width) not in measured:
            measured[name, width] = _measure(pages[name], width)
        return measured[name, width]

    return at


@pytest.mark.parametrize("name", list(KIND_PAGES))
@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_layer_kind_documents_fit_the_window(kind_page, name: str, width: int) -> None:
    m = kind_page(name, width)
    assert m["math"]["count"] >= 100 and m["math"]["empty"] == [], m["math"]
    assert m["outsideCount"] == 0, m["outside"]
    assert m["pageWidth"] <= m["viewport"], (m["pageWidth"], m["viewport"])
    assert m["flatCount"] == 0, m["flat"]
    assert m["pastCount"] == 0, m["past"]
    if width == WIDE:
        assert m["clippedCount"] == 0, m["clipped"]


def test_the_batch_norm_steps_fit_their_width_without_scrolling(kind_page) -> None:
    """At 1200 px every step of the batch-norm backward, generic or entry by entry, is seen whole."""
    m = kind_page("batchnorm-2-examples", WIDE)
    assert m["scrolledStepsCount"] == 0, m["scrolledSteps"]


def test_there_is_much_math_and_all_of_it_has_a_size(measured) -> None:
    m = measured(WIDE)
    assert m["mathDisplay"] in ("math", "block math", "inline math"), m["mathDisplay"]
    assert m["math"]["count"] >= 100
    assert m["mfrac"]["count"] >= 20
    assert m["msubsup"]["count"] >= 100
    for kind in ("math", "mfrac", "msubsup"):
        assert m[kind]["empty"] == [], (kind, m[kind])
        assert m[kind]["minW"] > 0 and m[kind]["minH"] > 0, (kind, m[kind])


def test_fractions_are_stacked(measured) -> None:
    """Laid out as MathML, a fraction is taller than a line of text with its numerator on top."""
    m = measured(WIDE)
    assert m["line"] > 5
    assert m["fractionMinHeight"] > 1.3 * m["line"], (m["fractionMinHeight"], m["line"])
    assert m["flatCount"] == 0, m["flat"]


def test_the_network_picture_has_a_size(measured) -> None:
    m = measured(WIDE)
    assert m["network"]["w"] > 300 and m["network"]["h"] > 100, m["network"]
    assert m["svg"]["count"] >= 1 + 12  # the network, and one small picture per parameter
    assert m["svg"]["empty"] == [], m["svg"]


@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_nothing_runs_off_the_side_of_the_window(measured, width: int) -> None:
    """Wide formulas scroll inside their own box; the page itself never scrolls sideways."""
    m = measured(width)
    assert m["outsideCount"] == 0, m["outside"]
    assert m["pageWidth"] <= m["viewport"], (m["pageWidth"], m["viewport"])


@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_long_formulas_break_into_lines_rather_than_scroll(measured, width: int) -> None:
    """A formula too long for its column goes on over lines; a box scrolls only for a part no line can hold.

    At 1200 px the default document's closed forms (about 40rem) once scrolled in 34rem boxes.
    """
    m = measured(width)
    assert m["scrollingCount"] == 0, m["scrolling"]
    assert m["mathScale"] >= 0.7, m["mathScale"]


def test_formulas_that_fit_are_not_clipped(measured) -> None:
    """A scrolling box around a formula shows a scrollbar only when the formula is wider than the box may grow.

    A box below its max-width whose content is wider than the box, or any formula box
    that scrolls vertically, hides part of a formula behind a scrollbar for no reason.
    """
    m = measured(WIDE)
    assert m["clippedCount"] == 0, m["clipped"]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_screenshot(page: Path) -> None:
    workdir = page.parent / "screenshot"
    workdir.mkdir(exist_ok=True)
    shot = workdir / "shot.png"
    run_chromium(workdir, page, WIDE, f"--screenshot={shot}")
    data = shot.read_bytes()
    assert _png_size(data) == (WIDE, 3000)
    # A blank 1200x3000 page compresses to about 17 kB; this page's first screen is text, math and a picture.
    assert len(data) > 100_000, len(data)


#: A4 in PostScript points, as the print stylesheet's @page sets it.
A4_WIDTH_PT = 595.28


def _print_to_pdf(page: Path) -> Path:
    workdir = page.parent / f"print-{page.stem}"
    workdir.mkdir(exist_ok=True)
    pdf = workdir / f"{page.stem}.pdf"
    run_chromium(workdir, page, WIDE, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    return pdf


def _pdf_words(pdf: Path) -> tuple[float, list[tuple[float, float, str]]]:
    """The page width and every word's left and right edge, from pdftotext -bbox."""
    bbox = subprocess.run([required_program("pdftotext"), "-bbox", str(pdf), "-"], capture_output=True, text=True, timeout=120, check=True).stdout
    width = float(re.search(r'<page width="([\d.]+)"', bbox).group(1))
    words = [(float(a), float(b), html.unescape(t)) for a, b, t in re.findall(r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">(.*?)</word>', bbox)]
    return width, words


def _pdf_pages(pdf: Path) -> int:
    info = subprocess.run([required_program("pdfinfo"), str(pdf)], capture_output=True, text=True, timeout=60, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))


@pytest.mark.parametrize("name", ["default", "digits"])
def test_printing_keeps_every_line_on_the_page_in_about_as_many_pages_as_latex(tmp_path_factory, name: str) -> None:
    """Chromium's print of the HTML: A4, no word past the paper's edge, and not many more pages than pdflatex makes.

    The default document printed to 30 Letter pages (LaTeX: 16), with formulas cut at the right margin.
    """
    pdflatex = required_program("pdflatex")
    d = derive(default_network() if name == "default" else load(EXAMPLES / "digits.toml"))
    ex = worked_example(d)
    folder = tmp_path_factory.mktemp(f"print-{name}")
    page = folder / f"{name}.html"
    page.write_text(render(d, "html", ex), encoding="utf-8")
    pdf = _print_to_pdf(page)
    width, words = _pdf_words(pdf)
    assert abs(width - A4_WIDTH_PT) < 1, width
    assert len(words) > 500
    outside = [w for w in words if w[1] > width - 10 or w[0] < 10]
    assert outside == [], outside[:10]
    (folder / "doc.tex").write_text(render(d, "tex", ex), encoding="utf-8")
    latex = subprocess.run([pdflatex, "-halt-on-error", "-no-shell-escape", "-interaction=nonstopmode", "doc.tex"], cwd=folder, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL, timeout=300, check=False)
    assert latex.returncode == 0, latex.stdout[-2000:]
    assert _pdf_pages(pdf) <= 1.3 * _pdf_pages(folder / "doc.pdf"), (_pdf_pages(pdf), _pdf_pages(folder / "doc.pdf"))
