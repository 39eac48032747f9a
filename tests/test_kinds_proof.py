"""``prove`` and the finite-difference check of the derivation, for every layer kind and mixed networks.

``prove`` runs the generated batch code on symbols and compares every entry (the loss,
every gradient, and every array each kind names: Z, A, Δ, G, μ, σ², x̂, ∂L/∂x̂) with the
scalar derivation. The entry counts below are worked out by hand from the arrays each
kind computes. A planted wrong rule (the batch-norm backward without its x̂ ⊙ mean(h ⊙ x̂)
term, a dropout backward without its mask, a residual without its identity path) must
make ``prove`` fail where it is wrong, and its gradient differ from PyTorch.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import random_targets
from test_kinds import KIND_NETWORKS, describe_stages, mixed_network
from test_kinds_torch import TorchNetwork, _tensor, start

import chainrule
import chainrule.proof
from chainrule.kinds import KINDS, BatchNorm, Dense, Dropout, LayerNorm, Residual
from chainrule.layers import layer_rules
from chainrule.network import Network
from chainrule.numeric import draw_point, worked_example
from chainrule.proof import prove

#: Entries ``prove`` compares at batch 2, width 2 (every KIND_NETWORKS net narrows to 2-2-…-2).
#: dense: 1 loss + 16 gradient entries (W1 4, b1 2, W2 4, W3 4, b3 2) + 3 layers × (Z, A, Δ) × 4
#:   + G1, G2 × 4 = 61.
#: batch_norm: 1 + 16 (W1 4, b1 2, γ 2, β 2, W3 4, b3 2) + 2 dense × 12 + μ 2, σ² 2, x̂ 4, A 4
#:   + G1, G2 × 4 = 61 (its compact backward reuses ∂L/∂γ and ∂L/∂β, so ∂L/∂x̂ is not an array);
#:   layer_norm: the same with μ and σ² one per example (2 each) and ∂L/∂x̂ 4 = 65.
#: residual: 1 + 24 (4 dense layers × (W 4, b 2)) + 4 dense × 12 + the sum's A 4 + G1..G4 × 4 = 93.
#: dropout: 1 + 12 (W1, b1, W3, b3) + 2 dense × 12 + A2 4 + G1, G2 × 4 = 49.
#: activation: 1 + 16 (W1 4, b1 2, γ 2, β 2, W4 4, b4 2) + 2 dense × 12 + batch norm's 12 + its A 4 + G1..G3 × 4 = 69.
ENTRIES = {"dense": 61, "batch_norm": 61, "layer_norm": 65, "residual": 93, "dropout": 49, "activation": 69}


def expected_entries(net: Network, batch: int) -> int:
    """The loss, every gradient entry, and every array each stage names, as the counts above."""
    total = 1 + sum(int(np.prod(shape)) for shape in net.parameter_shapes().values())
    for stage in net.stages:
        n = stage.units
        per_stage = {
            "dense": 3 * batch * n,  # Z, A, Δ
            "batch_norm": 2 * n + 2 * batch * n,  # μ, σ² per unit; x̂, A
            "layer_norm": 2 * batch + 3 * batch * n,  # μ, σ² per example
            "dropout": batch * n,
            "residual": batch * n,
            "activation": batch * n,
        }[stage.kind]
        total += per_stage
        if stage is not net.stages[-1]:
            total += batch * n  # G = ∂L/∂A
    # The output's G too, where the loss's derivative is not fused with f′ into Δ (softmax with mae).
    last = net.stages[-1]
    if any(rule.code.startswith(f"G{last.number} =") for rule in layer_rules(net).backward):
        total += batch * last.units
    return total


def test_entries_table_covers_every_kind() -> None:
    assert set(ENTRIES) == set(KINDS) == set(KIND_NETWORKS)


@pytest.mark.parametrize("name", sorted(KIND_NETWORKS))
def test_prove_passes_for_each_kind(name: str) -> None:
    proof = prove(KIND_NETWORKS[name])
    assert proof.passed, proof.failures
    assert proof.batch == 2
    assert proof.entries == ENTRIES[name] == expected_entries(proof.network, 2)
    assert proof.identical + proof.expanded + proof.evaluated == proof.entries


@pytest.mark.parametrize("batch", [3, 4])
def test_prove_batch_norm_over_larger_batches(batch: int) -> None:
    net = Network(2, (BatchNorm(eps=1e-3), Dense(2, "sigmoid")), "bce")
    proof = prove(net, batch=batch)
    assert proof.passed, proof.failures
    assert proof.entries == expected_entries(proof.network, batch)


#: Mixed networks kept small enough for exact symbolic comparison (they narrow to width 2).
PROVED = [mixed_network(seed, max_dense=4, max_width=3) for seed in (2, 3, 5, 8, 13, 21)] + [
    Network(3, (Dense(3, "relu"), BatchNorm(), Residual((Dense(3, "tanh"), Dense(3, "identity"))), Dropout(0.2),
                LayerNorm(), Dense(3, "softmax")), "cross_entropy", regularizer="l2"),  # fmt: skip
    Network(2, (Residual((Residual((LayerNorm(), Dense(2, "elu"))), Dropout(0.5))), Dense(1, "identity", bias=False)), "huber"),
]


@pytest.mark.parametrize("index", range(len(PROVED)), ids=[describe_stages(n) for n in PROVED])
def test_prove_passes_for_mixed_networks(index: int) -> None:
    proof = prove(PROVED[index])
    assert proof.passed, proof.failures
    assert proof.entries == expected_entries(proof.network, 2)


def test_proved_cases_mix_every_kind() -> None:
    assert {s.kind for net in PROVED for s in net.stages} == set(KIND_NETWORKS)


# --- the derivation's own finite-difference check ----------------------------------------------

FD_CASES = {**KIND_NETWORKS, **{f"mixed {i}": net for i, net in enumerate(PROVED)}}


@pytest.mark.parametrize("name", list(FD_CASES))
def test_worked_example_agrees_with_finite_differences(name: str) -> None:
    net = FD_CASES[name]
    derivation = chainrule.derive(net)
    example = worked_example(derivation)
    assert example.check.max_relative_error < 1e-6, (example.check.worst, example.check.max_relative_error)
    assert derivation.graph.batch == net.batch
    if net.couples_batch:
        assert net.batch == 2 and np.shape(example.point.x) == (2, net.inputs)
    for name_, mask in example.point.masks.items():
        stage = net.stages[int(name_[1:]) - 1]
        assert set(np.unique(mask).tolist()) <= {0.0, 1 / (1 - stage.spec.p)}


def test_batch_norm_worked_example_over_three_given_rows_and_a_given_mask() -> None:
    """A spec with x and y as 3 rows and dropout's mask written out: the values are the spec's."""
    text = """
    [network]
    inputs = 2
    layers = [ { units = 2, activation = "tanh" }, { kind = "batch_norm" }, { kind = "dropout", p = 0.5 },
               { units = 1, activation = "identity" } ]
    loss = "mse"
    [example]
    x = [[0.1, 0.2], [-0.3, 0.5], [0.7, -0.4]]
    y = [[0.5], [-0.5], [1.0]]
    M3 = [[2.0, 0.0], [0.0, 2.0], [2.0, 2.0]]
    """
    net = chainrule.loads(text)
    assert net.batch == 3
    example = worked_example(chainrule.derive(net))
    assert example.check.max_relative_error < 1e-6
    assert np.array_equal(example.point.masks["M3"], [[2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    # The worked example's loss is the compiled model's, at the same point and mask.
    model = chainrule.compile(net)
    point = example.point
    loss = model.loss(dict(point.parameters), np.array(point.x), np.array(point.y), masks=dict(point.masks))
    assert abs(loss - example.loss) <= 1e-12 * max(1.0, abs(loss))


def test_default_point_draws_masks_of_the_kinds_values() -> None:
    point = draw_point(KIND_NETWORKS["dropout"], seed=4)
    assert set(point.masks) == {"M2"} and np.shape(point.masks["M2"]) == (1, 3)
    assert "M2" in point.drawn


# --- planted wrong rules -----------------------------------------------------------------------

#: name -> (network, the backward rule's label and layer, the code's text replaced, its replacement,
#: the first array prove must report as wrong).
PLANTED = {
    "batch norm without the x̂ ⊙ Σ g ⊙ x̂ term": (
        KIND_NETWORKS["batch_norm"], ("normalize", 1),
        " + Xh2 * ggamma2", "", "G1",
    ),
    "layer norm averaging over the batch": (
        KIND_NETWORKS["layer_norm"], ("normalize", 1), "H2.mean(axis=1", "H2.mean(axis=0", "G1",
    ),
    "dropout's gradient without its mask": (KIND_NETWORKS["dropout"], ("dropout", 1), "G2 * M2", "G2", "G1"),
    "residual without its identity path": (KIND_NETWORKS["residual"], ("gradient", 1), "G4 + D2 @ W2", "D2 @ W2", "G1"),
}


def planted(name: str):
    """The network (at the width prove runs it) and its layer rules with one backward rule's code changed."""
    net, (label, layer), old, new, _ = PLANTED[name]
    net = chainrule.proof.narrowed(net, 2)
    assert chainrule.proof.narrowed(net, 2) == net
    rules = layer_rules(net)
    changed = []
    for rule in rules.backward:
        if (rule.label, rule.layer) == (label, layer):
            assert old in rule.code, rule.code
            rule = dataclasses.replace(rule, code=rule.code.replace(old, new))
            changed.append(rule)
        else:
            changed.append(rule)
    assert changed != list(rules.backward)
    return net, dataclasses.replace(rules, backward=tuple(changed))


@pytest.mark.parametrize("name", list(PLANTED))
def test_a_planted_wrong_rule_fails_prove(name: str, monkeypatch) -> None:
    net, broken = planted(name)
    wrong = PLANTED[name][4]
    assert prove(net).passed
    monkeypatch.setattr(chainrule.proof, "layer_rules", lambda network: broken if network == net else layer_rules(network))
    proof = prove(net)
    assert not proof.passed
    assert any(f.startswith(f"{wrong}[") for f in proof.failures), proof.failures
    # The rules above the planted one still agree with the chain rule.
    assert not any(f.startswith(("G2[", "D3[", "gW3", "gb3", "W3", "b3")) for f in proof.failures), proof.failures


@pytest.mark.parametrize("name", list(PLANTED))
def test_a_planted_wrong_rule_differs_from_pytorch(name: str) -> None:
    net, broken = planted(name)
    model, params, state = start(net, 5)
    wrong_model = chainrule.compile(net, rules=broken)
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(4, net.inputs)), random_targets(net, 4, rng)
    masks = {"M2": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0]]) / 0.75}  # p = 0.25
    masks = masks if net.leaf_shapes(4) else None
    tnet = TorchNetwork(net, params, state)
    tnet.train()
    if masks:  # the torch reference with the same mask: dropout replaced by the product
        tnet.stage_modules["2"].forward = lambda x: x * _tensor(masks["M2"])
    tnet.loss(_tensor(X), _tensor(Y)).backward()
    want = tnet.named["W1"].grad.numpy()
    _, good = model.loss_and_grad(params, X, Y, state=dict(state), masks=masks)
    _, bad = wrong_model.loss_and_grad(params, X, Y, state=dict(state), masks=masks)
    assert np.allclose(good["W1"], want, rtol=1e-10, atol=1e-13)
    assert np.abs(bad["W1"] - want).max() > 1e-3 * np.abs(want).max()
    # Above the planted rule the gradients are still right.
    last = net.stages[-1].number
    assert np.allclose(bad[f"W{last}"], tnet.named[f"W{last}"].grad.numpy(), rtol=1e-10, atol=1e-13)
