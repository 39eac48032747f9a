"""Network specs: dense layers, a loss, an optional worked example; TOML loading and validation.

A spec is plain data. Every check names the field it is about, so that a bad spec file
gets one line that says where the problem is and what would be right.

>>> net = Network(inputs=2, layers=(Dense(2, "sigmoid"), Dense(1, "identity")), loss="mse")
>>> net.sizes
(2, 2, 1)
>>> loads('[network]\\ninputs = 1\\nlayers = [{ units = 1 }]\\nloss = "mse"').layers[0].activation
'sigmoid'
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import ACTIVATIONS, LOSSES

#: Bounds that keep a spec from anyone to a size whose derivation a reader can use.
MAX_INPUTS = 1024
MAX_UNITS = 1024
MAX_LAYERS = 32
MAX_TITLE = 200
#: Example values beyond this are no worked example anyone follows by hand, and they
#: overflow float64 in a forward pass long before they mean anything.
MAX_VALUE = 1e6
DEFAULT_LEARNING_RATE = 0.5


class SpecError(ValueError):
    """A spec is wrong: ``source: field: what is wrong; what would be right``."""

    def __init__(self, field: str, message: str, source: str = "<network>") -> None:
        self.source = source
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else self.source
        return f"{where}: {self.message}"

    def located(self, source: str) -> SpecError:
        return SpecError(self.field, self.message, source)


@dataclass(frozen=True)
class Dense:
    """A fully connected layer: z = W a_prev + b, a = f(z)."""

    units: int
    activation: str = "sigmoid"
    bias: bool = True


@dataclass(frozen=True)
class Example:
    """Concrete numbers for the worked example; any field left out is drawn from the seed."""

    x: tuple[float, ...] | None = None
    y: tuple[float, ...] | None = None
    learning_rate: float | None = None
    #: "W1", "b1", ... as nested tuples: W has shape (units, inputs of the layer).
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Network:
    """A small fully connected network and its loss."""

    inputs: int
    layers: tuple[Dense, ...]
    loss: str = "half_sse"
    title: str | None = None
    example: Example | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.layers, (list, tuple)):
            raise SpecError("network.layers", f"must be a list of Dense layers, got {_kind(self.layers)}")
        object.__setattr__(self, "layers", tuple(self.layers))
        validate(self)

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.inputs, *(layer.units for layer in self.layers))

    @property
    def outputs(self) -> int:
        return self.layers[-1].units

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{"W1": (units, inputs), "b1": (units,), ...}`` in layer order."""
        return _parameter_shapes(self.inputs, self.layers)


def _parameter_shapes(inputs: int, layers: Sequence[Dense]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    fan_in = inputs
    for number, layer in enumerate(layers, start=1):
        shapes[f"W{number}"] = (layer.units, fan_in)
        if layer.bias:
            shapes[f"b{number}"] = (layer.units,)
        fan_in = layer.units
    return shapes


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
    _known(data, "", {"title", "network", "example"})
    title = data.get("title")
    if title is not None and not isinstance(title, str):
        raise SpecError("title", f"must be a string, got {_kind(title)}")
    net = _table(data, "network", required=True)
    _known(net, "network", {"inputs", "layers", "loss"})
    inputs = _integer(net, "network", "inputs", 1, MAX_INPUTS)
    layers_data = _required(net, "network", "layers")
    if not isinstance(layers_data, list) or not layers_data:
        raise SpecError("network.layers", "must be a non-empty array of tables like { units = 2, activation = \"sigmoid\" }")
    layers = []
    for index, entry in enumerate(layers_data):
        where = f"network.layers[{index}]"
        if not isinstance(entry, dict):
            raise SpecError(where, f"must be a table like {{ units = 2, activation = \"sigmoid\" }}, got {_kind(entry)}")
        _known(entry, where, {"units", "activation", "bias"})
        units = _integer(entry, where, "units", 1, MAX_UNITS)
        activation = entry.get("activation", "sigmoid")
        bias = entry.get("bias", True)
        if not isinstance(bias, bool):
            raise SpecError(f"{where}.bias", f"must be true or false, got {_kind(bias)}")
        layers.append(Dense(units, _name(activation, f"{where}.activation", ACTIVATIONS, "activation"), bias))
    loss = _name(_required(net, "network", "loss"), "network.loss", LOSSES, "loss")
    example = None
    if "example" in data:
        example = _example(_table(data, "example"), inputs, layers)
    return Network(inputs, tuple(layers), loss, title, example)


def validate(net: Network) -> None:
    """Check a network built in Python with the same messages as a spec file gets."""
    if isinstance(net.inputs, bool) or not isinstance(net.inputs, int) or not 1 <= net.inputs <= MAX_INPUTS:
        raise SpecError("network.inputs", f"must be a whole number from 1 to {MAX_INPUTS}, got {_kind(net.inputs)}")
    if not net.layers or len(net.layers) > MAX_LAYERS:
        raise SpecError("network.layers", f"must list from 1 to {MAX_LAYERS} layers, got {len(net.layers)}")
    for index, layer in enumerate(net.layers):
        where = f"network.layers[{index}]"
        if not isinstance(layer, Dense):
            raise SpecError(where, f"must be a Dense layer, got {_kind(layer)}")
        if isinstance(layer.units, bool) or not isinstance(layer.units, int) or not 1 <= layer.units <= MAX_UNITS:
            raise SpecError(f"{where}.units", f"must be a whole number from 1 to {MAX_UNITS}, got {_kind(layer.units)}")
        _name(layer.activation, f"{where}.activation", ACTIVATIONS, "activation")
        if not isinstance(layer.bias, bool):
            raise SpecError(f"{where}.bias", f"must be true or false, got {_kind(layer.bias)}")
    _name(net.loss, "network.loss", LOSSES, "loss")
    if net.title is not None and (not isinstance(net.title, str) or len(net.title) > MAX_TITLE):
        raise SpecError("title", f"must be a string of at most {MAX_TITLE} characters")
    if net.example is not None:
        if not isinstance(net.example, Example):
            raise SpecError("example", f"must be an Example, got {_kind(net.example)}")
        _example(_example_as_dict(net.example), net.inputs, list(net.layers))


def _example_as_dict(example: Example) -> dict[str, Any]:
    data: dict[str, Any] = dict(example.parameters)
    for key in ("x", "y", "learning_rate"):
        value = getattr(example, key)
        if value is not None:
            data[key] = value
    return data


def _example(data: Mapping[str, Any], inputs: int, layers: Sequence[Dense]) -> Example:
    shapes = _parameter_shapes(inputs, layers)
    _known(data, "example", {"x", "y", "learning_rate", *shapes})
    x = _array(data["x"], "example.x", (inputs,)) if "x" in data else None
    y = _array(data["y"], "example.y", (layers[-1].units,)) if "y" in data else None
    rate = None
    if "learning_rate" in data:
        rate = _number(data["learning_rate"], "example.learning_rate")
        if rate <= 0:
            raise SpecError("example.learning_rate", f"must be a positive number, got {rate!r}")
    params = {name: _array(data[name], f"example.{name}", shape) for name, shape in shapes.items() if name in data}
    return Example(x, y, rate, params)


def _array(value: Any, where: str, shape: tuple[int, ...]) -> tuple:
    """A nested tuple of finite floats of exactly ``shape``."""
    wanted = " x ".join(map(str, shape))
    form = "an array of numbers" if len(shape) == 1 else "an array of arrays of numbers (one row per unit)"
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise SpecError(where, f"must be {form} of shape {wanted}, got {_kind(value)}")
    if len(value) != shape[0]:
        raise SpecError(where, f"must have shape {wanted}, got {len(value)} {'rows' if len(shape) > 1 else 'numbers'} instead of {shape[0]}")
    if len(shape) == 1:
        return tuple(_number(item, f"{where}[{i}]") for i, item in enumerate(value))
    return tuple(_array(row, f"{where}[{i}]", shape[1:]) for i, row in enumerate(value))


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(where, f"must be a number, got {_kind(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise SpecError(where, f"must be a finite number, got {value!r}")
    if abs(value) > MAX_VALUE:
        raise SpecError(where, f"must be a number from -{MAX_VALUE:g} to {MAX_VALUE:g}, got {value!r}")
    return value


def _integer(table: Mapping[str, Any], where: str, key: str, low: int, high: int) -> int:
    value = _required(table, where, key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(f"{where}.{key}", f"must be a whole number from {low} to {high}, got {_kind(value)}")
    return value


def _name(value: Any, where: str, table: Mapping[str, Any], what: str) -> str:
    choices = ", ".join(sorted(table))
    if not isinstance(value, str):
        raise SpecError(where, f"must be the name of an {what} ({choices}), got {_kind(value)}")
    if value not in table:
        raise SpecError(where, f"unknown {what} {_quote(value)}; expected one of {choices}")
    return value


def _table(data: Mapping[str, Any], key: str, required: bool = False) -> Mapping[str, Any]:
    if key not in data and required:
        raise SpecError(key, f"missing table [{key}]")
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise SpecError(key, f"must be a table [{key}], got {_kind(value)}")
    return value


def _required(table: Mapping[str, Any], where: str, key: str) -> Any:
    if key not in table:
        raise SpecError(f"{where}.{key}" if where else key, "missing; this key is required")
    return table[key]


def _known(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            name = _quote(str(key))[1:-1]
            place = f"{where}.{name}" if where else name
            raise SpecError(place, f"unknown key; expected one of {', '.join(sorted(allowed))}")


def _kind(value: Any) -> str:
    """Describe a wrong value without echoing arbitrary amounts of user text."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int) and abs(value) > 10**18:
        return f"a whole number of {len(str(abs(value))) if abs(value) < 10**4000 else 'thousands of'} digits"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {_quote(value)}"
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)} items"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _quote(text: str, limit: int = 40) -> str:
    shown = _printable(text[:limit]) + ("..." if len(text) > limit else "")
    return f"'{shown}'"


def _printable(text: str) -> str:
    """Keep messages on one line: control characters are shown escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
