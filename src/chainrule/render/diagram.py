"""The picture of a network: where each unit, connection and label is drawn, and which are lit.

A diagram is data (positions, labels with their boxes, a flag per element); the HTML
template turns it into inline SVG and the LaTeX one into a picture, both from the same
numbers. Lighting a parameter marks its own connection and every connection on a path
from it to the loss, the paths whose partial derivatives its chain multiplies.

Weight labels are placed, not put at a fixed point of their line: each goes at a point
along its own line where its box meets no unit and no other label, crossing as few other
lines as it can. A picture where some label finds no room, or too many sit on crossings,
names none on its lines and says in its legend how lines are named instead.

>>> from chainrule.network import default_network
>>> from chainrule.derive import derive
>>> d = derive(default_network())
>>> pic = network_diagram(d, d.graph.parameters[0])
>>> sum(e.lit for e in pic.edges), len(pic.edges)
(5, 16)
>>> whole = network_diagram(d)
>>> len(whole.labels), [u.label for u in whole.units if u.kind == "target"]
(12, ['y₁', 'y₂'])
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import sympy as sp

from ..derive import Derivation
from ..graph import Graph
from ..kinds import KINDS
from .printing import text_name

#: A layer wider than this is drawn as its first units, an ellipsis and its last unit, and
#: so is every layer wider than FIRST_UNITS + 1 if the picture would still have more weights
#: than MOST_EDGES: past that the lines are a blur (a 64-32-10 network has 2368 of them),
#: SVG pictures of it repeated per parameter ran to hundreds of megabytes, and LaTeX's
#: picture environment ran out of memory.
WIDEST_LAYER = 12
MOST_EDGES = 200
FIRST_UNITS = 3
#: A network with more columns than this (inputs and stages) is drawn as its first three
#: columns, a gap, and its last two (and the lit parameter's layer): twenty layers side by
#: side would shrink every label below reading size.
MOST_COLUMNS = 7


@dataclass(frozen=True)
class Geometry:
    """The sizes of one kind of picture, in SVG user units: one unit is one CSS pixel at scale 1."""

    #: Between columns when the lines carry weight labels, and when they do not: the spacings tried.
    columns: tuple[float, ...]
    tight_columns: tuple[float, ...]
    row: float
    #: A unit's circle; a picture whose unit labels are wider draws bigger circles.
    radius: float
    margin: float
    font: float
    label_font: float
    caption_font: float
    #: The smallest scale the page may draw the picture at: its smallest font is then 10 px.
    least_scale: float
    #: The scale it is drawn at where the page has room: the document's picture with letters near the
    #: size of the text around it (its 12 px labels at 15 px beside 17 px body text).
    shown_scale: float
    #: Which weights get a label on their line: "all", or only the lit parameter's ("own").
    labels: str
    #: A column of more units than this is drawn shortened (see WIDEST_LAYER).
    widest: int = WIDEST_LAYER


#: The network picture of a document ("large") and the one beside each gradient ("small").
SIZES = {
    "large": Geometry(
        columns=(120, 135, 150, 165, 180, 200),
        tight_columns=(112, 96, 84),
        row=64,
        radius=21,
        margin=20,
        font=13,
        label_font=12,
        caption_font=12,
        least_scale=10 / 12,
        shown_scale=1.25,
        labels="all",
    ),
    # Beside a gradient, a column of ten is drawn as five: the picture stays about as tall as the steps.
    "small": Geometry(
        columns=(88,),
        tight_columns=(88,),
        row=50,
        radius=16,
        margin=20,
        font=11,
        label_font=11,
        caption_font=11,
        least_scale=10 / 11,
        shown_scale=1.0,
        labels="own",
        widest=6,
    ),
}
#: The width of the column beside a gradient's steps (picture.css's 22rem): a small picture
#: wider than this at its least scale is drawn across the page instead.
BESIDE = 352
#: The room a 640 px window leaves a picture (the page's side padding is 1.25rem).
PHONE = 600
#: Advance widths of DejaVu Sans (the SVG font) in em, for estimating a label's box: the
#: letters of unit and parameter names, the sub- and superscripts, and a wide default.
_ADVANCE = {
    **dict.fromkeys("⁰¹²³⁴⁵⁶⁷⁸⁹₀₁₂₃₄₅₆₇₈₉", 0.41),
    **dict.fromkeys("⁽⁾ⱼˡ", 0.25),
    **dict.fromkeys("‚,. ", 0.32),
    **dict.fromkeys("abdghnopquxyzγβ0123456789", 0.64),
    **dict.fromkeys("ceksvLμσₖ", 0.58),
    **dict.fromkeys("fijlrtI", 0.40),
}
_WIDE = 0.86  # w, +, =, capitals: wider than any letter but m
#: DejaVu Sans's ascent and descent, in em: a text's box around its baseline.
ASCENT, DESCENT = 0.93, 0.24
#: Room kept free around a label, in units.
PAD = 4.0


def text_width(text: str, font: float, bold: bool = False) -> float:
    """An upper estimate of ``text``'s width at ``font`` units in DejaVu Sans.

    >>> round(text_width("w⁽¹⁾₁₁", 10), 1)
    25.9
    """
    em = sum(0.98 if ch == "m" else _ADVANCE.get(ch, _WIDE) for ch in text)
    return em * font * (1.12 if bold else 1.0)


@dataclass(frozen=True)
class Unit:
    """A circle (a unit, an input, a target, the loss), a +1 box, or an ellipsis, at its centre (x, y)."""

    key: str
    label: str
    title: str
    x: float
    y: float
    #: "input", "unit", "sum", "bias", "loss", "target", "penalty", or "more" for the units an ellipsis stands for
    kind: str
    lit: bool
    symbol: sp.Basic | None = None
    #: A unit dropped in the worked example's first example (a dropout mask of 0): drawn crossed out.
    crossed: bool = False


@dataclass(frozen=True)
class Edge:
    """A line from centre to centre (the shapes drawn over its ends): a weight, a bias, or unit to unit."""

    key: str
    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    lit: bool
    #: True for the connection of the lit parameter itself.
    own: bool
    symbol: sp.Basic | None = None


@dataclass(frozen=True)
class Label:
    """A weight's name on its line: centred at (x, y), in a box of width × height that nothing else overlaps."""

    key: str
    text: str
    x: float
    y: float
    width: float
    height: float
    #: Where the text's baseline is (SVG's y of the text).
    baseline: float
    #: The lit parameter's own label, set in bold.
    own: bool
    symbol: sp.Basic | None = None


@dataclass(frozen=True)
class Caption:
    """Text under a column of a shortened picture: how many units it has, or which layers a gap stands for."""

    text: str
    x: float
    y: float


@dataclass(frozen=True)
class Box:
    """A labelled box around a column of units: a stage that acts on its units together (a normalization)."""

    key: str
    label: str
    title: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Arc:
    """A skip connection: a curve from a unit of an earlier column over the columns between to a sum."""

    key: str
    x1: float
    y1: float
    x2: float
    y2: float
    #: How far below its lower end the curve dips (SVG y grows downward; negative: above): about
    #: half a row, so that it runs between the rows of the columns it passes, under the circles.
    dip: float
    lit: bool = False


@dataclass(frozen=True)
class Gap:
    """The columns of a deep network that are not drawn: an ellipsis on each row of the column before."""

    key: str
    #: The first and last stage not drawn.
    first: int
    last: int
    x: float
    rows: tuple[float, ...]

    @property
    def title(self) -> str:
        return f"layers {self.first} to {self.last}, not drawn"


@dataclass(frozen=True)
class Diagram:
    """A network's picture, laid out in SVG user units (y downward), for both templates."""

    width: float
    height: float
    units: tuple[Unit, ...]
    edges: tuple[Edge, ...]
    lit: str | None
    #: The weights named on their lines (all of them, or none: see the module's docstring).
    labels: tuple[Label, ...]
    #: Column sizes, when some columns are drawn shortened.
    captions: tuple[Caption, ...] = ()
    boxes: tuple[Box, ...] = ()
    arcs: tuple[Arc, ...] = ()
    #: What the boxes, crossed-out units and sums stand for: the kinds' captions, in order.
    legend: tuple[str, ...] = ()
    gaps: tuple[Gap, ...] = ()
    size: str = "large"
    #: The circles' radius (the geometry's, or more for long unit names).
    radius: float = 21

    @property
    def geometry(self) -> Geometry:
        return SIZES[self.size]

    @property
    def beside(self) -> bool:
        """Whether a small picture fits the column beside its gradient at a readable scale."""
        return self.width * self.geometry.least_scale <= BESIDE


def _descendants(graph: Graph, start: sp.Symbol) -> set[sp.Symbol]:
    children: dict[sp.Symbol, list[sp.Symbol]] = {}
    for node in graph.nodes:
        for parent in node.parents:
            children.setdefault(parent, []).append(node.symbol)
    seen: set[sp.Symbol] = set()
    todo = [start]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def _own_units(graph: Graph, lit: sp.Symbol | None) -> dict[int, set[int]]:
    """Column -> rows of the units joined by ``lit``'s own connection, which must be drawn."""
    own: dict[int, set[int]] = {}
    for layer in graph.layers:
        for j, row in enumerate(layer.weights):
            for k, w in enumerate(row):
                if w == lit:
                    own.setdefault(layer.number - 1, set()).add(k)
                    own.setdefault(layer.number, set()).add(j)
            if layer.biases is not None and layer.biases[j] == lit:
                own.setdefault(layer.number, set()).add(j)
        if lit is not None and lit in _flat(layer.arrays.values()):
            # Any parameter of the stage (batch norm's γ): its columns are drawn, whatever the depth.
            own.setdefault(layer.number - 1, set())
            own.setdefault(layer.number, set())
    return own


def _flat(nested) -> set:
    """The symbols of nested tuples (a stage's parameter arrays)."""
    out: set = set()
    todo = list(nested)
    while todo:
        item = todo.pop()
        if isinstance(item, (tuple, list)):
            todo.extend(item)
        else:
            out.add(item)
    return out


def _drawn(sizes: list[int], own: dict[int, set[int]], widest: int = WIDEST_LAYER) -> list[list[int | tuple[int, int]]]:
    """Each column's rows: a unit's index, or (first, last) for the run an ellipsis stands for."""

    def weights(widest: int) -> int:
        kept = [n if n <= widest else FIRST_UNITS + 1 for n in sizes]
        return sum(m * n for m, n in itertools.pairwise(kept))

    widest = widest if weights(widest) <= MOST_EDGES else FIRST_UNITS + 1
    columns: list[list[int | tuple[int, int]]] = []
    for column, n in enumerate(sizes):
        shown = sorted(set(range(FIRST_UNITS)) | {n - 1} | own.get(column, set())) if n > widest else range(n)
        rows: list[int | tuple[int, int]] = []
        for before, index in zip([-1, *shown], shown):
            # An ellipsis takes a unit's room: it stands for two units or more.
            if index == before + 2:
                rows.append(before + 1)
            elif index > before + 2:
                rows.append((before + 1, index - 1))
            rows.append(index)
        columns.append(rows)
    return columns


def _slots(count: int, own: set[int]) -> list[int | tuple[int, int]]:
    """The columns drawn, left to right: a column's index, or (first, last) for a gap of columns not drawn."""
    if count <= MOST_COLUMNS:
        return list(range(count))
    kept = sorted({0, 1, 2, count - 2, count - 1} | own)
    slots: list[int | tuple[int, int]] = []
    for before, index in zip([-1, *kept], kept):
        if index > before + 1:
            slots.append((before + 1, index - 1))
        slots.append(index)
    return slots


def network_diagram(derivation: Derivation, lit: sp.Symbol | None = None, example=None, size: str | None = None) -> Diagram:
    """Lay out the network left to right; with ``lit``, mark that parameter's paths to the loss.

    ``size`` is "large" (the document's picture, every weight named) or "small" (the picture
    beside one gradient, naming only its parameter); by default a lit picture is small.
    A network too big to draw whole is drawn shortened (see WIDEST_LAYER, MOST_COLUMNS);
    every unit on ``lit``'s own connection is drawn even then. Each stage is drawn as its
    kind's ``picture`` says: units, a box around them, units some of which are crossed out
    (those ``example`` drops in its first example), or sums with an arc from the skip's
    units. Over a batch, the units drawn are those of the first example; the loss reads the
    last layer's outputs and the targets y, drawn on its right. Of ``derivation`` only its
    network, graph and notation are read.
    """
    size = size or ("large" if lit is None else "small")
    geometry = SIZES[size]
    if geometry.labels == "own":
        return _layout(derivation, lit, example, size, geometry.columns[0])
    # Among the spacings with room for every label, few of them on a crossing (past one in eight the
    # lines are a thicket a reader cannot follow): one that a phone's page holds without scrolling,
    # then the one whose labels cross the fewest other lines, then the narrowest.
    tried = [_layout(derivation, lit, example, size, column) for column in geometry.columns]
    named = [pic for pic in tried if (pic.labels or not any(e.label for e in pic.edges)) and _crossings(pic) <= len(pic.labels) / 8]
    if named:
        return min(named, key=lambda pic: (pic.width * geometry.least_scale > PHONE, _crossings(pic), pic.width))
    # Some weight found no room at any spacing: none is named on its line, and the lines close up.
    # (as wide apart as a phone's page allows, down to the last spacing)
    for column in geometry.tight_columns:
        tight = _layout(derivation, lit, example, size, column, place=False)
        if tight.width * geometry.least_scale <= PHONE:
            break
    return replace(tight, legend=tight.legend + (_LINES_NAMED,))


def _crossings(pic: Diagram) -> int:
    """How many times a label's box is crossed by a line other than its own."""
    boxes = {
        label.key: (label.x - label.width / 2, label.y - label.height / 2, label.x + label.width / 2, label.y + label.height / 2)
        for label in pic.labels
    }
    return sum(1 for key, box in boxes.items() for e in pic.edges if e.key != key and _crosses(e, box))


_LINES_NAMED = (
    "too many lines to name each on the picture: the line from unit k of one column to unit j of layer l is the "
    "weight w⁽ˡ⁾ⱼₖ, and the line from the +1 box to unit j is the bias b⁽ˡ⁾ⱼ (in the HTML, hovering over a line shows its name)"
)


@dataclass(frozen=True)
class _Frame:
    """Where things go in one layout: each drawn column's x, the rows' middle and spacing, the circles' size."""

    geometry: Geometry
    column: float
    row: float
    radius: float
    middle: float
    x_of: dict

    def at(self, column: int, row: int, count: int) -> tuple[float, float]:
        """The centre of row ``row`` of a column drawn with ``count`` rows (centred on the middle)."""
        return self.x_of[column], self.middle + (row - (count - 1) / 2) * self.row


def _layout(derivation: Derivation, lit, example, size: str, column_width: float, place: bool = True) -> Diagram:
    """The picture with columns ``column_width`` apart; with ``place``, its weights named as its geometry says."""
    geometry = SIZES[size]
    graph, notation = derivation.graph, derivation.notation
    pictures = [KINDS[stage.kind].picture(stage) for stage in derivation.network.stages]
    downstream = _descendants(graph, lit) if lit is not None else set()
    columns = [graph.inputs[: derivation.network.inputs], *(layer.output_grid[0] for layer in graph.layers)]
    own = _own_units(graph, lit)
    for layer in graph.layers:
        if layer.skip is not None:
            # A skip's arcs run between rows: its columns (and those between, of its width) show the same rows.
            span = [c for c in range(layer.skip, layer.number + 1) if len(columns[c]) == len(columns[layer.number])]
            shared = set().union(*(own.get(c, set()) for c in span))
            own.update({c: shared for c in span} if shared else {})
    rows = _drawn([len(c) for c in columns], own, geometry.widest)
    slots = _slots(len(columns), set(own))
    drawn_columns = [c for c in slots if isinstance(c, int)]
    names = [text_name(s, notation) for c in columns for s in c[:1] + c[-1:]] + [text_name(s, notation) for s in graph.targets[:1]]
    radius = max(geometry.radius, math.ceil(max(text_width(n, geometry.font) for n in names) / 2 + 4))
    row_height = max(geometry.row, 2 * radius + 14)
    # The +1 boxes take the top row, over the column each layer reads (with room under them for a
    # normalization's box and its title); the units are centred below.
    biased = any(graph.layers[c - 1].biases is not None for c in drawn_columns if c)
    tallest = max(len(rows[c]) for c in drawn_columns)
    top = geometry.margin + (max(row_height, radius + geometry.font + 8 + 11 + 6) if biased else radius)
    x_of = {c: geometry.margin + radius + i * column_width for i, c in enumerate(slots)}
    frame = _Frame(geometry, column_width, row_height, radius, top + (tallest - 1) * row_height / 2, x_of)
    height = top + (tallest - 1) * row_height + radius + geometry.margin

    units, position = _column_units(frame, graph, notation, columns, rows, drawn_columns, pictures, downstream, _dropped(graph, example))
    edges, boxes, arcs = _stage_parts(frame, graph, notation, columns, slots, pictures, position, downstream, lit, units)
    gaps = _gaps(frame, columns, slots, position, downstream, edges)
    width = _loss_parts(frame, graph, notation, columns, rows, position, downstream, lit, units, edges)
    arcs = [replace(a, dip=_clear_dip(a, units, radius, row_height)) for a in arcs]
    if boxes:
        height = max(height, max(b.y + b.height for b in boxes) + geometry.margin / 2)
    if arcs:
        # The lowest arc dips half a row under the last row.
        height = max(height, max(max(a.y1, a.y2) + a.dip for a in arcs) + geometry.margin / 2)
    captions: list[Caption] = []
    below = max([u.y + radius for u in units] + [max(a.y1, a.y2) + a.dip for a in arcs]) + geometry.caption_font + 6
    if any(isinstance(index, tuple) for column in rows for index in column):
        sizes = [len(c) for c in columns]
        words = [f"{sizes[0]} input{'s' if sizes[0] > 1 else ''}"] + [f"{n} unit{'s' if n > 1 else ''}" for n in sizes[1:]]
        captions += [Caption(words[c], x_of[c], below) for c in drawn_columns]
    captions += [Caption(f"layers {g.first}–{g.last}", g.x, below) for g in gaps]
    if captions:
        height = max(height, below + geometry.caption_font / 2 + 4)
    labels: tuple[Label, ...] = ()
    if place:
        named = [e for e in edges if e.label and (geometry.labels == "all" or e.own)]
        obstacles = _obstacles(units, boxes, captions, gaps, radius, geometry)
        biases = {b for layer in graph.layers for b in layer.biases or ()}
        # A whole picture names all its weights or none; a small one its own weight if it can.
        labels = _place(named, tuple(edges), obstacles, radius, geometry, biases) or ()
    return Diagram(width, height, tuple(units), tuple(edges), str(lit) if lit is not None else None, labels, tuple(captions),
                   tuple(boxes), tuple(arcs), _legend(pictures, units), tuple(gaps), size, radius)  # fmt: skip


def _dropped(graph: Graph, example) -> set[sp.Symbol]:
    """The units the worked example's first example drops (a mask entry of 0)."""
    dropped: set[sp.Symbol] = set()
    if example is not None:
        for layer in graph.layers:
            for grid in layer.leaves.values():
                dropped |= {out for out, m in zip(layer.output_grid[0], grid[0]) if example.values.get(m, 1.0) == 0}
    return dropped


def _column_units(frame, graph, notation, columns, rows, drawn_columns, pictures, downstream, dropped):
    """The units of the drawn columns (an ellipsis for each run not drawn), and where each drawn symbol is."""
    units: list[Unit] = []
    position: dict[sp.Symbol, tuple[float, float]] = {}
    for column in drawn_columns:
        style = pictures[column - 1].style if column else "input"
        for row, index in enumerate(rows[column]):
            at = frame.at(column, row, len(rows[column]))
            if isinstance(index, tuple):
                first, last = index[0] + 1, index[1] + 1
                title = f"inputs {first} to {last}" if column == 0 else f"units {first} to {last} of layer {column}"
                units.append(Unit(f"more{column}_{first}", "⋮", title + ", not drawn", *at, "more", False))
                continue
            symbol = columns[column][index]
            position[symbol] = at
            kind = "input" if column == 0 else "sum" if style == "sum" else "unit"
            title = text_name(symbol, notation)
            label = "+" if style == "sum" else title
            if symbol in dropped:
                title += ", dropped in the first example (mask 0)"
            units.append(Unit(str(symbol), label, title, *at, kind, symbol in downstream, symbol, symbol in dropped))
    return units, position


def _stage_parts(frame, graph, notation, columns, slots, pictures, position, downstream, lit, units):
    """Each drawn stage's lines (a weight, a bias, or unit to unit), its +1 box, its box around its units, its skip arcs."""
    edges: list[Edge] = []
    boxes: list[Box] = []
    arcs: list[Arc] = []
    geometry, radius = frame.geometry, frame.radius
    before_slot = {c: slots[i - 1] for i, c in enumerate(slots) if i}
    y_bias = geometry.margin
    for layer, picture in zip(graph.layers, pictures):
        if layer.number not in frame.x_of:
            continue
        outputs, inputs = layer.output_grid[0], layer.input_grid[0]
        x_bias = frame.x_of[before_slot[layer.number]]
        if layer.biases is not None:
            units.append(Unit(f"one{layer.number}", "+1", "bias input of layer " + str(layer.number), x_bias, y_bias, "bias", False))
        if picture.style == "box":
            drawn = [position[a][1] for a in outputs if a in position]
            x = frame.x_of[layer.number]
            box_top, bottom = (min(drawn) - radius - geometry.font - 8, max(drawn) + radius + 6)
            boxes.append(Box(f"box{layer.number}", picture.label, picture.caption, x - radius - 8, box_top, 2 * radius + 16, bottom - box_top))
        for j, a in enumerate(outputs):
            if a not in position:
                continue
            x2, y2 = position[a]
            if not layer.weights:
                # Unit by unit: a⁽ˡ⁾ⱼ reads a⁽ˡ⁻¹⁾ⱼ (and, for a sum, the skip's unit j too).
                if inputs[j] in position:
                    edges.append(Edge(f"{inputs[j]}_{a}", "", *position[inputs[j]], x2, y2, inputs[j] in downstream, False))
                skip = columns[layer.skip][j] if layer.skip is not None else None
                if skip in position:
                    arcs.append(Arc(f"skip{layer.number}_{j + 1}", *position[skip], x2, y2, frame.row / 2, skip in downstream))
                continue
            for k, source in enumerate(inputs):
                if source in position:
                    w = layer.weights[j][k]
                    edges.append(Edge(str(w), text_name(w, notation), *position[source], x2, y2, w == lit or source in downstream, w == lit, w))
            if layer.biases is not None:
                b = layer.biases[j]
                edges.append(Edge(str(b), text_name(b, notation), x_bias, y_bias, x2, y2, b == lit, b == lit, b))
    return edges, boxes, arcs


def _gaps(frame, columns, slots, position, downstream, edges) -> list[Gap]:
    """The gaps of a deep picture; the columns on either side reach into each with a short stub per unit."""
    gaps: list[Gap] = []
    for i, slot in enumerate(slots):
        if not isinstance(slot, tuple):
            continue
        before, after = slots[i - 1], slots[i + 1]
        x, reach = frame.x_of[slot], frame.column * 0.3
        shown = [s for s in columns[before] if s in position]
        gaps.append(Gap(f"gap{slot[0]}", slot[0], slot[1], x, tuple(position[s][1] for s in shown)))
        for s in shown:
            edges.append(Edge(f"{s}_gap", "", *position[s], x - reach, position[s][1], s in downstream, False))
        for s in columns[after]:
            if s in position:
                edges.append(Edge(f"gap_{s}", "", x + reach, position[s][1], *position[s], s in downstream, False))
    return gaps


def _loss_parts(frame, graph, notation, columns, rows, position, downstream, lit, units, edges) -> float:
    """The loss and what it reads: the last layer's outputs, the first example's targets beside them, a penalty; returns the width."""
    radius = frame.radius
    font = frame.geometry.font
    x_loss = frame.x_of[len(columns) - 1] + max(frame.column / 2, 2 * radius + 2.8 * font)
    x_target = x_loss + 2 * radius + 2.3 * font
    units.append(Unit("L", "L", "the loss", x_loss, frame.middle, "loss", lit is not None, graph.loss))
    for a in columns[-1]:
        if a in position:
            edges.append(Edge(f"{a}_L", "", *position[a], x_loss, frame.middle, a in downstream, False))
    targets = graph.targets[: len(columns[-1])]
    for row, index in enumerate(rows[-1]):
        y = frame.at(len(columns) - 1, row, len(rows[-1]))[1]
        if isinstance(index, tuple):
            title = f"targets {index[0] + 1} to {index[1] + 1}, not drawn"
            units.append(Unit(f"moretargets_{index[0] + 1}", "⋮", title, x_target, y, "more", False))
            continue
        name = text_name(targets[index], notation)
        units.append(
            Unit(str(targets[index]), name, f"{name}, a target: what the loss compares its output with", x_target, y, "target", False, targets[index])
        )
        edges.append(Edge(f"{targets[index]}_L", "", x_target, y, x_loss, frame.middle, False, False))
    # A term the loss adds that is a node of its own (a regularizer's penalty R on the weights).
    outputs = {s for row in graph.layers[-1].output_grid for s in row}
    nodes = {node.symbol for node in graph.nodes}
    for i, term in enumerate(p for p in graph.node(graph.loss).parents if p in nodes and p not in outputs):
        y = frame.middle + (i + 1) * frame.row
        name = text_name(term, notation)
        units.append(Unit(str(term), name, f"{name}, the penalty on the weights that the loss adds", x_loss, y, "penalty", term in downstream, term))
        edges.append(Edge(f"{term}_L", "", x_loss, y, x_loss, frame.middle, term in downstream, False))
    return x_target + radius + frame.geometry.margin


def _legend(pictures, units) -> tuple[str, ...]:
    """What the picture's boxes, crossed-out units, sums, loss and targets stand for."""
    legend = tuple(dict.fromkeys(p.caption for p in pictures if p.style != "units"))
    if any(u.crossed for u in units):
        legend += ("a crossed-out unit is dropped in the worked example's first example (its mask is 0)",)
    penalty = " and adds the penalty R on the weights" if any(u.kind == "penalty" for u in units) else ""
    return legend + (f"the loss L compares the outputs with the targets y on its right{penalty}",)


def _clear_dip(arc: Arc, units: list[Unit], radius: float, row: float) -> float:
    """How far the arc bends (down, or up if negative) to meet no unit but its ends: half a row when the rows line up."""
    others = [(u.x, u.y) for u in units if u.kind != "bias" and (u.x, u.y) not in ((arc.x1, arc.y1), (arc.x2, arc.y2))]
    for share in (0.5, -0.5, 0.35, -0.35, 0.65, -0.65, 0.8, -0.8, 0.2, -0.2):
        dip = share * row
        control = max(arc.y1, arc.y2) + 2 * dip
        points = [_bezier(arc.x1, (arc.x1 + arc.x2) / 2, arc.x2, arc.y1, control, arc.y2, step / 40) for step in range(1, 40)]
        if all((x - ux) ** 2 + (y - uy) ** 2 >= (radius + 2) ** 2 for x, y in points for ux, uy in others):
            return dip
    return row / 2


def _bezier(x0: float, x1: float, x2: float, y0: float, y1: float, y2: float, t: float) -> tuple[float, float]:
    """A point of the quadratic Bézier curve the templates draw (SVG's Q, LaTeX's \\qbezier)."""
    a, b, c = (1 - t) ** 2, 2 * t * (1 - t), t * t
    return a * x0 + b * x1 + c * x2, a * y0 + b * y1 + c * y2


# Placing the labels ------------------------------------------------------------------

Rect = tuple[float, float, float, float]  # left, top, right, bottom


def _obstacles(units, boxes, captions, gaps, radius, geometry) -> list[Rect]:
    """What no label may overlap: every unit, bias box and ellipsis, a box's title, the captions."""
    rects: list[Rect] = []
    for u in units:
        if u.kind == "bias":
            rects.append((u.x - 14, u.y - 12, u.x + 14, u.y + 12))
        elif u.kind == "more":
            rects.append((u.x - 5, u.y - 14, u.x + 5, u.y + 14))
        else:
            rects.append((u.x - radius - 1, u.y - radius - 1, u.x + radius + 1, u.y + radius + 1))
    for b in boxes:
        w = text_width(b.label, geometry.font, bold=True)
        rects.append((b.x + b.width / 2 - w / 2, b.y, b.x + b.width / 2 + w / 2, b.y + geometry.font + 6))
    for c in captions:
        w = text_width(c.text, geometry.caption_font)
        rects.append((c.x - w / 2, c.y - ASCENT * geometry.caption_font, c.x + w / 2, c.y + DESCENT * geometry.caption_font))
    for g in gaps:
        rects += [(g.x - 14, y - 8, g.x + 14, y + 8) for y in g.rows]
    return rects


#: Where along its line a label is tried, as a fraction of the line between the circles.
_FRACTIONS = (0.5, 0.38, 0.62, 0.28, 0.72, 0.44, 0.56, 0.2, 0.8, 0.33, 0.67, 0.14, 0.86)


def _circle_gap(edge: Edge, radius: float, start: float) -> tuple[float, float, float, float]:
    """The part of an edge between its two ends' shapes: ``start`` from its source, ``radius`` from its unit."""
    dx, dy = edge.x2 - edge.x1, edge.y2 - edge.y1
    length = (dx * dx + dy * dy) ** 0.5 or 1.0
    ux, uy = dx / length, dy / length
    return (edge.x1 + ux * start, edge.y1 + uy * start, edge.x2 - ux * radius, edge.y2 - uy * radius)


def _place(named: list[Edge], edges, obstacles: list[Rect], radius: float, geometry: Geometry, biases: set) -> tuple[Label, ...] | None:
    """A label on each named edge that meets no obstacle and no other label; None if one finds no room."""
    font = geometry.label_font
    height = (ASCENT + DESCENT) * font
    taken: list[Rect] = []
    labels: list[Label] = []
    for edge in named:
        width = text_width(edge.label, font, bold=edge.own)
        x1, y1, x2, y2 = _circle_gap(edge, radius, 14 if edge.symbol in biases else radius)
        best = None
        for order, t in enumerate(_FRACTIONS):
            cx, cy = x1 + t * (x2 - x1), y1 + t * (y2 - y1)
            rect = (cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)
            padded = (rect[0] - PAD, rect[1] - PAD, rect[2] + PAD, rect[3] + PAD)
            if any(_overlap(padded, r) for r in obstacles) or any(_overlap(padded, r) for r in taken):
                continue
            crossed = sum(1 for e in edges if e is not edge and _crosses(e, rect))
            if best is None or (crossed, order) < best[0]:
                best = ((crossed, order), cx, cy, rect)
            if crossed == 0:
                break
        if best is None:
            if geometry.labels == "all":
                return None
            continue
        _, cx, cy, rect = best
        taken.append(rect)
        cx, cy = round(cx, 1), round(cy, 1)
        baseline = round(cy + (ASCENT - DESCENT) / 2 * font, 1)
        labels.append(Label(edge.key, edge.label, cx, cy, round(width, 1), round(height, 1), baseline, edge.own, edge.symbol))
    return tuple(labels)


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _crosses(edge: Edge, rect: Rect) -> bool:
    """Whether the segment of ``edge`` passes through ``rect`` (Liang-Barsky clipping)."""
    x, y, dx, dy = edge.x1, edge.y1, edge.x2 - edge.x1, edge.y2 - edge.y1
    low, high = 0.0, 1.0
    for p, q in ((-dx, x - rect[0]), (dx, rect[2] - x), (-dy, y - rect[1]), (dy, rect[3] - y)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True
