"""Checking hand-written gradients: a reference gradient, the wrong entries, and the likely bug.

The reference is exact where it can be: the symbolic derivative of a formula or a SymPy
expression, or, for a plain Python function of the inputs, the complex step
(Im f(x + ih)/h, exact to rounding for real-analytic code) and otherwise central
differences extrapolated by Richardson with a stated error. A mismatch is explained by
testing candidate transformations of the expected values (transposed, a factor 2, ½, −1,
N or 1/N, another variable's gradient, a batch not summed) against what was returned:
a diagnosis is named only when it reproduces the returned values.

>>> assert_gradient(lambda x, y: {"x": 2 * x * y, "y": x**2}, "x**2*y", at={"x": 1.5, "y": -2.0})
>>> try:
...     assert_gradient(lambda x: x, "x**2", at={"x": 3.0})
... except AssertionError as exc:
...     print(str(exc).splitlines()[1])
  x: expected 6 = 2*x, got 3 (abs. error 3, rel. error 0.5); a missing factor 2 (d/dx x² = 2x)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from . import expr as formula_language
from .stable import NUMPY

#: Relative tolerance of a float64 check against an exact reference: a bug of relative size
#: 1e-6 is caught, and rounding in any reasonable float64 gradient (≈ 1e-13) passes.
RTOL_FLOAT64 = 1e-8
#: float32 carries about 7 digits; its rounding alone reaches 1e-5 on long sums.
RTOL_FLOAT32 = 1e-4
_FACTORS = {
    2.0: "an extra factor 2",
    0.5: "a missing factor 2 (d/dx x² = 2x)",
    -1.0: "a flipped sign (gradient ascent, or y − ŷ for ŷ − y)",
}


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
    """∂L/∂(parameter arrays) by the code generated from the network's derivation (proved rules)."""
    from .model import compile

    model = compile(network)
    shapes = network.parameter_shapes()
    missing = [k for k in (*shapes, "X", "Y") if k not in at]
    if missing:
        raise ValueError(f"at: a network reference needs {', '.join(missing)} (its parameters, and X, Y: one example per row)")

    def loss(**kw):
        return model.loss({k: np.asarray(kw[k]) for k in shapes}, np.asarray(kw["X"]), np.asarray(kw["Y"]))

    _, grads = model.loss_and_grad({k: np.asarray(at[k], dtype=float) for k in shapes}, np.asarray(at["X"]), np.asarray(at["Y"]))
    return Reference({k: grads[k] for k in wrt}, "the network's derivation (generated code)", 0.0, None, loss)


def network_variants(network):
    """Gradients with one classic bug planted in the generated code, by description.

    Each is ``(words, loss_and_grad)``: a returned gradient equal to a variant's is that bug.
    """
    from dataclasses import replace

    from .layers import layer_rules
    from .model import compile

    rules = layer_rules(network)
    variants = []
    for rule in rules.backward:
        lines = rule.code.splitlines()
        if rule.label in ("BP1", "BP2") and rule.lhs.name.startswith("D") and "k_df" in rule.code:
            layer = rule.lhs.name[1:]
            if rule.label == "BP1":  # D = (∂L/∂A) * f′  ->  D = ∂L/∂A
                code = lines[0].rsplit(" * k_df", 1)[0]
            else:  # D = f′; D *= G  ->  D = G
                code = f"D{layer} = G{layer}"
            broken = replace(rules, backward=tuple(replace(r, code=code) if r is rule else r for r in rules.backward))
            words = f"the activation derivative f′(z⁽{layer}⁾) is missing from δ⁽{layer}⁾ (δ = ∂L/∂a ⊙ f′(z))"
            variants.append((words, compile(network, broken).loss_and_grad))
    return variants


def _network_bug(network, at, name: str, got: np.ndarray, expected: np.ndarray, tolerance: float) -> str | None:
    shapes = network.parameter_shapes()
    params = {k: np.asarray(at[k], dtype=float) for k in shapes}
    for words, loss_and_grad in network_variants(network):
        _, grads = loss_and_grad(params, np.asarray(at["X"]), np.asarray(at["Y"]))
        planted = grads[name]
        scale = tolerance * max(1.0, float(np.abs(planted).max(initial=0)))
        if np.allclose(got, planted, rtol=tolerance, atol=scale) and not np.allclose(planted, expected, rtol=tolerance, atol=scale):
            return words
    return None


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
    # where differences do not; check one entry each against a difference before trusting it.
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


def _kink(ref: Reference, at, name: str, index: tuple[int, ...]) -> tuple[float, float] | None:
    """The subgradient range [a, b] where the reference has a kink in this entry, else None."""
    if ref.function is None or len(index) != np.ndim(at[name]):  # a Jacobian's entry: no kink test
        return None
    try:
        left, right = one_sided(ref.function, at, name, index)
    except (TypeError, ValueError, ArithmeticError):
        return None
    if not (np.isfinite(left) and np.isfinite(right)) or abs(left - right) <= 1e-4 * max(1.0, abs(left), abs(right)):
        return None
    return min(left, right), max(left, right)


@dataclass(frozen=True)
class WrongEntry:
    name: str
    index: tuple[int, ...]
    expected: float
    got: float

    @property
    def absolute(self) -> float:
        return abs(self.got - self.expected)

    @property
    def relative(self) -> float:
        return self.absolute / max(abs(self.expected), abs(self.got), 1e-300)


def diagnose(name: str, got: np.ndarray, expected: np.ndarray, others: Mapping[str, np.ndarray], rtol: float) -> str | None:
    """The transformation of ``expected`` that gives ``got``, in words; None when none does.

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
            for factor, words in _FACTORS.items():
                if abs(ratio - factor) <= 1e-9 * abs(factor):
                    return words
            inverse = 1 / ratio
            if abs(inverse - round(inverse)) < 1e-9 and round(inverse) > 2:
                return f"divided by {round(inverse)} once too often (a batch mean taken twice?)"
            if abs(ratio - round(ratio)) < 1e-9 and round(ratio) > 2:
                return f"{round(ratio)} times too large (a batch sum where the mean was meant: missing 1/{round(ratio)})"
            return f"a constant factor {ratio:.6g} off"
    return None


def assert_gradient(
    grad_fn: Callable,
    reference,
    at: Mapping[str, object],
    wrt: str | tuple[str, ...] | list[str] | None = None,
    rtol: float | None = None,
    points: int = 2,
    seed: int = 0,
) -> None:
    """Check ``grad_fn(**at)`` against the gradient of ``reference``; raise AssertionError naming each wrong entry.

    ``reference`` is a formula in chainrule's language, a SymPy expression, or a plain
    function of the same named inputs returning the scalar loss. ``grad_fn`` returns one
    array (one variable in ``wrt``) or a dict of arrays by name. ``at`` is one point or a
    list of points (each checked); besides them, ``points`` more are drawn from ``seed`` near the first (the ``wrt`` variables moved, the other
    inputs kept); a drawn point where the reference is not finite is skipped.
    """
    __tracebackhide__ = True  # pytest shows the user's test line and the message, not this frame
    given = [at] if isinstance(at, Mapping) else list(at)
    if not given or not all(isinstance(p, Mapping) for p in given):
        raise ValueError("at: give the inputs by name, {'x': 0.5, ...}, or a list of such points")
    at = given[0]
    names = tuple(at) if wrt is None else ((wrt,) if isinstance(wrt, str) else tuple(wrt))
    unknown = [n for n in names if n not in at]
    if unknown:
        raise ValueError(f"wrt: {unknown[0]!r} is not one of the inputs in at ({', '.join(at)})")
    for point in given:
        _check_at(grad_fn, reference, point, names, rtol, None)
    rng = np.random.default_rng(seed)
    kinks = _kink_arguments(reference, at)
    for number in range(1, points + 1):
        for _ in range(20):  # redraw a point that falls on (or next to) a kink
            moved = dict(at)
            for name in names:
                value = np.asarray(at[name], dtype=float)
                moved[name] = value + 0.25 * np.maximum(1.0, np.abs(value)) * rng.uniform(-1, 1, value.shape)
            if not _near_kink(kinks, moved):
                break
        _check_at(grad_fn, reference, moved, names, rtol, number)


def _kink_arguments(reference, at) -> list[Callable]:
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


def _near_kink(kinks: list[Callable], point: Mapping[str, object]) -> bool:
    with np.errstate(all="ignore"):
        return any(np.any(np.abs(np.asarray(value, dtype=float)) < 1e-3) for k in kinks for value in k(point))


def _check_at(grad_fn, reference, at, names, rtol, drawn: int | None) -> None:
    __tracebackhide__ = True
    if drawn is not None:
        with np.errstate(all="ignore"):
            ref = reference_gradient(reference, at, names)
        if not all(np.isfinite(v).all() for v in ref.values.values()):
            return
    else:
        ref = reference_gradient(reference, at, names)
    returned = grad_fn(**{k: (np.array(v, dtype=float) if np.ndim(v) else float(v)) for k, v in at.items()})
    if not isinstance(returned, Mapping):
        if len(names) != 1:
            raise ValueError(f"grad_fn returned one array; return a dict for the {len(names)} variables {', '.join(names)}")
        returned = {names[0]: returned}
    dtype = np.result_type(*[np.asarray(v) for v in returned.values()])
    tolerance = rtol if rtol is not None else (RTOL_FLOAT32 if dtype == np.float32 else RTOL_FLOAT64)
    lines, wrong_count = [], 0
    for name in names:
        if name not in returned:
            lines.append(f"  {name}: missing from what grad_fn returned (it has {', '.join(map(str, returned)) or 'nothing'})")
            wrong_count += 1
            continue
        got = np.asarray(returned[name], dtype=float)
        expected = ref.values[name]
        floor = tolerance * max(1.0, float(np.abs(expected).max(initial=0))) + 10 * ref.error
        diagnosis = diagnose(name, got, expected, ref.values, tolerance)
        factor = diagnosis is not None and (
            diagnosis in _FACTORS.values() or diagnosis.startswith(("divided by", "a constant factor")) or "too large" in diagnosis
        )
        if factor and got.shape == expected.shape and _is_factor(got, expected):
            diagnosis = _factor_across_points(grad_fn, reference, at, names, name, diagnosis, tolerance)
        if diagnosis is None and got.shape == expected.shape and ref.method.startswith("the network"):
            diagnosis = _network_bug(reference, at, name, got, expected, tolerance)
        if got.shape != expected.shape:
            lines.append(f"  {name}: {diagnosis}")
            wrong_count += 1
            continue
        bad = np.abs(got - expected) > tolerance * np.abs(expected) + floor
        entries = [WrongEntry(name, tuple(int(i) for i in index), float(expected[index]), float(got[index]))
                   for index in zip(*np.nonzero(bad))] if got.ndim else ([WrongEntry(name, (), float(expected), float(got))] if bad else [])
        kept = []
        for entry in entries:
            kink = _kink(ref, at, name, entry.index)
            if kink is None:
                kept.append(entry)
            elif not kink[0] - floor <= entry.got <= kink[1] + floor:
                # Not a wrong value at a point where any value in the range is a right one.
                where = f"{name}[{', '.join(map(str, entry.index))}]" if entry.index else name
                lines.append(f"  {where}: not differentiable here; the subgradient range is [{kink[0]:.6g}, {kink[1]:.6g}], "
                             f"got {entry.got:.10g}, outside it")
                wrong_count += 1
        entries = kept
        wrong_count += len(entries)
        for entry in entries[:5]:
            where = f"{name}[{', '.join(map(str, entry.index))}]" if entry.index else name
            formula = ""
            if ref.formulas is not None and not entry.index:
                try:
                    formula = f" = {formula_language.to_formula(ref.formulas[name])}"
                except ValueError:  # a derivative the formula language cannot write (atan2, ...)
                    formula = f" = {ref.formulas[name]}"
            lines.append(
                f"  {where}: expected {entry.expected:.10g}{formula}, got {entry.got:.10g} "
                f"(abs. error {entry.absolute:.3g}, rel. error {entry.relative:.3g})"
                + (f"; {diagnosis}" if diagnosis and entry is entries[0] else "")
            )
        if len(entries) > 5:
            lines.append(f"  … and {len(entries) - 5} more wrong entries of {name}")
    if wrong_count:
        where = "" if drawn is None else f" at drawn point {drawn} ({_show_point(at)})"
        header = (
            f"gradient check failed{where}: {wrong_count} wrong entr{'y' if wrong_count == 1 else 'ies'} "
            f"(reference by {ref.method}; tolerance {tolerance:g} relative)"
        )
        raise AssertionError("\n".join([header, *lines]))


def _is_factor(got: np.ndarray, expected: np.ndarray) -> bool:
    mask = np.abs(expected) > 0
    if not mask.any():
        return False
    ratios = got[mask] / expected[mask]
    return bool(np.allclose(ratios, ratios.flat[0], rtol=1e-6))


def _factor_across_points(grad_fn, reference, at, names, name, diagnosis: str, tolerance: float) -> str | None:
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


def _show_point(at: Mapping[str, object]) -> str:
    parts = []
    for name, value in at.items():
        array = np.asarray(value, dtype=float)
        parts.append(f"{name}={float(array):.6g}" if array.ndim == 0 else f"{name}=array{array.shape}")
    return ", ".join(parts)
