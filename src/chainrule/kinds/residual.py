"""The residual kind: a block of inner layers F whose output is added to its input.

a⁽ˡ⁾ = a⁽ˢ⁾ + F(a⁽ˢ⁾), where s is the stage before the block. Its stages are the inner
layers, numbered in order, then the sum itself. The sum's local derivative along the skip
is 1, so ∂L/∂a⁽ˢ⁾ = ∂L/∂a⁽ˡ⁾ + (the path through F): the identity path that lets the
gradient pass unchanged, however small F's own derivatives are.

>>> from chainrule.kinds.dense import Dense
>>> len(Residual([Dense(2, "relu"), Dense(2, "identity")]).layers)
2
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec import SpecError, describe, known
from ..symbols import Node, Notation, superscript
from .base import Kind, Layer, Picture, Stage, with_backward_code


@dataclass(frozen=True)
class Residual:
    """a = a_prev + F(a_prev), F being ``layers`` in order (any kinds, residual blocks included)."""

    layers: tuple

    def __post_init__(self) -> None:
        if isinstance(self.layers, list):
            object.__setattr__(self, "layers", tuple(self.layers))


class ResidualKind(Kind):
    name = "residual"
    spec = Residual
    keys = ("layers",)

    def parse(self, table, where, parse_layers):
        known(table, where, {"kind", *self.keys})
        if "layers" not in table:
            raise SpecError(f"{where}.layers", "missing; a residual block lists its inner layers, like layers = [ { units = 4, activation = \"relu\" } ]")
        return Residual(tuple(parse_layers(table["layers"], f"{where}.layers")))

    def stages(self, spec, number, width, where, flatten):
        if not isinstance(spec.layers, tuple) or not spec.layers:
            raise SpecError(f"{where}.layers", f"must be a non-empty list of layers, got {describe(spec.layers)}")
        inner = flatten(spec.layers, number, width, f"{where}.layers")
        out = inner[-1].units
        if out != width:
            raise SpecError(
                f"{where}.layers",
                f"the block's output has {out} unit{'s' if out != 1 else ''} but its input has {width}; "
                f"a residual sum needs equal widths (give the last inner layer {width} units)",
            )
        total = inner[-1].number + 1
        return [*inner, Stage(total, self.name, spec, width, width, total - 1, skip=number - 1, where=where,
                              inner=tuple(s.number for s in inner))]

    def picture(self, stage):
        return Picture("sum", "+", f"residual sum: a⁽{superscript(stage.number)}⁾ = a⁽{superscript(stage.skip)}⁾ + F, the skip carrying the gradient unchanged")

    def narrowed(self, spec, width, narrow):
        return Residual(tuple(narrow(spec.layers, width)))

    def title(self, stage):
        return f"residual sum over {stage.units} unit{'s' if stage.units > 1 else ''}"

    def graph(self, stage, g):
        l = stage.number
        inner, skip = g.output(stage.source), g.output(stage.skip)
        outs, nodes = [], []
        for n, (row_f, row_s) in enumerate(zip(inner, skip), start=1):
            row = []
            for j, (f, s) in enumerate(zip(row_f, row_s), start=1):
                out = g.symbol(g.name(f"a{l}", n, j), g.notation("a", "a", l, n, j))
                g.add(Node(out, s + f, (f, s), s + f))
                row.append(out)
                nodes.append(out)
            outs.append(tuple(row))
        grid = tuple(outs)
        return Layer(l, self.name, self.title(stage), inner, grid, {}, forward={f"A{l}": grid}, backward={},
                     leaves={}, nodes=tuple(nodes), skip=stage.skip)

    def forward(self, stage, r, training):
        l = stage.number
        A_ = r.matrix(f"A{l}", r.N, stage.units, Notation("A", "A", l))
        r.forward("residual", l, A_, r.A(stage.skip) + r.A(stage.source), f"A{l} = {r.name(stage.skip)} + {r.name(stage.source)}",
                  "the block's input plus its output F")

    def planted_bugs(self, stage, rules):
        """The identity path left out: the block's input gets only the gradient through F."""
        l = stage.number
        broken = None
        for old in (f"G{l} + ", f" + G{l}", f"\nG{stage.skip} += G{l}"):
            broken = broken or with_backward_code(rules, f"G{stage.skip}", old, "")
        words = (f"the residual sum a⁽{superscript(l)}⁾ = a⁽{superscript(stage.skip)}⁾ + F passes no gradient along its skip: "
                 f"∂L/∂a⁽{superscript(stage.skip)}⁾ lacks the identity path's ∂L/∂a⁽{superscript(l)}⁾ · 1")
        return [] if broken is None else [(words, broken)]

    def backward(self, stage, r):
        l = stage.number
        G = r.gradient(l)
        r.contribute(stage.source, f"G{l}", G, "residual", "the path through the block")
        if r.needs_gradient(stage.skip):
            r.contribute(stage.skip, f"G{l}", G, "residual", "the identity path: ∂a⁽ˡ⁾/∂a⁽ˢ⁾ = 1 passes the gradient unchanged")


RESIDUAL = ResidualKind()
