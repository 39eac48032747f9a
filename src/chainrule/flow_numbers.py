"""The gradient-flow bound at any numbers: ``flow_numbers`` runs ``compile(network).trace`` and bounds what it measures.

For every δ⁽ˡ⁾ (and g⁽ˡ⁾ = ∂L/∂a⁽ˡ⁾) of the batch it gives the measured norm per example
(n·D⁽ˡ⁾ᵢ: ``trace``'s D is of the batch-mean loss), the bound Π (sup |f′| · ‖W‖₂) ‖δ⁽ᴸ⁾‖ of
``flow_bound`` with sup |f′| derived by ``flow_theory``, and the sharper bound with the
largest |f′(z)| of each example in place of sup |f′|. Batch norm couples the examples: with
it, every norm is the Frobenius norm of the batch's matrix, and the bound is on that.

>>> import numpy as np
>>> from chainrule.network import Network, Dense
>>> net = Network(3, (Dense(4, "sigmoid"), Dense(4, "sigmoid"), Dense(1, "identity")), "mse")
>>> X, Y = np.random.default_rng(0).normal(size=(5, 3)), np.zeros((5, 1))
>>> numbers = flow_numbers(net, compile(net).init_params(0), X, Y)
>>> numbers.holds, [s.quantity for s in numbers.stages]
(True, ['delta', 'gradient', 'delta', 'gradient', 'delta'])
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .flow_bound import (
    FLOW_KINDS,
    FlowNumbers,
    PerExample,
    StageFactors,
    flow_numbers_from,
    stage_bounds,
)
from .flow_theory import DerivativeBound
from .model import Model, compile
from .network import Network


def flow_numbers(
    network: Network,
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    state: dict | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
    rng: np.random.Generator | None = None,
    bounds: Mapping[int, DerivativeBound | None] | None = None,
    model: Model | None = None,
) -> FlowNumbers:
    """Measured ‖δ⁽ˡ⁾‖ and its bounds for one batch; ``bounds`` (``stage_bounds``) and ``model`` (``compile``) may be reused.

    ``state``, ``masks`` and ``rng`` go to ``trace`` as to ``loss_and_grad`` (batch norm's
    running statistics, dropout's masks).
    """
    model = compile(network) if model is None else model
    _, _, arrays = model.trace(params, X, Y, state=state, masks=masks, rng=rng)
    n, coupled = X.shape[0], network.couples_batch
    learned = {s.number: {p.name: float(params[f"{p.name}{s.number}"]) for p in s.choice.entry.parameters if p.learnable}
               for s in network.stages if s.choice is not None}  # fmt: skip
    if bounds is None:
        bounds = stage_bounds(network, learned)

    def norms(M: np.ndarray) -> tuple[float, ...]:
        M = n * M.reshape(n, -1)
        return (float(np.linalg.norm(M)),) if coupled else tuple(np.sqrt((M * M).sum(axis=1)).tolist())

    def largest(M: np.ndarray) -> tuple[float, ...]:
        M = np.abs(np.broadcast_to(M, (n, M.shape[-1]) if M.ndim else (n, 1)))
        return (float(M.max()),) if coupled else tuple(M.max(axis=1).tolist())

    def get(name: str) -> np.ndarray:
        return arrays[name] if name in arrays else params[name]

    factors, measured = [], {}
    for stage in network.stages:
        l, kind = stage.number, FLOW_KINDS[stage.kind]
        if f"G{l}" in arrays:
            measured["gradient", l] = norms(arrays[f"G{l}"])
        if kind.factor == "weights":
            measured["delta", l] = norms(arrays[f"D{l}"])
        slope_sup = slope_here = weight = scale = None
        if l in bounds:
            bound = bounds[l]
            slope_sup = float("inf") if bound is None else bound.sup_value
            inputs = arrays[f"Z{l}"] if kind.factor == "weights" else arrays["X" if stage.source == 0 else f"A{stage.source}"]
            alpha = [params[f"{p.name}{l}"] for p in stage.choice.entry.parameters if p.learnable]
            slope_here = largest(np.broadcast_to(model.kernels[f"k_df{l}"](inputs, arrays[f"A{l}"], *alpha), inputs.shape))
        if kind.factor == "weights":
            weight = float(np.linalg.norm(params[f"W{l}"], 2))
        if kind.scale is not None:
            scale = kind.scale(stage, get, coupled)
        scale_sup = kind.scale_sup(stage) if kind.scale_sup is not None else scale
        factors.append(StageFactors(l, stage.kind, slope_sup, slope_here, weight, scale_sup, scale))
    last = network.stages[-1]
    start = PerExample(measured["delta" if FLOW_KINDS[last.kind].factor == "weights" else "gradient", last.number])
    return flow_numbers_from(network, start, measured, factors, n, coupled, lambda v: tuple(float(x) for x in (v if isinstance(v, tuple) else (v,) * len(start))))
