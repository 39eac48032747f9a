"""The dropout kind: inverted dropout, a⁽ˡ⁾ = m ⊙ a⁽ˡ⁻¹⁾ with m of 0 and 1/(1 − p).

Each entry of the mask keeps its unit with probability 1 − p and then scales it by
1/(1 − p), so that the expected output equals the input and evaluation is the identity.
The mask is a leaf of the graph, drawn from the seed (or given in the spec's example);
the gradient goes back through the same mask: ∂L/∂a⁽ˡ⁻¹⁾ = m ⊙ ∂L/∂a⁽ˡ⁾.

>>> Dropout(0.2).p
0.2
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..spec import SpecError, describe, known
from ..symbols import Node, Notation, superscript
from .base import Kind, Layer, Picture, Stage, with_backward_code


@dataclass(frozen=True)
class Dropout:
    """Inverted dropout: each unit dropped with probability ``p`` in training (PyTorch's ``nn.Dropout``)."""

    p: float = 0.5


class DropoutKind(Kind):
    name = "dropout"
    spec = Dropout
    keys = ("p",)
    torch_modules = ("Dropout",)

    def parse(self, table, where, parse_layers):
        known(table, where, {"kind", *self.keys})
        layer = Dropout(table.get("p", 0.5))
        self.check(layer, where)
        return layer

    def check(self, spec, where):
        p = spec.p
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise SpecError(f"{where}.p", f"must be a probability from 0 up to (not including) 1, got {describe(p)}")

    def stages(self, spec, number, width, where, flatten):
        self.check(spec, where)
        return [Stage(number, self.name, spec, width, width, number - 1, where=where)]

    def leaves(self, stage, batch):
        return {f"M{stage.number}": (batch, stage.units)}

    def draw_leaf(self, stage, name, shape, rng):
        keep = 1.0 - float(stage.spec.p)
        return (rng.random(shape) < keep) / keep

    def picture(self, stage):
        return Picture("mask", f"p = {stage.spec.p:g}", f"dropout: each unit kept with probability {1 - stage.spec.p:g} and scaled by 1/(1 − p)")

    def title(self, stage):
        return f"dropout with p = {stage.spec.p:g} over {stage.units} unit{'s' if stage.units > 1 else ''}"

    @staticmethod
    def scale(stage) -> float:
        """The value a kept entry of the mask has: 1/(1 − p)."""
        return 1.0 / (1.0 - float(stage.spec.p))

    def graph(self, stage, g):
        l = stage.number
        previous = g.output(stage.source)
        masks, outs, nodes = [], [], []
        for n, row in enumerate(previous, start=1):
            row_m, row_a = [], []
            for j, a in enumerate(row, start=1):
                m = g.symbol(g.name(f"m{l}", n, j), g.notation("m", "m", l, n, j))
                g.mask(m)
                out = g.symbol(g.name(f"a{l}", n, j), g.notation("a", "a", l, n, j))
                g.add(Node(out, m * a, (a, m), m * a))
                row_m.append(m)
                row_a.append(out)
                nodes.append(out)
            masks.append(tuple(row_m))
            outs.append(tuple(row_a))
        grid = tuple(outs)
        return Layer(l, self.name, self.title(stage), previous, grid, {}, forward={f"A{l}": grid}, backward={},
                     leaves={f"M{l}": tuple(masks)}, nodes=tuple(nodes))

    def forward(self, stage, r, training):
        l, s = stage.number, r.name(stage.source)
        A_ = r.matrix(f"A{l}", r.N, stage.units, Notation("A", "A", l))
        if not training:
            r.forward("dropout", l, A_, r.A(stage.source), f"A{l} = {s}", "evaluation: dropout is the identity")
            return
        M = r.matrix(f"M{l}", r.N, stage.units, Notation("M", "M", l))
        keep = 1.0 - float(stage.spec.p)
        r.forward("dropout", l, M, M,
                  f"M{l} = masks[\"M{l}\"] if masks is not None else dropout_mask(rng, {s}.shape, {keep!r})",
                  f"the mask: each entry 1/(1 − p) = {self.scale(stage):.6g} with probability 1 − p = {keep:g}, else 0")
        r.forward("dropout", l, A_, sp.HadamardProduct(M, r.A(stage.source)), f"A{l} = {s} * M{l}", "inverted dropout")

    def planted_bugs(self, stage, rules):
        """The gradient passed back unmasked: ∂L/∂a⁽ˡ⁻¹⁾ = ∂L/∂a⁽ˡ⁾ instead of m ⊙ ∂L/∂a⁽ˡ⁾."""
        l = stage.number
        broken = with_backward_code(rules, f"G{stage.source}", f"G{l} * M{l}", f"G{l}")
        words = f"dropout's backward at layer {l} does not mask the gradient with the mask of the forward pass (∂L/∂a = m ⊙ ∂L/∂a⁽{superscript(l)}⁾)"
        return [] if broken is None else [(words, broken)]

    def backward(self, stage, r):
        l = stage.number
        G = r.gradient(l)
        if r.needs_gradient(stage.source):
            M = r.matrix(f"M{l}", r.N, stage.units, Notation("M", "M", l))
            r.contribute(stage.source, f"G{l} * M{l}", sp.HadamardProduct(G, M), "dropout", "the gradient masked by the same mask")


DROPOUT = DropoutKind()
