"""How a document about a large network is shortened: what stands for the rest, and counts.

A small teaching network gets every unit's δ, every parameter's gradient and every input's
gradient derived step by step, each gradient with its own picture. That grows with the
number of parameters times the size of the network: a 64-32-10 network (2410 parameters)
wrote 659 MB of HTML and LaTeX that pdflatex could not hold. Above ``DETAIL_LIMIT`` a
document is a summary: one representative of each layer and parameter array derived in
full, the first ``SUMMARY_ROWS`` of each list of values, and a line saying how many more
there are. The JSON document is never shortened.

>>> from chainrule.network import Network, Dense
>>> from chainrule.derive import derive
>>> d = derive(Network(16, (Dense(4, "tanh"), Dense(1, "sigmoid")), "bce"))
>>> is_summary(d), [str(s) for s in representatives(d)]
(True, ['w1_1_1', 'b1_1', 'w2_1_1', 'b2_1'])
>>> [r.text if isinstance(r, More) else str(r) for r in value_rows(d).example][6:11]
['x_7', 'x_8', '… and 8 more inputs (all in the JSON document)', 'y_1', 'w1_1_1']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sympy as sp

    from ..derive import Derivation

#: Networks with more parameters than this get a summary. The examples that teach
#: (2-2-2, softmax 2-3-3, a deep tanh net, 3-4-1 relu) have at most 37; iris (4-8-3) has 67.
DETAIL_LIMIT = 60
#: How many units of a layer, or entries of a list of values, a summary shows.
SUMMARY_ROWS = 8
#: The blocks of a summary belong to wide layers, and their notes fill up: a note there
#: repeats a definition only this short (steps.LONGEST_NOTE otherwise), since a formula in
#: a note cannot scroll and eight terms already overflow a 640-pixel window, and names
#: only the first and last of more than LONGEST_LIST reused δs.
SUMMARY_NOTE = 20
LONGEST_LIST = 3


#: ``--detail``: how much a document shows; without it, the network's size decides.
DETAILS = {
    "brief": "one representative of each kind of step: a handout of a few pages",
    "full": "every unit, parameter and input derived step by step, whatever the size",
}
#: A full document grows with the parameters times the network's size; past this many
#: parameters it no longer fits in a browser or in pdflatex's memory.
FULLEST = 400


def is_summary(d: Derivation, detail: str | None = None) -> bool:
    """Whether documents of ``d`` show representatives rather than every entry.

    >>> from chainrule.network import default_network
    >>> from chainrule.derive import derive
    >>> d = derive(default_network())
    >>> is_summary(d), is_summary(d, "brief"), is_summary(d, "full")
    (False, True, False)
    """
    if detail not in (None, *DETAILS):
        raise ValueError(f"detail must be one of {', '.join(DETAILS)} or None, got {detail!r}")
    if detail is not None:
        return detail == "brief"
    return len(d.graph.parameters) > DETAIL_LIMIT


@dataclass(frozen=True)
class More:
    """A line standing for the entries of a list that a summary leaves out."""

    count: int
    #: What they are, in the plural: "inputs", "weights of layer 1".
    what: str
    #: The value every one of them has, when they share one (the 0s of a one-hot target).
    each: float | None = None

    @property
    def text(self) -> str:
        each = "" if self.each is None else f", each {self.each:g}"
        return f"… and {self.count} more {self.what}{each} (all in the JSON document)"


def first_rows(
    items: Sequence, what: str, values: Mapping | None = None, keep: Iterable = (), shown: int = SUMMARY_ROWS
) -> tuple:
    """The first ``shown`` of ``items``, every item of ``keep`` wherever it is, and a ``More`` for each gap.

    ``keep`` is what must never be hidden (the 1 of a one-hot target); ``values`` lets a gap
    say the value its entries share.

    >>> [r.text if isinstance(r, More) else r for r in first_rows(list("abcdefghij"), "letters", keep="j")]
    ['a', 'b', 'c', 'd', 'e', 'f', 'g', '… and 2 more letters (all in the JSON document)', 'j']
    """
    if len(items) <= shown:
        return tuple(items)
    kept = {i for i, item in enumerate(items) if item in set(keep)}
    picked = set(kept)
    for i in range(len(items)):
        if len(picked) >= max(shown, len(kept)):
            break
        picked.add(i)
    rows: list = []
    gap: list = []
    for i, item in enumerate([*items, None]):
        if i < len(items) and i not in picked:
            gap.append(item)
            continue
        if gap:
            shared = {values[g] for g in gap} if values is not None and all(g in values for g in gap) else set()
            rows.append(More(len(gap), what, shared.pop() if len(shared) == 1 else None))
            gap = []
        if i < len(items):
            rows.append(item)
    return tuple(rows)


def informative(symbols: Sequence, values: Mapping | None) -> tuple:
    """The entries that carry a sparse list's information: its non-zero values, when most are 0.

    A one-hot target's 1 says which class the example is; eight 0s say nothing alone.
    """
    if values is None or not all(s in values for s in symbols):
        return ()
    nonzero = tuple(s for s in symbols if values[s] != 0)
    return nonzero if len(nonzero) <= SUMMARY_ROWS // 2 else ()


def parameter_arrays(d: Derivation) -> tuple[tuple[str, tuple[sp.Symbol, ...]], ...]:
    """Each parameter array with its entries in order, named in words: ("weights of layer 1", (w⁽¹⁾₁₁, ...))."""
    arrays: list[tuple[str, tuple[sp.Symbol, ...]]] = []
    for layer in d.graph.layers:
        for name, symbols in layer.arrays.items():
            entries = symbols if isinstance(symbols, tuple) else (symbols,)
            flat = tuple(s for row in entries for s in (row if isinstance(row, tuple) else (row,)))
            arrays.append((layer.array_words.get(name, name), flat))
    return tuple(arrays)


def representatives(d: Derivation) -> tuple[sp.Symbol, ...]:
    """The parameters a summary derives in full: the first entry of each array (w⁽ˡ⁾₁₁, b⁽ˡ⁾₁, α)."""
    return tuple(entries[0] for _, entries in parameter_arrays(d))


@dataclass(frozen=True)
class ValueRows:
    """The rows of the documents' tables of numbers: symbols, and ``More`` lines in a summary."""

    #: The example: inputs, targets, parameters.
    example: tuple
    #: One row per parameter: the gradient-descent step and the finite-difference check.
    parameters: tuple


def value_rows(d: Derivation, values: Mapping | None = None, detail: str | None = None) -> ValueRows:
    """Every row for a small network; for a large one the first rows of each list, array by array.

    ``values`` (the worked example's) keeps a sparse target's non-zero entries in a summary.
    A brief document's tables of the step and the check show one entry of each array (the
    one derived); its example keeps every value a reader needs to follow the forward pass.
    """
    g = d.graph
    if not is_summary(d, detail):
        return ValueRows(g.inputs + g.targets + g.parameters, g.parameters)
    parameters = tuple(row for what, entries in parameter_arrays(d) for row in first_rows(entries, what))
    targets = first_rows(g.targets, "targets", values, informative(g.targets, values))
    example = first_rows(g.inputs, "inputs") + targets + parameters
    if detail == "brief":
        shown = representatives(d)
        rest = len(g.parameters) - len(shown)
        parameters = (*shown, More(rest, "parameters")) if rest else shown
    return ValueRows(example, parameters)
