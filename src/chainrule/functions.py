"""Named functions that SymPy lacks: σ, softplus, relu, log-sum-exp, xlogy, xdivy and log cosh.

Each is a SymPy ``Function`` with its derivative (``fdiff``), so ``sympy.diff`` and the
rules in ``chainrule.rules`` agree on it, and a ``rewrite(exp)``/``rewrite(log)`` to the
elementary formula documents explain it by. Keeping them named keeps derivatives short
(σ' = σ(1 - σ)) and lets the NumPy code use stable forms (``chainrule.stable``) that stay
finite where the textbook formula overflows (σ(-1000), softplus(1000), log Σ exp of large
logits). This module imports SymPy only, so documents can be rendered without NumPy.

>>> from sympy import Symbol, diff
>>> x = Symbol("x", real=True)
>>> diff(sigmoid(x), x)
(1 - sigmoid(x))*sigmoid(x)
>>> sigmoid(x).rewrite("exp")
1/(1 + exp(-x))
>>> diff(softplus(x), x)
sigmoid(x)
"""

from __future__ import annotations

import sympy as sp


class sigmoid(sp.Function):
    """σ(x) = 1/(1 + e⁻ˣ), the logistic function."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Rational(1, 2)
        return None

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0]) * (1 - sigmoid(self.args[0]))

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return self.args[0].is_real


class softplus(sp.Function):
    """softplus(x) = log(1 + eˣ), a smooth relu."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.log(2)
        return None

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))

    _eval_rewrite_as_log = _eval_rewrite_as_exp

    def _eval_evalf(self, prec):
        return self.rewrite(sp.exp)._eval_evalf(prec)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return self.args[0].is_real


class logsumexp(sp.Function):
    """logsumexp(x₁, …, xₙ) = log Σᵢ exp(xᵢ), the normalizer of softmax."""

    @classmethod
    def eval(cls, *args):
        if len(args) == 0:
            raise TypeError("logsumexp takes at least one argument")

    def fdiff(self, argindex=1):
        return sp.exp(self.args[argindex - 1] - self)

    def _eval_rewrite_as_exp(self, *args, **kwargs):
        return sp.log(sp.Add(*[sp.exp(a) for a in args]))

    _eval_rewrite_as_log = _eval_rewrite_as_exp

    def _eval_evalf(self, prec):
        return self.rewrite(sp.exp)._eval_evalf(prec)

    def _eval_is_real(self):
        return all(a.is_real for a in self.args) or None


class relu(sp.Function):
    """relu(u) = max(u, 0), whose derivative is step(u): relu'(0) = 0, as in PyTorch."""

    nargs = 1

    @classmethod
    def eval(cls, u):
        if u.is_nonpositive:
            return sp.S.Zero
        if u.is_nonnegative:
            return u
        return None

    def fdiff(self, argindex=1):
        return sp.Heaviside(self.args[0], 0)

    def _eval_rewrite_as_Max(self, u, **kwargs):
        return sp.Max(u, 0)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_nonnegative(self):
        return self.args[0].is_real


class xlogy(sp.Function):
    """xlogy(x, y) = x·log(y), taken as 0 where x = 0 (so 0·log 0 = 0 in cross-entropy)."""

    nargs = 2

    @classmethod
    def eval(cls, x, y):
        if x.is_zero:
            return sp.Integer(0)
        return None

    def fdiff(self, argindex=1):
        x, y = self.args
        # x/y, but 0 where x = 0 like xlogy itself: a zero target never divides by an output
        # that underflowed to 0 (softmax of a very negative logit).
        return sp.log(y) if argindex == 1 else xdivy(x, y)

    def _eval_rewrite_as_log(self, x, y, **kwargs):
        return x * sp.log(y)

    def _eval_evalf(self, prec):
        return self.rewrite(sp.log)._eval_evalf(prec)


class xdivy(sp.Function):
    """xdivy(x, y) = x/y, taken as 0 where x = 0; the derivative of xlogy in y."""

    nargs = 2

    @classmethod
    def eval(cls, x, y):
        if x.is_zero:
            return sp.Integer(0)
        return None

    def fdiff(self, argindex=1):
        x, y = self.args
        return 1 / y if argindex == 1 else -x / y**2

    def _eval_rewrite_as_Mul(self, x, y, **kwargs):
        return x / y

    _eval_rewrite_as_exp = _eval_rewrite_as_Mul  # rewrite(exp) writes every named function out

    def _eval_evalf(self, prec):
        return (self.args[0] / self.args[1])._eval_evalf(prec)


class logcosh(sp.Function):
    """logcosh(x) = log(cosh(x)), whose NumPy form stays finite where cosh overflows."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Integer(0)
        return None

    def fdiff(self, argindex=1):
        return sp.tanh(self.args[0])

    def _eval_rewrite_as_cosh(self, x, **kwargs):
        return sp.log(sp.cosh(x))

    def _eval_evalf(self, prec):
        return self.rewrite(sp.cosh)._eval_evalf(prec)

    def _eval_is_real(self):
        return self.args[0].is_real
