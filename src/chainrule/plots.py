"""Line charts of a training run as SVG text that an HTML page can inline.

The functions take plain sequences of numbers, not chainrule's records, and only draw
them. Matplotlib is imported inside the functions, so importing chainrule does not load
it, and each figure is drawn with matplotlib's defaults (not the user's matplotlibrc)
on its own ``Figure`` with the SVG canvas: no pyplot, no global figure state.

The same numbers give the same bytes: no date, no creator, ids hashed from a fixed salt.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from xml.dom import minidom

#: Drawn size in inches (at 72 points per inch: 518 × 259 pt); the page scales it down.
FIGSIZE = (7.2, 3.6)
#: Up to this many points a curve shows a marker at each one; beyond, only the line.
MARKERS_UP_TO = 40
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
#: Colour and dash change together, so curves stay apart in grey print and for colour-blind readers.
_DASHES = ("-", "--", "-.", ":")


def _rc(salt: str) -> dict:
    return {
        "svg.hashsalt": f"chainrule {salt}",
        # Text stays text: searchable, selectable, and smaller than glyph outlines.
        "svg.fonttype": "none",
        "font.size": 11,
        # Transparent, so a chart sits on the page's own paper colour.
        "figure.facecolor": "none",
        "axes.facecolor": "none",
        "savefig.facecolor": "none",
        "axes.grid": True,
        "grid.color": "#e3e3e3",
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def _points(values: Sequence[float | None], log: bool) -> list[float]:
    """The values as floats, with what cannot be drawn (None, nan, ±inf, ≤ 0 on a log axis) as nan."""
    out = []
    for v in values:
        f = math.nan if v is None else float(v)
        out.append(f if math.isfinite(f) and (f > 0 or not log) else math.nan)
    return out


def _marked(points: list[float]) -> list[int]:
    """Where a marker goes: at every point of a short curve, else at points with no drawn neighbour."""
    if len(points) <= MARKERS_UP_TO:
        return [i for i, p in enumerate(points) if not math.isnan(p)]
    drawn = [not math.isnan(p) for p in points]
    return [
        i
        for i, d in enumerate(drawn)
        if d and not (i > 0 and drawn[i - 1]) and not (i + 1 < len(drawn) and drawn[i + 1])
    ]


def _literal(text: str) -> str:
    # Matplotlib reads $...$ as math; a label is text, so its dollar signs stay dollars.
    return text.replace("$", r"\$")


def curves_svg(
    series: Mapping[str, Sequence[float | None]],
    *,
    x: Sequence[float],
    xlabel: str,
    ylabel: str,
    title: str,
    log: bool = False,
) -> str:
    """One chart with a line per series over ``x``, as an ``<svg role="img">`` element.

    Points that are None, nan or infinite (or not positive on a ``log`` axis) are left
    out, leaving a gap; a series with no point left is not drawn. With nothing at all to
    draw, the chart says so. The ids inside the SVG are hashed from ``title``, so charts
    that share a page need different titles.

    >>> svg = curves_svg({"train": [0.9, 0.5], "validation": [1.0, None]}, x=[1, 2],
    ...                  xlabel="epoch", ylabel="loss", title="Loss")
    >>> svg.startswith('<svg ') and 'role="img"' in svg and 'aria-label="Loss"' in svg
    True
    >>> svg == curves_svg({"train": [0.9, 0.5], "validation": [1.0, None]}, x=[1, 2],
    ...                   xlabel="epoch", ylabel="loss", title="Loss")
    True
    """
    import matplotlib.style
    from cycler import cycler
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    xs = [float(v) for v in x]
    for name, values in series.items():
        if len(values) != len(xs):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(xs)} x positions")
    curves = {name: _points(values, log) for name, values in series.items()}
    curves = {name: ys for name, ys in curves.items() if any(not math.isnan(y) for y in ys)}

    # "default" first: the user's matplotlibrc must not change the bytes of a report.
    with matplotlib.style.context(["default", _rc(title)]):
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        FigureCanvasSVG(fig)
        ax = fig.add_subplot()
        ax.set_prop_cycle(cycler(color=_COLORS) + cycler(linestyle=_DASHES * 2))
        ax.set_title(_literal(title), loc="left")
        ax.set_xlabel(_literal(xlabel))
        ax.set_ylabel(_literal(ylabel))
        if not curves:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "nothing to plot", transform=ax.transAxes, ha="center", va="center", color="#5f6368")
        else:
            for name, ys in curves.items():
                ax.plot(xs, ys, label=_literal(name), linewidth=1.6, marker="o", markersize=3.5, markevery=_marked(ys))
            if len(set(xs)) == 1:
                # One epoch: matplotlib would spread ticks at 0.995, 1.000 ... around it.
                ax.set_xlim(xs[0] - 1, xs[0] + 1)
                ax.set_xticks(xs[:1])
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if log:
                ax.set_yscale("log")
            # Outside the axes, so no curve is ever hidden behind it.
            fig.legend(loc="outside right upper", frameon=False)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return _inline(buffer.getvalue(), title)


def _inline(svg: str, title: str) -> str:
    """Matplotlib's SVG file as an element for an HTML page: no prolog, labelled, self-contained.

    Matplotlib names every group (``figure_1``, ``line2d_3``); two charts on a page would
    repeat those ids, and nothing refers to them, so they go. Its ``<style>`` rule applies
    to ``*``, the whole page once inlined; the two properties it sets are inherited, so
    the root element carries them instead.
    """
    doc = minidom.parseString(svg)
    root = doc.documentElement
    for group in root.getElementsByTagName("g"):
        if group.hasAttribute("id"):
            group.removeAttribute("id")
    for style in root.getElementsByTagName("style"):
        style.parentNode.removeChild(style)
    for defs in root.getElementsByTagName("defs"):
        if not defs.hasChildNodes() or all(c.nodeType == c.TEXT_NODE for c in defs.childNodes):
            defs.parentNode.removeChild(defs)
    root.setAttribute("class", "plot")
    root.setAttribute("role", "img")
    root.setAttribute("aria-label", title)
    root.setAttribute("stroke-linejoin", "round")
    root.setAttribute("stroke-linecap", "butt")
    label = doc.createElement("title")
    label.appendChild(doc.createTextNode(title))
    root.insertBefore(label, root.firstChild)
    return root.toxml()
