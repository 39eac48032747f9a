"""The planted-bug corpus: every diagnosis in scalar, vector, matrix and network form.

Each bug is a correct gradient with one classic mistake applied; the check must fail and name
that mistake, and the correct version must pass.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.check import assert_gradient
from chainrule.network import Dense, Network

N = 5
RNG = np.random.default_rng(7)
X = RNG.normal(size=(N, 3))
T = RNG.normal(size=(N, 2))


# --- four correct gradients and their references ------------------------------------------------

def scalar_grad(w, x):
    return {"w": x * np.cos(w * x), "x": w * np.cos(w * x)}


SCALAR = (scalar_grad, "sin(w*x)", {"w": 0.4, "x": 1.7})


def vector_loss(v):
    """Mean over a batch of ½(xᵀv)²: a vector parameter."""
    return 0.5 * ((X @ v) ** 2).sum() / N


def vector_grad(v):
    return {"v": X.T @ (X @ v) / N}


VECTOR = (vector_grad, vector_loss, {"v": RNG.normal(size=3)})


def matrix_loss(W, b):
    """Mean over the batch of ½‖Wx + b − t‖²: a linear layer."""
    R = X @ W.T + b - T
    return 0.5 * (R * R).sum() / N


def matrix_grad(W, b):
    D = (X @ W.T + b - T) / N
    return {"W": D.T @ X, "b": D.sum(axis=0)}


MATRIX = (matrix_grad, matrix_loss, {"W": RNG.normal(size=(2, 3)), "b": RNG.normal(size=2)})

NET = Network(3, (Dense(3, "tanh"), Dense(2, "sigmoid")), "mse")


def net_grad(W1, b1, W2, b2, X, Y, hidden_slope=True, output_slope=True, bias_sum=True):
    A1 = np.tanh(X @ W1.T + b1)
    A2 = 1 / (1 + np.exp(-(A1 @ W2.T + b2)))
    D2 = 2 * (A2 - Y) / Y.size * (A2 * (1 - A2) if output_slope else 1)
    D1 = (D2 @ W2) * ((1 - A1**2) if hidden_slope else 1)
    total = (lambda D: D.sum(axis=0)) if bias_sum else (lambda D: D)
    return {"W1": D1.T @ X, "b1": total(D1), "W2": D2.T @ A1, "b2": total(D2)}


NETWORK = (net_grad, NET, {"W1": RNG.normal(size=(3, 3)), "b1": RNG.normal(size=3), "W2": RNG.normal(size=(2, 3)),
                           "b2": RNG.normal(size=2), "X": X, "Y": RNG.uniform(size=(N, 2))})
FORMS = {"scalar": SCALAR, "vector": VECTOR, "matrix": MATRIX, "network": NETWORK}
WRT = {"scalar": ("w", "x"), "vector": ("v",), "matrix": ("W", "b"), "network": ("W1", "b1", "W2", "b2")}
FIRST = {"scalar": "w", "vector": "v", "matrix": "W", "network": "W1"}


def planted(form: str, change):
    """The form's correct gradient with ``change(name, value, inputs) -> value`` applied to its first variable."""
    grad, _, _ = FORMS[form]

    def wrong(**inputs):
        out = dict(grad(**inputs))
        name = FIRST[form]
        out[name] = change(name, np.asarray(out[name], dtype=float), inputs, out)
        return out

    return wrong


# --- the corpus -------------------------------------------------------------------------------------

BUGS = []
for form in FORMS:
    BUGS += [
        (form, "missing factor 2", lambda n, g, i, o: g / 2, "a missing factor 2"),
        (form, "extra factor 2", lambda n, g, i, o: g * 2, "an extra factor 2"),
        (form, "flipped sign", lambda n, g, i, o: -g, "a flipped sign"),
        (form, "relative 1e-6", lambda n, g, i, o: g * (1 + 1e-6), "a constant factor 1"),
    ]
for form in ("vector", "matrix", "network"):
    BUGS += [
        (form, "batch mean twice", lambda n, g, i, o: g / N, f"divided by {N} once too often"),
        (form, "sum for mean", lambda n, g, i, o: g * N, f"{N} times too large"),
        (form, "wrong shape", lambda n, g, i, o: np.concatenate([np.ravel(g), [0.0]]), "wrong shape"),
    ]
BUGS += [
    ("scalar", "wrong variable", lambda n, g, i, o: o["x"], "the gradient with respect to x, not w"),
    ("scalar", "missing inner derivative", lambda n, g, i, o: np.cos(i["w"] * i["x"]),
     "a missing factor x (an inner derivative of the chain rule)"),
    ("matrix", "transposed", lambda n, g, i, o: g.T, "transposed: the shape is (3, 2), expected (2, 3)"),
    ("network", "transposed", lambda n, g, i, o: g.T, "transposed: got[i, j] is expected[j, i]"),
]

BUGS += [
    ("vector", "bias not summed", None, "not summed over the batch"),
    ("network", "bias not summed", None, "not summed over the batch"),
    ("network", "missing hidden activation derivative", None, "the activation derivative f′(z⁽¹⁾) is missing from δ⁽¹⁾"),
    ("network", "missing output activation derivative", None, "the activation derivative f′(z⁽²⁾) is missing from δ⁽²⁾"),
]


def _special(form: str, name: str):
    if form == "network":
        switch = {"bias not summed": {"bias_sum": False}, "missing hidden activation derivative": {"hidden_slope": False},
                  "missing output activation derivative": {"output_slope": False}}[name]
        return lambda **i: net_grad(**i, **switch)
    # vector, bias not summed: a per-example gradient of a batch-mean bias, returned unsummed
    return lambda **i: {"v": X * (X @ i["v"])[:, None] / N}


def test_the_corpus_is_large_and_covers_every_diagnosis_in_every_form() -> None:
    assert len(BUGS) >= 30
    assert {form for form, *_ in BUGS} == set(FORMS)
    words = " ".join(w for *_, w in BUGS)
    for diagnosis in ("transposed", "missing factor 2", "extra factor 2", "once too often", "flipped sign",
                      "activation derivative", "with respect to", "not summed over the batch", "wrong shape"):
        assert diagnosis in words


@pytest.mark.parametrize(("form", "name", "change", "words"), BUGS, ids=[f"{f}-{n}" for f, n, *_ in BUGS])
def test_a_planted_bug_is_caught_and_named(form, name, change, words) -> None:
    _, reference, at = FORMS[form]
    grad = _special(form, name) if change is None else planted(form, change)
    with pytest.raises(AssertionError) as caught:
        assert_gradient(grad, reference, at=at, wrt=WRT[form])
    assert words in str(caught.value), str(caught.value)


@pytest.mark.parametrize("form", list(FORMS))
def test_the_correct_version_passes(form) -> None:
    grad, reference, at = FORMS[form]
    assert_gradient(grad, reference, at=at, wrt=WRT[form])
