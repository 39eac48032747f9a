"""A derivative's value at a point against finite differences: the differences, the breaks met, the verdict.

The check (``chainrule.explain``) takes fourth-order central differences of the function a
derivative differentiates (the formula, or a first derivative for a Hessian entry) at
shrinking steps, and tests each stencil against the formula's breaks (``chainrule.kinks``:
relu, |·|, max and min bend, step, H and sign jump). A stencil that reaches across a break
measures the break, not the derivative, so it never decides: a smaller step clear of it
does, and on the break itself the one-sided differences do. This module holds what the
check found and decides from it; every difference is kept as it is, never capped. No NumPy,
so documents render without it.

>>> verdict(0.0, [Difference(1e-3, 3.3e-4, straddles=True)], True, (0.0, 0.0), 1e-6)
'sides agree'
>>> verdict(0.0, [Difference(1e-3, 0.5, straddles=True)], True, (0.0, 1.0), 1e-6)
'between sides'
>>> verdict(3.0, [Difference(1e-3, 3.000001)], False, None, 1e-6)
'agrees'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

from .kinks import Break

#: A derivative whose relative difference from a central difference clear of every break exceeds this fails.
TOLERANCE = 1e-6
#: Second-order one-sided differences (step 1e-5) are good to about 1e-10; this leaves room for rounding.
ONE_SIDED_TOLERANCE = 1e-5
#: The central differences' steps, as fractions of max(1, |v|): the first that stays in the domain is
#: the one a reader is shown; smaller ones get clear of a nearby break or a domain's edge.
STEPS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
#: The one-sided differences' step on a break, as a fraction of max(1, |v|).
ONE_SIDED_STEP = 1e-5


@dataclass(frozen=True)
class Difference:
    """A fourth-order central difference and its step; ``straddles`` when its stencil reaches across a break."""

    step: float
    value: float
    straddles: bool = False


@dataclass(frozen=True)
class Kink:
    """A break (``chainrule.kinks``) the check meets: its argument is 0 at the point, or within the stencil."""

    node: sp.Expr
    argument: sp.Expr
    #: The argument's value at the point: 0 on the break.
    value: float
    info: Break


#: What a check concluded, one word each; a document writes a sentence for each.
AGREES = "agrees"  # a central difference clear of every break agrees within the tolerance
DIFFERS = "differs"  # ... and disagrees: a bug
SIDES_AGREE = "sides agree"  # on a break, both one-sided differences agree with the value
BETWEEN_SIDES = "between sides"  # on a kink: no derivative; the value lies between the one-sided slopes
OUTSIDE_SIDES = "outside sides"  # on a break, the value lies outside the one-sided differences: fails too
UNCHECKED = "unchecked"  # every stencil left the formula's domain


@dataclass(frozen=True)
class Check:
    """A derivative's value against finite differences of the function it differentiates.

    Central differences clear of the formula's breaks (relu, |·|, max, step, …) decide; on
    a break, where no central difference is clear, the one-sided differences do. Every
    difference is reported as it is: nothing is capped at the tolerance.
    """

    derived: float
    #: Central differences inside the formula's domain, largest step first.
    differences: tuple[Difference, ...] = ()
    #: The breaks the largest stencil meets, in the formula's reading order.
    kinks: tuple[Kink, ...] = ()
    #: True when the point sits on a break: every central difference straddles it.
    at_kink: bool = False
    #: (left, right) one-sided differences, taken where the check meets a break.
    one_sided: tuple[float, float] | None = None
    verdict: str = UNCHECKED
    #: Below this size a derivative counts as 0 when relative differences are taken.
    floor: float = 1e-6
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        """False for a value the differences contradict; a kink's convention (between the sides) passes."""
        return self.verdict not in (DIFFERS, OUTSIDE_SIDES)

    @property
    def unchecked(self) -> bool:
        return self.verdict == UNCHECKED

    @property
    def central(self) -> Difference | None:
        """The central difference a reader is shown: the closest one clear of every break, else the first."""
        clear = [d for d in self.differences if not d.straddles]
        if clear:
            return min(clear, key=lambda d: abs(d.value - self.derived))
        return self.differences[0] if self.differences else None

    @property
    def straddling(self) -> Difference | None:
        """The first central difference whose stencil reaches across a break: what a naive check would report."""
        return next((d for d in self.differences if d.straddles), None)

    @property
    def estimate(self) -> float:
        return self.central.value if self.central else math.nan

    @property
    def step(self) -> float:
        return self.central.step if self.central else math.nan

    @property
    def absolute_error(self) -> float:
        return abs(self.estimate - self.derived)

    @property
    def relative_error(self) -> float:
        """|estimate − value| / max(|estimate|, |value|, floor): the real difference of the central difference shown."""
        return _relative(self.estimate, self.derived, self.floor)

    @property
    def kink(self) -> tuple[float, float] | None:
        """The one-sided slopes on a break where they differ: the formula has no derivative here."""
        if self.at_kink and self.one_sided is not None and not _close(*self.one_sided, self.floor, ONE_SIDED_TOLERANCE):
            return self.one_sided
        return None


def _relative(estimate: float, derived: float, floor: float) -> float:
    return abs(estimate - derived) / max(abs(estimate), abs(derived), floor)


def _close(a: float, b: float, floor: float, tolerance: float) -> bool:
    return _relative(a, b, floor) <= tolerance


def verdict(derived: float, differences: Sequence[Difference], at_kink: bool, one_sided: tuple[float, float] | None, floor: float) -> str:
    """What the differences say of ``derived``: one of the verdicts above."""
    if not at_kink:
        clear = [d for d in differences if not d.straddles]
        best = min(_relative(d.value, derived, floor) for d in clear)
        return AGREES if best <= TOLERANCE else DIFFERS
    if one_sided is None:
        return UNCHECKED
    left, right = one_sided
    if _close(left, right, floor, ONE_SIDED_TOLERANCE):
        return SIDES_AGREE if _close(derived, (left + right) / 2, floor, ONE_SIDED_TOLERANCE) else OUTSIDE_SIDES
    low, high = min(left, right), max(left, right)
    margin = ONE_SIDED_TOLERANCE * max(abs(low), abs(high), floor)
    return BETWEEN_SIDES if low - margin <= derived <= high + margin else OUTSIDE_SIDES
