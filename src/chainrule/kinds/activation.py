"""The activation kind: a⁽ˡ⁾ = f(a⁽ˡ⁻¹⁾), unit by unit, with no weights of its own.

It is what follows a normalization or a residual sum in the usual orderings
(``Linear → BatchNorm1d → ReLU``, ``relu(x + F(x))``): the same catalog entries as a dense
layer's activation, elementwise ones only (softmax belongs on the last dense layer). The
backward is ∂L/∂a⁽ˡ⁻¹⁾ = ∂L/∂a⁽ˡ⁾ ⊙ f′(a⁽ˡ⁻¹⁾); prelu's α is a parameter of the stage.

>>> Activation("relu").activation
'relu'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..catalog import A, Z
from ..spec import SpecError, choose, known
from ..symbols import Node, Notation, superscript
from .base import Kind, Layer, Picture, Stage, with_backward_code


@dataclass(frozen=True)
class Activation:
    """An activation on its own: a = f(a_prev) (PyTorch's ``nn.ReLU()`` and the like after a norm or a sum)."""

    activation: str | Mapping[str, Any] = "relu"


class ActivationKind(Kind):
    name = "activation"
    spec = Activation
    keys = ("activation",)

    def parse(self, table, where, parse_layers):
        known(table, where, {"kind", *self.keys})
        return Activation(table.get("activation", "relu"))

    def stages(self, spec, number, width, where, flatten):
        choice = choose(spec.activation, f"{where}.activation", "activation")
        if not choice.entry.elementwise:
            raise SpecError(f"{where}.activation", f"{choice.name} normalizes a whole layer; put it on the last dense layer instead")
        return [Stage(number, self.name, spec, width, width, number - 1, choice=choice, where=where)]

    def parameters(self, stage):
        return {f"{p.name}{stage.number}": () for p in stage.choice.entry.parameters if p.learnable}

    def initial(self, stage, name, shape):
        return float(stage.choice.values[name[: -len(str(stage.number))]])

    def draw(self, stage, name, shape, rng):
        return self.initial(stage, name, shape)  # a learned activation parameter starts where the spec puts it

    def title(self, stage):
        return f"{stage.choice.label} on each of {stage.units} unit{'s' if stage.units > 1 else ''}"

    def picture(self, stage):
        return Picture("box", "f", f"the activation {stage.choice.label}, unit by unit")

    def graph(self, stage, g):
        l, choice = stage.number, stage.choice
        entry = choice.entry
        own = g.catalog_parameters(entry.parameters, choice.values, f"l{l}", l)
        learned = tuple((f"{q.name}{l}", own[q.name]) for q in entry.parameters if q.learnable)
        for _, symbol in learned:
            g.parameter(symbol)
        bound = {p.symbol: own[p.name] for p in entry.parameters}
        previous = g.output(stage.source)
        outs, nodes = [], []
        for n, row in enumerate(previous, start=1):
            out_row = []
            for j, a_in in enumerate(row, start=1):
                out = g.symbol(g.name(f"a{l}", n, j), g.notation("a", "a", l, n, j))
                here = {Z: a_in, A: out, **bound}
                formula = entry.formula.xreplace(here)
                display = entry.display(a_in) if entry.display is not None else formula
                g.add(Node(out, formula, (a_in, *(s for _, s in learned)), display, ((a_in, entry.derivative.xreplace(here)),)))
                out_row.append(out)
                nodes.append(out)
            outs.append(tuple(out_row))
        grid = tuple(outs)
        return Layer(l, self.name, self.title(stage), previous, grid, dict(learned), forward={f"A{l}": grid}, backward={},
                     leaves={}, nodes=tuple(nodes), activation=choice.label, learned=learned)

    @staticmethod
    def _extra(stage) -> str:
        """The learned parameters the kernels take after their array arguments (prelu's α)."""
        return "".join(f", {p.name}{stage.number}" for p in stage.choice.entry.parameters if p.learnable)

    def forward(self, stage, r, training):
        l, entry = stage.number, stage.choice.entry
        bound = r.bound(stage.choice, f"l{l}")
        alpha = [bound[p.symbol] for p in entry.parameters if p.learnable]
        extra = self._extra(stage)
        f_name = r.kernel(f"k_f{l}", (Z, *alpha), entry.formula.xreplace(bound), f"f of layer {l}")
        # f′ (and ∂f/∂α) beside f, so that documents list each layer's kernels together.
        r.kernel(f"k_df{l}", (Z, A, *alpha), entry.derivative.xreplace(bound), f"f′ of layer {l}")
        if alpha:
            parameter = entry.parameters[0]
            r.kernel(f"k_dfa{l}", (Z, A, *alpha), sp.diff(entry.formula, parameter.symbol).xreplace(bound),
                     f"∂f/∂{parameter.text} of layer {l}")
        A_ = r.matrix(f"A{l}", r.N, stage.units, Notation("A", "A", l))
        fa = r.matrix(f"f{l}", r.N, stage.units, Notation("f", "f", l, arg=Notation("A", "A", stage.source)))
        r.forward("activation", l, A_, fa, f"A{l} = {f_name}({r.name(stage.source)}{extra})")

    def planted_bugs(self, stage, rules):
        """The activation's derivative left out: ∂L/∂a⁽ˡ⁻¹⁾ = ∂L/∂a⁽ˡ⁾ instead of ∂L/∂a⁽ˡ⁾ ⊙ f′."""
        l = stage.number
        if stage.choice.entry.derivative == 1:
            return []  # f′ = 1 (identity): leaving it out changes nothing
        call = f"G{l} * k_df{l}({'X' if stage.source == 0 else f'A{stage.source}'}, A{l}{self._extra(stage)})"
        broken = with_backward_code(rules, f"G{stage.source}", call, f"G{l}")
        words = f"the derivative of the activation at layer {l} is missing: ∂L/∂a⁽{superscript(stage.source)}⁾ = ∂L/∂a⁽{superscript(l)}⁾ ⊙ f′"
        return [] if broken is None else [(words, broken)]

    def backward(self, stage, r):
        l, entry = stage.number, stage.choice.entry
        bound = r.bound(stage.choice, f"l{l}")
        alpha = [bound[p.symbol] for p in entry.parameters if p.learnable]
        extra = self._extra(stage)
        s = r.name(stage.source)
        G = r.gradient(l)
        df = f"k_df{l}"  # made beside f in ``forward``
        if alpha:
            parameter = entry.parameters[0]
            ga = sp.Symbol(f"g{parameter.name}{l}")
            r.notation[ga] = Notation(parameter.latex, parameter.text, l, of="L")
            dfa = r.matrix(f"dfa{l}", r.N, stage.units, Notation("\\partial f", "∂f", l, arg=Notation("A", "A", stage.source)))
            r.backward("parameter", l, ga, r.ones.T * sp.HadamardProduct(G, dfa) * r.ones,
                       f"g{parameter.name}{l} = (G{l} * k_dfa{l}({s}, A{l}, {parameter.name}{l})).sum()")
        if r.needs_gradient(stage.source):
            fp = r.matrix(f"fprime{l}", r.N, stage.units, Notation("f'", "f′", l, arg=Notation("A", "A", stage.source)))
            r.contribute(stage.source, f"G{l} * {df}({s}, A{l}{extra})", sp.HadamardProduct(G, fp), "activation",
                         "the gradient times the activation's derivative, unit by unit")


ACTIVATION = ActivationKind()
