"""The generated NumPy code: equal to PyTorch float64 autograd over the catalog, proved against the scalar derivation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import (
    TORCH_ACTIVATIONS,
    TORCH_LOSSES,
    TORCH_REGULARIZERS,
    assert_close,
    describe,
    random_network,
    random_targets,
)

from chainrule.catalog import ACTIVATIONS, LOSSES, REGULARIZERS
from chainrule.model import INIT_SCHEMES, compile
from chainrule.network import Dense, Network
from chainrule.train import batches

ELEMENTWISE = sorted(n for n, a in ACTIVATIONS.items() if a.elementwise)


def torch_batch(net: Network, params: dict, X: np.ndarray, Y: np.ndarray) -> tuple[float, dict]:
    """The batch-mean loss (plus the penalty) and its gradients by PyTorch float64 autograd."""
    tensors = {k: torch.tensor(np.asarray(v, dtype=float), requires_grad=True) for k, v in params.items()}
    a = torch.tensor(X)
    z = a
    for number, (layer, choice) in enumerate(zip(net.layers, net.activations), start=1):
        z = F.linear(a, tensors[f"W{number}"], tensors.get(f"b{number}"))
        values = {**choice.values, **{p.name: tensors[f"{p.name}{number}"] for p in choice.entry.parameters if p.learnable}}
        a = TORCH_ACTIVATIONS[choice.name](z, values)
    entry = net.loss_choice.entry
    output = z if entry.requires is not None else a
    y = torch.tensor(Y)
    per_row = [TORCH_LOSSES[entry.name](output[n], y[n], net.loss_choice.values) for n in range(len(X))]
    loss = torch.stack(per_row).mean()
    if net.regularizer_choice is not None:
        weights = [tensors[f"W{n}"] for n in range(1, len(net.layers) + 1)]
        loss = loss + TORCH_REGULARIZERS[net.regularizer_choice.name](weights, net.regularizer_choice.values)
    loss.backward()
    return float(loss.detach()), {k: t.grad.numpy() for k, t in tensors.items()}


def _cases() -> list[tuple[Network, int]]:
    """Random networks over the whole catalog, widths 1-64, with a batch size 1-128 for each."""
    cases = []
    seed = 0
    regularizers = [None, "l1", {"name": "l2", "coefficient": 0.05}]
    for name in sorted(ACTIVATIONS):
        for _ in range(3):
            seed += 1
            cases.append(random_network(seed, activation=name, max_width=64, max_parameters=6000,
                                        regularizer=regularizers[seed % 3], parameters=True))
    for name in sorted(LOSSES):
        for _ in range(3):
            seed += 1
            cases.append(random_network(seed, loss=name, max_width=64, max_parameters=6000,
                                        regularizer=regularizers[seed % 3], parameters=True))
    rng = np.random.default_rng(1)
    return [(net, int(rng.integers(1, 129))) for net in cases]


CASES = _cases()


def test_cases_cover_the_catalog_and_the_ranges() -> None:
    used = {c.name for net, _ in CASES for c in net.activations}
    assert used == set(ACTIVATIONS)
    assert {net.loss_choice.name for net, _ in CASES} == set(LOSSES)
    assert {net.regularizer_choice.name for net, _ in CASES if net.regularizer_choice} == set(REGULARIZERS)
    widths = [w for net, _ in CASES for w in net.sizes]
    assert min(widths) == 1 and max(widths) >= 48
    sizes = [b for _, b in CASES]
    assert min(sizes) <= 8 and max(sizes) >= 110


@pytest.mark.parametrize(("net", "batch"), CASES, ids=[f"{describe(n)}x{b}" for n, b in CASES])
def test_gradients_equal_pytorch(net: Network, batch: int) -> None:
    model = compile(net)
    rng = np.random.default_rng(batch)
    params = model.init_params(seed=batch, scheme="glorot_normal")
    params = {k: (v + rng.normal(0, 0.1, np.shape(v)) if k.startswith("b") else v) for k, v in params.items()}
    X = rng.normal(size=(batch, net.inputs))
    Y = random_targets(net, batch, rng)
    before = {k: v.copy() for k, v in params.items()}, X.copy(), Y.copy()
    loss, grads = model.loss_and_grad(params, X, Y)
    # The generated code works in place on its own arrays only.
    assert all(np.array_equal(params[k], v) for k, v in before[0].items())
    assert np.array_equal(X, before[1]) and np.array_equal(Y, before[2])
    want_loss, want = torch_batch(net, params, X, Y)
    assert abs(loss - want_loss) <= 1e-12 * max(1.0, abs(want_loss))
    assert model.loss(params, X, Y) == loss
    assert model.loss_and_predict(params, X, Y)[0] == loss
    assert np.array_equal(model.loss_and_predict(params, X, Y)[1], model.predict(params, X))
    assert set(grads) == set(want) == set(net.parameter_shapes())
    for name in want:
        assert grads[name].shape == np.shape(params[name])
        assert_close(grads[name], want[name], rtol=1e-12, floor=1.0)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_batch_of_an_epoch_equals_pytorch_including_the_last_partial_one(loss: str) -> None:
    net = random_network(100 + len(loss), loss=loss, max_width=16)
    model = compile(net)
    rng = np.random.default_rng(7)
    params = model.init_params(seed=3)
    X, Y = rng.normal(size=(100, net.inputs)), random_targets(net, 100, rng)
    parts = batches(100, 32, rng)
    assert [len(p) for p in parts] == [32, 32, 32, 4]
    for rows in parts:
        got_loss, got = model.loss_and_grad(params, X[rows], Y[rows])
        want_loss, want = torch_batch(net, params, X[rows], Y[rows])
        assert abs(got_loss - want_loss) <= 1e-12 * max(1.0, abs(want_loss))
        for name in want:
            assert_close(got[name], want[name], rtol=1e-12, floor=1.0)


def test_predict_gives_the_output_layer() -> None:
    net = Network(3, (Dense(4, "relu"), Dense(3, "softmax")), "cross_entropy")
    model = compile(net)
    params = model.init_params(seed=0, scheme="he_normal")
    X = np.random.default_rng(0).normal(size=(5, 3))
    P = model.predict(params, X)
    z = np.maximum(X @ params["W1"].T + params["b1"], 0) @ params["W2"].T + params["b2"]
    want = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert_close(P, want, rtol=1e-14, floor=1e-300)
    assert np.allclose(P.sum(axis=1), 1, atol=1e-15)


def test_softmax_cross_entropy_stays_finite_at_extreme_logits() -> None:
    net = Network(1, (Dense(3, "softmax"),), "cross_entropy")
    model = compile(net)
    params = {"W1": np.array([[1000.0], [-1000.0], [0.0]]), "b1": np.zeros(3)}
    loss, grads = model.loss_and_grad(params, np.array([[1.0]]), np.array([[0.0, 1.0, 0.0]]))
    assert loss == pytest.approx(2000.0, rel=1e-15)
    assert grads["W1"].tolist() == [[1.0], [-1.0], [0.0]]


@pytest.mark.parametrize("scheme", sorted(INIT_SCHEMES))
def test_init_schemes_have_their_scale(scheme: str) -> None:
    net = Network(400, (Dense(300, "relu"), Dense(2, "identity")), "mse")
    params = compile(net).init_params(seed=0, scheme=scheme)
    W = params["W1"]
    fan_in, fan_out = 400, 300
    want = {
        "normal": 0.01,
        "uniform": 1 / np.sqrt(fan_in) / np.sqrt(3),
        "glorot_uniform": np.sqrt(2 / (fan_in + fan_out)),
        "glorot_normal": np.sqrt(2 / (fan_in + fan_out)),
        "he_uniform": np.sqrt(2 / fan_in),
        "he_normal": np.sqrt(2 / fan_in),
        "standard_normal": 1.0,
    }[scheme]
    assert W.std() == pytest.approx(want, rel=0.02)
    assert abs(W.mean()) < 0.05 * want
    assert not params["b1"].any()
    assert np.array_equal(W, compile(net).init_params(seed=0, scheme=scheme)["W1"])


def test_init_keeps_prelu_alpha_and_refuses_unknown_schemes() -> None:
    model = compile(Network(2, (Dense(2, {"name": "prelu", "alpha": 0.3}), Dense(1, "identity")), "mse"))
    assert float(model.init_params()["alpha1"]) == 0.3
    with pytest.raises(ValueError, match="unknown init scheme 'xavier'; use normal, uniform"):
        model.init_params(scheme="xavier")


def test_generated_source_is_straight_line_numpy() -> None:
    model = compile(Network(64, (Dense(32, "tanh"), Dense(10, "softmax")), "cross_entropy"))
    body = model.source.split("def loss_and_grad")[1]
    assert "for " not in body and "while " not in body
    for line in ("Z1 = X @ W1.T", "Z1 += b1", "D2 = A2 - Y", "D2 /= n", "gW2 = D2.T @ A1", "gb2 = ones @ D2",
                 "G1 = D2 @ W2", "D1 = k_df1(Z1, A1)", "D1 *= G1", "gW1 = D1.T @ X"):
        assert f"    {line}\n" in body
    assert "G0" not in body  # nothing is computed for the inputs


def test_trace_returns_the_gradients_and_every_array_of_the_pass() -> None:
    from chainrule.network import BatchNorm, Residual

    net = Network(4, (Dense(3, "sigmoid"), BatchNorm(), Residual((Dense(3, "tanh"),)), Dense(2, "softmax")), "cross_entropy")
    model = compile(net)
    params = model.init_params(seed=1)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(5, 4)), np.eye(2)[[0, 1, 0, 1, 1]]
    loss, grads, arrays = model.trace(params, X, Y)
    want_loss, want = model.loss_and_grad(params, X, Y)
    assert loss == want_loss
    assert all(np.array_equal(grads[k], want[k]) for k in want)
    # D1 = ∂L/∂Z⁽¹⁾ of the batch mean is f′(Z1) ⊙ G1, and Z1 is the first layer's input sum.
    np.testing.assert_allclose(arrays["Z1"], X @ params["W1"].T + params["b1"], rtol=1e-15)
    np.testing.assert_allclose(arrays["D1"], model.kernels["k_df1"](arrays["Z1"], arrays["A1"]) * arrays["G1"], rtol=1e-15)
    np.testing.assert_allclose(grads["W1"], arrays["D1"].T @ X, rtol=1e-14)
    assert "W1" not in arrays and {"A4", "G2", "Xh2"} <= set(arrays)
