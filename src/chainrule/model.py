"""Vectorized NumPy code generated from the layer-level rules: ``compile(network)``.

The rules of ``layers.py`` become three straight-line Python functions — ``predict``,
``loss`` and ``loss_and_grad`` — with the elementwise kernels lambdified (with CSE, after
checking each kernel uses only its declared arguments). Straight-line code has nothing
between NumPy calls, which is why it runs as fast as backprop written by hand;
``model.source`` is the code, for anyone who wants to read it.

>>> import numpy as np
>>> from chainrule.network import Network, Dense
>>> model = compile(Network(2, (Dense(3, "tanh"), Dense(1, "sigmoid")), "bce"))
>>> params = model.init_params(seed=0)
>>> sorted((k, v.shape) for k, v in params.items())
[('W1', (3, 2)), ('W2', (1, 3)), ('b1', (3,)), ('b2', (1,))]
>>> loss, grads = model.loss_and_grad(params, np.zeros((4, 2)), np.ones((4, 1)))
>>> round(loss, 12), grads["b2"].round(12).tolist()
(0.69314718056, [-0.5])
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import suggest
from .kinds import KINDS
from .layers import Kernel, LayerRules, layer_rules
from .network import Network
from .stable import NUMPY


def _softmax_rows(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log Σₖ exp zₖ of each row (as a column) and the row's softmax, with no exp overflowing."""
    m = Z.max(axis=1, keepdims=True)
    E = np.exp(Z - m)
    # A product with a column of ones sums the rows faster than E.sum(axis=1) at these sizes.
    s = E @ np.ones((Z.shape[1], 1))
    return m + np.log(s), E / s


def _uniform(rng, shape, limit):
    return rng.uniform(-limit, limit, shape)


#: Initial weights by scheme name: (rng, (fan_out, fan_in)) -> array. Biases start at 0.
INIT_SCHEMES: dict[str, Callable[[np.random.Generator, tuple[int, int]], np.ndarray]] = {
    # N(0, 0.01²): small random weights, the classic course recipe.
    "normal": lambda rng, s: rng.normal(0.0, 0.01, s),
    # U(±1/√fan_in): PyTorch's default for nn.Linear weights.
    "uniform": lambda rng, s: _uniform(rng, s, 1 / np.sqrt(s[1])),
    "glorot_uniform": lambda rng, s: _uniform(rng, s, np.sqrt(6 / (s[0] + s[1]))),
    "glorot_normal": lambda rng, s: rng.normal(0.0, np.sqrt(2 / (s[0] + s[1])), s),
    "he_uniform": lambda rng, s: _uniform(rng, s, np.sqrt(6 / s[1])),
    "he_normal": lambda rng, s: rng.normal(0.0, np.sqrt(2 / s[1]), s),
    # N(0, 1): no scaling by the fan at all, the textbook case of exploding (tanh, relu) or
    # saturating (sigmoid) deep networks.
    "standard_normal": lambda rng, s: rng.normal(0.0, 1.0, s),
}


def lambdify_kernel(kernel: Kernel, constants: Mapping[sp.Symbol, float]) -> Callable:
    """A NumPy function of the kernel's arguments, with the spec's constants filled in."""
    expr = kernel.expr.xreplace({s: sp.Float(v, 17) for s, v in constants.items()})
    extra = expr.free_symbols - set(kernel.args)
    if extra:
        raise ValueError(f"kernel {kernel.name} uses undeclared symbols {sorted(map(str, extra))}")
    return sp.lambdify(kernel.args, expr, modules=[NUMPY, np], cse=True)


def source(rules: LayerRules, symbolic: bool = False, hooked: frozenset[str] = frozenset()) -> str:
    """The Python text of ``predict``, ``loss``, ``loss_and_predict`` and ``loss_and_grad``.

    ``loss`` and ``loss_and_grad`` run the network as in training (batch statistics, dropout
    masks given as ``masks`` or drawn from ``rng``; ``loss_and_grad`` updates ``state``, the
    running statistics); ``predict`` and ``loss_and_predict`` evaluate it (running
    statistics from ``state``, no dropout). ``symbolic`` is the text ``proof.py`` runs on
    symbols: the loss is left as computed (not ``float``), and each array named in
    ``hooked`` goes through ``hook`` once computed.
    """
    result = "L" if symbolic else "float(L)"
    unpack = [f'    {name} = params["{name}"]' for name in rules.parameters]

    def body(rule_groups) -> list[str]:
        lines = []
        done: set[str] = set()
        for group in rule_groups:
            for rule in group:
                targets = []
                for line in rule.code.splitlines():
                    lines.append(f"    {line}")
                    if line.startswith(" ") or "=" not in line:
                        continue  # a line inside a block (the running statistics) assigns no array
                    for target in line.split("=")[0].rstrip(" +-*/").split(","):
                        target = target.strip()
                        if target in hooked and target not in done and target not in targets:
                            targets.append(target)
                if symbolic:
                    # proof.py checks each layer's result, then carries on with its named symbols
                    lines.extend(f'    {t} = hook("{t}", {t})' for t in targets)
                    done.update(targets)
        return lines

    def ones(*groups) -> list[str]:
        # Σ over the batch as ones @ M: a matrix-vector product costs a third of M.sum(axis=0).
        used = any("ones @" in rule.code for group in groups for rule in group)
        return ["    ones = ones_row(n)"] if used else []

    grads = ", ".join(f'"{name}": g{name}' for name in rules.parameters)
    lines = [
        "def predict(params, X, state=None):",
        *unpack,
        "    n = X.shape[0]",
        *ones(rules.evaluate),
        *body([rules.evaluate]),
        f"    return {rules.output}",
        "",
        "def loss(params, X, Y, masks=None, rng=None):",
        *unpack,
        "    n = X.shape[0]",
        "    state = None  # the loss alone leaves the running statistics as they are",
        *ones(rules.forward, rules.loss),
        *body([rules.forward, rules.loss]),
        f"    return {result}",
        "",
        "def loss_and_predict(params, X, Y, state=None):",
        *unpack,
        "    n = X.shape[0]",
        *ones(rules.evaluate, rules.loss),
        *body([rules.evaluate, rules.loss]),
        f"    return {result}, {rules.output}",
        "",
        "def loss_and_grad(params, X, Y, state=None, masks=None, rng=None):",
        *unpack,
        "    n = X.shape[0]",
        *ones(rules.forward, rules.loss, rules.backward),
        *body([rules.forward, rules.loss, rules.backward]),
        f"    return {result}, {{{grads}}}",
    ]
    if not symbolic:
        # The same pass once more, keeping every array it computed (Z1, A1, D1, G1, ...): what
        # a study of gradient flow reads. A function of its own, so loss_and_grad stays lean.
        lines += [
            "",
            "def trace(params, X, Y, state=None, masks=None, rng=None):",
            *unpack,
            "    n = X.shape[0]",
            *ones(rules.forward, rules.loss, rules.backward),
            *body([rules.forward, rules.loss, rules.backward]),
            "    arrays = named_arrays(locals(), params)",
            f"    return {result}, {{{grads}}}, arrays",
        ]
    return "\n".join(lines) + "\n"


def _dropout_mask(rng, shape, keep: float) -> np.ndarray:
    """Inverted dropout's mask: 1/keep with probability ``keep``, else 0."""
    if rng is None:
        raise ValueError("dropout in training needs its masks: pass masks={...} or rng=np.random.default_rng(seed)")
    return (rng.random(shape) < keep) / keep


def _named_arrays(names: Mapping[str, object], params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays among a pass's local variables, without the parameters it unpacked."""
    return {k: v for k, v in names.items() if type(v) is np.ndarray and k not in params}


def namespace(rules: LayerRules) -> dict[str, object]:
    """What the generated code calls: the lambdified kernels and two NumPy helpers."""
    # Σ over the batch as ones @ D: a matrix-vector product costs a third of D.sum(axis=0).
    names: dict[str, object] = {"exp": np.exp, "softmax_rows": _softmax_rows, "ones_row": np.ones, "dropout_mask": _dropout_mask,
                                "named_arrays": _named_arrays}
    for name, kernel in rules.kernels.items():
        names[name] = lambdify_kernel(kernel, rules.constants)
    return names


@dataclass(frozen=True)
class Model:
    """A network compiled to NumPy: ``predict``, ``loss`` and ``loss_and_grad`` over batches.

    ``params`` is a dict ``{"W1": (units, inputs), "b1": (units,), ...}``; ``X`` has one
    example per row and ``Y`` one target row per example; the loss is the batch mean.
    """

    network: Network
    rules: LayerRules
    source: str
    predict: Callable[[Mapping[str, np.ndarray], np.ndarray], np.ndarray] = field(repr=False)
    loss: Callable[[Mapping[str, np.ndarray], np.ndarray, np.ndarray], float] = field(repr=False)
    loss_and_grad: Callable[..., tuple[float, dict[str, np.ndarray]]] = field(repr=False)
    #: The loss and the output layer from one forward pass (evaluating a model on a data set).
    loss_and_predict: Callable[..., tuple[float, np.ndarray]] = field(repr=False)
    #: ``loss_and_grad`` that also returns every array the pass computed, by its name in
    #: ``source`` (``Z1``, ``A1``; ``D1`` = ∂L/∂Z⁽¹⁾ of the batch mean, ``G1`` = ∂L/∂A⁽¹⁾).
    trace: Callable[..., tuple[float, dict[str, np.ndarray], dict[str, np.ndarray]]] = field(repr=False, default=None)
    #: The lambdified kernels by name (``k_f1`` is f of stage 1, ``k_df1`` its f′(z, a)).
    kernels: Mapping[str, Callable] = field(repr=False, default_factory=dict)

    def init_params(self, seed: int = 0, scheme: str = "glorot_uniform") -> dict[str, np.ndarray]:
        """Fresh parameters: weights by ``scheme`` (see ``INIT_SCHEMES``), biases 0, γ 1, β 0, α as the spec sets it."""
        if not isinstance(scheme, str) or scheme not in INIT_SCHEMES:
            raise ValueError(suggest.unknown("init scheme", str(scheme), INIT_SCHEMES))
        rng = np.random.default_rng(seed)
        params: dict[str, np.ndarray] = {}
        for stage in self.network.stages:
            kind = KINDS[stage.kind]
            for name, shape in kind.parameters(stage).items():
                value = kind.initial(stage, name, shape)
                params[name] = INIT_SCHEMES[scheme](rng, shape) if value is None else np.full(shape, value)
        return params

    def init_state(self) -> dict[str, np.ndarray]:
        """Running statistics before training, as PyTorch starts them: means 0, variances 1."""
        return {name: (np.zeros if name.startswith("mean") else np.ones)(shape) for name, shape in self.network.state_shapes().items()}


def compile(network: Network, rules: LayerRules | None = None) -> Model:
    """Generate vectorized NumPy code for ``network`` over batches of any size.

    ``rules`` replaces the network's own rules: ``check.py`` compiles deliberately broken
    variants to recognize a bug by the values it produces.
    """
    rules = layer_rules(network) if rules is None else rules
    text = source(rules)
    names = namespace(rules)
    # The text is built from the rules' own lines and array names; no spec string is in it.
    exec(builtins.compile(text, f"<chainrule model {network.sizes}>", "exec"), names)  # noqa: S102
    kernels = {name: names[name] for name in rules.kernels}
    return Model(network, rules, text, names["predict"], names["loss"], names["loss_and_grad"], names["loss_and_predict"],
                 names["trace"], kernels)

