"""What each document shows, in order: sections of blocks of equation rows.

This is the one place that decides how a derivation reads (which rows, which notes);
the HTML, LaTeX and Markdown templates all walk the same sections and only format
them. A row is a run of pieces: SymPy expressions, ``Partial`` symbols, operators,
numbers, and plain text in notes. Nothing here computes math: every expression comes
from the Derivation or the LayerRules, every number from the WorkedExample or the Proof.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sympy as sp

from ..derive import Adjoint, Derivation, Partial
from .printing import ordered_terms
from .rule_view import lines, step_view
from .summary import (
    LONGEST_LIST,
    SUMMARY_NOTE,
    SUMMARY_ROWS,
    More,
    first_rows,
    is_summary,
    representatives,
)

if TYPE_CHECKING:
    from ..layers import LayerRules, VectorRule
    from ..numeric import WorkedExample
    from ..proof import Proof


#: Closed forms that take more symbols than this when written out are not typeset: their
#: size doubles with each layer (one term per path to the loss), and they stop teaching.
LONGEST_CLOSED_FORM = 400
#: Definitions longer than this are not repeated in a note beside a formula.
LONGEST_NOTE = 60


def written_size(expr: sp.Basic, limit: int | None = None) -> int:
    """How many symbols and operations ``expr`` takes written out, shared parts counted each time.

    With ``limit``, counting stops past it (the result is then ``limit + 1``): a closed form
    through residual paths shares its parts many times over, and counting all of it for a
    yes-or-no took a minute for a 64-32-32-10 network.

    >>> a, b = sp.symbols("a b")
    >>> written_size((a + b) * (a - b))  # a - b is a + (-1)*b
    9
    >>> written_size((a + b) * (a - b), limit=4)
    5
    """
    memo: dict[sp.Basic, int] = {}
    cap = None if limit is None else limit + 1

    def size(e: sp.Basic) -> int:
        if e not in memo:
            total = 1
            for arg in e.args:
                total += size(arg)
                if cap is not None and total >= cap:
                    total = cap
                    break
            memo[e] = total
        return memo[e]

    return size(expr)


def closed_form_shown(expr: sp.Basic) -> bool:
    return written_size(expr, LONGEST_CLOSED_FORM) <= LONGEST_CLOSED_FORM


@dataclass(frozen=True)
class Op:
    """An operator between pieces of math: "=", "·", "+", ","."""

    text: str


EQ, TIMES, PLUS = Op("="), Op("·"), Op("+")


@dataclass(frozen=True)
class Call:
    """``name(args)``: a function of the generated NumPy code (``k_df1``), its name in the code font."""

    name: str
    args: tuple


@dataclass(frozen=True)
class Number:
    """A number from the worked example, printed to ten significant digits."""

    value: float


@dataclass(frozen=True)
class Row:
    """``lhs = rhs``, with a note saying which rule or fact gives this step."""

    lhs: tuple
    rhs: tuple
    note: tuple = ()
    #: The rule-by-rule derivation of this row, where it is shown (its first use).
    steps: tuple = ()
    #: The lines of generated NumPy code that compute this row, for a batch-level rule.
    code: tuple[str, ...] = ()
    #: The row goes on with the right side of the row above (a long sum, a few terms a line): no "=".
    continued: bool = False


@dataclass(frozen=True)
class Block:
    """One quantity's derivation: its rows, then the local facts it used ("where ...")."""

    key: str
    title: tuple
    rows: tuple[Row, ...]
    where: tuple[Row, ...] = ()
    #: A parameter whose chain the network picture lights, if any.
    lit: sp.Symbol | None = None
    #: In a summary, what the block leaves out ("… and 24 more units of layer 1").
    omitted: tuple = ()
    #: Each note above its row, the formulas taking the whole width (a derivation in steps).
    notes_above: bool = False


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    intro: tuple
    blocks: tuple[Block, ...]
    #: A paragraph after the blocks (what was checked, and how).
    closing: tuple = ()
    #: In a summary, the blocks left out: how many, how they follow, where their values are.
    omitted: tuple = ()


def _join(items: Sequence[Any], op: Op) -> tuple:
    out: list[Any] = []
    for item in items:
        if out:
            out.append(op)
        out.extend(item if isinstance(item, tuple) else (item,))
    return tuple(out)


def _upstream(d: Derivation, child: sp.Symbol) -> tuple:
    """∂L/∂child as written in a chain-rule term: its δ, or the partial itself; nothing for L."""
    if child == d.graph.loss:
        return ()
    name = d.graph.adjoint_names.get(child)
    return (name,) if name is not None else (Partial(d.graph.loss, child),)


def _kind(d: Derivation, of: sp.Symbol, wrt: sp.Symbol) -> tuple:
    """Edges whose local derivatives take the same steps: ∂z/∂w of any unit, ∂a/∂z of one activation."""
    names = [d.notation[s].text if s in d.notation else str(s) for s in (of, wrt)]
    layer = d.notation[of].layer if of in d.notation else None
    activation = d.graph.layers[layer - 1].activation if names[0] == "a" and layer else None
    return (*names, activation)


def _local_row(d: Derivation, of: sp.Symbol, wrt: sp.Symbol, explained: dict | None = None) -> Row:
    """∂of/∂wrt of one edge; its rule-by-rule steps the first time an edge of its kind appears.

    ``explained`` maps each kind already shown to the partial it was shown for, so that
    later rows refer back to it instead of repeating the same steps.
    """
    local = d.local(of, wrt)
    rhs: tuple = ()
    if local.written is not None:
        rhs += (local.written, EQ)
    if local.shown != local.derivative and local.written is None:
        rhs += (local.derivative, EQ)
    rhs += (local.shown,)
    display = d.graph.node(of).display
    identity = _identity_path(d, of, wrt)
    # A definition too long for a note (a loss with a penalty on every weight) is named, not repeated.
    longest = SUMMARY_NOTE if is_summary(d) else LONGEST_NOTE
    note: tuple = ("from ", (of, EQ, display)) if written_size(display) <= longest else ("from the definition of ", of)
    if identity:
        note += ("; the identity path: the gradient passes unchanged",)
    steps: tuple = ()
    if explained is not None and not identity:
        kind = _kind(d, of, wrt)
        if kind[0] == "a" and d.notation.get(wrt) is not None and d.notation[wrt].text == "z":
            note += ("; f′ is derived under Activation derivatives",)
        elif kind in explained:
            note += ("; the same steps as for ", explained[kind])
        else:
            explained[kind] = Partial(of, wrt)
            steps = tuple(lines(step_view(d.local_steps(of, wrt))))
    return Row((Partial(of, wrt),), rhs, note, steps)


def _identity_path(d: Derivation, of: sp.Symbol, wrt: sp.Symbol) -> bool:
    """Whether ∂of/∂wrt is a skip connection's 1: ``of`` a unit of a stage with a skip, ``wrt`` the skip's unit."""
    for layer in d.graph.layers:
        if layer.skip is not None and of in layer.a:
            skipped = d.graph.inputs if layer.skip == 0 else d.graph.layers[layer.skip - 1].a
            return wrt in skipped
    return False


def _title(d: Derivation, adj: Adjoint) -> tuple:
    """Say in words whose derivative a block derives: "The error of unit 1 of layer 2"."""
    n = d.notation.get(adj.node)
    if n is None:
        return (Partial(d.graph.loss, adj.node),)
    if not n.indices:
        return (f"The parameter {n.text} of layer {n.layer}: " if n.layer else "", Partial(d.graph.loss, adj.node))
    where = {
        "z": f"The error of unit {n.indices[0]} of layer {n.layer}: ",
        "a": f"The output of unit {n.indices[0]} of layer {n.layer}: ",
        "w": f"The weight into unit {n.indices[0]} of layer {n.layer} from {'input' if n.layer == 1 else 'unit'} {n.indices[-1]}: ",
        "b": f"The bias of unit {n.indices[0]} of layer {n.layer}: ",
        "x": f"Input {n.indices[0]}: ",
    }.get(n.text, "")
    written = (adj.name, EQ, Partial(d.graph.loss, adj.node)) if adj.name is not None else (Partial(d.graph.loss, adj.node),)
    return (where, written)


def adjoint_block(
    d: Derivation,
    ex: WorkedExample | None,
    adj: Adjoint,
    key: str,
    lit: sp.Symbol | None = None,
    explained: dict | None = None,
) -> Block:
    """∂L/∂node: the chain, one step of the chain rule with reused δs, substitution, closed form, value."""
    graph = d.graph
    lhs: tuple = (adj.name, EQ, Partial(graph.loss, adj.node)) if adj.name is not None else (Partial(graph.loss, adj.node),)
    rows: list[Row] = []
    if len(adj.terms) == 1 and adj.terms[0].child == graph.loss:
        # A direct input of the loss: its adjoint is one local derivative.
        row = _local_row(d, graph.loss, adj.node, explained)
        rows.append(Row(lhs, row.rhs, ("differentiating ",) + row.note[1:], row.steps))
        if ex is not None:
            rows.append(Row((), (Number(ex.adjoints[adj.node]),), ("at the example's values",)))
        return Block(key, _title(d, adj), tuple(rows), (), lit)
    if len(adj.chain) > 1:
        rows.append(Row(lhs, _join(adj.chain, TIMES), ("chain rule along the path to the loss",)))
    terms = [(*_upstream(d, t.child), Partial(t.child, adj.node)) for t in adj.terms]
    reused = [t.upstream for t in adj.terms if t.upstream in graph.adjoint_names.values()]
    if len(adj.terms) > 1 or reused:
        note: tuple = ("multivariable chain rule: a sum over the quantities that use ", adj.node) if len(adj.terms) > 1 else ()
        if reused:
            reused = list(dict.fromkeys(reused))
            listed: tuple = (_join(tuple(reused), Op(",")),)
            if is_summary(d) and len(reused) > LONGEST_LIST:
                # The first and the last, each a formula of its own, so that the note can break between them.
                listed = (reused[0], ", …, ", reused[-1])
            note += (("; " if note else "") + "reusing ", *listed, " from the backward pass")
        rows.append(Row(() if rows else lhs, _join([_join(t, TIMES) for t in terms], PLUS), note))
    note = ("local derivatives substituted",)
    if adj.closed != adj.substituted and not closed_form_shown(adj.closed):
        note += (f"; written out in forward-pass quantities it would take {written_size(adj.closed)} symbols",)
    rows.append(Row(() if rows else lhs, (adj.substituted,), ("".join(note),)))
    if adj.steps:
        rows.extend(rewrite_rows(adj.steps))
    elif adj.closed != adj.substituted and closed_form_shown(adj.closed):
        rows.append(Row((), (adj.closed,), ("in forward-pass quantities only",)))
    if ex is not None:
        rows.append(Row((), (Number(ex.adjoints[adj.node]),), ("at the example's values",)))
    where = [_local_row(d, t.child, adj.node, explained) for t in adj.terms]
    for t in adj.terms:
        if t.child != graph.loss and t.child not in graph.adjoint_names:
            where.append(Row((Partial(graph.loss, t.child),), (t.upstream,), ("found above",)))
    return Block(key, _title(d, adj), tuple(rows), tuple(where), lit)


def _stage_rows(d: Derivation, ex: WorkedExample | None, layer, summary: bool) -> tuple[tuple, tuple]:
    """The forward rows of one stage (its leaves, then its nodes in order) and what a summary leaves out."""
    rows = []
    for grid in layer.leaves.values():
        for symbol in (s for row in grid for s in row):
            rows.append(Row((symbol,), (Number(ex.values[symbol]),) if ex is not None else (), ("drawn from the seed",)))
    # A dense stage reads unit by unit (z then a); others in the order their nodes are computed.
    units = tuple(zip(layer.z, layer.a)) if layer.z else tuple((s,) for s in layer.nodes)
    if summary:
        units = first_rows(units, f"units of layer {layer.number}")
    omitted = tuple(u.text for u in units if isinstance(u, More))
    for unit in units:
        if isinstance(unit, More):
            continue
        for symbol in unit:
            node = d.graph.node(symbol)
            rhs: tuple = (node.display,)
            if node.display != node.expr:
                rhs += (EQ, node.expr)
            if ex is not None:
                rhs += (EQ, Number(ex.values[symbol]))
            rows.append(Row((symbol,), rhs))
    return tuple(rows), omitted


def forward_section(d: Derivation, ex: WorkedExample | None, summary: bool | None = None) -> Section:
    summary = is_summary(d) if summary is None else summary
    blocks = []
    for layer in d.graph.layers:
        rows, omitted = _stage_rows(d, ex, layer, summary)
        blocks.append(Block(f"forward-{layer.number}", (f"Layer {layer.number}: {layer.title}",), rows, omitted=omitted))
    loss = d.graph.node(d.graph.loss)
    in_layers = {s for layer in d.graph.layers for s in (*layer.z, *layer.a, *layer.nodes)}
    # Nodes beside the layers and the loss (the penalty R) are defined just before L.
    extra = [
        Row((n.symbol,), (n.display,) + ((EQ, Number(ex.values[n.symbol])) if ex is not None else ()))
        for n in d.graph.nodes
        if n.symbol not in in_layers and n.symbol != d.graph.loss
    ]
    rhs = (loss.display,) + ((EQ, Number(ex.loss)) if ex is not None else ())
    title = "Loss: " + d.network.loss_choice.label
    if d.network.regularizer_choice is not None:
        title += " + " + d.network.regularizer_choice.label
    blocks.append(Block("forward-loss", (title,), (*extra, Row((d.graph.loss,), rhs))))
    if d.graph.constants:
        rows = [Row((symbol,), (Number(value),)) for symbol, value in d.graph.constants.items()]
        blocks.insert(0, Block("constants", ("Constants of the spec",), tuple(rows)))
    intro: tuple = ("Each unit adds up its weighted inputs and its bias, then applies its activation.",)
    if any(not layer.weights for layer in d.graph.layers):
        intro = (intro[0] + " Every other layer is defined entry by entry, in the order it is computed.",)
    if d.graph.batch > 1:
        intro = (intro[0] + f" The example is a batch of {d.graph.batch}: the first index of every quantity is the example, the second the unit.",)
    return Section("forward", "Forward pass", intro, tuple(blocks))


def rewrite_rows(steps: Sequence) -> list[Row]:
    """Lines of algebra (``rules.Rewrite``) as rows: a line with a left side of its own starts a
    row, the others go on from the row above ("= …"); each says what it does, and why."""
    return [
        Row(() if s.lhs is None else (_as_partial(s.lhs),), (s.expr,), (s.title, ": ", *s.why) if s.why else (s.title,))
        for s in steps
    ]


def _as_partial(expr: sp.Expr) -> Any:
    # ∂aⱼ/∂zₖ of a symbol is written as the partial it names, like the chain's partials.
    if isinstance(expr, sp.Derivative) and len(expr.variables) == 1 and isinstance(expr.expr, (sp.Symbol, sp.Indexed)):
        return Partial(expr.expr, expr.variables[0])
    return expr


def activation_section(d: Derivation) -> Section:
    blocks = []
    for act in d.activations:
        named = act.written != act.formula
        rows = [Row((act.output,), ((act.written, EQ) if named else ()) + (act.formula,), (act.title,))]
        if act.steps:  # derived line by line (the softmax Jacobian), no rule tree
            rows.extend(rewrite_rows(act.steps))
            blocks.append(Block(f"activation-{act.name}", (act.name,), tuple(rows), notes_above=True))
            continue
        rhs: tuple = ((sp.Derivative(act.written, act.input, evaluate=False), EQ) if named else ()) + (act.derivative,)
        if act.textbook != act.derivative:
            rhs += (EQ, act.textbook)
        note: tuple = ("differentiating the formula",)
        if act.textbook_in_output != act.textbook:
            rhs += (EQ, act.textbook_in_output)
            note = ("differentiating the formula, then writing it with the unit's own output ", act.output)
        rule = d.activation_steps(act)
        steps = tuple(lines(step_view(rule))) if rule is not None else ()
        rows.append(Row((Partial(act.output, act.input),), rhs, note, steps))
        blocks.append(Block(f"activation-{act.name}", (act.name,), tuple(rows)))
    intro = ("Every unit's local derivative ∂a/∂z comes from its activation's derivative, derived once here.",)
    return Section("activations", "Activation derivatives", intro, tuple(blocks))


def _in_vector_form(d: Derivation, labels: tuple[str, ...]) -> tuple:
    """The layer equations of ``labels`` as a list of formulas: "δ⁽²⁾ = … (BP1), δ⁽¹⁾ = … (BP2)"."""
    out: list = []
    for eq in d.equations:
        if eq.label in labels:
            out += [", "] if out else []
            out += [(eq.lhs, EQ, eq.rhs), f" ({eq.label})"]
    return tuple(out)


def _omitted(lead: str, how: tuple, equations: tuple = ()) -> tuple:
    """The sentence that ends a summary's section: what it leaves out, how those follow, where they are."""
    sentence: tuple = (f"{lead} not shown: ", *how)
    if equations:
        sentence += (". In vector form, all at once: ", *equations)
        return (*sentence, ". Every value is in the JSON document, and the layer-level rules below compute them all.")
    return (*sentence, ". Every value is in the JSON document.")


def _named_groups(d: Derivation, layer) -> list[tuple[sp.Symbol, ...]]:
    """The stage's nodes with a named adjoint (δ, ∂L/∂x̂, ∂L/∂σ², ∂L/∂μ), grouped by how they are written.

    Groups come in the order the walk reaches them (∂L/∂x̂ before ∂L/∂σ² before ∂L/∂μ), the
    nodes of a group in forward order.
    """
    names = d.graph.adjoint_names
    nodes = layer.z if layer.z else tuple(s for s in layer.nodes if s in names)
    order = {s: i for i, s in enumerate(d.adjoints)}
    groups: dict[str, list[sp.Symbol]] = {}
    for node in nodes:
        written = d.notation.get(node)
        groups.setdefault(written.text if written is not None else "", []).append(node)
    return [tuple(g) for g in sorted(groups.values(), key=lambda g: min(order[s] for s in g))]


def backward_section(d: Derivation, ex: WorkedExample | None, explained: dict, summary: bool | None = None) -> Section:
    summary = is_summary(d) if summary is None else summary
    blocks = []
    for layer in reversed(d.graph.layers):
        for a in layer.a[:1] if summary else layer.a:
            blocks.append(adjoint_block(d, ex, d.adjoint(a), f"adjoint-{a}", explained=explained))
        for group in _named_groups(d, layer):
            for node in group[:1] if summary else group:
                blocks.append(adjoint_block(d, ex, d.adjoint(node), f"adjoint-{node}", explained=explained))
    intro = (
        "The backward pass starts at the loss. Each δ is derived once, from the δs of the layer above, and then reused.",
    )
    if any(not layer.weights for layer in d.graph.layers):
        intro = (intro[0] + " The other named adjoints (such as ∂L/∂x̂, ∂L/∂σ², ∂L/∂μ) are derived once and reused the same way.",)
    omitted: tuple = ()
    hidden = sum(len(layer.z) - 1 for layer in d.graph.layers)
    if summary and hidden:
        omitted = _omitted(
            f"The δ and ∂L/∂a of the other {hidden} unit{'s' if hidden > 1 else ''} are",
            ("each takes the same steps as those of the first unit of its layer, with other indices",),
            _in_vector_form(d, ("BP1", "BP2")),
        )
    return Section("backward", "Backward pass: the δ of every unit", intro, tuple(blocks), omitted=omitted)


def gradient_section(
    d: Derivation, ex: WorkedExample | None, explained: dict, summary: bool | None = None, brief: bool = False
) -> Section:
    summary = is_summary(d) if summary is None else summary
    shown = set(representatives(d)) if summary else set(d.graph.parameters)
    blocks = []
    for g in d.gradients:
        # A handout derives a gradient only if one of its local derivatives is of a kind not yet shown.
        if g.node in shown and not (brief and all(_kind(d, t.child, g.node) in explained for t in g.terms)):
            blocks.append(adjoint_block(d, ex, g, f"gradient-{g.node}", g.node, explained))
    intro = ("Every weight and bias gets its gradient from the δ of the unit it feeds.",)
    omitted: tuple = ()
    if len(blocks) < len(d.gradients):
        omitted = _omitted(
            f"The other {len(d.gradients) - len(blocks)} of the {len(d.gradients)} gradients are",
            ("each takes the same steps as the one shown for its array, with other indices",),
            _in_vector_form(d, ("BP3", "BP4")),
        )
    return Section("gradients", "Gradients of the parameters", intro, tuple(blocks), omitted=omitted)


def input_section(d: Derivation, ex: WorkedExample | None, explained: dict, summary: bool | None = None) -> Section:
    summary = is_summary(d) if summary is None else summary
    inputs = d.graph.inputs[:1] if summary else d.graph.inputs
    blocks = [adjoint_block(d, ex, d.adjoint(x), f"input-{x}", explained=explained) for x in inputs]
    intro = ("The same walk gives the gradient with respect to the inputs (a saliency map of this example).",)
    omitted: tuple = ()
    if len(inputs) < len(d.graph.inputs):
        others = len(d.graph.inputs) - 1
        omitted = _omitted(
            f"The gradients of the other {others} input{'s' if others > 1 else ''} are",
            ("each takes the same steps as ", Partial(d.graph.loss, d.graph.inputs[0]), ", with another index"),
        )
    return Section("inputs", "Gradients of the inputs", intro, tuple(blocks), omitted=omitted)


#: A step's formula longer than this (``written_size``) is written a few terms a line.
LONGEST_LINE = 60
MINUS = Op("−")


def _lines(expr: sp.Expr) -> list[tuple]:
    """A long sum as lines of a few terms each, each line after the first opening with its sign.

    A form built in order (an ``UnevaluatedExpr``) keeps its order and stays unevaluated.

    >>> a, b, c = sp.symbols("a b c")
    >>> _lines(a + b)
    [(a + b,)]
    >>> [len(line) for line in _lines(sp.Add(*[sp.Symbol(f"x{i}") ** 9 * a * b * c for i in range(12)]))]
    [1, 2]
    """
    ordered = isinstance(expr, sp.UnevaluatedExpr)
    inner = expr.args[0] if ordered else expr
    if not isinstance(inner, sp.Add) or written_size(inner) <= LONGEST_LINE:
        return [(expr,)]
    terms = list(inner.args) if ordered else ordered_terms(inner)
    chunks: list[list] = [[]]
    for term in terms:
        if chunks[-1] and written_size(sp.Add(*chunks[-1], term, evaluate=False)) > LONGEST_LINE * 3 // 4:
            chunks.append([])
        chunks[-1].append(term)

    def written(parts):
        total = parts[0] if len(parts) == 1 else sp.Add(*parts, evaluate=False)
        return sp.UnevaluatedExpr(total) if ordered else total

    lines = [(written(chunks[0]),)]
    for chunk in chunks[1:]:
        first, sign = chunk[0], PLUS
        if first.could_extract_minus_sign():
            sign = MINUS
            if ordered and isinstance(first, sp.Mul):
                rest = ((-first.args[0],) if first.args[0] != -1 else ()) + first.args[1:]
                first = rest[0] if len(rest) == 1 else sp.Mul(*rest, evaluate=False)
            else:
                first = -first
        lines.append((sign, written([first, *chunk[1:]])))
    return lines


def _entry_steps(d: Derivation, ex: WorkedExample | None, equations: Sequence) -> Block:
    """A derivation in steps, each a layer equation written with indices, then entry by entry.

    Used for equations that say whose adjoints their entries are (``of``): the batch-norm
    backward, from the walk's sum to the compact form.
    """
    rows: list[Row] = []
    last = len(equations) - 1
    for i, eq in enumerate(equations):
        note = (eq.title + (f"; {eq.because}" if eq.because else ""),)
        symbols = [s for row in eq.of for s in row]
        for lhs, expr, value in [((eq.lhs,), eq.rhs, None)] + [
            ((Partial(d.graph.loss, s),), e, ex.adjoints[s] if ex is not None and i == last else None) for s, e in zip(symbols, eq.explicit)
        ]:
            lines = _lines(expr)
            if value is not None:
                lines[-1] += (EQ, Number(value))
            rows.append(Row(lhs, lines[0], note))
            rows += [Row((), line, continued=True) for line in lines[1:]]
            note = ()
    layer = d.graph.layers[equations[0].layer - 1]
    title = (f"Layer {layer.number}: the backward of {layer.title}, step by step",)
    return Block(f"steps-{layer.number}", title, tuple(rows), notes_above=True)


def equation_section(d: Derivation, ex: WorkedExample | None = None, brief: bool = False) -> Section:
    labels = {
        "BP1": "BP1, the output layer's error",
        "BP2": "BP2, the error passed back through the weights",
        "BP3": "BP3, the bias gradient",
        "BP4": "BP4, the weight gradient",
    }
    blocks = []
    stepwise: dict[int, list] = {}
    seen: set[str] = set()
    for eq in d.equations:
        # A handout writes each equation once, for the layer it first comes to (BP3 for the last layer).
        if brief and not eq.of and eq.label in seen:
            continue
        seen.add(eq.label)
        if eq.of:
            stepwise.setdefault(eq.layer, []).append(eq)
            if len(stepwise[eq.layer]) == 1:
                blocks.append(eq.layer)
            continue
        rows, cols = eq.explicit.shape
        label = labels.get(eq.label, eq.title or eq.label)
        if is_summary(d) and max(rows, cols) > SUMMARY_ROWS:
            size = f"{rows} × {cols}" if cols > 1 else f"{rows}"
            row = Row((eq.lhs,), (eq.rhs,), (f"{label}; its {size} entries are in the JSON document",))
        else:
            row = Row((eq.lhs,), (eq.rhs, EQ, eq.explicit), (label,))
        blocks.append(Block(f"{eq.label}-{eq.layer}", (f"{eq.label} for layer {eq.layer}",), (row,)))
    blocks = [_entry_steps(d, ex, stepwise[b]) if isinstance(b, int) else b for b in blocks]
    intro = ("The same results in vector form, written out for this network; ∘ multiplies entry by entry.",)
    if stepwise:
        intro = (intro[0] + " A derivation in steps is written with indices first (n the entry, m running over the entries one μ and σ² are taken over), then entry by entry.",)
    return Section("equations", "Layer-level equations", intro, tuple(blocks))


#: What each kind of batch-level rule does, beside its equation.
RULE_NOTES = {
    "forward": "layer {layer}: every example's weighted inputs at once",
    "activation": "layer {layer}: the activation",
    "loss": "the mean over the batch",
    "penalty": "the penalty on the weights, added to L once per batch",
    "BP1": "BP1 for layer {layer}",
    "BP2": "BP2 for layer {layer}",
    "BP3": "BP3 for layer {layer}: a sum over the batch",
    "BP4": "BP4 for layer {layer}: a sum over the batch",
    "parameter": "the gradient of layer {layer}'s activation parameter: a sum over the batch",
}
_X = Op("×")


def _rule_row(rule: VectorRule) -> Row:
    """A batch-level rule: its equation, what it does, and the NumPy lines that compute it."""
    note = RULE_NOTES.get(rule.label, rule.label).format(layer=rule.layer)
    if rule.note:
        note += "; " + rule.note
    # A rule whose right side is its left side names a quantity only its code spells out.
    rhs = () if rule.rhs == rule.lhs else (rule.rhs,)
    return Row((rule.lhs,), rhs, (note,), code=tuple(rule.code.splitlines()))


def proof_sentence(proof: Proof, network_sizes: tuple[int, ...]) -> str:
    """What ``proof`` checked, in one sentence; the entries that differ, if any.

    >>> from chainrule.network import Network, Dense
    >>> from chainrule.proof import prove
    >>> net = Network(3, (Dense(3, "tanh"), Dense(1, "identity")), "mse")
    >>> proof_sentence(prove(net), net.sizes)[:110]
    'Checked: the generated code, run on symbols for a batch of 2 examples through this network at width ≤ 2, gives'
    """
    narrowed = proof.network.sizes != network_sizes
    where = f" at width ≤ {max(proof.network.sizes)}" if narrowed else ""
    equal = proof.entries - len(proof.failures)
    how = f"({proof.identical} identical, {proof.expanded} after expanding, {proof.evaluated} to 50 digits at exact points)"
    text = (
        f"{'Checked' if proof.passed else 'Not proved'}: the generated code, run on symbols for a batch of "
        f"{proof.batch} examples through this network{where}, "
        f"{'gives' if proof.passed else 'should give'} every entry of Z, A, Δ, G = ∂L/∂A (and each layer kind's own arrays), the loss and each gradient "
        f"exactly as the scalar derivation above does: {equal} of {proof.entries} entries equal {how}."
    )
    if proof.failures:
        text += f" These differ: {', '.join(proof.failures)}."
    return text


def batch_section(d: Derivation, rules: LayerRules, proof: Proof | None) -> Section:
    """The network over a whole batch: matrix rules, each with its NumPy lines, then the kernels and the proof.

    >>> from chainrule import derive, default_network
    >>> from chainrule.layers import layer_rules
    >>> d = derive(default_network())
    >>> section = batch_section(d, layer_rules(d.network), None)
    >>> [b.key for b in section.blocks], section.blocks[0].rows[0].code
    (['batch-forward', 'batch-loss', 'batch-backward', 'batch-kernels'], ('Z1 = X @ W1.T', 'Z1 += b1'))
    """
    N, Zl, Al = sp.Symbol("N"), sp.Symbol("Z^(l)"), sp.Symbol("A^(l)")
    intro = (
        "A batch of ", N, " examples is a matrix with one example per row: ", sp.Symbol("X"), " is ",
        (N, _X, sp.Symbol("n_0")), ", ", Zl, " and ", Al, " are ", (N, _X, sp.Symbol("n_l")), ", and ",
        d.graph.loss, " is the mean over the batch. Under each rule is the NumPy code that computes it.",
    )  # fmt: skip
    groups = (
        ("forward", "Forward pass", rules.forward),
        ("loss", "Loss", rules.loss),
        ("backward", "Backward pass", rules.backward),
    )
    blocks = [Block(f"batch-{key}", (title,), tuple(_rule_row(r) for r in group)) for key, title, group in groups if group]
    kernels = tuple(Row((Call(k.name, k.args),), (k.expr,), (k.title,)) for k in rules.kernels.values())
    if kernels:
        blocks.append(Block("batch-kernels", ("Elementwise functions the code calls, entry by entry",), kernels))
    closing = (proof_sentence(proof, d.network.sizes),) if proof is not None else ()
    return Section("batch", "The whole batch at once: layer-level rules", intro, tuple(blocks), closing)


def sections(
    d: Derivation,
    ex: WorkedExample | None,
    rules: LayerRules | None = None,
    proof: Proof | None = None,
    detail: str | None = None,
) -> tuple[Section, ...]:
    """The outline; with ``rules`` (and their ``proof``), the batch-level rules come last.

    ``detail`` is ``summary.DETAILS``' "brief" (a handout: one representative of each kind of
    step, no inputs' gradients, gradient flow or batch-level rules), "full", or None (by size).
    """
    # The gradient-flow section builds on the pieces defined here, so it is imported when used.
    from .flow_section import flow_section

    summary = is_summary(d, detail)
    brief = detail == "brief"
    # The kinds of local derivative already shown step by step, in reading order.
    explained: dict = {}
    outline = (
        forward_section(d, ex, summary),
        activation_section(d),
        backward_section(d, ex, explained, summary),
        gradient_section(d, ex, explained, summary, brief),
        *(() if brief else (flow_section(d, ex), input_section(d, ex, explained, summary))),
        equation_section(d, ex, brief),
    )
    return outline if rules is None or brief else (*outline, batch_section(d, rules, proof))


def shown_expressions(outline: Sequence[Section]) -> list[sp.Basic]:
    """Every formula the outline shows (rows, notes, the facts under "where", rule-by-rule steps), in order."""

    def formulas(pieces) -> list[sp.Basic]:
        out: list[sp.Basic] = []
        for piece in pieces:
            if isinstance(piece, sp.Basic):
                out.append(piece)
            elif isinstance(piece, tuple):
                out.extend(formulas(piece))
        return out

    found: list[sp.Basic] = []
    for section in outline:
        for block in section.blocks:
            for row in (*block.rows, *block.where):
                found += formulas((row.lhs, row.rhs, row.note))
                for line in row.steps:
                    found += formulas((line.step.lhs, line.step.result))
    return found

