"""The documents' gradient-flow section: δ⁽ˡ⁾ as a product of layer Jacobians, and the bounds on it.

``flow_section`` lays out what ``flow_theory`` derives and ``flow_bound`` computes, in the
generic rows of ``steps``: the product written out for this network, the bound it gives,
each activation's sup |f′| derived the way a teacher writes it (σ″ = 0 ⇔ σ = 1/2 ⇔ z = 0
⇒ σ′(0) = 1/4), the layer Jacobians of softmax and the normalizations, and the worked
example's own numbers. ``flow_document`` is the same for the JSON document. Norms print
through the small expression classes here (SymPy's ``_latex``/``_mathml_presentation``
protocol), so the templates need nothing new.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sympy as sp

from ..catalog import A, Z
from ..derive import Partial
from ..flow_bound import (
    FLOW_KINDS,
    FlowNumbers,
    ProductRow,
    example_bounds,
    jacobian_product,
    stage_bounds,
    worked_flow,
)
from ..flow_theory import (
    CriticalPoints,
    Differentiate,
    Eigenvector,
    Evaluate,
    Gershgorin,
    Jacobian,
    LayerBound,
    Limit,
    Piece,
    Supremum,
    softmax_bound,
)
from ..kinds import KINDS
from ..symbols import superscript
from .printing import ordered_terms, plain_printer
from .steps import EQ, MINUS, PLUS, Block, Number, Op, Row, Section, written_size
from .training import json_value

if TYPE_CHECKING:
    from ..derive import Derivation
    from ..flow_theory import DerivativeBound
    from ..numeric import WorkedExample

#: Networks with more rows than this show the whole product only for the lowest δ.
ALL_UNROLLED = 8


def _mo(printer, text: str, stretchy: bool = True):
    element = printer.dom.createElement("mo")
    if not stretchy:
        element.setAttribute("stretchy", "false")
    element.appendChild(printer.dom.createTextNode(text))
    return element


class Norm(sp.Expr):
    """‖x‖ (Euclidean), or ‖x‖₂ with ``p`` = 2 (spectral, for a matrix): printed, never evaluated."""

    def __new__(cls, arg: sp.Basic, p: int | sp.Symbol | None = None):
        return sp.Expr.__new__(cls, arg, *(() if p is None else (sp.sympify(p),)))

    def _latex(self, printer) -> str:
        inner = f"\\lVert {printer._print(self.args[0])} \\rVert"
        return inner + (f"_{{{printer._print(self.args[1])}}}" if len(self.args) > 1 else "")

    def _mathml_presentation(self, printer):
        row = printer.dom.createElement("mrow")
        for child in (_mo(printer, "‖", False), printer._print(self.args[0]), _mo(printer, "‖", False)):
            row.appendChild(child)
        if len(self.args) == 1:
            return row
        sub = printer.dom.createElement("msub")
        sub.appendChild(row)
        sub.appendChild(printer._print(self.args[1]))
        return sub

    def _sympystr(self, printer) -> str:
        return f"‖{printer._print(self.args[0])}‖" + (f"_{printer._print(self.args[1])}" if len(self.args) > 1 else "")


class Sup(sp.Expr):
    """sup over z of an expression, printed as books write it."""

    def _latex(self, printer) -> str:
        return f"\\sup_{{{printer._print(self.args[1])}}} {printer._print(self.args[0])}"

    def _mathml_presentation(self, printer):
        under = printer.dom.createElement("munder")
        under.appendChild(_mo(printer, "sup"))
        under.appendChild(printer._print(self.args[1]))
        row = printer.dom.createElement("mrow")
        row.appendChild(under)
        row.appendChild(printer._print(self.args[0]))
        return row

    def _sympystr(self, printer) -> str:
        return f"sup_{printer._print(self.args[1])} {printer._print(self.args[0])}"


class ProductOver(sp.Expr):
    """Π over k from ``low`` to ``high`` of a product of factors, printed as books write it (SymPy's MathML has no Π)."""

    def _latex(self, printer) -> str:
        body, k, low, high = (printer._print(a) for a in self.args)
        return f"\\prod_{{{k}={low}}}^{{{high}}} {body}"

    def _mathml_presentation(self, printer):
        body, k, low, high = self.args
        over = printer.dom.createElement("munderover")
        over.appendChild(_mo(printer, "∏"))
        start = printer.dom.createElement("mrow")
        for child in (printer._print(k), _mo(printer, "="), printer._print(low)):
            start.appendChild(child)
        over.appendChild(start)
        over.appendChild(printer._print(high))
        row = printer.dom.createElement("mrow")
        row.appendChild(over)
        row.appendChild(printer._print(body))
        return row

    def _sympystr(self, printer) -> str:
        body, k, low, high = (printer._print(a) for a in self.args)
        return f"prod_{k}={low}^{high} {body}"


class At(sp.Expr):
    """expr at z = z₀: a derivative evaluated at a point, written with a bar."""

    def _latex(self, printer) -> str:
        return f"\\left. {printer._print(self.args[0])} \\right|_{{{printer._print(self.args[1])} = {printer._print(self.args[2])}}}"

    def _mathml_presentation(self, printer):
        row = printer.dom.createElement("mrow")
        row.appendChild(printer._print(self.args[0]))
        row.appendChild(_mo(printer, "|"))
        at = printer.dom.createElement("mrow")
        for child in (printer._print(self.args[1]), _mo(printer, "="), printer._print(self.args[2])):
            at.appendChild(child)
        sub = printer.dom.createElement("msub")
        sub.appendChild(row)
        sub.appendChild(at)
        return sub

    def _sympystr(self, printer) -> str:
        return f"({printer._print(self.args[0])})|_{printer._print(self.args[1])}={printer._print(self.args[2])}"


class Ones(sp.MatrixSymbol):
    """𝟏, the column of ones of a batch or a layer."""

    def __new__(cls, size, *rest):
        # SymPy rebuilds an expression from its args, ("1", N, 1); a document builds it from N.
        return sp.MatrixSymbol.__new__(cls, "1", rest[0] if rest else size, 1)

    def _latex(self, printer) -> str:
        return "\\mathbf{1}"

    def _mathml_presentation(self, printer):
        element = printer.dom.createElement("mn")
        element.setAttribute("mathvariant", "bold")
        element.appendChild(printer.dom.createTextNode("1"))
        return element


#: How much of a product of matrices (``written_size``) goes on one line: eight or so of them.
PRODUCT_LINE = 30


def _product_lines(lhs: tuple, expr: sp.Expr, note: tuple) -> list[Row]:
    """``lhs = expr``, a long product of matrices a few factors a line."""
    chunks: list[list] = [[]]
    for factor in expr.args if isinstance(expr, sp.MatMul) else (expr,):
        if chunks[-1] and written_size(sp.MatMul(*chunks[-1], factor)) > PRODUCT_LINE:
            chunks.append([])
        chunks[-1].append(factor)
    pieces = [sp.MatMul(*c) if len(c) > 1 else c[0] for c in chunks]
    return [Row(lhs, (pieces[0],), note)] + [Row((), (p,), continued=True) for p in pieces[1:]]


#: How much of a formula (``written_size``) goes on one line of a step: σ(3z/2) takes room.
LINE = 24


def split_lines(expr: sp.Expr) -> list[tuple]:
    """A long sum as lines of a few terms, each line after the first opening with its sign.

    >>> a, b = sp.symbols("a b")
    >>> split_lines(a + b)
    [(a + b,)]
    """
    if not isinstance(expr, sp.Add) or written_size(expr) <= LINE:
        return [(expr,)]
    chunks: list[list] = [[]]
    for term in ordered_terms(expr):
        if chunks[-1] and written_size(sp.Add(*chunks[-1], term, evaluate=False)) > LINE:
            chunks.append([])
        chunks[-1].append(term)
    lines: list[tuple] = [(sp.Add(*chunks[0], evaluate=False),)]
    for chunk in chunks[1:]:
        first, sign = chunk[0], PLUS
        if first.could_extract_minus_sign():
            first, sign = -first, MINUS
        lines.append((sign, sp.Add(first, *chunk[1:], evaluate=False) if len(chunk) > 1 else first))
    return lines


def _chain(lhs: tuple, chain: Sequence[sp.Basic], note: tuple, tail: tuple = ()) -> list[Row]:
    """``lhs = a = b = …``, each a line (more where a long sum breaks, a few terms a line), ``tail`` after the last."""
    rows: list[Row] = []
    for i, expr in enumerate(chain):
        lines = split_lines(expr) if isinstance(expr, sp.Expr) else [(expr,)]
        if i:
            lines[0] = (EQ, *lines[0])
        if i == len(chain) - 1:
            lines[-1] += tail
        for line in lines:
            rows.append(Row(lhs, line, note, continued=not lhs) if not rows else Row((), line, continued=True))
    return rows


def _product_block(d: Derivation, rows: Sequence[ProductRow]) -> Block:
    loss = d.graph.loss
    shown = [r for r in rows if r.shown]
    lowest = next((r for r in reversed(shown) if r.quantity == "delta"), shown[-1])
    out: list[Row] = []
    stages = d.network.stages
    first = True  # the first BP2 says what D⁽ˡ⁾ is; the others only which layer
    for r in shown:
        stage = stages[r.stage - 1]
        if r.step == r.symbol:
            wrt = sp.MatrixSymbol(f"z^({r.stage})" if r.quantity == "delta" else f"a^({r.stage})", stage.units, 1)
            out.append(Row((r.symbol,), (Partial(loss, wrt),), ("where the backward pass starts, from the loss (BP1)",)))
            continue
        note = _step_note(stages, r, first)
        first = first and r.quantity != "delta"
        out += _product_lines((r.symbol,), r.written if r.written is not None else r.step, note)
        if r.factored is not None:
            out += _product_lines((), r.factored, ("the identity path and the path through the block F add up: the block's factor is (I + ∂F/∂a)ᵀ",))
        if r.unrolled not in (r.step, r.written, r.factored) and (len(shown) <= ALL_UNROLLED or r is lowest):
            out += _product_lines((), r.unrolled, ("the whole product, from the output down",))
    return Block("flow-product", ("The product of layer Jacobians for this network",), tuple(out), notes_above=True)


def _step_note(stages, r: ProductRow, first: bool) -> tuple:
    """What one step of the backward pass does: BP2 for a δ; for a g, what the stages that read it pass back."""
    up = superscript(r.stage)
    if r.quantity == "delta" and not first:
        return (f"BP2 at layer {r.stage}",)
    if r.quantity == "delta":
        return (f"BP2 at layer {r.stage}: D⁽{up}⁾ = diag f′(z⁽{up}⁾) holds the slopes of its activation on the diagonal",)
    if r.factored is not None:
        return ("the skip's gradient: the residual sum's, plus the path through the block",)
    words = [f"stage {c.number}: " + FLOW_KINDS[c.kind].words.format(up=superscript(c.number), down=superscript(c.number - 1))
             for c in stages if r.stage in (c.source, c.skip)]  # fmt: skip
    return ("; ".join(words) or "the gradient of the outputs",)


def _bound_block(d: Derivation) -> Block:
    l, k, big_l = sp.Symbol("l"), sp.Symbol("k"), sp.Symbol("L")

    def m(name: str) -> sp.MatrixSymbol:
        return sp.MatrixSymbol(name, 1, 1)

    def le(a: sp.Expr, *b: sp.Expr) -> sp.Expr:
        return sp.Le(a, b[0] if len(b) == 1 else sp.Mul(*b, evaluate=False), evaluate=False)

    A_, B_, s = m("A"), m("B"), sp.Symbol("s^(l)")
    rows = [
        Row((), (le(Norm(m("delta^(l)")), Norm(m("D^(l)"), 2), Norm(m("g^(l)"))),),
            ("a product stretches a vector by at most the norm of each factor, ", le(Norm(sp.MatMul(A_, B_)), Norm(A_, 2), Norm(B_)), ":"),
            continued=True),
        Row((), (le(Norm(m("D^(l)"), 2), s),),
            ("the norm of the diagonal D⁽ˡ⁾ is its largest entry, max |f′(z⁽ˡ⁾)|, at most s⁽ˡ⁾ = sup |f′| of layer l's activation (derived below):",),
            continued=True),
        Row((), (le(Norm(m("g^(l-1)")), Norm(m("W^(l)"), 2), Norm(m("delta^(l)"))),),
            ("through the weights, ", Norm(m("W"), 2), " being the largest singular value of W:"), continued=True),
        Row((), (le(Norm(m("delta^(l)")), ProductOver(sp.Mul(sp.Symbol("s^(k)"), Norm(m("W^(k+1)"), 2), evaluate=False), k, l, big_l - 1), Norm(m("delta^(L)"))),),
            ("so down a chain of dense layers; a factor below 1 shrinks δ (it vanishes), one above 1 stretches it (it explodes):",),
            continued=True),
    ]  # fmt: skip
    J, g = m("J"), m("g")
    for name in dict.fromkeys(stage.kind for stage in d.network.stages):
        kind = FLOW_KINDS[name]
        if kind.factor == "sum":
            rows.append(Row((), (le(Norm(sp.MatMul(sp.Transpose(sp.Identity(1) + J), g)), 1 + Norm(J, 2), Norm(g)),),
                            ("a residual block, J = ∂F/∂a, by the triangle inequality: its factor is 1 for the identity path plus F's own:",),
                            continued=True))  # fmt: skip
        elif kind.bound is not None:
            rows.append(Row((), (le(Norm(m(kind.letter), 2), kind.bound),), (kind.bound_words + ":",), continued=True))
    return Block("flow-bound", ("The bound it gives",), tuple(rows), notes_above=True)


def _derivative_rows(bound: DerivativeBound) -> list[Row]:
    """A bound's steps as a teacher writes them on the board."""
    rows: list[Row] = []
    f = bound.written
    fprime = sp.Derivative(f, Z)

    def step(s, piece: bool) -> None:
        if isinstance(s, Differentiate):
            lhs = sp.Derivative(s.function, (Z, s.order)) if s.order > 1 else sp.Derivative(s.function, Z)
            chain = [s.result] + ([s.in_output] if s.in_output is not None else [])
            note = "differentiating the formula (sympy.diff)" if s.order == 1 else "differentiating again"
            if s.in_output is not None:
                note += ", then writing it in the output a = f(z)" if s.order == 1 else "; in a, the chain rule gives (df′/da)·(da/dz) = (df′/da)·f′"
            rows.extend(_chain((lhs,), chain, (note,)))
        elif isinstance(s, CriticalPoints):
            if not s.roots and not s.points:
                rows.append(Row((), (sp.Ne(s.equation, 0, evaluate=False),), ("it never vanishes: f′ has no extremum in between",), continued=True))
                return
            rows.extend(_chain((), [s.equation, sp.Integer(0)], ("f′ is largest or smallest where its derivative vanishes",)))
            if s.variable == A:
                note = "the roots a = f(z) reaches"
                if s.excluded:
                    note += "; f(z) is never " + " or ".join(sp.sstr(e) for e in s.excluded)
                rows.append(Row((A,), _listed(s.roots), (note,)))
                rows.append(Row((Z,), _listed(s.points), ("solving a = f(z) for z",)))
            else:
                rows.append(Row((Z,), _listed(s.points), ("by nsolve: no closed form" if s.numeric else "solved by SymPy",)))
        elif isinstance(s, Evaluate):
            chain = ([s.written] if s.written is not None else []) + [s.value]
            rows.extend(_chain((At(fprime, Z, s.point),), chain, ("where the piece ends" if piece else "the derivative there",)))
        elif isinstance(s, Limit):
            rows.extend(_chain((sp.Limit(fprime if not piece else s.expr, Z, s.direction),), [s.value], ("far from the origin",)))
        elif isinstance(s, Piece):
            rows.extend(_chain((sp.Derivative(f, Z),), [s.expr], ("on the piece ", sp.Contains(Z, s.interval, evaluate=False))))
            for sub in s.substeps:
                step(sub, True)
        elif isinstance(s, Supremum):
            at, attained = bound.at, bound.attained
            where = (f"attained at z = {sp.sstr(at)}" if not isinstance(at, sp.Set) else "attained on all of ") if attained else f"approached as z → {sp.sstr(at).replace('oo', '∞')}"
            note: tuple = ("the largest |f′| among these, " + where,) + ((at,) if attained and isinstance(at, sp.Set) else ())
            numeric = not bound.sup.is_Rational and math.isfinite(bound.sup_value)
            rows.append(Row((Sup(sp.Abs(fprime), Z),), (bound.sup,) + ((EQ, Number(bound.sup_value)) if numeric else ()), note))
            rows.append(Row((), (sp.Contains(fprime, bound.values, evaluate=False),), ("so f′ takes its values in",), continued=True))

    for s in bound.steps:
        step(s, False)
    return [Row(tuple(map(_shown, r.lhs)), tuple(map(_shown, r.rhs)), tuple(map(_shown, r.note)), continued=r.continued) for r in rows]


def _listed(values: Sequence[sp.Expr]) -> tuple:
    """Values separated by commas, as the pieces of a row."""
    out: list = []
    for v in values:
        out += [Op(","), v] if out else [v]
    return tuple(out)


def _shown(expr: sp.Basic) -> sp.Basic:
    """A formula with its floats to six digits, for reading (the JSON document has them in full)."""
    floats = expr.atoms(sp.Float) if isinstance(expr, sp.Basic) else ()
    return expr.xreplace({f: sp.Float(f, 6) for f in floats}) if floats else expr


def _layer_rows(bound: LayerBound) -> list[Row]:
    rows: list[Row] = []
    J = sp.Symbol("J")
    put = {**dict(bound.written_for), **{s.symbol: Ones(s.symbol.shape[0]) for s in bound.steps if isinstance(s, Eigenvector) and s.symbol.name == "1"}}
    for s in bound.steps:
        if isinstance(s, Jacobian) and not rows:
            if bound.written is not None:
                rows.append(Row((bound.written[0],), (bound.written[1],),
                                ("the Jacobian by sympy.diff, for 3 entries, equals this entry by entry (checked); x̂ is the normalized input and P the bracket",)))  # fmt: skip
            else:
                rows.append(Row((J,), (s.textbook,), ("the Jacobian by sympy.diff, for a small layer, equal to this (checked)",)))
        elif isinstance(s, Jacobian):
            rows.append(Row((J,), (s.matrix,), ("where the bound is attained: " + bound.at,)))
        elif isinstance(s, Gershgorin):
            rows.append(Row((sp.Symbol("R_1"),), (s.radius,), ("Gershgorin: every eigenvalue lies within R₁ = Σⱼ |J₁ⱼ| of some J₁₁ = a₁(1 − a₁) (or of another row's)",)))
            rows.append(Row((), (sp.Le(sp.Symbol("lambda"), s.largest, evaluate=False),), ("with Σ a = 1, J₁₁ + R₁ is",), continued=True))
        elif isinstance(s, Differentiate):
            rows.append(Row((sp.Derivative(s.function, sp.Symbol("a1", positive=True)),), (s.result,), ("its largest value, where its derivative vanishes",)))
        elif isinstance(s, CriticalPoints):
            rows.append(Row((s.variable,), _listed(s.points), ()))
        elif isinstance(s, Evaluate):
            rows.append(Row((), (sp.Le(sp.Symbol("lambda"), s.value, evaluate=False),), ("so every eigenvalue of the symmetric J is at most this, and ", Norm(sp.MatrixSymbol("J", 1, 1), 2), " with it:"), continued=True))
        elif isinstance(s, Eigenvector):
            P, v = sp.MatrixSymbol("P", *s.symbol.shape[:1] * 2), s.symbol.xreplace(put)
            value = s.value.xreplace(put)
            note: tuple = ("along ", v, ": an eigenvector of the bracket P with eigenvalue ", value)
            if s.symbol.name == "u":
                ones = next(x.symbol.xreplace(put) for x in bound.steps if isinstance(x, Eigenvector))
                note = ("along u, at right angles to ", ones, " and x̂ (their cross product): eigenvalue 1; so ", Norm(J, 2), " = ",
                        bound.norm.xreplace(put), " (with only 2 entries there is no such u, and the norm is smaller still)")
            rows.append(Row((sp.MatMul(P, v),), (sp.MatMul(value, v) if value not in (0, 1) else (v if value == 1 else sp.Integer(0)),), note))
    return rows


def flow_section(derivation: Derivation, example: WorkedExample | None) -> Section:
    """The gradient-flow section of ``derivation``'s documents, with ``example``'s numbers if given.

    >>> from chainrule import derive, default_network, worked_example
    >>> d = derive(default_network())
    >>> [b.key for b in flow_section(d, worked_example(d)).blocks]
    ['flow-product', 'flow-bound', 'flow-activation-sigmoid', 'flow-factors', 'flow-numbers']
    """
    network = derivation.network
    rows = jacobian_product(network)
    bounds = stage_bounds(network) if example is None else example_bounds(derivation, example)
    blocks = [_product_block(derivation, rows), _bound_block(derivation)]
    for stage, bound in _distinct(network, bounds):
        title = (f"How large f′ gets: {stage.choice.label}",)
        if bound is None:
            blocks.append(Block(f"flow-activation-{stage.choice.name}", title, (Row((), ("SymPy finds no bound for this formula; its factor is taken as unbounded",), continued=True),)))
            continue
        blocks.append(Block(f"flow-activation-{stage.choice.name}", title, tuple(_derivative_rows(bound)), notes_above=True))
    if any(s.choice is not None and not s.choice.entry.elementwise for s in network.stages):
        blocks.append(Block("flow-softmax", ("Softmax: its Jacobian diag(a) − a aᵀ",), tuple(_layer_rows(softmax_bound())), notes_above=True))
    for name in dict.fromkeys(s.kind for s in network.stages):
        if FLOW_KINDS[name].jacobian is not None:
            bound = FLOW_KINDS[name].jacobian()
            title = (f"{KINDS[name].words.capitalize()}: its Jacobian, derived for 3 entries",)
            blocks.append(Block(f"flow-{name}", title, tuple(_layer_rows(bound)), notes_above=True))
    closing: tuple = ()
    if example is not None:
        numbers = worked_flow(derivation, example, bounds)
        blocks += _number_blocks(derivation, numbers, bounds)
        closing = (("The bound holds: " if numbers.holds else "The bound fails: ")
                   + "every measured norm is at most the bound with this example's slopes, and that at most the bound with sup |f′|"
                   + (" (the norms of the batch's matrices, since batch norm couples the examples)." if numbers.coupled else ", for every example."),)  # fmt: skip
    intro = (
        (
            "Unrolling BP2 from the output down writes every δ⁽ˡ⁾ as a product of the layers' Jacobians, "
            "with g⁽ˡ⁾ = ∂L/∂a⁽ˡ⁾ the gradient of a stage's outputs. How large each factor can be bounds how much δ "
            "can shrink or grow on its way down: SymPy derives the largest slope of each activation below."
        ),
    )
    return Section("flow", "Gradient flow: why gradients vanish or explode", intro, tuple(blocks), closing)


def _distinct(network, bounds) -> list:
    """Each activation's stage and bound once, in the order the network uses them."""
    seen: dict[str, Any] = {}
    for stage in network.stages:
        if stage.number in bounds and stage.choice.label not in seen:
            seen[stage.choice.label] = (stage, bounds[stage.number])
    return list(seen.values())


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _number_blocks(d: Derivation, numbers: FlowNumbers, bounds) -> list[Block]:
    """The worked example's factors, then every norm with its two bounds."""
    stages = d.network.stages
    batch = "; the mean over the batch's examples" if numbers.examples > 1 and not numbers.coupled else ""
    factors: list[Row] = []
    for f in reversed(numbers.factors):
        l, stage = f.stage, stages[f.stage - 1]
        if f.weight_norm is not None:
            factors.append(Row((Norm(sp.MatrixSymbol(f"W^({l})", 1, 1), 2),), (Number(f.weight_norm),), (f"the largest singular value of W⁽{superscript(l)}⁾",)))
        if f.slope_here is not None and stage is not stages[-1]:
            sup = bounds.get(l)
            note: tuple = (f"max |f′| at this example's {'z' if f.weight_norm is not None else 'inputs'}{batch}, at most sup |f′| = ",)
            note += (sup.sup,) if sup is not None else ("∞",)
            factors.append(Row((Norm(sp.MatrixSymbol(f"D^({l})", 1, 1), 2),), (Number(_mean(f.slope_here)),), note))
        if f.scale_here is not None:
            kind = FLOW_KINDS[stage.kind]
            note = (kind.here_words + batch,)
            if isinstance(f.scale_sup, float):
                note += (", at most ", Number(f.scale_sup))
            factors.append(Row((Norm(sp.MatrixSymbol(f"{kind.letter}^({l})", 1, 1), 2),), (Number(_mean(f.scale_here)),), note))
    p = sp.Symbol("F") if numbers.coupled else None
    rows: list[Row] = []
    start = numbers.stages[0]
    for r in numbers.stages:
        base = ("Delta" if r.quantity == "delta" else "G") if numbers.coupled else ("delta" if r.quantity == "delta" else "g")
        lhs = (Norm(sp.MatrixSymbol(f"{base}^({r.stage})", 1, 1), p),) if p is not None else (Norm(sp.MatrixSymbol(f"{base}^({r.stage})", 1, 1)),)
        if r is start:
            note: tuple = ("measured, where the bounds start" + batch,)
        elif any(b == float("inf") for b in r.bound):
            note = ("at most ", Number(_mean(r.sharper)), " with the slopes here; no finite bound with sup |f′|",)
        else:
            note = ("at most ", Number(_mean(r.sharper)), " with the slopes here, and ", Number(_mean(r.bound)), " with sup |f′|" + batch)
        rows.append(Row(lhs, (Number(_mean(r.measured)),), note))
    what = "the batch's matrices N·Δ⁽ˡ⁾ and N·G⁽ˡ⁾ in the Frobenius norm, since batch norm couples the examples" if numbers.coupled else "per example"
    return [
        Block("flow-factors", ("The factors at the worked example",), tuple(factors)),
        Block("flow-numbers", (f"The bounds at the worked example, {what}",), tuple(rows)),
    ]


def flow_document(derivation: Derivation, example: WorkedExample | None) -> dict[str, Any]:
    """The gradient-flow section as data for the JSON document: the bounds, the product, the numbers.

    >>> from chainrule import derive, default_network, worked_example
    >>> d = derive(default_network())
    >>> flow = flow_document(d, worked_example(d))
    >>> flow["activations"]["sigmoid"]["sup"], flow["activations"]["sigmoid"]["at"], flow["numbers"]["holds"]
    (0.25, '0', True)
    """
    network = derivation.network
    text = plain_printer()
    bounds = stage_bounds(network) if example is None else example_bounds(derivation, example)
    activations: dict[str, Any] = {}
    for stage, bound in _distinct(network, bounds):
        if bound is None:
            activations[stage.choice.label] = None
            continue
        points = [str(p) for s in bound.steps for p in getattr(s, "points", ())]
        limits = {str(s.direction): text(s.value) for s in bound.steps if isinstance(s, Limit)}
        activations[stage.choice.label] = {
            "derivative": text(bound.derivative), "sup": json_value(bound.sup_value), "sup_exact": text(bound.sup),
            "at": text(bound.at), "attained": bound.attained, "values": text(bound.values),
            "critical_points": points, "limits": limits,
        }  # fmt: skip
    layers: dict[str, Any] = {}
    if any(s.choice is not None and not s.choice.entry.elementwise for s in network.stages):
        top = softmax_bound()
        layers["softmax"] = {"norm": float(top.norm), "norm_exact": text(top.norm), "at": top.at}
    for name in dict.fromkeys(s.kind for s in network.stages):
        kind = FLOW_KINDS[name]
        if kind.bound is not None:  # derived in the documents' section (``FlowKind.jacobian``); here the result
            layers[name] = {"norm": text(kind.bound), "letter": kind.letter, "couples_examples": kind.couples}
    product = [
        {"stage": r.stage, "quantity": r.quantity, "symbol": text(r.symbol), "step": text(r.written if r.written is not None else r.step),
         "unrolled": text(r.unrolled), "factored": None if r.factored is None else text(r.factored), "shown": r.shown}
        for r in jacobian_product(network)
    ]  # fmt: skip
    numbers = None
    if example is not None:
        flow = worked_flow(derivation, example, bounds)
        numbers = {
            "coupled": flow.coupled,
            "norm": "frobenius over the batch" if flow.coupled else "euclidean per example",
            "examples": flow.examples,
            "holds": flow.holds,
            "factors": [{"stage": f.stage, "kind": f.kind, "slope_sup": json_value(f.slope_sup), "slope_here": json_value(f.slope_here),
                         "weight_norm": json_value(f.weight_norm), "scale_sup": json_value(f.scale_sup), "scale_here": json_value(f.scale_here)}
                        for f in flow.factors],
            "stages": [{"stage": r.stage, "quantity": r.quantity, "measured": json_value(r.measured), "bound": json_value(r.bound),
                        "sharper": json_value(r.sharper)} for r in flow.stages],
        }  # fmt: skip
    return {"activations": activations, "layers": layers, "product": product, "numbers": numbers}
