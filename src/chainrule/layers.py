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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from .catalog import A, P, W, Y, Z
from .functions import xdivy
from .graph import Notation
from .network import Choice, Network

#: The batch size, in equations.
N = sp.Symbol("N", positive=True, integer=True)
#: Output deltas longer than this (in operations) are not tried for cancellation.
_LONGEST_SIMPLIFIED = 200


@dataclass(frozen=True)
class Kernel:
    """An elementwise function the generated code calls: ``name(*args) = expr``, entry by entry."""

    name: str
    args: tuple[sp.Symbol, ...]
    expr: sp.Expr
    #: What it is, for documents: "f′ of layer 1", "∂ℓ/∂ŷ".
    title: str


@dataclass(frozen=True)
class VectorRule:
    """One batch-level equation ``lhs = rhs`` and the NumPy line(s) that compute it."""

    label: str  # "forward", "activation", "loss", "BP1", "BP2", "BP3", "BP4", "parameter", "penalty"
    layer: int | None
    lhs: sp.Basic
    rhs: sp.Basic
    code: str
    #: Why the rule has this form, when it is not the general one ("the targets add up to 1").
    note: str | None = None


@dataclass(frozen=True)
class LayerRules:
    """The network over a batch: forward rules, the loss, backward rules, and their kernels."""

    network: Network
    forward: tuple[VectorRule, ...]  # ends with the output A⁽ᴸ⁾ (what ``predict`` returns)
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
    #: Whether the backward rules use ``ones`` (a row of N ones: Σ over the batch as a product).
    uses_ones: bool = False


def _bound(choice: Choice, suffix: str, constants: dict) -> dict[sp.Symbol, sp.Symbol]:
    """The entry's parameter symbols, renamed per layer, fixed values recorded."""
    bound = {}
    for parameter in choice.entry.parameters:
        symbol = sp.Symbol(f"{parameter.name}_{suffix}", real=True)
        bound[parameter.symbol] = symbol
        if not parameter.learnable:
            constants[symbol] = float(choice.values[parameter.name])
    return bound


def output_delta(dloss: sp.Expr, fprime: sp.Expr) -> sp.Expr | None:
    """∂ℓ/∂a · f′ in a shorter form where one exists (sigmoid with bce: a - y), else None.

    >>> from chainrule.catalog import LOSSES, ACTIVATIONS
    >>> output_delta(sp.diff(LOSSES["bce"].term, P).xreplace({P: A}), ACTIVATIONS["sigmoid"].derivative)
    a - y
    """
    product = dloss * fprime
    if sp.count_ops(product) > _LONGEST_SIMPLIFIED:
        return None
    plain = product.replace(xdivy, lambda x, y: x / y)  # the 0/0 guard says nothing about the algebra
    shorter = sp.factor_terms(sp.cancel(sp.expand(plain)))
    if shorter.has(sp.Piecewise) or sp.count_ops(shorter) >= sp.count_ops(product):
        return None
    return shorter


def layer_rules(network: Network) -> LayerRules:
    """The batch-level equations of ``network`` and the NumPy lines that compute them."""
    notation: dict[sp.Basic, Notation] = {}
    constants: dict[sp.Symbol, float] = {}
    kernels: dict[str, Kernel] = {}
    sizes = network.sizes
    last = len(network.layers)

    def matrix(name: str, rows, cols, written: Notation) -> sp.MatrixSymbol:
        symbol = sp.MatrixSymbol(name, rows, cols)
        notation[symbol] = written
        return symbol

    def kernel(name: str, args: tuple[sp.Symbol, ...], expr: sp.Expr, title: str) -> str:
        kernels[name] = Kernel(name, args, expr, title)
        return name

    ones = matrix("ones", N, 1, Notation("\\mathbf{1}", "𝟏"))

    def column(size: int) -> sp.MatrixSymbol:
        return matrix(f"ones_{size}", size, 1, Notation("\\mathbf{1}", "𝟏"))

    X = matrix("X", N, sizes[0], Notation("X", "X"))
    Yb = matrix("Y", N, sizes[-1], Notation("Y", "Y"))
    forward: list[VectorRule] = []
    backward: list[VectorRule] = []
    parameters: list[str] = []
    acts, zs, weights, fprimes = [X], [], [], []
    learned: dict[int, sp.Symbol] = {}
    for l, (layer, choice) in enumerate(zip(network.layers, network.activations), start=1):
        entry = choice.entry
        bound = _bound(choice, f"l{l}", constants)
        W_ = matrix(f"W{l}", sizes[l], sizes[l - 1], Notation("W", "W", l))
        weights.append(W_)
        Z_ = matrix(f"Z{l}", N, sizes[l], Notation("Z", "Z", l))
        A_ = matrix(f"A{l}", N, sizes[l], Notation("A", "A", l))
        previous = "X" if l == 1 else f"A{l - 1}"
        parameters.append(f"W{l}")
        rhs = acts[-1] * W_.T
        code = f"Z{l} = {previous} @ W{l}.T"
        if layer.bias:
            b_ = matrix(f"b{l}", sizes[l], 1, Notation("b", "b", l))
            rhs = rhs + ones * b_.T
            code += f"\nZ{l} += b{l}"  # in place: one array fewer per step
            parameters.append(f"b{l}")
        forward.append(VectorRule("forward", l, Z_, rhs, code))
        alpha = [bound[p.symbol] for p in entry.parameters if p.learnable]
        if alpha:
            learned[l] = alpha[0]
            parameters.append(f"{entry.parameters[0].name}{l}")
        extra = "".join(f", {p.name}{l}" for p in entry.parameters if p.learnable)
        if entry.elementwise:
            f_name = kernel(f"k_f{l}", (Z, *alpha), entry.formula.xreplace(bound), f"f of layer {l}")
            fa = matrix(f"f{l}", N, sizes[l], Notation("f", "f", l, arg=Notation("Z", "Z", l)))
            forward.append(VectorRule("activation", l, A_, fa, f"A{l} = {f_name}(Z{l}{extra})"))
            df = kernel(f"k_df{l}", (Z, A, *alpha), entry.derivative.xreplace(bound), f"f′ of layer {l}")
            fprimes.append((df, extra))
            if alpha:
                kernel(f"k_dfa{l}", (Z, A, *alpha), sp.diff(entry.formula, entry.parameters[0].symbol).xreplace(bound),
                       f"∂f/∂{entry.parameters[0].text} of layer {l}")
        else:  # softmax: each row normalized, through its log-sum-exp so that nothing overflows
            sa = matrix(f"softmax{l}", N, sizes[l], Notation("\\operatorname{softmax}", "softmax", None, arg=Notation("Z", "Z", l)))
            forward.append(VectorRule("activation", l, A_, sa, f"S{l}, A{l} = softmax_rows(Z{l})"))
            fprimes.append((None, ""))
        acts.append(A_)
        zs.append(Z_)

    # The loss over the batch, and ∂L/∂A of the output layer.
    loss_entry = network.loss_choice.entry
    loss_bound = _bound(network.loss_choice, "loss", constants)
    k = sizes[-1]
    # Division by n (not multiplication by 1/n) keeps the code exact when proof.py runs it on symbols.
    scale = f"/ (n * {k})" if loss_entry.reduction == "mean" else "/ n"
    factor = 1 / (N * k) if loss_entry.reduction == "mean" else 1 / N
    out = f"A{last}"
    term = loss_entry.term.xreplace(loss_bound)
    L = sp.Symbol("L")
    ell = matrix("ell", N, k, Notation("\\ell", "ℓ", None, arg=Notation(f"A^{{({last})}}, Y", f"A⁽{_sup(last)}⁾, Y")))
    ones_k = matrix("ones_k", k, 1, Notation("\\mathbf{1}", "𝟏"))
    last_choice = network.activations[-1]
    from_logits = loss_entry.from_logits is not None and not last_choice.entry.elementwise
    loss_rules: list[VectorRule] = []
    if from_logits:
        loss_rules.append(
            VectorRule("loss", None, L, factor * ones.T * ell * ones_k,
                       f"L = (Y * (S{last} - Z{last})).sum() / n",
                       "computed from the logits: ℓ = Σⱼ yⱼ (log Σₖ exp zₖ − zⱼ), which never overflows")
        )
    else:
        kernel("k_loss", (P, Y), term, "the loss term ℓ(ŷ, y)")
        loss_rules.append(VectorRule("loss", None, L, factor * ones.T * ell * ones_k,
                                     f"L = k_loss({out}, Y).sum() {scale}"))
    reg = network.regularizer_choice
    if reg is not None:
        reg_bound = _bound(reg, "reg", constants)
        kernel("k_pen", (W,), reg.entry.term.xreplace(reg_bound), "the penalty r(w)")
        kernel("k_dpen", (W,), sp.diff(reg.entry.term, W).xreplace(reg_bound), "r′(w)")
        R = sp.Symbol("R")
        total = " + ".join(f"k_pen(W{l}).sum()" for l in range(1, last + 1))
        terms = [
            column(sizes[l]).T * matrix(f"r{l}", sizes[l], sizes[l - 1], Notation("r", "r", None, arg=Notation("W", "W", l)))
            * column(sizes[l - 1])
            for l in range(1, last + 1)
        ]
        penalty = terms[0] if len(terms) == 1 else sp.MatAdd(*terms)
        loss_rules.append(VectorRule("penalty", None, R, penalty, f"R = {total}\nL = L + R"))

    # Backward: Δ of the output layer, then for each layer ∂L/∂W, ∂L/∂b, Δ below.
    D = {l: matrix(f"D{l}", N, sizes[l], Notation("\\Delta", "Δ", l)) for l in range(1, last + 1)}
    G = {l: matrix(f"G{l}", N, sizes[l], Notation("A", "A", l, of="L")) for l in range(1, last + 1)}
    fp = {l: matrix(f"fprime{l}", N, sizes[l], Notation("f'", "f′", l, arg=Notation("Z", "Z", l))) for l in range(1, last + 1)}
    dell = matrix("dell", N, k, Notation("\\ell'", "ℓ′", None, arg=Notation(f"A^{{({last})}}, Y", f"A⁽{_sup(last)}⁾, Y")))
    A_out = acts[-1]
    if from_logits:
        backward.append(VectorRule("BP1", last, D[last], factor * (A_out - Yb), f"D{last} = A{last} - Y\nD{last} /= n",
                                   "the softmax Jacobian times ∂ℓ/∂a, simplified because the targets add up to 1"))
    else:
        dloss = sp.diff(term, P)
        kernel("k_dloss", (P, Y), dloss, "∂ℓ/∂ŷ")
        df, extra = fprimes[-1]
        if last_choice.entry.elementwise:
            short = None if extra else output_delta(dloss.xreplace({P: A}), kernels[df].expr)
            if short is not None:
                kernel("k_delta", (Z, A, Y), short, "∂ℓ/∂ŷ · f′(z), simplified")
                hm = matrix("h", N, k, Notation("h", "h", None, arg=Notation(f"Z^{{({last})}}, A^{{({last})}}, Y", "Z, A, Y")))
                backward.append(VectorRule("BP1", last, D[last], factor * hm,
                                           f"D{last} = k_delta(Z{last}, A{last}, Y) {scale}",
                                           "∂ℓ/∂ŷ · f′(z) cancels to a shorter form"))
            else:
                backward.append(VectorRule("BP1", last, D[last], sp.HadamardProduct(factor * dell, fp[last]),
                                           f"D{last} = (k_dloss({out}, Y) {scale}) * {df}(Z{last}, A{last}{extra})"))
        else:  # softmax under another loss: Δ = A ⊙ (G - rowsum(G ⊙ A))
            backward.append(VectorRule(
                "BP1", last, D[last], sp.HadamardProduct(A_out, G[last] - sp.HadamardProduct(G[last], A_out) * ones_k * ones_k.T),
                f"G{last} = k_dloss({out}, Y) {scale}\nD{last} = A{last} * (G{last} - (G{last} * A{last}).sum(axis=1, keepdims=True))",
                "the softmax Jacobian diag(a) − a aᵀ applied to each row of ∂L/∂A"))
    for l in range(last, 0, -1):
        layer = network.layers[l - 1]
        previous = "X" if l == 1 else f"A{l - 1}"
        gW = matrix(f"gW{l}", sizes[l], sizes[l - 1], Notation("W", "W", l, of="L"))
        rhs, code = D[l].T * acts[l - 1], f"gW{l} = D{l}.T @ {previous}"
        if reg is not None:
            rhs = rhs + matrix(f"dR{l}", sizes[l], sizes[l - 1], Notation("W", "W", l, of="R"))
            code += f" + k_dpen(W{l})"
        backward.append(VectorRule("BP4", l, gW, rhs, code))
        if layer.bias:
            gb = matrix(f"gb{l}", sizes[l], 1, Notation("b", "b", l, of="L"))
            backward.append(VectorRule("BP3", l, gb, D[l].T * ones, f"gb{l} = ones @ D{l}"))
        if l in learned:
            parameter = network.activations[l - 1].entry.parameters[0]
            name = parameter.name
            ga = sp.Symbol(f"g{name}{l}")
            notation[ga] = Notation(parameter.latex, parameter.text, l, of="L")
            dfa = matrix(f"dfa{l}", N, sizes[l], Notation("\\partial f", "∂f", l, arg=Notation("Z", "Z", l)))
            backward.append(VectorRule("parameter", l, ga, ones.T * sp.HadamardProduct(G[l], dfa) * ones,
                                       f"g{name}{l} = (G{l} * k_dfa{l}(Z{l}, A{l}, {name}{l})).sum()"))
        if l > 1:
            below, (df, extra) = l - 1, fprimes[l - 2]
            code = f"G{below} = D{l} @ W{l}"
            backward.append(VectorRule("BP2", below, G[below], D[l] * weights[l - 1], code))
            backward.append(VectorRule("BP2", below, D[below], sp.HadamardProduct(G[below], fp[below]),
                                       _times(f"D{below}", f"G{below}", f"{df}(Z{below}, A{below}{extra})", kernels[df].expr)))
    if any(l == last for l in learned) and not any(r.code.startswith(f"G{last} ") for r in backward):
        # α of the output layer needs ∂L/∂A there, which the output Δ otherwise skips.
        backward.insert(0, VectorRule("BP1", last, G[last], factor * dell, f"G{last} = k_dloss({out}, Y) {scale}"))
    return LayerRules(network, tuple(forward), tuple(loss_rules), tuple(backward), kernels, notation, constants,
                      tuple(parameters), out, any("ones @" in r.code for r in backward))


def _times(target: str, array: str, call: str, value: sp.Expr) -> str:
    """``target = array * call``, multiplied in place where the kernel returns a fresh array.

    A kernel that is one of its own arguments (f′(z) = z) returns that very array, which an
    in-place product would overwrite.
    """
    if value.is_Symbol:
        return f"{target} = {array} * {call}"
    return f"{target} = {call}\n{target} *= {array}"


def _sup(number: int) -> str:
    return str(number).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
