"""Training over real data with the compiled gradients: settings, the loop, history, clean stops.

``fit`` runs mini-batch training with any optimizer of ``optim.OPTIMIZERS``, records each
epoch (losses, accuracies, the rate, per-layer gradient norms), and stops cleanly on
Ctrl-C or on a NaN, saying where it happened and what is the likely cause. A run that
finishes is looked at once more: whether it stalled (its loss flat and its gradient
vanished before it learned) and why (``stalled``), and what the trained classifier makes of
the test set (``classify``: the confusion matrix, the misclassified examples, a 2-D set's
decision boundary). The result is plain data; ``render/training.py`` writes the report.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from . import suggest
from .datasets import DATASETS, Dataset, accuracy
from .model import INIT_SCHEMES, Model
from .network import Network, SpecError
from .optim import OPTIMIZERS, SCHEDULES, clip_by_norm, clip_by_value, resolve


@dataclass(frozen=True)
class Epoch:
    """What one epoch measured. Accuracies are ``None`` for regression."""

    epoch: int  # from 1
    train_loss: float  # mean loss over the training set, with the parameters at the end of the epoch
    train_accuracy: float | None
    val_loss: float
    val_accuracy: float | None
    learning_rate: float  # the rate used during this epoch (after the schedule)
    #: Per numbered layer that has parameters ("layer 1", "layer 2", ...; a residual block's
    #: sum and a dropout stage have none): the mean over the epoch's steps of the L2 norm of
    #: that layer's whole gradient (W and b, γ and β, any learned activation parameter together).
    gradient_norms: Mapping[str, float]
    steps: int  # optimizer steps taken so far, over all epochs
    seconds: float  # wall time of this epoch


@dataclass(frozen=True)
class Settings:
    """How a run was set up: from the command line, else the spec's [training] table, else defaults."""

    data: str
    optimizer: str
    learning_rate: float
    epochs: int
    batch_size: int | None  # None: full batch
    seed: int
    init: str  # an init scheme name: "glorot_uniform", "he_normal", ...
    schedule: str  # "constant", "step" or "cosine"
    #: Hyperparameters of the optimizer and the schedule as given or defaulted (β₁, step size ...).
    hyperparameters: Mapping[str, float] = field(default_factory=dict)
    clip_value: float | None = None
    clip_norm: float | None = None


@dataclass(frozen=True)
class TrainingResult:
    """A finished (or stopped) run: the history, the final metrics and why it stopped."""

    title: str
    settings: Settings
    history: tuple[Epoch, ...]
    test_loss: float | None  # None when training stopped on a NaN before any epoch ended
    test_accuracy: float | None
    #: None when every epoch ran; otherwise one sentence: "interrupted (Ctrl-C) in epoch 3",
    #: or the NaN/inf message naming epoch, step, layer and the likely cause.
    stopped: str | None
    parameters: Mapping[str, np.ndarray]
    #: Sizes of the data set's parts and its classes, for the report.
    train_size: int = 0
    val_size: int = 0
    test_size: int = 0
    classes: tuple[str, ...] = ()
    #: θ and its gradient for the first entry of W1 (else the first parameter) at step 1: the report's worked update.
    first_step: tuple[float, float] | None = None
    #: The running statistics that evaluation uses (batch norm's ``mean2``, ``var2``, ...), as
    #: training left them: part of the trained model, with ``parameters``. Empty without batch norm.
    state: Mapping[str, np.ndarray] = field(default_factory=dict)
    #: Which entry ``first_step`` is: the array's name and the entry's index in it, ("W1", (0, 0)).
    first_entry: tuple[str, tuple[int, ...]] | None = None
    #: Set when the loss went flat with a vanishing gradient before the run learned.
    stall: Stall | None = None
    #: What the trained classifier makes of the test set (empty for regression).
    classified: Classified | None = None


@dataclass(frozen=True)
class Saturation:
    """How much of one layer's activation has no slope left, on the training examples."""

    layer: int
    activation: str
    saturated: float  # the fraction of units × examples with |f′(z)| < SATURATED
    dead: float  # the fraction of units with f′(z) = 0 on every example


@dataclass(frozen=True)
class Stall:
    """Training went flat before it learned: the loss stopped moving and the gradient vanished."""

    since: int  # the first epoch of the flat stretch
    loss: float  # the training loss over it
    initial_loss: float  # the training loss at initialization, before any step
    gradient_norm: float  # of the last epoch, every layer together
    largest_norm: float  # the largest of the run, for scale
    layers: tuple[Saturation, ...]
    cause: str  # one sentence: the likely cause and what to try

    @property
    def message(self) -> str:
        return (
            f"training stalled from epoch {self.since} on: the training loss stayed at {self.loss:.4g} "
            f"({self.initial_loss:.4g} at initialization) and the gradient norm fell to {self.gradient_norm:.2g} "
            f"(at most {self.largest_norm:.2g} earlier); {self.cause}"
        )


@dataclass(frozen=True)
class Boundary:
    """A 2-D classifier's predicted class over a grid of the plane, with the training examples (features as loaded)."""

    x: tuple[float, ...]  # the grid's columns: the first feature
    y: tuple[float, ...]  # its rows: the second feature
    predicted: tuple[tuple[int, ...], ...]  # the class index at [row][column]
    points: tuple[tuple[float, float, int], ...]  # each training example: its two features and its class index
    #: Two classes: a score at [row][column] that is above 0 where class 1 is predicted (the output
    #: less its threshold, or the two outputs' difference), so the border is a smooth level line.
    margin: tuple[tuple[float, ...], ...] | None = None


@dataclass(frozen=True)
class Miss:
    """A test example the trained classifier gets wrong."""

    row: int  # of the test part, from 1
    truth: str
    predicted: str
    #: The example's pixels as rows, as loaded (an image data set only; else empty).
    image: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class Classified:
    """What the trained classifier makes of the test set."""

    #: ``confusion[i][j]``: the test examples of class i predicted as class j.
    confusion: tuple[tuple[int, ...], ...]
    #: The first misclassified test examples (at most MISSES), in row order.
    misses: tuple[Miss, ...] = ()
    missed: int = 0  # how many test examples are misclassified in all
    boundary: Boundary | None = None  # for a data set of two features


#: What a run uses when neither the command line nor the spec's [training] table says.
DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "optimizer": "adam",
        "learning_rate": 0.01,
        "epochs": 30,
        "batch_size": 32,
        "seed": 0,
        "init": "glorot_uniform",
        "schedule": "constant",
        "clip_value": None,
        "clip_norm": None,
    }
)
MAX_EPOCHS = 100_000

# A stall: over its last STALL_SHARE of the epochs (at least STALL_EPOCHS) the training loss
# moved by less than FLAT of itself, the last gradient norm is below VANISHED of the run's
# largest, and the loss is still above LEARNED of its value at initialization (below, a flat
# loss and a vanishing gradient are what convergence looks like).
STALL_EPOCHS = 5
STALL_SHARE = 0.1
FLAT = 1e-4
VANISHED = 1e-6
LEARNED = 0.01
#: |f′(z)| below this counts an activation as saturated (as ``flow.SATURATED``).
SATURATED = 0.01
#: A layer is named as a stall's cause when this share of its units × examples is saturated
#: (a healthy relu layer has no slope on about half of them), or this share of its units is dead.
MOSTLY_SATURATED = 0.9
MOSTLY_DEAD = 0.5
#: The training rows a stall's diagnosis looks at: enough to measure, few enough to be quick.
DIAGNOSED_ROWS = 512
#: A decision boundary's grid has this many points a side.
GRID = 120
#: The misclassified test examples a result keeps (with their images, for an image data set).
MISSES = 12
_KEYS = {"data", "hyperparameters", *DEFAULTS}


def settings(
    table: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None, network: Network | None = None
) -> Settings:
    """The run's settings: ``overrides`` (the command line), else the spec's [training] table, else DEFAULTS.

    Every value is checked; a wrong one raises ``SpecError("training.<key>", ...)``. With
    ``network``, the settings are also checked against it: batch norm cannot train on
    batches of one example.

    >>> settings({"data": "xor", "epochs": 5}, {"optimizer": "sgd"}).optimizer
    'sgd'
    >>> settings({"data": "xor", "epochs": 0})
    Traceback (most recent call last):
    ...
    chainrule.spec.SpecError: <network>: training.epochs: must be a whole number from 1 to 100000, got 0
    >>> from chainrule.network import BatchNorm, Dense
    >>> settings({"data": "xor", "batch_size": 1}, network=Network(2, (Dense(2, "relu"), BatchNorm(), Dense(1, "sigmoid")), "bce"))
    Traceback (most recent call last):
    ...
    chainrule.spec.SpecError: <network>: training.batch_size: batch norm normalizes over the examples of a batch, so a batch of 1 has nothing to normalize; use 2 or more (e.g. 32) or "full"
    """
    table = dict(table or {})
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise SpecError(f"training.{unknown[0]}", f"unknown key; known keys are {', '.join(sorted(_KEYS))}")
    merged = {**DEFAULTS, **table, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    data = merged.get("data")
    if data is None:
        raise SpecError("training.data", f"no data set given; use --data NAME or data = \"…\" in [training] ({', '.join(DATASETS)})")
    for key, what, table_ in (("data", "data set", DATASETS), ("optimizer", "optimizer", OPTIMIZERS),
                              ("schedule", "schedule", SCHEDULES), ("init", "init", INIT_SCHEMES)):  # fmt: skip
        if not isinstance(merged[key], str) or merged[key] not in table_:
            raise SpecError(f"training.{key}", suggest.unknown(what, str(merged[key]), table_))
    rate = _positive(merged["learning_rate"], "learning_rate")
    epochs = _whole(merged["epochs"], "epochs", 1, MAX_EPOCHS)
    batch = merged["batch_size"]
    batch = None if batch == "full" else _whole(batch, "batch_size", 1, 10**7)
    seed = _whole(merged["seed"], "seed", 0, 2**32 - 1)
    clip_value = None if merged["clip_value"] is None else _positive(merged["clip_value"], "clip_value")
    clip_norm = None if merged["clip_norm"] is None else _positive(merged["clip_norm"], "clip_norm")
    hyper = merged.get("hyperparameters") or {}
    if not isinstance(hyper, Mapping):
        raise SpecError("training.hyperparameters", "must be a table such as { beta1 = 0.9, step_size = 10 }")
    optimizer, schedule = OPTIMIZERS[merged["optimizer"]], SCHEDULES[merged["schedule"]]
    if batch == 1 and network is not None and network.couples_batch and not optimizer.full_batch:
        raise SpecError(
            "training.batch_size",
            "batch norm normalizes over the examples of a batch, so a batch of 1 has nothing to normalize; "
            'use 2 or more (e.g. 32) or "full"',
        )
    known = {p.name: p for p in (*optimizer.hyperparameters, *schedule.parameters)}
    values = {}
    for name, value in hyper.items():
        if name not in known:
            raise SpecError(
                f"training.hyperparameters.{_show(name)}",
                f"not a hyperparameter of {optimizer.name} or the {schedule.name} schedule; "
                f"use {', '.join(known) or 'none'}",
            )
        values[name] = _number(value, f"hyperparameters.{name}")
    try:
        resolved = {**resolve(optimizer.hyperparameters, values), **resolve(schedule.parameters, values)}
    except ValueError as exc:
        raise SpecError("training.hyperparameters", str(exc)) from None
    return Settings(data, optimizer.name, rate, epochs, batch, seed, merged["init"], schedule.name, resolved,
                    clip_value, clip_norm)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"training.{key}", f"must be a finite number, got {_show(value)}")
    return float(value)


def _positive(value: Any, key: str) -> float:
    number = _number(value, key)
    if number <= 0:
        raise SpecError(f"training.{key}", f"must be greater than 0, got {_show(value)}")
    return number


def _whole(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(f"training.{key}", f"must be a whole number from {low} to {high}, got {_show(value)}")
    return value


def batches(n: int, size: int | None, rng: np.random.Generator, pairs: bool = False) -> list[np.ndarray]:
    """One epoch's batches: the rows shuffled, cut into ``size`` (the last one may be smaller).

    With ``pairs`` (batch norm, which has no statistics over one example) a last lone row
    joins the batch before it (one batch of size + 1) rather than being dropped, so every row
    is still seen once per epoch.

    >>> [b.tolist() for b in batches(5, 2, np.random.default_rng(0))]
    [[2, 4], [3, 0], [1]]
    >>> [b.tolist() for b in batches(5, 2, np.random.default_rng(0), pairs=True)]
    [[2, 4], [3, 0, 1]]
    """
    if size is None or size >= n:
        return [np.arange(n)]
    order = rng.permutation(n)
    parts = [order[i : i + size] for i in range(0, n, size)]
    if pairs and len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2:] = [np.concatenate(parts[-2:])]
    return parts


class _Diverged(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _layer_of(name: str) -> int:
    return int("".join(ch for ch in name if ch.isdigit()))


def _numbered(params: Mapping[str, np.ndarray]) -> list[int]:
    """The numbers of the stages that have parameters (W1 b1 gamma2 beta2 W3 b3 -> 1, 2, 3), in order."""
    return sorted({_layer_of(name) for name in params})


def _layer_norms(grads: Mapping[str, np.ndarray], stages: list[int]) -> np.ndarray:
    """The L2 norm of each stage's gradient, in the order of ``stages``."""
    position = {l: k for k, l in enumerate(stages)}
    squares = np.zeros(len(stages))
    for name, g in grads.items():
        squares[position[_layer_of(name)]] += float(np.vdot(g, g))
    return np.sqrt(squares)


def _diverged(epoch: int, step: int, what: str, grads, stages: list[int], recent: list[float], rate: float) -> _Diverged:
    norms = _layer_norms({k: np.nan_to_num(v, nan=np.inf) for k, v in grads.items()}, stages)
    bad = [stages[k] for k in range(len(stages)) if not np.isfinite(norms[k])]
    layer = bad[-1] if bad else stages[int(np.argmax(norms))]
    growth = ""
    if len(recent) >= 2 and recent[0] > 0:
        growth = f"; the gradient norm went from {recent[0]:.3g} to {recent[-1]:.3g} over the last {len(recent)} steps"
    exploding = len(recent) >= 2 and recent[-1] > 100 * max(recent[0], 1e-12)
    cause = (
        "the gradients are exploding: clip them (--clip-norm 1) or lower the learning rate"
        if exploding
        else f"the learning rate ({rate:g}) is probably too high: try a tenth of it"
    )
    return _Diverged(f"{what} became NaN or infinite in epoch {epoch}, step {step}, in layer {layer}{growth}; {cause}")


def fit(
    model: Model,
    data: Dataset,
    run: Settings,
    on_step: Callable[[int, int, int, float], None] | None = None,
    on_epoch: Callable[[Epoch], None] | None = None,
    title: str = "",
) -> TrainingResult:
    """Train ``model`` on ``data`` as ``run`` says; stop cleanly on Ctrl-C or a NaN, and report.

    Every layer kind trains: batch norm's running statistics start as ``model.init_state()``,
    each step updates them (as PyTorch does in ``train()`` mode), every evaluation uses them,
    and the result keeps them as ``state``; dropout's masks come from a generator seeded by
    ``run.seed``, so a run is the same every time.

    ``on_step(epoch, step_in_epoch, steps_in_epoch, loss)`` and ``on_epoch(Epoch)`` let a
    caller draw progress. A run that was not stopped says whether it stalled (``stall``); a
    classifier's, what it makes of the test set (``classified``).

    >>> from chainrule.model import compile
    >>> from chainrule.network import Network, Dense
    >>> from chainrule.datasets import load_dataset
    >>> net = Network(2, (Dense(2, "sigmoid"), Dense(1, "sigmoid")), "mse")
    >>> run = settings({"data": "xor", "optimizer": "sgd", "learning_rate": 2.0, "epochs": 3, "batch_size": "full"})
    >>> result = fit(compile(net), load_dataset("xor", outputs=1, targets="unit"), run)
    >>> [e.steps for e in result.history], result.stopped
    ([1, 2, 3], None)
    """
    optimizer, schedule = OPTIMIZERS[run.optimizer], SCHEDULES[run.schedule]
    params = model.init_params(seed=run.seed, scheme=run.init)
    slots = optimizer.init_state(params)
    # The running statistics, updated in place by every loss_and_grad (as PyTorch's are) and
    # used by every evaluation.
    running = model.init_state()
    rng = np.random.default_rng((run.seed, 2))  # its own stream: batches do not move when init draws more
    masks = np.random.default_rng((run.seed, 3))  # dropout's masks: a stream of their own, so the batches stay put
    X, Y = data.X_train, data.Y_train
    size = None if optimizer.full_batch else run.batch_size
    stages = _numbered(params)
    history: list[Epoch] = []
    stopped, t, first = None, 0, None
    watched = "W1" if "W1" in params else next(iter(params))
    initial_loss, _ = _evaluate(model, params, running, data, "train")
    recent: list[float] = []
    epoch = 0
    # Overflow is judged on the results (each step checks for NaN and inf and says where),
    # so NumPy's warnings on the way there are noise.
    with np.errstate(all="ignore"):
        try:
            for epoch in range(1, run.epochs + 1):
                started = time.perf_counter()
                rate = schedule.rate(run.learning_rate, epoch - 1, run.epochs, run.hyperparameters)
                parts = batches(len(X), size, rng, pairs=model.network.couples_batch)
                norms = np.zeros(len(stages))
                for i, rows in enumerate(parts, start=1):
                    loss, grads = model.loss_and_grad(params, X[rows], Y[rows], state=running, rng=masks)
                    step_norms = _layer_norms(grads, stages)
                    if not (math.isfinite(loss) and np.isfinite(step_norms).all()):
                        raise _diverged(epoch, t + 1, "the loss" if not math.isfinite(loss) else "the gradient",
                                        grads, stages, recent, rate)
                    norms += step_norms
                    recent = [*recent[-9:], float(np.sqrt((step_norms**2).sum()))]
                    if run.clip_value is not None:
                        grads = clip_by_value(grads, run.clip_value)
                    if run.clip_norm is not None:
                        grads, _ = clip_by_norm(grads, run.clip_norm)
                    if first is None:
                        first = (float(np.ravel(params[watched])[0]), float(np.ravel(grads[watched])[0]))
                    t += 1
                    params, slots = optimizer.step(params, grads, slots, rate, t, run.hyperparameters)
                    if on_step is not None:
                        on_step(epoch, i, len(parts), loss)
                finished = _evaluate(model, params, running, data, "train") + _evaluate(model, params, running, data, "val")
                if not (all(v is None or math.isfinite(v) for v in finished)
                        and all(np.isfinite(v).all() for v in running.values())):
                    raise _diverged(epoch, t, "the parameters", params, stages, recent, rate)
                record = Epoch(epoch, *finished, rate, {f"layer {l}": float(norms[k] / len(parts)) for k, l in enumerate(stages)},
                               t, time.perf_counter() - started)
                history.append(record)
                if on_epoch is not None:
                    on_epoch(record)
        except KeyboardInterrupt:
            stopped = f"interrupted (Ctrl-C) in epoch {epoch}; the report covers the {len(history)} epochs that finished"
        except _Diverged as exc:
            stopped = exc.message
    test_loss, test_accuracy = _evaluate(model, params, running, data, "test")
    if test_loss is not None and not math.isfinite(test_loss):
        test_loss, test_accuracy = None, None
    stall = None if stopped else stalled(model, params, running, data, tuple(history), initial_loss, run)
    classified = classify(model, params, running, data) if test_accuracy is not None else None
    return TrainingResult(
        title, run, tuple(history), test_loss, test_accuracy, stopped, params,
        len(data.X_train), len(data.X_val), len(data.X_test), data.classes, first,
        {name: np.array(value) for name, value in running.items()},
        (watched, (0,) * np.ndim(params[watched])), stall, classified,
    )


def _evaluate(model: Model, params, state, data: Dataset, part: str) -> tuple[float | None, float | None]:
    X, Y, labels = getattr(data, f"X_{part}"), getattr(data, f"Y_{part}"), getattr(data, f"labels_{part}")
    with np.errstate(all="ignore"):
        loss, scores = model.loss_and_predict(params, X, Y, state=state)
    if not np.isfinite(scores).all():
        return float(loss), None
    return float(loss), accuracy(labels, scores, data.targets)


# --- after training: a stall and its likely cause, what the classifier makes of the test set --


def _total_norm(e: Epoch) -> float:
    return math.sqrt(sum(v * v for v in e.gradient_norms.values()))


def flat_since(history: tuple[Epoch, ...]) -> int | None:
    """The epoch from which the training loss stayed within FLAT of its last value, if that stretch is long enough.

    >>> run = [Epoch(i, l, None, l, None, 0.1, {}, i, 0.0) for i, l in enumerate([0.3, 0.25, *[0.5] * 9], 1)]
    >>> flat_since(tuple(run)), flat_since(tuple(run[:6]))
    (3, None)
    """
    if not history:
        return None
    last = history[-1].train_loss
    since = len(history)
    while since > 1 and abs(history[since - 2].train_loss - last) <= FLAT * abs(last):
        since -= 1
    needed = max(STALL_EPOCHS, math.ceil(STALL_SHARE * len(history)))
    return history[since - 1].epoch if len(history) - since + 1 >= needed else None


def saturation(model: Model, params, state, X: np.ndarray, Y: np.ndarray) -> tuple[Saturation, ...]:
    """Each layer with an element-wise activation: how much of it has no slope left on these rows."""
    stages = {s.number: s for s in model.network.stages}
    with np.errstate(all="ignore"):
        # a copy of the running statistics: a pass in training mode moves them
        _, _, arrays = model.trace(params, X, Y, state={k: np.array(v) for k, v in state.items()},
                                   rng=np.random.default_rng(0))  # fmt: skip
        out = []
        for number in sorted(stages):
            kernel = model.kernels.get(f"k_df{number}")
            if kernel is None or f"Z{number}" not in arrays:
                continue
            z = arrays[f"Z{number}"]
            slope = np.broadcast_to(np.abs(kernel(z, arrays[f"A{number}"])), z.shape)
            out.append(Saturation(number, stages[number].choice.name, float(np.mean(slope < SATURATED)),
                                  float(np.mean(np.all(slope == 0, axis=0)))))  # fmt: skip
    return tuple(out)


def _cause(layers: tuple[Saturation, ...], run: Settings, rose: bool) -> str:
    """The likely cause of a stall, from what the layers measured, and what to try."""
    lower = f"--lr {run.learning_rate / 10:g}"
    why = (f"the first steps overshot (the loss rose above its value at initialization), as a learning rate too "
           f"high for the problem ({run.learning_rate:g}) does: try {lower}") if rose else (
           f"a learning rate too high for the problem ({run.learning_rate:g}) or large initial weights ({run.init}) "
           f"put them there: try {lower} or --init glorot_normal")  # fmt: skip
    dead = [l for l in layers if l.dead >= MOSTLY_DEAD]
    if dead:
        shown = " and ".join(f"{l.dead:.0%} of the units of layer {l.layer} ({l.activation})" for l in dead)
        return f"{shown} are dead, with f′(z) = 0 on every training example, so no gradient reaches their weights; {why}"
    saturated = [l for l in layers if l.saturated >= MOSTLY_SATURATED]
    if saturated:
        shown = " and ".join(f"{l.saturated:.0%} of layer {l.layer} ({l.activation})" for l in saturated)
        return (f"the units are saturated, |f′(z)| < {SATURATED:g} for {shown} over the training examples, "
                f"so almost no gradient flows back through them; {why}")  # fmt: skip
    return ("no layer is saturated or dead, so the run sits on a flat stretch of the loss (a plateau, a saddle or a "
            "poor local minimum): try another --seed, a learning-rate schedule or adam")  # fmt: skip


def stalled(
    model: Model, params, state, data: Dataset, history: tuple[Epoch, ...], initial_loss: float | None, run: Settings
) -> Stall | None:
    """A stall, with its likely cause; None when the run learned, or is still moving."""
    since = flat_since(history)
    if since is None or initial_loss is None or not math.isfinite(initial_loss):
        return None
    loss, norm, largest = history[-1].train_loss, _total_norm(history[-1]), max(map(_total_norm, history))
    if not (norm <= VANISHED * largest and loss > LEARNED * initial_loss):
        return None
    rows = slice(0, DIAGNOSED_ROWS)
    layers = saturation(model, params, state, data.X_train[rows], data.Y_train[rows])
    rose = any(e.train_loss > initial_loss for e in history[: max(STALL_EPOCHS, len(history) // 10)])
    return Stall(since, loss, initial_loss, norm, largest, layers, _cause(layers, run, rose))


def predicted_classes(scores: np.ndarray, targets: str) -> np.ndarray:
    """The class each row of scores predicts, as ``datasets.accuracy`` reads them.

    >>> predicted_classes(np.array([[0.2], [0.7]]), "unit").tolist(), predicted_classes(np.array([[0.1, 0.9]]), "distribution").tolist()
    ([0, 1], [1])
    """
    if scores.shape[1] == 1:
        return (scores[:, 0] > (0.0 if targets == "sign" else 0.5)).astype(int)
    return np.argmax(scores, axis=1)


def classify(model: Model, params, state, data: Dataset) -> Classified | None:
    """The confusion matrix of the test set, its first misclassified examples, and a 2-D set's decision boundary."""
    if not data.classes:
        return None
    k = len(data.classes)
    with np.errstate(all="ignore"):
        scores = model.predict(params, data.X_test, state=state)
    if not np.isfinite(scores).all():
        return None
    guess, truth = predicted_classes(scores, data.targets), np.asarray(data.labels_test)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (truth, guess), 1)
    wrong = np.flatnonzero(guess != truth)
    shape = DATASETS[data.name].image if data.name in DATASETS else None
    misses = tuple(
        Miss(int(i) + 1, data.classes[truth[i]], data.classes[guess[i]],
             () if shape is None else _rows((data.X_test[i] * data.scale + data.mean).reshape(shape)))
        for i in wrong[:MISSES]
    )  # fmt: skip
    boundary = _boundary(model, params, state, data) if data.features == 2 else None
    return Classified(_rows(confusion), misses, len(wrong), boundary)


def _rows(values: np.ndarray) -> tuple:
    return tuple(tuple(v.item() for v in row) for row in values)


def _boundary(model: Model, params, state, data: Dataset) -> Boundary | None:
    seen = np.concatenate([data.X_train, data.X_val, data.X_test]) * data.scale + data.mean
    low, high = seen.min(axis=0), seen.max(axis=0)
    margin = 0.15 * np.maximum(high - low, 1e-9)
    xs, ys = (np.linspace(low[i] - margin[i], high[i] + margin[i], GRID) for i in (0, 1))
    plane = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    with np.errstate(all="ignore"):
        scores = model.predict(params, (plane - data.mean) / data.scale, state=state)
    if not np.isfinite(scores).all():
        return None
    grid = predicted_classes(scores, data.targets).reshape(GRID, GRID)
    train = data.X_train * data.scale + data.mean
    points = tuple((float(a), float(b), int(c)) for (a, b), c in zip(train, data.labels_train))
    margin = None
    if scores.shape[1] <= 2:
        one = scores[:, 0] - (0.0 if data.targets == "sign" else 0.5) if scores.shape[1] == 1 else scores[:, 1] - scores[:, 0]
        margin = _rows(one.reshape(GRID, GRID))
    return Boundary(tuple(map(float, xs)), tuple(map(float, ys)), _rows(grid), points, margin)
