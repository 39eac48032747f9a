"""The LaTeX document compiles with pdflatex, safely, into pages that fit the paper.

pdflatex runs with -no-shell-escape and -halt-on-error, in a fresh folder per document.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
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

pytestmark = pytest.mark.pdflatex

#: Titles with every LaTeX special, accents pdflatex sets from Latin-1, and characters it has no glyph for.
SPECIAL_TITLE = r"Ünïcode ★ δ: 50% of {x}_1 & $y$ # \relax ^ ~ \\"

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

NETWORKS = {
    "default": default_network,
    "mixed-3-3-2-1": lambda: Network(3, (Dense(3, "tanh"), Dense(2, "relu"), Dense(1, "identity")), "half_sse"),
    "special-title": lambda: Network(2, (Dense(2, "sigmoid"), Dense(2, "tanh")), "mse", title=SPECIAL_TITLE),
    "softmax-3-class": lambda: load(EXAMPLES / "softmax-3-class.toml"),
    "custom-formulas": lambda: load(EXAMPLES / "custom-formulas.toml"),
    # Summaries (more than 60 parameters); digits' whole picture once ran pdflatex out of memory.
    "iris": lambda: load(EXAMPLES / "iris.toml"),
    "moons": lambda: load(EXAMPLES / "moons.toml"),
    "digits": lambda: load(EXAMPLES / "digits.toml"),
    "new-activations": lambda: Network(
        2,
        (Dense(2, "gelu"), Dense(2, {"name": "elu", "alpha": 0.5}), Dense(2, "prelu"), Dense(1, "softsign")),
        {"name": "huber", "delta": 0.5},
        regularizer="l1",
    ),
    # The layer kinds: the batch-norm handout, and tiny networks with a residual block, dropout, an activation stage.
    "batchnorm-2-examples": lambda: load(EXAMPLES / "batchnorm-2-examples.toml"),
    "residual": lambda: Network(2, (Dense(2, "tanh"), Residual((Dense(2, "relu"),)), Dense(1, "identity")), "half_sse"),
    "dropout": lambda: Network(2, (Dense(3, "relu"), Dropout(0.5), Dense(1, "identity")), "mse"),
    "activation": lambda: Network(2, (Dense(2, "identity"), Activation("tanh"), Dense(1, "identity")), "mse"),
}

#: ``chainrule explain`` documents: a formula, the variables and the point.
EXPLAINED = {
    "explain-product": ("x**2*sin(x)", ["x"], None, 1),
    "explain-logistic": ("log(1+exp(w*x+b))", ["w", "b"], {"w": 0.5, "x": 2, "b": -1}, 1),
    "explain-hessian": ("x**3*y + exp(x*y)", [], {"x": 0.5, "y": -0.25}, 2),
    "explain-kinks": ("max(x, 0) + abs(x - y) + relu(y)*sigmoid(x)", [], None, 2),
    # Three variables: the Hessian is too wide even by columns, so it is listed entry by entry.
    "explain-hessian-entries": ("exp(-x**2-y**2-z**2)*sin(x*y*z)", [], {"x": 0.5, "y": 1, "z": -1}, 2),
}

#: An overfull line wider than this runs visibly into the margin.
OVERFULL_LIMIT_PT = 20.0


def pdflatex() -> str:
    return required_program("pdflatex")


class Compiled:
    def __init__(self, folder: Path, result: subprocess.CompletedProcess) -> None:
        self.folder = folder
        self.result = result
        self.pdf = folder / "doc.pdf"
        log = folder / "doc.log"
        self.log = log.read_text(encoding="latin-1") if log.exists() else ""

    @property
    def pages(self) -> int:
        found = re.search(r"Output written on \S*doc\.pdf \((\d+) pages?,", self.log)
        assert found, "pdflatex wrote no PDF:\n" + self.errors()
        return int(found.group(1))

    def errors(self) -> str:
        return "\n".join(line for line in self.log.splitlines() if line.startswith("!"))[:2000] or self.result.stdout[-2000:]


def compile_tex(folder: Path, tex: str) -> Compiled:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "doc.tex").write_text(tex, encoding="utf-8")
    result = subprocess.run(
        [pdflatex(), "-halt-on-error", "-no-shell-escape", "-interaction=nonstopmode", "doc.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        errors="replace",
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    return Compiled(folder, result)


def _document(network: Network) -> str:
    d = derive(network)
    return render(d, "tex", worked_example(d))


def _explained(name: str) -> str:
    text, wrt, at, order = EXPLAINED[name]
    return render_explanation(explain(text, wrt, at, order), "tex")


@pytest.fixture(scope="module", params=[*NETWORKS, *EXPLAINED])
def compiled(request, tmp_path_factory) -> Compiled:
    name = request.param
    tex = _document(NETWORKS[name]()) if name in NETWORKS else _explained(name)
    return compile_tex(tmp_path_factory.mktemp(name), tex)


def test_compiles_to_a_pdf(compiled: Compiled) -> None:
    assert compiled.result.returncode == 0, compiled.errors()
    assert compiled.pdf.exists() and compiled.pdf.read_bytes()[:5] == b"%PDF-"
    assert compiled.pages >= 1


def test_no_line_runs_into_the_margin(compiled: Compiled) -> None:
    assert compiled.result.returncode == 0, compiled.errors()
    widths = [float(w) for w in re.findall(r"Overfull \\hbox \((\d+(?:\.\d+)?)pt too wide\)", compiled.log)]
    too_wide = [w for w in widths if w > OVERFULL_LIMIT_PT]
    assert too_wide == [], f"{len(too_wide)} overfull lines, the widest {max(too_wide, default=0)}pt"


def test_no_undefined_references_or_missing_characters(compiled: Compiled) -> None:
    assert compiled.result.returncode == 0, compiled.errors()
    assert "Missing character" not in compiled.log
    assert "undefined" not in compiled.log.lower().replace("\\ifundefined", "")


@pytest.mark.parametrize(
    "title",
    [
        pytest.param("«Réseau» à deux couches", id="french-guillemets"),
        pytest.param("Þórður's ð-net", id="icelandic-thorn-eth"),
        pytest.param("Sieć dwuwarstwowa: ą ę", id="polish-ogonek"),
        pytest.param("Đorđe ħ ŋ ſ", id="latin-extended-a"),
    ],
)
def test_titles_in_latin_scripts_compile(tmp_path: Path, title: str) -> None:
    """A title in any Latin script compiles: set as itself, or replaced by the escaper, never a fatal error."""
    net = Network(1, (Dense(1, "identity"),), "mse", title=title)
    compiled = compile_tex(tmp_path, _document(net))
    assert compiled.result.returncode == 0, compiled.errors()
    assert compiled.pdf.exists()


def test_title_reads_as_written_in_the_pdf(tmp_path: Path) -> None:
    """The title's characters come out of the PDF as themselves (< > | included)."""
    pdflatex()
    pdftotext = required_program("pdftotext")  # poppler-utils: reads the PDF's text back
    title = "a <b> | c & 50% #1 {x} ü"
    net = Network(1, (Dense(1, "identity"),), "mse", title=title)
    compiled = compile_tex(tmp_path, _document(net))
    assert compiled.result.returncode == 0, compiled.errors()
    text = subprocess.run(
        [pdftotext, "-f", "1", "-l", "1", "-enc", "UTF-8", str(compiled.pdf), "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    first = unicodedata.normalize("NFC", " ".join(text.split("\n\n")[0].split()))
    assert first == title, first


def test_the_batch_norm_steps_are_set_at_a_readable_size(tmp_path: Path) -> None:
    """Each step's note is a line of its own and a long entry goes on over lines: no step is shrunk to fit."""
    tex = _document(load(EXAMPLES / "batchnorm-2-examples.toml"))
    start = tex.index("step by step}")
    block = tex[start:tex.index("\\subsubsection", start)]
    assert block.count("\\crnoteabove{") == 5
    compiled = compile_tex(tmp_path, tex)
    assert compiled.result.returncode == 0, compiled.errors()
    assert _scaled(compiled.log) == [], _scaled(compiled.log)


#: The smallest a glyph of an unscaled formula is set: a subscript of a subscript (6 pt in an
#: 11 pt document), whose words pdftotext -bbox reports 4.42 pt tall.
SMALLEST_GLYPH_PT = 4.42
#: No formula is shrunk below this share of its size; the macros of preamble.tex shrink a part
#: of a formula that no line can hold to this at the most, and say by how much in the log.
SMALLEST_SCALE = 0.70


def _scaled(log: str) -> list[int]:
    """The percentages the preamble's macros scaled formulas to, as the log reports them."""
    return [int(n) for n in re.findall(r"chainrule: a formula scaled to (\d+) percent", log)]


def _word_heights(pdf: Path) -> list[float]:
    """How tall pdftotext -bbox finds each word with a letter or digit (a delimiter's glyph is shorter than its size)."""
    pdftotext = required_program("pdftotext")
    bbox = subprocess.run([pdftotext, "-bbox", str(pdf), "-"], capture_output=True, text=True, timeout=120, check=True).stdout
    words = re.findall(r'<word xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">(.*?)</word>', bbox)
    return [float(y1) - float(y0) for y0, y1, text in words if re.search(r"[A-Za-z0-9]", text)]


def test_no_formula_is_shrunk_below_70_percent(compiled: Compiled) -> None:
    """Long formulas break across lines; only a part no line can hold shrinks, to 70 % at the most.

    The log says how much each part was scaled; the PDF's words say it too (a formula shrunk to
    hairlines, as \\resizebox{0.74\\linewidth} once set digits' 64-term sums, has words 1 pt tall).
    """
    assert compiled.result.returncode == 0, compiled.errors()
    assert all(p >= 100 * SMALLEST_SCALE for p in _scaled(compiled.log)), sorted(_scaled(compiled.log))[:5]
    heights = _word_heights(compiled.pdf)
    assert len(heights) > 100
    small = [h for h in heights if h < SMALLEST_SCALE * SMALLEST_GLYPH_PT - 0.01]
    assert small == [], f"{len(small)} words smaller than {SMALLEST_SCALE:.0%} of a subscript's subscript, the smallest {min(small, default=0):.2f} pt"
