"""Reference gradients for checking: exact where possible, with a stated error where not.

A formula or a SymPy expression is differentiated symbolically; a chainrule network through
the code generated from its proved derivation; a plain function by the complex step
(Im f(x + ih)/h, exact to rounding for code that passes complex numbers through), else by
fourth-order central differences with one Richardson step, whose gap is the stated error.
Vector-valued functions give Jacobians (output shape + input shape).

>>> reference_gradient("x*sin(y)", {"x": 2.0, "y": 0.0}, ("x", "y")).method
'symbolic'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from . import expr as formula_language
from .stable import NUMPY


@dataclass(frozen=True)
class Reference:
    """The expected gradient by variable name, how it was computed, and its error bound."""

    values: Mapping[str, np.ndarray]
    method: str  # "symbolic", "complex step", "Richardson"
    error: float  # an estimate of the reference's own absolute error (0 for symbolic)
    formulas: Mapping[str, sp.Expr] | None = None
    #: The scalar function itself, f(**at), for one-sided slopes at a kink.
    function: Callable | None = None


def reference_gradient(reference, at: Mapping[str, object], wrt: tuple[str, ...]) -> Reference:
    """The gradient of ``reference`` (formula text, SymPy expression or function) at ``at``.

    >>> reference_gradient("x*sin(y)", {"x": 2.0, "y": 0.0}, ("x", "y")).values
    {'x': array(0.), 'y': array(2.)}
    """
    if isinstance(reference, str):
        return _symbolic(formula_language.parse(reference, list(at), what="reference"), at, wrt)
    if isinstance(reference, sp.Basic):
        return _symbolic(reference, at, wrt)
    from .network import Network

    if isinstance(reference, Network):
        return _network(reference, at, wrt)
    if callable(reference):
        return _numeric(reference, at, wrt)
    raise TypeError(f"reference must be a formula, a SymPy expression or a function, got {type(reference).__name__}")


def _symbolic(expression: sp.Expr, at, wrt) -> Reference:
    symbols = {s.name: s for s in expression.free_symbols}
    missing = sorted(set(symbols) - set(at))
    if missing:
        raise ValueError(f"at: no value for {', '.join(missing)}; give every variable of the reference")
    for name in at:
        symbols.setdefault(name, sp.Symbol(name, real=True))
    args = [symbols[name] for name in at]
    formulas = {name: sp.diff(expression, symbols[name]) for name in wrt}
    scalar = sp.lambdify(args, expression, modules=[NUMPY, np])
    values = {}
    for name, derivative in formulas.items():
        function = sp.lambdify(args, derivative, modules=[NUMPY, np])
        values[name] = np.asarray(function(*[np.asarray(at[n], dtype=float) for n in at]), dtype=float)
    return Reference(values, "symbolic", 0.0, formulas, lambda **kw: scalar(*[kw[n] for n in at]))


def _network(network, at, wrt) -> Reference:
    """∂L/∂(parameter arrays) by the code generated from the network's derivation (proved rules).

    The network runs as in training (batch statistics); dropout's masks come from ``at`` ("M3").
    """
    from .model import compile

    model = compile(network)
    shapes = network.parameter_shapes()
    masks = network_masks(network, at)
    missing = [k for k in (*shapes, "X", "Y") if k not in at]
    if missing:
        raise ValueError(f"at: a network reference needs {', '.join(missing)} (its parameters, and X, Y: one example per row)")

    def loss(**kw):
        return model.loss({k: np.asarray(kw[k]) for k in shapes}, np.asarray(kw["X"]), np.asarray(kw["Y"]), masks=masks)

    params = {k: np.asarray(at[k], dtype=float) for k in shapes}
    _, grads = model.loss_and_grad(params, np.asarray(at["X"]), np.asarray(at["Y"]), masks=masks)
    return Reference({k: grads[k] for k in wrt}, "the network's derivation (generated code)", 0.0, None, loss)


def network_masks(network, at) -> dict[str, np.ndarray] | None:
    """Dropout masks from ``at`` ("M3": rows by units), or None for a network without dropout."""
    rows = np.asarray(at["X"]).shape[0] if "X" in at else 1
    names = list(network.leaf_shapes(rows))
    if not names:
        return None
    missing = [k for k in names if k not in at]
    if missing:
        raise ValueError(f"at: a network with dropout needs its masks {', '.join(missing)} (0 or 1/(1 - p), one row per example)")
    return {k: np.asarray(at[k], dtype=float) for k in names}


def _numeric(function: Callable, at, wrt) -> Reference:
    base = {name: np.array(value, dtype=float) for name, value in at.items()}
    try:
        return _complex_step(function, base, wrt)
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        return _richardson(function, base, wrt)


def _complex_step(function, base, wrt) -> Reference:
    # Im f(x + ih)/h has no subtraction, so no cancellation: h can be tiny and the result is
    # exact to rounding, wherever f is real-analytic code that passes complex numbers through.
    h = 1e-30
    values = {}
    shape = np.shape(function(**base))  # () for a loss; a vector-valued function gives a Jacobian
    for name in wrt:
        grad = np.zeros(shape + base[name].shape)
        for index in np.ndindex(base[name].shape or ()):
            args = {k: v.astype(complex) for k, v in base.items()}
            args[name][index] += 1j * h
            out = np.asarray(function(**args))
            if not np.iscomplexobj(out):
                raise ValueError("the function does not carry complex numbers through")
            grad[(Ellipsis, *index)] = out.imag / h
        values[name] = grad
    # A function that dropped the imaginary part (abs, comparisons, float()) gives zeros
    # where differences do not; check every entry against a difference before trusting it.
    check = _richardson(function, base, wrt)
    for name in wrt:
        if not np.allclose(values[name], check.values[name], rtol=1e-5, atol=1e-7 + 10 * check.error):
            raise ValueError("the function does not carry complex numbers through")
    return Reference(values, "complex step", 1e-15, None, function)


def _richardson(function, base, wrt) -> Reference:
    def f(args) -> np.ndarray:
        return np.asarray(function(**args), dtype=float)

    values, error = {}, 0.0
    shape = f(base).shape
    for name in wrt:
        grad = np.zeros(shape + base[name].shape)
        for index in np.ndindex(base[name].shape or ()):
            scale = max(1.0, abs(float(base[name][index])))
            estimates = []
            for h in (1e-2 * scale, 5e-3 * scale):
                quotient = np.zeros(shape)
                for s, w in ((-2, 1), (-1, -8), (1, 8), (2, -1)):
                    args = {k: v.copy() for k, v in base.items()}
                    args[name][index] += s * h
                    quotient = quotient + w * f(args)
                estimates.append(quotient / (12 * h))
            # Fourth-order differences at h and h/2: their error ratio is 16, so one
            # Richardson step cancels the h⁴ term; the gap between them bounds what is left.
            better = estimates[1] + (estimates[1] - estimates[0]) / 15
            grad[(Ellipsis, *index)] = better
            gap = float(np.max(np.abs(estimates[1] - estimates[0]), initial=0)) / 15
            error = max(error, gap + 1e-12 * max(1.0, float(np.max(np.abs(better), initial=0))))
        values[name] = grad
    return Reference(values, "Richardson", error, None, function)


def one_sided(function: Callable, at: Mapping[str, np.ndarray], name: str, index: tuple[int, ...]) -> tuple[float, float]:
    """The left and right slopes of ``function`` in one entry, by second-order one-sided differences.

    >>> one_sided(lambda x: abs(x), {"x": np.array(0.0)}, "x", ())
    (-1.0, 1.0)
    """
    base = {k: np.array(v, dtype=float) for k, v in at.items()}
    h = 1e-6 * max(1.0, abs(float(base[name][index])))

    def f(step: float) -> float:
        args = {k: v.copy() for k, v in base.items()}
        args[name][index] += step
        return float(np.asarray(function(**args), dtype=float).item())

    f0 = f(0.0)
    left = (3 * f0 - 4 * f(-h) + f(-2 * h)) / (2 * h)
    right = (-3 * f0 + 4 * f(h) - f(2 * h)) / (2 * h)
    return round(left, 6), round(right, 6)


def kink_arguments(reference, at) -> list[Callable]:
    """For a symbolic reference: functions of the point whose value is 0 exactly at a kink.

    |u|, sign(u), relu(u), step(u) break at u = 0, max(a, b) at a = b, and a piecewise
    definition where a condition's two sides meet. A drawn point is kept away from them;
    a plain function's kinks cannot be read, so its points are drawn as they come.
    """
    if isinstance(reference, str):
        reference = formula_language.parse(reference, list(at))
    if not isinstance(reference, sp.Basic):
        return []
    from .functions import relu

    arguments = []
    for node in sp.preorder_traversal(reference):
        if isinstance(node, (sp.Abs, sp.sign, sp.Heaviside, relu)):
            arguments.append(node.args[0])
        elif isinstance(node, (sp.Max, sp.Min)):
            arguments.extend(a - b for i, a in enumerate(node.args) for b in node.args[i + 1 :])
        elif isinstance(node, sp.Piecewise):
            arguments.extend(c.lhs - c.rhs for _, c in node.args if isinstance(c, sp.core.relational.Relational))
    symbols = {s.name: s for a in arguments for s in a.free_symbols}
    names = sorted(symbols)
    function = sp.lambdify([symbols[n] for n in names], arguments, modules=[NUMPY, np])
    if not arguments:
        return []
    return [lambda point: function(*[point[n] for n in names])]


def near_kink(kinks: list[Callable], point: Mapping[str, object]) -> bool:
    with np.errstate(all="ignore"):
        return any(np.any(np.abs(np.asarray(value, dtype=float)) < 1e-3) for k in kinks for value in k(point))
