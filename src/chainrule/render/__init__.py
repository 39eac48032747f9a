"""Documents from a derivation: HTML, LaTeX, Markdown and JSON.

``render`` returns one document as text; ``write`` renders every requested format first
and only then writes the files, each through a temporary file and a rename, so a failure
leaves no partial output behind.
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
from .steps import sections

if TYPE_CHECKING:
    from ..derive import Derivation
    from ..numeric import WorkedExample


def _context(derivation: Derivation, example: WorkedExample | None, fragment: bool = False, outline=None) -> dict:
    net = derivation.network
    return {
        "title": net.title or "A backpropagation derivation",
        "version": __version__,
        "sections": outline if outline is not None else sections(derivation, example),
        "d": derivation,
        "g": derivation.graph,
        "net": derivation.network,
        "ex": example,
        "fragment": fragment,
        "diagram": network_diagram,
    }


def _template(make, name: str, fragment: bool = False) -> Callable[[Derivation, WorkedExample | None], str]:
    def render(derivation: Derivation, example: WorkedExample | None, outline=None) -> str:
        env = make(derivation.notation)
        return env.get_template(name).render(_context(derivation, example, fragment, outline))

    return render


@dataclass(frozen=True)
class Format:
    """An output format: the suffix of its file and the function that renders it."""

    name: str
    suffix: str
    #: (derivation, example, outline) -> text; ``outline`` is the shared ``sections`` or None.
    render: Callable[..., str]


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("html", ".html", _template(html_environment, "derivation.html")),
        Format("tex", ".tex", _template(latex_environment, "derivation.tex")),
        Format("md", ".md", _template(markdown_environment, "derivation.md")),
        Format("json", ".json", lambda derivation, example, outline=None: json_document(derivation, example)),
        # For Jupyter: no document preamble, styles scoped to the fragment.
        Format("html-fragment", ".html", _template(html_environment, "derivation.html", fragment=True)),
        Format("latex-fragment", ".tex", _template(latex_environment, "fragment.tex", fragment=True)),
    )
}
#: What ``chainrule derive`` writes unless told otherwise.
DOCUMENT_FORMATS = ("html", "tex", "md", "json")


def render(derivation: Derivation, fmt: str, example: WorkedExample | None = None) -> str:
    """One document as text: ``fmt`` is html, tex, md or json."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(DOCUMENT_FORMATS)}")
    return FORMATS[fmt].render(derivation, example)


def render_documents(
    derivation: Derivation,
    example: WorkedExample | None,
    out_dir: str | Path,
    stem: str,
    formats: Iterable[str] = DOCUMENT_FORMATS,
) -> dict[Path, str]:
    """Every requested document as text, keyed by the path it belongs at; nothing is written."""
    # One outline for every format: its rule trees take as long to build as a document to print.
    outline = sections(derivation, example)
    return {Path(out_dir) / f"{stem}{FORMATS[f].suffix}": FORMATS[f].render(derivation, example, outline) for f in formats}


def save(documents: Mapping[Path, str]) -> list[Path]:
    """Write rendered documents, each through a temporary file and a rename."""
    for path, text in documents.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
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
) -> list[Path]:
    """Render every format, then write ``out_dir/stem.<suffix>`` for each; returns the paths."""
    return save(render_documents(derivation, example, out_dir, stem, formats))
