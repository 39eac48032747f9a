"""Documents from a derivation: HTML, LaTeX, Markdown and JSON.

``render`` returns one document as text; ``write`` renders every requested format first
and only then writes the files, each through a temporary file and a rename, so a failure
leaves no partial output behind. The proof of the batch-level rules (``chainrule.proof``)
runs generated NumPy code, which nothing here imports: a caller that wants it in the
documents runs ``prove`` and passes its result in.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from .diagram import network_diagram
from .environment import html_environment, latex_environment, markdown_environment
from .json_document import json_document
from .steps import sections, shown_expressions
from .sample_view import images as sample_images
from .summary import value_rows

if TYPE_CHECKING:
    from ..derive import Derivation
    from ..layers import LayerRules
    from ..numeric import WorkedExample
    from ..proof import Proof
    from .steps import Section


@dataclass(frozen=True)
class Shared:
    """What every document of a set shows, built once: the outline, the batch-level rules, their proof."""

    sections: tuple[Section, ...]
    rules: LayerRules
    #: From ``chainrule.proof.prove``, which runs NumPy code and so is the caller's to run.
    proof: Proof | None
    #: The derivation's symbols and the rules' matrices, as the printers write them.
    notation: Mapping
    #: How much the documents show: "brief", "full", or None for by size.
    detail: str | None = None
    #: The special functions the outline shows (H, step, σ, …), each defined once.
    glossary: tuple = ()


def prepare(
    derivation: Derivation, example: WorkedExample | None, proof: Proof | None = None, detail: str | None = None
) -> Shared:
    """The data the documents of ``derivation`` format; ``proof`` is ``prove(derivation.network)`` or None.

    ``detail`` is "brief", "full" or None (``summary.DETAILS``: by the network's size).
    """
    from ..layers import layer_rules

    from ..glossary import glossary

    rules = layer_rules(derivation.network)
    notation = {**derivation.notation, **rules.notation}
    outline = sections(derivation, example, rules, proof, detail)
    return Shared(outline, rules, proof, notation, detail, glossary(shown_expressions(outline)))


def _context(derivation: Derivation, example: WorkedExample | None, shared: Shared, fragment: bool = False) -> dict:
    net = derivation.network
    return {
        "title": net.title or "A backpropagation derivation",
        "version": __version__,
        "sections": shared.sections,
        "glossary": shared.glossary,
        # A handout ("brief") is set a size smaller in LaTeX, as handouts are.
        "detail": shared.detail,
        "d": derivation,
        "g": derivation.graph,
        "net": derivation.network,
        "ex": example,
        "fragment": fragment,
        "diagram": network_diagram,
        # The rows of the tables of numbers: all of them, or a summary's first rows of each list.
        "rows": value_rows(derivation, example.values if example is not None else None, shared.detail),
        # The worked example's x as pictures, when it is an image of the data set (a digit).
        "images": sample_images(example.point.sample) if example is not None else (),
    }


def _template(make, name: str, fragment: bool = False) -> Callable[[Derivation, WorkedExample | None, Shared], str]:
    def render(derivation: Derivation, example: WorkedExample | None, shared: Shared) -> str:
        env = make(shared.notation)
        return env.get_template(name).render(_context(derivation, example, shared, fragment))

    return render


@dataclass(frozen=True)
class Format:
    """An output format: the suffix of its file and the function that renders it."""

    name: str
    suffix: str
    #: (derivation, example, shared) -> text; ``shared`` is what ``prepare`` built for the whole set.
    render: Callable[..., str]


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("html", ".html", _template(html_environment, "derivation.html")),
        Format("tex", ".tex", _template(latex_environment, "derivation.tex")),
        Format("md", ".md", _template(markdown_environment, "derivation.md")),
        Format("json", ".json", lambda d, example, shared: json_document(d, example, shared.rules, shared.proof)),
        # For Jupyter: no document preamble, styles scoped to the fragment.
        Format("html-fragment", ".html", _template(html_environment, "derivation.html", fragment=True)),
        Format("latex-fragment", ".tex", _template(latex_environment, "fragment.tex", fragment=True)),
    )
}
#: What ``chainrule derive`` writes unless told otherwise.
DOCUMENT_FORMATS = ("html", "tex", "md", "json")


def render(
    derivation: Derivation,
    fmt: str,
    example: WorkedExample | None = None,
    proof: Proof | None = None,
    detail: str | None = None,
) -> str:
    """One document as text: ``fmt`` is html, tex, md or json; ``proof`` is ``prove(derivation.network)``, if run.

    ``detail``: "brief" (a handout), "full" (everything) or None (by size); JSON is always complete.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(DOCUMENT_FORMATS)}")
    return FORMATS[fmt].render(derivation, example, prepare(derivation, example, proof, detail))


def render_documents(
    derivation: Derivation,
    example: WorkedExample | None,
    out_dir: str | Path,
    stem: str,
    formats: Iterable[str] = DOCUMENT_FORMATS,
    proof: Proof | None = None,
    detail: str | None = None,
) -> dict[Path, str]:
    """Every requested document as text, keyed by the path it belongs at; nothing is written.

    ``proof`` (``chainrule.proof.prove(derivation.network)``) adds what it checked to the batch-level rules;
    ``detail`` is "brief", "full" or None (by size).
    """
    # Built once for every format: the outline's rule trees take as long to build as a document to print.
    shared = prepare(derivation, example, proof, detail)
    return {Path(out_dir) / f"{stem}{FORMATS[f].suffix}": FORMATS[f].render(derivation, example, shared) for f in formats}


def save(documents: Mapping[Path, str | bytes]) -> list[Path]:
    """Write rendered documents (text, or the bytes of a figure), each through a temporary file and a rename."""
    for path, text in documents.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            if isinstance(text, bytes):
                with os.fdopen(handle, "wb") as binary:
                    binary.write(text)
            else:
                with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
                    stream.write(text)
            os.chmod(temporary, 0o644)  # mkstemp makes 0600; documents are for sharing
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return list(documents)


def write(
    derivation: Derivation,
    example: WorkedExample | None,
    out_dir: str | Path,
    stem: str,
    formats: Iterable[str] = DOCUMENT_FORMATS,
    proof: Proof | None = None,
    detail: str | None = None,
) -> list[Path]:
    """Render every format, then write ``out_dir/stem.<suffix>`` for each; returns the paths."""
    return save(render_documents(derivation, example, out_dir, stem, formats, proof, detail))
