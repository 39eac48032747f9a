"""The tables of activations, losses and regularizers: each name maps to SymPy expressions.

An activation is written in two catalog symbols, ``Z`` (its input) and ``A`` (its
output), and the symbols of its parameters (α). ``formula`` is what the network
computes; ``derivative`` is the textbook form of f'(z), written with the output ``A``
where that is the familiar form (σ' = σ(1-σ) = a(1-a)). ``tests/test_catalog.py``
proves for every entry that it equals ``sympy.diff(formula, Z)``.

A loss is a sum or a mean over the outputs of one ``term`` in ``P`` (one output ŷⱼ)
and ``Y`` (its target yⱼ). ``term`` is what the graph differentiates and NumPy computes,
with named functions whose NumPy forms cannot overflow (softplus, xlogy, log cosh);
``textbook`` is how books write it, and tests prove the two equal.

Kinks follow PyTorch: the derivative at a kink is the one PyTorch's backward gives
(relu'(0) = 0, leaky_relu'(0) = α, hard_tanh'(±1) = 0, |x|'(0) = 0, hinge'(margin) = 0).

Parameters (α, Δ, λ) stay symbols in the derivation; their values come from the spec.

>>> ACTIVATIONS["sigmoid"].formula
sigmoid(z)
>>> LOSSES["half_sse"].formula((A,), (Y,))
(a - y)**2/2
>>> ACTIVATIONS["leaky_relu"].parameters[0].default
0.01
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy as sp

from .functions import logcosh, logsumexp, sigmoid, softplus, xlogy

#: The input and output of an activation in the catalog's formulas.
Z = sp.Symbol("z", real=True)
A = sp.Symbol("a", real=True)
#: One output ŷⱼ of the network and its target yⱼ, in loss terms.
P = sp.Symbol("yhat", real=True)
Y = sp.Symbol("y", real=True)
#: One weight, in regularizer terms.
W = sp.Symbol("w", real=True)


@dataclass(frozen=True)
class Parameter:
    """A number an entry takes from the spec: α of leaky relu, Δ of huber, λ of l2."""

    name: str
    symbol: sp.Symbol
    default: float
    #: LaTeX and Unicode for documents.
    latex: str
    text: str
    #: Learned like a weight (prelu's α) rather than fixed by the spec.
    learnable: bool = False
    #: The values a spec may give (a bound of 0 means strictly positive).
    low: float = float("-inf")
    high: float = float("inf")


@dataclass(frozen=True)
class Activation:
    """a = f(z), applied to every unit of a layer (or, for softmax, to the layer as a whole)."""

    name: str
    title: str
    formula: sp.Expr
    derivative: sp.Expr
    #: How f is written in documents, e.g. σ; ``None`` writes the formula itself.
    display: sp.FunctionClass | None = None
    parameters: tuple[Parameter, ...] = ()
    #: f as books define it, where ``formula`` uses a named function (σ(z) = 1/(1+e^-z)).
    textbook: sp.Expr | None = None
    #: Layer-level activations: aⱼ from all of the layer's z, and ∂aⱼ/∂zₖ's textbook form.
    outputs: Callable[[Sequence[sp.Expr]], tuple[sp.Expr, ...]] | None = None
    jacobian: Callable[[Sequence[sp.Expr], Sequence[sp.Expr], int, int], sp.Expr] | None = None

    @property
    def elementwise(self) -> bool:
        return self.outputs is None


@dataclass(frozen=True)
class Loss:
    """L = Σⱼ term(ŷⱼ, yⱼ), or the mean over the outputs."""

    name: str
    title: str
    term: sp.Expr
    reduction: str  # "sum" or "mean"
    textbook: sp.Expr | None = None
    parameters: tuple[Parameter, ...] = ()
    #: The output activation the loss is defined on (cross-entropy needs softmax).
    requires: str | None = None
    #: The loss computed from that activation's inputs (the logits) in a form that cannot
    #: overflow; the same value as ``formula`` of its outputs.
    from_logits: Callable[[Sequence[sp.Expr], Sequence[sp.Expr]], sp.Expr] | None = None
    #: What targets must be: "real" numbers, "unit" (from 0 to 1), a "distribution"
    #: (non-negative, adding up to 1) or a "sign" (-1 or +1).
    targets: str = "real"

    def formula(self, yhat: Sequence[sp.Expr], y: Sequence[sp.Expr], term: sp.Expr | None = None) -> sp.Expr:
        """The loss of these outputs: ``term`` (by default the entry's own) summed or averaged."""
        term = self.term if term is None else term
        total = sp.Add(*[term.xreplace({P: p, Y: t}) for p, t in zip(yhat, y)])
        return total / len(yhat) if self.reduction == "mean" else total


@dataclass(frozen=True)
class Regularizer:
    """R = Σ over every weight w of term(w), added to the loss; biases are not penalized."""

    name: str
    title: str
    term: sp.Expr
    parameters: tuple[Parameter, ...]


def _alpha(default: float, learnable: bool = False, low: float = 0.0) -> Parameter:
    return Parameter("alpha", sp.Symbol("alpha", real=True), default, "\\alpha", "α", learnable, low, float("inf"))


ALPHA = _alpha(0.0).symbol
#: SELU's constants (Klambauer et al. 2017), as PyTorch uses them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_SCALE = Parameter("scale", sp.Symbol("scale", positive=True), SELU_SCALE, "\\lambda", "λ", low=0.0)
_GELU_C = sp.Rational(44715, 1000000)
DELTA = Parameter("delta", sp.Symbol("Delta", positive=True), 1.0, "\\Delta", "Δ", low=0.0)
LAMBDA = Parameter("coefficient", sp.Symbol("lam", positive=True), 0.01, "\\lambda", "λ", low=0.0)


def _softmax(zs: Sequence[sp.Expr]) -> tuple[sp.Expr, ...]:
    # exp(zⱼ - log Σ exp zₖ): the same number as exp(zⱼ)/Σ exp(zₖ), and it never overflows.
    norm = logsumexp(*zs)
    return tuple(sp.exp(z - norm) for z in zs)


def _softmax_jacobian(zs: Sequence[sp.Expr], acts: Sequence[sp.Expr], j: int, k: int) -> sp.Expr:
    return acts[j] * ((1 if j == k else 0) - acts[k])


def _piecewise_elu(alpha: sp.Expr) -> sp.Expr:
    return sp.Piecewise((alpha * (sp.exp(Z) - 1), Z <= 0), (Z, True))


ACTIVATIONS: dict[str, Activation] = {
    entry.name: entry
    for entry in (
        Activation("identity", "identity", Z, sp.Integer(1)),
        # sigmoid(z) prints as σ(z) itself: no display name needed
        Activation("sigmoid", "logistic sigmoid", sigmoid(Z), A * (1 - A), textbook=1 / (1 + sp.exp(-Z))),
        Activation("tanh", "hyperbolic tangent", sp.tanh(Z), 1 - A**2),
        Activation(
            "relu",
            "rectified linear unit",
            sp.Piecewise((0, Z <= 0), (Z, True)),
            sp.Piecewise((0, Z <= 0), (1, True)),
            sp.Function("ReLU"),
        ),
        Activation(
            "leaky_relu",
            "leaky rectified linear unit",
            sp.Piecewise((ALPHA * Z, Z <= 0), (Z, True)),
            sp.Piecewise((ALPHA, Z <= 0), (1, True)),
            parameters=(_alpha(0.01, low=float("-inf")),),
        ),
        Activation(
            "prelu",
            "parametric relu (α is learned)",
            sp.Piecewise((ALPHA * Z, Z <= 0), (Z, True)),
            sp.Piecewise((ALPHA, Z <= 0), (1, True)),
            parameters=(_alpha(0.25, learnable=True, low=float("-inf")),),
        ),
        Activation(
            "elu",
            "exponential linear unit",
            _piecewise_elu(ALPHA),
            sp.Piecewise((A + ALPHA, Z <= 0), (1, True)),
            parameters=(_alpha(1.0),),
        ),
        Activation(
            "selu",
            "scaled exponential linear unit",
            _SCALE.symbol * _piecewise_elu(ALPHA),
            sp.Piecewise((A + _SCALE.symbol * ALPHA, Z <= 0), (_SCALE.symbol, True)),
            parameters=(_alpha(SELU_ALPHA), _SCALE),
        ),
        Activation("softplus", "softplus", softplus(Z), sigmoid(Z), textbook=sp.log(1 + sp.exp(Z))),
        Activation("silu", "sigmoid linear unit (swish)", Z * sigmoid(Z), A + sigmoid(Z) * (1 - A)),
        Activation(
            "gelu",
            "Gaussian error linear unit",
            Z / 2 * (1 + sp.erf(Z / sp.sqrt(2))),
            (1 + sp.erf(Z / sp.sqrt(2))) / 2 + Z * sp.exp(-(Z**2) / 2) / sp.sqrt(2 * sp.pi),
        ),
        Activation(
            "gelu_tanh",
            "GELU, tanh approximation",
            Z / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (Z + _GELU_C * Z**3))),
            sp.diff(Z / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (Z + _GELU_C * Z**3))), Z),
        ),
        Activation("softsign", "softsign", Z / (1 + sp.Abs(Z)), 1 / (1 + sp.Abs(Z)) ** 2),
        Activation(
            "hard_tanh",
            "hard tanh",
            sp.Piecewise((-1, Z <= -1), (1, Z >= 1), (Z, True)),
            sp.Piecewise((0, Z <= -1), (0, Z >= 1), (1, True)),
        ),
        Activation(
            "softmax",
            "softmax over the layer",
            sp.exp(Z),  # one unit's numerator; the layer divides by Σ exp
            A,
            outputs=_softmax,
            jacobian=_softmax_jacobian,
        ),
    )
}

_E = P - Y
_MARGIN = Y * P

LOSSES: dict[str, Loss] = {
    entry.name: entry
    for entry in (
        Loss("half_sse", "half the sum of squared errors", _E**2 / 2, "sum"),
        Loss("mse", "mean squared error over the outputs", _E**2, "mean"),
        Loss("mae", "mean absolute error", sp.Abs(_E), "mean"),
        Loss(
            "huber",
            "Huber loss",
            sp.Piecewise((_E**2 / 2, sp.Abs(_E) <= DELTA.symbol), (DELTA.symbol * (sp.Abs(_E) - DELTA.symbol / 2), True)),
            "mean",
            parameters=(DELTA,),
        ),
        Loss(
            "bce",
            "binary cross-entropy on probabilities",
            -(xlogy(Y, P) + xlogy(1 - Y, 1 - P)),
            "mean",
            textbook=-(Y * sp.log(P) + (1 - Y) * sp.log(1 - P)),
            targets="unit",
        ),
        Loss(
            "bce_logits",
            "binary cross-entropy on logits",
            softplus(P) - Y * P,
            "mean",
            textbook=-(Y * sp.log(sigmoid(P)) + (1 - Y) * sp.log(1 - sigmoid(P))),
            targets="unit",
        ),
        Loss(
            "cross_entropy",
            "categorical cross-entropy",
            -xlogy(Y, P),
            "sum",
            textbook=-Y * sp.log(P),
            requires="softmax",
            # -Σ yⱼ log softmax(z)ⱼ = Σ yⱼ (log Σₖ exp zₖ - zⱼ): no exp of a large logit is taken.
            from_logits=lambda zs, ys: sp.Add(*[t * (logsumexp(*zs) - z) for z, t in zip(zs, ys)]),
            targets="distribution",
        ),
        Loss("hinge", "hinge loss", sp.Piecewise((0, _MARGIN >= 1), (1 - _MARGIN, True)), "mean", targets="sign"),
        Loss(
            "squared_hinge",
            "squared hinge loss",
            sp.Piecewise((0, _MARGIN >= 1), ((1 - _MARGIN) ** 2, True)),
            "mean",
            targets="sign",
        ),
        Loss(
            "log_cosh",
            "log-cosh loss",
            logcosh(_E),
            "mean",
            textbook=sp.log(sp.cosh(_E)),
        ),
    )
}

REGULARIZERS: dict[str, Regularizer] = {
    entry.name: entry
    for entry in (
        Regularizer("l1", "L1 penalty (lasso)", LAMBDA.symbol * sp.Abs(W), (LAMBDA,)),
        Regularizer("l2", "L2 penalty (weight decay)", LAMBDA.symbol / 2 * W**2, (LAMBDA,)),
    )
}
