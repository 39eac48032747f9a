"""Differentiation rules as data: the step-by-step derivative of any SymPy expression.

Modelled on SymPy's ``manualintegrate``: each rule is a small frozen dataclass whose
docstring is the identity it applies, whose fields are expressions and substeps, and whose
``eval()`` computes the derivative from the substeps. ``derivative_steps`` chooses the rules
(a dispatch table from SymPy class to builder, ``BUILDERS`` at the bottom); renderers only
read the tree, in the order ``walk`` gives. The product and quotient rules name their parts
(u, v) and keep the form with the parts plugged in; a derivative with a familiar form
(σ(u)(1 − σ(u)), one entry of ``FAMILIAR_FORMS`` each) gets there by lines of algebra,
``Rewrite``s, each equal to the line before it (``rewrite_holds``).

>>> from sympy import Symbol, sin
>>> x = Symbol("x", real=True)
>>> [type(step).__name__ for step in walk(derivative_steps(x**2 * sin(x), x))]
['ProductRule', 'PowerRule', 'TrigRule']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import sympy as sp

from .algebra import FAMILIAR_FORMS, FamiliarForm, Rewrite, fraction, in_order
from .functions import logsumexp, relu, sigmoid, softplus, xdivy, xlogy

#: Simplification is only attempted up to this size (``count_ops``); beyond it SymPy is slow.
SIMPLIFY_LIMIT = 40


@dataclass(frozen=True)
class Rule:
    """d/dx f = f′, the derivative of ``expr`` with respect to ``variable``."""

    title: ClassVar[str] = "derivative"
    #: True for a rule that rewrites a derivative already found (its one substep's result):
    #: it is logically after that substep, and documents show it there.
    rewrites: ClassVar[bool] = False
    expr: sp.Expr
    variable: sp.Symbol
    #: The derivative; filled in from ``eval()`` when the step is made.
    result: sp.Expr = field(default=None, kw_only=True)

    def __post_init__(self):
        if self.result is None:
            object.__setattr__(self, "result", self.eval())

    @property
    def identity(self) -> str:
        """The identity this rule applies, in plain text (the class docstring)."""
        return type(self).__doc__

    def eval(self) -> sp.Expr:
        raise NotImplementedError


@dataclass(frozen=True)
class ConstantRule(Rule):
    """d/dx c = 0 for c not depending on x"""
    title = "constant rule"

    def eval(self):
        return sp.S.Zero


@dataclass(frozen=True)
class VariableRule(Rule):
    """d/dx x = 1"""
    title = "variable rule"

    def eval(self):
        return sp.S.One


@dataclass(frozen=True)
class ConstantMultipleRule(Rule):
    """d/dx (c·u) = c·u′"""
    title = "constant multiple rule"
    constant: sp.Expr
    other: sp.Expr
    substep: Rule

    def eval(self):
        return self.constant * self.substep.eval()


@dataclass(frozen=True)
class SumRule(Rule):
    """d/dx (u₁ + … + uₙ) = u₁′ + … + uₙ′"""
    title = "sum rule"
    substeps: tuple[Rule, ...]

    def eval(self):
        return sp.Add(*[step.eval() for step in self.substeps])


@dataclass(frozen=True)
class ProductRule(Rule):
    """d/dx (u₁·…·uₙ) = Σᵢ u₁·…·uᵢ′·…·uₙ, e.g. d/dx (u·v) = u′·v + u·v′"""
    title = "product rule"
    factors: tuple[sp.Expr, ...]
    substeps: tuple[Rule, ...]
    #: What the factors are called (u, v), names that the formula and the steps inside do not use.
    names: tuple[sp.Symbol, ...] = ()

    def eval(self):
        return sp.Add(*[
            sp.Mul(*self.factors[:i], step.eval(), *self.factors[i + 1:])
            for i, step in enumerate(self.substeps)
        ])

    @property
    def identity(self) -> str:
        return "d/dx (u·v) = u′·v + u·v′" if len(self.factors) == 2 else type(self).__doc__

    @property
    def in_names(self) -> sp.Expr:
        """u′·v + u·v′ in the names of the factors, in that order."""
        primes = [_prime(n) for n in self.names]
        return in_order(sp.Add(*[
            sp.Mul(*self.names[:i], primes[i], *self.names[i + 1:], evaluate=False)
            for i in range(len(self.names))
        ], evaluate=False))

    @property
    def plugged(self) -> sp.Expr:
        """u′·v + u·v′ with the factors and their derivatives put in, term by term in that order."""
        return in_order(sp.Add(*[
            sp.Mul(*self.factors[:i], step.result, *self.factors[i + 1:])
            for i, step in enumerate(self.substeps)
        ], evaluate=False))


@dataclass(frozen=True)
class QuotientRule(Rule):
    """d/dx (u/v) = (u′·v − u·v′)/v²"""
    title = "quotient rule"
    numerator: sp.Expr
    denominator: sp.Expr
    substeps: tuple[Rule, Rule]
    #: What numerator and denominator are called (u, v), names the formula does not use.
    names: tuple[sp.Symbol, sp.Symbol] = ()

    def eval(self):
        u, v = self.numerator, self.denominator
        du, dv = (step.eval() for step in self.substeps)
        return (du * v - u * dv) / v**2

    @property
    def in_names(self) -> sp.Expr:
        """(u′·v − u·v′)/v² in the names of numerator and denominator."""
        u, v = self.names
        return in_order(fraction(sp.Add(sp.Mul(_prime(u), v, evaluate=False), sp.Mul(-1, u, _prime(v), evaluate=False),
                                          evaluate=False), sp.Pow(v, 2, evaluate=False)))

    @property
    def plugged(self) -> sp.Expr:
        """(u′·v − u·v′)/v² with u, v and their derivatives put in: each product worked out, v² not yet."""
        u, v = self.numerator, self.denominator
        du, dv = (step.result for step in self.substeps)
        return in_order(fraction(sp.Add(du * v, -(u * dv), evaluate=False), sp.Pow(v, 2, evaluate=False)))


def _prime(name: sp.Symbol) -> sp.Symbol:
    """u′, the derivative of a part called u, as a name of its own (printed u')."""
    return sp.Symbol(f"{name.name}'")


@dataclass(frozen=True)
class PowerRule(Rule):
    """d/dx xⁿ = n·xⁿ⁻¹ for constant n"""
    title = "power rule"
    base: sp.Expr
    exp: sp.Expr

    def eval(self):
        return self.exp * self.base ** (self.exp - 1)


@dataclass(frozen=True)
class SqrtRule(PowerRule):
    """d/dx √x = d/dx x^(1/2) = 1/(2·√x)"""
    title = "power rule for the square root, √x = x^(1/2)"


@dataclass(frozen=True)
class ExponentialRule(Rule):
    """d/dx aˣ = aˣ·ln a, so d/dx eˣ = eˣ"""
    title = "exponential rule"
    base: sp.Expr
    exp: sp.Expr

    def eval(self):
        return self.expr * sp.log(self.base)


@dataclass(frozen=True)
class GeneralPowerRule(Rule):
    """d/dx uᵛ = uᵛ·(v′·ln u + v·u′/u)"""
    title = "general power rule"
    base: sp.Expr
    exp: sp.Expr
    substeps: tuple[Rule, Rule]

    def eval(self):
        du, dv = (step.eval() for step in self.substeps)
        return self.expr * (dv * sp.log(self.base) + self.exp * du / self.base)


@dataclass(frozen=True)
class ChainRule(Rule):
    """d/dx f(g(x)) = f′(u)·g′(x) with u = g(x)"""
    title = "chain rule"
    u: sp.Symbol
    inner: sp.Expr
    outer: Rule
    substep: Rule

    def eval(self):
        return self.outer.eval().xreplace({self.u: self.inner}) * self.substep.eval()


#: f -> f′ as a function of f's argument, one line per primitive (like autograd's defvjp);
#: the values are SymPy's own, so step results equal ``sympy.diff`` term for term.
DERIVATIVES = {
    sp.log: lambda u: 1 / u,
    sp.sin: sp.cos,
    sp.cos: lambda u: -sp.sin(u),
    sp.tan: lambda u: 1 + sp.tan(u) ** 2,
    sp.asin: lambda u: 1 / sp.sqrt(1 - u**2),
    sp.acos: lambda u: -1 / sp.sqrt(1 - u**2),
    sp.atan: lambda u: 1 / (1 + u**2),
    sp.sinh: sp.cosh,
    sp.cosh: sp.sinh,
    sp.tanh: lambda u: 1 - sp.tanh(u) ** 2,
    sp.Abs: sp.sign,
    sp.Heaviside: sp.DiracDelta,
    sp.sign: lambda u: 2 * sp.DiracDelta(u),
    sp.erf: lambda u: 2 * sp.exp(-(u**2)) / sp.sqrt(sp.pi),
    sigmoid: lambda u: sigmoid(u) * (1 - sigmoid(u)),
    softplus: sigmoid,
    relu: lambda u: sp.Heaviside(u, 0),
}


@dataclass(frozen=True)
class _FunctionRule(Rule):
    """d/dx f(x) = f′(x) for f applied to the variable itself; f(g(x)) goes by ChainRule"""
    arg: sp.Expr

    def eval(self):
        return DERIVATIVES[self.expr.func](self.arg)

    @property
    def identity(self) -> str:
        """The one line of the docstring's list that is about this function (sin′ = cos)."""
        name = self.expr.func.__name__
        parts = [part.strip() for part in type(self).__doc__.split(",")]
        mine = [part for part in parts if part.startswith(f"{name}′")]
        return mine[0] if len(parts) > 1 and mine else type(self).__doc__


@dataclass(frozen=True)
class LogRule(_FunctionRule):
    """d/dx ln x = 1/x"""
    title = "logarithm rule"


@dataclass(frozen=True)
class TrigRule(_FunctionRule):
    """sin′ = cos, cos′ = −sin, tan′ = 1 + tan², asin′ = 1/√(1 − x²), acos′ = −1/√(1 − x²), atan′ = 1/(1 + x²)"""
    title = "trigonometric rule"


@dataclass(frozen=True)
class HyperbolicRule(_FunctionRule):
    """sinh′ = cosh, cosh′ = sinh, tanh′ = 1 − tanh²"""
    title = "hyperbolic rule"


@dataclass(frozen=True)
class AbsRule(_FunctionRule):
    """d/dx |x| = sign(x) for real x, with sign(0) = 0 as in PyTorch"""
    title = "absolute value rule"


@dataclass(frozen=True)
class HeavisideRule(_FunctionRule):
    """d/dx H(x) = δ(x): zero away from the step at 0"""
    title = "Heaviside step rule"

    @property
    def identity(self) -> str:
        # step(x), relu's slope, is Heaviside(x, 0): the same rule, under the name it is printed with.
        if len(self.expr.args) == 2 and self.expr.args[1] == 0:
            return "d/dx step(x) = δ(x): zero away from the step at 0"
        return super().identity


@dataclass(frozen=True)
class SignRule(_FunctionRule):
    """d/dx sign(x) = 2·δ(x): zero away from the jump at 0"""
    title = "sign rule"


@dataclass(frozen=True)
class ErfRule(_FunctionRule):
    """d/dx erf(x) = 2·e^(−x²)/√π"""
    title = "error function rule"


@dataclass(frozen=True)
class SigmoidRule(_FunctionRule):
    """d/dx σ(x) = σ(x)·(1 − σ(x))"""
    title = "sigmoid rule"


@dataclass(frozen=True)
class SoftplusRule(_FunctionRule):
    """d/dx softplus(x) = σ(x)"""
    title = "softplus rule"


@dataclass(frozen=True)
class ReluRule(_FunctionRule):
    """d/dx relu(x) = step(x): 1 for x > 0, 0 for x ≤ 0 (relu′(0) = 0, as in PyTorch)"""
    title = "relu rule"


@dataclass(frozen=True)
class _MultivariateRule(Rule):
    """d/dx f(a₁, …, aₙ) = Σᵢ ∂f/∂aᵢ · aᵢ′ (sums only over arguments that depend on x)"""

    #: A step for each distinct argument that depends on x and is not x itself.
    substeps: tuple[Rule, ...]

    def partial(self, i: int) -> sp.Expr:
        raise NotImplementedError

    def eval(self):
        inner = {step.expr: step.eval() for step in self.substeps}
        return sp.Add(*[
            self.partial(i) * inner.get(a, sp.S.One)
            for i, a in enumerate(self.expr.args) if self.variable in a.free_symbols
        ])


@dataclass(frozen=True)
class MaxMinRule(_MultivariateRule):
    """∂/∂a max(a, b) = H(a − b), ∂/∂a min(a, b) = H(b − a)"""
    title = "max/min rule"

    def partial(self, i):
        args = self.expr.args
        rest = args[:i] + args[i + 1:]
        rest = rest[0] if len(rest) == 1 else self.expr.func(*rest)
        if self.expr.func == sp.Max:
            return sp.Heaviside(args[i] - rest)
        return sp.Heaviside(rest - args[i])


@dataclass(frozen=True)
class LogSumExpRule(_MultivariateRule):
    """∂/∂aᵢ log Σⱼ exp(aⱼ) = exp(aᵢ − logsumexp(a)), the softmax"""
    title = "log-sum-exp rule"

    def partial(self, i):
        return sp.exp(self.expr.args[i] - self.expr)


@dataclass(frozen=True)
class XlogyRule(_MultivariateRule):
    """∂/∂a xlogy(a, b) = log b, ∂/∂b xlogy(a, b) = a/b (taken as 0 where a = 0)"""
    title = "xlogy rule"

    def partial(self, i):
        a, b = self.expr.args
        return sp.log(b) if i == 0 else xdivy(a, b)


@dataclass(frozen=True)
class PiecewiseRule(Rule):
    """d/dx {fᵢ(x) if cᵢ} = {fᵢ′(x) if cᵢ}: at a kink, the branch whose condition holds"""
    title = "piecewise rule"
    substeps: tuple[Rule, ...]

    def eval(self):
        conditions = [c for _, c in self.expr.args]
        return sp.Piecewise(*[(s.eval(), c) for s, c in zip(self.substeps, conditions)])


@dataclass(frozen=True)
class SimplifyRule(Rule):
    """f′ = g, the same derivative written shorter (simplify(f′ − g) = 0)"""
    title = "simplification"
    rewrites = True
    substep: Rule
    simplified: sp.Expr

    def eval(self):
        return self.simplified


@dataclass(frozen=True)
class FamiliarFormRule(Rule):
    """f′ = c·F(u) by the algebra below; checked by machine: simplify(f′ − c·F(u)) = 0"""
    title = "familiar form"
    rewrites = True
    substep: Rule
    name: str
    form: sp.Expr
    #: The lines of algebra from the substep's result to ``form``, as a student writes them.
    algebra: tuple[Rewrite, ...] = ()

    def eval(self):
        return self.form


@dataclass(frozen=True)
class FallbackRule(Rule):
    """d/dx f = f′ as SymPy's diff computes it"""
    title = "SymPy's derivative"

    def eval(self):
        return sp.diff(self.expr, self.variable)


def derivative_steps(expr: sp.Expr, variable: sp.Symbol) -> Rule:
    """The step tree of d expr/d variable, simplified and in a familiar form when one fits.

    >>> from sympy import Symbol, exp
    >>> x = Symbol("x", real=True)
    >>> steps = derivative_steps(1 / (1 + exp(-x)), x)
    >>> type(steps).__name__, steps.result
    ('FamiliarFormRule', (1 - sigmoid(x))*sigmoid(x))
    """
    # Plain numbers only: text never becomes an expression here (that is chainrule.expr's job).
    expr = sp.Integer(expr) if isinstance(expr, int) else expr
    taken = frozenset(s.name for s in expr.free_symbols)
    rule = _build(expr, variable, taken)
    familiar = _familiar(rule)
    if familiar is not rule:  # σ(x)(1 − σ(x)) says more than any simplified exp form
        return familiar
    return _familiar(_simplified(rule))


def derivative(expr: sp.Expr, variable: sp.Symbol) -> sp.Expr:
    """d expr/d variable, as the step tree computes it.

    >>> from sympy import Symbol, tanh
    >>> x = Symbol("x", real=True)
    >>> derivative(tanh(x), x)
    1 - tanh(x)**2
    """
    return derivative_steps(expr, variable).result


def walk(rule: Rule) -> Iterator[Rule]:
    """The steps of a tree in reading order (pre-order: a step, then its substeps).

    >>> from sympy import Symbol
    >>> x = Symbol("x", real=True)
    >>> [step.title for step in walk(derivative_steps(3 * x**2, x))]
    ['constant multiple rule', 'power rule']
    """
    yield rule
    for child in children(rule):
        yield from walk(child)


def children(rule: Rule) -> list[Rule]:
    """The substeps a rule uses, in the order of its fields (outer before inner for a chain)."""
    found = []
    for f in dataclasses.fields(rule):
        value = getattr(rule, f.name)
        found.extend(c for c in (value if isinstance(value, tuple) else (value,)) if isinstance(c, Rule))
    return found


def _build(expr, variable, taken) -> Rule:
    # ``taken`` holds the symbol names in use, so each chain's u gets a fresh name.
    if variable not in expr.free_symbols:
        return ConstantRule(expr, variable)
    if expr == variable:
        return VariableRule(expr, variable)
    for cls in type(expr).__mro__:
        if cls in BUILDERS:
            rule = BUILDERS[cls](expr, variable, taken)
            if rule is not None:
                return rule
            break
    return FallbackRule(expr, variable)


def _chain(expr, variable, taken, inner, outer):
    """f(inner) for inner ≠ x: the rule for ``outer(u)`` in a fresh u, times d inner/dx."""
    name = next(n for n in ("u", "v", "s", "t", *(f"u_{i}" for i in range(1, 99)))
                if n not in taken)
    u = sp.Symbol(name, real=True) if inner.is_real else sp.Symbol(name)
    taken = taken | {name}
    return ChainRule(expr, variable, u, inner, _build(outer(u), u, taken),
                     _build(inner, variable, taken))


def _unary(rule_class, real_only=False):
    """A builder for f(arg): the function rule on x itself, the chain rule otherwise."""

    def build(expr, variable, taken):
        arg, *params = expr.args
        if real_only and not arg.is_extended_real:
            return None  # |z| of a complex z is not sign(z)·z′; let SymPy say what it is
        if arg == variable:
            return rule_class(expr, variable, arg)
        return _chain(expr, variable, taken, arg, lambda u: expr.func(u, *params))

    return build


def _add(expr, variable, taken):
    terms = [t for t in expr.args if variable in t.free_symbols]
    constants = [t for t in expr.args if variable not in t.free_symbols]
    steps = [_build(t, variable, taken) for t in terms]
    if constants:  # one step for every term that vanishes, not one each
        steps.append(ConstantRule(sp.Add(*constants), variable))
    return SumRule(expr, variable, tuple(steps))


def _mul(expr, variable, taken):
    constant, other = expr.as_independent(variable, as_Add=False)
    if constant != 1:
        return ConstantMultipleRule(expr, variable, constant, other,
                                    _build(other, variable, taken))
    numerator, denominator = [], []
    for f in expr.args:
        # SymPy keeps u/v as u·v⁻¹; a factor with a negative constant power is a denominator.
        if f.is_Pow and variable not in f.exp.free_symbols and f.exp.could_extract_minus_sign():
            denominator.append(f.base ** -f.exp)
        else:
            numerator.append(f)
    if numerator and denominator:
        u, v = sp.Mul(*numerator), sp.Mul(*denominator)
        names = _fresh(taken, 2)
        taken = taken | {n.name for n in names}
        return QuotientRule(expr, variable, u, v,
                            (_build(u, variable, taken), _build(v, variable, taken)), names)
    names = _fresh(taken, len(expr.args))
    taken = taken | {n.name for n in names}
    return ProductRule(expr, variable, expr.args,
                       tuple(_build(f, variable, taken) for f in expr.args), names)


def _fresh(taken, count: int) -> tuple[sp.Symbol, ...]:
    """``count`` names for the parts of a product or quotient: u, v, w, … where the formula leaves them free."""
    supply = ("u", "v", "w", "s", "t", "p", "q", "r", *(f"u_{i}" for i in range(1, 99)))
    return tuple(sp.Symbol(n) for n in [n for n in supply if n not in taken][:count])


def _pow(expr, variable, taken):
    base, exp = expr.args
    if variable not in exp.free_symbols:
        if base == variable:
            return (SqrtRule if exp == sp.S.Half else PowerRule)(expr, variable, base, exp)
        return _chain(expr, variable, taken, base, lambda u: u**exp)
    if variable not in base.free_symbols:
        if exp == variable:
            return ExponentialRule(expr, variable, base, exp)
        return _chain(expr, variable, taken, exp, lambda u: base**u)
    return GeneralPowerRule(expr, variable, base, exp,
                            (_build(base, variable, taken), _build(exp, variable, taken)))


def _exp(expr, variable, taken):
    (arg,) = expr.args
    if arg == variable:
        return ExponentialRule(expr, variable, sp.E, arg)
    return _chain(expr, variable, taken, arg, sp.exp)


def _multivariate(rule_class):
    def build(expr, variable, taken):
        args = dict.fromkeys(a for a in expr.args if variable in a.free_symbols and a != variable)
        return rule_class(expr, variable, tuple(_build(a, variable, taken) for a in args))

    return build


def _piecewise(expr, variable, taken):
    return PiecewiseRule(expr, variable, tuple(_build(e, variable, taken) for e, _ in expr.args))


def _size(e):
    return sp.count_ops(e)


def _simplified(rule):
    """The rule, followed by a SimplifyRule when cancel, factor or simplify shortens it."""
    raw = rule.result
    size = _size(raw)
    if size < 2 or size > SIMPLIFY_LIMIT or raw.has(sp.Piecewise):
        return rule
    # simplify splits |x|/x and the like into cases (with nan at 0); that is no simpler to read.
    shorter = [e for e in (sp.cancel(raw), sp.factor(raw), sp.simplify(raw))
               if not e.has(sp.Piecewise, sp.nan)]
    best = min(shorter, key=_size, default=raw)
    # Factoring out one symbol is not worth a step; a teacher simplifies when it pays.
    if _size(best) > min(size - 2, 0.8 * size):
        return rule
    return SimplifyRule(rule.expr, rule.variable, rule, best)


def _equal(a, b, u=None):
    """Proven equal: the difference, with σ and tanh written by exponentials, is 0.

    Where every exponential is exp(k·u) with k rational, writing each as tᵏ makes the
    difference a rational function of t (and the other symbols); ``cancel`` reducing it to
    0 proves it 0 for every t, so for t = eᵘ. That is fast; ``simplify`` is the fallback.
    """
    diff = (a - b).rewrite(sp.exp)
    if u is not None:
        t = sp.Dummy("t", positive=True)
        powers = {}
        for e in diff.atoms(sp.exp):
            k = sp.cancel(e.args[0] / u)
            if not k.is_Rational:
                break
            powers[e] = t**k
        else:
            if sp.cancel(diff.xreplace(powers)) == 0:
                return True
    return sp.simplify(diff) == 0


def _factor_of(raw, form, u):
    """c with raw = c·form(u) and c free of exp, or None.

    Writing every exp(k·u) as tᵏ turns the question into one about rational functions
    of t, which ``cancel`` answers quickly; only then is the proof attempted.
    """
    t = sp.Dummy("t", positive=True)
    ratio = (raw / form).rewrite(sp.exp)
    powers = {}
    for e in ratio.atoms(sp.exp):
        k = sp.cancel(e.args[0] / u)
        if not k.is_Rational:
            return None
        powers[e] = t**k
    c = sp.cancel(ratio.xreplace(powers))
    if t in c.free_symbols or c.has(sp.exp) or c == 0:
        return None
    return sp.factor(c)


def _familiar(rule):
    """The rule, followed by a FamiliarFormRule when its result is c·F(u) for a familiar F."""
    raw = rule.result
    if not raw.has(sp.exp) or raw.has(sp.Piecewise) or _size(raw) > SIMPLIFY_LIMIT:
        return rule
    exponents = [e.args[0] for e in (rule.expr.atoms(sp.exp) | raw.atoms(sp.exp))]
    candidates = dict.fromkeys(
        u for a in sorted(exponents, key=sp.default_sort_key)
        for u in sorted((a, -a), key=lambda u: u.could_extract_minus_sign())
    )
    for u in candidates:
        for entry in FAMILIAR_FORMS.values():
            form = entry.form(u)
            c = _factor_of(raw, form, u)
            if c is not None and _equal(raw, c * form, u):
                return FamiliarFormRule(rule.expr, rule.variable, rule, entry.name, c * form, _algebra(entry, raw, c, u))
    return rule


def _algebra(entry: FamiliarForm, raw: sp.Expr, c: sp.Expr, u: sp.Expr) -> tuple[Rewrite, ...]:
    """The lines from ``raw`` to c·F(u): the route that starts where the rules ended, else the
    one whose exponentials have raw's signs, opened by a rearranging line proven like the form."""
    routes = [route(u, c) for route in entry.routes]
    for start, steps in routes:
        if start == raw:
            return steps
    signs = {sp.sign(sp.cancel(e.args[0] / u)) for e in raw.atoms(sp.exp)}
    start, steps = next((r for r in routes if {sp.sign(sp.cancel(e.args[0] / u)) for e in r[0].atoms(sp.exp)} == signs), routes[0])
    if not _equal(raw, start, u):
        return ()
    return (Rewrite(start, "multiplying out and cancelling", ("the same function of eᵘ, in lowest terms",)), *steps)


#: SymPy class -> builder, looked up along the class's MRO; anything else gets FallbackRule.
BUILDERS = {
    sp.Add: _add,
    sp.Mul: _mul,
    sp.Pow: _pow,
    sp.exp: _exp,
    sp.log: _unary(LogRule),
    sp.sin: _unary(TrigRule),
    sp.cos: _unary(TrigRule),
    sp.tan: _unary(TrigRule),
    sp.asin: _unary(TrigRule),
    sp.acos: _unary(TrigRule),
    sp.atan: _unary(TrigRule),
    sp.sinh: _unary(HyperbolicRule),
    sp.cosh: _unary(HyperbolicRule),
    sp.tanh: _unary(HyperbolicRule),
    sp.Abs: _unary(AbsRule, real_only=True),
    sp.Heaviside: _unary(HeavisideRule),
    sp.sign: _unary(SignRule),
    sp.erf: _unary(ErfRule),
    sigmoid: _unary(SigmoidRule),
    softplus: _unary(SoftplusRule),
    relu: _unary(ReluRule),
    sp.Max: _multivariate(MaxMinRule),
    sp.Min: _multivariate(MaxMinRule),
    logsumexp: _multivariate(LogSumExpRule),
    xlogy: _multivariate(XlogyRule),
    sp.Piecewise: _piecewise,
}
