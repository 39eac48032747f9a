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

from . import expr as formula_language
from .diagnose import diagnose, factor_across_points, network_bug
from .reference import (
    Reference,
    kink_arguments,
    near_kink,
    one_sided,
    reference_gradient,
)

__all__ = ["assert_gradient", "diagnose", "reference_gradient"]

#: Relative tolerance of a float64 check against an exact reference: a bug of relative size
#: 1e-6 is caught, and rounding in any reasonable float64 gradient (≈ 1e-13) passes.
RTOL_FLOAT64 = 1e-8
#: float32 carries about 7 digits; its rounding alone reaches 1e-5 on long sums.
RTOL_FLOAT32 = 1e-4


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
    list of points (each checked); besides them, ``points`` more are drawn from ``seed``
    near the first (the ``wrt`` variables moved, the other inputs kept); a drawn point where
    the reference is not finite is skipped.
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
    kinks = kink_arguments(reference, at)
    for number in range(1, points + 1):
        for _ in range(20):  # redraw a point that falls on (or next to) a kink
            moved = dict(at)
            for name in names:
                value = np.asarray(at[name], dtype=float)
                moved[name] = value + 0.25 * np.maximum(1.0, np.abs(value)) * rng.uniform(-1, 1, value.shape)
            if not near_kink(kinks, moved):
                break
        _check_at(grad_fn, reference, moved, names, rtol, number)


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
        bad = np.abs(got - expected) > tolerance * np.abs(expected) + floor if got.shape == expected.shape else None
        if bad is not None and not bad.any():
            continue  # right: nothing to diagnose, and no probing of other points

        def refine(words: str, name=name) -> str | None:
            return factor_across_points(grad_fn, reference, at, names, name, words, tolerance)

        diagnosis = diagnose(name, got, expected, ref.values, tolerance, refine)
        if diagnosis is None and bad is not None and ref.method.startswith("the network"):
            diagnosis = network_bug(reference, at, name, got, expected, tolerance)
        if bad is None:
            lines.append(f"  {name}: {diagnosis}")
            wrong_count += 1
            continue
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


def _show_point(at: Mapping[str, object]) -> str:
    parts = []
    for name, value in at.items():
        array = np.asarray(value, dtype=float)
        parts.append(f"{name}={float(array):.6g}" if array.ndim == 0 else f"{name}=array{array.shape}")
    return ", ".join(parts)
