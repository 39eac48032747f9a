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

from .symbols import superscript

#: Drawn size in inches (at 72 points per inch: 518 × 259 pt); the page scales it down.
FIGSIZE = (7.2, 3.6)
#: Up to this many points a curve shows a marker at each one; beyond, only the line.
MARKERS_UP_TO = 40
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
#: Colour and dash change together, so curves stay apart in grey print and for colour-blind readers.
_DASHES = ("-", "--", "-.", ":")
#: A class's marker in a scatter of examples, beside its colour.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


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
    return curves(series, x=x, xlabel=xlabel, ylabel=ylabel, title=title, log=log, fmt="svg")


def curves(
    series: Mapping[str, Sequence[float | None]],
    *,
    x: Sequence[float],
    xlabel: str,
    ylabel: str,
    title: str,
    log: bool = False,
    fmt: str = "svg",
    legend_below: bool = False,
) -> str | bytes:
    """``curves_svg``'s chart as an SVG element (``fmt="svg"``) or a PDF file's bytes (``"pdf"``), for LaTeX.

    ``legend_below`` puts the legend under the axes in two columns, on a taller figure: for
    many long labels, which beside the axes would squeeze them on a narrow screen.

    >>> pdf = curves({"a": [1.0, 2.0]}, x=[1, 2], xlabel="x", ylabel="y", title="T", fmt="pdf")
    >>> pdf[:5], pdf == curves({"a": [1.0, 2.0]}, x=[1, 2], xlabel="x", ylabel="y", title="T", fmt="pdf")
    (b'%PDF-', True)
    """
    from cycler import cycler
    from matplotlib.ticker import MaxNLocator

    xs = [float(v) for v in x]
    for name, values in series.items():
        if len(values) != len(xs):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(xs)} x positions")
    lines = {name: _points(values, log) for name, values in series.items()}
    lines = {name: ys for name, ys in lines.items() if any(not math.isnan(y) for y in ys)}

    def draw(fig, ax) -> None:
        ax.set_prop_cycle(cycler(color=_COLORS) + cycler(linestyle=_DASHES * 2))
        ax.set_xlabel(_literal(xlabel))
        ax.set_ylabel(_literal(ylabel))
        if not lines:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "nothing to plot", transform=ax.transAxes, ha="center", va="center", color="#5f6368")
            return
        for name, ys in lines.items():
            ax.plot(xs, ys, label=_literal(name), linewidth=1.6, marker="o", markersize=3.5, markevery=_marked(ys))
        if len(set(xs)) == 1:
            # One epoch: matplotlib would spread ticks at 0.995, 1.000 ... around it.
            ax.set_xlim(xs[0] - 1, xs[0] + 1)
            ax.set_xticks(xs[:1])
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log:
            ax.set_yscale("log")
            _plain_log_labels(ax.yaxis)
        # Outside the axes, so no curve is ever hidden behind it.
        if legend_below:
            fig.legend(loc="outside lower center", frameon=False, ncols=2)
        else:
            fig.legend(loc="outside right upper", frameon=False)

    return _chart(draw, title, fmt, (FIGSIZE[0], FIGSIZE[1] + 0.3 * math.ceil(len(lines) / 2)) if legend_below else FIGSIZE)


def heatmap(
    values: Sequence[Sequence[float]],
    *,
    columns: Sequence[int],
    rows: Sequence[int],
    xlabel: str,
    ylabel: str,
    colorbar: str,
    title: str,
    fmt: str = "svg",
) -> str | bytes:
    """A matrix as colours on a log scale (``values[row][column]``; nan and ≤ 0 are left blank).

    >>> svg = heatmap([[1.0, 10.0], [0.1, float("nan")]], columns=[0, 1], rows=[1, 2], xlabel="epoch",
    ...               ylabel="layer", colorbar="norm", title="H")
    >>> svg.startswith("<svg ") and "<image" in svg
    True
    """
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import MaxNLocator

    grid = [_points(row, True) for row in values]
    finite = [v for row in grid for v in row if not math.isnan(v)]

    def draw(fig, ax) -> None:
        ax.grid(False)
        ax.set_xlabel(_literal(xlabel))
        ax.set_ylabel(_literal(ylabel))
        if not finite:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "nothing to plot", transform=ax.transAxes, ha="center", va="center", color="#5f6368")
            return
        low, high = min(finite), max(finite)
        if high <= low:
            low, high = low / 10, high * 10
        extent = (columns[0] - 0.5, columns[-1] + 0.5, rows[-1] + 0.5, rows[0] - 0.5)
        image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis", norm=LogNorm(low, high), extent=extent)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        bar = fig.colorbar(image, ax=ax, label=_literal(colorbar))
        _plain_log_labels(bar.ax.yaxis)

    return _chart(draw, title, fmt)


def histograms(
    counts: Mapping[str, Sequence[float]],
    *,
    edges: Sequence[float],
    xlabel: str,
    title: str,
    fmt: str = "svg",
) -> str | bytes:
    """Normalized histograms drawn as outlines over shared bin ``edges``, one per series (Glorot & Bengio's figures).

    >>> svg = histograms({"layer 1": [1, 3], "layer 2": [2, 2]}, edges=[0.0, 0.5, 1.0], xlabel="a", title="Hist")
    >>> svg.count("<path") > 2
    True
    """
    from cycler import cycler

    def draw(fig, ax) -> None:
        ax.set_prop_cycle(cycler(color=_COLORS) + cycler(linestyle=_DASHES * 2))
        ax.set_xlabel(_literal(xlabel))
        ax.set_ylabel("fraction of the values")
        for name, values in counts.items():
            total = float(sum(values)) or 1.0
            ax.stairs([v / total for v in values], list(edges), label=_literal(name), linewidth=1.6)
        fig.legend(loc="outside right upper", frameon=False)

    return _chart(draw, title, fmt)


def decades(values: Sequence[float | None]) -> float:
    """How many decades the positive finite values span (0 with fewer than two of them).

    >>> decades([0.25, 0.1, 2.3e-5]), decades([0.5, 0.4, None]), decades([0.0, 1.0])
    (4.036..., 0.0969..., 0.0)
    """
    drawn = [v for v in _points(values, log=True) if not math.isnan(v)]
    return math.log10(max(drawn) / min(drawn)) if len(drawn) >= 2 else 0.0


def boundary(
    x: Sequence[float],
    y: Sequence[float],
    predicted: Sequence[Sequence[int]],
    points: Sequence[tuple[float, float, int]],
    *,
    classes: Sequence[str],
    xlabel: str,
    ylabel: str,
    title: str,
    margin: Sequence[Sequence[float]] | None = None,
    fmt: str = "svg",
) -> str | bytes:
    """A 2-D classifier's regions (``predicted[row][column]`` over the grid ``x`` × ``y``), their borders, and the examples.

    Each class has a colour and a marker of its own, so the picture reads in grey print too.
    With two classes, ``margin`` (above 0 where class 1 is predicted) draws the border as its
    zero level line, smooth where the classes' own border would follow the grid's steps.

    >>> svg = boundary([0.0, 1.0], [0.0, 1.0], [[0, 1], [1, 1]], [(0.0, 0.0, 0), (1.0, 1.0, 1)],
    ...                classes=["a", "b"], xlabel="x₁", ylabel="x₂", title="B")
    >>> svg.startswith("<svg ") and "<image" in svg
    True
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap

    k = len(classes)
    colors = [_COLORS[i % len(_COLORS)] for i in range(k)]

    def draw(fig, ax) -> None:
        ax.grid(False)
        ax.set_xlabel(_literal(xlabel))
        ax.set_ylabel(_literal(ylabel))
        extent = (x[0], x[-1], y[0], y[-1])
        regions = ListedColormap(colors)
        norm = BoundaryNorm([i - 0.5 for i in range(k + 1)], k)
        ax.imshow(predicted, origin="lower", extent=extent, aspect="auto", interpolation="nearest", cmap=regions,
                  norm=norm, alpha=0.22)  # fmt: skip
        if len({v for row in predicted for v in row}) > 1:
            field, levels = (margin, [0.0]) if margin is not None else (predicted, [i + 0.5 for i in range(k - 1)])
            ax.contour(x, y, field, levels=levels, colors="#202124", linewidths=1.2)
        for c in range(k):
            mine = [(a, b) for a, b, label in points if label == c]
            if mine:
                ax.scatter([a for a, _ in mine], [b for _, b in mine], s=22, color=colors[c], edgecolors="white",
                           linewidths=0.5, marker=_MARKERS[c % len(_MARKERS)], label=_literal(classes[c]), zorder=3)  # fmt: skip
        ax.set_xlim(x[0], x[-1])
        ax.set_ylim(y[0], y[-1])
        fig.legend(loc="outside right upper", frameon=False)

    return _chart(draw, title, fmt, (FIGSIZE[0], FIGSIZE[0] * 0.62))


def images(
    pixels: Sequence[Sequence[Sequence[float]]],
    captions: Sequence[str],
    *,
    title: str,
    per_row: int = 6,
    fmt: str = "svg",
) -> str | bytes:
    """Small images in rows (``pixels[i]`` is image i's rows of values; larger is darker), each with its caption.

    >>> svg = images([[[0.0, 16.0], [8.0, 4.0]]], ["true 3, predicted 8"], title="Misses")
    >>> svg.count("<image") == 1 and "true 3, predicted 8" in svg
    True
    """
    rows = max(1, math.ceil(len(pixels) / per_row))
    columns = min(per_row, max(1, len(pixels)))
    highest = max((v for image in pixels for row in image for v in row), default=1.0) or 1.0

    def draw(fig, ax) -> None:
        if not pixels:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "nothing to show", transform=ax.transAxes, ha="center", va="center", color="#5f6368")
            return
        # The panels take the whole figure, so the title goes above them all.
        ax.remove()
        fig.suptitle(_literal(title), x=0.01, ha="left", fontsize=11)
        grid = fig.add_gridspec(rows, columns)
        for i, (image, caption) in enumerate(zip(pixels, captions)):
            panel = fig.add_subplot(grid[i // columns, i % columns])
            panel.imshow(image, cmap="gray_r", vmin=0.0, vmax=highest, interpolation="nearest")
            panel.set_xticks([])
            panel.set_yticks([])
            panel.grid(False)
            for spine in panel.spines.values():
                spine.set_visible(True)
                spine.set_color("#9aa0a6")
            panel.set_title(_literal(caption), fontsize=9)

    return _chart(draw, title, fmt, (1.25 * columns + 0.3, 1.45 * rows + 0.45))


def _decade(value: float, _position=None) -> str:
    """A log axis's tick label as plain text, 10⁻³: matplotlib's own ($10^{-3}$) costs a mathtext layout each.

    >>> _decade(0.001), _decade(1.0), _decade(1e12), _decade(3.0)
    ('10⁻³', '1', '10¹²', '')
    """
    if not value > 0:
        return ""
    exponent = math.log10(value)
    if abs(exponent - round(exponent)) > 1e-9:
        return ""
    k = round(exponent)
    return {0: "1", 1: "10"}.get(k, "10" + superscript(k))


def _plain_log_labels(axis) -> None:
    """Decades as 10ⁿ; where the axis spans less than two decades, its other ticks as plain numbers too."""
    from matplotlib.ticker import Formatter

    class Labels(Formatter):
        def __call__(self, value, position=None):
            decade = _decade(value)
            if decade or not value > 0:
                return decade
            low, high = sorted(self.axis.get_view_interval())
            narrow = low > 0 and math.log10(high / low) < 2
            # 2, 3 and 5 of each decade: enough to read the axis, few enough not to collide
            return f"{value:.2g}".replace("-", "−") if narrow and f"{value:.1e}"[0] in "235" else ""

    axis.set_major_formatter(Labels())
    axis.set_minor_formatter(Labels())


def _chart(draw, title: str, fmt: str, size: tuple[float, float] = FIGSIZE) -> str | bytes:
    """A figure of FIGSIZE drawn by ``draw(fig, ax)`` with the house style, as an SVG element or PDF bytes."""
    import matplotlib.style
    from matplotlib.backends.backend_pdf import FigureCanvasPdf
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    if fmt not in ("svg", "pdf"):
        raise ValueError(f"unknown chart format {fmt!r}; use svg or pdf")
    # "default" first: the user's matplotlibrc must not change the bytes of a report.
    with matplotlib.style.context(["default", _rc(title)]):
        fig = Figure(figsize=size, layout="constrained")
        (FigureCanvasSVG if fmt == "svg" else FigureCanvasPdf)(fig)
        ax = fig.add_subplot()
        ax.set_title(_literal(title), loc="left")
        draw(fig, ax)
        if fmt == "pdf":
            binary = io.BytesIO()
            fig.savefig(binary, format="pdf", metadata={"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None})
            return binary.getvalue()
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
