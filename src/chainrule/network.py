"""Network specs: layers of any kind, a loss, an optional worked example; TOML loading and validation.

A spec is plain data. Every check names the field it is about, so that a bad spec file
gets one line that says where the problem is and what would be right. The layers are
specs of the kinds in ``chainrule.kinds`` (``Dense``, ``BatchNorm``, ``Residual``,
``Dropout``, ``LayerNorm``); validation flattens them into numbered *stages*, one per
output a⁽ˡ⁾, which everything after it works with.

>>> net = Network(inputs=2, layers=(Dense(2, "sigmoid"), Dense(1, "identity")), loss="mse")
>>> net.sizes
(2, 2, 1)
>>> loads('[network]\\ninputs = 1\\nlayers = [{ units = 1 }]\\nloss = "mse"').layers[0].activation
'sigmoid'
>>> [s.kind for s in Network(2, (Dense(2, "relu"), BatchNorm(), Dense(1, "identity")), "mse").stages]
['dense', 'batch_norm', 'dense']
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import Loss
from .kinds import (
    KINDS,
    MAX_STAGES,
    Activation,
    BatchNorm,
    Dense,
    Dropout,
    LayerNorm,
    Residual,
    Stage,
    flatten,
    parse_layers,
)
from .spec import (
    MAX_UNITS,
    MAX_VALUE,
    Axes,
    Choice,
    SpecError,
    array,
    choose,
    describe,
    integer,
    known,
    number,
    required,
    table,
)

#: Bounds that keep a spec from anyone to a size whose derivation a reader can use.
MAX_INPUTS = 1024
MAX_TITLE = 200
#: Layers a network may have, counting those inside residual blocks and their sums.
MAX_LAYERS = MAX_STAGES
#: Examples in a worked example over a batch (the spec's x and y as lists of rows).
MAX_BATCH = 8
DEFAULT_LEARNING_RATE = 0.5
#: The batch a worked example of a network with batch norm takes when the spec gives no rows.
DEFAULT_COUPLED_BATCH = 2


@dataclass(frozen=True)
class Example:
    """Concrete numbers for the worked example; any field left out is drawn from the seed.

    ``x`` and ``y`` are one example's numbers, or lists of rows for a worked example over a
    batch (which a network with batch norm needs).
    """

    x: tuple | None = None
    y: tuple | None = None
    learning_rate: float | None = None
    #: "W1", "b1", "gamma2", ... as nested tuples (W has shape (units, inputs of the layer)),
    #: and dropout masks "M3" (rows by units).
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Network:
    """A small network of layers of any kind, and its loss."""

    inputs: int
    layers: tuple
    loss: str | Mapping[str, Any] = "half_sse"
    title: str | None = None
    example: Example | None = None
    #: "l1", "l2", or {"name": "l2", "coefficient": 0.01}; dense weights only, never biases.
    regularizer: str | Mapping[str, Any] | None = None
    #: Defaults for ``chainrule train`` from the spec's [training] table (checked by ``train.settings``).
    training: Mapping[str, Any] | None = field(default=None, compare=False)
    #: The layers flattened into numbered stages, resolved once by ``validate``.
    stages: tuple[Stage, ...] = field(init=False, repr=False, compare=False)
    loss_choice: Choice = field(init=False, repr=False, compare=False)
    regularizer_choice: Choice | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.layers, (list, tuple)):
            raise SpecError("network.layers", f"must be a list of layers, got {describe(self.layers)}")
        object.__setattr__(self, "layers", tuple(self.layers))
        stages, loss, regularizer = validate(self)
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "loss_choice", loss)
        object.__setattr__(self, "regularizer_choice", regularizer)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The width of the inputs and of every stage's output."""
        return (self.inputs, *(stage.units for stage in self.stages))

    @property
    def outputs(self) -> int:
        return self.stages[-1].units

    @property
    def couples_batch(self) -> bool:
        """Whether a stage's scalar definition couples the examples of a batch (batch norm)."""
        return any(KINDS[s.kind].couples_batch for s in self.stages)

    @property
    def batch(self) -> int:
        """How many examples the worked example (and the scalar derivation) takes."""
        if self.example is not None and self.example.x is not None and _rows(self.example.x):
            return len(self.example.x)
        return DEFAULT_COUPLED_BATCH if self.couples_batch else 1

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{"W1": (units, inputs), "b1": (units,), "gamma2": (units,), ...}`` in stage order."""
        return {name: shape for stage in self.stages for name, shape in KINDS[stage.kind].parameters(stage).items()}

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Running state between training steps: ``{"mean2": (units,), "var2": (units,)}`` of batch norm."""
        return {name: shape for stage in self.stages for name, shape in KINDS[stage.kind].state(stage).items()}

    def leaf_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        """Per-example leaves such as dropout masks, ``{"M3": (batch, units)}``."""
        return {name: shape for stage in self.stages for name, shape in KINDS[stage.kind].leaves(stage, batch).items()}

    @property
    def activations(self) -> tuple[Choice, ...]:
        """The activation of every stage that has one (dense stages), in order."""
        return tuple(s.choice for s in self.stages if s.choice is not None)


def _rows(value: Any) -> bool:
    """Whether ``x`` or ``y`` is given as rows (a batch) rather than as one example."""
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, (list, tuple)) for v in value)


DEFAULT_SPEC = """\
title = "A 2-2-2 sigmoid network"
[network]
inputs = 2
layers = [ { units = 2, activation = "sigmoid" }, { units = 2, activation = "sigmoid" } ]
loss = "half_sse"
[example]
x = [0.05, 0.10]
y = [0.01, 0.99]
learning_rate = 0.5
W1 = [[0.15, 0.20], [0.25, 0.30]]
b1 = [0.35, 0.35]
W2 = [[0.40, 0.45], [0.50, 0.55]]
b2 = [0.60, 0.60]
"""


def default_network() -> Network:
    """The built-in example: the 2-2-2 sigmoid network of Matt Mazur's worked example."""
    return loads(DEFAULT_SPEC, source="<built-in example>")


def load(path: str | Path) -> Network:
    """Read and validate a TOML spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("", "no such file; give the path of a TOML spec", str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SpecError("", f"cannot read the file ({reason}); give a UTF-8 TOML spec", str(path)) from None
    return loads(text, source=str(path))


def loads(text: str, source: str = "<string>") -> Network:
    """Parse and validate a TOML spec given as text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError("", f"malformed TOML: {exc}", source) from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise SpecError("", f"a number in the file is too large to read ({str(exc)[:80]})", source) from None
    except RecursionError:
        raise SpecError("", "arrays or tables are nested too deeply to read", source) from None
    try:
        return from_dict(data)
    except SpecError as exc:
        raise exc.located(source) from None


def from_dict(data: Mapping[str, Any]) -> Network:
    """Build a network from parsed TOML (or any equal dict), checking every field."""
    known(data, "", {"title", "network", "example", "training"})
    title = data.get("title")
    if title is not None and not isinstance(title, str):
        raise SpecError("title", f"must be a string, got {describe(title)}")
    net = table(data, "network", required=True)
    known(net, "network", {"inputs", "layers", "loss", "regularizer"})
    inputs = integer(net, "network", "inputs", 1, MAX_INPUTS)
    layers = parse_layers(required(net, "network", "layers"), "network.layers")
    loss = required(net, "network", "loss")
    regularizer = net.get("regularizer")
    stages, loss_choice, _ = _resolve(inputs, layers, loss, regularizer)
    example = None
    if "example" in data:
        example = _example(table(data, "example"), inputs, stages, loss_choice)
    training = table(data, "training") if "training" in data else None
    return Network(inputs, tuple(layers), loss, title, example, regularizer, training)


def validate(net: Network) -> tuple[tuple[Stage, ...], Choice, Choice | None]:
    """Check a network built in Python with the same messages as a spec file gets.

    Returns its stages, the loss and the regularizer.
    """
    if isinstance(net.inputs, bool) or not isinstance(net.inputs, int) or not 1 <= net.inputs <= MAX_INPUTS:
        raise SpecError("network.inputs", f"must be a whole number from 1 to {MAX_INPUTS}, got {describe(net.inputs)}")
    if not net.layers:
        raise SpecError("network.layers", "must list at least one layer")
    resolved = _resolve(net.inputs, net.layers, net.loss, net.regularizer)
    if net.title is not None and (not isinstance(net.title, str) or len(net.title) > MAX_TITLE):
        raise SpecError("title", f"must be a string of at most {MAX_TITLE} characters")
    if net.example is not None:
        if not isinstance(net.example, Example):
            raise SpecError("example", f"must be an Example, got {describe(net.example)}")
        _example(_example_as_dict(net.example), net.inputs, resolved[0], resolved[1])
    return resolved


def _resolve(inputs: int, layers: Sequence[Any], loss: Any, regularizer: Any) -> tuple[tuple[Stage, ...], Choice, Choice | None]:
    """Flatten the layers into stages, resolve the loss and the regularizer, and check they fit together."""
    stages = tuple(flatten(layers, 1, inputs, "network.layers"))
    for stage in stages[:-1]:
        if stage.choice is not None and not stage.choice.entry.elementwise:
            raise SpecError(
                f"{stage.where}.activation",
                f"{stage.choice.name} normalizes over a layer and is only supported on the output layer; use it on the last layer",
            )
    loss_choice = choose(loss, "network.loss", "loss")
    required_activation = loss_choice.entry.requires
    last = stages[-1]
    if required_activation is not None and (last.choice is None or last.choice.name != required_activation):
        got = last.choice.name if last.choice is not None else f"a {last.kind} layer"
        raise SpecError(
            "network.loss",
            f"{loss_choice.name} expects a {required_activation} output layer, got {got}; "
            f"end with a dense layer whose activation is \"{required_activation}\"",
        )
    regularizer_choice = None if regularizer is None else choose(regularizer, "network.regularizer", "regularizer")
    return stages, loss_choice, regularizer_choice


def _example_as_dict(example: Example) -> dict[str, Any]:
    data: dict[str, Any] = dict(example.parameters)
    for key in ("x", "y", "learning_rate"):
        value = getattr(example, key)
        if value is not None:
            data[key] = value
    return data


def _example(data: Mapping[str, Any], inputs: int, stages: Sequence[Stage], loss: Choice) -> Example:
    shapes = {name: shape for s in stages for name, shape in KINDS[s.kind].parameters(s).items()}
    coupled = any(KINDS[s.kind].couples_batch for s in stages)
    batch = len(data["x"]) if "x" in data and _rows(data["x"]) else None
    if batch is None and "y" in data and _rows(data["y"]):
        raise SpecError("example.y", "is given as rows but x is not; give x as rows too, one per example")
    if batch is None and coupled and "y" in data:
        raise SpecError("example.y", "batch norm normalizes over the examples of a batch; give x and y as 2 to 4 rows")
    if batch is not None and not 1 <= batch <= MAX_BATCH:
        raise SpecError("example.x", f"must give from 1 to {MAX_BATCH} rows (examples), got {batch}")
    if coupled and "x" in data and (batch is None or batch < 2):
        raise SpecError("example.x", "batch norm normalizes over the examples of a batch; give x and y as 2 to 4 rows")
    leaves = {name: shape for s in stages for name, shape in KINDS[s.kind].leaves(s, batch or 1).items()}
    known(data, "example", {"x", "y", "learning_rate", *shapes, *leaves})
    outputs = stages[-1].units
    x = y = None
    if "x" in data:
        nouns = ("examples", "inputs") if batch else ("inputs",)
        x = array(data["x"], "example.x", (batch, inputs) if batch else (inputs,), Axes(nouns, "of the network"))
    if "y" in data:
        nouns = ("examples", "outputs") if batch else ("outputs",)
        y = array(data["y"], "example.y", (batch, outputs) if batch else (outputs,), Axes(nouns, "of the network"))
        for row in (y if batch else (y,)):
            _targets(row, loss.entry)
    rate = None
    if "learning_rate" in data:
        rate = number(data["learning_rate"], "example.learning_rate")
        if rate <= 0:
            raise SpecError("example.learning_rate", f"must be a positive number, got {rate!r}")
    params = {}
    for s in stages:
        for name, shape in KINDS[s.kind].parameters(s).items():
            if name in data:
                params[name] = array(data[name], f"example.{name}", shape, _parameter_axes(s, shape))
    for s in stages:
        for name, shape in KINDS[s.kind].leaves(s, batch or 1).items():
            if name in data:
                axes = Axes(("examples", "units"), f"of layer {s.number}") if shape == (batch or 1, s.units) else Axes()
                params[name] = _mask(array(data[name], f"example.{name}", shape, axes), f"example.{name}", s)
    return Example(x, y, rate, params)


def _parameter_axes(stage: Stage, shape: tuple[int, ...]) -> Axes:
    """What a parameter's axes count, by the convention every kind keeps: (units, inputs), or (units,)."""
    for convention, nouns in (((stage.units, stage.inputs), ("units", "inputs")), ((stage.units,), ("units",))):
        if shape == convention:
            return Axes(nouns, f"of layer {stage.number}")
    return Axes()  # a shape outside the convention is shown as it is


def _mask(values: tuple, where: str, stage: Stage) -> tuple:
    """A dropout mask: every entry 0 or 1/(1 − p)."""
    keep = 1.0 / (1.0 - float(stage.spec.p))
    for row in values:
        for value in row:
            if value != 0 and abs(value - keep) > 1e-9 * keep:
                raise SpecError(where, f"every entry must be 0 or 1/(1 − p) = {keep:.10g}, got {value!r}")
    return values


def _targets(y: Sequence[float], loss: Loss) -> None:
    """The example's targets must be ones the loss is defined for."""
    kind = loss.targets
    if kind == "unit" and not all(0 <= v <= 1 for v in y):
        raise SpecError("example.y", f"{loss.name} needs targets from 0 to 1, got {list(y)}")
    if kind == "sign" and not all(v in (-1.0, 1.0) for v in y):
        raise SpecError("example.y", f"{loss.name} needs targets of -1 or +1, got {list(y)}")
    if kind == "distribution" and (min(y) < 0 or abs(sum(y) - 1) > 1e-9):
        raise SpecError("example.y", f"{loss.name} needs non-negative targets adding up to 1 (one-hot), got {list(y)}")


__all__ = [
    "DEFAULT_LEARNING_RATE",
    "MAX_INPUTS",
    "MAX_LAYERS",
    "MAX_TITLE",
    "MAX_UNITS",
    "MAX_VALUE",
    "Activation",
    "BatchNorm",
    "Choice",
    "Dense",
    "Dropout",
    "Example",
    "LayerNorm",
    "Network",
    "Residual",
    "SpecError",
    "Stage",
    "default_network",
    "from_dict",
    "load",
    "loads",
    "validate",
]  # fmt: skip
