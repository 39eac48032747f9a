"""from_torch: a torch nn.Sequential as a Network whose compiled gradients equal torch's autograd."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from chainrule.catalog import LOSSES
from chainrule.from_torch import TORCH_MODULES, from_torch
from chainrule.model import compile

Tensor = torch.Tensor

#: Modules of each TORCH_MODULES entry, every supported setting at least once; a new entry
#: without examples fails test_every_entry_has_examples.
VARIANTS: dict[str, list[Callable[[], nn.Module]]] = {
    "Identity": [nn.Identity],
    "Sigmoid": [nn.Sigmoid],
    "Tanh": [nn.Tanh],
    "ReLU": [nn.ReLU],
    "LeakyReLU": [nn.LeakyReLU, lambda: nn.LeakyReLU(0.2)],
    "PReLU": [nn.PReLU, lambda: nn.PReLU(init=-0.3)],
    "ELU": [nn.ELU, lambda: nn.ELU(alpha=0.5)],
    "SELU": [nn.SELU],
    "Softplus": [nn.Softplus],
    "SiLU": [nn.SiLU],
    "GELU": [nn.GELU, lambda: nn.GELU(approximate="tanh")],
    "Softsign": [nn.Softsign],
    "Hardtanh": [nn.Hardtanh],
    "Softmax": [lambda: nn.Softmax(dim=-1), lambda: nn.Softmax(dim=1)],
}
CASES = [(name, i) for name in sorted(VARIANTS) for i in range(len(VARIANTS[name]))]


def _hinge(out: Tensor, y: Tensor) -> Tensor:
    return torch.mean(torch.relu(1 - y * out))


def _nll(probabilities: Tensor, y: Tensor) -> Tensor:
    return -(y * torch.log(probabilities)).sum(dim=1).mean()


def _half_sse(out: Tensor, y: Tensor) -> Tensor:
    return 0.5 * nn.MSELoss(reduction="sum")(out, y) / len(y)


#: Each chainrule loss as torch computes it, batch-mean included: (chainrule loss, torch
#: loss of the module's output, module appended to the output layer). Where nn has the
#: loss its default reduction is the chainrule mean; the rest are written out.
TORCH_LOSSES: dict[str, tuple[object, Callable[[Tensor, Tensor], Tensor], nn.Module | None]] = {
    "half_sse": ("half_sse", _half_sse, None),
    "mse": ("mse", nn.MSELoss(), None),
    "mae": ("mae", nn.L1Loss(), None),
    "huber": ({"name": "huber", "delta": 0.5}, nn.HuberLoss(delta=0.5), None),
    "bce": ("bce", nn.BCELoss(), nn.Sigmoid()),
    "bce_logits": ("bce_logits", nn.BCEWithLogitsLoss(), None),
    # no softmax in the module: from_torch gives the last layer the softmax CrossEntropyLoss applies
    "cross_entropy": ("cross_entropy", nn.CrossEntropyLoss(), None),
    "hinge": ("hinge", _hinge, None),
    "squared_hinge": ("squared_hinge", lambda out, y: torch.mean(torch.relu(1 - y * out) ** 2), None),
    "log_cosh": ("log_cosh", lambda out, y: torch.mean(torch.log(torch.cosh(out - y))), None),
}


def targets(loss: str, rows: int, outputs: int, rng: np.random.Generator) -> np.ndarray:
    kind = LOSSES[loss].targets
    if kind == "unit":
        return rng.uniform(0.0, 1.0, (rows, outputs))
    if kind == "distribution":
        return rng.dirichlet(np.ones(outputs), rows)
    if kind == "sign":
        return rng.choice([-1.0, 1.0], (rows, outputs))
    return rng.normal(size=(rows, outputs))


def torch_parameters(module: nn.Sequential) -> dict[str, Tensor]:
    """The module's parameters under chainrule's names, written out independently of from_torch."""
    named: dict[str, Tensor] = {}
    number = 0
    for child in module:
        if isinstance(child, nn.Linear):
            number += 1
            named[f"W{number}"] = child.weight
            if child.bias is not None:
                named[f"b{number}"] = child.bias
        elif isinstance(child, nn.PReLU):
            named[f"alpha{number}"] = child.weight
    return named


def torch_loss_and_grad(module: nn.Sequential, loss_fn, X: np.ndarray, Y) -> tuple[float, dict[str, np.ndarray]]:
    module = module.double()
    module.zero_grad()
    loss = loss_fn(module(torch.tensor(X)), Y if isinstance(Y, Tensor) else torch.tensor(Y))
    loss.backward()
    named = torch_parameters(module)
    return float(loss.detach()), {k: p.grad.numpy().reshape(p.shape if k[0] != "a" else ()).copy() for k, p in named.items()}


def largest_relative_difference(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> float:
    """max over parameters of max |got − want| / max |want|."""
    assert got.keys() == want.keys()
    return max(float(np.abs(got[k] - want[k]).max() / max(np.abs(want[k]).max(), 1e-300)) for k in want)


def compare(module: nn.Sequential, loss, loss_fn, seed: int = 0, rows: int = 7, **kwargs) -> float:
    """Check the loss to 1e-12 and return the largest relative gradient difference, torch vs chainrule."""
    net, params = from_torch(module, loss=loss, **kwargs)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, net.inputs))
    Y = targets(net.loss_choice.name, rows, net.outputs, rng)
    want_loss, want = torch_loss_and_grad(module, loss_fn, X, Y)
    got_loss, got = compile(net).loss_and_grad(params, X, Y)
    assert got_loss == pytest.approx(want_loss, rel=1e-12, abs=0)
    return largest_relative_difference(got, want)


def test_every_entry_has_examples() -> None:
    assert set(VARIANTS) == set(TORCH_MODULES)
    assert {type(make()).__name__ for name in VARIANTS for make in VARIANTS[name]} == set(TORCH_MODULES)


@pytest.mark.parametrize(("name", "variant"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_each_module_matches_torch_autograd(name: str, variant: int) -> None:
    torch.manual_seed(variant)
    activation = VARIANTS[name][variant]()
    if name == "Softmax":
        module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3), activation)
    else:
        module = nn.Sequential(nn.Linear(3, 4), activation, nn.Linear(4, 2, bias=variant == 0))
    assert compare(module, "mse", nn.MSELoss(), seed=variant) < 1e-12


@pytest.mark.parametrize("loss", sorted(TORCH_LOSSES))
def test_each_loss_matches_torch_autograd(loss: str) -> None:
    assert set(TORCH_LOSSES) == set(LOSSES)
    torch.manual_seed(1)
    output = TORCH_LOSSES[loss][2]
    layers = [nn.Linear(3, 5), nn.SiLU(), nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)]
    module = nn.Sequential(*layers, *([output] if output is not None else []))
    assert compare(module, *TORCH_LOSSES[loss][:2], seed=2, rows=9) < 1e-12


def test_a_deeper_network_with_every_kind_of_layer() -> None:
    torch.manual_seed(3)
    module = nn.Sequential(
        nn.Linear(4, 6), nn.PReLU(init=0.1), nn.Linear(6, 5, bias=False), nn.Linear(5, 5), nn.ELU(0.7),
        nn.Linear(5, 4), nn.GELU(approximate="tanh"), nn.Linear(4, 3), nn.Softmax(dim=1),
    )
    net, params = from_torch(module, loss="bce", inputs=4)
    assert [layer.activation if isinstance(layer.activation, str) else layer.activation["name"] for layer in net.layers] == [
        "prelu", "identity", "elu", "gelu_tanh", "softmax"
    ]
    assert [layer.bias for layer in net.layers] == [True, False, True, True, True]
    assert params["alpha1"].shape == () and params["alpha1"] == pytest.approx(0.1)
    assert all(value.dtype == np.float64 for value in params.values())
    assert compare(module, "bce", nn.BCELoss(), seed=4) < 1e-12


def test_cross_entropy_with_class_indices() -> None:
    torch.manual_seed(5)
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3))
    net, params = from_torch(module, loss="cross_entropy")
    assert net.layers[-1].activation == "softmax"
    rng = np.random.default_rng(5)
    X = rng.normal(size=(8, 3))
    classes = rng.integers(0, 3, 8)
    want_loss, want = torch_loss_and_grad(module, nn.CrossEntropyLoss(), X, torch.tensor(classes))
    got_loss, got = compile(net).loss_and_grad(params, X, np.eye(3)[classes])
    assert got_loss == pytest.approx(want_loss, rel=1e-12, abs=0)
    assert largest_relative_difference(got, want) < 1e-12


def test_an_explicit_softmax_is_kept_for_cross_entropy() -> None:
    """With nn.Softmax in the module, cross-entropy is taken of its probabilities: torch's NLL of their log."""
    torch.manual_seed(6)
    module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3), nn.Softmax(dim=-1))
    assert compare(module, "cross_entropy", _nll, seed=6) < 1e-12


# --- a custom autograd.Function, checked against what it is meant to compute --------------------


class SigmoidFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:
        s = 1 / (1 + torch.exp(-z))
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (s,) = ctx.saved_tensors
        return grad * s * (1 - s)


class WrongSigmoidFunction(SigmoidFunction):
    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (s,) = ctx.saved_tensors
        return grad * s  # the (1 - s) factor is missing


class MySigmoid(nn.Module):
    def __init__(self, function: type[torch.autograd.Function]) -> None:
        super().__init__()
        self.function = function

    def forward(self, z: Tensor) -> Tensor:
        return self.function.apply(z)


@pytest.mark.parametrize(("function", "right"), [(SigmoidFunction, True), (WrongSigmoidFunction, False)])
def test_a_custom_function_is_checked_against_the_activation_it_means(function, right: bool) -> None:
    torch.manual_seed(7)
    module = nn.Sequential(nn.Linear(3, 4), MySigmoid(function), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"module 1 \(MySigmoid\) is not supported"):
        from_torch(module)
    difference = compare(module, "mse", nn.MSELoss(), seed=7, custom={"MySigmoid": "sigmoid"})
    if right:
        assert difference < 1e-12
    else:
        assert difference > 1e-3


def test_custom_takes_an_activation_with_parameters() -> None:
    class Leaky(nn.Module):
        def forward(self, z: Tensor) -> Tensor:
            return torch.where(z > 0, z, 0.2 * z)

    torch.manual_seed(8)
    module = nn.Sequential(nn.Linear(2, 3), Leaky(), nn.Linear(3, 1))
    net, _ = from_torch(module, custom={"Leaky": {"name": "leaky_relu", "alpha": 0.2}})
    assert net.activations[0].values == {"alpha": 0.2}
    assert compare(module, "mse", nn.MSELoss(), seed=8, custom={"Leaky": {"name": "leaky_relu", "alpha": 0.2}}) < 1e-12


def test_softplus_differs_from_torch_only_past_its_threshold() -> None:
    module = nn.Sequential(nn.Linear(1, 1), nn.Softplus()).double()
    with torch.no_grad():
        module[0].weight.fill_(1.0)
        module[0].bias.fill_(0.0)
    net, params = from_torch(module)
    X = np.array([[-3.0], [0.5], [19.0], [20.5], [30.0]])
    got = compile(net).predict(params, X)
    want = module(torch.tensor(X)).detach().numpy()
    assert np.abs(got - want)[:3].max() <= 1e-15 * np.abs(want).max()
    assert 0 < np.abs(got - want)[3, 0] / want[3, 0] < 1e-9  # log(1 + e^20.5) vs torch's 20.5


# --- what from_torch refuses, in one line ------------------------------------------------------


REFUSED = [
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Tanh(), nn.Linear(3, 1)), r"module 2 \(Tanh\): a second activation"),
    (lambda: nn.Sequential(nn.ReLU(), nn.Linear(2, 1)), r"module 0 \(ReLU\): an activation before the first nn.Linear"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Dropout(), nn.Linear(3, 1)), r"module 1 \(Dropout\) is not supported; .*Sigmoid"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.ReLU6()), r"module 1 \(ReLU6\) is not supported"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=-1), nn.Linear(3, 2)), r"module 1 \(Softmax\): softmax .* last"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=0)), r"module 1 \(Softmax\): dim=0"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Softplus(beta=2)), r"module 1 \(Softplus\): beta=2"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Hardtanh(0, 1)), r"module 1 \(Hardtanh\): min_val=0"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.PReLU(3)), r"module 1 \(PReLU\): num_parameters=3"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Linear(4, 1)), r"module 1 \(Linear\): takes 4 inputs but gets 3"),
    (lambda: nn.Sequential(), r"at least one nn.Linear"),
]


@pytest.mark.parametrize(("make", "message"), REFUSED, ids=[m for _, m in REFUSED])
def test_unsupported_modules_are_named_in_one_line(make, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        from_torch(make())
    assert "\n" not in str(info.value)


def test_other_refusals() -> None:
    with pytest.raises(ValueError, match=r"module 0 \(Linear\): takes 2 inputs but gets 5"):
        from_torch(nn.Sequential(nn.Linear(2, 1)), inputs=5)
    with pytest.raises(ValueError, match="cross_entropy is defined on softmax outputs; the module ends with sigmoid"):
        from_torch(nn.Sequential(nn.Linear(2, 3), nn.Sigmoid()), loss="cross_entropy")
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        from_torch(nn.Sequential(nn.Linear(2, 3), MySigmoid(SigmoidFunction)), custom={"MySigmoid": "nope"})
    with pytest.raises(TypeError, match="takes an nn.Sequential, got Linear"):
        from_torch(nn.Linear(2, 1))


def test_importing_from_torch_does_not_load_torch() -> None:
    code = "import sys, json, chainrule, chainrule.from_torch; print(json.dumps('torch' in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) is False


@pytest.mark.parametrize(("function", "right"), [(SigmoidFunction, True), (WrongSigmoidFunction, False)])
def test_pytorch_gradients_go_through_assert_gradient_against_the_network(function, right: bool) -> None:
    from chainrule.testing import assert_gradient

    torch.manual_seed(3)
    module = nn.Sequential(nn.Linear(3, 4), MySigmoid(function), nn.Linear(4, 2)).double()
    net, params = from_torch(module, loss="mse", custom={"MySigmoid": "sigmoid"})
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))

    def torch_gradients(W1, b1, W2, b2, X, Y):
        # PyTorch's own backward (the custom Function's included) at the point asked for.
        with torch.no_grad():
            for layer, W, b in ((module[0], W1, b1), (module[2], W2, b2)):
                layer.weight.copy_(torch.as_tensor(W))
                layer.bias.copy_(torch.as_tensor(b))
        module.zero_grad()
        nn.MSELoss()(module(torch.as_tensor(X)), torch.as_tensor(Y)).backward()
        return {"W1": module[0].weight.grad.numpy().copy(), "b1": module[0].bias.grad.numpy().copy(),
                "W2": module[2].weight.grad.numpy().copy(), "b2": module[2].bias.grad.numpy().copy()}

    at = {**params, "X": X, "Y": Y}
    wrt = ("W1", "b1", "W2", "b2")
    if right:
        assert_gradient(torch_gradients, net, at=at, wrt=wrt)
    else:
        with pytest.raises(AssertionError, match=r"gradient check failed: \d+ wrong entries \(reference by the network's derivation"):
            assert_gradient(torch_gradients, net, at=at, wrt=wrt)
