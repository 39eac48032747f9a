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

import sympy as sp
from sympy.printing.pretty.pretty_symbology import greek_unicode

from . import expr
from .catalog import (
    ACTIVATIONS,
    LOSSES,
    REGULARIZERS,
    Activation,
    Loss,
    Parameter,
    Regularizer,
    Z,
)

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
    """A fully connected layer: z = W a_prev + b, a = f(z).

    ``activation`` is a catalog name ("relu"), a formula in z ("z/(1+abs(z))"), or a
    mapping with its parameters ({"name": "leaky_relu", "alpha": 0.1}), as in spec files.
    """

    units: int
    activation: str | Mapping[str, Any] = "sigmoid"
    bias: bool = True


@dataclass(frozen=True)
class Choice:
    """A catalog entry as the spec chose it: the entry and the values of its parameters."""

    entry: Activation | Loss | Regularizer
    values: Mapping[str, float]
    #: How documents name it: "leaky_relu (α = 0.1)", or the formula of a custom entry.
    label: str

    @property
    def name(self) -> str:
        return self.entry.name


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
    loss: str | Mapping[str, Any] = "half_sse"
    title: str | None = None
    example: Example | None = None
    #: "l1", "l2", or {"name": "l2", "coefficient": 0.01}; weights only, never biases.
    regularizer: str | Mapping[str, Any] | None = None
    #: Defaults for ``chainrule train`` from the spec's [training] table (checked by ``train.settings``).
    training: Mapping[str, Any] | None = field(default=None, compare=False)
    #: The catalog entries the spec names, resolved once by ``validate``.
    activations: tuple[Choice, ...] = field(init=False, repr=False, compare=False)
    loss_choice: Choice = field(init=False, repr=False, compare=False)
    regularizer_choice: Choice | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.layers, (list, tuple)):
            raise SpecError("network.layers", f"must be a list of Dense layers, got {_kind(self.layers)}")
        object.__setattr__(self, "layers", tuple(self.layers))
        activations, loss, regularizer = validate(self)
        object.__setattr__(self, "activations", activations)
        object.__setattr__(self, "loss_choice", loss)
        object.__setattr__(self, "regularizer_choice", regularizer)

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.inputs, *(layer.units for layer in self.layers))

    @property
    def outputs(self) -> int:
        return self.layers[-1].units

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{"W1": (units, inputs), "b1": (units,), ...}`` in layer order (``alpha1`` for prelu)."""
        return _parameter_shapes(self.inputs, self.layers, self.activations)


def _parameter_shapes(inputs: int, layers: Sequence[Dense], activations: Sequence[Choice]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    fan_in = inputs
    for number, (layer, choice) in enumerate(zip(layers, activations), start=1):
        shapes[f"W{number}"] = (layer.units, fan_in)
        if layer.bias:
            shapes[f"b{number}"] = (layer.units,)
        for parameter in choice.entry.parameters:
            if parameter.learnable:
                shapes[f"{parameter.name}{number}"] = ()
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
    _known(data, "", {"title", "network", "example", "training"})
    title = data.get("title")
    if title is not None and not isinstance(title, str):
        raise SpecError("title", f"must be a string, got {_kind(title)}")
    net = _table(data, "network", required=True)
    _known(net, "network", {"inputs", "layers", "loss", "regularizer"})
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
        _choose(activation, f"{where}.activation", "activation")
        layers.append(Dense(units, activation, bias))
    loss = _required(net, "network", "loss")
    regularizer = net.get("regularizer")
    choices = validate_choices(layers, loss, regularizer)
    example = None
    if "example" in data:
        example = _example(_table(data, "example"), inputs, layers, choices)
    training = _table(data, "training") if "training" in data else None
    return Network(inputs, tuple(layers), loss, title, example, regularizer, training)


def validate(net: Network) -> tuple[tuple[Choice, ...], Choice, Choice | None]:
    """Check a network built in Python with the same messages as a spec file gets.

    Returns the catalog entries it names: one per layer, the loss and the regularizer.
    """
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
        if not isinstance(layer.bias, bool):
            raise SpecError(f"{where}.bias", f"must be true or false, got {_kind(layer.bias)}")
    choices = validate_choices(net.layers, net.loss, net.regularizer)
    if net.title is not None and (not isinstance(net.title, str) or len(net.title) > MAX_TITLE):
        raise SpecError("title", f"must be a string of at most {MAX_TITLE} characters")
    if net.example is not None:
        if not isinstance(net.example, Example):
            raise SpecError("example", f"must be an Example, got {_kind(net.example)}")
        _example(_example_as_dict(net.example), net.inputs, list(net.layers), choices)
    return choices


def validate_choices(
    layers: Sequence[Dense], loss: Any, regularizer: Any
) -> tuple[tuple[Choice, ...], Choice, Choice | None]:
    """Resolve every activation, the loss and the regularizer, and check that they fit together."""
    activations = tuple(
        _choose(layer.activation, f"network.layers[{i}].activation", "activation") for i, layer in enumerate(layers)
    )
    for index, choice in enumerate(activations[:-1]):
        if not choice.entry.elementwise:
            raise SpecError(
                f"network.layers[{index}].activation",
                f"{choice.name} normalizes over a layer and is only supported on the output layer; use it on the last layer",
            )
    loss_choice = _choose(loss, "network.loss", "loss")
    required = loss_choice.entry.requires
    if required is not None and activations[-1].name != required:
        raise SpecError(
            "network.loss",
            f"{loss_choice.name} expects a {required} output layer, got {activations[-1].name}; "
            f"set the last layer's activation to \"{required}\"",
        )
    regularizer_choice = None if regularizer is None else _choose(regularizer, "network.regularizer", "regularizer")
    return activations, loss_choice, regularizer_choice


def _example_as_dict(example: Example) -> dict[str, Any]:
    data: dict[str, Any] = dict(example.parameters)
    for key in ("x", "y", "learning_rate"):
        value = getattr(example, key)
        if value is not None:
            data[key] = value
    return data


def _example(data: Mapping[str, Any], inputs: int, layers: Sequence[Dense], choices) -> Example:
    activations, loss, _ = choices
    shapes = _parameter_shapes(inputs, layers, activations)
    _known(data, "example", {"x", "y", "learning_rate", *shapes})
    x = _array(data["x"], "example.x", (inputs,)) if "x" in data else None
    y = _array(data["y"], "example.y", (layers[-1].units,)) if "y" in data else None
    if y is not None:
        _targets(y, loss.entry)
    rate = None
    if "learning_rate" in data:
        rate = _number(data["learning_rate"], "example.learning_rate")
        if rate <= 0:
            raise SpecError("example.learning_rate", f"must be a positive number, got {rate!r}")
    params = {name: _array(data[name], f"example.{name}", shape) for name, shape in shapes.items() if name in data}
    return Example(x, y, rate, params)


def _array(value: Any, where: str, shape: tuple[int, ...]) -> tuple:
    """A nested tuple of finite floats of exactly ``shape``."""
    if not shape:
        return _number(value, where)
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


#: What a spec may name for each kind of choice: the table, and the variables of a formula.
_KINDS: dict[str, tuple[Mapping[str, Any], tuple[str, ...]]] = {
    "activation": (ACTIVATIONS, ("z",)),
    "loss": (LOSSES, ("yhat", "y")),
    "regularizer": (REGULARIZERS, ()),
}
_EXAMPLE_FORMULA = {"activation": '"z/(1+abs(z))"', "loss": '"log(cosh(yhat - y))"'}


def _choose(value: Any, where: str, kind: str) -> Choice:
    """A catalog name, a formula, or an inline table with a name or formula and parameters."""
    table, variables = _KINDS[kind]
    names = ", ".join(table)
    formula_hint = f", or a formula in {' and '.join(variables)} such as {_EXAMPLE_FORMULA[kind]}" if variables else ""
    options: Mapping[str, Any] = {}
    if isinstance(value, Mapping):
        options = value
        keys = [k for k in ("name", "formula") if k in value]
        if len(keys) != 1 or (keys == ["formula"] and not variables):
            wanted = "a name" + (" or a formula" if variables else "")
            raise SpecError(where, f"an inline table must give {wanted}, like {{ name = \"{next(iter(table))}\" }}")
        value = value[keys[0]]
        if keys == ["formula"]:
            return _custom(value, where, kind, options)
    if not isinstance(value, str):
        article = "an" if kind[0] in "aeiou" else "a"
        raise SpecError(where, f"must be the name of {article} {kind} ({names}){formula_hint}; got {_kind(value)}")
    if value in table:
        return _named(table[value], where, options)
    if not variables or (value.isidentifier() and value not in variables):
        raise SpecError(where, f"unknown {kind} {_quote(value)}; expected one of {names}{formula_hint}")
    return _custom(value, where, kind, options)


def _named(entry: Any, where: str, options: Mapping[str, Any]) -> Choice:
    allowed = {p.name: p for p in entry.parameters}
    _known({k: v for k, v in options.items() if k != "name"}, where, set(allowed) or {"name"})
    values = {}
    for parameter in entry.parameters:
        value = parameter.default
        if parameter.name in options:
            value = _number(options[parameter.name], f"{where}.{parameter.name}")
            if not parameter.low <= value <= parameter.high or (parameter.low == 0 and value == 0):
                raise SpecError(f"{where}.{parameter.name}", f"must be a positive number, got {value!r}")
        values[parameter.name] = value
    shown = ", ".join(f"{allowed[k].text} = {v:g}" for k, v in values.items() if k in options)
    return Choice(entry, values, f"{entry.name} ({shown})" if shown else entry.name)


def _custom(text: Any, where: str, kind: str, options: Mapping[str, Any]) -> Choice:
    """An activation or loss written as a formula; extra keys of its table are named constants."""
    if not isinstance(text, str):
        raise SpecError(f"{where}.formula", f"must be a string formula, got {_kind(text)}")
    _, variables = _KINDS[kind]
    reduction = "sum"
    constants: dict[str, float] = {}
    for key, value in options.items():
        if key == "formula":
            continue
        if key == "reduction" and kind == "loss":
            if value not in ("sum", "mean"):
                raise SpecError(f"{where}.reduction", f"must be \"sum\" or \"mean\", got {_kind(value)}")
            reduction = value
            continue
        try:
            expr.check_name(key, "constant")
        except expr.FormulaError as exc:
            raise SpecError(f"{where}.{_printable(key[:40])}", str(exc)) from None
        if key in variables:
            raise SpecError(f"{where}.{key}", f"{key} is the formula's variable, not a constant; choose another name")
        constants[key] = _number(value, f"{where}.{key}")
    try:
        formula = expr.parse(text, (*variables, *constants), what=kind)
    except expr.FormulaError as exc:
        raise SpecError(where, str(exc)) from None
    parameters = tuple(
        Parameter(name, sp.Symbol(name, real=True), value, sp.latex(sp.Symbol(name)), greek_unicode.get(name, name))
        for name, value in constants.items()
    )
    written = expr.to_formula(formula)
    title = f"custom {kind}"
    if kind == "activation":
        entry = Activation(written, title, formula, sp.diff(formula, Z), parameters=parameters)
    else:
        entry = Loss(written, title, formula, reduction, parameters=parameters)
    return Choice(entry, dict(constants), written)


def _targets(y: Sequence[float], loss: Loss) -> None:
    """The example's targets must be ones the loss is defined for."""
    kind = loss.targets
    if kind == "unit" and not all(0 <= v <= 1 for v in y):
        raise SpecError("example.y", f"{loss.name} needs targets from 0 to 1, got {list(y)}")
    if kind == "sign" and not all(v in (-1.0, 1.0) for v in y):
        raise SpecError("example.y", f"{loss.name} needs targets of -1 or +1, got {list(y)}")
    if kind == "distribution" and (min(y) < 0 or abs(sum(y) - 1) > 1e-9):
        raise SpecError("example.y", f"{loss.name} needs non-negative targets adding up to 1 (one-hot), got {list(y)}")


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
