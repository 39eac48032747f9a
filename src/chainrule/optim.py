"""Optimizers, learning-rate schedules and gradient clipping, as equations and as NumPy.

An optimizer is its update rule written as SymPy equations (``updates``, what documents
show) and a NumPy kernel (what training runs). The kernel groups the arithmetic as
``torch.optim``'s single-tensor code does, so a float64 run follows PyTorch's trajectory to
rounding (torch's CPU kernels fuse multiply-adds, which NumPy cannot); the equations are the
textbook form. ``tests/test_optim.py`` proves for every entry that the kernel computes
the equations and that 100 steps equal ``torch.optim``'s.

θ_{t-1} (``THETA``) is a parameter before the step and θ_t (``THETA_NEW``) after it, g_t
(``G``) its gradient, η (``ETA``) the learning rate, t (``T``) the step count from 1.
Every state variable starts at 0.

>>> [str(u.target) for u in OPTIMIZERS["adam"].updates]
['m_t', 'v_t', 'mhat_t', 'vhat_t', 'theta_t']
>>> OPTIMIZERS["momentum"].updates[0].expr
g_t + mu*v_{t-1}
>>> SCHEDULES["step"].expr
eta*gamma**floor(E/s)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import sympy as sp

THETA = sp.Symbol("theta_{t-1}", real=True)
THETA_NEW = sp.Symbol("theta_t", real=True)
G = sp.Symbol("g_t", real=True)
ETA = sp.Symbol("eta", positive=True)
T = sp.Symbol("t", integer=True, positive=True)
#: The epoch (from 0) and the number of epochs, in schedules.
E = sp.Symbol("E", integer=True, nonnegative=True)
N_E = sp.Symbol("N_E", integer=True, positive=True)

# State variables, before and after a step. Each new one is named "<name>_t": its name is
# the key of ``worked_step``'s state.
M_PREV, M = sp.Symbol("m_{t-1}", real=True), sp.Symbol("m_t", real=True)
V_PREV, V = sp.Symbol("v_{t-1}", real=True), sp.Symbol("v_t", real=True)
S_PREV, S = sp.Symbol("s_{t-1}", real=True), sp.Symbol("s_t", real=True)
#: Adam's bias-corrected moments.
M_HAT, V_HAT = sp.Symbol("mhat_t", real=True), sp.Symbol("vhat_t", real=True)

#: The largest float below 1: β < 1 written as an inclusive bound (β = 1 divides by 1 - βᵗ = 0).
BELOW_ONE = math.nextafter(1.0, 0.0)


@dataclass(frozen=True)
class Hyperparameter:
    """A number an optimizer or a schedule takes from the spec or the command line: μ, β₁, ε, γ."""

    name: str
    symbol: sp.Symbol
    default: float  # PyTorch's default where PyTorch has one
    latex: str
    text: str
    #: The values allowed; both bounds are inclusive (a strict one is the nearest float inside).
    low: float = 0.0
    high: float = math.inf
    #: Whole numbers only (a step size in epochs).
    integer: bool = False


def resolve(parameters: tuple[Hyperparameter, ...], values: Mapping[str, float] | None = None) -> dict[str, float]:
    """Each parameter's value by name: from ``values``, else its default. Other names are ignored.

    Raises ``ValueError`` for a value outside the parameter's range.

    >>> resolve(OPTIMIZERS["adam"].hyperparameters, {"beta1": 0.8, "gamma": 0.5})
    {'beta1': 0.8, 'beta2': 0.999, 'epsilon': 1e-08}
    """
    values = values or {}
    chosen = {}
    for p in parameters:
        value = float(values.get(p.name, p.default))
        if not p.low <= value <= p.high:  # a NaN fails here too
            raise ValueError(f"{p.name} = {value} is outside its range [{p.low}, {p.high}]")
        if p.integer and not value.is_integer():
            raise ValueError(f"{p.name} = {value} must be a whole number")
        chosen[p.name] = value
    return chosen


@dataclass(frozen=True)
class Update:
    """One equation of an update rule: target = expr.

    ``expr`` is written as the textbooks write it, θₜ₋₁ − η m̂ₜ/(√v̂ₜ + ε): built unevaluated
    and wrapped in ``UnevaluatedExpr``, so the printers keep its order; ``expr.doit()`` is
    the plain SymPy expression.
    """

    target: sp.Symbol
    expr: sp.Expr


#: ``kernel(θ, g, state, η, t, hyperparameters) -> (θ_t, new state)`` on one array; it must
#: not modify its arguments. ``state`` is a tuple in the order of ``Optimizer.state``.
Kernel = Callable[
    [np.ndarray, np.ndarray, tuple[np.ndarray, ...], float, int, Mapping[str, float]],
    tuple[np.ndarray, tuple[np.ndarray, ...]],
]


@dataclass(frozen=True)
class Optimizer:
    """θ_t from θ_{t-1} and g_t: the equations ``updates`` in order, the last one's target θ_t."""

    name: str
    title: str
    hyperparameters: tuple[Hyperparameter, ...]
    #: (previous, new) symbol of each state variable, e.g. (m_{t-1}, m_t); each starts at 0.
    state: tuple[tuple[sp.Symbol, sp.Symbol], ...]
    updates: tuple[Update, ...]
    reference: str  # the paper, and the torch.optim class it matches
    full_batch: bool = False  # each step uses the whole training set
    kernel: Kernel = field(kw_only=True, repr=False)

    @property
    def state_names(self) -> tuple[str, ...]:
        """The names of the state variables ("m" for m_t): the keys of ``worked_step``'s state.

        >>> OPTIMIZERS["adam"].state_names
        ('m', 'v')
        """
        return tuple(new.name.removesuffix("_t") for _, new in self.state)

    def init_state(self, params: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, ...]]:
        """Zeros for every array: ``{key: (one array per state variable, in the order of state)}``.

        >>> OPTIMIZERS["adam"].init_state({"b1": np.ones(2)})
        {'b1': (array([0., 0.]), array([0., 0.]))}
        """
        return {key: tuple(np.zeros(np.shape(p)) for _ in self.state) for key, p in params.items()}

    def step(
        self,
        params: Mapping[str, np.ndarray],
        grads: Mapping[str, np.ndarray],
        state: Mapping[str, tuple[np.ndarray, ...]],
        lr: float,
        t: int,
        values: Mapping[str, float] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, ...]]]:
        """One update of every array: new params and new state, in new arrays; the inputs are not modified.

        ``t`` counts steps from 1; ``values`` holds hyperparameters by name (missing ones take
        their defaults, other names are ignored).

        >>> sgd = OPTIMIZERS["sgd"]
        >>> params = {"w": np.array([1.0, -2.0])}
        >>> sgd.step(params, {"w": np.array([0.5, 0.5])}, sgd.init_state(params), lr=0.1, t=1)
        ({'w': array([ 0.95, -2.05])}, {'w': ()})
        """
        if t < 1:
            raise ValueError(f"steps count from 1, not {t}")
        h = resolve(self.hyperparameters, values)
        new_params, new_state = {}, {}
        for key, theta in params.items():
            new_params[key], new_state[key] = self.kernel(theta, grads[key], state[key], lr, t, h)
        return new_params, new_state


# The kernels group their arithmetic as torch.optim's single-tensor code does, so that rounding
# stays that of PyTorch's trajectory.


def _sgd(theta, g, state, lr, t, h):
    return theta - lr * g, state


def _momentum(theta, g, state, lr, t, h):
    # torch sets its buffer to g on the first step: μ·0 + g is the same number.
    v = h["momentum"] * state[0] + g
    return theta - lr * v, (v,)


def _nesterov(theta, g, state, lr, t, h):
    v = h["momentum"] * state[0] + g
    return theta - lr * (g + h["momentum"] * v), (v,)


def _adagrad(theta, g, state, lr, t, h):
    s = state[0] + g * g
    return theta - lr * (g / (np.sqrt(s) + h["epsilon"])), (s,)


def _rmsprop(theta, g, state, lr, t, h):
    v = h["alpha"] * state[0] + (1 - h["alpha"]) * g * g
    return theta - lr * (g / (np.sqrt(v) + h["epsilon"])), (v,)


def _adam(theta, g, state, lr, t, h):
    beta1, beta2 = h["beta1"], h["beta2"]
    m, v = state
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    # m̂/(√v̂ + ε) as torch computes it: 1/(1 - β₁ᵗ) goes into the step size, √(1 - β₂ᵗ) divides √v.
    denominator = np.sqrt(v) / (1 - beta2**t) ** 0.5 + h["epsilon"]
    return theta - lr / (1 - beta1**t) * (m / denominator), (m, v)


def _adamw(theta, g, state, lr, t, h):
    # Decoupled weight decay shrinks θ before, and apart from, the Adam step.
    return _adam(theta * (1 - lr * h["weight_decay"]), g, state, lr, t, h)


# PyTorch's default momentum, 0, is plain SGD (the sgd entry); 0.9 is the customary value.
MOMENTUM = Hyperparameter("momentum", sp.Symbol("mu", nonnegative=True), 0.9, "\\mu", "μ", high=1.0)
BETA1 = Hyperparameter("beta1", sp.Symbol("beta_1", nonnegative=True), 0.9, "\\beta_1", "β₁", high=BELOW_ONE)
BETA2 = Hyperparameter("beta2", sp.Symbol("beta_2", nonnegative=True), 0.999, "\\beta_2", "β₂", high=BELOW_ONE)
ALPHA = Hyperparameter("alpha", sp.Symbol("alpha", nonnegative=True), 0.99, "\\alpha", "α", high=1.0)
WEIGHT_DECAY = Hyperparameter("weight_decay", sp.Symbol("lambda", nonnegative=True), 0.01, "\\lambda", "λ")
_EPS = sp.Symbol("epsilon", nonnegative=True)


def _epsilon(default: float) -> Hyperparameter:
    return Hyperparameter("epsilon", _EPS, default, "\\varepsilon", "ε")


# The equations are built unevaluated, in the order the textbooks write them: SymPy would
# write θₜ = −η m̂ₜ/(ε + √v̂ₜ) + θₜ₋₁ and mₜ = β₁mₜ₋₁ + gₜ(1 − β₁).


def _sum(*terms: sp.Expr) -> sp.Expr:
    return sp.Add(*terms, evaluate=False)


def _product(*factors: sp.Expr) -> sp.Expr:
    return sp.Mul(*factors, evaluate=False)


def _less(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """a − b, as written."""
    return _sum(a, sp.Mul(-1, b, evaluate=False))


def _over(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """a/b, as written."""
    return _product(a, sp.Pow(b, -1, evaluate=False))


def _written(expr: sp.Expr) -> sp.Expr:
    """A right side the printers print in the order it was built."""
    return sp.UnevaluatedExpr(expr)


def _average(decay: sp.Symbol, previous: sp.Symbol, new: sp.Expr) -> sp.Expr:
    """β·previous + (1 − β)·new: an exponential moving average."""
    return _written(_sum(_product(decay, previous), _product(_less(sp.Integer(1), decay), new)))


def _scaled_step(direction: sp.Expr, scale: sp.Symbol) -> sp.Expr:
    """η·direction/(√scale + ε), the step of Adagrad, RMSprop and Adam."""
    return _over(_product(ETA, direction), _sum(sp.sqrt(scale), _EPS))


def _adam_updates(decay: sp.Expr | None) -> tuple[Update, ...]:
    """Adam's equations; ``decay`` multiplies θ_{t-1} (1 - ηλ for AdamW)."""
    b1, b2 = BETA1.symbol, BETA2.symbol
    start = THETA if decay is None else _product(THETA, decay)
    return (
        Update(M, _average(b1, M_PREV, G)),
        Update(V, _average(b2, V_PREV, G**2)),
        Update(M_HAT, _written(_over(M, _less(sp.Integer(1), b1**T)))),
        Update(V_HAT, _written(_over(V, _less(sp.Integer(1), b2**T)))),
        Update(THETA_NEW, _written(_less(start, _scaled_step(M_HAT, V_HAT)))),
    )


_MU = MOMENTUM.symbol
_DESCENT = (Update(THETA_NEW, _written(_less(THETA, _product(ETA, G)))),)

OPTIMIZERS: dict[str, Optimizer] = {
    entry.name: entry
    for entry in (
        Optimizer(
            "gd",
            "gradient descent (full batch)",
            (),
            (),
            _DESCENT,
            "Cauchy 1847; torch.optim.SGD with the whole training set as the batch",
            full_batch=True,
            kernel=_sgd,
        ),
        Optimizer(
            "sgd", "stochastic gradient descent", (), (), _DESCENT, "Robbins & Monro 1951; torch.optim.SGD", kernel=_sgd
        ),
        Optimizer(
            "momentum",
            "SGD with momentum",
            (MOMENTUM,),
            ((V_PREV, V),),
            (Update(V, _written(_sum(_product(_MU, V_PREV), G))), Update(THETA_NEW, _written(_less(THETA, _product(ETA, V))))),
            "Polyak 1964, in PyTorch's form; torch.optim.SGD(momentum=μ)",
            kernel=_momentum,
        ),
        Optimizer(
            "nesterov",
            "SGD with Nesterov momentum",
            (MOMENTUM,),
            ((V_PREV, V),),
            (
                Update(V, _written(_sum(_product(_MU, V_PREV), G))),
                Update(THETA_NEW, _written(_less(THETA, _product(ETA, _sum(G, _product(_MU, V)))))),
            ),
            "Sutskever et al. 2013, in PyTorch's form; torch.optim.SGD(momentum=μ, nesterov=True)",
            kernel=_nesterov,
        ),
        Optimizer(
            "adagrad",
            "Adagrad",
            (_epsilon(1e-10),),
            ((S_PREV, S),),
            (Update(S, _written(_sum(S_PREV, G**2))), Update(THETA_NEW, _written(_less(THETA, _scaled_step(G, S))))),
            "Duchi, Hazan & Singer 2011; torch.optim.Adagrad",
            kernel=_adagrad,
        ),
        Optimizer(
            "rmsprop",
            "RMSprop",
            (ALPHA, _epsilon(1e-8)),
            ((V_PREV, V),),
            (
                Update(V, _average(ALPHA.symbol, V_PREV, G**2)),
                Update(THETA_NEW, _written(_less(THETA, _scaled_step(G, V)))),
            ),
            "Tieleman & Hinton 2012 (Coursera, lecture 6.5); torch.optim.RMSprop",
            kernel=_rmsprop,
        ),
        Optimizer(
            "adam",
            "Adam",
            (BETA1, BETA2, _epsilon(1e-8)),
            ((M_PREV, M), (V_PREV, V)),
            _adam_updates(None),
            "Kingma & Ba 2015; torch.optim.Adam",
            kernel=_adam,
        ),
        Optimizer(
            "adamw",
            "AdamW (decoupled weight decay)",
            (BETA1, BETA2, _epsilon(1e-8), WEIGHT_DECAY),
            ((M_PREV, M), (V_PREV, V)),
            _adam_updates(_less(sp.Integer(1), _product(ETA, WEIGHT_DECAY.symbol))),
            "Loshchilov & Hutter 2019; torch.optim.AdamW",
            kernel=_adamw,
        ),
    )
}


@dataclass(frozen=True)
class WorkedUpdate:
    """One equation with its numbers: target = expr = substituted = value."""

    target: sp.Symbol
    expr: sp.Expr
    #: ``expr`` with every symbol replaced by its number, left unevaluated so the arithmetic shows.
    substituted: sp.Expr
    value: float


def _number(value: float) -> sp.Expr:
    if isinstance(value, int):  # the step count t
        return sp.Integer(value)
    return sp.Float(value + 0.0)  # no -0.0


def _substitute(expr: sp.Expr, numbers: Mapping[sp.Symbol, float]) -> sp.Expr:
    """``expr`` with its symbols replaced by numbers and nothing evaluated: the arithmetic as a reader does it.

    The equation's order stays (it is built unevaluated); a negative number is one unit,
    which the printers put in parentheses inside a product, 0.1·(−0.25), and a sum's
    negative term is subtracted, 0.45 − 0.25.
    """
    if expr in numbers:
        return _number(numbers[expr])
    if not expr.args:
        return expr
    args = [_substitute(arg, numbers) for arg in expr.args]
    if isinstance(expr, sp.UnevaluatedExpr):
        return sp.UnevaluatedExpr(args[0])
    if isinstance(expr, sp.Add):
        args = [sp.Mul(-1, -a, evaluate=False) if a.is_Number and a.is_negative else a for a in args]
    return expr.func(*args, evaluate=False)


def worked_step(
    optimizer: Optimizer,
    theta: float,
    gradient: float,
    lr: float,
    values: Mapping[str, float] | None = None,
    state: Mapping[str, float] | None = None,
    t: int = 1,
) -> tuple[WorkedUpdate, ...]:
    """One update of one scalar parameter, every equation with its numbers (for documents).

    ``state`` holds the state variables before the step by name ("m", "v"); missing ones are 0.

    The equations keep the order they were written in (``order="none"``; chainrule's printers
    keep it by themselves):

    >>> w = worked_step(OPTIMIZERS["momentum"], 0.5, -0.25, 0.1, {"momentum": 0.9}, {"v": 0.5})
    >>> for u in w:
    ...     print(u.target, *(sp.latex(e, order="none") for e in (u.expr, u.substituted)), u.value, sep=" = ")
    v_t = \\mu v_{t-1} + g_{t} = 0.9 \\cdot 0.5 - 0.25 = 0.2
    theta_t = theta_{t-1} - \\eta v_{t} = 0.5 - 0.1 \\cdot 0.2 = 0.48
    """
    unknown = set(state or {}) - set(optimizer.state_names)
    if unknown:
        raise ValueError(f"{optimizer.name} has no state {sorted(unknown)}; it has {list(optimizer.state_names)}")
    if t < 1:
        raise ValueError(f"steps count from 1, not {t}")
    h = resolve(optimizer.hyperparameters, values)
    numbers: dict[sp.Symbol, float] = {THETA: float(theta), G: float(gradient), ETA: float(lr), T: int(t)}
    numbers.update({p.symbol: h[p.name] for p in optimizer.hyperparameters})
    for (previous, _), name in zip(optimizer.state, optimizer.state_names):
        numbers[previous] = float((state or {}).get(name, 0.0))
    worked = []
    for update in optimizer.updates:
        substituted = _substitute(update.expr, numbers)
        value = float(update.expr.doit().xreplace({s: sp.sympify(v) for s, v in numbers.items()}))
        worked.append(WorkedUpdate(update.target, update.expr, substituted, value))
        numbers[update.target] = value
    return tuple(worked)


@dataclass(frozen=True)
class Schedule:
    """The learning rate of epoch E (from 0) of N_E, from the initial rate η."""

    name: str
    title: str
    parameters: tuple[Hyperparameter, ...]
    expr: sp.Expr
    reference: str = ""  # the torch.optim.lr_scheduler class it matches
    #: ``function(η, epoch, epochs, parameters by name)``: ``expr`` in plain floats.
    function: Callable[[float, int, int, Mapping[str, float]], float] = field(kw_only=True, repr=False)

    def rate(self, lr: float, epoch: int, epochs: int, values: Mapping[str, float] | None = None) -> float:
        """The learning rate of ``epoch`` (from 0) of ``epochs``.

        >>> SCHEDULES["step"].rate(0.1, 25, 30, {"step_size": 10, "gamma": 0.5})
        0.025
        """
        if not 0 <= epoch < epochs:
            raise ValueError(f"epoch {epoch} is not one of 0 .. {epochs - 1}")
        return float(self.function(lr, epoch, epochs, resolve(self.parameters, values)))


STEP_SIZE = Hyperparameter("step_size", sp.Symbol("s", integer=True, positive=True), 10, "s", "s", 1.0, integer=True)
GAMMA = Hyperparameter("gamma", sp.Symbol("gamma", nonnegative=True), 0.1, "\\gamma", "γ")
ETA_MIN = Hyperparameter("eta_min", sp.Symbol("eta_min", nonnegative=True), 0.0, "\\eta_{\\min}", "η_min")

SCHEDULES: dict[str, Schedule] = {
    entry.name: entry
    for entry in (
        Schedule("constant", "constant", (), ETA, "no scheduler", function=lambda lr, e, n, h: lr),
        Schedule(
            "step",
            "step decay: × γ every s epochs",
            (STEP_SIZE, GAMMA),
            _written(_product(ETA, GAMMA.symbol ** sp.floor(E / STEP_SIZE.symbol))),
            "torch.optim.lr_scheduler.StepLR",
            function=lambda lr, e, n, h: lr * h["gamma"] ** (e // h["step_size"]),
        ),
        Schedule(
            "cosine",
            "cosine annealing to η_min",
            (ETA_MIN,),
            # η_min + ½(η − η_min)(1 + cos(πE/N_E)), as SGDR writes it
            _written(_sum(ETA_MIN.symbol, _product(sp.UnevaluatedExpr(sp.S.Half), _less(ETA, ETA_MIN.symbol),
                                                   _sum(sp.Integer(1), sp.cos(sp.pi * E / N_E))))),
            "Loshchilov & Hutter 2017 (SGDR), without restarts; torch.optim.lr_scheduler.CosineAnnealingLR(T_max=N_E)",
            function=lambda lr, e, n, h: h["eta_min"] + (lr - h["eta_min"]) * (1 + math.cos(math.pi * e / n)) / 2,
        ),
    )
}

NOTATION: Mapping[sp.Symbol, tuple[str, str]] = MappingProxyType(
    {
        THETA: ("\\theta_{t-1}", "θₜ₋₁"),
        THETA_NEW: ("\\theta_t", "θₜ"),
        G: ("g_t", "gₜ"),
        ETA: ("\\eta", "η"),
        T: ("t", "t"),
        E: ("E", "E"),
        N_E: ("N_E", "N_E"),
        M_PREV: ("m_{t-1}", "mₜ₋₁"),
        M: ("m_t", "mₜ"),
        V_PREV: ("v_{t-1}", "vₜ₋₁"),
        V: ("v_t", "vₜ"),
        S_PREV: ("s_{t-1}", "sₜ₋₁"),
        S: ("s_t", "sₜ"),
        M_HAT: ("\\hat{m}_t", "m̂ₜ"),
        V_HAT: ("\\hat{v}_t", "v̂ₜ"),
        **{
            p.symbol: (p.latex, p.text)
            for entry in OPTIMIZERS.values()
            for p in entry.hyperparameters
        },
        **{p.symbol: (p.latex, p.text) for entry in SCHEDULES.values() for p in entry.parameters},
    }
)


def clip_by_value(grads: Mapping[str, np.ndarray], limit: float) -> dict[str, np.ndarray]:
    """Every gradient entry clamped to [-limit, limit] (torch.nn.utils.clip_grad_value_), in new arrays.

    >>> clip_by_value({"w": np.array([-3.0, 0.5, 2.0])}, 1.0)
    {'w': array([-1. ,  0.5,  1. ])}
    """
    if not limit >= 0:
        raise ValueError(f"a clipping limit must be at least 0, not {limit}")
    return {key: np.clip(g, -limit, limit) for key, g in grads.items()}


def clip_by_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> tuple[dict[str, np.ndarray], float]:
    """All gradients scaled together so their global L2 norm is at most ``max_norm``; and that norm before.

    As torch.nn.utils.clip_grad_norm_: the scale is min(1, max_norm / (norm + 1e-6)).

    >>> clipped, norm = clip_by_norm({"w": np.array([3.0]), "b": np.array([4.0])}, 1.0)
    >>> norm, clipped["w"].round(6), clipped["b"].round(6)
    (5.0, array([0.6]), array([0.8]))
    """
    if not max_norm >= 0:
        raise ValueError(f"a maximum norm must be at least 0, not {max_norm}")
    # The norm of the arrays' norms, as torch takes it.
    norm = float(np.linalg.norm([np.linalg.norm(np.ravel(g)) for g in grads.values()]))
    scale = min(max_norm / (norm + 1e-6), 1.0)
    return {key: g * scale for key, g in grads.items()}, norm
