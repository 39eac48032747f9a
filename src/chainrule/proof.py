"""Proof of the layer-level rules: the generated code, run on symbols, against the scalar derivation.

The code ``model.py`` generates is run with object arrays of SymPy symbols in place of
numbers — a batch of examples, each with its own xₖ and yⱼ — and every entry of every
gradient it returns is compared with the mean, over the batch, of the scalar
derivation's ∂L/∂p for the same network. So the matrix forms (Δᵀ·A, Σ over the batch,
Δ·W, the softmax Jacobian) are proved from the chain rule, not taken from SymPy's matrix
calculus, which can silently return 0. Wide networks are proved on a copy at small
width: the rules do not depend on the width, only the code's shapes do.

>>> from chainrule.network import Network, Dense
>>> p = prove(Network(2, (Dense(2, "sigmoid"), Dense(2, "sigmoid")), "half_sse"))
>>> p.passed, p.entries, p.batch
(True, 41, 2)
"""

from __future__ import annotations

import builtins
import random
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .derive import derive
from .functions import logsumexp
from .graph import leaf_arrays, parameter_names
from .kinds import narrow_layers
from .layers import LayerRules, layer_rules
from .model import source
from .network import Network

#: Entries whose difference is longer than this (in operations) skip ``expand``.
_LONGEST_EXPANDED = 4000
#: Exact points at which a difference that ``expand`` does not clear is evaluated.
_POINTS = 3
_DIGITS = 50


@dataclass(frozen=True)
class Proof:
    """Every entry of the batch loss and gradients, compared with the scalar derivation."""

    network: Network  # the copy that was run (the original at width ≤ ``width``)
    batch: int
    entries: int  # the loss and every gradient entry
    identical: int  # equal once both are written in the leaves
    expanded: int  # equal after ``sympy.expand``
    evaluated: int  # equal to 50 digits at exact random points (piecewise, special functions)
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def narrowed(network: Network, width: int) -> Network:
    """The same network with every layer that sets a width (and the inputs) at most ``width`` wide.

    Each kind narrows its own spec (``Kind.narrowed``); softmax keeps 2 units. Widths that
    were equal stay equal, so residual sums still add equal widths.
    """
    small = narrow_layers(network.layers, width)
    return Network(min(network.inputs, width), tuple(small), network.loss, network.title, None, network.regularizer)


def _symbolic_namespace(rules: LayerRules) -> dict[str, object]:
    names: dict[str, object] = {
        "exp": np.frompyfunc(sp.exp, 1, 1),
        "ones_row": lambda n: np.full(n, sp.Integer(1), dtype=object),
    }

    def softmax_rows(Z):
        # The graph's own forms: log Σ exp z, and aⱼ = exp(zⱼ - log Σ exp z).
        S = np.array([[logsumexp(*row)] for row in Z], dtype=object)
        return S, names["exp"](Z - S)

    names["softmax_rows"] = softmax_rows
    for name, kernel in rules.kernels.items():
        names[name] = np.frompyfunc(_substituter(kernel.args, kernel.expr), len(kernel.args), 1)
    return names


def _substituter(args, expr):
    def apply(*values):
        return expr.xreplace(dict(zip(args, map(sp.sympify, values))))

    return apply


def prove(network: Network, batch: int = 2, width: int = 2) -> Proof:
    """Run the generated code on symbols and compare it with the scalar derivation, entry by entry.

    The scalar derivation is of the same network over ``batch`` examples, each with its own
    xₖ and yⱼ (the loss their mean). Each array is checked where the code computes it —
    every entry of Z⁽ˡ⁾, A⁽ˡ⁾, Δ⁽ˡ⁾, G⁽ˡ⁾ = ∂L/∂A⁽ˡ⁾ and each kind's own (batch norm's μ, σ²,
    x̂ and ∂L/∂x̂) against the scalar definitions and adjoints; then the code goes on with
    the named symbols, so each rule is compared with the chain rule step it stands for,
    not with everything below it.
    """
    small = narrowed(network, width)
    rules = layer_rules(small)
    derivation = derive(small, batch)
    graph = derivation.graph
    pairs: list[tuple[str, sp.Expr, sp.Expr]] = []
    forward = {name: grid for layer in graph.layers for name, grid in layer.forward.items()}
    backward = {name: grid for layer in graph.layers for name, grid in layer.backward.items()}
    # G⁽ˡ⁾ of every stage: ∂L/∂a⁽ˡ⁾, entry by entry.
    backward.update({f"G{layer.number}": layer.output_grid for layer in graph.layers})

    def hook(name: str, computed: np.ndarray) -> np.ndarray:
        grid = forward.get(name) or backward[name]
        computed = np.asarray(computed, dtype=object).reshape(len(grid), len(grid[0]))
        wants = []
        for r, row in enumerate(grid):
            for c, symbol in enumerate(row):
                want = derivation.adjoints[symbol].value if name in backward else graph.node(symbol).expr
                pairs.append((f"{name}[{r},{c}]", computed[r, c], want))
                wants.append(want)
        if name in forward:
            return np.array(grid, dtype=object)
        names = [derivation.adjoints[s].name for row in grid for s in row]
        if all(n is not None for n in names):  # δ, ∂L/∂x̂: go on with the named adjoints
            return np.array(names, dtype=object).reshape(computed.shape)
        return computed

    names = _symbolic_namespace(rules)
    names["hook"] = hook
    hooked = frozenset(forward) | frozenset(backward)
    exec(builtins.compile(source(rules, symbolic=True, hooked=hooked), "<chainrule proof>", "exec"), names)  # noqa: S102
    X = np.array(np.reshape(np.array(graph.inputs, dtype=object), (batch, -1)), dtype=object)
    Y = np.array(np.reshape(np.array(graph.targets, dtype=object), (batch, -1)), dtype=object)
    params = {name: np.array(symbols, dtype=object) for name, symbols in parameter_names(graph).items()}
    masks = {name: np.array(grid, dtype=object) for name, grid in leaf_arrays(graph).items()}
    loss, grads = names["loss_and_grad"](params, X, Y, masks=masks)
    node = graph.node(graph.loss)
    loss_scalar = node.expr if node.numeric is None else node.numeric
    penalty = [n for n in graph.nodes if n.symbol.name == "R"]
    if penalty:
        loss_scalar = loss_scalar.xreplace({penalty[0].symbol: penalty[0].expr})
    pairs.append(("L", loss, loss_scalar))
    for name, symbols in parameter_names(graph).items():
        got = np.asarray(grads[name], dtype=object)
        for index, p in np.ndenumerate(np.array(symbols, dtype=object)):
            pairs.append((f"{name}{list(index)}", got[index], derivation.adjoints[p].value))
    counts = {"identical": 0, "expanded": 0, "evaluated": 0}
    failures = []
    rng = random.Random(0)
    leaves = graph.inputs + graph.targets + graph.parameters + graph.masks
    points = [{s: _draw(rng) for s in leaves} for _ in range(_POINTS)]
    valuations = _valuations(graph, derivation, points)
    for label, got, want in pairs:
        how = _equal(sp.sympify(got), want, valuations)
        if how is None:
            failures.append(label)
        else:
            counts[how] += 1
    return Proof(small, batch, len(pairs), counts["identical"], counts["expanded"], counts["evaluated"], tuple(failures))


def _draw(rng: random.Random) -> sp.Rational:
    """An exact point for a leaf, away from relu's kink at 0."""
    return sp.Rational(rng.randint(-90, 90), 100) + sp.Rational(1, 997)


def _valuations(graph, derivation, points) -> list[dict]:
    """Every symbol's value at each point: leaves as drawn, nodes by the forward pass, named adjoints by the walk.

    A rule that holds only where its named quantities agree with their definitions (batch
    norm's compact backward, in x̂, μ and σ²) is compared where they do.
    """
    out = []
    for point in points:
        values = {**point, **{s: sp.Float(v, _DIGITS) for s, v in graph.constants.items()}}
        for node in graph.nodes:
            values[node.symbol] = sp.N(node.expr.xreplace(values), _DIGITS)
        for adjoint in derivation.adjoints.values():
            if adjoint.name is not None:
                values[adjoint.name] = sp.N(adjoint.value.xreplace(values), _DIGITS)
        out.append(values)
    return out


def _equal(got: sp.Expr, want: sp.Expr, valuations) -> str | None:
    """How ``got`` equals ``want`` ("identical", "expanded", "evaluated"), or None if it does not."""
    difference = got - want
    if difference == 0:
        return "identical"
    if sp.count_ops(difference) <= _LONGEST_EXPANDED and sp.expand(difference) == 0:
        return "expanded"
    for values in valuations:
        a, b = (sp.N(e.xreplace(values), _DIGITS) for e in (got, want))
        if not (a.is_number and b.is_number):
            return None
        scale = max(1, abs(b))
        if abs(a - b) > sp.Float(10) ** (-(_DIGITS - 10)) * scale:
            return None
    return "evaluated"
