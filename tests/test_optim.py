"""Every optimizer and schedule against its own equations and against PyTorch float64; clipping against PyTorch.

Each test is parametrized over a whole table, so a new entry is checked as soon as it is
added: it needs a PyTorch reference below, and each new hyperparameter a value in
``OTHER_VALUES``. The equations are evaluated with SymPy at 30 digits, one scalar at a time,
which shares nothing with the NumPy kernels but the numbers.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sympy as sp
import torch

from chainrule.optim import (
    ETA,
    N_E,
    NOTATION,
    OPTIMIZERS,
    SCHEDULES,
    THETA,
    THETA_NEW,
    E,
    G,
    T,
    clip_by_norm,
    clip_by_value,
    resolve,
    worked_step,
)

#: The torch.optim class of each optimizer and its keyword arguments from our hyperparameters by name.
TORCH_OPTIMIZERS = {
    "gd": (torch.optim.SGD, lambda h: {}),
    "sgd": (torch.optim.SGD, lambda h: {}),
    "momentum": (torch.optim.SGD, lambda h: {"momentum": h["momentum"]}),
    "nesterov": (torch.optim.SGD, lambda h: {"momentum": h["momentum"], "nesterov": True}),
    "adagrad": (torch.optim.Adagrad, lambda h: {"eps": h["epsilon"]}),
    "rmsprop": (torch.optim.RMSprop, lambda h: {"alpha": h["alpha"], "eps": h["epsilon"]}),
    "adam": (torch.optim.Adam, lambda h: {"betas": (h["beta1"], h["beta2"]), "eps": h["epsilon"]}),
    "adamw": (
        torch.optim.AdamW,
        lambda h: {"betas": (h["beta1"], h["beta2"]), "eps": h["epsilon"], "weight_decay": h["weight_decay"]},
    ),
}
#: The torch.optim.lr_scheduler class of each schedule and its arguments from (parameters, epochs).
TORCH_SCHEDULES = {
    "constant": (torch.optim.lr_scheduler.LambdaLR, lambda h, epochs: {"lr_lambda": lambda epoch: 1.0}),
    "step": (
        torch.optim.lr_scheduler.StepLR,
        lambda h, epochs: {"step_size": int(h["step_size"]), "gamma": h["gamma"]},
    ),
    "cosine": (
        torch.optim.lr_scheduler.CosineAnnealingLR,
        lambda h, epochs: {"T_max": epochs, "eta_min": h["eta_min"]},
    ),
}
#: Torch arguments whose default is not ours: SGD's momentum 0 is plain SGD, the entry without it.
NOT_TORCH_DEFAULTS = {"momentum", "nesterov"}
#: A value besides the default for every hyperparameter.
OTHER_VALUES = {
    "momentum": 0.5,
    "beta1": 0.3,
    "beta2": 0.95,
    "epsilon": 1e-3,
    "alpha": 0.9,
    "weight_decay": 0.1,
    "step_size": 3,
    "gamma": 0.5,
    "eta_min": 0.01,
}
SETTINGS = ("defaults", "others")
LR = 0.05


def _values(parameters, settings: str) -> dict[str, float]:
    return {} if settings == "defaults" else {p.name: OTHER_VALUES[p.name] for p in parameters}


def assert_close(got, want, rtol: float = 1e-12) -> None:
    """Relative to each entry, with a floor of ``rtol`` times the largest entry (for values near 0)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.max(np.abs(want), initial=0.0)))


def test_assert_close_can_fail() -> None:
    assert_close([1.0, 2.0], [1.0, 2.0 + 1e-13])
    with pytest.raises(AssertionError):
        assert_close([1.0, 2.0], [1.0, 2.0 + 1e-10])


# --- the tables ------------------------------------------------------------------------------


def test_every_entry_has_a_torch_reference() -> None:
    assert set(TORCH_OPTIMIZERS) == set(OPTIMIZERS)
    assert set(TORCH_SCHEDULES) == set(SCHEDULES)
    assert all(key == entry.name for table in (OPTIMIZERS, SCHEDULES) for key, entry in table.items())


@pytest.mark.parametrize("entry", [*OPTIMIZERS.values(), *SCHEDULES.values()], ids=lambda e: e.name)
def test_hyperparameters_have_other_values_in_range(entry) -> None:
    parameters = getattr(entry, "hyperparameters", None) or getattr(entry, "parameters", ())
    for p in parameters:
        assert p.low <= p.default <= p.high, p.name
        assert OTHER_VALUES[p.name] != p.default, p.name
    others = resolve(parameters, _values(parameters, "others"))
    assert others == {p.name: float(OTHER_VALUES[p.name]) for p in parameters}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_defaults_are_torchs(name: str) -> None:
    entry = OPTIMIZERS[name]
    cls, arguments = TORCH_OPTIMIZERS[name]
    signature = inspect.signature(cls).parameters
    ours = arguments(resolve(entry.hyperparameters))
    for key, value in ours.items():
        if key not in NOT_TORCH_DEFAULTS:
            assert value == signature[key].default, key


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_defaults_are_torchs(name: str) -> None:
    cls, arguments = TORCH_SCHEDULES[name]
    signature = inspect.signature(cls).parameters
    for key, value in arguments(resolve(SCHEDULES[name].parameters), 10).items():
        if signature[key].default is not inspect.Parameter.empty:  # T_max, step_size have none
            assert value == signature[key].default, key


def test_values_out_of_range_are_refused() -> None:
    adam = OPTIMIZERS["adam"].hyperparameters
    for bad in ({"beta1": 1.0}, {"beta2": -0.1}, {"epsilon": float("nan")}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            resolve(adam, bad)
    with pytest.raises(ValueError, match="whole number"):
        resolve(SCHEDULES["step"].parameters, {"step_size": 2.5})
    assert resolve(adam, {"beta1": 0.0, "unrelated": 5.0})["beta1"] == 0.0


def test_gd_is_sgd_on_the_full_batch() -> None:
    gd, sgd = OPTIMIZERS["gd"], OPTIMIZERS["sgd"]
    assert gd.updates == sgd.updates and gd.full_batch and not sgd.full_batch
    assert [name for name, entry in OPTIMIZERS.items() if entry.full_batch] == ["gd"]


# --- the equations and their symbols -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_equations_use_only_declared_symbols(name: str) -> None:
    entry = OPTIMIZERS[name]
    allowed = {THETA, G, ETA, T} | {previous for previous, _ in entry.state} | {p.symbol for p in entry.hyperparameters}
    for update in entry.updates:
        assert update.expr.free_symbols <= allowed, (update.target, update.expr.free_symbols - allowed)
        allowed.add(update.target)
    targets = [u.target for u in entry.updates]
    assert targets[-1] == THETA_NEW and len(set(targets)) == len(targets)
    # every state variable is updated, named so that worked_step's keys read "m", "v"
    for (previous, new), key in zip(entry.state, entry.state_names):
        assert new in targets and new.name == f"{key}_t" and previous.name == f"{key}_{{t-1}}"
    used = set().union(*(u.expr.free_symbols | {u.target} for u in entry.updates)) | set(sum(entry.state, ()))
    assert used <= set(NOTATION), used - set(NOTATION)
    for p in entry.hyperparameters:
        assert NOTATION[p.symbol] == (p.latex, p.text)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_uses_only_declared_symbols(name: str) -> None:
    entry = SCHEDULES[name]
    allowed = {ETA, E, N_E} | {p.symbol for p in entry.parameters}
    assert entry.expr.free_symbols <= allowed
    assert allowed <= set(NOTATION)
    for p in entry.parameters:
        assert NOTATION[p.symbol] == (p.latex, p.text)


def _equations(entry, theta: float, g: float, lr: float, t: int, h, previous) -> dict[sp.Symbol, float]:
    """Every target of the update, the equations evaluated by SymPy at 30 digits."""
    numbers = {THETA: theta, G: g, ETA: lr, **{p.symbol: h[p.name] for p in entry.hyperparameters}}
    numbers.update(zip((s for s, _ in entry.state), previous))
    env = {s: sp.Float(v, 30) for s, v in numbers.items()}
    env[T] = sp.Integer(t)
    for update in entry.updates:
        env[update.target] = sp.N(update.expr.doit().xreplace(env), 30)
    return {u.target: float(env[u.target]) for u in entry.updates}


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_numpy_step_computes_the_equations(name: str, settings: str) -> None:
    entry = OPTIMIZERS[name]
    values = _values(entry.hyperparameters, settings)
    h = resolve(entry.hyperparameters, values)
    rng = np.random.default_rng(1)
    params = {"w": rng.normal(size=3)}
    state = entry.init_state(params)
    for t in range(1, 6):
        grads = {"w": rng.normal(size=3) * 10.0 ** rng.uniform(-3, 1)}
        new_params, new_state = entry.step(params, grads, state, LR, t, values)
        for i in range(3):
            previous = [float(s[i]) for s in state["w"]]
            want = _equations(entry, float(params["w"][i]), float(grads["w"][i]), LR, t, h, previous)
            assert_close(new_params["w"][i], want[THETA_NEW])
            for (_, new), got in zip(entry.state, new_state["w"]):
                assert_close(got[i], want[new])
        assert not np.allclose(new_params["w"], params["w"])  # the step moved every entry somewhere
        params, state = new_params, new_state


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_step_leaves_its_inputs_alone(name: str) -> None:
    entry = OPTIMIZERS[name]
    rng = np.random.default_rng(2)
    params = {"W": rng.normal(size=(2, 3)), "b": rng.normal(size=2)}
    grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
    state = {k: tuple(np.abs(rng.normal(size=v.shape)) for _ in entry.state) for k, v in params.items()}
    copies = [{k: np.copy(v) for k, v in d.items()} for d in (params, grads)]
    state_copy = {k: tuple(map(np.copy, v)) for k, v in state.items()}
    new_params, new_state = entry.step(params, grads, state, LR, 4)
    assert set(new_params) == set(params) == set(new_state)
    for before, after in zip(copies, (params, grads)):
        assert all(np.array_equal(before[k], after[k]) for k in before)
    assert all(all(map(np.array_equal, state_copy[k], state[k])) for k in state)
    with pytest.raises(ValueError, match="from 1"):
        entry.step(params, grads, state, LR, 0)


# --- PyTorch ---------------------------------------------------------------------------------

SHAPES = {"W1": (4, 3), "b1": (4,), "W2": (2, 4), "b2": (2,)}


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_100_steps_follow_torch(name: str, settings: str) -> None:
    entry = OPTIMIZERS[name]
    values = _values(entry.hyperparameters, settings)
    rng = np.random.default_rng(3)
    params = {k: rng.normal(size=shape) for k, shape in SHAPES.items()}
    tensors = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    cls, arguments = TORCH_OPTIMIZERS[name]
    reference = cls(list(tensors.values()), lr=LR, foreach=False, **arguments(resolve(entry.hyperparameters, values)))
    start = {k: v.copy() for k, v in params.items()}
    state = entry.init_state(params)
    for t in range(1, 101):
        # gradients from 1e-4 to 10 across the run, and an exact 0, so that ε and the state's memory matter
        grads = {k: rng.normal(size=shape) * 10.0 ** rng.uniform(-4, 1) for k, shape in SHAPES.items()}
        grads["b2"][0] = 0.0
        params, state = entry.step(params, grads, state, LR, t, values)
        for k, tensor in tensors.items():
            tensor.grad = torch.from_numpy(grads[k].copy())
        reference.step()
        for k, tensor in tensors.items():
            assert_close(params[k], tensor.detach().numpy())
    assert all(not np.allclose(params[k], start[k]) for k in SHAPES)


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_follows_torch(name: str, settings: str) -> None:
    entry = SCHEDULES[name]
    values = _values(entry.parameters, settings)
    h = resolve(entry.parameters, values)
    epochs, lr = 23, 0.1
    weight = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=lr)
    cls, arguments = TORCH_SCHEDULES[name]
    scheduler = cls(optimizer, **arguments(h, epochs))
    rates = []
    for epoch in range(epochs):
        rate = entry.rate(lr, epoch, epochs, values)
        assert_close(rate, scheduler.get_last_lr()[0])
        # the equation gives the same number
        numbers = {ETA: lr, E: epoch, N_E: epochs, **{p.symbol: h[p.name] for p in entry.parameters}}
        assert_close(float(entry.expr.doit().subs(numbers)), rate)
        rates.append(rate)
        optimizer.step()  # torch warns when a scheduler steps before its optimizer
        scheduler.step()
    assert rates[0] == lr
    assert (len(set(rates)) == 1) == (name == "constant")
    with pytest.raises(ValueError):
        entry.rate(lr, epochs, epochs, values)


def _torch_grads(grads):
    tensors = []
    for g in grads.values():
        t = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.from_numpy(g.copy())
        tensors.append(t)
    return tensors


@pytest.mark.parametrize("limit", [0.0, 0.3, 100.0])
def test_clip_by_value_is_torchs(limit: float) -> None:
    rng = np.random.default_rng(4)
    grads = {k: rng.normal(size=shape) for k, shape in SHAPES.items()}
    before = {k: v.copy() for k, v in grads.items()}
    clipped = clip_by_value(grads, limit)
    tensors = _torch_grads(grads)
    torch.nn.utils.clip_grad_value_(tensors, limit)
    for k, t in zip(grads, tensors):
        assert np.array_equal(clipped[k], t.grad.numpy())
        assert np.array_equal(grads[k], before[k])
    assert any(not np.array_equal(clipped[k], grads[k]) for k in grads) == (limit < 100)


@pytest.mark.parametrize("max_norm", [0.0, 0.5, 3.0, 1e3])
def test_clip_by_norm_is_torchs(max_norm: float) -> None:
    rng = np.random.default_rng(5)
    grads = {k: rng.normal(size=shape) for k, shape in SHAPES.items()}
    before = {k: v.copy() for k, v in grads.items()}
    clipped, norm = clip_by_norm(grads, max_norm)
    tensors = _torch_grads(grads)
    want = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
    assert_close(norm, want)
    assert_close(norm, np.sqrt(sum((g**2).sum() for g in grads.values())))
    for k, t in zip(grads, tensors):
        assert_close(clipped[k], t.grad.numpy())
        assert np.array_equal(grads[k], before[k])
    after = np.sqrt(sum((g**2).sum() for g in clipped.values()))
    assert after <= max_norm or (after == norm and norm < max_norm)


# --- worked steps ----------------------------------------------------------------------------


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_worked_step_is_one_numpy_step(name: str, settings: str) -> None:
    entry = OPTIMIZERS[name]
    values = _values(entry.hyperparameters, settings)
    theta, gradient, t = 0.75, -0.4, 3
    # m and momentum's v may be negative; Adagrad's s and RMSprop's and Adam's v may not
    squares = {"s"} | ({"v"} if entry.name in ("rmsprop", "adam", "adamw") else set())
    state = {key: 0.3 if key in squares else -0.3 for key in entry.state_names}
    worked = worked_step(entry, theta, gradient, LR, values, state, t)
    params, new_state = entry.step(
        {"w": np.array([theta])},
        {"w": np.array([gradient])},
        {"w": tuple(np.array([state[key]]) for key in entry.state_names)},
        LR,
        t,
        values,
    )
    assert [u.target for u in worked] == [u.target for u in entry.updates]
    value = {u.target: u.value for u in worked}
    assert_close(value[THETA_NEW], params["w"][0])
    for (_, new), array in zip(entry.state, new_state["w"]):
        assert_close(value[new], array[0])
    for u in worked:
        assert not u.substituted.free_symbols
        assert not u.substituted.is_Number  # the arithmetic is shown, not only its result
        assert_close(float(u.substituted.doit()), u.value, rtol=1e-14)


def test_worked_step_shows_negative_numbers_as_units() -> None:
    (update,) = worked_step(OPTIMIZERS["sgd"], 0.5, -0.25, 0.1)
    assert sp.latex(update.substituted, order="none") == "0.5 - 0.1 \\left(-0.25\\right)"
    assert update.value == 0.525
    with pytest.raises(ValueError, match="no state"):
        worked_step(OPTIMIZERS["sgd"], 0.5, -0.25, 0.1, state={"m": 1.0})


#: Each update rule as the textbooks write it (the papers and torch.optim's documentation):
#: θₜ₋₁ first, the step subtracted from it, (1 − β) gₜ and not gₜ(1 − β).
TEXTBOOK = {
    "gd": [r"\theta_{t-1} - \eta g_{t}"],
    "sgd": [r"\theta_{t-1} - \eta g_{t}"],
    "momentum": [r"\mu v_{t-1} + g_{t}", r"\theta_{t-1} - \eta v_{t}"],
    "nesterov": [r"\mu v_{t-1} + g_{t}", r"\theta_{t-1} - \eta \left(g_{t} + \mu v_{t}\right)"],
    "adagrad": [r"s_{t-1} + g_{t}^{2}", r"\theta_{t-1} - \frac{\eta g_{t}}{\sqrt{s_{t}} + \epsilon}"],
    "rmsprop": [r"\alpha v_{t-1} + \left(1 - \alpha\right) g_{t}^{2}", r"\theta_{t-1} - \frac{\eta g_{t}}{\sqrt{v_{t}} + \epsilon}"],
    "adam": [
        r"\beta_{1} m_{t-1} + \left(1 - \beta_{1}\right) g_{t}",
        r"\beta_{2} v_{t-1} + \left(1 - \beta_{2}\right) g_{t}^{2}",
        r"\frac{m_{t}}{1 - \beta_{1}^{t}}",
        r"\frac{v_{t}}{1 - \beta_{2}^{t}}",
        r"\theta_{t-1} - \frac{\eta \hat{m}_{t}}{\sqrt{\hat{v}_{t}} + \epsilon}",
    ],
    "adamw": [
        r"\beta_{1} m_{t-1} + \left(1 - \beta_{1}\right) g_{t}",
        r"\beta_{2} v_{t-1} + \left(1 - \beta_{2}\right) g_{t}^{2}",
        r"\frac{m_{t}}{1 - \beta_{1}^{t}}",
        r"\frac{v_{t}}{1 - \beta_{2}^{t}}",
        r"\theta_{t-1} \left(1 - \eta \lambda\right) - \frac{\eta \hat{m}_{t}}{\sqrt{\hat{v}_{t}} + \epsilon}",
    ],
}


def test_every_optimizer_has_its_textbook_form() -> None:
    assert set(TEXTBOOK) == set(OPTIMIZERS)


def _latex(expr) -> str:
    # SymPy's own printer with the order kept; θ_{t-1} has no LaTeX name of its own there.
    return sp.latex(expr, order="none").replace("theta_{t-1}", "\\theta_{t-1}")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_equations_read_in_textbook_order(name: str) -> None:
    entry = OPTIMIZERS[name]
    assert [_latex(u.expr) for u in entry.updates] == TEXTBOOK[name]
    for u in entry.updates:
        assert isinstance(u.expr, sp.UnevaluatedExpr)  # what tells the printers to keep the order


def _same_shape(written, substituted) -> bool:
    """Whether substituting numbers kept the equation's tree: each symbol became a number (a negative one in a
    sum is subtracted, a − 0.25), every other node is the same kind of node with its arguments in the same order."""
    if isinstance(written, sp.Symbol):
        return substituted.is_Number or (
            isinstance(substituted, sp.Mul) and substituted.args[0] == -1 and substituted.args[1].is_Number
        )
    if not written.args:
        return written == substituted
    return (
        type(written) is type(substituted)
        and len(written.args) == len(substituted.args)
        and all(_same_shape(a, b) for a, b in zip(written.args, substituted.args))
    )


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_worked_step_keeps_the_order_of_its_equation(name: str) -> None:
    entry = OPTIMIZERS[name]
    state = {key: 0.3 for key in entry.state_names}
    for u in worked_step(entry, 0.75, -0.4, LR, None, state, 3):
        assert _same_shape(u.expr, u.substituted), (u.target, u.substituted)
    theta = worked_step(entry, 0.75, -0.4, LR, None, state, 3)[-1]
    assert _latex(theta.substituted).startswith("0.75 ")  # θₜ₋₁ first
