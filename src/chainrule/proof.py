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
(True, 37, 2)
"""

from __future__ import annotations

import builtins
import random
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .derive import derive
from .functions import logsumexp
from .graph import parameter_names
from .layers import LayerRules, layer_rules
from .model import source
from .network import Dense, Network

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
    """The same network with every layer (and the inputs) at most ``width`` wide; softmax keeps 2."""
    layers = []
    for layer, choice in zip(network.layers, network.activations):
        floor = 1 if choice.entry.elementwise else 2
        layers.append(Dense(max(floor, min(layer.units, width)), layer.activation, layer.bias))
    return Network(min(network.inputs, width), tuple(layers), network.loss, network.title, None, network.regularizer)


def _symbolic_namespace(rules: LayerRules) -> dict[str, object]:
    names: dict[str, object] = {"exp": np.frompyfunc(sp.exp, 1, 1), "ones_row": lambda n: np.full(n, sp.Integer(1), dtype=object)}

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

    Each layer is checked where the code computes it: every entry of Z⁽ˡ⁾, A⁽ˡ⁾ and Δ⁽ˡ⁾
    against the scalar definitions of z, a and δ for that example (δ over the batch size,
    as L is the batch mean); then the code goes on with the named symbols, so each rule is
    compared with the chain rule step it stands for, not with everything below it.
    """
    small = narrowed(network, width)
    rules = layer_rules(small)
    derivation = derive(small)
    graph = derivation.graph
    copies = [
        {s: sp.Symbol(f"{s.name}_n{e}", real=True) for s in _per_example(graph, derivation)} for e in range(batch)
    ]
    pairs: list[tuple[str, sp.Expr, sp.Expr]] = []
    layers = {layer.number: layer for layer in graph.layers}

    def hook(name: str, computed: np.ndarray) -> np.ndarray:
        kind, l = name[0], int(name[1:])
        layer = layers[l]
        symbols = {"Z": layer.z, "A": layer.a, "D": layer.deltas}[kind]
        for e, copy in enumerate(copies):
            for j, symbol in enumerate(symbols):
                if kind == "D":
                    want = derivation.adjoints[layer.z[j]].value.xreplace(copy) / batch
                else:
                    want = graph.node(symbol).expr.xreplace(copy)
                pairs.append((f"{name}[{e},{j}]", computed[e, j], want))
        named = np.array([[copy[s] for s in symbols] for copy in copies], dtype=object)
        return named / batch if kind == "D" else named

    names = _symbolic_namespace(rules)
    names["hook"] = hook
    exec(builtins.compile(source(rules, symbolic=True), "<chainrule proof>", "exec"), names)  # noqa: S102
    X = np.array([[c[s] for s in graph.inputs] for c in copies], dtype=object)
    Y = np.array([[c[s] for s in graph.targets] for c in copies], dtype=object)
    params = {name: np.array(symbols, dtype=object) for name, symbols in parameter_names(graph).items()}
    loss, grads = names["loss_and_grad"](params, X, Y)

    def mean(expr: sp.Expr) -> sp.Expr:
        return sp.Add(*[expr.xreplace(c) for c in copies]) / batch

    node = graph.node(graph.loss)
    loss_scalar = node.expr if node.numeric is None else node.numeric
    penalty = [n for n in graph.nodes if n.symbol.name == "R"]
    if penalty:
        loss_scalar = loss_scalar.xreplace({penalty[0].symbol: penalty[0].expr})
    pairs.append(("L", loss, mean(loss_scalar)))
    for name, symbols in parameter_names(graph).items():
        got = np.asarray(grads[name], dtype=object)
        for index, p in np.ndenumerate(np.array(symbols, dtype=object)):
            pairs.append((f"{name}{list(index)}", got[index], mean(derivation.adjoints[p].value)))
    counts = {"identical": 0, "expanded": 0, "evaluated": 0}
    failures = []
    rng = random.Random(0)
    leaves = sorted({s for _, a, b in pairs for s in (sp.sympify(a) - b).free_symbols}, key=str)
    points = [{s: sp.Rational(rng.randint(-90, 90), 100) + sp.Rational(1, 997) for s in leaves} for _ in range(_POINTS)]
    constants = dict(graph.constants)
    for label, got, want in pairs:
        how = _equal(sp.sympify(got), want, points, constants)
        if how is None:
            failures.append(label)
        else:
            counts[how] += 1
    return Proof(small, batch, len(pairs), counts["identical"], counts["expanded"], counts["evaluated"], tuple(failures))


def _per_example(graph, derivation) -> list[sp.Symbol]:
    """The symbols that differ from one example of a batch to the next: x, y, z, a, δ."""
    names = [a.name for a in derivation.adjoints.values() if a.name is not None]
    nodes = [n.symbol for n in graph.nodes if n.symbol != graph.loss and n.symbol.name != "R"]
    return list(graph.inputs + graph.targets) + nodes + names


def _equal(got: sp.Expr, want: sp.Expr, points, constants: Mapping[sp.Symbol, float]) -> str | None:
    """How ``got`` equals ``want`` ("identical", "expanded", "evaluated"), or None if it does not."""
    difference = got - want
    if difference == 0:
        return "identical"
    if sp.count_ops(difference) <= _LONGEST_EXPANDED and sp.expand(difference) == 0:
        return "expanded"
    values = {s: sp.Float(v, _DIGITS) for s, v in constants.items()}
    for point in points:
        at = {**point, **values}
        a, b = (sp.N(e.xreplace(at), _DIGITS) for e in (got, want))
        if not (a.is_number and b.is_number):
            return None
        scale = max(1, abs(b))
        if abs(a - b) > sp.Float(10) ** (-(_DIGITS - 10)) * scale:
            return None
    return "evaluated"
