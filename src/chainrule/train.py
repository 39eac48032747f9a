"""Training over real data with the compiled gradients: settings, the loop, history, clean stops.

``fit`` runs mini-batch training with any optimizer of ``optim.OPTIMIZERS``, records each
epoch (losses, accuracies, the rate, per-layer gradient norms), and stops cleanly on
Ctrl-C or on a NaN, saying where it happened and what is the likely cause. The result is
plain data; ``render/training.py`` writes the report.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

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
    if data not in DATASETS:
        raise SpecError("training.data", f"unknown data set {_show(data)}; use one of {', '.join(DATASETS)}")
    for key, table_ in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("init", INIT_SCHEMES)):
        if merged[key] not in table_:
            raise SpecError(f"training.{key}", f"unknown {key} {_show(merged[key])}; use one of {', '.join(table_)}")
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
    caller draw progress.

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
    return TrainingResult(
        title, run, tuple(history), test_loss, test_accuracy, stopped, params,
        len(data.X_train), len(data.X_val), len(data.X_test), data.classes, first,
        {name: np.array(value) for name, value in running.items()},
    )


def _evaluate(model: Model, params, state, data: Dataset, part: str) -> tuple[float | None, float | None]:
    X, Y, labels = getattr(data, f"X_{part}"), getattr(data, f"Y_{part}"), getattr(data, f"labels_{part}")
    with np.errstate(all="ignore"):
        loss, scores = model.loss_and_predict(params, X, Y, state=state)
    if not np.isfinite(scores).all():
        return float(loss), None
    return float(loss), accuracy(labels, scores, data.targets)
