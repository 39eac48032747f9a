"""Diagnoses: the transformation of the right gradient that gives the returned one, in words.

Each candidate is tested against the values, never guessed: transposed, a constant factor
(2, ½, −1, N, 1/N, or any), another variable's gradient, a batch not summed, a wrong shape;
a factor that follows an input from point to point (a missing inner derivative); and, for a
network, the rules compiled with one activation derivative left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from .reference import network_masks, reference_gradient

FACTORS = {
    2.0: "an extra factor 2",
    0.5: "a missing factor 2 (d/dx x² = 2x)",
    -1.0: "a flipped sign (gradient ascent, or y − ŷ for ŷ − y)",
}


def diagnose(
    name: str,
    got: np.ndarray,
    expected: np.ndarray,
    others: Mapping[str, np.ndarray],
    rtol: float,
    refine: Callable[[str], str | None] | None = None,
) -> str | None:
    """The transformation of ``expected`` that gives ``got``, in words; None when none does.

    A constant factor seen at one point is passed to ``refine``, which may look at other
    points (``factor_across_points``: a "factor" that follows an input is a missing one).

    >>> diagnose("W", np.array([[1.0, 3.0], [2.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 4.0]]), {}, 1e-8)
    'transposed: got[i, j] is expected[j, i]'
    """

    def close(a, b) -> bool:
        return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=rtol * max(1.0, float(np.abs(b).max(initial=0))))

    if got.shape != expected.shape:
        if got.T.shape == expected.shape and close(got.T, expected):
            return f"transposed: the shape is {got.shape}, expected {expected.shape}"
        if got.ndim == expected.ndim + 1 and close(got.sum(axis=0), expected):
            return f"not summed over the batch: the shape is {got.shape}; sum over axis 0 to get {expected.shape}"
        if got.ndim == expected.ndim + 1 and close(got.mean(axis=0), expected):
            return f"not averaged over the batch: the shape is {got.shape}; average over axis 0 to get {expected.shape}"
        return f"wrong shape: {got.shape}, expected {expected.shape}"
    if got.ndim == 2 and got.shape[0] == got.shape[1] and not close(got, expected) and close(got, expected.T):
        return "transposed: got[i, j] is expected[j, i]"
    for other, values in others.items():
        if other != name and close(got, values) and not close(got, expected):
            return f"the gradient with respect to {other}, not {name}"
    mask = np.abs(expected) > 1e-12 * max(1.0, float(np.abs(expected).max(initial=0)))
    if mask.any():
        ratios = got[mask] / expected[mask]
        ratio = float(np.median(ratios))
        if ratio != 0 and np.allclose(ratios, ratio, rtol=1e-6) and close(got, ratio * expected):
            words = _factor_words(ratio)
            return words if refine is None else refine(words)
    return None


def _factor_words(ratio: float) -> str:
    for factor, words in FACTORS.items():
        if abs(ratio - factor) <= 1e-9 * abs(factor):
            return words
    inverse = 1 / ratio
    if abs(inverse - round(inverse)) < 1e-9 and round(inverse) > 2:
        return f"divided by {round(inverse)} once too often (a batch mean taken twice?)"
    if abs(ratio - round(ratio)) < 1e-9 and round(ratio) > 2:
        return f"{round(ratio)} times too large (a batch sum where the mean was meant: missing 1/{round(ratio)})"
    return f"a constant factor {ratio:.6g} off"


def network_variants(network):
    """Gradients with one classic bug planted in the generated code, by description.

    Each is ``(words, loss_and_grad)``: a returned gradient equal to a variant's is that bug.
    The bugs come from the layer kinds (``Kind.planted_bugs``): f′ left out of a dense δ, batch
    statistics held constant, an unmasked dropout gradient, a residual sum without its skip.
    """
    from .kinds import KINDS
    from .layers import layer_rules
    from .model import compile

    rules = layer_rules(network)
    return [
        (words, compile(network, broken).loss_and_grad)
        for stage in network.stages
        for words, broken in KINDS[stage.kind].planted_bugs(stage, rules)
    ]


def network_bug(network, at, name: str, got: np.ndarray, expected: np.ndarray, tolerance: float) -> str | None:
    shapes = network.parameter_shapes()
    params = {k: np.asarray(at[k], dtype=float) for k in shapes}
    masks = network_masks(network, at)
    for words, loss_and_grad in network_variants(network):
        _, grads = loss_and_grad(params, np.asarray(at["X"]), np.asarray(at["Y"]), masks=masks)
        planted = grads[name]
        scale = tolerance * max(1.0, float(np.abs(planted).max(initial=0)))
        if np.allclose(got, planted, rtol=tolerance, atol=scale) and not np.allclose(planted, expected, rtol=tolerance, atol=scale):
            return words
    return None


def _is_factor(got: np.ndarray, expected: np.ndarray) -> bool:
    mask = np.abs(expected) > 0
    if not mask.any():
        return False
    ratios = got[mask] / expected[mask]
    return bool(np.allclose(ratios, ratios.flat[0], rtol=1e-6))


def factor_across_points(grad_fn, reference, at, names, name, diagnosis: str, tolerance: float) -> str | None:
    """A constant factor must stay constant at points near this one; one that follows an input
    (1/x at x = 2 looks like ½) is that input missing: the chain rule's inner derivative."""
    rng = np.random.default_rng(12345)
    ratios, inputs = [], []
    for _ in range(3):
        moved = {k: np.asarray(v, dtype=float) + 0.3 * rng.uniform(-1, 1, np.shape(v)) if k in names or np.ndim(v) == 0 else v
                 for k, v in at.items()}
        moved[name] = np.asarray(moved[name])
        with np.errstate(all="ignore"):
            try:
                expected = reference_gradient(reference, moved, (name,)).values[name]
                returned = grad_fn(**moved)
            except (TypeError, ValueError, ArithmeticError):
                return diagnosis
        got = np.asarray(returned[name] if isinstance(returned, Mapping) else returned, dtype=float)
        if got.shape != expected.shape or not _is_factor(got, expected):
            return None
        mask = np.abs(expected) > 0
        ratios.append(float((got[mask] / expected[mask]).flat[0]))
        inputs.append(moved)
    if np.allclose(ratios, ratios[0], rtol=1e-6):
        return diagnosis
    scalars = [k for k, v in at.items() if np.ndim(v) == 0]
    for k in scalars:
        values = np.array([float(p[k]) for p in inputs])
        if np.allclose(np.array(ratios) * values, 1, rtol=1e-6):
            return f"a missing factor {k} (an inner derivative of the chain rule)"
        if np.allclose(np.array(ratios), values, rtol=1e-6):
            return f"an extra factor {k}"
    return None
