"""The famous steps, derived instead of asserted: softmax with cross-entropy down to a − y,
the softmax Jacobian by the quotient rule, σ′ = σ(1 − σ) and the other familiar forms by
their algebra, and rule trees that name u and v and simplify last.

Every line of algebra is checked against the line before it (``rewrite_holds``:
simplify(before − after) = 0, with Σₖ yₖ = 1 substituted where a line stands on it).
"""

from __future__ import annotations

import itertools

import pytest
import sympy as sp
from test_rules import CORPUS

from chainrule import rules
from chainrule.algebra import Rewrite, rewrite_holds, rewritten
from chainrule.derive import derive
from chainrule.explain import explain
from chainrule.functions import sigmoid
from chainrule.network import Dense, Network, load
from chainrule.render import render
from chainrule.render.explanation import render_explanation
from chainrule.render.printing import latex
from chainrule.render.rule_view import lines, step_view
from chainrule.rules import derivative_steps, walk

x, y, z, w, b = sp.symbols("x y z w b", real=True)

# --- 1. softmax with cross-entropy: cancel, multiply out, collect, Σₖ yₖ = 1 ----------------

SOFTMAX = Network(2, (Dense(3, "tanh"), Dense(3, "softmax")), "cross_entropy")
#: Output δs whose simplification takes steps: a distribution (one example, and a batch with
#: the mean's 1/N), and sigmoid with binary cross-entropy, which needs no assumption.
SIMPLIFIED = [
    (SOFTMAX, 1),
    (SOFTMAX, 2),
    (Network(2, (Dense(2, "tanh"), Dense(1, "sigmoid")), "bce"), 1),
    (Network(2, (Dense(1, "identity"),), "mse"), 1),
]


@pytest.fixture(scope="module")
def softmax():
    return derive(load("examples/softmax-3-class.toml"))


def test_softmax_cross_entropy_takes_the_targets_sum_as_a_step_of_its_own(softmax):
    layer = softmax.graph.layers[-1]
    delta = softmax.adjoint(layer.z[0])
    a1, (y1, y2, y3) = layer.a[0], softmax.graph.targets
    assert [s.title for s in delta.steps] == ["cancelling", "multiplying out", "collecting", "the targets add up to 1"]
    cancelled, expanded, collected, summed = (s.expr for s in delta.steps)
    assert cancelled == a1 * y2 + a1 * y3 - y1 * (1 - a1)  # each aₖ cancelled, nothing else done
    assert expanded == a1 * y1 + a1 * y2 + a1 * y3 - y1
    assert collected == a1 * (y1 + y2 + y3) - y1
    assert summed == delta.simplified == a1 - y1
    assert delta.steps[-1].assuming == sp.Eq(y1 + y2 + y3, 1) and delta.assumption == "the targets add up to 1"
    # Only the last line needs the targets' sum: without it, it would not hold.
    assert not rewrite_holds(collected, Rewrite(summed, "without the assumption"))


@pytest.mark.parametrize(("net", "batch"), SIMPLIFIED, ids=lambda v: getattr(v, "loss", v))
def test_every_line_of_an_output_delta_holds(net, batch):
    d = derive(net, batch)
    found = [a for a in d.deltas if a.steps]
    assert found
    for adjoint in found:
        assert adjoint.steps[-1].expr == adjoint.simplified == adjoint.value
        for before, step in rewritten(adjoint.substituted, adjoint.steps):
            assert rewrite_holds(before, step), (adjoint.node, step.title)


def test_the_documents_show_each_line_with_what_it_does(softmax):
    md = render(softmax, "md")
    assert "simplified, because" not in md
    (y1, y2, y3), a1 = softmax.graph.targets, softmax.graph.layers[-1].a[0]
    notation = softmax.notation
    assert f"*the targets add up to 1: ${latex(sp.Eq(y1 + y2 + y3, 1), notation)}$*" in md
    assert "*multiplying out*" in md and f"*collecting: the terms in ${latex(a1, notation)}$*" in md
    assert "each against the same factor beside it" in md
    html = render(softmax, "html")
    assert html.count("the targets add up to 1: ") == 3  # one output δ each


# --- 2. the softmax Jacobian by the quotient rule ------------------------------------------


def _softmax_values(expr: sp.Expr, jj: int, kk: int, n: int, names) -> sp.Expr:
    """``expr`` at j = jj, k = kk for a layer of n units, with u, v, u′, v′ and aᵢ written out."""
    j, k, _, count, u, v, u1, v1, z, a = names
    zs = sp.symbols(f"z1:{n + 1}", real=True)
    total = sum(sp.exp(s) for s in zs)
    # indices first, then the sums written out, then the names: ∂u/∂zₖ must meet u = e^(zⱼ) before it is taken
    e = expr.xreplace({j: jj, k: kk, count: n}).replace(lambda t: isinstance(t, sp.Sum), lambda t: t.doit())
    e = e.xreplace({**{z[i + 1]: zs[i] for i in range(n)}, **{a[i + 1]: sp.exp(zs[i]) / total for i in range(n)}})
    e = e.xreplace({u: sp.exp(zs[jj - 1]), v: total, u1: sp.diff(sp.exp(zs[jj - 1]), zs[kk - 1]), v1: sp.diff(total, zs[kk - 1])})
    return e.doit()


def test_the_softmax_jacobian_is_derived_with_u_and_v(softmax):
    act = next(a for a in softmax.activations if not a.elementwise)
    u, v = act.steps[0].lhs, act.steps[1].lhs
    j, k = act.output.indices[0], act.input.indices[0]
    z, a = act.input.base, act.output.base
    assert act.steps[0].expr == sp.exp(z[j])
    assert isinstance(act.steps[1].expr, sp.Sum) and act.steps[1].expr.function == sp.exp(z[act.steps[1].expr.variables[0]])
    quotient = next(s for s in act.steps if s.title == "the quotient rule")
    u1, v1 = sp.Symbol("u'"), sp.Symbol("v'")
    assert quotient.expr.doit() == (u1 * v - u * v1) / v**2
    cases = [s.assuming for s in act.steps if s.lhs is not None and s.assuming is not None]
    assert cases == [sp.Eq(k, j), sp.Ne(k, j)]
    assert act.steps[-1].expr.doit() == act.textbook == a[j] * (sp.KroneckerDelta(j, k) - a[k])
    # the indicator is explained once, in words that keep it apart from the error δ
    said = [s for s in act.steps if "not the error δ" in "".join(p for p in s.why if isinstance(p, str))]
    assert len(said) == 1 and sp.KroneckerDelta(j, k) in said[0].why


@pytest.mark.parametrize("n", [2, 3])
def test_every_line_of_the_softmax_jacobian_holds(softmax, n):
    act = next(a for a in softmax.activations if not a.elementwise)
    j, k = act.output.indices[0], act.input.indices[0]
    sums = act.steps[1].expr
    names = (j, k, sums.variables[0], sums.limits[0][2], act.steps[0].lhs, act.steps[1].lhs,
             sp.Symbol("u'"), sp.Symbol("v'"), act.input.base, act.output.base)
    for before, step in rewritten(act.formula, act.steps):
        for jj, kk in itertools.product(range(1, n + 1), repeat=2):
            if step.assuming is not None and not step.assuming.xreplace({j: jj, k: kk}):
                continue  # the line is about the other case
            difference = _softmax_values(before, jj, kk, n, names) - _softmax_values(step.expr, jj, kk, n, names)
            assert sp.simplify(difference) == 0, (step.title, jj, kk)


def test_the_softmax_block_shows_the_derivation(softmax):
    md = render(softmax, "md")
    block = md[md.index("#### softmax"):md.index("## Backward pass")]
    assert "\\frac{u' v - u v'}{v^{2}}" in block
    assert block.count("is 1 when j = k and 0 otherwise (not the error δ)") == 1
    assert "*for k = j: " in block and "*for k ≠ j: " in block and "*both cases in one formula: " in block
    assert "differentiating the formula" not in block


# --- 3. familiar forms: the algebra from the table ------------------------------------------

ROUTES = [(name, i) for name, entry in rules.FAMILIAR_FORMS.items() for i in range(len(entry.routes))]
ARGUMENTS = [z, -2 * x, w * x + b]


@pytest.mark.parametrize(("name", "route"), ROUTES)
@pytest.mark.parametrize("u", ARGUMENTS, ids=str)
def test_every_route_of_the_table_holds_line_by_line(name, route, u):
    entry = rules.FAMILIAR_FORMS[name]
    for c in (sp.Integer(1), -2 * y):
        start, steps = entry.routes[route](u, c)
        assert rules._equal(start, c * entry.form(u), u)
        for before, step in rewritten(start, steps):
            assert rewrite_holds(before, step), (name, step.title)
        assert steps[-1].expr == c * entry.form(u)


#: The corpus formulas where a familiar form, a product or a quotient can appear.
SHAPED = [f for f in CORPUS if f.has(sp.exp, sigmoid, sp.tanh) or isinstance(f, sp.Mul)]


@pytest.fixture(scope="module")
def trees():
    return [(f, v, derivative_steps(f, v)) for f in SHAPED for v in sorted(f.free_symbols, key=str)]


def test_every_familiar_form_of_the_corpus_is_reached_by_algebra(trees):
    found = [(f, v, t) for f, v, t in trees if isinstance(t, rules.FamiliarFormRule)]
    assert {t.name for _, _, t in found} == set(rules.FAMILIAR_FORMS)
    for f, v, tree in found:
        assert tree.algebra, (f, v)
        for before, step in rewritten(tree.substep.result, tree.algebra):
            assert rewrite_holds(before, step), (f, v, step.title)
        assert tree.algebra[-1].expr == tree.form
        assert sp.simplify((tree.form - sp.diff(f, v)).rewrite(sp.exp)) == 0


def test_sigmoid_slope_writes_one_minus_sigma_as_a_step():
    tree = derivative_steps(1 / (1 + sp.exp(-z)), z)
    assert tree.name == "σ(u)(1 − σ(u))"
    fact = next(s for s in tree.algebra if s.lhs is not None)
    assert fact.lhs == 1 - sigmoid(z) and fact.expr == sp.exp(-z) / (1 + sp.exp(-z))
    split = tree.algebra[0].expr
    assert [f.args[0] for f in split.args] == [1 / (1 + sp.exp(-z)), sp.exp(-z) / (1 + sp.exp(-z))]
    md = render_explanation(explain("1/(1+exp(-z))"), "md")
    assert f"${latex(fact.lhs)} = {latex(fact.expr)}$ (one minus σ: " in md
    assert "(splitting the square: a/b² = (1/b)·(a/b))" in md
    # the machine proof stays, as a note after the algebra's heading line
    assert "checked by machine: simplify(f′ − c·F(u)) = 0" in md
    assert md.index("so $\\frac{d}{d z} \\frac{1}{1 + e^{- z}} = \\frac{e^{- z}}") < md.index("familiar form")


# --- 4. rule trees: u and v named, parts plugged in, simplification last --------------------


def test_simplification_reads_last():
    e = explain("x/(1+y**2)", order=2)
    h_yy = e.hessian[1][1].steps
    assert type(h_yy) is rules.SimplifyRule
    tree = lines(step_view(h_yy))
    assert tree[0].step.rule != "SimplifyRule" and tree[0].kind == "rule"
    assert tree[-1].step.rule == "SimplifyRule" and tree[-1].depth == 0
    assert tree[-1].step.lhs == h_yy.substep.result and tree[-1].step.result == h_yy.simplified
    md = render_explanation(e, "md")
    section = md[md.index("### $\\frac{\\partial^{2}}{\\partial y^{2}}"):]
    first = next(line for line in section.splitlines() if line.startswith("- "))
    assert not first.startswith("- simplification") and first.startswith("- constant multiple rule")


def test_quotient_rule_names_u_and_v_and_plugs_them_in():
    tree = derivative_steps(y / (y**2 + 1) ** 2, y).substep
    assert type(tree) is rules.QuotientRule
    u, v = tree.names
    assert (u.name, v.name) == ("u", "v")
    view = step_view(tree)
    assert view.given == ("with ", u, " = ", y, ", ", v, " = ", (y**2 + 1) ** 2)
    assert [s.title.split(",")[0] for s in view.substeps] == ["u′", "v′"]
    assert tree.in_names.doit() == (sp.Symbol("u'") * v - u * sp.Symbol("v'")) / v**2
    (plugged,) = view.working
    assert plugged.lhs == tree.in_names and plugged.result == tree.plugged
    square = tree.plugged.args[0].args[1].args[0]  # v², not yet multiplied out
    assert square == sp.Pow((y**2 + 1) ** 2, 2, evaluate=False) and square != (y**2 + 1) ** 4
    kinds = [line.kind for line in lines(view)]
    assert kinds[-2:] == ["leaf", "so"] and lines(view)[-2].step.rule == "PluggedIn"
    # the chain rule inside takes a name of its own
    assert tree.substeps[1].u not in tree.names


def test_product_rule_names_u_and_v_in_the_documents():
    md = render_explanation(explain("x**2*sin(x)"), "md")
    assert "product rule, with $u$ = $x^{2}$, $v$ = $\\sin{\\left(x \\right)}$: d/dx (u·v) = u′·v + u·v′" in md
    assert "(u′, power rule: " in md and "(v′, trigonometric rule: " in md
    assert "$u' v + u v' = " in md
    assert md.index("$u' v + u v' = ") < md.index("- so ")


def test_every_plugged_in_form_is_the_rules_result(trees):
    seen = 0
    for step in (s for _, _, tree in trees for s in walk(tree) if isinstance(s, (rules.QuotientRule, rules.ProductRule))):
        assert sp.simplify(step.plugged.doit() - step.result) == 0, step.expr
        assert not {n.name for n in step.names} & {s.name for s in step.expr.free_symbols}
        seen += 1
    assert seen >= 20


def test_every_tree_reads_its_rewriting_steps_after_what_they_rewrite(trees):
    for _, _, tree in trees:
        view_lines = lines(step_view(tree))
        if tree.rewrites:
            assert view_lines[0].step.rule != type(tree).__name__
        assert sum(line.kind == "rule" for line in view_lines) == sum(line.kind == "so" for line in view_lines)


# --- 5. deterministic documents -------------------------------------------------------------


def test_documents_are_byte_identical_across_runs(softmax):
    again = derive(load("examples/softmax-3-class.toml"))
    assert render(softmax, "md") == render(again, "md")
    assert render(softmax, "tex") == render(again, "tex")
    e1, e2 = explain("x/(1+y**2)", order=2), explain("x/(1+y**2)", order=2)
    assert render_explanation(e1, "html") == render_explanation(e2, "html")


def test_the_json_keeps_the_lines_of_algebra(softmax):
    import json

    doc = json.loads(render(softmax, "json"))["deltas_symbolic"]["delta2_1"]
    assert [s["title"] for s in doc["steps"]][-1] == "the targets add up to 1"
    assert doc["steps"][-1] == {"title": "the targets add up to 1", "expression": "a2_1 - y_1",
                                "assuming": "Eq(y_1 + y_2 + y_3, 1)"}
    assert sp.simplify(sp.sympify(doc["steps"][0]["expression"]) - sp.sympify("a2_1*y_2 + a2_1*y_3 - y_1*(1 - a2_1)")) == 0


def test_the_step_rule_names_the_function_it_differentiates():
    x = sp.Symbol("x", real=True)
    step, heaviside = derivative_steps(sp.Heaviside(x, 0), x), derivative_steps(sp.Heaviside(x), x)
    assert step.identity == "d/dx step(x) = δ(x): zero away from the step at 0"
    assert heaviside.identity == "d/dx H(x) = δ(x): zero away from the step at 0"
