"""NumPy forms of chainrule's named functions that stay finite where textbook formulas overflow.

``NUMPY`` is handed to ``lambdify`` beside NumPy itself: each name of
``chainrule.functions`` (and erf, which NumPy lacks) maps to an implementation that is
exact to rounding and never overflows on the way (σ(-1000) = 0, softplus(1000) = 1000,
log cosh(1000) = 1000 - log 2).

>>> float(NUMPY["sigmoid"](-1000.0)), float(NUMPY["softplus"](1000.0))
(0.0, 1000.0)
"""

from __future__ import annotations

import math

import numpy as np


def _sigmoid(x):
    # exp(-log(1 + e^-x)) never overflows: logaddexp is exact to rounding on both sides.
    return np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=float)))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _logsumexp(*xs):
    arrays = np.broadcast_arrays(*[np.asarray(x, dtype=float) for x in xs])
    top = np.max(arrays, axis=0)
    # Shifting by the largest argument keeps every exp in [0, 1]; a row of -inf stays -inf.
    shift = np.where(np.isfinite(top), top, 0.0)
    return shift + np.log(sum(np.exp(a - shift) for a in arrays))


def _xlogy(x, y):
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x * np.log(np.where(x == 0, 1.0, y)))


def _xdivy(x, y):
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0.0, x / np.where(x == 0, 1.0, y))


def _logcosh(x):
    # log cosh x = |x| + log(1 + e^-2|x|) - log 2: no cosh of a large number is taken.
    a = np.abs(np.asarray(x, dtype=float))
    return a + np.logaddexp(0.0, -2.0 * a) - np.log(2.0)


def _relu(x):
    return np.maximum(np.asarray(x, dtype=float), 0.0)


def _dirac(x, order=0):
    # δ(x) (and its derivatives) are 0 away from 0 and have no value at 0.
    x = np.asarray(x, dtype=float)
    return np.where(x == 0, np.nan, 0.0)


_erf = np.vectorize(math.erf, otypes=[float])

#: NumPy implementations for ``lambdify``: the named functions above, and erf (NumPy has none).
NUMPY = {
    "sigmoid": _sigmoid,
    "softplus": _softplus,
    "logsumexp": _logsumexp,
    "xlogy": _xlogy,
    "xdivy": _xdivy,
    "logcosh": _logcosh,
    "erf": _erf,
    "relu": _relu,
    "DiracDelta": _dirac,
}
