"""The proof of the layer-level rules: the generated code, run on symbols, against the scalar derivation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from chainrule import layers as layers_module
from chainrule.catalog import ACTIVATIONS, LOSSES, REGULARIZERS
from chainrule.network import Dense, Network
from chainrule.proof import narrowed, prove


def test_narrowed_keeps_entries_and_caps_widths() -> None:
    net = Network(64, (Dense(32, "tanh"), Dense(10, "softmax")), "cross_entropy", regularizer="l2")
    small = narrowed(net, 2)
    assert small.sizes == (2, 2, 2)
    assert [c.name for c in small.activations] == ["tanh", "softmax"]
    assert small.loss_choice.name == "cross_entropy" and small.regularizer_choice.name == "l2"
    assert narrowed(Network(1, (Dense(1, "relu"),), "mse"), 3).sizes == (1, 1)


def _proof_network(activation: str | None = None, loss: str = "half_sse", regularizer=None) -> Network:
    hidden = activation if activation is not None and ACTIVATIONS[activation].elementwise else "tanh"
    entry = LOSSES[loss]
    if entry.requires is not None:
        output = entry.requires
    elif activation is not None:
        output = activation
    else:
        output = "sigmoid" if loss.startswith("bce") and loss != "bce_logits" else "identity"
    if loss == "bce" and output not in ("sigmoid", "softmax"):
        output = "sigmoid"
    return Network(3, (Dense(3, hidden), Dense(3, output)), loss, regularizer=regularizer)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_layer_rules_are_proved_for_every_activation(name: str) -> None:
    net = _proof_network(name, "cross_entropy" if name == "softmax" else "half_sse")
    proof = prove(net, batch=2, width=3)
    assert proof.passed, proof.failures
    assert proof.network.sizes == (3, 3, 3)
    # Z, A and Δ of both layers and G = ∂L/∂A of the hidden one (of the output too for prelu, whose α
    # needs it), for both examples; the loss; every gradient entry.
    parameters = sum(int(np.prod(s)) for s in net.parameter_shapes().values())
    gradients = 2 if name == "prelu" else 1
    assert proof.entries == 3 * 2 * 2 * 3 + gradients * 2 * 3 + 1 + parameters


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_layer_rules_are_proved_for_every_loss(name: str) -> None:
    proof = prove(_proof_network(None, name), batch=3, width=2)
    assert proof.passed, proof.failures
    assert proof.batch == 3 and proof.entries > 20


@pytest.mark.parametrize("name", sorted(REGULARIZERS))
def test_layer_rules_are_proved_for_every_regularizer(name: str) -> None:
    proof = prove(_proof_network("relu", "mse", name))
    assert proof.passed, proof.failures


def test_layer_rules_are_proved_for_formulas_and_learned_parameters() -> None:
    net = Network(2, (Dense(3, {"formula": "z*sigmoid(beta*z)", "beta": 1.5}), Dense(2, "prelu"), Dense(2, "identity")),
                  {"formula": "log(cosh(yhat - y))", "reduction": "mean"})
    proof = prove(net, width=3)
    assert proof.passed, proof.failures


def test_softmax_under_another_loss_is_proved() -> None:
    proof = prove(Network(2, (Dense(3, "softmax"),), "mse"), width=3)
    assert proof.passed, proof.failures
    assert proof.expanded + proof.evaluated > 0


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        ("gb{l} = ones @ D{l}", "gb{l} = (ones @ D{l}) * 2"),  # a stray factor
        ("gW{l} = D{l}.T @ {prev}", "gW{l} = (D{l}.T @ {prev}) * 0"),  # the silent zero of matrix calculus
        ("G{below} = D{l} @ W{l}", "G{below} = D{l} @ (W{l} * 1.5)"),  # a wrong backward weight
    ],
)
def test_a_wrong_rule_fails_the_proof(monkeypatch, wrong: str, right: str) -> None:
    original = layers_module.layer_rules

    def broken(network):
        rules = original(network)
        swap = {}
        for l in range(1, len(network.layers) + 1):
            prev = "X" if l == 1 else f"A{l - 1}"
            swap[wrong.format(l=l, prev=prev, below=l - 1)] = right.format(l=l, prev=prev, below=l - 1)
        backward = tuple(replace(r, code=swap.get(r.code, r.code)) for r in rules.backward)
        assert backward != rules.backward
        return replace(rules, backward=backward)

    monkeypatch.setattr("chainrule.proof.layer_rules", broken)
    proof = prove(Network(2, (Dense(2, "sigmoid"), Dense(2, "sigmoid")), "half_sse"))
    assert not proof.passed
