"""The table of layer kinds: every entry of ``chainrule.kinds.KINDS`` parsed, flattened and described.

Each kind has one row in ``TABLE`` below: the TOML table a spec writes, the spec it parses
to, and what its stages, parameters, state, leaves and title are inside a small network.
A kind added to ``KINDS`` without a row here fails ``test_every_kind_has_a_row``.

The module also holds what the other ``test_kinds*`` files share: ``KIND_NETWORKS`` (a
small network for each kind) and ``mixed_network`` (seeded random networks mixing them).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from conftest import PROBABILITY_OUTPUTS

import chainrule
from chainrule.catalog import ACTIVATIONS, LOSSES
from chainrule.kinds import (
    KINDS,
    Activation,
    BatchNorm,
    Dense,
    Dropout,
    LayerNorm,
    Residual,
    parse_layers,
)
from chainrule.network import Network

ELEMENTWISE = sorted(n for n, a in ACTIVATIONS.items() if a.elementwise)

# --- what the other kind tests share ----------------------------------------------------------

#: A small network for each kind, with the kind in the middle (so its gradient is passed on).
KIND_NETWORKS: dict[str, Network] = {
    "dense": Network(3, (Dense(3, "tanh"), Dense(2, "sigmoid", bias=False), Dense(2, "identity")), "mse"),
    "batch_norm": Network(3, (Dense(3, "tanh"), BatchNorm(), Dense(2, "identity")), "mse"),
    "residual": Network(3, (Dense(3, "tanh"), Residual((Dense(2, "sigmoid"), Dense(3, "identity"))), Dense(2, "identity")), "mse"),
    "dropout": Network(3, (Dense(3, "tanh"), Dropout(0.25), Dense(2, "identity")), "mse"),
    "layer_norm": Network(3, (Dense(3, "tanh"), LayerNorm(), Dense(2, "identity")), "mse"),
    "activation": Network(3, (Dense(3, "identity"), BatchNorm(), Activation("tanh"), Dense(2, "identity")), "mse"),
}


def mixed_network(seed: int, max_dense: int = 6, max_width: int = 4) -> Network:
    """A random valid network of every kind, drawn from ``seed``.

    It has 1..``max_dense`` dense stages (inner layers of residual blocks count), hidden
    activations drawn from the elementwise ones, about one dense layer in four without
    bias, and batch norm, layer norm, dropout and residual blocks (of 1-3 inner layers,
    the last a dense layer as wide as the block's input) in between. The loss is drawn
    from the catalog and the output layer gets the activation it needs (softmax for
    cross-entropy, sigmoid or softmax for bce), else any activation, softmax included.
    """
    rng = np.random.default_rng(seed)
    loss = sorted(LOSSES)[int(rng.integers(len(LOSSES)))]
    dense_total = int(rng.integers(1, max_dense + 1))
    inputs = int(rng.integers(1, max_width + 1))
    used = 0

    def dense(units: int) -> Dense:
        nonlocal used
        used += 1
        return Dense(units, ELEMENTWISE[int(rng.integers(len(ELEMENTWISE)))], bool(rng.random() >= 0.25))

    def other() -> Any:
        kind = ("batch_norm", "layer_norm", "dropout", "activation")[int(rng.integers(4))]
        if kind == "activation":
            return Activation(ELEMENTWISE[int(rng.integers(len(ELEMENTWISE)))])
        if kind == "batch_norm":
            return BatchNorm(eps=float(rng.choice([1e-5, 1e-3, 0.1])), momentum=float(rng.choice([0.1, 0.3, 1.0])))
        if kind == "layer_norm":
            return LayerNorm(eps=float(rng.choice([1e-5, 1e-3, 0.1])))
        return Dropout(float(rng.choice([0.0, 0.2, 0.5, 0.9])))

    layers: list[Any] = []
    width = inputs
    while used < dense_total - 1:
        choice = rng.random()
        if choice < 0.35:
            width = int(rng.integers(1, max_width + 1))
            layers.append(dense(width))
        elif choice < 0.65:
            layers.append(other())
        else:
            inner: list[Any] = []
            room = dense_total - 1 - used
            for _ in range(int(rng.integers(0, min(2, room)))):
                inner.append(dense(int(rng.integers(1, max_width + 1))) if rng.random() < 0.6 else other())
            inner.append(dense(width))
            layers.append(Residual(tuple(inner)))
    required = LOSSES[loss].requires
    allowed = PROBABILITY_OUTPUTS.get(loss, tuple(sorted(ACTIVATIONS)))
    name = required if required is not None else allowed[int(rng.integers(len(allowed)))]
    units = int(rng.integers(1 if ACTIVATIONS[name].elementwise else 2, max_width + 1))
    layers.append(Dense(units, name, bool(rng.random() >= 0.25)))
    return Network(inputs, tuple(layers), loss)


def describe_stages(net: Network) -> str:
    """A short id for a case: ``3-dense4(relu)-bn-[dense4(tanh)]-drop0.5-ln-dense2(softmax)/cross_entropy``."""

    def one(layer) -> str:
        if isinstance(layer, Dense):
            name = layer.activation if isinstance(layer.activation, str) else layer.activation["name"]
            return f"d{layer.units}({name}{'' if layer.bias else ',nb'})"
        if isinstance(layer, BatchNorm):
            return "bn"
        if isinstance(layer, LayerNorm):
            return "ln"
        if isinstance(layer, Dropout):
            return f"drop{layer.p:g}"
        if isinstance(layer, Activation):
            return f"f({layer.activation if isinstance(layer.activation, str) else layer.activation['name']})"
        return "[" + "-".join(one(inner) for inner in layer.layers) + "]"

    return f"{net.inputs}-" + "-".join(one(layer) for layer in net.layers) + f"/{net.loss_choice.name}"


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One kind's row: a TOML table, what it parses to, and its stages after a 4-unit dense layer."""

    toml: str
    spec: Any
    #: (kind, inputs, units, source, skip) of each stage, numbered from 2.
    stages: list[tuple[str, int, int, int, int | None]]
    #: Over the stages: parameter arrays, running state, leaves at a batch of 3, and titles.
    parameters: dict[str, tuple[int, ...]]
    state: dict[str, tuple[int, ...]]
    leaves: dict[str, tuple[int, ...]]
    titles: list[str]
    #: The spec a table with only ``kind`` (and the required keys) parses to.
    default_toml: str
    default: Any


TABLE: dict[str, Row] = {
    "dense": Row(
        '{ units = 2, activation = "relu", bias = false }', Dense(2, "relu", False),
        [("dense", 4, 2, 1, None)], {"W2": (2, 4)}, {}, {}, ["2 relu units"],
        "{ units = 3 }", Dense(3, "sigmoid", True),
    ),
    "batch_norm": Row(
        '{ kind = "batch_norm", eps = 1e-3, momentum = 0.25 }', BatchNorm(1e-3, 0.25),
        [("batch_norm", 4, 4, 1, None)], {"gamma2": (4,), "beta2": (4,)}, {"mean2": (4,), "var2": (4,)}, {},
        ["batch normalization over 4 units"],
        '{ kind = "batch_norm" }', BatchNorm(1e-5, 0.1),
    ),
    "residual": Row(
        '{ kind = "residual", layers = [ { units = 2, activation = "relu" }, { kind = "dropout", p = 0.5 },'
        ' { units = 4, activation = "identity" } ] }',
        Residual((Dense(2, "relu"), Dropout(0.5), Dense(4, "identity"))),
        [("dense", 4, 2, 1, None), ("dropout", 2, 2, 2, None), ("dense", 2, 4, 3, None), ("residual", 4, 4, 4, 1)],
        {"W2": (2, 4), "b2": (2,), "W4": (4, 2), "b4": (4,)}, {}, {"M3": (3, 2)},
        ["2 relu units", "dropout with p = 0.5 over 2 units", "4 identity units", "residual sum over 4 units"],
        '{ kind = "residual", layers = [ { units = 4 } ] }', Residual((Dense(4, "sigmoid"),)),
    ),
    "dropout": Row(
        '{ kind = "dropout", p = 0.25 }', Dropout(0.25),
        [("dropout", 4, 4, 1, None)], {}, {}, {"M2": (3, 4)}, ["dropout with p = 0.25 over 4 units"],
        '{ kind = "dropout" }', Dropout(0.5),
    ),
    "layer_norm": Row(
        '{ kind = "layer_norm", eps = 0.01 }', LayerNorm(0.01),
        [("layer_norm", 4, 4, 1, None)], {"gamma2": (4,), "beta2": (4,)}, {}, {}, ["layer normalization over 4 units"],
        '{ kind = "layer_norm" }', LayerNorm(1e-5),
    ),
    "activation": Row(
        '{ kind = "activation", activation = { name = "prelu", alpha = 0.2 } }', Activation({"name": "prelu", "alpha": 0.2}),
        [("activation", 4, 4, 1, None)], {"alpha2": ()}, {}, {}, ["prelu (α = 0.2) on each of 4 units"],
        '{ kind = "activation" }', Activation("relu"),
    ),
}


def parse(table_text: str) -> Any:
    """The spec of one layer written as a TOML inline table."""
    data = tomllib.loads(f"layers = [ {table_text} ]")
    (layer,) = parse_layers(data["layers"], "network.layers")
    return layer


def test_every_kind_has_a_row() -> None:
    assert set(TABLE) == set(KINDS) == set(KIND_NETWORKS)
    for name, kind in KINDS.items():
        assert kind.name == name
        assert isinstance(TABLE[name].spec, kind.spec)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_parse(name: str) -> None:
    row = TABLE[name]
    assert parse(row.toml) == row.spec
    assert parse(row.default_toml) == row.default


@pytest.mark.parametrize("name", sorted(KINDS))
def test_stages_parameters_state_leaves_and_titles(name: str) -> None:
    row = TABLE[name]
    net = Network(3, (Dense(4, "tanh"), row.spec, Dense(2, "identity")), "mse")
    stages = net.stages
    assert stages[0].kind == "dense" and stages[-1].kind == "dense"
    middle = stages[1:-1]
    assert [(s.kind, s.inputs, s.units, s.source, s.skip) for s in middle] == row.stages
    assert [s.number for s in stages] == list(range(1, len(stages) + 1))
    last = len(stages)
    assert net.parameter_shapes() == {"W1": (4, 3), "b1": (4,), **row.parameters, f"W{last}": (2, middle[-1].units), f"b{last}": (2,)}
    assert net.state_shapes() == row.state
    assert net.leaf_shapes(3) == row.leaves
    assert [KINDS[s.kind].title(s) for s in middle] == row.titles
    assert net.couples_batch == (name == "batch_norm")
    assert net.batch == (2 if name == "batch_norm" else 1)
    # Each kind reports the same through its entry as the network does over all stages.
    for stage in middle:
        kind = KINDS[stage.kind]
        assert set(kind.parameters(stage)) <= set(row.parameters)
        assert set(kind.state(stage)) <= set(row.state)
        assert set(kind.leaves(stage, 3)) <= set(row.leaves)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_the_same_spec_from_toml_and_from_python(name: str) -> None:
    row = TABLE[name]
    text = f'[network]\ninputs = 3\nlayers = [ {{ units = 4, activation = "tanh" }}, {row.toml}, {{ units = 2, activation = "identity" }} ]\nloss = "mse"\n'
    assert chainrule.loads(text) == Network(3, (Dense(4, "tanh"), row.spec, Dense(2, "identity")), "mse")


@pytest.mark.parametrize("name", sorted(KINDS))
def test_initial_parameters_and_state(name: str) -> None:
    net = Network(3, (Dense(4, "tanh"), TABLE[name].spec, Dense(2, "identity")), "mse")
    model = chainrule.compile(net)
    params = model.init_params(seed=1)
    assert {k: v.shape for k, v in params.items()} == net.parameter_shapes()
    for key, value in params.items():
        if key.startswith("gamma"):
            assert np.array_equal(value, np.ones(4))
        elif key.startswith(("beta", "b")):
            assert np.array_equal(value, np.zeros(value.shape))
    state = model.init_state()
    assert {k: v.shape for k, v in state.items()} == net.state_shapes()
    for key, value in state.items():
        assert np.array_equal(value, np.zeros(4) if key.startswith("mean") else np.ones(4))


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 0.9])
def test_dropout_masks_are_zero_or_the_inverse_keep_probability(p: float) -> None:
    net = Network(3, (Dense(4, "tanh"), Dropout(p), Dense(2, "identity")), "mse")
    stage = net.stages[1]
    mask = KINDS["dropout"].draw_leaf(stage, "M2", (400, 4), np.random.default_rng(0))
    values = set(np.unique(mask).tolist())
    assert values <= {0.0, 1 / (1 - p)}
    # The mean of an inverted-dropout mask is 1 (4 standard deviations of 1600 draws).
    assert abs(mask.mean() - 1) <= 4 * np.sqrt(p / (1 - p) / mask.size) + 1e-12


def test_the_issue_example_numbers_every_stage() -> None:
    """[dense, bn, residual[dense, dense], dropout, layer_norm, dense]: stages 1..8 and their arrays."""
    text = """
    [network]
    inputs = 64
    layers = [
      { units = 32, activation = "relu" },
      { kind = "batch_norm" },
      { kind = "residual", layers = [ { units = 32, activation = "relu" }, { units = 32, activation = "identity" } ] },
      { kind = "dropout", p = 0.2 },
      { kind = "layer_norm" },
      { units = 10, activation = "softmax" },
    ]
    loss = "cross_entropy"
    """
    net = chainrule.loads(text)
    assert net == Network(
        64,
        (Dense(32, "relu"), BatchNorm(), Residual([Dense(32, "relu"), Dense(32, "identity")]), Dropout(0.2), LayerNorm(),
         Dense(10, "softmax")),
        "cross_entropy",
    )  # fmt: skip
    assert [(s.number, s.kind, s.source, s.skip) for s in net.stages] == [
        (1, "dense", 0, None), (2, "batch_norm", 1, None), (3, "dense", 2, None), (4, "dense", 3, None),
        (5, "residual", 4, 2), (6, "dropout", 5, None), (7, "layer_norm", 6, None), (8, "dense", 7, None),
    ]  # fmt: skip
    assert net.stages[4].inner == (3, 4)
    assert list(net.parameter_shapes()) == ["W1", "b1", "gamma2", "beta2", "W3", "b3", "W4", "b4", "gamma7", "beta7", "W8", "b8"]
    assert net.state_shapes() == {"mean2": (32,), "var2": (32,)}
    assert net.leaf_shapes(5) == {"M6": (5, 32)}
    assert net.sizes == (64, 32, 32, 32, 32, 32, 32, 32, 10)


def test_nested_residual_blocks_number_inner_stages_first() -> None:
    inner = Residual((Dense(3, "tanh"), Dense(3, "identity")))
    net = Network(3, (Residual((Dense(2, "relu"), Dense(3, "sigmoid"), inner)), Dense(1, "identity")), "mse")
    assert [(s.number, s.kind, s.source, s.skip) for s in net.stages] == [
        (1, "dense", 0, None), (2, "dense", 1, None), (3, "dense", 2, None), (4, "dense", 3, None),
        (5, "residual", 4, 2), (6, "residual", 5, 0), (7, "dense", 6, None),
    ]  # fmt: skip


def test_mixed_networks_are_valid_and_varied() -> None:
    nets = [mixed_network(seed) for seed in range(60)]
    kinds = {s.kind for net in nets for s in net.stages}
    assert kinds == set(KINDS)
    dense_counts = [sum(s.kind == "dense" for s in net.stages) for net in nets]
    assert min(dense_counts) == 1 and max(dense_counts) == 6
    assert {net.loss_choice.name for net in nets} == set(LOSSES)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_the_json_document_lists_every_stage_with_its_kind(name: str) -> None:
    from chainrule.render.json_document import json_document

    net = KIND_NETWORKS[name]
    doc = json.loads(json_document(chainrule.derive(net), None))
    layers = doc["network"]["layers"]
    assert [layer.get("kind", "dense") for layer in layers] == [s.kind for s in net.stages]
    assert [layer["units"] for layer in layers] == [s.units for s in net.stages]
