"""Layer kinds: one table, ``KINDS``, from the name a spec uses to the kind's entry.

Each entry (one module per kind) brings its spec, its stages, its scalar graph nodes, its
batch-level rules with their NumPy lines, its parameters, state and leaves, its layer-level
equations and its PyTorch counterpart; see ``base.Kind``. Adding a kind is one entry here.

>>> sorted(KINDS)
['activation', 'batch_norm', 'dense', 'dropout', 'layer_norm', 'residual']
>>> [s.kind for s in flatten([Dense(2, "relu"), Residual([Dense(2, "relu")])], 1, 2, "network.layers")]
['dense', 'dense', 'residual']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import suggest
from ..spec import SpecError, describe
from .activation import ACTIVATION, Activation
from .base import Grid, Kernel, Kind, Layer, LayerEquation, Picture, Stage, VectorRule
from .batch_norm import BATCH_NORM, BatchNorm
from .dense import DENSE, Dense
from .dropout import DROPOUT, Dropout
from .layer_norm import LAYER_NORM, LayerNorm
from .residual import RESIDUAL, Residual

#: Stages a network may have, counting the layers inside residual blocks and the sums.
MAX_STAGES = 128
#: Residual blocks inside residual blocks, at most.
MAX_NESTING = 8


def kind_of(spec: Any, where: str) -> Kind:
    """The table entry of a layer written in Python (``BatchNorm()``)."""
    for kind in KINDS.values():
        if type(spec) is kind.spec:
            return kind
    names = ", ".join(k.spec.__name__ for k in KINDS.values())
    raise SpecError(where, f"must be a layer ({names}), got {describe(spec)}")


def parse_layers(value: Any, where: str, depth: int = 0) -> list[Any]:
    """Layer specs from a TOML array of tables, each with an optional ``kind`` (default dense)."""
    if depth > MAX_NESTING:
        raise SpecError(where, f"residual blocks are nested more than {MAX_NESTING} deep")
    if not isinstance(value, list) or not value:
        raise SpecError(where, f"must be a non-empty array of tables like {{ units = 2, activation = \"sigmoid\" }}, got {describe(value)}")
    layers = []
    for index, entry in enumerate(value):
        place = f"{where}[{index}]"
        if not isinstance(entry, dict):
            raise SpecError(place, f"must be a table like {{ units = 2, activation = \"sigmoid\" }}, got {describe(entry)}")
        kind = choose_kind(entry.get("kind", "dense"), f"{place}.kind")
        layers.append(kind.parse(entry, place, lambda v, w: parse_layers(v, w, depth + 1)))
    return layers


def choose_kind(name: Any, where: str) -> Kind:
    """The entry named ``name``, or an error that suggests the closest name."""
    if not isinstance(name, str):
        raise SpecError(where, f"must be the name of a layer kind ({', '.join(KINDS)}), got {describe(name)}")
    if name in KINDS:
        return KINDS[name]
    raise SpecError(where, suggest.unknown("layer kind", name, KINDS))


def flatten(layers: Sequence[Any], number: int, width: int, where: str, depth: int = 0) -> list[Stage]:
    """The stages of ``layers``, numbered from ``number``, after a layer of ``width`` units."""
    if depth > MAX_NESTING:
        raise SpecError(where, f"residual blocks are nested more than {MAX_NESTING} deep")
    stages: list[Stage] = []
    for index, spec in enumerate(layers):
        place = f"{where}[{index}]"
        kind = kind_of(spec, place)
        new = kind.stages(spec, number, width, place, lambda s, n, w, p: flatten(s, n, w, p, depth + 1))
        stages.extend(new)
        if new[-1].number > MAX_STAGES:
            raise SpecError(where, f"has more than {MAX_STAGES} layers, counting those inside residual blocks")
        number, width = new[-1].number + 1, new[-1].units
    return stages


def narrow_layers(layers: Sequence[Any], width: int) -> list[Any]:
    """The layer specs with every width capped at ``width``, each kind narrowing its own (``Kind.narrowed``)."""
    return [kind_of(spec, "network.layers").narrowed(spec, width, narrow_layers) for spec in layers]


#: The layer kinds, by the name a spec file uses.
KINDS: Mapping[str, Kind] = {
    "dense": DENSE,
    "batch_norm": BATCH_NORM,
    "residual": RESIDUAL,
    "dropout": DROPOUT,
    "layer_norm": LAYER_NORM,
    "activation": ACTIVATION,
}

__all__ = [
    "KINDS",
    "Activation",
    "BatchNorm",
    "Dense",
    "Dropout",
    "Grid",
    "Kernel",
    "Kind",
    "Layer",
    "LayerEquation",
    "LayerNorm",
    "Picture",
    "Residual",
    "Stage",
    "VectorRule",
    "choose_kind",
    "flatten",
    "kind_of",
    "narrow_layers",
    "parse_layers",
]  # fmt: skip
