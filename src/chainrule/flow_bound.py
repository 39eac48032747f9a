"""A network's δ⁽ˡ⁾ as the product of its layer Jacobians, and the bound that product gives.

The backward pass multiplies the gradient by one Jacobian per stage, from the loss down:
a dense layer by diag f′(z⁽ˡ⁾) = D⁽ˡ⁾ and W⁽ˡ⁾ᵀ (δ⁽ˡ⁾ = D⁽ˡ⁾ W⁽ˡ⁺¹⁾ᵀ δ⁽ˡ⁺¹⁾), an activation
stage by D⁽ˡ⁾, dropout by diag(m)/keep, a normalization by its Jacobian J⁽ˡ⁾ᵀ, and a residual
block by (I + ∂F/∂a)ᵀ: the skip passes the gradient on unchanged and F adds its own path.
``jacobian_product`` writes this out for a network with SymPy matrix symbols; ``bound_walk``
bounds the norm of every g⁽ˡ⁾ = ∂L/∂a⁽ˡ⁾ and δ⁽ˡ⁾ the same way, one factor per stage
(‖AB‖ ≤ ‖A‖‖B‖, ‖A + B‖ ≤ ‖A‖ + ‖B‖), from ‖δ⁽ᴸ⁾‖; ``worked_flow`` fills in the worked
example's own numbers. Pure Python and SymPy: documents use it without NumPy.

>>> from chainrule.network import Network, Dense
>>> rows = jacobian_product(Network(2, (Dense(2, "tanh"), Dense(2, "tanh"), Dense(1, "identity")), "mse"))
>>> [str(r.unrolled) for r in rows if r.quantity == "delta"]
['delta^(3)', 'D^(2)*W^(3).T*delta^(3)', 'D^(1)*W^(2).T*D^(2)*W^(3).T*delta^(3)']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mpmath
import sympy as sp

from .catalog import Z
from .flow_theory import (
    DerivativeBound,
    LayerBound,
    derivative_bound,
    normalization_bound,
)
from .network import Network

if TYPE_CHECKING:
    from .derive import Derivation
    from .kinds import Stage
    from .numeric import WorkedExample

#: How close two repeated squarings must agree before the spectral norm is taken from them.
_CONVERGED = 1e-15


def _matrix(name: str, rows: int, cols: int) -> sp.MatrixSymbol:
    return sp.MatrixSymbol(name, rows, cols)


def _times(*factors: sp.Expr) -> sp.Expr:
    """A product as written: ``*`` would push a transpose into (I + ∂F/∂a)ᵀ."""
    flat = [f for factor in factors for f in (factor.args if isinstance(factor, sp.MatMul) else (factor,))]
    return flat[0] if len(flat) == 1 else sp.MatMul(*flat)


@dataclass(frozen=True)
class ProductRow:
    """One quantity of the backward pass: its step from the quantities above, and the whole product from δ⁽ᴸ⁾."""

    stage: int
    #: "delta" (δ⁽ˡ⁾ = ∂L/∂z⁽ˡ⁾ of a dense stage) or "gradient" (g⁽ˡ⁾ = ∂L/∂a⁽ˡ⁾).
    quantity: str
    symbol: sp.MatrixSymbol
    step: sp.Expr
    unrolled: sp.Expr
    #: A residual block's factor: g at its input is (I + ∂F/∂a)ᵀ times g at its sum.
    factored: sp.Expr | None = None
    #: The step as documents write it: δ⁽ˡ⁾ = D⁽ˡ⁾ W⁽ˡ⁺¹⁾ᵀ δ⁽ˡ⁺¹⁾ with g⁽ˡ⁾'s one term put in,
    #: whose own row is then not shown.
    written: sp.Expr | None = None
    shown: bool = True


def levels(network: Network) -> tuple[tuple[int, ...], Mapping[int, tuple[int, ...]]]:
    """The top-level stages in order, and each residual sum's own inner stages (not those of blocks inside it).

    >>> from chainrule.network import Network, Dense, Residual
    >>> levels(Network(2, (Dense(2, "relu"), Residual((Dense(2, "relu"),)), Dense(1, "identity")), "mse"))
    ((1, 3, 4), {3: (2,)})
    """
    inner = {s.number: s.inner for s in network.stages if s.inner}
    nested = {k for block in inner.values() for k in block}
    own = {r: tuple(k for k in block if not any(k in inner[q] for q in block if q in inner)) for r, block in inner.items()}
    return tuple(s.number for s in network.stages if s.number not in nested), own


def _nested(symbols: Any, values: Mapping[sp.Symbol, float]) -> Any:
    """A grid of symbols as the same grid of their values."""
    return [_nested(s, values) for s in symbols] if isinstance(symbols, tuple) else values[symbols]


def _flat(array: Any) -> list[float]:
    """An array's entries in order, whether nested lists or a NumPy array of any shape."""
    return [float(v) for row in array for v in (_flat(row) if hasattr(row, "__iter__") else (row,))]


def _dropout_scale(stage: Stage, get: Callable[[str], Any], coupled: bool) -> tuple[float, ...]:
    """The largest entry of the mask, per example: 1/keep unless every unit was dropped."""
    rows = get(f"M{stage.number}")
    tops = [max(abs(v) for v in row) for row in rows]
    return (max(tops),) if coupled else tuple(tops)


def _norm_scale(stage: Stage, get: Callable[[str], Any], coupled: bool) -> tuple[float, ...]:
    """max |γⱼ|/√(σ² + ε): over the units with batch norm's σⱼ², per example with layer norm's σₙ²."""
    l, eps = stage.number, float(stage.spec.eps)
    gammas, variances = [abs(g) for g in _flat(get(f"gamma{l}"))], _flat(get(f"Var{l}"))
    if FLOW_KINDS[stage.kind].couples:
        return (max(g / (v + eps) ** 0.5 for g, v in zip(gammas, variances)),)
    per_example = [max(gammas) / (v + eps) ** 0.5 for v in variances]
    return (max(per_example),) if coupled else tuple(per_example)


@dataclass(frozen=True)
class FlowKind:
    """How a layer kind enters the product: the matrix it multiplies by, and what bounds that matrix's norm."""

    #: The letter of its Jacobian (D⁽ˡ⁾ = diag f′, M⁽ˡ⁾ the mask, J⁽ˡ⁾ a normalization's), or "" for none of its own.
    letter: str
    #: "slope" (sup |f′|), "scale" (a number of the stage: 1/keep, |γ|/√(σ² + ε)), "weights" (a dense
    #: stage: δ = D g, then Wᵀδ), or "sum" (a residual block: I + ∂F/∂a).
    factor: str
    #: D and M are diagonal, their own transposes; a normalization's J is not.
    symmetric: bool = True
    #: What the stage does to the gradient, for documents ({up}: its number, {down}: its input's, superscript).
    words: str = ""
    #: A "scale" kind's factor from its arrays (``get(name)``: "M3" rows, "gamma2", "Var2"), per example
    #: or, ``coupled``, for the batch; and its bound without the data, if it has one (dropout's 1/keep).
    scale: Callable[[Stage, Callable[[str], Any], bool], tuple[float, ...]] | None = None
    scale_sup: Callable[[Stage], float] | None = None
    #: The bound on ‖J‖₂ as documents write it, what it is, and the Jacobian derived for it.
    bound: sp.Expr | None = None
    bound_words: str = ""
    #: What its factor is at given numbers, for documents.
    here_words: str = ""
    jacobian: Callable[[], LayerBound] | None = None
    #: True when its Jacobian mixes the examples of a batch (batch norm).
    couples: bool = False


_GAMMA, _VAR, _EPS = sp.Symbol("gamma_j"), sp.Symbol("sigma^2_j"), sp.Symbol("epsilon")
_NORM_BOUND = sp.Max(sp.Abs(_GAMMA) / sp.sqrt(_VAR + _EPS))

#: The layer kinds as the product sees them; a kind missing here has no place in it yet.
FLOW_KINDS: Mapping[str, FlowKind] = {
    "dense": FlowKind("D", "weights", words="W⁽{up}⁾ᵀ passes δ⁽{up}⁾ back through the weights (BP2)"),
    "activation": FlowKind("D", "slope", words="D⁽{up}⁾ = diag f′(a⁽{down}⁾), the activation's slopes at its input"),
    "dropout": FlowKind(
        "M", "scale", words="M⁽{up}⁾ = diag(m⁽{up}⁾), the mask of the forward pass: each entry 0 or 1/(1 − p)",
        scale=_dropout_scale, scale_sup=lambda stage: 1.0 / (1.0 - float(stage.spec.p)), bound=1 / (1 - sp.Symbol("p")),
        bound_words="dropout, the largest entry of its mask", here_words="the largest entry of the mask here"),
    "batch_norm": FlowKind(
        "J", "scale", False, "J⁽{up}⁾ = ∂a⁽{up}⁾/∂a⁽{down}⁾, batch norm's Jacobian (below); it couples the examples of the batch",
        scale=_norm_scale, bound=_NORM_BOUND, couples=True, jacobian=lambda: normalization_bound("examples"),
        bound_words="batch norm, unit by unit (derived below): it multiplies each unit's column of the batch, so with it "
                    "the bound is on the batch's matrices (Frobenius norm)",
        here_words="the largest |γ|/√(σ² + ε) over the units, with this batch's σ²"),
    "layer_norm": FlowKind(
        "J", "scale", False, "J⁽{up}⁾ = ∂a⁽{up}⁾/∂a⁽{down}⁾, layer norm's Jacobian (below), one per example",
        scale=_norm_scale, bound=_NORM_BOUND, jacobian=lambda: normalization_bound("units"),
        bound_words="layer norm, example by example (derived below), the largest γ over the units",
        here_words="the largest |γ| over √(σ² + ε), with each example's own σ²"),
    "residual": FlowKind("", "sum", words="the residual sum passes its gradient on unchanged to both of its inputs"),
}  # fmt: skip


def _forward_jacobian(network: Network, stage: Stage, own: Mapping[int, tuple[int, ...]]) -> sp.Expr:
    """∂a⁽ˡ⁾/∂a⁽ˡ⁻¹⁾ of one stage: D⁽ˡ⁾W⁽ˡ⁾, D⁽ˡ⁾, M⁽ˡ⁾, J⁽ˡ⁾, or I + ∂F/∂a for a block."""
    l, u, kind = stage.number, stage.units, FLOW_KINDS[stage.kind]
    if kind.factor == "weights":
        return _times(_matrix(f"D^({l})", u, u), _matrix(f"W^({l})", u, stage.inputs))
    if kind.factor == "sum":
        return sp.Identity(u) + _block_jacobian(network, own[l], own)
    return _matrix(f"{kind.letter}^({l})", u, u)


def _block_jacobian(network: Network, block: Sequence[int], own: Mapping[int, tuple[int, ...]]) -> sp.Expr:
    """∂F/∂a of a residual block: its stages' Jacobians, the last one first."""
    return _times(*[_forward_jacobian(network, network.stages[k - 1], own) for k in reversed(block)])


def _backward(stage: Stage, g: sp.Expr, own: Mapping[int, tuple[int, ...]], network: Network) -> sp.Expr:
    """What a stage passes to its input from ``g`` at its output (a dense stage's from its δ)."""
    kind = FLOW_KINDS[stage.kind]
    if kind.factor == "weights":
        return _times(_matrix(f"W^({stage.number})", stage.units, stage.inputs).T, g)
    if kind.factor == "sum":
        return _times(sp.Transpose(_forward_jacobian(network, stage, own)), g)  # I + ∂F/∂a is not symmetric
    jacobian = _forward_jacobian(network, stage, own)
    return _times(jacobian if kind.symmetric else sp.Transpose(jacobian), g)


def _has_delta(stage: Stage) -> bool:
    """Whether the stage has a δ⁽ˡ⁾ = ∂L/∂z⁽ˡ⁾ of its own (a dense stage)."""
    return FLOW_KINDS[stage.kind].factor == "weights"


def _quantity(stage: Stage) -> sp.MatrixSymbol:
    """What the backward pass passes down from a stage: δ⁽ˡ⁾ of a dense one, else g⁽ˡ⁾ = ∂L/∂a⁽ˡ⁾."""
    return _matrix(f"{'delta' if _has_delta(stage) else 'g'}^({stage.number})", stage.units, 1)


def jacobian_product(network: Network) -> tuple[ProductRow, ...]:
    """Every δ⁽ˡ⁾ and g⁽ˡ⁾ = ∂L/∂a⁽ˡ⁾ of ``network``, from the output down, as products ending in δ⁽ᴸ⁾.

    Each row's ``step`` is one step of the backward pass, in the quantities of the stages
    that read it; ``unrolled`` is the whole product. A residual block's skip gets its
    ``factored`` form (I + ∂F/∂a)ᵀ g.
    """
    top, own = levels(network)
    stages = network.stages
    last = stages[-1]
    start = _quantity(last)
    unrolled: dict[tuple[str, int], sp.Expr] = {}

    def walk(block: Sequence[int], g: sp.Expr) -> sp.Expr:
        for l in reversed(block):
            stage = stages[l - 1]
            if stage is not last or not _has_delta(stage):
                unrolled["gradient", l] = g
            if _has_delta(stage):
                g = start if stage is last else _times(_matrix(f"D^({l})", stage.units, stage.units), g)
                unrolled["delta", l] = g
            elif l in own:
                walk(own[l], g)
            g = _backward(stage, g, own, network)
        return g

    walk(top, start)
    rows: list[ProductRow] = []
    for stage in reversed(stages):
        l, u = stage.number, stage.units
        if ("gradient", l) in unrolled:
            consumers = [c for c in stages if l in (c.source, c.skip)]
            terms = [_backward(c, _quantity(c), own, network) if c.number not in own else _quantity(c) for c in consumers]
            step = sp.MatAdd(*terms) if len(terms) > 1 else terms[0]
            skip = next((c for c in consumers if c.skip == l), None)
            factored = _backward(skip, _quantity(skip), own, network) if skip is not None else None
            # A dense stage's g⁽ˡ⁾ of one term goes straight into its δ⁽ˡ⁾ = D⁽ˡ⁾ g⁽ˡ⁾.
            folded = _has_delta(stage) and len(consumers) == 1 and _has_delta(consumers[0])
            rows.append(ProductRow(l, "gradient", _matrix(f"g^({l})", u, 1), step, unrolled["gradient", l], factored, step, not folded))
        if _has_delta(stage):
            slopes = _matrix(f"D^({l})", u, u)
            step = start if stage is last else _times(slopes, _matrix(f"g^({l})", u, 1))
            written = _times(slopes, rows[-1].step) if stage is not last and not rows[-1].shown else step
            rows.append(ProductRow(l, "delta", _quantity(stage), step, unrolled["delta", l], None, written))
    return tuple(rows)


# The bound, one factor per stage -------------------------------------------------------


def bound_walk(
    network: Network, start: Any, slope: Callable[[int], Any], weight: Callable[[int], Any], scale: Callable[[int], Any]
) -> dict[tuple[str, int], Any]:
    """Bounds on ‖δ⁽ˡ⁾‖ and ‖g⁽ˡ⁾‖ from ‖δ⁽ᴸ⁾‖ = ``start``, keyed ("delta" or "gradient", l).

    Into a dense stage's δ the bound is multiplied by ``slope(l)`` (a bound on ‖D⁽ˡ⁾‖₂ =
    max |f′(z⁽ˡ⁾)|), out of it by ``weight(l)`` (‖W⁽ˡ⁾‖₂); an activation stage multiplies by
    ``slope(l)``, dropout and the normalizations by ``scale(l)``; a residual block adds the
    bound through F to the skip's (‖(I + J)ᵀg‖ ≤ ‖g‖ + ‖Jᵀg‖). Numbers or NumPy arrays of
    one per example both work.

    >>> from chainrule.network import Network, Dense
    >>> net = Network(2, (Dense(2, "sigmoid"), Dense(1, "identity")), "mse")
    >>> bound_walk(net, 1.0, lambda l: 0.25, lambda l: 2.0, lambda l: 1.0)
    {('delta', 2): 1.0, ('gradient', 1): 2.0, ('delta', 1): 0.5}
    """
    top, own = levels(network)
    last = network.stages[-1]
    out: dict[tuple[str, int], Any] = {}

    def walk(block: Sequence[int], b: Any) -> Any:
        for l in reversed(block):
            stage = network.stages[l - 1]
            factor = FLOW_KINDS[stage.kind].factor
            if stage is not last or factor != "weights":
                out["gradient", l] = b
            if factor == "weights":
                b = start if stage is last else slope(l) * b
                out["delta", l] = b
                b = weight(l) * b
            elif factor == "sum":
                b = b + walk(own[l], b)
            else:
                b = (slope(l) if factor == "slope" else scale(l)) * b
        return b

    walk(top, start)
    return out


def spectral_norm(rows: Sequence[Sequence[float]]) -> float:
    """‖W‖₂, the largest singular value, in plain Python: √λ of the smaller Gram matrix, by repeated squaring.

    P = G^(2^k)/trace turns into the projection on G's top eigenvectors, and trace(GP)/trace(P)
    is then their eigenvalue.

    >>> round(spectral_norm([[3.0, 0.0], [4.0, 5.0]]), 12)
    6.708203932499
    """
    if len(rows) > len(rows[0]):
        rows = list(zip(*rows))
    gram = [[sum(a * b for a, b in zip(r, s)) for s in rows] for r in rows]
    trace = sum(gram[i][i] for i in range(len(gram)))
    if trace == 0:
        return 0.0
    power = [[v / trace for v in r] for r in gram]
    for _ in range(64):
        columns = list(zip(*power))
        squared = [[sum(a * b for a, b in zip(r, c)) for c in columns] for r in power]
        trace = sum(squared[i][i] for i in range(len(squared)))
        squared = [[v / trace for v in r] for r in squared]
        change = max(abs(a - b) for r, s in zip(squared, power) for a, b in zip(r, s))
        power = squared
        if change < _CONVERGED:
            break
    top = sum(gram[i][k] * power[k][i] for i in range(len(gram)) for k in range(len(gram)))
    return max(0.0, top / sum(power[i][i] for i in range(len(power)))) ** 0.5


# Numbers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StageFactors:
    """What one stage multiplies the bound by: sup |f′| (and max |f′(z)| here), ‖W⁽ˡ⁾‖₂, or its scale."""

    stage: int
    kind: str
    #: sup |f′| of its activation (derived), and max |f′(z)| at each example (or over the batch).
    slope_sup: float | None = None
    slope_here: tuple[float, ...] | None = None
    weight_norm: float | None = None
    #: Dropout's 1/keep (here: the largest mask entry), a normalization's max |γ|/√(σ² + ε)
    #: (the same in both: with σ² from the data, it has no bound of its own).
    scale_sup: float | tuple[float, ...] | None = None
    scale_here: tuple[float, ...] | None = None


@dataclass(frozen=True)
class StageFlow:
    """One quantity's numbers: its measured norm, the bound by sup f′, the sharper bound by the slopes here."""

    stage: int
    quantity: str
    #: One per example, or one for the whole batch (Frobenius) when batch norm couples the examples.
    measured: tuple[float, ...]
    bound: tuple[float, ...]
    sharper: tuple[float, ...]

    @property
    def holds(self) -> bool:
        """Whether measured ≤ sharper ≤ bound for every example (to rounding)."""
        slack = 1e-9
        return all(m <= s * (1 + slack) + 1e-300 and s <= b * (1 + slack) + 1e-300 for m, s, b in zip(self.measured, self.sharper, self.bound))


@dataclass(frozen=True)
class FlowNumbers:
    """The gradient-flow bound of a network at some numbers: per stage, what it multiplies by and what it gives."""

    #: True when batch norm couples the examples: then norms are over the batch's matrix (Frobenius).
    coupled: bool
    examples: int
    factors: tuple[StageFactors, ...]
    #: From the output down, in the order of ``jacobian_product``.
    stages: tuple[StageFlow, ...]

    @property
    def holds(self) -> bool:
        return all(s.holds for s in self.stages)


def stage_bounds(network: Network, values: Mapping[int, Mapping[str, float]] | None = None) -> dict[int, DerivativeBound | None]:
    """sup |f′| of every stage with an elementwise activation, each distinct activation derived once.

    ``values`` overrides a stage's parameters (a learned α); None where SymPy cannot bound f′.
    """
    out: dict[int, DerivativeBound | None] = {}
    derived: dict[tuple, DerivativeBound | None] = {}
    for stage in network.stages:
        if stage.choice is None or not stage.choice.entry.elementwise:
            continue
        given = {**stage.choice.values, **((values or {}).get(stage.number, {}))}
        key = (stage.choice.label, stage.choice.entry.formula, tuple(sorted(given.items())))
        if key not in derived:
            try:
                derived[key] = derivative_bound(stage.choice.entry, given)
            except (ValueError, NotImplementedError, TypeError, sp.PolynomialError):
                derived[key] = None  # a custom formula SymPy cannot bound: no finite bound
        out[stage.number] = derived[key]
    return out


def flow_numbers_from(network: Network, start: Any, measured: Mapping[tuple[str, int], Any], factors: Sequence[StageFactors],
                      examples: int, coupled: bool, column: Callable[[Any], tuple[float, ...]]) -> FlowNumbers:
    """Both bounds by ``bound_walk`` and the rows of ``FlowNumbers``; ``column`` turns a value into floats per example."""
    by_stage = {f.stage: f for f in factors}
    inf = float("inf")

    def pick(l: int, sup: str, here: str, sharp: bool) -> Any:
        f = by_stage[l]
        value = getattr(f, here) if sharp else getattr(f, sup)
        if value is None:
            return inf
        return PerExample(value) if isinstance(value, tuple) else value

    walks = [
        bound_walk(network, start, lambda l, s=sharp: pick(l, "slope_sup", "slope_here", s), lambda l: by_stage[l].weight_norm,
                   lambda l, s=sharp: pick(l, "scale_sup", "scale_here", s))
        for sharp in (False, True)
    ]  # fmt: skip
    rows = [StageFlow(r.stage, r.quantity, column(measured[r.quantity, r.stage]), column(walks[0][r.quantity, r.stage]),
                      column(walks[1][r.quantity, r.stage])) for r in jacobian_product(network)]  # fmt: skip
    return FlowNumbers(coupled, examples, tuple(factors), tuple(rows))


class PerExample(tuple):
    """Numbers per example that multiply and add entry by entry (and with a plain number)."""

    def __mul__(self, other):
        return PerExample(a * b for a, b in zip(self, _spread(other, len(self))))

    __rmul__ = __mul__

    def __add__(self, other):
        return PerExample(a + b for a, b in zip(self, _spread(other, len(self))))

    __radd__ = __add__


def _spread(value: Any, size: int) -> Sequence[float]:
    return value if isinstance(value, tuple) else (value,) * size


def example_bounds(derivation: Derivation, example: WorkedExample) -> dict[int, DerivativeBound | None]:
    """``stage_bounds`` with a learned α at the worked example's value."""
    values = example.values
    learned = {layer.number: {name[: -len(str(layer.number))]: values[s] for name, s in layer.learned}
               for layer in derivation.graph.layers if layer.learned}  # fmt: skip
    return stage_bounds(derivation.network, learned)


def worked_flow(derivation: Derivation, example: WorkedExample, bounds: Mapping[int, DerivativeBound | None] | None = None) -> FlowNumbers:
    """The gradient-flow bound at the worked example's own numbers, in plain Python.

    Per example the loss is the batch's mean times its size, so each δ is N times its adjoint.
    ``bounds`` is ``example_bounds(derivation, example)``, if already derived.
    """
    graph, network = derivation.graph, derivation.network
    n, coupled = graph.batch, network.couples_batch
    values, adjoints = example.values, example.adjoints

    def grid(flat: Sequence[float]) -> list[list[float]]:
        width = len(flat) // n
        return [list(flat[i * width : (i + 1) * width]) for i in range(n)]

    def norms(flat: Sequence[float]) -> tuple[float, ...]:
        if coupled:
            return (sum(v * v for v in flat) ** 0.5,)
        return tuple(sum(v * v for v in row) ** 0.5 for row in grid(flat))

    def largest(flat: Sequence[float]) -> tuple[float, ...]:
        if coupled:
            return (max(abs(v) for v in flat),)
        return tuple(max(abs(v) for v in row) for row in grid(flat))

    bounds = example_bounds(derivation, example) if bounds is None else bounds
    factors, measured = [], {}
    for stage, layer in zip(network.stages, graph.layers):
        l, kind = stage.number, FLOW_KINDS[stage.kind]
        measured["gradient", l] = norms([n * adjoints[s] for s in layer.a])
        if _has_delta(stage):
            measured["delta", l] = norms([n * adjoints[s] for s in layer.z])
        slope = sup = weight = scale = None
        if stage.number in bounds:
            bound = bounds[l]
            sup = float("inf") if bound is None else bound.sup_value
            if bound is not None:
                fprime = sp.lambdify(Z, bound.derivative.rewrite(sp.exp), modules="mpmath")
                slope = largest([float(fprime(mpmath.mpf(values[s]))) for s in (layer.z if _has_delta(stage) else layer.inputs)])
        if _has_delta(stage):
            weight = spectral_norm([[values[w] for w in row] for row in layer.weights])
        if kind.scale is not None:
            arrays = {**layer.arrays, **layer.forward, **layer.leaves}

            def get(name: str, arrays=arrays) -> Any:
                return _nested(arrays[name], values)

            scale = kind.scale(stage, get, coupled)
        scale_sup = kind.scale_sup(stage) if kind.scale_sup is not None else scale
        factors.append(StageFactors(l, stage.kind, sup, slope, weight, scale_sup, scale))
    last = network.stages[-1]
    start = PerExample(measured["delta" if _has_delta(last) else "gradient", last.number])
    return flow_numbers_from(network, start, measured, factors, n, coupled, lambda v: tuple(float(x) for x in _spread(v, len(start))))
