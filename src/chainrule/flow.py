"""Gradient flow measured: per-layer gradient norms across depth, activations, inits and remedies.

``study(settings)`` builds one network for every combination of the grid (``FlowSettings``),
runs the compiled code (``Model.trace``) on one fixed batch of real data at initialization
for several seeds, trains each network briefly with SGD, and classifies each run by the
ratio of the first hidden layer's weight-gradient norm to the last one's. A clipping study
trains one network that explodes at a high learning rate with and without ``clip_norm``.

Everything is plain data; ``render/flow.py`` writes the report. Nothing here is typed in:
every number comes from running the network.

>>> s = flow_settings(depths=[3], activations=["tanh"], inits=["glorot_normal"], epochs=1, seeds=1)
>>> [c.label for c in s.grid]
['tanh, glorot_normal, depth 3']
>>> flow_settings(activations=["sigmod"])
Traceback (most recent call last):
...
chainrule.flow.FlowError: --activation: unknown activation 'sigmod'; did you mean 'sigmoid'? (use identity, sigmoid, tanh, relu, leaky_relu, prelu, elu, selu, softplus, silu, gelu, gelu_tanh, softsign or hard_tanh)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import suggest
from .catalog import ACTIVATIONS
from .datasets import DATASETS, Dataset, load_dataset
from .model import INIT_SCHEMES, Model, compile
from .network import BatchNorm, Dense, Network, Residual
from .optim import OPTIMIZERS, clip_by_norm
from .train import batches

#: The cures a run can apply; "clip" trains with the global gradient norm clipped.
REMEDIES = ("none", "batch_norm", "residual", "clip")
#: |f′(z)| below this counts an activation as saturated.
SATURATED = 0.01
MAX_DEPTH = 200
MAX_WIDTH = 512
MAX_RUNS = 200
#: The grid that tells the story with no options: (activation, init, remedy).
DEFAULT_COMBINATIONS = (
    ("sigmoid", "standard_normal", "none"),
    ("sigmoid", "glorot_normal", "none"),
    ("tanh", "standard_normal", "none"),
    ("tanh", "glorot_normal", "none"),
    ("relu", "standard_normal", "none"),
    ("relu", "he_normal", "none"),
    ("sigmoid", "glorot_normal", "batch_norm"),
    ("sigmoid", "glorot_normal", "residual"),
)
DEFAULT_DEPTHS = (5, 10, 20)
#: The clipping study: a relu network with He init explodes under SGD at this rate.
CLIP_STUDY = ("relu", "he_normal")


#: The network the report's symbolic section derives: one hidden layer of each of sigmoid,
#: tanh and relu, so the three famous bounds appear (σ′ ≤ 1/4, tanh′ ≤ 1, relu′ ∈ {0, 1}).
FLOW_EXAMPLE = Network(
    # In this order no relu unit of the worked example (seed 0) is off, so no δ below it is 0.
    2, (Dense(2, "sigmoid"), Dense(2, "relu"), Dense(2, "tanh"), Dense(1, "sigmoid")), "bce",
    title="Three hidden layers: sigmoid, relu, tanh",
)  # fmt: skip
#: A spec with at most this many parameters gets its own symbolic section in the report.
THEORY_PARAMETERS = 200


class FlowError(ValueError):
    """A bad option of ``chainrule flow``: the message names the option and what would be right."""


@dataclass(frozen=True)
class Combination:
    """One network of the grid: its hidden activation, the weights' init scheme, the remedy and the depth."""

    activation: str
    init: str
    remedy: str
    depth: int  # hidden dense layers

    @property
    def label(self) -> str:
        remedy = "" if self.remedy == "none" else f", {self.remedy.replace('_', ' ')}"
        return f"{self.activation}, {self.init}{remedy}, depth {self.depth}"

    @property
    def family(self) -> str:
        """The label without the depth: one curve of the report's charts."""
        return self.label.rsplit(", depth", 1)[0]


@dataclass(frozen=True)
class FlowSettings:
    """How a study is set up; every value has been checked."""

    grid: tuple[Combination, ...]
    width: int
    data: str
    batch_size: int  # rows of the measured batch, and of each training step
    epochs: int
    seed: int
    seeds: int  # initializations measured per run: seed, seed + 1, ...
    learning_rate: float  # SGD's rate in the short training runs
    clip_norm: float
    clip_learning_rate: float  # the clipping study's rate, high enough to explode without clipping
    vanishing: float  # a first/last ratio below this is "vanishing"
    exploding: float  # above this, "exploding"
    #: The clipping study's network, or None for no study.
    clip_study: Combination | None


def _unknown(name: str, table: Sequence[str], option: str, what: str) -> FlowError:
    return FlowError(f"{option}: {suggest.unknown(what, str(name), table)}")


def _names(values: Sequence[str] | None, table: Sequence[str], option: str, what: str, default: Sequence[str]) -> tuple[str, ...]:
    if values is None:
        return tuple(default)
    if not values:
        raise FlowError(f"{option}: the list is empty; give one or more of {', '.join(table)}")
    for name in values:
        if name not in table:
            raise _unknown(name, table, option, what)
    return tuple(dict.fromkeys(values))


def _whole(value: int, option: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FlowError(f"{option}: must be a whole number from {low} to {high}, got {value!r}")
    return value


def _positive(value: float, option: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise FlowError(f"{option}: must be a number greater than 0, got {value!r}")
    return float(value)


def elementwise_activations() -> tuple[str, ...]:
    """The activations a hidden layer of a study can have: the catalog's elementwise ones."""
    return tuple(name for name, entry in ACTIVATIONS.items() if entry.elementwise)


def flow_settings(
    depths: Sequence[int] | None = None,
    width: int = 32,
    activations: Sequence[str] | None = None,
    inits: Sequence[str] | None = None,
    remedies: Sequence[str] | None = None,
    data: str = "digits",
    batch_size: int = 256,
    epochs: int = 10,
    seed: int = 0,
    seeds: int = 3,
    learning_rate: float = 0.1,
    clip_norm: float = 1.0,
    clip_learning_rate: float = 0.5,
    vanishing: float = 1e-3,
    exploding: float = 1e3,
) -> FlowSettings:
    """Check every option and build the grid.

    With none of ``activations``, ``inits``, ``remedies`` the grid is ``DEFAULT_COMBINATIONS``
    at every depth; with any of them, the product of the lists given (sigmoid, glorot_normal
    and none for a list not given).
    """
    if depths is not None and not depths:
        raise FlowError("--depth: the list is empty; give one or more depths such as 5,10,20")
    depth_list = tuple(dict.fromkeys(_whole(d, "--depth", 1, MAX_DEPTH) for d in (depths or DEFAULT_DEPTHS)))
    activation_names = elementwise_activations()
    if activations is not None and any(a == "softmax" for a in activations):
        raise FlowError("--activation: softmax is not elementwise, so it is only an output layer; use sigmoid, tanh, relu, ...")
    if activations is None and inits is None and remedies is None:
        combos = DEFAULT_COMBINATIONS
    else:
        acts = _names(activations, activation_names, "--activation", "activation", ("sigmoid",))
        schemes = _names(inits, tuple(INIT_SCHEMES), "--init", "init scheme", ("glorot_normal",))
        cures = _names(remedies, REMEDIES, "--remedy", "remedy", ("none",))
        combos = tuple((a, i, r) for a in acts for i in schemes for r in cures)
    grid = tuple(Combination(a, i, r, d) for a, i, r in combos for d in depth_list)
    if len(grid) > MAX_RUNS:
        raise FlowError(f"the grid has {len(grid)} runs; at most {MAX_RUNS} are allowed: give shorter lists")
    if data not in DATASETS:
        raise _unknown(data, tuple(DATASETS), "--data", "data set")
    deepest = max(depth_list)
    clipped = [c for c in grid if c.remedy == "clip" and c.depth == deepest]
    if clipped:
        study = Combination(clipped[0].activation, clipped[0].init, "clip", deepest)
    elif activations is None and inits is None and remedies is None:
        study = Combination(*CLIP_STUDY, "clip", deepest)
    else:
        study = None
    return FlowSettings(
        grid, _whole(width, "--width", 1, MAX_WIDTH), data, _whole(batch_size, "--batch-size", 2, 100_000),
        _whole(epochs, "--epochs", 1, 1000), _whole(seed, "--seed", 0, 2**32 - 1), _whole(seeds, "--seeds", 1, 20),
        _positive(learning_rate, "--lr"), _positive(clip_norm, "--clip-norm"), _positive(clip_learning_rate, "--clip-lr"),
        _positive(vanishing, "--vanishing"), _positive(exploding, "--exploding"), study,
    )  # fmt: skip


def spec_defaults(network: Network) -> dict[str, object]:
    """The grid's defaults from a spec: its first hidden layer's width and activation, its depth, remedy, data and init.

    >>> from chainrule.network import Network, Dense
    >>> spec_defaults(Network(64, (Dense(16, "tanh"), Dense(16, "tanh"), Dense(10, "softmax")), "cross_entropy"))
    {'width': 16, 'activations': ['tanh'], 'depths': [2], 'remedies': ['none']}
    """
    dense = [s for s in network.stages if s.kind == "dense"]
    if len(dense) < 2:
        raise FlowError("network.layers: a study needs at least one hidden dense layer before the output layer")
    first = dense[0]
    name = first.choice.entry.name if first.choice is not None else None
    if name not in elementwise_activations():
        raise FlowError(f"network.layers[0].activation: a study varies catalog activations; {name!r} is not one "
                        f"(use {', '.join(elementwise_activations())})")  # fmt: skip
    kinds = {s.kind for s in network.stages}
    remedy = "batch_norm" if "batch_norm" in kinds else "residual" if "residual" in kinds else "none"
    out: dict[str, object] = {"width": first.units, "activations": [name], "depths": [len(dense) - 1], "remedies": [remedy]}
    training = network.training or {}
    if isinstance(training.get("data"), str):
        out["data"] = training["data"]
    if isinstance(training.get("init"), str):
        out["inits"] = [training["init"]]
    return out


def network_for(c: Combination, inputs: int, outputs: int, width: int) -> Network:
    """The network of a combination: ``depth`` hidden dense layers of ``width``, then softmax.

    Batch norm follows every hidden layer; residual blocks wrap every hidden layer after the
    first (which maps the inputs to ``width``), so a⁽ˡ⁾ = a⁽ˡ⁻¹⁾ + f(W⁽ˡ⁾a⁽ˡ⁻¹⁾ + b⁽ˡ⁾).

    >>> [s.kind for s in network_for(Combination("relu", "he_normal", "residual", 2), 4, 3, 5).stages]
    ['dense', 'dense', 'residual', 'dense']
    """
    hidden = [Dense(width, c.activation) for _ in range(c.depth)]
    if c.remedy == "batch_norm":
        layers = [layer for dense in hidden for layer in (dense, BatchNorm())]
    elif c.remedy == "residual":
        layers = [hidden[0], *(Residual((dense,)) for dense in hidden[1:])]
    else:
        layers = hidden
    output = Dense(outputs, "softmax") if outputs > 1 else Dense(1, "sigmoid")
    loss = "cross_entropy" if outputs > 1 else "bce"
    return Network(inputs, (*layers, output), loss, title=c.label)


def hidden_layers(network: Network) -> tuple[int, ...]:
    """The stage numbers of the hidden dense layers, first first (the output layer is not one)."""
    return tuple(s.number for s in network.stages if s.kind == "dense")[:-1]


@dataclass(frozen=True)
class LayerStats:
    """What one pass measured per hidden layer (tuples in layer order, first hidden layer first)."""

    weight_gradient_norms: tuple[float, ...]  # ‖∂L/∂W⁽ˡ⁾‖_F
    delta_norms: tuple[float, ...]  # mean over the batch of ‖δ⁽ˡ⁾‖₂, δ of one example's loss
    activation_mean: tuple[float, ...]
    activation_std: tuple[float, ...]
    saturated_fraction: tuple[float, ...]  # of the units × examples with |f′(z)| < SATURATED


def measure(model: Model, params: Mapping[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> tuple[LayerStats, dict[str, np.ndarray]]:
    """One forward and backward pass over the batch: its per-layer numbers, and the hidden activations by layer."""
    layers = hidden_layers(model.network)
    n = X.shape[0]
    with np.errstate(all="ignore"):
        _, grads, arrays = model.trace(params, X, Y)
        weight = tuple(float(np.linalg.norm(grads[f"W{l}"])) for l in layers)
        # D is ∂L/∂Z of the batch mean; one example's δ is n times its row.
        delta = tuple(float(np.mean(np.linalg.norm(n * arrays[f"D{l}"], axis=1))) for l in layers)
        activations = {f"A{l}": arrays[f"A{l}"] for l in layers}
        slopes = [model.kernels[f"k_df{l}"](arrays[f"Z{l}"], arrays[f"A{l}"]) for l in layers]
        stats = LayerStats(
            weight, delta,
            tuple(float(a.mean()) for a in activations.values()),
            tuple(float(a.std()) for a in activations.values()),
            tuple(float(np.mean(np.abs(s) < SATURATED)) for s in slopes),
        )  # fmt: skip
    return stats, activations


@dataclass(frozen=True)
class TrainingEpoch:
    """The state after an epoch (epoch 0: at initialization): the training loss and the measured norms."""

    epoch: int
    loss: float  # mean over the training set; nan once training diverged
    weight_gradient_norms: tuple[float, ...]


@dataclass(frozen=True)
class Step:
    """One training step: its batch loss and the global gradient norm before and after clipping."""

    step: int
    loss: float
    norm: float
    clipped_norm: float


@dataclass(frozen=True)
class Training:
    """A short SGD run: per epoch and per step."""

    learning_rate: float
    clip_norm: float | None
    epochs: tuple[TrainingEpoch, ...]
    steps: tuple[Step, ...]
    diverged: bool  # a loss became NaN or infinite, or ended above its start


@dataclass(frozen=True)
class Histogram:
    """Counts of activation values over shared bins, for up to ``HISTOGRAM_LAYERS`` layers spread over the depth."""

    edges: tuple[float, ...]
    counts: Mapping[int, tuple[int, ...]]  # by hidden-layer index, from 1
    #: The values were divided by their layer's standard deviation: the layers' scales differ
    #: by more than ``HISTOGRAM_SCALES`` (relu with N(0, 1) weights), so one axis would show one layer.
    scaled: bool = False


#: How many layers a histogram shows (Glorot & Bengio show five), and its bins.
HISTOGRAM_LAYERS = 5
HISTOGRAM_BINS = 40
HISTOGRAM_SCALES = 100.0


def histogram(activations: Sequence[np.ndarray]) -> Histogram:
    """The values of the first, last and evenly spaced layers between, binned over their common range.

    >>> h = histogram([np.array([0.0, 1.0]), np.array([0.5, 0.5])])
    >>> list(h.counts), h.edges[0], h.edges[-1], sum(h.counts[2])
    ([1, 2], 0.0, 1.0, 2)
    """
    depth = len(activations)
    picks = sorted({round(k * (depth - 1) / (HISTOGRAM_LAYERS - 1)) for k in range(HISTOGRAM_LAYERS)}) if depth > 1 else [0]
    chosen = [np.ravel(activations[k]) for k in picks]
    stds = [float(np.std(a[np.isfinite(a)])) if np.isfinite(a).any() else 0.0 for a in chosen]
    scaled = min(stds) > 0 and max(stds) / min(stds) > HISTOGRAM_SCALES
    if scaled:
        chosen = [a / std for a, std in zip(chosen, stds)]
    values = np.concatenate(chosen)
    values = values[np.isfinite(values)]
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    counts = {k + 1: tuple(int(c) for c in np.histogram(a[np.isfinite(a)], bins=edges)[0]) for k, a in zip(picks, chosen)}
    return Histogram(tuple(edges.tolist()), counts, scaled)


@dataclass(frozen=True)
class Run:
    """One combination, measured."""

    combination: Combination
    width: int
    seeds: tuple[int, ...]
    layers: tuple[int, ...]  # the hidden dense layers' stage numbers
    at_init: LayerStats  # the mean over the seeds
    #: The smallest and largest value over the seeds, per layer: (low, high) of weight_gradient_norms.
    spread: tuple[tuple[float, float], ...]
    ratio: float  # first / last hidden layer's weight-gradient norm (of the means over the seeds)
    verdict: str  # "vanishing", "healthy" or "exploding"
    #: The last hidden layer's activation standard deviation over the first's: the forward
    #: pass's growth, which the gradient ratio does not see (relu with N(0, 1) weights).
    std_growth: float
    saturated: float  # the mean over the hidden layers of the saturated fraction
    training: Training
    #: The first seed's hidden activations at initialization, for a few layers.
    histogram: Histogram


def verdict(ratio: float, vanishing: float, exploding: float) -> str:
    """The rule of the report: below ``vanishing`` the gradient vanishes, above ``exploding`` it explodes.

    >>> verdict(1e-9, 1e-3, 1e3), verdict(0.5, 1e-3, 1e3), verdict(math.inf, 1e-3, 1e3)
    ('vanishing', 'healthy', 'exploding')
    """
    if math.isnan(ratio):
        return "exploding"  # a NaN ratio comes from an overflow: inf/inf
    if ratio < vanishing:
        return "vanishing"
    return "exploding" if ratio > exploding else "healthy"


def train(model: Model, params: dict[str, np.ndarray], data: Dataset, probe: tuple[np.ndarray, np.ndarray],
          epochs: int, batch_size: int, learning_rate: float, clip_norm: float | None, seed: int) -> Training:
    """SGD for ``epochs`` epochs; after each, the training loss and the norms on the probe batch."""
    sgd = OPTIMIZERS["sgd"]
    slots = sgd.init_state(params)
    rng = np.random.default_rng((seed, 2))
    X, Y = data.X_train, data.Y_train
    layers = hidden_layers(model.network)

    def record(epoch: int) -> TrainingEpoch:
        stats, _ = measure(model, params, *probe)
        with np.errstate(all="ignore"):
            loss = model.loss(params, X, Y)
        return TrainingEpoch(epoch, loss if math.isfinite(loss) else math.nan, stats.weight_gradient_norms)

    history, steps, t, diverged = [record(0)], [], 0, False
    nan = tuple(math.nan for _ in layers)
    for epoch in range(1, epochs + 1):
        if diverged:
            history.append(TrainingEpoch(epoch, math.nan, nan))
            continue
        for rows in batches(len(X), batch_size, rng, pairs=model.network.couples_batch):
            with np.errstate(all="ignore"):
                loss, grads = model.loss_and_grad(params, X[rows], Y[rows])
                if clip_norm is None:
                    norm = after = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
                else:
                    grads, norm = clip_by_norm(grads, clip_norm)  # and the norm before clipping
                    after = min(norm, clip_norm)
                t += 1
                steps.append(Step(t, loss if math.isfinite(loss) else math.nan, norm, after))
                if not (math.isfinite(loss) and math.isfinite(norm)):
                    diverged = True
                    break
                params, slots = sgd.step(params, grads, slots, learning_rate, t, {})
        history.append(record(epoch) if not diverged else TrainingEpoch(epoch, math.nan, nan))
    last = history[-1].loss
    diverged = diverged or not math.isfinite(last) or last > history[0].loss
    return Training(learning_rate, clip_norm, tuple(history), tuple(steps), diverged)


def _compiled(c: Combination, s: FlowSettings, data: Dataset) -> tuple[Model, tuple[np.ndarray, np.ndarray]]:
    """The combination's network compiled, and the batch every measurement of it uses (the first training rows)."""
    model = compile(network_for(c, data.X_train.shape[1], data.Y_train.shape[1], s.width))
    return model, (data.X_train[: s.batch_size], data.Y_train[: s.batch_size])


def run(c: Combination, s: FlowSettings, data: Dataset, learning_rate: float | None = None) -> Run:
    """Measure one combination at initialization over ``s.seeds`` seeds, then train it briefly."""
    model, probe = _compiled(c, s, data)
    network = model.network
    seeds = tuple(range(s.seed, s.seed + s.seeds))
    measured, activations = [], {}
    for k, seed in enumerate(seeds):
        stats, acts = measure(model, model.init_params(seed=seed, scheme=c.init), *probe)
        measured.append(stats)
        if k == 0:
            activations = acts
    mean = LayerStats(*(tuple(np.mean([getattr(m, f) for m in measured], axis=0).tolist())
                        for f in LayerStats.__dataclass_fields__))  # fmt: skip
    norms = np.array([m.weight_gradient_norms for m in measured])
    spread = tuple(zip(norms.min(axis=0).tolist(), norms.max(axis=0).tolist()))
    with np.errstate(all="ignore"):
        ratio = float(np.float64(mean.weight_gradient_norms[0]) / mean.weight_gradient_norms[-1])
    clip = s.clip_norm if c.remedy == "clip" else None
    training = train(model, model.init_params(seed=s.seed, scheme=c.init), data, probe, s.epochs, s.batch_size,
                     s.learning_rate if learning_rate is None else learning_rate, clip, s.seed)  # fmt: skip
    with np.errstate(all="ignore"):
        growth = float(np.float64(mean.activation_std[-1]) / mean.activation_std[0])
    return Run(c, s.width, seeds, hidden_layers(network), mean, spread, ratio, verdict(ratio, s.vanishing, s.exploding),
               growth, float(np.mean(mean.saturated_fraction)), training, histogram(list(activations.values())))  # fmt: skip


@dataclass(frozen=True)
class ClipStudy:
    """One network trained at a high rate twice: as it is, and with the gradient norm clipped."""

    combination: Combination
    learning_rate: float
    clip_norm: float
    without: Training
    with_clipping: Training


@dataclass(frozen=True)
class FlowStudy:
    settings: FlowSettings
    runs: tuple[Run, ...]
    clipping: ClipStudy | None
    data_title: str
    train_size: int
    saturated_below: float = SATURATED


def load(s: FlowSettings) -> Dataset:
    """The study's data set, split as ``train`` splits it, one-hot targets for several classes."""
    source = DATASETS[s.data]
    outputs = len(source.classes) if len(source.classes) > 2 else 1
    return load_dataset(s.data, outputs=outputs, targets="distribution" if outputs > 1 else "unit", seed=s.seed)


def study(s: FlowSettings, progress: Callable[[int, int, str], None] | None = None) -> FlowStudy:
    """Every run of the grid, then the clipping study; ``progress(done, total, label)`` after each."""
    from threadpoolctl import threadpool_limits

    # Batches of 256 × 32: BLAS threads cost more than they save (1.5× slower with two here).
    with threadpool_limits(1):
        return _study(s, progress)


def _study(s: FlowSettings, progress: Callable[[int, int, str], None] | None) -> FlowStudy:
    data = load(s)
    total = len(s.grid) + (2 if s.clip_study else 0)
    runs = []
    for k, c in enumerate(s.grid, start=1):
        runs.append(run(c, s, data))
        if progress is not None:
            progress(k, total, c.label)
    clipping = None
    if s.clip_study is not None:
        c = s.clip_study
        model, probe = _compiled(c, s, data)
        trained = []
        for clip in (None, s.clip_norm):
            params = model.init_params(seed=s.seed, scheme=c.init)
            trained.append(train(model, params, data, probe, s.epochs, s.batch_size, s.clip_learning_rate, clip, s.seed))
            if progress is not None:
                progress(len(s.grid) + len(trained), total, f"{c.label}, clipping {'on' if clip else 'off'}")
        clipping = ClipStudy(c, s.clip_learning_rate, s.clip_norm, *trained)
    return FlowStudy(s, tuple(runs), clipping, DATASETS[s.data].title, len(data.X_train))
