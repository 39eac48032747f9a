"""What batch norm and layer norm share: center, scale by 1/√(σ² + ε), then γ x̂ + β.

The two differ only in what they average over: batch norm over the examples of the batch
(one μ and σ² per unit), layer norm over the units of each example (one μ and σ² per
example). Scalar nodes, for stage l reading a = a⁽ˡ⁻¹⁾:

    μ = mean(a),  σ² = mean((a − μ)²),  x̂ = (a − μ)/√(σ² + ε),  a⁽ˡ⁾ = γ x̂ + β

with ∂L/∂x̂, ∂L/∂σ² and ∂L/∂μ named, so that the reverse walk derives the textbook
backward (Ioffe and Szegedy, 2015) one local derivative at a time and reuses each.
The batch rules use the compact form of the same backward,

    ∂L/∂a = (1/√(σ² + ε)) · (h − mean(h) − x̂ ⊙ mean(h ⊙ x̂)),  h = γ ⊙ ∂L/∂a⁽ˡ⁾,

which ``prove`` checks against the scalar chain rule entry by entry. For batch norm the two
means are over the batch, where they are ∂L/∂β and ∂L/∂γ over N (times γ), so its code
reuses those; ``normalize_equations`` derives the compact form step by step for documents.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sympy as sp

from ..spec import SpecError, describe, known, number
from ..symbols import Node, Notation, superscript
from .base import Kind, Layer, Picture, Stage, with_backward_code
from .normalize_equations import compact_backward

#: The variance argument of the 1/√(σ² + ε) kernel.
V = sp.Symbol("v", nonnegative=True)


class Normalization(Kind):
    """A normalization kind; ``over`` is "examples" (batch norm) or "units" (layer norm)."""

    over = "examples"
    #: How documents name it: "batch normalization".
    words = ""

    def _eps(self, spec: Any, where: str) -> float:
        eps = spec.eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= 1:
            raise SpecError(f"{where}.eps", f"must be a number above 0 and at most 1 (PyTorch's default is 1e-5), got {describe(eps)}")
        return float(eps)

    def _options(self, table, where) -> dict[str, float]:
        known(table, where, {"kind", *self.keys})
        return {key: number(table[key], f"{where}.{key}") for key in self.keys if key in table}

    def stages(self, spec, number, width, where, flatten):
        self.check(spec, where)
        return [Stage(number, self.name, spec, width, width, number - 1, where=where)]

    def check(self, spec, where) -> None:
        self._eps(spec, where)

    def parameters(self, stage):
        return {f"gamma{stage.number}": (stage.units,), f"beta{stage.number}": (stage.units,)}

    def initial(self, stage, name, shape):
        return 1.0 if name.startswith("gamma") else 0.0

    #: The picture's label: "BN", "LN".
    short = ""

    def picture(self, stage):
        over = "the batch, per unit" if self.over == "examples" else "the units, per example"
        return Picture("box", self.short, f"{self.words}: μ and σ² over {over}, then γ x̂ + β")

    def equations(self, stage, layer, d):
        return compact_backward(self, stage, layer, d)

    def title(self, stage):
        return f"{self.words} over {stage.units} unit{'s' if stage.units > 1 else ''}"

    # The scalar graph ------------------------------------------------------------------

    def graph(self, stage, g):
        l = stage.number
        previous = g.output(stage.source)
        batch, units = len(previous), stage.units
        eps = g.symbol(f"epsilon_l{l}", Notation("\\epsilon", "ε", l))
        g.constant(eps, self._eps(stage.spec, stage.where))
        gammas = tuple(g.symbol(f"gamma{l}_{j}", Notation("\\gamma", "γ", l, (j,))) for j in range(1, units + 1))
        betas = tuple(g.symbol(f"beta{l}_{j}", Notation("\\beta", "β", l, (j,))) for j in range(1, units + 1))
        for symbol in (*gammas, *betas):
            g.parameter(symbol)
        # Groups: the entries one μ and σ² are taken over, with the example and unit indices they carry.
        if self.over == "examples":
            groups = [([(n, j) for n in range(batch)], None, (j + 1,)) for j in range(units)]
        else:
            groups = [([(n, j) for j in range(units)], n + 1, ()) for n in range(batch)]
        mus, variances, nodes = {}, {}, []
        for members, example, unit in groups:
            mu_written = g.notation("\\mu", "μ", l, example, *unit)
            var_written = g.notation("{\\sigma^{2}}", "σ²", l, example, *unit)
            mu = g.symbol(g.name(f"mu{l}", example, *unit), mu_written)
            var = g.symbol(g.name(f"var{l}", example, *unit), var_written)
            entries = [previous[n][j] for n, j in members]
            size = sp.Integer(len(entries))
            mean = sp.Add(*entries) / size
            g.add(Node(mu, mean, tuple(entries), mean))
            spread = sp.Add(*[(a - mu) ** 2 for a in entries]) / size
            g.add(Node(var, spread, (*entries, mu), spread))
            # Named, so that the walk derives ∂L/∂μ and ∂L/∂σ² once and every x̂ reuses them.
            g.adjoint_name(mu, g.symbol(f"g{mu.name}", replace(mu_written, of="L")))
            g.adjoint_name(var, g.symbol(f"g{var.name}", replace(var_written, of="L")))
            nodes += [mu, var]
            for n, j in members:
                mus[n, j], variances[n, j] = mu, var
        xhats, outs = [], []
        for n in range(batch):
            row_x, row_a = [], []
            for j in range(units):
                a = previous[n][j]
                xhat_written = g.notation("\\hat{x}", "x̂", l, n + 1, j + 1)
                xhat = g.symbol(g.name(f"xhat{l}", n + 1, j + 1), xhat_written)
                expr = (a - mus[n, j]) / sp.sqrt(variances[n, j] + eps)
                g.add(Node(xhat, expr, (a, mus[n, j], variances[n, j], eps), expr))
                g.adjoint_name(xhat, g.symbol(f"g{xhat.name}", replace(xhat_written, of="L")))
                out = g.symbol(g.name(f"a{l}", n + 1, j + 1), g.notation("a", "a", l, n + 1, j + 1))
                expr = gammas[j] * xhat + betas[j]
                g.add(Node(out, expr, (xhat, gammas[j], betas[j]), expr))
                row_x.append(xhat)
                row_a.append(out)
            xhats.append(tuple(row_x))
            outs.append(tuple(row_a))
        if self.over == "examples":
            mu_grid = (tuple(mus[0, j] for j in range(units)),)
            var_grid = (tuple(variances[0, j] for j in range(units)),)
        else:
            mu_grid = tuple((mus[n, 0],) for n in range(batch))
            var_grid = tuple((variances[n, 0],) for n in range(batch))
        xhat_grid, out_grid = tuple(xhats), tuple(outs)
        return Layer(
            l, self.name, self.title(stage), previous, out_grid, {f"gamma{l}": gammas, f"beta{l}": betas},
            forward={f"Mu{l}": mu_grid, f"Var{l}": var_grid, f"Xh{l}": xhat_grid, f"A{l}": out_grid},
            # Batch norm's compact backward never forms ∂L/∂x̂ as an array (see ``backward``); layer norm's does.
            backward={f"H{l}": xhat_grid} if self.over == "units" else {}, leaves={},
            nodes=tuple(nodes) + tuple(s for n in range(batch) for s in (*xhat_grid[n], *out_grid[n])),
            array_words={f"gamma{l}": f"scales γ of layer {l}", f"beta{l}": f"shifts β of layer {l}"},
        )  # fmt: skip

    # Batch-level rules -----------------------------------------------------------------

    def _shape(self, r, stage):
        return (1, stage.units) if self.over == "examples" else (r.N, 1)

    def forward(self, stage, r, training):
        l, s = stage.number, r.name(stage.source)
        eps = sp.Symbol(f"epsilon_l{l}", real=True)
        r.constants[eps] = self._eps(stage.spec, stage.where)
        rstd = r.kernel(f"k_rstd{l}", (V,), 1 / sp.sqrt(V + eps), f"1/√(σ² + ε) of layer {l}")
        rows, cols = self._shape(r, stage)
        Mu = r.matrix(f"Mu{l}", rows, cols, Notation("\\mu", "μ", l))
        Var = r.matrix(f"Var{l}", rows, cols, Notation("{\\sigma^{2}}", "σ²", l))
        Xh = r.matrix(f"Xh{l}", r.N, stage.units, Notation("\\hat{X}", "X̂", l))
        A_ = r.matrix(f"A{l}", r.N, stage.units, Notation("A", "A", l))
        gamma = r.matrix(f"gamma{l}", stage.units, 1, Notation("\\gamma", "γ", l))
        beta = r.matrix(f"beta{l}", stage.units, 1, Notation("\\beta", "β", l))
        mean_of = "the mean over the batch, per unit" if self.over == "examples" else "the mean over the units, per example"
        if training or self.over == "units":
            if self.over == "examples":
                # Σ over the batch as ones @ A: a matrix-vector product beats A.mean(axis=0) at these sizes.
                mean, variance = f"(ones @ {s}) / n", f"(ones @ (C{l} * C{l})) / n"
            else:
                mean, variance = f"{s}.mean(axis=1, keepdims=True)", f"(C{l} * C{l}).mean(axis=1, keepdims=True)"
            r.forward("normalize", l, Mu, Mu, f"Mu{l} = {mean}", mean_of)
            r.forward("normalize", l, Var, Var, f"C{l} = {s} - Mu{l}\nVar{l} = {variance}",
                      "the variance, dividing by the count (not count − 1)")
            r.forward("normalize", l, Xh, Xh, f"R{l} = {rstd}(Var{l})\nXh{l} = C{l} * R{l}", "centered and scaled to variance 1")
            if training and self.state(stage):
                momentum = float(stage.spec.momentum)
                r.forward("state", l, Mu, Mu, (
                    "if n < 2:\n"
                    "    raise ValueError(\"batch norm needs at least 2 examples per batch in training\")\n"
                    "if state is not None:\n"
                    f"    state[\"mean{l}\"] = {1 - momentum!r} * state[\"mean{l}\"] + {momentum!r} * Mu{l}\n"
                    f"    state[\"var{l}\"] = {1 - momentum!r} * state[\"var{l}\"] + {momentum!r} * Var{l} * (n / (n - 1))"
                ), f"running statistics for evaluation, momentum {momentum:g}; their variance divides by n − 1, as PyTorch's does")  # fmt: skip
        else:  # evaluation: the running statistics stand in for the batch's
            r.forward("normalize", l, Xh, Xh, (
                "if state is None:\n"
                "    raise ValueError(\"batch norm evaluates with its running statistics: pass state= (model.init_state() or the state training updated)\")\n"
                f"Xh{l} = ({s} - state[\"mean{l}\"]) * {rstd}(state[\"var{l}\"])"),
                      "evaluation: the running mean and variance in place of the batch's")
        r.forward("normalize", l, A_, sp.HadamardProduct(Xh, r.ones * gamma.T) + r.ones * beta.T,
                  f"A{l} = Xh{l} * gamma{l} + beta{l}", "scaled by γ and shifted by β, unit by unit")

    def planted_bugs(self, stage, rules):
        """μ and σ² held constant in the backward: ∂L/∂a = γ ∂L/∂a⁽ˡ⁾/√(σ² + ε), without the terms through them."""
        l, up = stage.number, superscript(stage.number)
        if self.over == "examples":
            old, new = f"(G{l} - (gbeta{l} + Xh{l} * ggamma{l}) / n) * (gamma{l} * R{l})", f"G{l} * (gamma{l} * R{l})"
        else:
            old = f"(H{l} - H{l}.mean(axis=1, keepdims=True) - Xh{l} * (H{l} * Xh{l}).mean(axis=1, keepdims=True)) * R{l}"
            new = f"H{l} * R{l}"
        broken = with_backward_code(rules, f"G{stage.source}", old, new)
        words = (f"the {self.words} backward of layer {l} treats μ⁽{up}⁾ and σ²⁽{up}⁾ as constants: ∂L/∂a misses "
                 f"the terms through the mean and the variance (∂L/∂a = γ/√(σ² + ε) ⊙ (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)))")
        return [] if broken is None else [(words, broken)]

    def _compact(self, r, stage, H, Xh, R):
        """(H − mean(H) − X̂ ⊙ mean(H ⊙ X̂)) ⊙ r as a matrix expression, the means over each example's units."""
        units = r.matrix(f"ones_{stage.units}", stage.units, 1, Notation("\\mathbf{1}", "𝟏"))

        def mean(M):
            return M * units * units.T / stage.units

        centered = H - mean(H) - sp.HadamardProduct(Xh, mean(sp.HadamardProduct(H, Xh)))
        return sp.HadamardProduct(centered, R * units.T)

    def backward(self, stage, r):
        l = stage.number
        G = r.gradient(l)
        Xh = r.matrix(f"Xh{l}", r.N, stage.units, Notation("\\hat{X}", "X̂", l))
        ggamma = r.matrix(f"ggamma{l}", stage.units, 1, Notation("\\gamma", "γ", l, of="L"))
        gbeta = r.matrix(f"gbeta{l}", stage.units, 1, Notation("\\beta", "β", l, of="L"))
        r.backward("parameter", l, ggamma, sp.HadamardProduct(G, Xh).T * r.ones, f"ggamma{l} = ones @ (G{l} * Xh{l})", "a sum over the batch")
        r.backward("parameter", l, gbeta, G.T * r.ones, f"gbeta{l} = ones @ G{l}", "a sum over the batch")
        gamma = r.matrix(f"gamma{l}", stage.units, 1, Notation("\\gamma", "γ", l))
        R = r.matrix(f"R{l}", *self._shape(r, stage), Notation("r", "r", l))
        if self.over == "examples":
            # h = γ ⊙ ∂L/∂a⁽ˡ⁾ sums over the batch to γ ⊙ ∂L/∂β, and h ⊙ x̂ to γ ⊙ ∂L/∂γ: the compact
            # backward reuses the parameter gradients just computed instead of summing again.
            if r.needs_gradient(stage.source):
                code = f"(G{l} - (gbeta{l} + Xh{l} * ggamma{l}) / n) * (gamma{l} * R{l})"
                rows = r.ones * gbeta.T + sp.HadamardProduct(Xh, r.ones * ggamma.T)
                expr = sp.HadamardProduct(G - rows / r.N, r.ones * sp.HadamardProduct(gamma.T, R))
                r.contribute(stage.source, code, expr, "normalize",
                             f"the compact {self.words} backward: γ/√(σ² + ε) ⊙ (g − (Σ g + x̂ ⊙ Σ g ⊙ x̂)/N), "
                             "the sums over the batch being ∂L/∂β and ∂L/∂γ")
            return
        H = r.matrix(f"H{l}", r.N, stage.units, Notation("\\hat{X}", "X̂", l, of="L"))
        r.backward("normalize", l, H, sp.HadamardProduct(G, r.ones * gamma.T), f"H{l} = G{l} * gamma{l}", "∂L/∂x̂ = γ ∂L/∂a")
        if r.needs_gradient(stage.source):
            code = f"(H{l} - H{l}.mean(axis=1, keepdims=True) - Xh{l} * (H{l} * Xh{l}).mean(axis=1, keepdims=True)) * R{l}"
            r.contribute(stage.source, code, self._compact(r, stage, H, Xh, R), "normalize",
                         f"the compact {self.words} backward: (h − mean(h) − x̂ ⊙ mean(h ⊙ x̂)) / √(σ² + ε), the mean over the units")
