"""Layer-level rules: the whole network over a batch, as matrix equations and as NumPy lines.

A batch of N examples is a matrix with one example per row: X is N×n₀, Z⁽ˡ⁾ and A⁽ˡ⁾ are
N×nₗ, W⁽ˡ⁾ is nₗ×nₗ₋₁ as in the scalar notation, and L is the mean of the examples' losses.
Each ``VectorRule`` states one equation (for documents) and the NumPy line it becomes
(for ``model.py``). Their elementwise parts — f, f′, the loss term and its derivative —
are ``Kernel``s: scalar SymPy expressions derived here with ``sympy.diff`` (or the
catalog's textbook forms, which ``tests/test_catalog.py`` proves equal to it).

SymPy's matrix calculus is not used: it can silently return 0. Instead ``proof.py`` runs
the generated lines on symbols and compares every entry with the scalar derivation.

>>> from chainrule.network import Network, Dense
>>> rules = layer_rules(Network(2, (Dense(3, "tanh"), Dense(1, "identity")), "mse"))
>>> [r.code for r in rules.backward][:2]
['D2 = k_delta(Z2, A2, Y) / (n * 1)', 'gW2 = D2.T @ A1']

Every layer kind emits its own rules through a ``RuleBuilder`` (``chainrule.kinds``); this
module composes them: the forward pass stage by stage (for training, and for evaluation,
where batch norm uses its running statistics and dropout is the identity), the loss, and
the backward pass from the output down, where each stage's G⁽ˡ⁾ = ∂L/∂A⁽ˡ⁾ is the sum of
what the stages that read A⁽ˡ⁾ pass back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from .catalog import P, W, Y
from .kinds import KINDS, Kernel, Stage, VectorRule
from .kinds.dense import output_delta
from .network import Choice, Network
from .symbols import Notation, superscript

#: The batch size, in equations.
N = sp.Symbol("N", positive=True, integer=True)


@dataclass(frozen=True)
class LayerRules:
    """The network over a batch: forward rules, the loss, backward rules, and their kernels."""

    network: Network
    forward: tuple[VectorRule, ...]  # training: batch statistics, dropout masks; ends with A⁽ᴸ⁾
    loss: tuple[VectorRule, ...]  # computes the batch loss L
    backward: tuple[VectorRule, ...]  # every ∂L/∂(parameter array)
    kernels: Mapping[str, Kernel]
    #: How each matrix symbol is written in documents.
    notation: Mapping[sp.Basic, Notation]
    #: Fixed numbers of the spec (α, Δ, λ) by the symbols the kernels use.
    constants: Mapping[sp.Symbol, float]
    #: Names of the parameter arrays in order, and of their gradients.
    parameters: tuple[str, ...]
    output: str  # the variable holding A⁽ᴸ⁾
    #: The forward pass for evaluation (``predict``): running statistics, no dropout.
    evaluate: tuple[VectorRule, ...] = ()
    #: Names of the running state the rules read and update (batch norm's "mean2", "var2").
    state: tuple[str, ...] = ()


class RuleBuilder:
    """What a layer kind emits its batch-level rules through: matrices, kernels, rules, gradients."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.N = N
        self.notation: dict[sp.Basic, Notation] = {}
        self.constants: dict[sp.Symbol, float] = {}
        self.kernels: dict[str, Kernel] = {}
        self.rules: list[VectorRule] = []  # the list being written: forward, evaluate or backward
        self.contributions: dict[int, list[tuple[str, sp.Basic, str, str | None]]] = {}
        self.last = network.stages[-1].number
        self.regularized = network.regularizer_choice is not None
        self.ones = self.matrix("ones", N, 1, Notation("\\mathbf{1}", "𝟏"))
        k = network.outputs
        self.X = self.matrix("X", N, network.inputs, Notation("X", "X"))
        self.Y = self.matrix("Y", N, k, Notation("Y", "Y"))
        self.column_k = self.matrix("ones_k", k, 1, Notation("\\mathbf{1}", "𝟏"))
        self.P, self.Ysym = P, Y
        entry = network.loss_choice.entry
        # Division by n (not multiplication by 1/n) keeps the code exact when proof.py runs it on symbols.
        self.scale = f"/ (n * {k})" if entry.reduction == "mean" else "/ n"
        self.factor = 1 / (N * k) if entry.reduction == "mean" else 1 / N
        last = network.stages[-1]
        self.from_logits = entry.from_logits is not None and last.choice is not None and not last.choice.entry.elementwise
        self.term = entry.term.xreplace(self.bound(network.loss_choice, "loss"))
        self.dloss = sp.diff(self.term, P)
        written = Notation(f"A^{{({self.last})}}, Y", f"A⁽{superscript(self.last)}⁾, Y")
        self.dell = self.matrix("dell", N, k, Notation("\\ell'", "ℓ′", None, arg=written))
        self._loss_gradient = False

    def matrix(self, name: str, rows, cols, written: Notation) -> sp.MatrixSymbol:
        symbol = sp.MatrixSymbol(name, rows, cols)
        self.notation[symbol] = written
        return symbol

    def kernel(self, name: str, args: tuple[sp.Symbol, ...], expr: sp.Expr, title: str) -> str:
        self.kernels[name] = Kernel(name, args, expr, title)
        return name

    def bound(self, choice: Choice, suffix: str) -> dict[sp.Symbol, sp.Symbol]:
        """The entry's parameter symbols, renamed per layer, fixed values recorded."""
        bound = {}
        for parameter in choice.entry.parameters:
            symbol = sp.Symbol(f"{parameter.name}_{suffix}", real=True)
            bound[parameter.symbol] = symbol
            if not parameter.learnable:
                self.constants[symbol] = float(choice.values[parameter.name])
        return bound

    def name(self, stage: int) -> str:
        """The variable holding a stage's output: ``X`` for stage 0, else ``A{l}``."""
        return "X" if stage == 0 else f"A{stage}"

    def A(self, stage: int) -> sp.MatrixSymbol:
        if stage == 0:
            return self.X
        return self.matrix(f"A{stage}", N, self.network.sizes[stage], Notation("A", "A", stage))

    def G(self, stage: int) -> sp.MatrixSymbol:
        """G⁽ˡ⁾ = ∂L/∂A⁽ˡ⁾, N × nₗ."""
        return self.matrix(f"G{stage}", N, self.network.sizes[stage], Notation("A", "A", stage, of="L"))

    def forward(self, label: str, layer: int | None, lhs, rhs, code: str, note: str | None = None) -> None:
        self.rules.append(VectorRule(label, layer, lhs, rhs, code, note))

    backward = forward

    def is_last(self, stage: Stage) -> bool:
        return stage.number == self.last

    def needs_gradient(self, stage: int) -> bool:
        """Whether ∂L/∂A of a stage is wanted: not of the inputs X."""
        return stage >= 1

    def gradient(self, stage: int) -> sp.MatrixSymbol:
        """G⁽ˡ⁾, which the stages above have passed back; for the output stage, from the loss."""
        if stage == self.last and not self._loss_gradient:
            self._loss_gradient = True
            self.backward("BP1", stage, self.G(stage), self.factor * self.dell,
                          f"G{stage} = k_dloss({self.name(stage)}, Y) {self.scale}")
        return self.G(stage)

    def contribute(self, stage: int, code: str, expr: sp.Basic, label: str, note: str | None = None) -> None:
        """Add a term to G of ``stage``: what this stage passes back to the one it reads."""
        if self.needs_gradient(stage):
            self.contributions.setdefault(stage, []).append((code, expr, label, note))

    def emit_gradient(self, stage: int) -> None:
        """G⁽ˡ⁾ as the sum of what the stages that read A⁽ˡ⁾ passed back."""
        parts = self.contributions.pop(stage, [])
        if not parts:
            return
        target = f"G{stage}"
        codes = [c for c, _, _, _ in parts]
        if len(codes) == 1:
            code = f"{target} = {codes[0]}"
        elif codes[0].isidentifier():
            # A bare name is another stage's array: sum into a fresh one before adding in place.
            code = "\n".join([f"{target} = {codes[0]} + {codes[1]}", *(f"{target} += {c}" for c in codes[2:])])
        else:
            code = "\n".join([f"{target} = {codes[0]}", *(f"{target} += {c}" for c in codes[1:])])
        rhs = parts[0][1] if len(parts) == 1 else sp.MatAdd(*[e for _, e, _, _ in parts])
        label = parts[0][2] if len(parts) == 1 else "gradient"
        notes = [n for _, _, _, n in parts if n]
        note = "; ".join(notes) if notes else None
        if len(parts) > 1:
            note = "the sum over the stages that read it" + (f": {note}" if note else "")
        self.backward(label, stage, self.G(stage), rhs, code, note)


def layer_rules(network: Network) -> LayerRules:
    """The batch-level equations of ``network`` and the NumPy lines that compute them."""
    r = RuleBuilder(network)
    stages = network.stages
    for stage in stages:
        KINDS[stage.kind].forward(stage, r, True)
    forward, r.rules = r.rules, []
    for stage in stages:
        KINDS[stage.kind].forward(stage, r, False)
    evaluate, r.rules = r.rules, []
    loss = _loss_rules(network, r)
    r.rules = []
    if not r.from_logits:
        r.kernel("k_dloss", (P, Y), r.dloss, "∂ℓ/∂ŷ")
    for stage in reversed(stages):
        if stage.number != r.last:
            r.emit_gradient(stage.number)
        KINDS[stage.kind].backward(stage, r)
    backward = tuple(r.rules)
    state = tuple(network.state_shapes())
    return LayerRules(network, tuple(forward), loss, backward, r.kernels, r.notation, r.constants,
                      tuple(network.parameter_shapes()), r.name(r.last), tuple(evaluate), state)  # fmt: skip


def _loss_rules(network: Network, r: RuleBuilder) -> tuple[VectorRule, ...]:
    """The batch loss L: the mean of the examples' losses, plus the penalty."""
    last = r.last
    k = network.outputs
    L = sp.Symbol("L")
    ell = r.matrix("ell", N, k, Notation("\\ell", "ℓ", None, arg=Notation(f"A^{{({last})}}, Y", f"A⁽{superscript(last)}⁾, Y")))
    rules: list[VectorRule] = []
    if r.from_logits:
        rules.append(VectorRule("loss", None, L, r.factor * r.ones.T * ell * r.column_k,
                                f"L = (Y * (S{last} - Z{last})).sum() / n",
                                "computed from the logits: ℓ = Σⱼ yⱼ (log Σₖ exp zₖ − zⱼ), which never overflows"))
    else:
        r.kernel("k_loss", (P, Y), r.term, "the loss term ℓ(ŷ, y)")
        rules.append(VectorRule("loss", None, L, r.factor * r.ones.T * ell * r.column_k,
                                f"L = k_loss({r.name(last)}, Y).sum() {r.scale}"))
    reg = network.regularizer_choice
    if reg is not None:
        reg_bound = r.bound(reg, "reg")
        r.kernel("k_pen", (W,), reg.entry.term.xreplace(reg_bound), "the penalty r(w)")
        r.kernel("k_dpen", (W,), sp.diff(reg.entry.term, W).xreplace(reg_bound), "r′(w)")
        shapes = network.parameter_shapes()
        names = [name for stage in network.stages for name in KINDS[stage.kind].penalized(stage)]
        total = " + ".join(f"k_pen({name}).sum()" for name in names)

        def column(size: int) -> sp.MatrixSymbol:
            return r.matrix(f"ones_{size}", size, 1, Notation("\\mathbf{1}", "𝟏"))

        terms = []
        for name in names:
            rows, cols = shapes[name]
            # r(W⁽ˡ⁾), written with the array's own notation from the forward rules.
            written = Notation("r", "r", None, arg=r.notation[sp.MatrixSymbol(name, rows, cols)])
            terms.append(column(rows).T * r.matrix(f"r_{name}", rows, cols, written) * column(cols))
        penalty = terms[0] if len(terms) == 1 else sp.MatAdd(*terms)
        rules.append(VectorRule("penalty", None, sp.Symbol("R"), penalty, f"R = {total}\nL = L + R"))
    return tuple(rules)


__all__ = ["Kernel", "LayerRules", "N", "RuleBuilder", "VectorRule", "layer_rules", "output_delta"]
