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

from collections.abc import Sequence
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


def is_summary(d: Derivation) -> bool:
    """Whether documents of ``d`` show representatives rather than every entry."""
    return len(d.graph.parameters) > DETAIL_LIMIT


@dataclass(frozen=True)
class More:
    """A line standing for the entries of a list that a summary leaves out."""

    count: int
    #: What they are, in the plural: "inputs", "weights of layer 1".
    what: str

    @property
    def text(self) -> str:
        return f"… and {self.count} more {self.what} (all in the JSON document)"


def first_rows(items: Sequence, what: str) -> tuple:
    """The first SUMMARY_ROWS of ``items``, then a ``More`` for the rest if there are any."""
    if len(items) <= SUMMARY_ROWS:
        return tuple(items)
    return (*items[:SUMMARY_ROWS], More(len(items) - SUMMARY_ROWS, what))


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


def value_rows(d: Derivation) -> ValueRows:
    """Every row for a small network; for a large one the first rows of each list, array by array."""
    g = d.graph
    if not is_summary(d):
        return ValueRows(g.inputs + g.targets + g.parameters, g.parameters)
    parameters = tuple(row for what, entries in parameter_arrays(d) for row in first_rows(entries, what))
    example = first_rows(g.inputs, "inputs") + first_rows(g.targets, "targets") + parameters
    return ValueRows(example, parameters)
