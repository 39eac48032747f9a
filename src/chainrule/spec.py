"""Checking spec values: the error every bad field gets, and the checks each field goes through.

Every check names the field it is about (``network.layers[2].p``), so that a bad spec
file gets one line that says where the problem is and what would be right. Layer kinds,
the network and the training settings all check their fields with these.

>>> number(0.5, "network.layers[1].p")
0.5
>>> choose("relu", "network.layers[0].activation", "activation").name
'relu'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp
from sympy.printing.pretty.pretty_symbology import greek_unicode

from . import expr, suggest
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

#: Example values beyond this are no worked example anyone follows by hand, and they
#: overflow float64 in a forward pass long before they mean anything.
MAX_VALUE = 1e6
#: Units a dense layer may have.
MAX_UNITS = 1024


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
class Axes:
    """What each axis of an array counts, for the message a wrong shape gets.

    >>> Axes(("units", "inputs"), "of layer 1").describe((2, 3))
    '(2, 3): 2 units × 3 inputs of layer 1, one row per unit'
    >>> Axes(("inputs",), "of the network").describe((2,))
    '(2,): one number for each of the 2 inputs of the network'
    """

    #: One plural noun per axis: ("units", "inputs"), ("examples", "outputs").
    nouns: tuple[str, ...] = ()
    #: Whose axes they are: "of layer 1", "of the network".
    owner: str = ""

    def describe(self, shape: tuple[int, ...]) -> str:
        text = f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(map(str, shape))})"
        if len(self.nouns) != len(shape):
            return text
        if len(shape) == 1:
            size, noun = shape[0], self.nouns[0]
            each = f"the one {_count(noun, 1)}" if size == 1 else f"each of the {size} {noun}"
            return f"{text}: one number for {each} {self.owner}".rstrip()
        counts = " × ".join(f"{size} {_count(noun, size)}" for size, noun in zip(shape, self.nouns))
        rows = f", one row per {_count(self.nouns[0], 1)}" if len(shape) == 2 else ""
        return f"{text}: {counts} {self.owner}".rstrip() + rows


def _count(noun: str, size: int) -> str:
    """The plural noun for ``size`` of them: "units", or "unit" for one."""
    return noun[:-1] if size == 1 and noun.endswith("s") else noun


def array(value: Any, where: str, shape: tuple[int, ...], axes: Axes = Axes()) -> tuple:
    """A nested tuple of finite floats of exactly ``shape``; ``axes`` says what the axes count.

    A wrong length anywhere is reported at ``where`` with the whole shape it must have:

    >>> array([[1, 2], [3]], "example.W1", (2, 2), Axes(("units", "inputs"), "of layer 1"))
    Traceback (most recent call last):
    ...
    chainrule.spec.SpecError: <network>: example.W1: must have shape (2, 2): 2 units × 2 inputs of layer 1, one row per unit; row 1 has 1 number instead of 2
    """
    if not shape:
        return number(value, where)
    wanted = axes.describe(shape)
    _check_lengths(value, where, shape, wanted, ())
    return _numbers(value, where, shape)


def _check_lengths(value: Any, where: str, shape: tuple[int, ...], wanted: str, index: tuple[int, ...]) -> None:
    """Every list of ``value`` has the length ``shape`` says, or one message naming the shape."""
    inner = "numbers" if len(shape) == 1 else "rows"
    if index:
        part = f"row {index[0]}" if len(index) == 1 else f"entry {''.join(f'[{i}]' for i in index)}"
        has, got = f"{part} has", f"{part} is"
    else:
        has, got = "got", "got"
    if not isinstance(value, (list, tuple)):
        raise SpecError(where, f"must have shape {wanted}; {got} {describe(value)}, not an array of {shape[0]} {_count(inner, shape[0])}")
    if len(shape) > 1:
        # A number where a row should be says more than the count: y = [0.5] for rows of one.
        for i, row in enumerate(value):
            if not isinstance(row, (list, tuple)):
                _check_lengths(row, where, shape[1:], wanted, (*index, i))
    if len(value) != shape[0]:
        raise SpecError(where, f"must have shape {wanted}; {has} {len(value)} {_count(inner, len(value))} instead of {shape[0]}")
    if len(shape) > 1:
        for i, row in enumerate(value):
            _check_lengths(row, where, shape[1:], wanted, (*index, i))


def _numbers(value: Any, where: str, shape: tuple[int, ...]) -> tuple:
    if len(shape) == 1:
        return tuple(number(item, f"{where}[{i}]") for i, item in enumerate(value))
    return tuple(_numbers(row, f"{where}[{i}]", shape[1:]) for i, row in enumerate(value))


def number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(where, f"must be a number, got {describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise SpecError(where, f"must be a finite number, got {value!r}")
    if abs(value) > MAX_VALUE:
        raise SpecError(where, f"must be a number from -{MAX_VALUE:g} to {MAX_VALUE:g}, got {value!r}")
    return value


def integer(table: Mapping[str, Any], where: str, key: str, low: int, high: int) -> int:
    value = required(table, where, key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(f"{where}.{key}", f"must be a whole number from {low} to {high}, got {describe(value)}")
    return value


#: What a spec may name for each kind of choice: the table, and the variables of a formula.
_KINDS: dict[str, tuple[Mapping[str, Any], tuple[str, ...]]] = {
    "activation": (ACTIVATIONS, ("z",)),
    "loss": (LOSSES, ("yhat", "y")),
    "regularizer": (REGULARIZERS, ()),
}
_EXAMPLE_FORMULA = {"activation": '"z/(1+abs(z))"', "loss": '"log(cosh(yhat - y))"'}


def choose(value: Any, where: str, kind: str) -> Choice:
    """A catalog name, a formula, or an inline table with a name or formula and parameters."""
    table, variables = _KINDS[kind]
    names = ", ".join(table)
    formula = f"a formula in {' and '.join(variables)} such as {_EXAMPLE_FORMULA[kind]}" if variables else ""
    formula_hint = f", or {formula}" if formula else ""
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
        raise SpecError(where, f"must be the name of {article} {kind} ({names}){formula_hint}; got {describe(value)}")
    if value in table:
        return _named(table[value], where, options)
    if not variables or (value.isidentifier() and value not in variables):
        raise SpecError(where, suggest.unknown(kind, value, table, otherwise=formula))
    return _custom(value, where, kind, options)


def _named(entry: Any, where: str, options: Mapping[str, Any]) -> Choice:
    allowed = {p.name: p for p in entry.parameters}
    known({k: v for k, v in options.items() if k != "name"}, where, set(allowed) or {"name"})
    values = {}
    for parameter in entry.parameters:
        value = parameter.default
        if parameter.name in options:
            value = number(options[parameter.name], f"{where}.{parameter.name}")
            if not parameter.low <= value <= parameter.high or (parameter.low == 0 and value == 0):
                raise SpecError(f"{where}.{parameter.name}", f"must be a positive number, got {value!r}")
        values[parameter.name] = value
    shown = ", ".join(f"{allowed[k].text} = {v:g}" for k, v in values.items() if k in options)
    return Choice(entry, values, f"{entry.name} ({shown})" if shown else entry.name)


def _custom(text: Any, where: str, kind: str, options: Mapping[str, Any]) -> Choice:
    """An activation or loss written as a formula; extra keys of its table are named constants."""
    if not isinstance(text, str):
        raise SpecError(f"{where}.formula", f"must be a string formula, got {describe(text)}")
    _, variables = _KINDS[kind]
    reduction = "sum"
    constants: dict[str, float] = {}
    for key, value in options.items():
        if key == "formula":
            continue
        if key == "reduction" and kind == "loss":
            if value not in ("sum", "mean"):
                raise SpecError(f"{where}.reduction", f"must be \"sum\" or \"mean\", got {describe(value)}")
            reduction = value
            continue
        try:
            expr.check_name(key, "constant")
        except expr.FormulaError as exc:
            raise SpecError(f"{where}.{printable(key[:40])}", str(exc)) from None
        if key in variables:
            raise SpecError(f"{where}.{key}", f"{key} is the formula's variable, not a constant; choose another name")
        constants[key] = number(value, f"{where}.{key}")
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


def table(data: Mapping[str, Any], key: str, required: bool = False) -> Mapping[str, Any]:
    if key not in data and required:
        raise SpecError(key, f"missing table [{key}]")
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise SpecError(key, f"must be a table [{key}], got {describe(value)}")
    return value


def required(table: Mapping[str, Any], where: str, key: str) -> Any:
    if key not in table:
        raise SpecError(f"{where}.{key}" if where else key, "missing; this key is required")
    return table[key]


def known(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            name = quote(str(key))[1:-1]
            place = f"{where}.{name}" if where else name
            raise SpecError(place, suggest.unknown("key", str(key), sorted(allowed)))


def describe(value: Any) -> str:
    """Describe a wrong value without echoing arbitrary amounts of user text."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int) and abs(value) > 10**18:
        return f"a whole number of {len(str(abs(value))) if abs(value) < 10**4000 else 'thousands of'} digits"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {quote(value)}"
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def quote(text: str, limit: int = 40) -> str:
    shown = printable(text[:limit]) + ("..." if len(text) > limit else "")
    return f"'{shown}'"


def printable(text: str) -> str:
    """Keep messages on one line: control characters are shown escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
