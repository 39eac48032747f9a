"""The normalization backward for documents: the compact formula derived from the scalar chain rule.

The reverse walk gives ∂L/∂aₙ of a normalization's input as a sum over the three nodes
that read aₙ (x̂ₙ, σ² and μ), in the named adjoints ∂L/∂x̂, ∂L/∂σ², ∂L/∂μ. Substituting the
walk's own ∂L/∂σ² and ∂L/∂μ, and writing aₘ − μ = x̂ₘ √(σ² + ε), gives the textbook form

    ∂L/∂aₙ = (1/(B √(σ² + ε))) (B hₙ − Σₘ hₘ − x̂ₙ Σₘ hₘ x̂ₘ),   h = ∂L/∂x̂,

the sums running over the entries one μ and σ² are taken over (the batch for batch norm,
the units for layer norm). ``compact_backward`` returns these steps as layer equations, each
written once with indices and then entry by entry in the graph's own symbols; the groups
are read off the graph (the parents of each μ), so nothing here depends on which kind it is.

>>> from chainrule.network import Network, Dense
>>> from chainrule.kinds import BatchNorm
>>> from chainrule.derive import derive
>>> d = derive(Network(1, (Dense(1, "identity"), BatchNorm(), Dense(1, "identity")), "mse"), batch=2)
>>> [eq.label for eq in d.equations if eq.layer == 2]
['normalize-walk', 'normalize-variance', 'normalize-mean', 'normalize-substituted', 'normalize-compact']
>>> steps = [eq for eq in d.equations if eq.label == "normalize-substituted"][0]
>>> compact = [eq for eq in d.equations if eq.label == "normalize-compact"][0]
>>> equal_entries(steps, compact, d.graph)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..symbols import Notation
from .base import LayerEquation


@dataclass(frozen=True)
class _Group:
    """The entries one μ and σ² are taken over, with the nodes that read them."""

    mu: sp.Symbol
    var: sp.Symbol
    eps: sp.Symbol
    members: tuple[sp.Symbol, ...]
    #: x̂ of each member, in the members' order.
    xhats: tuple[sp.Symbol, ...]


def _groups(layer, graph) -> dict[sp.Symbol, _Group]:
    """Each input entry's group, read off the graph: μ's parents are its members, x̂ reads (a, μ, σ², ε)."""
    nodes = {s: graph.node(s) for s in layer.nodes}
    xhat_of = {}
    for symbol, node in nodes.items():
        if len(node.parents) == 4 and node.parents[1] in nodes and node.parents[2] in nodes:
            xhat_of[node.parents[0]] = (symbol, node.parents[1], node.parents[2], node.parents[3])
    groups = {}
    for symbol, node in nodes.items():
        if any(v[1] == symbol for v in xhat_of.values()):
            members = node.parents
            _, mu, var, eps = xhat_of[members[0]]
            group = _Group(mu, var, eps, tuple(members), tuple(xhat_of[a][0] for a in members))
            for a in members:
                groups[a] = group
    return groups


def compact_backward(kind, stage, layer, d) -> tuple:
    """The compact backward of a normalization stage as layer-level equations, step by step.

    Five equations, each an ``LayerEquation``: the walk's sum over x̂, σ² and μ; ∂L/∂σ² and
    ∂L/∂μ as the walk derived them; the walk with those substituted; the compact form.
    """
    graph, adjoints, l = d.graph, d.adjoints, stage.number
    groups = _groups(layer, graph)
    if not groups:
        return ()
    inputs = layer.input_grid
    inside = set(layer.nodes)
    names = graph.adjoint_names
    first = groups[inputs[0][0]]
    size = len(first.members)
    # Batch norm's groups run down a column (the examples), layer norm's along a row (the units).
    over_examples = size == 1 or not any(first.members[0] in row and first.members[1] in row for row in inputs)

    def walk(a: sp.Symbol) -> sp.Expr:
        return sp.Add(*[t.upstream * t.local.shown for t in adjoints[a].terms if t.child in inside])

    def substituted(a: sp.Symbol) -> sp.Expr:
        g = groups[a]
        dvar = adjoints[g.var].substituted
        dmu = adjoints[g.mu].substituted.xreplace({names[g.var]: dvar})
        return walk(a).xreplace({names[g.var]: dvar, names[g.mu]: dmu})

    def compact(a: sp.Symbol) -> sp.Expr:
        g = groups[a]
        n = g.members.index(a)
        h = [names[x] for x in g.xhats]
        B = sp.Integer(len(g.members))
        inner = B * h[n] - sp.Add(*h) - g.xhats[n] * sp.Add(*[hm * xm for hm, xm in zip(h, g.xhats)])
        return sp.Mul(1 / (B * sp.sqrt(g.var + g.eps)), inner)

    stats = [(g.var, g.mu) for g in dict.fromkeys(groups.values())]
    var_grid = (tuple(v for v, _ in stats),)
    mu_grid = (tuple(m for _, m in stats),)
    gvar = d.vector(f"gVar{l}", 1, len(stats), Notation("{\\sigma^{2}}", "σ²", l, of="L"))
    gmu = d.vector(f"gMu{l}", 1, len(stats), Notation("\\mu", "μ", l, of="L"))
    generic = _generic(l, over_examples, d)

    def matrix(fn, grid):
        return sp.ImmutableMatrix([[fn(s) for s in row] for row in grid])

    where = "the batch" if over_examples else "the units of each example"
    return (
        LayerEquation("normalize-walk", l, generic["entry"], generic["walk"], matrix(walk, inputs),
                      "the chain rule: aₙ feeds x̂ₙ, σ² and μ, so ∂L/∂aₙ is a sum of three terms", inputs,
                      "the reverse walk's sum over the nodes that read aₙ"),
        LayerEquation("normalize-variance", l, gvar, generic["variance"], matrix(lambda v: adjoints[v].substituted, var_grid),
                      "∂L/∂σ², as the walk derived it", var_grid, "σ² is read by every x̂ of its group"),
        LayerEquation("normalize-mean", l, gmu, generic["mean"], matrix(lambda m: adjoints[m].substituted, mu_grid),
                      "∂L/∂μ, as the walk derived it; its σ² term vanishes, because Σₘ (aₘ − μ) = 0", mu_grid,
                      "μ is read by every x̂ of its group and by σ²"),
        LayerEquation("normalize-substituted", l, generic["entry"], generic["substituted"], matrix(substituted, inputs),
                      "the walk with ∂L/∂σ² and ∂L/∂μ substituted", inputs, ""),
        LayerEquation("normalize-compact", l, generic["entry"], generic["compact"], matrix(compact, inputs),
                      f"the compact backward, the sums over {where}", inputs,
                      "writing aₘ − μ = x̂ₘ √(σ² + ε) and collecting over the common factor 1/(B √(σ² + ε))"),
    )  # fmt: skip


def _generic(l: int, over_examples: bool, d) -> dict[str, sp.Expr]:
    """The steps with indices: n the entry, m running over its group of B entries (examples or units)."""
    n, m = sp.Symbol("n", integer=True, positive=True), sp.Symbol("m", integer=True, positive=True)
    count = sp.Symbol("B" if over_examples else "U", integer=True, positive=True)

    def scalar(name: str, base: str, text: str, of: str | None = None) -> sp.Symbol:
        symbol = sp.Symbol(f"{name}_generic{l}", real=True)
        d.notation[symbol] = Notation(base, text, l, of=of)
        return symbol

    def indexed(name: str, base: str, text: str, of: str | None = None, layer: int | None = l) -> sp.IndexedBase:
        label = sp.Symbol(f"{name}_generic{l}", real=True)
        d.notation[label] = Notation(base, text, layer, of=of)
        return sp.IndexedBase(label)

    h = indexed("gxhat", "\\hat{x}", "x̂", "L")
    xh = indexed("xhat", "\\hat{x}", "x̂")
    a = indexed("a", "a", "a", layer=l - 1) if l > 1 else indexed("x", "x", "x", layer=None)
    mu, var, eps = scalar("mu", "\\mu", "μ"), scalar("var", "{\\sigma^{2}}", "σ²"), scalar("eps", "\\epsilon", "ε")
    gmu, gvar = scalar("gmu", "\\mu", "μ", "L"), scalar("gvar", "{\\sigma^{2}}", "σ²", "L")
    # Built unevaluated and wrapped in UnevaluatedExpr, so that printers keep the order of the
    # textbooks (Ioffe and Szegedy, 2015): aₙ − μ, σ² + ε, the named adjoint before its factor.

    def mul(*args):
        return sp.Mul(*args, evaluate=False)

    def add(*args):
        return sp.Add(*args, evaluate=False)

    def over(x):
        return sp.Pow(x, -1, evaluate=False)

    def total(body):
        return sp.Sum(body, (m, 1, count))

    spread = add(var, eps)
    root = sp.sqrt(spread, evaluate=False)
    centered_n, centered_m = add(a[n], -mu), add(a[m], -mu)
    walk = add(mul(h[n], mul(1, over(root))), mul(gvar, mul(2, centered_n, over(count))), mul(gmu, mul(1, over(count))))
    variance = mul(sp.Rational(-1, 2), total(mul(h[m], centered_m)), over(sp.Pow(spread, sp.Rational(3, 2), evaluate=False)))
    mean = add(mul(-1, total(h[m]), over(root)), mul(gvar, mul(-2, total(centered_m), over(count))))
    substituted = add(
        mul(h[n], mul(1, over(root))),
        mul(-1, mul(centered_n, over(count), over(sp.Pow(spread, sp.Rational(3, 2), evaluate=False))), total(mul(h[m], centered_m))),
        mul(-1, mul(1, over(mul(count, root))), total(h[m])),
    )
    compact = mul(mul(1, over(mul(count, root))), add(mul(count, h[n]), mul(-1, total(h[m])), mul(-1, xh[n], total(mul(h[m], xh[m])))))
    walk, variance, mean, substituted, compact = map(sp.UnevaluatedExpr, (walk, variance, mean, substituted, compact))
    entry = indexed("ga", "a", "a", "L", l - 1)[n] if l > 1 else indexed("gx", "x", "x", "L", None)[n]
    return {"entry": entry, "walk": walk, "variance": variance, "mean": mean, "substituted": substituted, "compact": compact}


def in_inputs(expr: sp.Expr, layer, graph) -> sp.Expr:
    """``expr`` with the stage's μ, σ² and x̂ written in their definitions, down to the stage's inputs."""
    definitions = {s: graph.node(s).expr for s in layer.nodes if s not in layer.a}
    out = expr
    while out.free_symbols & definitions.keys():
        out = out.xreplace(definitions)
    return out


def equal_entries(a: LayerEquation, b: LayerEquation, graph) -> bool:
    """Whether two steps agree entry by entry once μ, σ² and x̂ are written in the stage's inputs.

    ``simplify(a − b) == 0`` where SymPy can show it; else exact evaluation at rational points
    (``sympy.nsimplify`` is not used: the points are chosen, not guessed).
    """
    if a.explicit.shape != b.explicit.shape:
        return False
    layer = graph.layers[a.layer - 1]
    for left, right in zip(a.explicit, b.explicit):
        difference = in_inputs(left, layer, graph) - in_inputs(right, layer, graph)
        if sp.simplify(difference) == 0:
            continue
        free = sorted(difference.free_symbols, key=str)
        for trial in range(3):
            point = {s: sp.Rational(((i * 7 + trial * 3) % 11) - 5, 3 + trial) for i, s in enumerate(free)}
            # ε and σ² enter under a square root: keep them positive.
            point.update({s: sp.Rational(1, 7 + trial) for s in free if s in graph.constants})
            value = difference.xreplace(point)
            if sp.simplify(value) != 0:
                return False
    return True
