"""The dense kind: z = W a + b, a = f(z) — the fully connected layer of every course.

Scalar nodes: z⁽ˡ⁾ⱼ = Σₖ w⁽ˡ⁾ⱼₖ a⁽ˡ⁻¹⁾ₖ + b⁽ˡ⁾ⱼ and a⁽ˡ⁾ⱼ = f(z⁽ˡ⁾ⱼ) (softmax: each aⱼ from the
whole layer), with δ⁽ˡ⁾ⱼ = ∂L/∂z⁽ˡ⁾ⱼ named. Batch rules: Z = A Wᵀ + 𝟏bᵀ, A = f(Z); backward
Δ = G ⊙ f′(Z) (or the loss's shortened δ on the output layer), ∂L/∂W = ΔᵀA, ∂L/∂b = Δᵀ𝟏,
and ΔW passed to the layer below.

>>> Dense(3, "tanh").units
3
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import sympy as sp

from ..catalog import A, Z
from ..functions import xdivy
from ..spec import MAX_UNITS, SpecError, choose, describe, known
from ..symbols import Node, Notation, superscript
from .base import Kind, Layer, LayerEquation, Stage

#: Output deltas longer than this (in operations) are not tried for cancellation.
_LONGEST_SIMPLIFIED = 200


@dataclass(frozen=True)
class Dense:
    """A fully connected layer: z = W a_prev + b, a = f(z).

    ``activation`` is a catalog name ("relu"), a formula in z ("z/(1+abs(z))"), or a
    mapping with its parameters ({"name": "leaky_relu", "alpha": 0.1}), as in spec files.
    """

    units: int
    activation: str | Mapping[str, Any] = "sigmoid"
    bias: bool = True


def output_delta(dloss: sp.Expr, fprime: sp.Expr) -> sp.Expr | None:
    """∂ℓ/∂a · f′ in a shorter form where one exists (sigmoid with bce: a - y), else None.

    >>> from chainrule.catalog import LOSSES, ACTIVATIONS, P
    >>> output_delta(sp.diff(LOSSES["bce"].term, P).xreplace({P: A}), ACTIVATIONS["sigmoid"].derivative)
    a - y
    """
    product = dloss * fprime
    if sp.count_ops(product) > _LONGEST_SIMPLIFIED:
        return None
    plain = product.replace(xdivy, lambda x, y: x / y)  # the 0/0 guard says nothing about the algebra
    shorter = sp.factor_terms(sp.cancel(sp.expand(plain)))
    if shorter.has(sp.Piecewise) or sp.count_ops(shorter) >= sp.count_ops(product):
        return None
    return shorter


def _times(target: str, array: str, call: str, value: sp.Expr) -> str:
    """``target = array * call``, multiplied in place where the kernel returns a fresh array.

    A kernel that is one of its own arguments (f′(z) = z) returns that very array, which an
    in-place product would overwrite.
    """
    if value.is_Symbol:
        return f"{target} = {array} * {call}"
    return f"{target} = {call}\n{target} *= {array}"


class DenseKind(Kind):
    name = "dense"
    spec = Dense
    keys = ("units", "activation", "bias")
    torch_modules = ("Linear",)

    def parse(self, table, where, parse_layers):
        known(table, where, {"kind", *self.keys})
        if "units" not in table:
            raise SpecError(f"{where}.units", "missing; this key is required")
        bias = table.get("bias", True)
        if not isinstance(bias, bool):
            raise SpecError(f"{where}.bias", f"must be true or false, got {describe(bias)}")
        layer = Dense(table["units"], table.get("activation", "sigmoid"), bias)
        self._check(layer, where)
        return layer

    def _check(self, layer: Dense, where: str) -> None:
        units = layer.units
        if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= MAX_UNITS:
            raise SpecError(f"{where}.units", f"must be a whole number from 1 to {MAX_UNITS}, got {describe(units)}")
        if not isinstance(layer.bias, bool):
            raise SpecError(f"{where}.bias", f"must be true or false, got {describe(layer.bias)}")

    def stages(self, spec, number, width, where, flatten):
        self._check(spec, where)
        choice = choose(spec.activation, f"{where}.activation", "activation")
        return [Stage(number, self.name, spec, width, spec.units, number - 1, choice=choice, where=where)]

    def narrowed(self, spec, width, narrow):
        # Softmax needs two units to be more than the constant 1.
        floor = 1 if choose(spec.activation, "", "activation").entry.elementwise else 2
        return Dense(max(floor, min(spec.units, width)), spec.activation, spec.bias)

    def parameters(self, stage):
        shapes: dict[str, tuple[int, ...]] = {f"W{stage.number}": (stage.units, stage.inputs)}
        if stage.spec.bias:
            shapes[f"b{stage.number}"] = (stage.units,)
        for parameter in stage.choice.entry.parameters:
            if parameter.learnable:
                shapes[f"{parameter.name}{stage.number}"] = ()
        return shapes

    def describe(self, stage):
        # The form documents had before there were other kinds: no "kind" key.
        return {"units": stage.units, "activation": stage.choice.name, "parameters": dict(stage.choice.values), "bias": stage.spec.bias}

    def penalized(self, stage):
        return [f"W{stage.number}"]

    def initial(self, stage, name, shape):
        for parameter in stage.choice.entry.parameters:
            if parameter.learnable and name == f"{parameter.name}{stage.number}":
                return float(stage.choice.values[parameter.name])  # prelu's α starts where the spec puts it
        return 0.0 if name.startswith("b") else None

    def draw(self, stage, name, shape, rng):
        if name.startswith("W"):
            limit = math.sqrt(6 / (shape[-1] + shape[0]))
            return rng.uniform(-limit, limit, shape)
        value = self.initial(stage, name, shape)
        if value is not None and not name.startswith("b"):
            return value  # a learned activation parameter starts where the spec (or PyTorch) puts it
        return rng.uniform(-0.5, 0.5, shape)

    def title(self, stage):
        return f"{stage.units} {stage.choice.label} unit{'s' if stage.units > 1 else ''}"

    # The scalar graph ------------------------------------------------------------------

    def graph(self, stage, g):
        l, choice = stage.number, stage.choice
        activation = choice.entry
        own = g.catalog_parameters(activation.parameters, choice.values, f"l{l}", l)
        learned = tuple((f"{q.name}{l}", own[q.name]) for q in activation.parameters if q.learnable)
        previous = g.output(stage.source)
        weights, biases = [], []
        for j in range(1, stage.units + 1):
            row = tuple(g.symbol(f"w{l}_{j}_{k}", Notation("w", "w", l, (j, k))) for k in range(1, stage.inputs + 1))
            weights.append(row)
            for w in row:
                g.parameter(w)
            if stage.spec.bias:
                b = g.symbol(f"b{l}_{j}", Notation("b", "b", l, (j,)))
                biases.append(b)
                g.parameter(b)
        for _, symbol in learned:
            g.parameter(symbol)
        zs, acts, deltas = [], [], []
        for n, inputs in enumerate(previous, start=1):
            row_z = []
            for j in range(1, stage.units + 1):
                expr = sp.Add(*[w * a for w, a in zip(weights[j - 1], inputs)])
                parents = weights[j - 1] + inputs
                if stage.spec.bias:
                    expr, parents = expr + biases[j - 1], parents + (biases[j - 1],)
                z = g.symbol(g.name(f"z{l}", n, j), g.notation("z", "z", l, n, j))
                g.add(Node(z, expr, parents, expr))
                delta = g.symbol(g.name(f"delta{l}", n, j), g.notation("\\delta", "δ", l, n, j))
                g.adjoint_name(z, delta)
                row_z.append(z)
                deltas.append(delta)
            zs.append(tuple(row_z))
        for n, row_z in enumerate(zs, start=1):
            row_a = tuple(g.symbol(g.name(f"a{l}", n, j), g.notation("a", "a", l, n, j)) for j in range(1, stage.units + 1))
            for node in _activation_nodes(activation, own, tuple(s for _, s in learned), row_z, row_a):
                g.add(node)
            acts.append(row_a)
        arrays: dict[str, Any] = {f"W{l}": tuple(weights)}
        if stage.spec.bias:
            arrays[f"b{l}"] = tuple(biases)
        arrays.update(learned)
        z_grid, a_grid = tuple(zs), tuple(acts)
        return Layer(
            l, self.name, self.title(stage), previous, a_grid, arrays,
            forward={f"Z{l}": z_grid, f"A{l}": a_grid}, backward={f"D{l}": z_grid},
            leaves={}, nodes=tuple(s for row in z_grid for s in row) + tuple(s for row in a_grid for s in row),
            activation=choice.label, weights=tuple(weights), biases=tuple(biases) if stage.spec.bias else None,
            z=tuple(s for row in z_grid for s in row), deltas=tuple(deltas), learned=learned,
            array_words={f"W{l}": f"weights of layer {l}", f"b{l}": f"biases of layer {l}"},
        )  # fmt: skip

    # Batch-level rules -----------------------------------------------------------------

    def forward(self, stage, r, training):
        l, entry = stage.number, stage.choice.entry
        bound = r.bound(stage.choice, f"l{l}")
        W_ = r.matrix(f"W{l}", stage.units, stage.inputs, Notation("W", "W", l))
        Z_ = r.matrix(f"Z{l}", r.N, stage.units, Notation("Z", "Z", l))
        A_ = r.matrix(f"A{l}", r.N, stage.units, Notation("A", "A", l))
        previous = r.name(stage.source)
        rhs = r.A(stage.source) * W_.T
        code = f"Z{l} = {previous} @ W{l}.T"
        if stage.spec.bias:
            b_ = r.matrix(f"b{l}", stage.units, 1, Notation("b", "b", l))
            rhs = rhs + r.ones * b_.T
            code += f"\nZ{l} += b{l}"  # in place: one array fewer per step
        r.forward("forward", l, Z_, rhs, code)
        alpha = [bound[p.symbol] for p in entry.parameters if p.learnable]
        extra = "".join(f", {p.name}{l}" for p in entry.parameters if p.learnable)
        if entry.elementwise:
            f_name = r.kernel(f"k_f{l}", (Z, *alpha), entry.formula.xreplace(bound), f"f of layer {l}")
            # f′ (and ∂f/∂α) beside f, so that documents list each layer's kernels together.
            r.kernel(f"k_df{l}", (Z, A, *alpha), entry.derivative.xreplace(bound), f"f′ of layer {l}")
            if alpha:
                r.kernel(f"k_dfa{l}", (Z, A, *alpha), sp.diff(entry.formula, entry.parameters[0].symbol).xreplace(bound),
                         f"∂f/∂{entry.parameters[0].text} of layer {l}")
            fa = r.matrix(f"f{l}", r.N, stage.units, Notation("f", "f", l, arg=Notation("Z", "Z", l)))
            r.forward("activation", l, A_, fa, f"A{l} = {f_name}(Z{l}{extra})")
        else:  # softmax: each row normalized, through its log-sum-exp so that nothing overflows
            sa = r.matrix(f"softmax{l}", r.N, stage.units, Notation("\\operatorname{softmax}", "softmax", None, arg=Notation("Z", "Z", l)))
            r.forward("activation", l, A_, sa, f"S{l}, A{l} = softmax_rows(Z{l})")

    def backward(self, stage, r):
        l, entry = stage.number, stage.choice.entry
        bound = r.bound(stage.choice, f"l{l}")
        alpha = [bound[p.symbol] for p in entry.parameters if p.learnable]
        extra = "".join(f", {p.name}{l}" for p in entry.parameters if p.learnable)
        D = r.matrix(f"D{l}", r.N, stage.units, Notation("\\Delta", "Δ", l))
        fp = r.matrix(f"fprime{l}", r.N, stage.units, Notation("f'", "f′", l, arg=Notation("Z", "Z", l)))
        df = f"k_df{l}" if entry.elementwise else None  # made beside f in ``forward``
        if r.is_last(stage):
            if alpha:  # α of the output layer needs ∂L/∂A there, which the output Δ otherwise skips
                r.gradient(l)
            self._output_delta(stage, r, D, fp, df, extra)
        else:
            G = r.gradient(l)
            r.backward("BP2", l, D, sp.HadamardProduct(G, fp), _times(f"D{l}", f"G{l}", f"{df}(Z{l}, A{l}{extra})", r.kernels[df].expr))
        previous = r.name(stage.source)
        gW = r.matrix(f"gW{l}", stage.units, stage.inputs, Notation("W", "W", l, of="L"))
        rhs, code = D.T * r.A(stage.source), f"gW{l} = D{l}.T @ {previous}"
        if r.regularized:
            rhs = rhs + r.matrix(f"dR{l}", stage.units, stage.inputs, Notation("W", "W", l, of="R"))
            code += f" + k_dpen(W{l})"
        r.backward("BP4", l, gW, rhs, code)
        if stage.spec.bias:
            gb = r.matrix(f"gb{l}", stage.units, 1, Notation("b", "b", l, of="L"))
            r.backward("BP3", l, gb, D.T * r.ones, f"gb{l} = ones @ D{l}")
        if alpha:
            parameter = entry.parameters[0]
            name = parameter.name
            ga = sp.Symbol(f"g{name}{l}")
            r.notation[ga] = Notation(parameter.latex, parameter.text, l, of="L")
            dfa = r.matrix(f"dfa{l}", r.N, stage.units, Notation("\\partial f", "∂f", l, arg=Notation("Z", "Z", l)))
            r.backward("parameter", l, ga, r.ones.T * sp.HadamardProduct(r.G(l), dfa) * r.ones,
                       f"g{name}{l} = (G{l} * k_dfa{l}(Z{l}, A{l}, {name}{l})).sum()")
        Wm = r.matrix(f"W{l}", stage.units, stage.inputs, Notation("W", "W", l))
        r.contribute(stage.source, f"D{l} @ W{l}", D * Wm, "BP2")

    def _output_delta(self, stage, r, D, fp, df, extra):
        """Δ of the output layer straight from the loss: shortened where ∂ℓ/∂ŷ · f′ cancels."""
        l, entry = stage.number, stage.choice.entry
        k, factor, scale, out = stage.units, r.factor, r.scale, f"A{l}"
        if r.from_logits:
            r.backward("BP1", l, D, factor * (r.A(l) - r.Y), f"D{l} = A{l} - Y\nD{l} /= n",
                       "the softmax Jacobian times ∂ℓ/∂a, which cancels to a − y because the targets add up to 1 (line by line under the backward pass)")
            return
        dloss = r.dloss
        if entry.elementwise:
            short = None if extra else output_delta(dloss.xreplace({r.P: A}), r.kernels[df].expr)
            if short is not None:
                r.kernel("k_delta", (Z, A, r.Ysym), short, "∂ℓ/∂ŷ · f′(z), simplified")
                hm = r.matrix("h", r.N, k, Notation("h", "h", None, arg=Notation(f"Z^{{({l})}}, A^{{({l})}}, Y", "Z, A, Y")))
                r.backward("BP1", l, D, factor * hm, f"D{l} = k_delta(Z{l}, A{l}, Y) {scale}", "∂ℓ/∂ŷ · f′(z) cancels to a shorter form")
            else:
                r.backward("BP1", l, D, sp.HadamardProduct(factor * r.dell, fp),
                           f"D{l} = (k_dloss({out}, Y) {scale}) * {df}(Z{l}, A{l}{extra})")
            return
        # softmax under another loss: Δ = A ⊙ (G - rowsum(G ⊙ A))
        G, A_out, ones_k = r.G(l), r.A(l), r.column_k
        r.backward(
            "BP1", l, D, sp.HadamardProduct(A_out, G - sp.HadamardProduct(G, A_out) * ones_k * ones_k.T),
            f"G{l} = k_dloss({out}, Y) {scale}\nD{l} = A{l} * (G{l} - (G{l} * A{l}).sum(axis=1, keepdims=True))",
            "the softmax Jacobian diag(a) − a aᵀ applied to each row of ∂L/∂A")

    def planted_bugs(self, stage, rules):
        """The activation derivative left out of δ: δ = ∂L/∂a instead of ∂L/∂a ⊙ f′(z)."""
        l = stage.number
        if stage.choice.entry.derivative == 1:
            return []  # f′ = 1 (identity): leaving it out changes nothing
        for rule in rules.backward:
            first = rule.code.split("\n")[0]
            if first.startswith(f"D{l} = ") and f"k_df{l}(" in rule.code:
                # D = (∂L/∂A) * f′ on the output layer, D = f′; D *= G below it: both become ∂L/∂A.
                code = first.rsplit(" * k_df", 1)[0] if rule.label == "BP1" else f"D{l} = G{l}"
                up = superscript(l)
                words = f"the activation derivative f′(z⁽{up}⁾) is missing from δ⁽{up}⁾ (δ = ∂L/∂a ⊙ f′(z))"
                return [(words, replace(rules, backward=tuple(replace(r, code=code) if r is rule else r for r in rules.backward)))]
        return []

    # Layer-level equations for documents -----------------------------------------------

    def equations(self, stage, layer, d):
        """BP1–BP4 (Nielsen, ch. 2) for this layer, in vector form and written out entry by entry."""
        if d.batch > 1:
            return ()  # over a batch, the batch-level rules state them in matrix form
        l, units, fan_in = stage.number, stage.units, stage.inputs
        adjoints = d.adjoints
        delta = d.vector(f"delta{l}", units, 1, Notation("\\delta", "δ", l))
        out: list[LayerEquation] = []
        consumers = d.consumers(l)
        if not stage.choice.entry.elementwise:
            # Each output depends on every z of the layer: the Jacobian replaces f′(z)∘.
            grad = d.vector(f"grad_a{l}", units, 1, Notation("a", "a", l, of="L"))
            jac = d.vector(f"J{l}", units, units, Notation("J", "J", l))
            explicit = sp.Matrix([adjoints[z].value for z in layer.z])
            out.append(LayerEquation("BP1", l, delta, jac.T * grad, explicit, "BP1, the output layer's error"))
        elif len(consumers) == 1 and consumers[0].kind == self.name:
            slope, fprime = _slope(layer, adjoints, d.vector)
            above = d.layer(consumers[0].number)
            m = above.number
            weights = d.vector(f"W{m}", len(above.z), units, Notation("W", "W", m))
            upper = d.vector(f"delta{m}", len(above.z), 1, Notation("\\delta", "δ", m))
            explicit = (sp.Matrix(above.weights).T * sp.Matrix(above.deltas)).multiply_elementwise(slope)
            rhs = sp.HadamardProduct(weights.T * upper, fprime, evaluate=False)
            out.append(LayerEquation("BP2", l, delta, rhs, explicit, "BP2, the error passed back through the weights"))
        else:
            slope, fprime = _slope(layer, adjoints, d.vector)
            grad = d.vector(f"grad_a{l}", units, 1, Notation("a", "a", l, of="L"))
            explicit = sp.Matrix([adjoints[a].substituted for a in layer.a]).multiply_elementwise(slope)
            label, title = ("BP1", "BP1, the output layer's error") if not consumers else ("BP2", "BP2, the error of the layer's outputs times f′")
            out.append(LayerEquation(label, l, delta, sp.HadamardProduct(grad, fprime, evaluate=False), explicit, title))
        if layer.biases is not None:
            grad_b = d.vector(f"grad_b{l}", units, 1, Notation("b", "b", l, of="L"))
            out.append(LayerEquation("BP3", l, grad_b, delta, sp.Matrix(layer.deltas), "BP3, the bias gradient"))
        written = Notation("x", "x") if stage.source == 0 else Notation("a", "a", stage.source)
        previous = d.vector(f"a{stage.source}", fan_in, 1, written)
        grad_w = d.vector(f"grad_W{l}", units, fan_in, Notation("W", "W", l, of="L"))
        explicit = sp.Matrix([[adjoints[w].substituted for w in row] for row in layer.weights])
        rhs = delta * previous.T
        if d.regularized:
            rhs = rhs + d.vector(f"grad_R{l}", units, fan_in, Notation("W", "W", l, of="R"))
        out.append(LayerEquation("BP4", l, grad_w, rhs, explicit, "BP4, the weight gradient"))
        return tuple(out)


def _slope(layer, adjoints, vector):
    """f′(z) of an elementwise layer: its entries, and the vector symbol that names them."""
    slope = sp.Matrix([adjoints[z].terms[0].local.shown for z in layer.z])
    l = layer.number
    return slope, vector(f"fprime{l}", len(layer.z), 1, Notation("f'", "f′", l, arg=Notation("z", "z", l)))


def _activation_nodes(activation, params: Mapping[str, sp.Symbol], learnable, zs, acts) -> list[Node]:
    """a = f(z) for each unit: elementwise, or (softmax) each output from the whole layer."""
    bound = {p.symbol: params[p.name] for p in activation.parameters}
    nodes = []
    if activation.elementwise:
        for z, a in zip(zs, acts):
            own = {Z: z, A: a, **bound}
            formula = activation.formula.xreplace(own)
            display = activation.display(z) if activation.display is not None else formula
            form = activation.derivative.xreplace(own)
            nodes.append(Node(a, formula, (z, *learnable), display, ((z, form),)))
        return nodes
    outputs = activation.outputs(zs)
    total = sp.Add(*[sp.exp(z) for z in zs])
    for j, (a, formula) in enumerate(zip(acts, outputs)):
        forms = tuple((z, activation.jacobian(zs, acts, j, k)) for k, z in enumerate(zs))
        nodes.append(Node(a, formula, tuple(zs), sp.exp(zs[j]) / total, forms))
    return nodes


DENSE = DenseKind()
