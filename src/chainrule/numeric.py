"""Numbers from a derivation: lambdified forward values, adjoints, an update, and a check.

The generated NumPy function runs the graph's own definitions in topological order (the
forward pass), then each δ from the δs above (the backward pass), then what is asked;
``lambdify`` writes it, with SymPy's CSE on the rest. Nothing is composed, so its size
grows with the graph, not with the number of paths through it. The check compares every
derived gradient with a fourth-order central difference of the loss alone, which shares
nothing with the derivation but the forward definitions.

>>> from chainrule.network import default_network
>>> from chainrule.derive import derive
>>> ex = worked_example(derive(default_network()))
>>> round(ex.loss, 9)
0.298371109
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .derive import Derivation
from .graph import Graph, leaf_arrays, parameter_names
from .kinds import KINDS
from .network import DEFAULT_LEARNING_RATE, Network
from .stable import NUMPY

#: A gradient whose relative error against finite differences exceeds this fails the check.
TOLERANCE = 1e-6
#: Steps of the central difference, relative to max(1, |p|); the best of them is kept,
#: so that a step which straddles a kink (relu at 0) does not pass for a wrong gradient.
STEPS = (1e-3, 1e-4)
#: Smaller steps, tried for the parameters no step of STEPS agrees on (see _check).
FINER_STEPS = (1e-5, 1e-6, 1e-7)
#: Points of the finite-difference check evaluated in one call (bounds its memory).
_CHECK_POINTS = 2048


@dataclass(frozen=True)
class Sample:
    """Where an example taken from a data set comes from: the set, the part, the rows, their classes."""

    data: str
    #: The data set's title ("Hand-written digits …").
    title: str
    #: Row numbers (from 1) of the training part, one per example of the batch.
    rows: tuple[int, ...]
    #: Each row's class, by name.
    classes: tuple[str, ...]
    #: For an image set, each example's pixels as rows (height × width), as loaded (not standardized).
    images: tuple[tuple[tuple[float, ...], ...], ...] = ()


@dataclass(frozen=True)
class Point:
    """The numbers the example starts from, and which of them the seed drew."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    learning_rate: float
    parameters: Mapping[str, np.ndarray]
    seed: int
    drawn: tuple[str, ...]
    #: True when the spec gives no learning rate and the default is used.
    default_rate: bool = False
    #: Dropout masks by array name ("M3"), rows by units: entries 0 or 1/(1 − p).
    masks: Mapping[str, np.ndarray] = field(default_factory=dict)
    #: When x and y are rows of the data set the spec trains on: which rows.
    sample: Sample | None = None


@dataclass(frozen=True)
class Check:
    """Derived gradients against central finite differences of the loss."""

    max_relative_error: float
    worst: sp.Symbol
    finite_differences: Mapping[sp.Symbol, float]
    #: Parameters at which the loss has a kink (relu at 0): the left and right derivatives.
    #: There the derived value, a subgradient, is checked to lie between the two.
    kinks: Mapping[sp.Symbol, tuple[float, float]] = field(default_factory=dict)
    tolerance: float = TOLERANCE

    @property
    def passed(self) -> bool:
        return self.max_relative_error <= self.tolerance


@dataclass(frozen=True)
class WorkedExample:
    """Every value of one forward and backward pass and one gradient-descent step."""

    point: Point
    loss: float
    #: Leaves and nodes: x, y, w, b, z, a and L.
    values: Mapping[sp.Symbol, float]
    #: ∂L/∂n for every node and leaf n (δ⁽ˡ⁾ⱼ is the entry of z⁽ˡ⁾ⱼ).
    adjoints: Mapping[sp.Symbol, float]
    #: p - η ∂L/∂p for every parameter p.
    updated: Mapping[sp.Symbol, float]
    check: Check


class NumericError(ValueError):
    """The example's numbers overflow float64: the example, not the derivation, is at fault."""


def draw_point(network: Network, seed: int = 0) -> Point:
    """The example's numbers: those the spec gives, the rest drawn from ``seed``.

    Drawn values are rounded to two decimals so a reader can follow them by hand.
    Everything is drawn in a fixed order whatever the spec gives, so a value does not
    change when another one is written into the spec. Over a batch (``network.batch``
    above 1) x and y are rows, one per example; dropout masks are drawn after the parameters.
    """
    rng = np.random.default_rng(seed)
    given = network.example
    batch = network.batch
    drawn: list[str] = []

    def pick(name: str, value, fresh: np.ndarray) -> np.ndarray:
        if value is None:
            drawn.append(name)
            return np.round(fresh, 2) + 0.0  # + 0.0 turns -0.0 into 0.0
        return np.asarray(value, dtype=float)

    shape = (batch, network.inputs) if batch > 1 else network.inputs
    fresh_x = rng.uniform(-1, 1, shape)
    targets = np.array([_targets(rng, network) for _ in range(batch)]) if batch > 1 else _targets(rng, network)
    # A spec that trains on a data set gets a real example of it (a digit, a flower), unless
    # it gives x and y itself; the uniform draws above still happen, so later draws stay put.
    sample = None if given and (given.x is not None or given.y is not None) else _sample(network, seed)
    if sample is not None:
        fresh_x, targets, sample = sample
        fresh_x, targets = (fresh_x, targets) if batch > 1 else (fresh_x[0], targets[0])
    x = pick("x", given and given.x, fresh_x)
    y = pick("y", given and given.y, targets)
    if sample is not None:
        drawn.clear()  # x and y are the data set's (rounded to two decimals), not the seed's
    params: dict[str, np.ndarray] = {}
    for stage in network.stages:
        kind = KINDS[stage.kind]
        for name, shape in kind.parameters(stage).items():
            params[name] = pick(name, given and given.parameters.get(name), kind.draw(stage, name, shape, rng))
    masks: dict[str, np.ndarray] = {}
    for stage in network.stages:
        kind = KINDS[stage.kind]
        for name, shape in kind.leaves(stage, batch).items():
            value = given and given.parameters.get(name)
            if value is None:
                drawn.append(name)
                masks[name] = kind.draw_leaf(stage, name, shape, rng)
            else:
                masks[name] = np.asarray(value, dtype=float)
    rate = given.learning_rate if given and given.learning_rate is not None else None
    default_rate = rate is None
    if default_rate:
        rate = DEFAULT_LEARNING_RATE
    return Point(_nested(x), _nested(y), float(rate), params, seed, tuple(drawn), default_rate, masks, sample)


def _sample(network: Network, seed: int) -> tuple[np.ndarray, np.ndarray, Sample] | None:
    """Rows seed + 1 … of the training part of the spec's data set, as the network sees them (standardized).

    None when the spec names no data set, or one the network cannot take: the worked example
    then draws its numbers, and ``chainrule train`` is the one to say what is wrong.
    """
    from .datasets import DATASETS, DataError, load_dataset

    name = (network.training or {}).get("data")
    source = DATASETS.get(name) if isinstance(name, str) else None
    if source is None or source.features != network.inputs:
        return None
    try:
        data = load_dataset(name, outputs=network.outputs, targets=network.loss_choice.entry.targets)
    except DataError:
        return None
    rows = [(seed + i) % len(data.X_train) for i in range(network.batch)]
    images = ()
    if source.image is not None:
        pixels = data.X_train[rows] * data.scale + data.mean
        images = tuple(tuple(tuple(map(float, r)) for r in p.reshape(source.image)) for p in pixels)
    where = Sample(
        name, source.title, tuple(r + 1 for r in rows), tuple(source.classes[data.labels_train[r]] for r in rows), images
    )
    return data.X_train[rows], data.Y_train[rows], where


def _nested(values: np.ndarray) -> tuple:
    """One example's numbers as a tuple of floats, a batch's as a tuple of rows."""
    return tuple(map(float, values)) if values.ndim == 1 else tuple(tuple(map(float, row)) for row in values)


def _targets(rng: np.random.Generator, network: Network) -> np.ndarray:
    """Targets of the kind the loss is defined for: one-hot, 0/1, ±1, or any numbers."""
    n, kind = network.outputs, network.loss_choice.entry.targets
    values = rng.uniform(0, 1, n)  # drawn whatever the kind, so later draws do not move
    if kind == "distribution":
        return np.eye(n)[int(values.argmax())]
    if kind == "unit":
        return (values > 0.5).astype(float)
    if kind == "sign":
        return np.where(values > 0.5, 1.0, -1.0)
    return values


def compose(graph: Graph) -> dict[sp.Symbol, sp.Expr]:
    """Each node written in the leaves, by substituting definitions in topological order."""
    composed: dict[sp.Symbol, sp.Expr] = {}
    for node in graph.nodes:
        composed[node.symbol] = node.expr.xreplace(composed)
    return composed


def leaf_symbols(graph: Graph) -> tuple[sp.Symbol, ...]:
    return graph.inputs + graph.targets + graph.parameters + graph.masks + tuple(graph.constants)


def lambdify_checked(args: tuple[sp.Symbol, ...], exprs: list[sp.Expr], steps=()):
    """``lambdify`` with CSE, after proving every expression uses only the declared arguments.

    ``steps`` are assignments ``(symbol, expr)`` computed in order before ``exprs``, each of
    which may use the arguments and the symbols assigned before it.
    """
    allowed = set(args)
    for symbol, expr in steps:
        _declared(expr, allowed)
        allowed.add(symbol)
    for expr in exprs:
        _declared(expr, allowed)

    def cse(exprs):
        # The graph's own definitions are the first common subexpressions: evaluating them
        # in order is what a forward pass is, and it never composes nested expressions.
        replacements, reduced = sp.cse(exprs)
        return list(steps) + replacements, reduced

    return sp.lambdify(args, exprs, modules=[NUMPY, np], cse=cse, printer=_printer(), docstring_limit=0)


def _printer():
    """lambdify's own NumPy printer, with terms in the order SymPy keeps them.

    Sorting every sum's terms for printing took most of the code generation of a network
    with thousands of parameters; the order of the terms changes nothing a test can see.
    """
    from sympy.printing.numpy import NumPyPrinter

    settings = {"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True, "order": "none"}
    return NumPyPrinter({**settings, "user_functions": {name: name for name in NUMPY}})


def _declared(expr: sp.Expr, allowed: set) -> None:
    extra = expr.free_symbols - allowed
    if extra:
        raise ValueError(f"expression uses undeclared symbols {sorted(map(str, extra))}")


def lambdify_graph(graph: Graph, exprs: list[sp.Expr], after=()):
    """A NumPy function of the leaves that runs the forward pass, then ``after``, then ``exprs``."""
    steps = [(n.symbol, n.expr if n.numeric is None else n.numeric) for n in graph.nodes] + list(after)
    return lambdify_checked(leaf_symbols(graph), exprs, steps)


def worked_example(derivation: Derivation, point: Point | None = None, seed: int = 0) -> WorkedExample:
    """Evaluate the derivation at ``point`` (by default the spec's example, else drawn from ``seed``)."""
    graph = derivation.graph
    if point is None:
        point = draw_point(derivation.network, seed)
    nodes = [n.symbol for n in graph.nodes]
    adjoint_symbols = list(derivation.adjoints)
    # The backward pass as the derivation states it: each δ from the δs above. (Closed
    # forms say the same, but written out they grow exponentially with depth.)
    backward = [(a.name, a.value) for a in derivation.adjoints.values() if a.name is not None]
    exprs = nodes + [derivation.adjoints[s].value for s in adjoint_symbols]
    leaves = _leaf_values(graph, point)
    # exp(1000) is inf in float64 while 1/(1 + inf) is the right 0, so overflow is judged
    # on the results, not on the way there.
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        results = lambdify_graph(graph, exprs, backward)(*leaves.values())
        values = {**leaves, **{s: _real(v) for s, v in zip(nodes, results)}}
        adjoints = {s: _real(v) for s, v in zip(adjoint_symbols, results[len(nodes) :])}
        updated = {p: values[p] - point.learning_rate * adjoints[p] for p in graph.parameters}
        bad = [s for s, v in [*values.items(), *adjoints.items(), *updated.items()] if not np.isfinite(v)]
        if bad:
            raise NumericError(
                f"the example's values make {bad[0]} overflow float64 or leave the formulas' domain "
                "(a log or square root of a negative number, a division by 0); use other values or another --seed"
            )
        loss = lambdify_graph(graph, [graph.loss])
        check = _check(graph, loss, leaves, values[graph.loss], adjoints)
    return WorkedExample(point, values[graph.loss], values, adjoints, updated, check)


def _real(value) -> float:
    """A result as a float; NaN where it is complex (z**z at a negative z), so the caller reports it."""
    if np.iscomplexobj(value):
        return float(value.real) if value.imag == 0 else float("nan")
    return float(value)


def _leaf_values(graph: Graph, point: Point) -> dict[sp.Symbol, float]:
    values = dict(zip(graph.inputs, np.ravel(point.x).tolist()))
    values.update(zip(graph.targets, np.ravel(point.y).tolist()))
    arrays = {**point.parameters, **point.masks}
    for name, symbols in {**parameter_names(graph), **leaf_arrays(graph)}.items():
        values.update(zip(np.ravel(np.array(symbols, dtype=object)), np.ravel(arrays[name]).tolist()))
    values.update(graph.constants)
    return {s: float(values[s]) for s in leaf_symbols(graph)}


def _check(
    graph: Graph, loss, leaves: Mapping[sp.Symbol, float], loss_value: float, adjoints: Mapping[sp.Symbol, float]
) -> Check:
    """Fourth-order central differences of the loss for every parameter (finer steps only for those that disagree)."""
    order = list(leaves)
    base = np.array([leaves[s] for s in order])
    position = {s: i for i, s in enumerate(order)}  # list.index would compare SymPy symbols one by one
    params = [position[p] for p in graph.parameters]
    values, estimates, steps = _quotients(loss, base, params, STEPS)
    derived = np.array([adjoints[p] for p in graph.parameters])
    floor = 1e-6 * max(1.0, abs(loss_value))

    def relative(a, b):
        return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)

    errors = relative(estimates, derived)
    best = errors.argmin(axis=0)
    per_param = errors[best, np.arange(len(params))]
    chosen = estimates[best, np.arange(len(params))]
    # A loss that bends sharply within a step (batch norm over two examples whose inputs nearly
    # agree divides by a tiny spread) needs smaller steps: those that disagree are retried with
    # them, and a smaller step that agrees is kept. A wrong gradient agrees with none of them.
    retry = np.flatnonzero(per_param > TOLERANCE)
    if retry.size:
        _, finer, _ = _quotients(loss, base, [params[i] for i in retry], FINER_STEPS)
        finer_errors = relative(finer, derived[retry])
        finest = finer_errors.argmin(axis=0)
        closest = finer_errors[finest, np.arange(retry.size)]
        better = closest < per_param[retry]
        per_param[retry[better]] = closest[better]
        chosen[retry[better]] = finer[finest, np.arange(retry.size)][better]
    # Where only a higher derivative jumps (elu at z = 0, huber at |ŷ - y| = Δ), the quotients
    # are off by O(h) but close in on the derived value as the step shrinks: accept that.
    gaps = np.abs(estimates - derived)
    converging = (gaps[1] <= 0.2 * gaps[0] + 1e-15) & (gaps[1] <= 1e-3 * np.maximum(1.0, np.abs(derived)))
    per_param = np.where(converging, np.minimum(per_param, TOLERANCE), per_param)
    # Where no central difference agrees, the loss may have a kink at this very point:
    # second-order one-sided differences from the widest step tell left from right.
    h = steps[0]
    m2, m1, p1, p2 = values[0].T
    left = (3 * loss_value - 4 * m1 + m2) / (2 * h)
    right = (-3 * loss_value + 4 * p1 - p2) / (2 * h)
    kinks = {}
    for i, p in enumerate(graph.parameters):
        if per_param[i] > TOLERANCE and relative(left[i], right[i]) > 1e-3:
            low, high = sorted((float(left[i]), float(right[i])))
            slack = 1e-4 * max(abs(low), abs(high), floor)
            if low - slack <= derived[i] <= high + slack:
                kinks[p] = (float(left[i]), float(right[i]))
                per_param[i] = 0.0
    worst = int(per_param.argmax())
    return Check(
        float(per_param[worst]),
        graph.parameters[worst],
        {p: float(v) for p, v in zip(graph.parameters, chosen)},
        kinks,
    )


def _quotients(loss, base: np.ndarray, params: list[int], step_sizes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loss at p ± h, p ± 2h for each parameter (leaf index) and step, and the quotients.

    Returns the values (steps × parameters × 4), the fourth-order estimates (steps × parameters)
    and the steps themselves, relative to max(1, |p|).
    """
    stencil = np.array([-2.0, -1.0, 1.0, 2.0])
    weights = np.array([1.0, -8.0, 8.0, -1.0]) / 12.0
    steps = np.array([[h * max(1.0, abs(base[i])) for i in params] for h in step_sizes])
    values = np.empty((len(step_sizes), len(params), len(stencil)))
    # Points are evaluated a block of parameters at a time: all at once, a 2,410-parameter
    # network would need a table of 19,280 points by 2,500 leaves.
    block = max(1, _CHECK_POINTS // (len(step_sizes) * len(stencil)))
    for start in range(0, len(params), block):
        chosen = range(start, min(start + block, len(params)))
        table = np.repeat(base[:, None], len(step_sizes) * len(chosen) * len(stencil), axis=1)
        column = 0
        for h in range(len(step_sizes)):
            for j in chosen:
                for s in stencil:
                    table[params[j], column] += s * steps[h, j]
                    column += 1
        part = np.asarray(loss(*table)[0], dtype=float).reshape(len(step_sizes), len(chosen), len(stencil))
        values[:, chosen.start : chosen.stop] = part
    return values, (values @ weights) / steps, steps
