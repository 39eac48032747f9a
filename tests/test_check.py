"""Hand-written gradients: right ones pass, planted bugs are caught with the right diagnosis."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from chainrule.check import assert_gradient, diagnose, reference_gradient

RNG = np.random.default_rng(0)
X = RNG.normal(size=(5, 3))
W = RNG.normal(size=(2, 3))
V = RNG.normal(size=3)
B = RNG.normal(size=2)


def mse(W, b):
    """Mean over the batch of ½‖Wx + b‖²: the reference loss of a linear layer."""
    Z = X @ W.T + b
    return 0.5 * (Z * Z).sum() / len(X)


def grad_mse(W, b):
    D = (X @ W.T + b) / len(X)
    return {"W": D.T @ X, "b": D.sum(axis=0)}


def softplus_sum(v):
    return np.log1p(np.exp(v)).sum()


def grad_softplus_sum(v):
    return 1 / (1 + np.exp(-v))


#: name -> (grad_fn, reference, at, diagnosis expected in the message or None for a correct one)
CASES = {
    "scalar right": (lambda x: 2 * x * np.cos(x**2), "sin(x**2)", {"x": 0.7}, None),
    "scalar missing 2": (lambda x: x * np.cos(x**2), "sin(x**2)", {"x": 0.7}, "a missing factor 2"),
    "scalar extra 2": (lambda x: 4 * x * np.cos(x**2), "sin(x**2)", {"x": 0.7}, "an extra factor 2"),
    "scalar sign": (lambda x: -2 * x * np.cos(x**2), "sin(x**2)", {"x": 0.7}, "a flipped sign"),
    "two variables right": (lambda x, y: {"x": y * np.exp(x * y), "y": x * np.exp(x * y)}, "exp(x*y)", {"x": 0.3, "y": -1.2}, None),
    "wrong variable": (lambda x, y: {"x": x * np.exp(x * y), "y": x * np.exp(x * y)}, "exp(x*y)", {"x": 0.3, "y": -1.2},
                       "the gradient with respect to y, not x"),
    "sympy reference": (lambda w: 3 * w**2, sp.Symbol("w", real=True) ** 3, {"w": 1.1}, None),
    "vector right": (grad_softplus_sum, softplus_sum, {"v": V}, None),
    "vector sign": (lambda v: -grad_softplus_sum(v), softplus_sum, {"v": V}, "a flipped sign"),
    "matrix right": (grad_mse, mse, {"W": W, "b": B}, None),
    "matrix transposed": (lambda W, b: {"W": (X.T @ ((X @ W.T + b) / len(X))), "b": grad_mse(W, b)["b"]}, mse,
                          {"W": W, "b": B}, "transposed: the shape is (3, 2)"),
    "bias not summed": (lambda W, b: {"W": grad_mse(W, b)["W"], "b": (X @ W.T + b) / len(X)}, mse, {"W": W, "b": B},
                        "not summed over the batch"),
    "batch mean twice": (lambda W, b: {k: v / len(X) for k, v in grad_mse(W, b).items()}, mse, {"W": W, "b": B},
                         "divided by 5 once too often"),
    "batch sum for mean": (lambda W, b: {k: v * len(X) for k, v in grad_mse(W, b).items()}, mse, {"W": W, "b": B},
                           "5 times too large"),
    "tiny bug": (lambda W, b: {"W": grad_mse(W, b)["W"] * (1 + 1e-6), "b": grad_mse(W, b)["b"]}, mse, {"W": W, "b": B},
                 "a constant factor 1"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_planted_bugs_are_caught_and_right_gradients_pass(name: str) -> None:
    grad_fn, reference, at, diagnosis = CASES[name]
    if diagnosis is None:
        assert_gradient(grad_fn, reference, at=at)
        return
    with pytest.raises(AssertionError) as caught:
        assert_gradient(grad_fn, reference, at=at)
    message = str(caught.value)
    assert message.startswith("gradient check failed: ")
    assert diagnosis in message, message


def test_the_message_names_entries_expected_and_got() -> None:
    def wrong(W, b):
        g = grad_mse(W, b)
        g["W"] = g["W"].copy()
        g["W"][1, 2] += 0.5
        return g

    with pytest.raises(AssertionError) as caught:
        assert_gradient(wrong, mse, at={"W": W, "b": B})
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("gradient check failed: 1 wrong entry (reference by complex step")
    want = grad_mse(W, B)["W"][1, 2]
    assert lines[1].startswith(f"  W[1, 2]: expected {want:.10g}, got {want + 0.5:.10g} (abs. error 0.5,")


def test_complex_step_is_exact_and_richardson_states_its_error() -> None:
    ref = reference_gradient(mse, {"W": W, "b": B}, ("W", "b"))
    assert ref.method == "complex step"
    assert np.abs(ref.values["W"] - grad_mse(W, B)["W"]).max() < 1e-14
    # abs() drops the imaginary part: the complex step would give 0, so differences are used.
    ref = reference_gradient(lambda v: np.abs(v).sum() + (v**3).sum(), {"v": V}, ("v",))
    assert ref.method == "Richardson"
    assert np.abs(ref.values["v"] - (np.sign(V) + 3 * V**2)).max() <= 10 * ref.error + 1e-9
    assert 0 < ref.error < 1e-8


def test_float32_gradients_get_a_float32_tolerance() -> None:
    def in_float32(x):
        return np.float32(2 * x * np.cos(x**2))

    assert_gradient(in_float32, "sin(x**2)", at={"x": 0.7})
    with pytest.raises(AssertionError, match="tolerance 1e-08"):
        assert_gradient(lambda x: float(in_float32(x)), "sin(x**2)", at={"x": 0.7})


def test_drawn_points_catch_a_bug_the_given_point_hides() -> None:
    # Right at x = 0 only: 2x and x agree there.
    with pytest.raises(AssertionError, match=r"(?s)at drawn point 1 \(x=.*a missing factor 2"):
        assert_gradient(lambda x: x, "x**2", at={"x": 0.0})
    assert_gradient(lambda x: x, "x**2", at={"x": 0.0}, points=0)


def test_a_kink_is_not_a_wrong_value() -> None:
    assert_gradient(lambda x: 0.0, "abs(x)", at={"x": 0.0}, points=0)
    assert_gradient(lambda x: 0.0, "relu(x)", at={"x": 0.0}, points=0)
    assert_gradient(lambda v: (v > 0).astype(float), lambda v: np.maximum(v, 0).sum(), at={"v": np.array([0.0, 1.0, -2.0])}, points=0)
    with pytest.raises(AssertionError, match=r"x: not differentiable here; the subgradient range is \[-1, 1\], got 2, outside it"):
        assert_gradient(lambda x: 2.0, "abs(x)", at={"x": 0.0}, points=0)


def test_diagnose_names_only_what_reproduces_the_values() -> None:
    expected = np.array([1.0, -2.0, 3.0])
    assert diagnose("v", expected * 2, expected, {}, 1e-8) == "an extra factor 2"
    assert diagnose("v", expected + [0, 0, 1], expected, {}, 1e-8) is None
    assert diagnose("v", np.zeros((3, 3)), expected, {}, 1e-8) == "wrong shape: (3, 3), expected (3,)"


def test_bad_arguments_are_clear() -> None:
    with pytest.raises(ValueError, match="wrt: 'z' is not one of the inputs in at"):
        assert_gradient(lambda x: x, "x**2", at={"x": 1.0}, wrt="z")
    with pytest.raises(ValueError, match="return a dict for the 2 variables x, y"):
        assert_gradient(lambda x, y: x, "x*y", at={"x": 1.0, "y": 2.0})


def test_a_factor_that_follows_an_input_is_a_missing_inner_derivative() -> None:
    # d/dw log(1 + e^{wx}) = x σ(wx); forgetting x at x = 2 looks like a factor ½ at this point only.
    with pytest.raises(AssertionError, match=r"a missing factor x \(an inner derivative of the chain rule\)"):
        assert_gradient(lambda w, x: 1 / (1 + np.exp(-w * x)), "log(1+exp(w*x))", at={"w": 0.5, "x": 2.0}, wrt="w")
    # A true constant factor stays constant from point to point.
    with pytest.raises(AssertionError, match="a missing factor 2"):
        assert_gradient(lambda w, x: 0.5 * x / (1 + np.exp(-w * x)), "log(1+exp(w*x))", at={"w": 0.5, "x": 2.0}, wrt="w")


GRADS = """
import numpy as np
def right(w, x):
    return x / (1 + np.exp(-w * x))
def wrong(w, x):
    return 1 / (1 + np.exp(-w * x))
"""


@pytest.mark.parametrize(
    ("target", "extra", "code", "out"),
    [
        ("grads_cli:right", [], 0, "right: grads_cli:right is the gradient of log(1+exp(w*x)) by w"),
        ("grads_cli:wrong", [], 1, "a missing factor x (an inner derivative of the chain rule)"),
        ("grads_cli:nope", [], 2, "grads_cli has no function 'nope'"),
        ("grads_cli", [], 2, "expected a module and a function name"),
        ("os;x:y", [], 2, "expected a module and a function name"),
        ("grads_cli:right", ["--wrt", "q"], 2, "--wrt: 'q' is not a variable of the formula (w, x)"),
    ],
)
def test_the_check_command(tmp_path, monkeypatch, capsys, target, extra, code, out) -> None:
    from chainrule.cli import main

    (tmp_path / "grads_cli.py").write_text(GRADS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(__import__("sys").modules, "grads_cli", raising=False)
    assert main(["check", target, "--against", "log(1+exp(w*x))", "--wrt", "w", "--at", "w=0.5,x=2", *extra]) == code
    captured = capsys.readouterr()
    assert out in (captured.out if code < 2 else captured.err)
    if code == 2:
        assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def _two_layer():
    from chainrule.network import Dense, Network

    net = Network(3, (Dense(4, "tanh"), Dense(2, "sigmoid")), "mse")
    rng = np.random.default_rng(3)
    at = {"W1": rng.normal(size=(4, 3)), "b1": rng.normal(size=4), "W2": rng.normal(size=(2, 4)), "b2": rng.normal(size=2),
          "X": rng.normal(size=(6, 3)), "Y": rng.uniform(size=(6, 2))}
    return net, at


def _backprop(W1, b1, W2, b2, X, Y, *, hidden_slope=True, output_slope=True, bias_sum=True):
    """A hand-written backprop of the two-layer network, with switches for classic bugs."""
    A1 = np.tanh(X @ W1.T + b1)
    A2 = 1 / (1 + np.exp(-(A1 @ W2.T + b2)))
    D2 = 2 * (A2 - Y) / Y.size
    if output_slope:
        D2 = D2 * A2 * (1 - A2)
    D1 = D2 @ W2
    if hidden_slope:
        D1 = D1 * (1 - A1**2)
    total = (lambda D: D.sum(axis=0)) if bias_sum else (lambda D: D)
    return {"W1": D1.T @ X, "b1": total(D1), "W2": D2.T @ A1, "b2": total(D2)}


@pytest.mark.parametrize(
    ("switch", "words"),
    [
        ({}, None),
        ({"hidden_slope": False}, "the activation derivative f′(z⁽¹⁾) is missing from δ⁽¹⁾"),
        ({"output_slope": False}, "the activation derivative f′(z⁽²⁾) is missing from δ⁽²⁾"),
        ({"bias_sum": False}, "not summed over the batch"),
    ],
)
def test_a_network_reference_names_network_bugs(switch, words) -> None:
    net, at = _two_layer()
    grad_fn = lambda **kw: _backprop(**kw, **switch)
    wrt = ("W1", "b1", "W2", "b2")
    if words is None:
        assert_gradient(grad_fn, net, at=at, wrt=wrt)
        return
    with pytest.raises(AssertionError) as caught:
        assert_gradient(grad_fn, net, at=at, wrt=wrt, points=0)
    assert words in str(caught.value)
    assert "reference by the network's derivation (generated code)" in str(caught.value)


def test_the_readme_example_runs_as_written(tmp_path) -> None:
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- pytest example[^>]*-->\n```python\n(.*?)```", readme, re.DOTALL).group(1)
    assert 6 <= len([line for line in block.splitlines() if line.strip()]) <= 14
    (tmp_path / "test_readme.py").write_text(block)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme.py"],
                         cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    # And the same test catches the bug it is there for.
    (tmp_path / "test_readme.py").write_text(block.replace("-y * x /", "-y /"))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme.py"],
                         cwd=tmp_path, capture_output=True, text=True, check=False)
    assert run.returncode == 1 and "gradient check failed" in run.stdout


def test_jacobians_of_vector_valued_functions() -> None:
    def f(x):
        return np.array([x[0] * x[1], x[0] ** 2, np.sin(x[1])])

    def jacobian(x):
        return np.array([[x[1], x[0]], [2 * x[0], 0.0], [0.0, np.cos(x[1])]])

    x = np.array([0.5, -1.2])
    assert_gradient(jacobian, f, at={"x": x})
    ref = reference_gradient(f, {"x": x}, ("x",))
    assert ref.method == "complex step" and ref.values["x"].shape == (3, 2)
    with pytest.raises(AssertionError, match=r"transposed: the shape is \(2, 3\), expected \(3, 2\)"):
        assert_gradient(lambda x: jacobian(x).T, f, at={"x": x}, points=0)
    with pytest.raises(AssertionError, match=r"x\[1, 0\]: expected 1, got 2"):
        assert_gradient(lambda x: jacobian(x) * [[1, 1], [2, 1], [1, 1]], f, at={"x": x}, points=0)


def test_every_given_point_is_checked() -> None:
    # x and 2x agree at 0 only: the second point shows the bug.
    with pytest.raises(AssertionError, match="a missing factor 2"):
        assert_gradient(lambda x: x, "x**2", at=[{"x": 0.0}, {"x": 1.0}], points=0)
    assert_gradient(lambda x: 2 * x, "x**2", at=[{"x": 0.0}, {"x": -3.0}, {"x": 5.0}])
    with pytest.raises(ValueError, match="at: give the inputs by name"):
        assert_gradient(lambda x: 2 * x, "x**2", at=[])


def test_drawn_points_keep_away_from_kinks() -> None:
    from chainrule.reference import kink_arguments as _kink_arguments
    from chainrule.reference import near_kink as _near_kink

    kinks = _kink_arguments("abs(x - 1) + max(x, y) + relu(y)", {"x": 1.0, "y": 0.5})
    assert _near_kink(kinks, {"x": 1.0, "y": 0.5})  # |x - 1| = 0
    assert _near_kink(kinks, {"x": 1.3, "y": 1.3})  # x = y
    assert not _near_kink(kinks, {"x": 1.3, "y": 0.5})
    assert _kink_arguments("x**2", {"x": 1.0}) == [] and _kink_arguments(np.sin, {"x": 1.0}) == []
    # The sign gradient of |x| is right away from 0; drawn points never land on the kink.
    assert_gradient(lambda x: np.sign(x), "abs(x)", at={"x": 0.0004}, points=20)


def test_a_bug_gradcheck_misses_is_caught() -> None:
    import torch

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x**2 * 1.001  # 0.1 % too large

    x = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64, requires_grad=True)
    # PyTorch's own checker, with its default tolerances (rtol 1e-3), lets it through...
    assert torch.autograd.gradcheck(lambda t: Cube.apply(t).sum(), (x,))

    def grad(v):
        t = torch.tensor(v, requires_grad=True)
        Cube.apply(t).sum().backward()
        return t.grad.numpy()

    # ...chainrule does not, and says what shape the error has.
    with pytest.raises(AssertionError, match="a constant factor 1.001"):
        assert_gradient(grad, lambda v: (v**3).sum(), at={"v": x.detach().numpy()})


# --- hand-written batch-norm backprop against a network with batch norm and dropout -------------


def _batch_norm_network():
    from chainrule.network import BatchNorm, Dense, Dropout, Network

    return Network(3, (Dense(4, "identity"), BatchNorm(), Dropout(0.5), Dense(2, "identity")), "mse")


def _hand_written(params, X, Y, M3, statistics_held_constant=False):
    """Batch-norm backprop as an engineer writes it; with the classic bug, μ and σ² treated as constants."""
    W1, b1, gamma, beta, W4, b4 = (params[k] for k in ("W1", "b1", "gamma2", "beta2", "W4", "b4"))
    n = X.shape[0]
    Z1 = X @ W1.T + b1
    mu, var = Z1.mean(axis=0), Z1.var(axis=0)
    r = 1 / np.sqrt(var + 1e-5)
    Xh = (Z1 - mu) * r
    A2 = Xh * gamma + beta
    A3 = A2 * M3
    out = A3 @ W4.T + b4
    D4 = 2 * (out - Y) / (n * Y.shape[1])
    G3 = D4 @ W4
    G2 = G3 * M3
    H = G2 * gamma
    if statistics_held_constant:
        G1 = H * r
    else:
        G1 = r * (H - H.mean(axis=0) - Xh * (H * Xh).mean(axis=0))
    return {"W1": G1.T @ X, "b1": G1.sum(axis=0), "gamma2": (G2 * Xh).sum(axis=0), "beta2": G2.sum(axis=0),
            "W4": D4.T @ A3, "b4": D4.sum(axis=0)}


@pytest.mark.parametrize("bug", [False, True], ids=["right", "statistics held constant"])
def test_hand_written_batch_norm_backprop_against_the_network(bug: bool) -> None:
    import chainrule

    net = _batch_norm_network()
    rng = np.random.default_rng(5)
    params = chainrule.compile(net).init_params(seed=1)
    params["gamma2"], params["beta2"] = 1 + 0.3 * rng.standard_normal(4), 0.2 * rng.standard_normal(4)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    M3 = (rng.random((6, 4)) < 0.5) / 0.5
    at = {**params, "X": X, "Y": Y, "M3": M3}

    def grads(W1, b1, gamma2, beta2, W4, b4, X, Y, M3):
        arrays = {"W1": W1, "b1": b1, "gamma2": gamma2, "beta2": beta2, "W4": W4, "b4": b4}
        return _hand_written(arrays, X, Y, M3, statistics_held_constant=bug)

    wrt = ("W1", "b1", "gamma2", "beta2", "W4", "b4")
    if not bug:
        assert_gradient(grads, net, at=at, wrt=wrt)
        return
    with pytest.raises(AssertionError, match=r"gradient check failed: \d+ wrong entries") as info:
        assert_gradient(grads, net, at=at, wrt=wrt)
    message = str(info.value)
    # The batch-norm layer's inputs are where the bug is: W1 is named, γ, β and W4 are right.
    assert "W1[" in message and "gamma2[" not in message and "W4[" not in message
    assert "the batch normalization backward of layer 2 treats μ⁽²⁾ and σ²⁽²⁾ as constants" in message


def test_a_network_reference_with_dropout_needs_its_masks() -> None:
    import chainrule

    net = _batch_norm_network()
    params = chainrule.compile(net).init_params(seed=1)
    at = {**params, "X": np.ones((2, 3)), "Y": np.ones((2, 2))}
    with pytest.raises(ValueError, match=r"needs its masks M3"):
        assert_gradient(lambda **kw: {}, net, at=at)


def _planted_cases():
    from test_kinds import KIND_NETWORKS

    from chainrule.kinds import KINDS
    from chainrule.layers import layer_rules

    cases = []
    for name, net in sorted(KIND_NETWORKS.items()):
        rules = layer_rules(net)
        for stage in net.stages:
            for words, broken in KINDS[stage.kind].planted_bugs(stage, rules):
                cases.append(pytest.param(net, stage.kind, words, broken, id=f"{name}-layer{stage.number}-{stage.kind}"))
    return cases


PLANTED = _planted_cases()


def test_every_kind_with_a_backward_to_get_wrong_plants_a_bug() -> None:
    from chainrule.kinds import KINDS

    assert {p.values[1] for p in PLANTED} == set(KINDS)


@pytest.mark.parametrize(("net", "kind", "words", "broken"), PLANTED)
def test_a_planted_bug_of_each_kind_is_named(net, kind: str, words: str, broken) -> None:
    import chainrule

    model = chainrule.compile(net)
    rng = np.random.default_rng(2)
    params = model.init_params(seed=3)
    for key in params:
        params[key] = params[key] + 0.3 * rng.standard_normal(np.shape(params[key]))
    X = rng.normal(size=(5, net.inputs))
    Y = rng.normal(size=(5, net.outputs))
    masks = {name: (rng.random(shape) < 0.6) / 0.6 for name, shape in net.leaf_shapes(5).items()}
    at = {**params, "X": X, "Y": Y, **masks}
    wrong = chainrule.compile(net, broken).loss_and_grad

    def user_gradients(**kw):
        return wrong({k: kw[k] for k in params}, kw["X"], kw["Y"], masks={k: kw[k] for k in masks} or None)[1]

    with pytest.raises(AssertionError, match="gradient check failed") as info:
        assert_gradient(user_gradients, net, at=at, wrt=tuple(params))
    assert words in str(info.value)
