"""from_torch: a torch module as a Network whose compiled gradients equal torch's autograd."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from chainrule.catalog import LOSSES
from chainrule.from_torch import TORCH_MODULES, from_torch
from chainrule.kinds import BatchNorm, Dense, Dropout
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
    # layers: each sits between Linear(3, 4) and Linear(4, 2)
    "Linear": [lambda: nn.Linear(4, 4), lambda: nn.Linear(4, 4, bias=False)],
    "BatchNorm1d": [lambda: nn.BatchNorm1d(4), lambda: nn.BatchNorm1d(4, eps=1e-3, momentum=0.3, affine=False)],
    "LayerNorm": [lambda: nn.LayerNorm(4), lambda: nn.LayerNorm(4, eps=1e-3, elementwise_affine=False)],
    "Dropout": [nn.Dropout, lambda: nn.Dropout(0.3)],
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


def dropout_masks(module: nn.Module, names: dict[str, str]) -> tuple[dict[str, np.ndarray], list]:
    """Forward hooks that record, under chainrule's mask names, the mask each nn.Dropout drew.

    The mask is read off the output: 1/(1 − p) where torch kept the entry, 0 where it
    dropped it (an input of exactly 0 is read as kept; its mask changes nothing).
    """
    masks: dict[str, np.ndarray] = {}
    handles = []
    for name, qualified in names.items():
        if name.startswith("M"):
            dropout = module.get_submodule(qualified)

            def hook(m, args, out, name=name):
                kept = (out != 0) | (args[0] == 0)
                masks[name] = kept.detach().double().numpy() / (1 - m.p)

            handles.append(dropout.register_forward_hook(hook))
    return masks, handles


def torch_train_step(module: nn.Module, names: dict[str, str], loss_fn, X: np.ndarray, Y: np.ndarray):
    """One train()-mode forward and backward in float64: the loss, gradients and masks under chainrule's names."""
    module.train()
    module.zero_grad()
    masks, handles = dropout_masks(module, names)
    try:
        loss = loss_fn(module(torch.tensor(X)), torch.tensor(Y))
    finally:
        for handle in handles:
            handle.remove()
    loss.backward()
    tensors = dict(module.named_parameters())
    grads = {k: tensors[q].grad.numpy().reshape(tensors[q].shape if k[0] != "a" else ()).copy() for k, q in names.items() if q in tensors}
    return float(loss.detach()), grads, masks


def torch_buffers(module: nn.Module, names: dict[str, str], state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    buffers = dict(module.named_buffers())
    return {k: buffers[names[k]].numpy().copy() for k in state}


def test_every_entry_has_examples() -> None:
    assert set(VARIANTS) == set(TORCH_MODULES)
    assert {type(make()).__name__ for name in VARIANTS for make in VARIANTS[name]} == set(TORCH_MODULES)


@pytest.mark.parametrize(("name", "variant"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_each_module_matches_torch_autograd(name: str, variant: int) -> None:
    torch.manual_seed(variant)
    entry = VARIANTS[name][variant]()
    if name == "Softmax":
        module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3), entry)
    elif name in ("Linear", "BatchNorm1d", "LayerNorm", "Dropout"):
        module = nn.Sequential(nn.Linear(3, 4), entry, nn.Linear(4, 2))
    else:
        module = nn.Sequential(nn.Linear(3, 4), entry, nn.Linear(4, 2, bias=variant == 0))
    if name in ("Linear", "BatchNorm1d", "LayerNorm", "Dropout"):
        figures = train_compare(module, seed=variant)
        assert max(figures.values()) < 1e-10, figures
    else:
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
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Conv1d(3, 3, 1)), r"module 1 \(Conv1d\) is not supported; .*Sigmoid"),
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
    with pytest.raises(TypeError, match="takes an nn.Module, got int"):
        from_torch(2)
    net, params = from_torch(nn.Linear(2, 1))  # a lone layer is a network of one layer
    assert net.layers == (Dense(1, "identity", True),) and set(params) == {"W1", "b1"}


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


# --- modules as people write them: traced with torch.fx, trained a few steps beside torch ---------


def gradient_difference(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> float:
    """max over arrays of max |got − want| / max |want|; an array whose gradient is 0 in exact
    arithmetic (a bias right before batch norm: torch's entries are ~1e-17) is taken relative
    to the largest gradient of all instead, as no digit of its own is meaningful."""
    scale = max(float(np.abs(w).max()) for w in want.values())
    largest = {k: float(np.abs(w).max()) for k, w in want.items()}
    return max(float(np.abs(got[k] - w).max()) / (largest[k] if largest[k] > 1e-12 * scale else scale) for k, w in want.items())


def relative(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-300))


def train_compare(module: nn.Module, loss="mse", loss_fn=None, seed: int = 0, rows: int = 12, steps: int = 3,
                  lr: float = 0.05, output: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
    """Torch float64 in train() mode vs chainrule, then ``steps`` SGD steps on both and eval() predictions.

    Dropout: chainrule gets the very masks torch drew (recorded by forward hooks). Returns
    the largest relative differences: the first loss, its gradients, the running statistics
    after every step, and the eval-mode predictions after the last step.
    """
    loss_fn = nn.MSELoss() if loss_fn is None else loss_fn
    reading = from_torch(module, loss=loss)
    net, params, state, names = reading.network, dict(reading.params), dict(reading.state), reading.names
    model = compile(net)
    assert state.keys() == model.init_state().keys()
    assert params.keys() == net.parameter_shapes().keys()
    module = module.double()
    torch.manual_seed(seed)
    optimizer = torch.optim.SGD(module.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    figures = {"loss": 0.0, "gradients": 0.0, "state": 0.0}
    for step in range(steps):
        X = rng.normal(size=(rows, net.inputs))
        Y = targets(net.loss_choice.name, rows, net.outputs, rng)
        want_loss, want, masks = torch_train_step(module, names, loss_fn, X, Y)
        assert masks.keys() == net.leaf_shapes(rows).keys()
        got_loss, got = model.loss_and_grad(params, X, Y, state=state, masks=masks)
        # chainrule's γ, β of a norm without affine parameters have no torch counterpart
        assert set(got) - set(want) == {k for k in params if k not in names}
        if step == 0:
            figures["loss"] = abs(got_loss - want_loss) / abs(want_loss)
            figures["gradients"] = gradient_difference({k: got[k] for k in want}, want)
        optimizer.step()
        for k in want:
            params[k] = params[k] - lr * got[k]
        for k, value in torch_buffers(module, names, state).items():
            figures["state"] = max(figures["state"], relative(state[k], value))
    module.eval()
    X = rng.normal(size=(rows, net.inputs))
    with torch.no_grad():
        out = module(torch.tensor(X))
        want_out = (out if output is None else output(out)).numpy()
    figures["predictions"] = relative(model.predict(params, X, state=state), want_out)
    return figures


class Residual(nn.Module):
    """x + f(x), the way a ResNet block is written."""

    def __init__(self, f: nn.Module) -> None:
        super().__init__()
        self.f = f

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)


class ResidualAfter(nn.Module):
    """f(x) + x, with f's layers as attributes and a functional activation."""

    def __init__(self, width: int, hidden: int, bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden, bias=bias)
        self.bn = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, width, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.bn(torch.tanh(self.fc1(x)))) + x


class PreNorm(nn.Module):
    """out = ...; return out + x: a transformer-style pre-norm MLP block."""

    def __init__(self, width: int, p: float = 0.25) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 2 * width)
        self.drop = nn.Dropout(p)
        self.fc2 = nn.Linear(2 * width, width)

    def forward(self, x: Tensor) -> Tensor:
        out = self.fc2(self.drop(F.gelu(self.fc1(self.norm(x)))))
        out += x
        return out


class Net(nn.Module):
    """An input layer, a stack of blocks in an nn.ModuleList walked by a loop, and a head."""

    def __init__(self, inputs: int, width: int, blocks: int, outputs: int) -> None:
        super().__init__()
        self.inp = nn.Linear(inputs, width)
        self.blocks = nn.ModuleList([Residual(nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width)))
                                     for _ in range(blocks)])
        self.head = nn.Linear(width, outputs)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.inp(x))
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class Methods(nn.Module):
    """Tensor methods and torch functions in the forward; norms without affine parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 5)
        self.bn = nn.BatchNorm1d(5, affine=False)
        self.b = nn.Linear(5, 5, bias=False)
        self.ln = nn.LayerNorm(5, elementwise_affine=False)
        self.c = nn.Linear(5, 2)

    def forward(self, x: Tensor) -> Tensor:
        h = self.bn(self.a(x).tanh())
        h = self.ln(h + torch.sigmoid(self.b(h)))
        return F.leaky_relu(self.c(h), 0.2)


def _deep_nested() -> nn.Module:
    """Depth 6, no biases: a residual block inside a residual block inside an nn.Sequential."""
    inner = Residual(nn.Sequential(nn.Linear(5, 5, bias=False), nn.ELU(0.5), nn.Linear(5, 5, bias=False)))
    outer = Residual(nn.Sequential(nn.Linear(5, 5, bias=False), nn.Tanh(), inner, nn.LayerNorm(5)))
    return nn.Sequential(nn.Linear(3, 5, bias=False), nn.Softplus(), outer, nn.Linear(5, 5, bias=False), nn.Sigmoid(),
                         nn.Linear(5, 2, bias=False))


#: (name, module, loss, torch loss, the transform of the module's output chainrule predicts)
class ReluAfterSum(nn.Module):
    """The ResNet ordering: relu(x + f(x))."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.Tanh(), nn.Linear(width, width))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.f(x))


ARCHITECTURES: list[tuple[str, Callable[[], nn.Module], str, Callable | None, Callable | None]] = [
    ("sequential-bn", lambda: nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 3)), "mse", None, None),
    ("bn-first", lambda: nn.Sequential(nn.BatchNorm1d(4, eps=1e-3, momentum=0.3), nn.Linear(4, 5), nn.SiLU(), nn.Linear(5, 1)),
     "mse", None, None),
    ("residual-x+f", lambda: nn.Sequential(nn.Linear(5, 6), nn.Tanh(), Residual(nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6))),
                                           nn.Linear(6, 2)), "mse", None, None),
    ("residual-f+x-bn", lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(), ResidualAfter(6, 3), ResidualAfter(6, 4, bias=False), nn.Linear(6, 2)),
     "mse", None, None),
    ("prenorm-dropout", lambda: nn.Sequential(nn.Linear(4, 6), PreNorm(6), PreNorm(6, 0.5), nn.LayerNorm(6), nn.Linear(6, 3)),
     "mse", None, None),
    ("modulelist-loop", lambda: Net(5, 6, 2, 3), "mse", None, None),
    ("deep-nested-no-bias", _deep_nested, "mse", None, None),
    ("sequential-dropout", lambda: nn.Sequential(nn.Linear(4, 7), nn.ReLU(), nn.Dropout(0.3), nn.Linear(7, 5), nn.Tanh(), nn.Dropout(0.5),
                                                 nn.Linear(5, 2)), "mse", None, None),
    ("methods-affine-free", Methods, "mse", None, None),
    ("classifier-ce", lambda: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.BatchNorm1d(8), Residual(nn.Sequential(nn.Linear(8, 8), nn.GELU(),
                                            nn.Dropout(0.2), nn.Linear(8, 8))), nn.Dropout(0.1), nn.Linear(8, 4)),
     "cross_entropy", nn.CrossEntropyLoss(), lambda out: out.softmax(dim=-1)),
    # An activation not right after an nn.Linear is a stage of its own (chainrule's activation kind).
    ("linear-bn-relu", lambda: nn.Sequential(nn.Linear(5, 6, bias=False), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 6), nn.BatchNorm1d(6),
                                             nn.PReLU(init=0.2), nn.Linear(6, 2)), "mse", None, None),
    ("relu-after-sum", lambda: nn.Sequential(nn.Linear(4, 5), ReluAfterSum(5), ReluAfterSum(5), nn.Linear(5, 2)), "mse", None, None),
    ("activation-first-and-twice", lambda: nn.Sequential(nn.Tanh(), nn.Linear(3, 4), nn.ReLU(), nn.Tanh(), nn.Linear(4, 1)), "mse", None, None),
    ("sequential-in-block-in-sequential", lambda: nn.Sequential(nn.Linear(3, 4), Residual(nn.Sequential(nn.LayerNorm(4), Residual(nn.Sequential(
        nn.Linear(4, 4), nn.PReLU(init=0.1), nn.Linear(4, 4))), nn.Linear(4, 4), nn.Hardtanh()))), "bce_logits", nn.BCEWithLogitsLoss(), None),
]


@pytest.mark.parametrize(("name", "make", "loss", "loss_fn", "output"), ARCHITECTURES, ids=[a[0] for a in ARCHITECTURES])
def test_modules_as_people_write_them_train_like_torch(name, make, loss, loss_fn, output) -> None:
    torch.manual_seed(11)
    figures = train_compare(make(), loss, loss_fn, seed=12, output=output)
    assert max(figures.values()) < 1e-10, figures


def test_stage_numbers_and_names_follow_the_network() -> None:
    """Numbering as chainrule's stages: a block's inner layers in order, then its sum; names written out by hand."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 6), PreNorm(6), nn.BatchNorm1d(6), nn.Linear(6, 2))
    reading = from_torch(module)
    net, params = reading  # unpacks as before
    assert [(s.number, s.kind) for s in net.stages] == [
        (1, "dense"), (2, "layer_norm"), (3, "dense"), (4, "dropout"), (5, "dense"), (6, "residual"), (7, "batch_norm"), (8, "dense"),
    ]
    assert net.stages[5].skip == 1 and [s.activation for s in net.layers[1].layers if isinstance(s, Dense)] == ["gelu", "identity"]
    assert reading.names == {
        "W1": "0.weight", "b1": "0.bias", "gamma2": "1.norm.weight", "beta2": "1.norm.bias", "W3": "1.fc1.weight", "b3": "1.fc1.bias",
        "M4": "1.drop", "W5": "1.fc2.weight", "b5": "1.fc2.bias", "gamma7": "2.weight", "beta7": "2.bias",
        "mean7": "2.running_mean", "var7": "2.running_var", "W8": "3.weight", "b8": "3.bias",
    }
    assert {k: v.shape for k, v in params.items()} == net.parameter_shapes()
    assert {k: v.shape for k, v in reading.state.items()} == net.state_shapes()
    np.testing.assert_array_equal(params["W5"], module[1].fc2.weight.detach().double().numpy())
    assert net.layers[1].layers[2] == Dropout(0.25) and net.layers[2] == BatchNorm(1e-5, 0.1)


def test_running_statistics_come_from_the_module() -> None:
    torch.manual_seed(1)
    module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=0.2))
    module(torch.randn(10, 3))  # one train() step moves torch's running statistics
    reading = from_torch(module)
    np.testing.assert_array_equal(reading.state["mean2"], module[1].running_mean.double().numpy())
    np.testing.assert_array_equal(reading.state["var2"], module[1].running_var.double().numpy())
    assert reading.network.layers[1].momentum == pytest.approx(0.2)


def test_every_kind_names_its_torch_modules_in_the_table() -> None:
    from chainrule.kinds import KINDS

    named = {name for kind in KINDS.values() for name in kind.torch_modules}
    assert named == {"Linear", "BatchNorm1d", "LayerNorm", "Dropout"} and named <= set(TORCH_MODULES)


@pytest.mark.parametrize(("call", "activation"), [
    (lambda h: torch.relu(h), "relu"), (lambda h: F.relu(h), "relu"), (lambda h: h.relu(), "relu"),
    (lambda h: torch.tanh(h), "tanh"), (lambda h: h.sigmoid(), "sigmoid"), (lambda h: F.silu(h), "silu"),
    (lambda h: F.gelu(h, approximate="tanh"), "gelu_tanh"), (lambda h: F.elu(h, 0.3), "elu"), (lambda h: F.softplus(h), "softplus"),
])  # fmt: skip
def test_functional_activations_read_as_their_modules(call, activation: str) -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

        def forward(self, x: Tensor) -> Tensor:
            return self.b(call(self.a(x)))

    torch.manual_seed(2)
    module = Functional()
    net, _ = from_torch(module)
    assert net.stages[0].choice.name == activation
    figures = train_compare(module, seed=2, steps=2)
    assert max(figures.values()) < 1e-10, figures


# --- what from_torch refuses in a traced module, each in one line naming the module and the call ---


class Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Call(nn.Module):
    """A block whose forward is ``forward(self, x)``, given as a function of the block."""

    def __init__(self, forward: Callable, width: int = 4, out: int = 4) -> None:
        super().__init__()
        self.f = nn.Linear(width, out)
        self.g = nn.Linear(width, out)
        self.act = nn.ReLU()
        self._forward = forward

    def forward(self, x: Tensor) -> Tensor:
        return self._forward(self, x)


def _in_blocks(block: nn.Module) -> nn.Module:
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(3, 4)
            self.blocks = nn.Sequential(Residual(nn.Linear(4, 4)), block)

        def forward(self, x: Tensor) -> Tensor:
            return self.blocks(self.inp(x))

    return Model()


TRACED_REFUSALS = [
    ("conv2d", lambda: _in_blocks(Conv()), r"^from_torch: module blocks\.1\.conv \(Conv2d\) is not supported; supported: Linear, BatchNorm1d, LayerNorm, Dropout, Identity, .*Softmax, or a class named in custom=$"),
    ("cat", lambda: _in_blocks(Call(lambda s, x: torch.cat([s.f(x), s.g(x)], dim=1))), r"^from_torch: module blocks\.1 \(Call\) is not supported: its forward calls torch\.cat; supported operations: x \+ f\(x\) \(a residual sum\) and the activations elu, .*tanh; or name its class in custom="),
    ("product", lambda: _in_blocks(Call(lambda s, x: torch.tanh(s.f(x)) * torch.sigmoid(s.g(x)))), r"module blocks\.1 \(Call\) is not supported: its forward calls operator\.mul;"),
    ("two-branches", lambda: _in_blocks(Call(lambda s, x: s.f(x) + s.g(x))), r"module blocks\.1 \(Call\) adds two tensors neither of which is computed from the other"),
    ("width", lambda: _in_blocks(Call(lambda s, x: x + s.f(x), out=1)), r"module blocks\.1 \(Call\) adds a block's output of 1 units to its input of 4; a residual sum needs equal widths"),
    ("itself", lambda: _in_blocks(Call(lambda s, x: x + x)), r"module blocks\.1 \(Call\) adds a tensor to itself"),
    ("constant", lambda: _in_blocks(Call(lambda s, x: s.f(x) + 1)), r"module blocks\.1 \(Call\) calls operator\.add on other than two tensors"),
    ("twice", lambda: _in_blocks(Call(lambda s, x: s.f(s.f(x)))), r"module blocks\.1\.f \(Linear\) is called twice"),
    ("view", lambda: _in_blocks(Call(lambda s, x: s.f(x).view(-1, 4))), r"module blocks\.1 \(Call\) is not supported: its forward calls Tensor\.view"),
    ("functional-dropout", lambda: _in_blocks(Call(lambda s, x: F.dropout(s.f(x), 0.5))), r"calls torch\.nn\.functional\.dropout"),
    ("parameter", lambda: _in_blocks(Call(lambda s, x: x @ s.f.weight)), r"module blocks\.1 \(Call\) reads the tensor blocks\.1\.f\.weight directly"),
    ("bn-momentum", lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=None)), r"module 1 \(BatchNorm1d\): momentum=None"),
    ("bn-no-stats", lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False)), r"module 1 \(BatchNorm1d\): track_running_stats=False"),
    ("ln-2d", lambda: nn.Sequential(nn.Linear(3, 4), nn.LayerNorm((2, 2))), r"module 1 \(LayerNorm\): normalized_shape=\(2, 2\)"),
    ("bn-width", lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(5)), r"module 1 \(BatchNorm1d\): takes 5 inputs but gets 4"),
    ("softmax-in-block", lambda: _in_blocks(Call(lambda s, x: x + s.f(x).softmax(-1))), r"Tensor\.softmax: softmax is supported only as the last module"),
    ("softmax-dtype", lambda: _in_blocks(Call(lambda s, x: torch.softmax(s.f(x), -1, dtype=torch.float64))), r"calls torch\.softmax with arguments nn\.Softmax does not take"),
    ("control-flow", lambda: _in_blocks(Call(lambda s, x: s.f(x) if x.sum() > 0 else x)), r"^from_torch: torch\.fx cannot trace Model\.forward \(TraceError: "),
    ("two-outputs", lambda: _in_blocks(Call(lambda s, x: (s.f(x), x))), r"forward returns a tuple"),
]


@pytest.mark.parametrize(("name", "make", "message"), TRACED_REFUSALS, ids=[r[0] for r in TRACED_REFUSALS])
def test_unsupported_operations_are_named_in_one_line(name: str, make, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        from_torch(make())
    assert "\n" not in str(info.value)


def test_a_custom_module_is_read_whole_not_traced_into() -> None:
    """Named in custom=, a module is one activation wherever it sits, even deep in a block."""
    torch.manual_seed(9)
    module = nn.Sequential(nn.Linear(3, 4), Residual(nn.Sequential(nn.Linear(4, 4), MySigmoid(SigmoidFunction), nn.Linear(4, 4))), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"module 1\.f\.1 \(MySigmoid\) is not supported: its forward calls operator\.neg"):
        from_torch(module)
    net, _ = from_torch(module, custom={"MySigmoid": "sigmoid"})
    assert [s.choice.name if s.choice else s.kind for s in net.stages] == ["identity", "sigmoid", "identity", "residual", "identity"]
