"""Text -> SymPy through an AST allowlist: the only way user text becomes math.

A formula is one expression in Python's syntax, cut down to what a formula needs: numbers in
decimal (``3``, ``0.5``, ``1e-3``, kept exact, so ``0.1`` is 1/10), the declared variables (real
symbols), the constants ``pi`` and ``e``, ``+ - * / **``, unary ``-`` and ``+``, parentheses, and
calls of the functions in ``FUNCTIONS`` with exactly their number of arguments. ``^`` is power too:
it is rewritten to ``**`` before parsing, so ``x^2 + 1`` means x² + 1 (Python's ``^`` is xor and
binds looser than ``+``). Python never evaluates the text; ``parse`` walks the tree that
``ast.parse`` returns and builds SymPy objects itself.

Hostile text is refused in milliseconds: the length and the characters are checked first (ASCII
only, since Python NFKC-normalizes identifiers and would read a full-width ``ｘ`` as ``x``), then the
bracket depth (CPython's parser fails on its own near 200 levels), then the size and nesting of
the tree. SymPy evaluates as it builds, and some evaluations never finish (``2**10**29``;
``sign(sin(exp(exp(20))))`` asks for 10⁸ digits), so every constant part is first valued in
floating point on an unevaluated copy and refused unless it is a real number within 2^±1000.
Other evaluations are bounded by rules on the parts: numbers in an exponent are at most 1000; a
power of a number needs at most 1000 bits (SymPy may compute b**p or b**(q - 1) for b**(p/q));
``c*log(a)`` inside ``exp`` has |c| <= 1000 (exp makes it a**c); tanh, erf, sigmoid and softplus of
a constant stop where they equal their limit to 300 digits; and a sum, or a part that may be
complex (log, sqrt, asin of a variable), is raised to at most the 50th power, since heaviside,
dirac and SymPy's assumptions expand ``im()`` of such powers term by term. SymPy's own errors on odd constants become a FormulaError.

``relu`` is a function of its own: ``max(u, 0)`` differentiates to ``heaviside(u)``, which is 1/2
at 0, and ``u*step(u)`` to ``step(u) + u*dirac(u)``; ``relu(u)`` prints back as itself and
differentiates to ``step(u)``, 0 at 0 as in PyTorch.

>>> x = sympy.Symbol("x", real=True)
>>> parse("x^2 + 0.5*relu(x)", ["x"])
x**2 + relu(x)/2
>>> to_formula(sympy.diff(parse("x^2 + 0.5*relu(x)", ["x"]), x))
'2*x + step(x)/2'
"""

from __future__ import annotations

import ast
import functools
import keyword
import math
import operator
import re
from collections.abc import Sequence
from fractions import Fraction

import sympy
from sympy.printing.str import StrPrinter

from . import suggest
from .functions import relu, sigmoid, softplus

MAX_LENGTH = 2000  #: characters of one formula
MAX_DEPTH = 40  #: brackets open at once, checked before ast.parse
MAX_NESTING = 100  #: nesting of the parsed tree; a chain a + b - c (or a*b/c) counts once
MAX_NODES = 500  #: numbers, names, operations and calls in one formula
MAX_DIGITS = 30  #: digits of one number as written
MAX_EXPONENT = 1000  #: size of any number in an exponent
MAX_BITS = 1000  #: size of an exact number (numerator and denominator); constants stay in 2^±1000
MAX_NAME = 32  #: characters of a variable name
MAX_ORDER = 100  #: order of a derivative of dirac
MAX_POWER = 50  #: integer power of a sum, or of a part that may be complex such as log(x)
MAX_LISTED = 12  #: variables an unknown name's message lists

_ELEMENTARY = ("exp", "log", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh")
_NUMBER = re.compile(r"(?P<mantissa>[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE](?P<exponent>[+-]?[0-9]+))?")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_GRAMMAR = "a formula has numbers, variables, pi, e, + - * / ** ^, parentheses and calls such as exp(x)"
_TOO_LARGE = "this part is too large (beyond 2^1000, about 1e301); use smaller constants"
_TOO_SMALL = "this part is too close to zero (below 2^-1000, about 1e-301); use smaller exponents"
_NO_VALUE = "this part has no real value (division by zero, log(0), sqrt(-1), tan(pi/2) or similar)"


class FormulaError(ValueError):
    """Refused text: ``message`` says what is wrong and what would be right, ``position`` where.

    ``position`` is the 0-based column in ``text``, or None; ``str()`` is one line that counts
    columns from 1 and quotes at most 40 characters of the text, escaped.

    >>> str(FormulaError("unknown variable 'q'; use x, y, pi or e", "x + q", 4))
    "formula, column 5: unknown variable 'q'; use x, y, pi or e (near 'x + q')"
    """

    def __init__(self, message: str, text: str = "", position: int | None = None, what: str = "formula"):
        super().__init__(message)
        self.message, self.text, self.position, self.what = message, text, position, what

    def __str__(self) -> str:
        if self.position is None:
            return f"{self.what}: {self.message}"
        start = max(0, self.position - 20)
        excerpt = ("..." if start else "") + ascii(self.text[start : start + 40])
        excerpt += "..." if len(self.text) > start + 40 else ""
        return f"{self.what}, column {self.position + 1}: {self.message} (near {excerpt})"


class _Refused(Exception):
    """A constant part that SymPy could not evaluate quickly, or at all."""


def check_name(name: str, what: str = "variable") -> str:
    """Return ``name`` if it can name a variable in a formula; raise FormulaError if not.

    >>> check_name("w1")
    'w1'
    >>> check_name("exp")
    Traceback (most recent call last):
    ...
    chainrule.expr.FormulaError: variable: 'exp' is a function; choose a name such as x, w1 or h_2
    """
    if not isinstance(name, str):
        problem = f"a name must be text, not {type(name).__name__}"
    elif not name:
        problem = "the name is empty"
    elif len(name) > MAX_NAME:
        problem = f"{_show(name)} is longer than {MAX_NAME} characters"
    elif not name.isascii() or not _NAME.fullmatch(name):
        problem = f"{_show(name)} must start with a letter and have only ASCII letters, digits and _"
    elif keyword.iskeyword(name):
        problem = f"{_show(name)} is a Python keyword"
    elif name in FUNCTIONS or name in CONSTANTS:
        problem = f"{_show(name)} is a {'function' if name in FUNCTIONS else 'constant'}"
    else:
        return name
    raise FormulaError(
        f"{problem}; choose a name such as x, w1 or h_2", name if isinstance(name, str) else "", None, what
    )


def parse(text: str, variables: Sequence[str], *, what: str = "formula") -> sympy.Expr:
    """The SymPy expression that ``text`` writes, over real symbols named by ``variables``.

    ``what`` names the text in error messages (``"loss"``, ``"activation"``).

    >>> parse("log(1 + exp(w*x + b))", ["w", "x", "b"])
    log(exp(b + w*x) + 1)
    >>> parse("x + q", ["x", "y"])
    Traceback (most recent call last):
    ...
    chainrule.expr.FormulaError: formula, column 5: unknown variable 'q'; use x, y, pi or e (near 'x + q')
    >>> parse("sinn(x)", ["x"])
    Traceback (most recent call last):
    ...
    chainrule.expr.FormulaError: formula, column 1: unknown function 'sinn'; did you mean 'sin'? (use abs, acos, asin, atan, cos, cosh, dirac, erf, exp, heaviside, log, max, min, relu, sigmoid, sign, sin, sinh, softplus, sqrt, step, tan or tanh) (near 'sinn(x)')
    """
    if isinstance(variables, str):
        raise TypeError("variables must be a sequence of names, not one string")
    symbols = {check_name(name): sympy.Symbol(name, real=True) for name in variables}
    source, origin, tree = _tree(text, what)
    reader = _Reader(text, source, origin, symbols, what)
    reader.check(tree.body)
    return reader.build(tree.body)


def names(text: str, *, what: str = "formula") -> tuple[str, ...]:
    """The variable names ``text`` uses, in the order they first appear (for ``explain``).

    Only reads names; ``parse`` then checks everything else.

    >>> names("log(1 + exp(w*x + b)) + pi*w")
    ('w', 'x', 'b')
    """
    _, origin, tree = _tree(text, what)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    found = sorted(
        (node.col_offset, node.id)
        for node in ast.walk(tree)
        if isinstance(node, ast.Name)
        and id(node) not in called
        and node.id not in CONSTANTS
        and node.id not in FUNCTIONS
    )
    ordered = tuple(dict.fromkeys(name for _, name in found))
    for name in ordered:
        try:
            check_name(name)
        except FormulaError as err:
            column = origin[min(next(c for c, n in found if n == name), len(origin) - 1)]
            raise FormulaError(err.message, text, column, what) from None
    return ordered


def _tree(text: str, what: str) -> tuple[str, list[int], ast.Expression]:
    """The checked text, each character's column, and Python's parse of it (never run)."""
    source, origin = _scan(text, what)
    try:
        return source, origin, ast.parse(source, mode="eval")
    except SyntaxError as err:
        column = origin[min(max((err.offset or 1) - 1, 0), len(origin) - 1)]
        message = f"not a formula ({err.msg}); write an expression such as 2*x + 1"
        raise FormulaError(message, text, column, what) from None
    except (RecursionError, MemoryError):
        raise FormulaError("is too complex to read; simplify it", text, None, what) from None


def to_formula(expr: sympy.Expr) -> str:
    """``expr`` written in the formula language, so that ``parse`` reads it back as ``expr``.

    Raises ValueError for what the language cannot write (Piecewise, floats, complex numbers).

    >>> x = sympy.Symbol("x", real=True)
    >>> to_formula(sympy.diff(sympy.Max(x, 0) + sympy.E**x*sympy.Abs(x), x, 2))
    'exp(x)*abs(x) + 2*exp(x)*dirac(x) + 2*exp(x)*sign(x) + dirac(x)'
    """
    for node in sympy.preorder_traversal(expr):
        if type(node) is sympy.Symbol:
            check_name(node.name)
        elif not isinstance(node, _PRINTABLE):
            raise ValueError(f"{type(node).__name__} cannot be written as a formula; {_GRAMMAR}")
    return _FormulaPrinter().doprint(expr)


def _show(name: str) -> str:
    """A short, escaped quotation of user text for a message."""
    return ascii(name if len(name) <= 24 else name[:24] + "...")


def _scan(text: str, what: str) -> tuple[str, list[int]]:
    """The checks that need no parsing; returns the text with ^ as ** and each character's column."""
    if not isinstance(text, str):
        raise FormulaError(f"must be text, not {type(text).__name__}", what=what)
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"is {len(text)} characters long; the limit is {MAX_LENGTH}", what=what)
    if not text.strip():
        raise FormulaError("is empty; write an expression such as 2*x + 1", text, None, what)
    opened: list[int] = []
    source: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        if char == " " and not source:  # leading spaces would be an IndentationError
            continue
        problem = None
        if not char.isascii():
            problem = f"{char!a} is not an ASCII character (a look-alike?); retype it in ASCII"
        elif not char.isprintable():
            problem = f"the control character {char!a} is not allowed; write one line with spaces"
        elif char == "#":
            problem = "comments (#) are not allowed"
        elif char in "([{":
            opened.append(i)
            if len(opened) > MAX_DEPTH:
                problem = f"brackets nest more than {MAX_DEPTH} deep; simplify the formula"
        elif char in ")]}":
            if not opened:
                problem = f"{char!r} closes nothing; remove it or open a bracket before it"
            else:
                opened.pop()
        if problem:
            raise FormulaError(problem, text, i, what)
        source.append("**" if char == "^" else char)
        origin.extend((i, i) if char == "^" else (i,))
    if opened:
        raise FormulaError(f"{text[opened[-1]]!r} is never closed; add the closing bracket", text, opened[-1], what)
    return "".join(source), [*origin, len(text)]


def _same_chain(parent: ast.AST, child: ast.AST) -> bool:
    """Whether child continues parent's chain of + and - (or * and /), which adds no nesting."""
    families = ({ast.Add, ast.Sub}, {ast.Mult, ast.Div})
    if not (isinstance(parent, ast.BinOp) and isinstance(child, ast.BinOp)):
        return False
    return any(type(parent.op) in family and type(child.op) in family for family in families)


class _Reader:
    """One call of ``parse``: the text, its symbols and the float value of each part built so far."""

    def __init__(self, text: str, source: str, origin: list[int], symbols: dict, what: str):
        self.text, self.source, self.origin, self.symbols, self.what = text, source, origin, symbols, what
        self.values: dict[sympy.Basic, float | None] = {}

    def fail(self, column: int, message: str) -> FormulaError:
        return FormulaError(message, self.text, self.origin[min(column, len(self.origin) - 1)], self.what)

    def check(self, root: ast.expr) -> None:
        """Refuse the leftmost part outside the allowlist, or a tree too big or too deep to build."""
        problems, stack, count = [], [(root, 1)], 0
        while stack:
            node, depth = stack.pop()
            count += 1
            if count > MAX_NODES:
                raise FormulaError(
                    f"has more than {MAX_NODES} parts; split it or simplify it", self.text, None, self.what
                )
            if depth > MAX_NESTING:
                raise self.fail(node.col_offset, f"nests more than {MAX_NESTING} deep; simplify the formula")
            problem, kids = self.inspect(node)
            problems += [problem] if problem else []
            stack += [(kid, depth + (not _same_chain(node, kid))) for kid in kids]
        if problems:
            raise self.fail(*min(problems, key=lambda problem: problem[0]))

    def inspect(self, node: ast.expr) -> tuple[tuple[int, str] | None, list[ast.expr]]:
        """What is wrong with node itself (column, message), if anything, and its parts to check."""
        kind, column = type(node), node.col_offset
        if kind is ast.Constant:
            return self.inspect_constant(node), []
        if kind is ast.Name:
            if node.id in self.symbols or node.id in CONSTANTS:
                return None, []
            if node.id in FUNCTIONS:
                return (column, f"{node.id} is a function; call it, as in {node.id}(x)"), []
            if not self.symbols:
                return (column, f"unknown name {_show(node.id)}; this formula has no variables, only the constants pi and e"), []
            return (column, suggest.unknown("variable", node.id, [*self.symbols, *CONSTANTS], limit=MAX_LISTED)), []
        if kind is ast.BinOp:
            symbol, build = _OPERATORS[type(node.op)]
            column = max(self.source.find(symbol, node.left.end_col_offset), column)
            problem = None if build else (column, f"the operator {symbol} is not allowed; use + - * / or ** (^)")
            return problem, [node.left, node.right]
        if kind is ast.UnaryOp:
            if type(node.op) in _UNARY:
                return None, [node.operand]
            return (column, "'not' and '~' are not allowed; the only signs are - and +"), [node.operand]
        if kind is ast.Call:
            return self.inspect_call(node)
        value = getattr(node, "value", None) if kind in (ast.Attribute, ast.Subscript) else None
        column = column if value is None else value.end_col_offset  # the dot or bracket
        # exp.__globals__ is an attribute problem, not a misused function name
        kids = [
            kid
            for kid in ast.iter_child_nodes(node)
            if isinstance(kid, ast.expr) and not (kid is value and isinstance(kid, ast.Name))
        ]
        return (column, f"{_SYNTAX.get(kind, kind.__name__)} cannot be used in a formula; {_GRAMMAR}"), kids

    def inspect_constant(self, node: ast.Constant) -> tuple[int, str] | None:
        value, column = node.value, node.col_offset
        if isinstance(value, (str, bytes)):
            return column, f"text in quotes cannot be used in a formula; {_GRAMMAR}"
        if isinstance(value, complex):
            return column, "complex numbers (1j) are not allowed; formulas are real"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return column, f"{value!r} cannot be used in a formula; {_GRAMMAR}"
        literal = self.source[column : node.end_col_offset]
        match = _NUMBER.fullmatch(literal)
        if not match:
            return column, f"write the number {_show(literal)} in decimal, such as 12, 0.5 or 1e-3"
        if len(match["mantissa"].replace(".", "")) > MAX_DIGITS:
            return column, f"the number has more than {MAX_DIGITS} digits; write it as a power, such as 10**40"
        if match["exponent"] and abs(int(match["exponent"])) > 300:
            return column, "the number is beyond 1e300 or below 1e-300; use a smaller power of ten"
        return None

    def inspect_call(self, node: ast.Call) -> tuple[tuple[int, str] | None, list[ast.expr]]:
        func, kids = node.func, [*node.args, *(keyword.value for keyword in node.keywords)]
        names = ", ".join(sorted(FUNCTIONS))
        if not isinstance(func, ast.Name):
            return (func.end_col_offset, f"only named functions can be called; the functions are {names}"), [
                func,
                *kids,
            ]
        if func.id in self.symbols:
            return (
                func.col_offset,
                f"{func.id} is a variable, not a function; write {func.id}*(...) to multiply",
            ), kids
        if func.id not in FUNCTIONS:
            return (func.col_offset, suggest.unknown("function", func.id, sorted(FUNCTIONS))), kids
        if node.keywords:
            column = node.keywords[0].col_offset
            return (column, f"keyword arguments are not allowed; write {func.id}(x) with arguments in order"), kids
        arity = FUNCTIONS[func.id][0]
        arities = arity if isinstance(arity, tuple) else (arity,)
        if len(node.args) in arities or any(isinstance(arg, ast.Starred) for arg in node.args):
            return None, kids  # a starred argument is reported on its own
        count = " or ".join(map(str, arities))
        hint = "; log is the natural log, write log(x)/log(2) for base 2" if func.id == "log" else ""
        return (func.col_offset, f"{func.id} takes {count} argument(s), not {len(node.args)}{hint}"), kids

    def build(self, root: ast.expr) -> sympy.Expr:
        """Build SymPy bottom-up without recursion, valuing each part before SymPy evaluates it."""
        built: dict[ast.expr, sympy.Expr] = {}
        stack = [(root, False)]
        while stack:
            node, ready = stack.pop()
            operands = _operands(node)
            if not ready:
                stack += [(node, True), *((kid, False) for kid in reversed(operands))]
            else:
                built[node] = self.make(node, [built.pop(kid) for kid in operands])
        return built[root]

    def make(self, node: ast.expr, args: list[sympy.Expr]) -> sympy.Expr:
        kind, column = type(node), node.col_offset
        if kind is ast.Constant:
            number = Fraction(self.source[column : node.end_col_offset])
            return self.apply(column, lambda: sympy.Rational(number.numerator, number.denominator), [])
        if kind is ast.Name:
            return self.symbols[node.id] if node.id in self.symbols else CONSTANTS[node.id]
        if kind is ast.UnaryOp:
            return self.apply(column, _UNARY[type(node.op)], args)
        if kind is ast.Call:
            if node.func.id == "exp" and _log_power(args[0]) > MAX_EXPONENT:
                # exp(c*log(a) + u) becomes a**c * exp(u), a power that SymPy computes
                raise self.fail(column, f"a logarithm inside exp() may have a factor of at most {MAX_EXPONENT}")
            return self.apply(column, FUNCTIONS[node.func.id][1], args)
        symbol, build = _OPERATORS[type(node.op)]
        column = max(self.source.find(symbol, node.left.end_col_offset), column)
        if type(node.op) is ast.Pow:
            base, exponent = args
            if any(abs(number) > MAX_EXPONENT for number in exponent.atoms(sympy.Rational)):
                raise self.fail(column, f"numbers in an exponent must be at most {MAX_EXPONENT} in size")
            # SymPy multiplies out the number in a base, and for b**(p/q) may compute b**p or b**(q - 1).
            numbers = base.as_independent(*base.free_symbols, as_Add=False)[0] if base.free_symbols else base
            size = max((max(abs(r.p), r.q) for r in exponent.atoms(sympy.Rational)), default=1)
            if size * max(map(_bits, numbers.atoms(sympy.Rational)), default=0) > MAX_BITS:
                raise self.fail(
                    column, f"this power of a number needs more than {MAX_BITS} bits; use a smaller exponent"
                )
        return self.apply(column, build, args)

    def apply(self, column: int, build, args: list[sympy.Expr]) -> sympy.Expr:
        """build(*args), once its unevaluated form has a tame value; refused at column otherwise."""
        try:
            with sympy.evaluate(False):
                self.value(build(*args))
            result = build(*args)
            self.value(result)
        except _Refused as refusal:
            raise self.fail(column, str(refusal)) from None
        except Exception as err:  # noqa: BLE001 -- SymPy raises assorted errors (even AttributeError) on odd constants
            raise self.fail(column, f"SymPy cannot compute this part ({type(err).__name__})") from None
        return result

    def value(self, expr: sympy.Basic) -> float | None:
        """expr's float value, or None if it has variables; every constant part must be tame."""
        if expr in self.values:
            return self.values[expr]
        if expr.is_Symbol:
            result = None
        elif expr.is_Rational:
            if _bits(expr) > MAX_BITS:
                raise _Refused(f"a number here has more than {MAX_BITS} bits (about 300 digits)")
            result = expr.p / expr.q
        elif expr.is_Pow and expr.base.is_Rational and expr.exp.is_Rational and not expr.exp.is_Integer:
            # what SymPy made of a power (2**(1/3)*2**(1/5) is 2**(8/15)) must stay cheap for its next step
            if max(abs(expr.exp.p), expr.exp.q) * _bits(expr.base) > MAX_BITS:
                raise _Refused(f"this power of a number needs more than {MAX_BITS} bits; use a smaller exponent")
            result = _evaluate(_pow, [self.value(expr.base), self.value(expr.exp)])
        elif isinstance(expr, sympy.NumberSymbol):
            result = float(expr)
        elif (
            expr.is_Pow
            and expr.exp.is_Integer
            and abs(expr.exp) > MAX_POWER
            and (expr.base.is_Add or not expr.base.is_extended_real)
        ):
            # heaviside, dirac and the assumptions of tanh take im() of their argument (or a gcd of
            # polynomials), which expands such powers term by term
            raise _Refused(f"powers above {MAX_POWER} are for single real factors, not sums or log, sqrt, asin, acos")
        else:
            args = [self.value(arg) for arg in expr.args]
            result = None if any(arg is None for arg in args) else _evaluate(_FLOATS.get(expr.func), args)
        self.values[expr] = result
        return result


def _operands(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    return [node.operand] if isinstance(node, ast.UnaryOp) else getattr(node, "args", [])


def _log_power(u: sympy.Expr) -> float:
    """The largest number multiplying a logarithm anywhere in u (exp's logcombine turns c*log(a) into a**c)."""
    products = (node for node in sympy.preorder_traversal(u) if node.is_Mul and node.has(sympy.log))
    return max((abs(product.as_coeff_Mul()[0]) for product in products), default=0)


def _saturating(func, limit: float):
    """func, refusing arguments so large that SymPy would need their size in digits to tell f(u) from its limit."""

    def bounded(u: float) -> float:
        if abs(u) > limit:
            raise _Refused(f"this argument is beyond +-{limit:g}, where the function is its limit to 300 digits")
        return func(u)

    return bounded


def _bits(number: sympy.Rational) -> float:
    return math.log2(abs(number.p)) + math.log2(number.q) if number.p else 0.0


def _evaluate(func, args: list[float]) -> float:
    try:
        if func is None:
            raise ValueError("no float form")
        result = float(func(*args))
    except OverflowError:
        raise _Refused(_TOO_LARGE) from None
    except (ValueError, ZeroDivisionError):
        raise _Refused(_NO_VALUE) from None
    if not (math.isfinite(result) and abs(result) <= 2.0**MAX_BITS):
        raise _Refused(_TOO_LARGE)
    if result and abs(result) < 2.0**-MAX_BITS:
        raise _Refused(_TOO_SMALL)
    return result


def _pow(base: float, exponent: float) -> float:
    result = math.pow(base, exponent)
    if result == 0 and base != 0:  # underflow: SymPy would need as many digits as the exponent is large
        raise _Refused(_TOO_SMALL)
    return result


def _mul(*factors: float) -> float:
    result = math.prod(factors)
    if result == 0 and all(factors):
        raise _Refused(_TOO_SMALL)
    return result


def _dirac(u, order=None):
    if order is not None and not (order.is_Integer and 0 <= order <= MAX_ORDER):
        raise _Refused(f"dirac(u, k) is the k-th derivative of dirac; k is a whole number from 0 to {MAX_ORDER}")
    return sympy.DiracDelta(u) if order is None else sympy.DiracDelta(u, order)


def _dirac_value(u: float, order: float = 0.0) -> float:
    if u == 0:
        raise _Refused("dirac(0) is infinite; dirac can only be applied to a variable part")
    return 0.0


class _FormulaPrinter(StrPrinter):
    """SymPy's str printer, with the spellings of the formula language."""

    def _print_Exp1(self, expr):
        return "e"

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):
        names = {sympy.S.Half: "heaviside", sympy.S.Zero: "step"}
        if expr.args[1] not in names:
            raise ValueError(f"Heaviside with value {expr.args[1]} at 0 cannot be written; use heaviside or step")
        return f"{names[expr.args[1]]}({self._print(expr.args[0])})"

    def _print_DiracDelta(self, expr):
        return f"dirac({', '.join(map(self._print, expr.args))})"

    def _print_Max(self, expr, name="max"):
        return functools.reduce(lambda left, right: f"{name}({left}, {right})", map(self._print, expr.args))

    def _print_Min(self, expr):
        return self._print_Max(expr, "min")

    def _print_Integer(self, expr):
        # parse takes at most MAX_DIGITS digits per number, so a longer one becomes a sum of pieces.
        digits = str(abs(expr.p))
        if len(digits) <= MAX_DIGITS:
            return str(expr.p)
        pieces = [digits[max(0, end - MAX_DIGITS) : end] for end in range(len(digits), 0, -MAX_DIGITS)]
        terms = [f"{piece.lstrip('0') or '0'}*10**{MAX_DIGITS * i}" for i, piece in enumerate(pieces)][::-1]
        return f"{'-' if expr.p < 0 else ''}({' + '.join(terms)})"

    def _print_Rational(self, expr):
        if max(len(str(abs(expr.p))), len(str(expr.q))) <= MAX_DIGITS:
            return super()._print_Rational(expr)
        return f"{self._print_Integer(sympy.Integer(expr.p))}/{self._print_Integer(sympy.Integer(expr.q))}"


CONSTANTS = {"pi": sympy.pi, "e": sympy.E}

#: name -> (number of arguments, builder of the SymPy expression); all but relu, max, min and the
#: three below are SymPy's functions of the same name.
FUNCTIONS = {
    **{name: (1, getattr(sympy, name)) for name in _ELEMENTARY + ("sqrt", "sign", "erf")},
    "abs": (1, sympy.Abs),
    "sigmoid": (1, sigmoid),
    "softplus": (1, softplus),
    "relu": (1, relu),
    "max": (2, sympy.Max),
    "min": (2, sympy.Min),
    "heaviside": (1, sympy.Heaviside),  # 1/2 at 0, as the derivatives of max, min and abs have it
    "step": (1, lambda u: sympy.Heaviside(u, 0)),  # 0 at 0, the derivative of relu
    "dirac": ((1, 2), _dirac),  # dirac(u, k) is the k-th derivative, which second derivatives need
}

#: The float form of every SymPy class that parse builds; to_formula writes these and no others.
_FLOATS = {
    **{getattr(sympy, name): getattr(math, name) for name in _ELEMENTARY[1:-1]},
    sympy.tanh: _saturating(math.tanh, 350),
    sympy.erf: _saturating(math.erf, 26),
    sympy.Add: lambda *terms: math.fsum(terms),
    sympy.Mul: _mul,
    sympy.Pow: _pow,
    sympy.exp: lambda u: _pow(math.e, u),
    sympy.Abs: abs,
    sympy.sign: lambda u: (u > 0) - (u < 0),
    sympy.Max: max,
    sympy.Min: min,
    sympy.Heaviside: lambda u, at_zero: at_zero if u == 0 else float(u > 0),
    sympy.DiracDelta: _dirac_value,
    sigmoid: _saturating(lambda u: 0.5 * (1 + math.tanh(u / 2)), 700),
    softplus: _saturating(lambda u: max(u, 0.0) + math.log1p(math.exp(-abs(u))), 700),
    relu: lambda u: max(u, 0.0),
}
_PRINTABLE = (sympy.Rational, type(sympy.pi), type(sympy.E), *_FLOATS)

#: operator -> (how it is written, how it is built); None marks Python operators a formula lacks.
_OPERATORS = {
    ast.Add: ("+", operator.add), ast.Sub: ("-", operator.sub), ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv), ast.Pow: ("**", operator.pow), ast.FloorDiv: ("//", None),
    ast.Mod: ("%", None), ast.MatMult: ("@", None), ast.LShift: ("<<", None), ast.RShift: (">>", None),
    ast.BitOr: ("|", None), ast.BitAnd: ("&", None), ast.BitXor: ("^", None),
}  # fmt: skip
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_SYNTAX = {
    ast.Attribute: "attribute access (a.b)", ast.Subscript: "indexing (a[i])", ast.Slice: "a slice (a:b)",
    ast.Starred: "a starred argument (*a)", ast.Lambda: "lambda", ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string", ast.IfExp: "a conditional (a if c else b)", ast.Compare: "a comparison",
    ast.BoolOp: "'and' or 'or'", ast.NamedExpr: "assignment (:=)", ast.Tuple: "a tuple (a, b)",
    ast.List: "a list [a, b]", ast.Set: "a set {a, b}", ast.Dict: "a dict {a: b}", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield",
    **dict.fromkeys((ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp), "a comprehension"),
}  # fmt: skip
