"""Every layer kind, alone and mixed, against PyTorch float64 autograd: train() and eval() mode.

The reference is rebuilt from the chainrule network with PyTorch's own modules —
``nn.Linear``, ``nn.BatchNorm1d``, ``nn.LayerNorm``, ``nn.Dropout`` and x + F(x) for a
residual sum — with the parameters and running statistics copied in. Dropout masks are
PyTorch's own: each step seeds torch, reads the masks ``nn.Dropout`` will draw (the same
draws in the same order on a tensor of ones), and hands them to chainrule as ``masks``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TORCH_ACTIVATIONS, TORCH_LOSSES, TORCH_REGULARIZERS, random_targets
from test_kinds import ELEMENTWISE, KIND_NETWORKS, describe_stages, mixed_network
from torch import nn

import chainrule
from chainrule.catalog import ACTIVATIONS
from chainrule.kinds import KINDS, BatchNorm, Dense, Dropout, LayerNorm, Residual
from chainrule.network import Network

RTOL = 1e-10
#: Entries below this are compared absolutely (at RTOL × FLOOR): a gradient that is 0 in
#: exact arithmetic (a bias just before batch norm) is round-off in both.
FLOOR = 1e-3
STEPS = 3
LEARNING_RATE = 0.1
#: The worst relative error of each test, for the closing note (printed with -s).
WORST: dict[str, float] = {}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: torch's thread pool costs more than it saves (3x here), on 2 shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tensor(value) -> torch.Tensor:
    return torch.tensor(np.asarray(value, dtype=np.float64), dtype=torch.float64)


class TorchNetwork(nn.Module):
    """The network as PyTorch modules, stage by stage; ``named`` maps chainrule's array names to them."""

    def __init__(self, net: Network, params: Mapping[str, np.ndarray], state: Mapping[str, np.ndarray]) -> None:
        super().__init__()
        self.net = net
        self.stage_modules = nn.ModuleDict()
        self.learned = nn.ParameterDict()
        self.named: dict[str, torch.Tensor] = {}
        for stage in net.stages:
            l, key = stage.number, str(stage.number)
            if stage.kind == "dense":
                linear = nn.Linear(stage.inputs, stage.units, bias=stage.spec.bias, dtype=torch.float64)
                with torch.no_grad():
                    linear.weight.copy_(_tensor(params[f"W{l}"]))
                    if stage.spec.bias:
                        linear.bias.copy_(_tensor(params[f"b{l}"]))
                self.stage_modules[key] = linear
                self.named[f"W{l}"] = linear.weight
                if stage.spec.bias:
                    self.named[f"b{l}"] = linear.bias
                for p in stage.choice.entry.parameters:
                    if p.learnable:
                        self.learned[f"{p.name}{l}"] = nn.Parameter(_tensor(params[f"{p.name}{l}"]))
                        self.named[f"{p.name}{l}"] = self.learned[f"{p.name}{l}"]
            elif stage.kind in ("batch_norm", "layer_norm"):
                spec = stage.spec
                if stage.kind == "batch_norm":
                    module = nn.BatchNorm1d(stage.units, eps=spec.eps, momentum=spec.momentum, dtype=torch.float64)
                    with torch.no_grad():
                        module.running_mean.copy_(_tensor(state[f"mean{l}"]))
                        module.running_var.copy_(_tensor(state[f"var{l}"]))
                else:
                    module = nn.LayerNorm(stage.units, eps=spec.eps, dtype=torch.float64)
                with torch.no_grad():
                    module.weight.copy_(_tensor(params[f"gamma{l}"]))
                    module.bias.copy_(_tensor(params[f"beta{l}"]))
                self.stage_modules[key] = module
                self.named[f"gamma{l}"], self.named[f"beta{l}"] = module.weight, module.bias
            elif stage.kind == "dropout":
                self.stage_modules[key] = nn.Dropout(stage.spec.p)
            elif stage.kind == "activation":
                for p in stage.choice.entry.parameters:
                    if p.learnable:
                        self.learned[f"{p.name}{l}"] = nn.Parameter(_tensor(params[f"{p.name}{l}"]))
                        self.named[f"{p.name}{l}"] = self.learned[f"{p.name}{l}"]
            else:
                assert stage.kind == "residual", stage.kind

    def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output layer, and the last dense layer's z (the logits a fused loss takes)."""
        outputs = {0: X}
        z = None
        for stage in self.net.stages:
            x = outputs[stage.source]
            if stage.kind == "dense":
                l = stage.number
                z = self.stage_modules[str(l)](x)
                values = {**stage.choice.values, **{p.name: self.learned[f"{p.name}{l}"]
                                                    for p in stage.choice.entry.parameters if p.learnable}}
                outputs[l] = TORCH_ACTIVATIONS[stage.choice.name](z, values)
            elif stage.kind == "residual":
                outputs[stage.number] = outputs[stage.skip] + x  # x + F(x)
            elif stage.kind == "activation":
                l = stage.number
                values = {**stage.choice.values, **{p.name: self.learned[f"{p.name}{l}"]
                                                    for p in stage.choice.entry.parameters if p.learnable}}
                outputs[l] = TORCH_ACTIVATIONS[stage.choice.name](x, values)
            else:
                outputs[stage.number] = self.stage_modules[str(stage.number)](x)
        return outputs[self.net.stages[-1].number], z

    def loss(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """The batch mean of the examples' losses, plus the penalty on every dense layer's W."""
        out, z = self(X)
        choice = self.net.loss_choice
        output = z if choice.entry.requires is not None else out
        loss = torch.stack([TORCH_LOSSES[choice.name](output[n], Y[n], choice.values) for n in range(len(X))]).mean()
        reg = self.net.regularizer_choice
        if reg is not None:
            weights = [self.named[f"W{s.number}"] for s in self.net.stages if s.kind == "dense"]
            loss = loss + TORCH_REGULARIZERS[reg.name](weights, reg.values)
        return loss

    def dropouts(self) -> list[tuple[str, nn.Dropout, int]]:
        return [(f"M{s.number}", self.stage_modules[str(s.number)], s.units) for s in self.net.stages if s.kind == "dropout"]


def torch_masks(tnet: TorchNetwork, rows: int, seed: int) -> dict[str, np.ndarray]:
    """The masks ``nn.Dropout`` draws after ``torch.manual_seed(seed)``: 0 or 1/(1 − p)."""
    torch.manual_seed(seed)
    return {name: F.dropout(torch.ones(rows, units, dtype=torch.float64), module.p, training=True).numpy()
            for name, module, units in tnet.dropouts()}  # fmt: skip


def start(net: Network, seed: int) -> tuple[chainrule.Model, dict, dict]:
    """The compiled model, parameters (biases, γ, β moved off their initial values) and running state."""
    model = chainrule.compile(net)
    rng = np.random.default_rng(seed)
    params = model.init_params(seed=seed, scheme="glorot_normal")
    for key, value in params.items():
        if key.startswith(("b", "gamma", "beta")):
            params[key] = value + rng.normal(0, 0.3, np.shape(value))
    state = model.init_state()
    for key, value in state.items():
        state[key] = value + (rng.normal(0, 0.3, value.shape) if key.startswith("mean") else rng.uniform(-0.5, 0.5, value.shape))
    return model, params, state


def relative_error(got, want) -> float:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, (got.shape, want.shape)
    if got.size == 0:
        return 0.0
    error = np.abs(got - want) / np.maximum(np.abs(want), FLOOR)
    return float(np.nanmax(np.where(np.isnan(error), np.inf, error)))


def compare(net: Network, seed: int, rows: int) -> float:
    """Loss and gradients in train() mode, a few SGD steps, then eval(): the worst relative error."""
    model, params, state = start(net, seed)
    tnet = TorchNetwork(net, params, state)
    rng = np.random.default_rng(seed + 1000)
    X, Y = rng.normal(size=(rows, net.inputs)), random_targets(net, rows, rng)
    Xt, Yt = _tensor(X), _tensor(Y)
    worst = 0.0
    for step in range(STEPS):
        tnet.train()
        masks = torch_masks(tnet, rows, seed * 100 + step)
        loss, grads = model.loss_and_grad(params, X, Y, state=state, masks=masks)
        torch.manual_seed(seed * 100 + step)  # nn.Dropout draws the masks above again
        tnet.zero_grad()
        want = tnet.loss(Xt, Yt)
        want.backward()
        worst = max(worst, relative_error(loss, float(want.detach())))
        assert set(grads) == set(tnet.named) == set(net.parameter_shapes())
        for name, tensor in tnet.named.items():
            assert np.shape(grads[name]) == np.shape(params[name])
            worst = max(worst, relative_error(grads[name], tensor.grad.numpy()))
        with torch.no_grad():  # plain SGD, as torch.optim.SGD without momentum
            for tensor in tnet.parameters():
                tensor -= LEARNING_RATE * tensor.grad
        params = {k: v - LEARNING_RATE * grads[k] for k, v in params.items()}
        # Running statistics: updated as BatchNorm1d updates them (unbiased variance, momentum).
        for s in net.stages:
            if s.kind == "batch_norm":
                module = tnet.stage_modules[str(s.number)]
                worst = max(worst, relative_error(state[f"mean{s.number}"], module.running_mean.numpy()))
                worst = max(worst, relative_error(state[f"var{s.number}"], module.running_var.numpy()))
    for name, tensor in tnet.named.items():
        worst = max(worst, relative_error(params[name], tensor.detach().numpy()))
    tnet.eval()
    with torch.no_grad():
        want_out = tnet(Xt)[0].numpy()
        want_loss = float(tnet.loss(Xt, Yt))
    kept = {k: v.copy() for k, v in state.items()}
    worst = max(worst, relative_error(model.predict(params, X, state=state), want_out))
    got_loss, got_out = model.loss_and_predict(params, X, Y, state=state)
    worst = max(worst, relative_error(got_loss, want_loss), relative_error(got_out, want_out))
    assert all(np.array_equal(state[k], v) for k, v in kept.items()), "evaluation must not touch the running statistics"
    return worst


def _record(name: str, worst: float) -> None:
    WORST[name] = worst
    assert worst <= RTOL, f"relative error {worst:.3g} > {RTOL:g}"


# --- the cases --------------------------------------------------------------------------------

#: Seeds of mixed networks: every activation appears at least once (test below).
MIXED = [mixed_network(seed) for seed in range(48)]
#: Networks that put each activation (and softmax, on the output) right after batch norm,
#: layer norm, dropout and a residual sum, with and without bias.
BY_ACTIVATION = [
    Network(3, (Dense(4, name, bias=index % 2 == 0), BatchNorm(momentum=0.3),
                Residual((Dense(4, ELEMENTWISE[(index + 3) % len(ELEMENTWISE)]), LayerNorm())),
                Dropout(0.3), Dense(3, name if name != "softmax" else "tanh", bias=index % 3 != 0), LayerNorm(eps=1e-3),
                Dense(2, "identity")), "mse")  # fmt: skip
    for index, name in enumerate(ELEMENTWISE)
] + [
    Network(3, (Dense(3, "relu"), BatchNorm(), Dropout(0.5), Dense(3, "softmax")), "cross_entropy", regularizer="l2"),
    Network(2, (LayerNorm(), Residual((Dense(2, "gelu"), BatchNorm())), Dense(2, "softmax")), "mse", regularizer="l1"),
    Network(2, (BatchNorm(), Dense(2, "sigmoid")), "bce"),
    Network(2, (Dropout(0.2), Residual((Residual((Dense(2, "tanh"), Dense(2, "identity"))), Dropout(0.1))), Dense(1, "identity")), "huber"),
]


def test_cases_cover_every_kind_activation_and_several_losses() -> None:
    nets = [*KIND_NETWORKS.values(), *MIXED, *BY_ACTIVATION]
    assert {s.choice.name for net in nets for s in net.stages if s.choice is not None} == set(ACTIVATIONS)
    assert {s.choice.name for net in MIXED for s in net.stages if s.choice is not None} >= set(ELEMENTWISE) - {"prelu"}
    assert {s.kind for net in MIXED for s in net.stages} == set(KINDS)
    assert len({net.loss_choice.name for net in nets}) >= 8
    assert max(sum(s.kind == "dense" for s in net.stages) for net in MIXED) == 6
    assert any(not s.spec.bias for net in MIXED for s in net.stages if s.kind == "dense")
    for net in nets:  # softmax only on the output layer
        assert all(s.choice.entry.elementwise for s in net.stages[:-1] if s.choice is not None)


@pytest.mark.parametrize("name", sorted(KIND_NETWORKS))
def test_each_kind_equals_pytorch(name: str) -> None:
    _record(f"kind {name}", compare(KIND_NETWORKS[name], seed=1, rows=4))


@pytest.mark.parametrize("index", range(len(MIXED)), ids=[describe_stages(n) for n in MIXED])
def test_mixed_networks_equal_pytorch(index: int) -> None:
    net = MIXED[index]
    rows = int(np.random.default_rng(index).integers(2 if net.couples_batch else 1, 9))
    _record(f"mixed {index}", compare(net, seed=index + 10, rows=rows))


@pytest.mark.parametrize("index", range(len(BY_ACTIVATION)), ids=[describe_stages(n) for n in BY_ACTIVATION])
def test_every_activation_between_the_kinds_equals_pytorch(index: int) -> None:
    _record(f"activation {index}", compare(BY_ACTIVATION[index], seed=index + 100, rows=5))


def test_batch_norm_of_a_wide_batch_and_its_running_statistics() -> None:
    """64 examples, momentum 0.1 as PyTorch's default, 3 steps: the statistics BatchNorm1d keeps."""
    net = Network(5, (Dense(6, "relu"), BatchNorm(), Dense(6, "tanh"), BatchNorm(momentum=0.5, eps=1e-3), Dense(3, "softmax")),
                  "cross_entropy")  # fmt: skip
    _record("wide batch norm", compare(net, seed=7, rows=64))


def test_dropout_given_pytorchs_mask_equals_nn_dropout() -> None:
    """chainrule's forward with the mask nn.Dropout drew equals nn.Dropout's output, entry for entry."""
    p = 0.4
    net = Network(3, (Dense(5, "identity"), Dropout(p)), "half_sse")
    model, params, state = start(net, 3)
    X = np.random.default_rng(3).normal(size=(6, 3))
    Y = np.zeros((6, 5))
    torch.manual_seed(11)
    mask = F.dropout(torch.ones(6, 5, dtype=torch.float64), p, training=True).numpy()
    assert set(np.unique(mask).tolist()) == {0.0, 1 / (1 - p)}
    torch.manual_seed(11)
    hidden = _tensor(X) @ _tensor(params["W1"]).T + _tensor(params["b1"])
    want = nn.Dropout(p).train()(hidden).numpy()
    loss = model.loss(params, X, Y, masks={"M2": mask})
    assert abs(loss - 0.5 * np.sum(want**2) / 6) <= 1e-14 * loss
    # Evaluation is the identity, as nn.Dropout in eval().
    assert np.allclose(model.predict(params, X), nn.Dropout(p).eval()(hidden).numpy(), rtol=1e-15, atol=0)
    # Drawn from rng, the mask has the same two values and the gradient goes through it.
    _, grads = model.loss_and_grad(params, X, Y, rng=np.random.default_rng(0))
    assert np.isfinite(grads["W1"]).all()


def test_batch_norm_in_training_refuses_a_batch_of_one() -> None:
    model, params, state = start(KIND_NETWORKS["batch_norm"], 1)
    with pytest.raises(ValueError, match="at least 2 examples"):
        model.loss_and_grad(params, np.zeros((1, 3)), np.zeros((1, 2)), state=state)
    # Evaluation of one example is fine: it uses the running statistics.
    assert model.predict(params, np.zeros((1, 3)), state=state).shape == (1, 2)


def test_the_worst_case_is_within_the_bound() -> None:
    """The worst error over the cases that ran before it, printed (run with -s) and bounded again."""
    if not WORST:
        pytest.skip("no comparison ran before this test (select the whole file)")
    name = max(WORST, key=WORST.get)
    print(f"\n{len(WORST)} cases against PyTorch; worst relative error {WORST[name]:.3g} ({name})")
    assert WORST[name] < 1e-10
