"""A PyTorch module, as people write them, as a chainrule ``Network`` with its parameters.

``from_torch`` records the module's forward with ``torch.fx`` (PyTorch's own graph
capture; nothing is computed) and reads the graph: each ``nn.Linear`` becomes a ``Dense``
layer whose activation is the module or function applied right after it (``identity`` if
none is), ``nn.BatchNorm1d``, ``nn.LayerNorm`` and ``nn.Dropout`` become their kinds, and a
sum ``x + f(x)`` of a value and something computed from it becomes a ``Residual`` block of
the layers of f, nested to any depth. Parameters and running statistics come out as
float64 arrays named as ``model.compile`` expects them. Torch is imported inside the
function, so ``import chainrule`` never loads it.

What each module class means is one entry of ``TORCH_MODULES``; the functional forms
(``torch.relu``, ``F.leaky_relu(x, 0.2)``, ``x.tanh()``) name the module they stand for in
``TORCH_FUNCTIONS``. A module of your own (say one whose forward calls a custom
``torch.autograd.Function``) is named with ``custom={"MySigmoid": "sigmoid"}``: what it is
meant to compute, so that comparing its gradients with chainrule's tests its backward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import suggest
from .catalog import LOSSES
from .kinds import KINDS, Activation, BatchNorm, Dense, Dropout, LayerNorm, Residual
from .network import Network
from .spec import SpecError, choose

Spec = str | Mapping[str, Any]
Layer = Dense | BatchNorm | LayerNorm | Dropout


class TorchNetwork(tuple):
    """What ``from_torch`` returns: unpacks as ``(network, params)``, and carries the rest.

    ``state`` holds the batch-norm running statistics under the keys of
    ``compile(network).init_state()`` ("mean2", "var2"); ``names`` maps each chainrule array
    to the torch tensor or module it came from ("W1" -> "0.weight", "mean2" ->
    "1.running_mean", and each dropout mask "M4" -> the dropout module "blocks.0.drop").
    """

    network: Network
    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    names: dict[str, str]

    def __new__(cls, network: Network, params: dict, state: dict, names: dict) -> TorchNetwork:
        self = super().__new__(cls, (network, params))
        self.network, self.params, self.state, self.names = network, params, state, names
        return self


def from_torch(
    module: Any,
    loss: Spec = "mse",
    inputs: int | None = None,
    custom: Mapping[str, Spec] | None = None,
) -> TorchNetwork:
    """A torch module as a chainrule Network, with its parameters as float64 arrays ("W1", "b1", "gamma2", ...).

    The result unpacks as ``network, params``; its ``state`` holds the running statistics
    of every ``nn.BatchNorm1d`` ("mean2", "var2") and its ``names`` the torch tensor each
    array came from. ``compile(network).loss_and_grad(params, X, Y, state=state, masks=...)``
    then computes what the module computes in ``train()`` mode, updating ``state`` as
    torch updates its buffers, and ``predict(params, X, state=state)`` what it computes in
    ``eval()`` mode. A norm without affine parameters gets γ = 1, β = 0, which torch does
    not have (and ``names`` does not list).

    ``loss`` is a chainrule loss name or mapping. A loss defined on softmax outputs
    (``cross_entropy``) matches ``nn.CrossEntropyLoss`` on the module's logits: if the
    module does not end with a softmax, its last layer gets softmax, which is what
    ``CrossEntropyLoss`` applies. ``inputs`` checks the first layer's width. ``custom``
    maps a module class name to the activation it computes (a catalog name or ``{"name":
    ..., parameters}``); it takes precedence over ``TORCH_MODULES``, and the module is not
    traced into. A class ``custom`` names must be in the module, and ``loss`` and every
    activation must be chainrule's names: a misspelt one is refused with the closest name.

    ``nn.Softplus`` becomes ``softplus``, log(1 + eᶻ) everywhere; torch returns z itself
    where z > 20 (its threshold), a relative difference below 1e-9.

    >>> import torch
    >>> from torch import nn
    >>> class Block(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.f = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3))
    ...     def forward(self, x):
    ...         return x + self.f(x)
    >>> net, params = from_torch(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.BatchNorm1d(3), Block(), nn.Linear(3, 1)))
    >>> [(s.number, s.kind) for s in net.stages]
    [(1, 'dense'), (2, 'batch_norm'), (3, 'dense'), (4, 'dense'), (5, 'residual'), (6, 'dense')]
    >>> list(params)
    ['W1', 'b1', 'gamma2', 'beta2', 'W3', 'b3', 'W4', 'b4', 'W6', 'b6']
    >>> reading = from_torch(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)))
    >>> {name: value.tolist() for name, value in reading.state.items()}, reading.names["var2"]
    ({'mean2': [0.0, 0.0, 0.0], 'var2': [1.0, 1.0, 1.0]}, '1.running_var')
    """
    from torch import fx, nn

    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch takes an nn.Module, got {type(module).__name__}")
    _check_names(module, loss, custom or {})
    table: dict[str, Callable[[Any], Spec | Layer]] = {**TORCH_MODULES, **{k: _fixed(v) for k, v in (custom or {}).items()}}
    if type(module).__name__ in table:
        module = nn.Sequential(module)  # a lone Linear: the tracer would otherwise read its insides

    class Tracer(fx.Tracer):
        # Modules the table names are read whole; modules of your own are traced into.
        def is_leaf_module(self, m: Any, qualified_name: str) -> bool:
            return type(m).__name__ in table or super().is_leaf_module(m, qualified_name)

    try:
        graph = Tracer().trace(module)
    except Exception as exc:  # noqa: BLE001 - fx raises many kinds; all mean the same to the caller
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ValueError(f"from_torch: torch.fx cannot trace {type(module).__name__}.forward ({type(exc).__name__}: {first})") from None
    items = _Reader(module, table).read(graph)
    return _assemble(items, loss, inputs)


def _check_names(module: Any, loss: Spec, custom: Mapping[str, Spec]) -> None:
    """The names the caller gave, checked against what they name before anything is read.

    A custom= class that is not in the module would be traced into instead, silently: the
    backward it was named to test would never be compared.
    """
    classes = list(dict.fromkeys(type(m).__name__ for m in module.modules()))
    for name, spec in custom.items():
        if name not in classes:
            raise ValueError(f"from_torch: custom: {suggest.unknown('module class', str(name), classes)}")
        _choose(spec, f"custom[{name!r}]", "activation")
    _choose(loss, "loss", "loss")


def _choose(spec: Spec, where: str, kind: str) -> None:
    try:
        choose(spec, where, kind)
    except SpecError as exc:
        raise ValueError(f"from_torch: {exc.field}: {exc.message}") from None


# --- reading the fx graph into items --------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Item:
    """One step of the computation from the input: a layer, an activation, or a residual block.

    Values of the fx graph are tuples of items from the input on; a residual sum is
    recognized by one summand's tuple being the other's start, compared by identity.
    """

    kind: str  # "layer", "activation" or "residual"
    where: str  # "module blocks.1 (Block)"
    spec: Any = None  # the layer spec, or the activation's Spec
    module: Any = None
    qualified: str = ""
    inner: tuple[_Item, ...] = ()


def _where(qualified: str, module: Any) -> str:
    return f"module {qualified} ({type(module).__name__})" if qualified else f"the top module ({type(module).__name__})"


class _Reader:
    """The values of an fx graph of ``root`` as tuples of items, from its output back."""

    def __init__(self, root: Any, table: Mapping[str, Callable[[Any], Spec | Layer]]) -> None:
        self.root, self.table = root, table

    def read(self, graph: Any) -> tuple[_Item, ...]:
        nodes = list(graph.nodes)
        output = next(n for n in nodes if n.op == "output")
        needed = self._needed(output)
        placeholders = [n for n in nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise ValueError(f"from_torch: {type(self.root).__name__}.forward takes {len(placeholders)} inputs; from_torch reads a forward(x) of one tensor")
        values: dict[Any, tuple[_Item, ...]] = {}
        for node in nodes:
            if node in needed:
                values[node] = self._value(node, values)
        result = output.args[0]
        if not hasattr(result, "op"):
            raise ValueError(f"from_torch: {type(self.root).__name__}.forward returns a {type(result).__name__}; from_torch reads a forward that returns one tensor")
        return values[result]

    @staticmethod
    def _needed(output: Any) -> set:
        needed, todo = set(), [output]
        while todo:
            node = todo.pop()
            for parent in node.all_input_nodes:
                if parent not in needed:
                    needed.add(parent)
                    todo.append(parent)
        return needed

    def _enclosing(self, node: Any) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        qualified = next(reversed(stack), "") if stack else ""
        return _where(qualified, self.root.get_submodule(qualified))

    def _value(self, node: Any, values: Mapping[Any, tuple[_Item, ...]]) -> tuple[_Item, ...]:
        if node.op == "placeholder":
            return ()
        if node.op == "call_module":
            return self._module(node, values)
        if node.op in ("call_function", "call_method"):
            return self._function(node, values)
        where = self._enclosing(node)
        raise ValueError(f"from_torch: {where} reads the tensor {node.target} directly; {SUPPORTED_OPERATIONS}")

    def _only_input(self, node: Any, values: Mapping[Any, tuple[_Item, ...]], where: str, what: str) -> tuple[_Item, ...]:
        args = [a for a in node.args if hasattr(a, "op")] + [v for v in node.kwargs.values() if hasattr(v, "op")]
        if len(args) != 1 or node.args[0] is not args[0]:
            raise ValueError(f"from_torch: {where} calls {what} on {len(args)} tensors; from_torch reads layers of one input")
        return values[args[0]]

    def _module(self, node: Any, values: Mapping[Any, tuple[_Item, ...]]) -> tuple[_Item, ...]:
        sub = self.root.get_submodule(node.target)
        name = type(sub).__name__
        where = _where(node.target, sub)
        if name not in self.table:
            raise ValueError(f"from_torch: {where} is not supported; supported: {', '.join(TORCH_MODULES)}, or a class named in custom=")
        if node.args[1:] or node.kwargs:
            raise ValueError(f"from_torch: {where} is called with {len(node.args) + len(node.kwargs)} arguments; from_torch reads layers of one input")
        previous = values[node.args[0]]
        return (*previous, self._item(sub, node.target, where))

    def _item(self, module: Any, qualified: str, where: str) -> _Item:
        try:
            spec = self.table[type(module).__name__](module)
        except ValueError as exc:
            raise ValueError(f"from_torch: {where}: {exc}") from None
        kind = "activation" if isinstance(spec, (str, Mapping)) else "layer"
        return _Item(kind, where, spec, module, qualified)

    def _function(self, node: Any, values: Mapping[Any, tuple[_Item, ...]]) -> tuple[_Item, ...]:
        from torch import nn
        from torch.fx.node import _get_qualified_name

        name = f"Tensor.{node.target}" if node.op == "call_method" else _get_qualified_name(node.target).replace("_operator.", "operator.")
        where = self._enclosing(node)
        if name in RESIDUAL_SUMS:
            return self._sum(node, values, where, name)
        if name not in TORCH_FUNCTIONS:
            hint = "" if where.startswith("the top") else "; or name its class in custom= with what it computes"
            raise ValueError(f"from_torch: {where} is not supported: its forward calls {name}; {SUPPORTED_OPERATIONS}{hint}")
        previous = self._only_input(node, values, where, name)
        cls = TORCH_FUNCTIONS[name]
        try:
            equivalent = getattr(nn, cls)(*node.args[1:], **node.kwargs)
        except TypeError as exc:
            raise ValueError(f"from_torch: {where} calls {name} with arguments nn.{cls} does not take ({exc})") from None
        return (*previous, self._item(equivalent, "", f"{where}: {name}"))

    def _sum(self, node: Any, values: Mapping[Any, tuple[_Item, ...]], where: str, name: str) -> tuple[_Item, ...]:
        args = list(node.args)
        if len(args) != 2 or set(node.kwargs) - {"alpha"} or node.kwargs.get("alpha", 1) != 1 or not all(hasattr(a, "op") for a in args):
            raise ValueError(f"from_torch: {where} calls {name} on other than two tensors; a residual sum is x + f(x)")
        a, b = values[args[0]], values[args[1]]
        short, long = (a, b) if len(a) <= len(b) else (b, a)
        if not all(p is q for p, q in zip(short, long)):
            raise ValueError(f"from_torch: {where} adds two tensors neither of which is computed from the other; a residual sum is x + f(x)")
        if len(short) == len(long):
            raise ValueError(f"from_torch: {where} adds a tensor to itself; a residual sum is x + f(x) with f of at least one layer")
        return (*short, _Item("residual", where, inner=long[len(short):]))


# --- items into layers, parameters and state -----------------------------------------------------


#: The module slot of a stage that is an activation on its own (its module is the activation's item).
_ACTIVATION = "activation"


@dataclass
class _Built:
    """The layers being built, and the torch module of each stage in stage order (None for a sum)."""

    stages: list[tuple[Any, str, Any]]  # (module, qualified name, activation module or None)


def _build(items: tuple[_Item, ...], width: int | None, built: _Built, top: bool) -> tuple[list[Any], int | None]:
    """Layer specs of ``items`` after a layer of ``width`` units (None: not known yet), and their width."""
    layers: list[Any] = []
    open_dense: dict[str, Any] | None = None  # the Dense being built, until its activation is known

    def close() -> None:
        nonlocal open_dense
        if open_dense is not None:
            layers[open_dense["index"]] = Dense(open_dense["units"], open_dense["activation"], open_dense["bias"])
        open_dense = None

    for index, item in enumerate(items):
        if item.kind == "activation":
            if _name(item.spec) == "identity":
                continue  # nn.Identity anywhere computes nothing
            if _name(item.spec) == "softmax" and not (top and index == len(items) - 1 and open_dense is not None and open_dense["activation"] == "identity"):
                raise ValueError(f"from_torch: {item.where}: softmax is supported only as the last module, right after an nn.Linear")
            if open_dense is None or open_dense["activation"] != "identity":
                # Not right after an nn.Linear (after a norm, a sum, or another activation): a stage of its own.
                close()
                layers.append(Activation(item.spec))
                built.stages.append((_ACTIVATION, item.qualified, item))
                continue
            open_dense["activation"] = item.spec
            module, qualified, _ = built.stages[open_dense["stage"]]
            built.stages[open_dense["stage"]] = (module, qualified, item)
            continue
        close()
        if item.kind == "residual":
            inner, out = _build(item.inner, width, built, top=False)
            close()
            if width is not None and out is not None and out != width:
                raise ValueError(
                    f"from_torch: {item.where} adds a block's output of {out} units to its input of {width}; "
                    f"a residual sum needs equal widths"
                )
            layers.append(Residual(tuple(inner)))
            built.stages.append((None, "", None))
            width = width if width is not None else out
            continue
        spec, module = item.spec, item.module
        fan_in = _fan_in(module)
        if width is not None and fan_in is not None and fan_in != width:
            raise ValueError(f"from_torch: {item.where}: takes {fan_in} inputs but gets {width}")
        width = width if fan_in is None else fan_in
        if isinstance(spec, Dense):
            open_dense = {"index": len(layers), "units": spec.units, "activation": "identity", "bias": spec.bias, "stage": len(built.stages)}
            width = spec.units
        layers.append(spec)
        built.stages.append((module, item.qualified, None))
    close()
    return layers, width


def _fan_in(module: Any) -> int | None:
    """The width a module reads, where it fixes one (Linear, BatchNorm1d, LayerNorm)."""
    for attribute in ("in_features", "num_features"):
        if hasattr(module, attribute):
            return int(getattr(module, attribute))
    shape = getattr(module, "normalized_shape", None)
    return int(shape[-1]) if shape else None


def _first_width(items: tuple[_Item, ...]) -> int | None:
    for item in items:
        width = _first_width(item.inner) if item.kind == "residual" else _fan_in(item.module) if item.kind == "layer" else None
        if width is not None:
            return width
    return None


def _has_linear(items: tuple[_Item, ...]) -> bool:
    return any(isinstance(i.spec, Dense) or (i.kind == "residual" and _has_linear(i.inner)) for i in items)


def _assemble(items: tuple[_Item, ...], loss: Spec, inputs: int | None) -> TorchNetwork:
    if not _has_linear(items):
        raise ValueError("from_torch needs at least one nn.Linear")
    _called_once(items)
    built = _Built([])
    layers, _ = _build(items, inputs, built, top=True)
    inputs = inputs if inputs is not None else _first_width(items)
    last = layers[-1]
    required = _required(loss)
    if required is not None:
        have = _name(last.activation) if isinstance(last, Dense) else f"a {type(last).__name__} layer"
        if have != required:
            if have != "identity":
                raise ValueError(f"loss {_name(loss)} is defined on {required} outputs; the module ends with {have}, not logits")
            layers[-1] = Dense(last.units, required, last.bias)  # as nn.CrossEntropyLoss applies softmax to the logits
    try:
        net = Network(inputs, tuple(layers), loss)
    except SpecError as exc:
        raise ValueError(f"from_torch: {exc.field}: {exc.message}") from None
    params, state, names = _arrays(net, built)
    return TorchNetwork(net, params, state, names)


def _called_once(items: tuple[_Item, ...], seen: dict[int, str] | None = None) -> None:
    """A layer called twice would share its parameters, which chainrule's layers never do."""
    seen = {} if seen is None else seen
    for item in items:
        if item.kind == "residual":
            _called_once(item.inner, seen)
        elif item.kind == "layer":
            if id(item.module) in seen:
                raise ValueError(f"from_torch: {item.where} is called twice; each chainrule layer has parameters of its own")
            seen[id(item.module)] = item.where


def _arrays(net: Network, built: _Built) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, str]]:
    """Each stage's parameters and state from its torch module, by the names the network gives them."""
    params: dict[str, np.ndarray] = {}
    state: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}
    if [s.kind for s in net.stages] != [_kind_of(module) for module, _, _ in built.stages]:
        raise RuntimeError("from_torch numbered its layers unlike the network's stages")  # a bug here, not in the module
    for stage, (module, qualified, activation) in zip(net.stages, built.stages):
        kind = KINDS[stage.kind]
        for out, shapes in ((params, kind.parameters(stage)), (state, kind.state(stage))):
            for name, shape in shapes.items():
                prefix = name.rstrip("0123456789")
                if activation is not None and prefix in _activation_parameters(stage):
                    out[name] = np.array(float(stage.choice.values[prefix]))
                    names[name] = f"{activation.qualified}.weight"  # nn.PReLU's one parameter
                    continue
                tensor = getattr(module, TORCH_ARRAYS[prefix], None)
                if tensor is None:  # a norm without affine parameters: γ = 1, β = 0
                    out[name] = np.full(shape, kind.initial(stage, name, shape), dtype=np.float64)
                    continue
                out[name] = tensor.detach().cpu().double().numpy().reshape(shape).copy()
                names[name] = f"{qualified}.{TORCH_ARRAYS[prefix]}"
        for name in kind.leaves(stage, 1):
            names[name] = qualified
    return params, state, names


def _kind_of(module: Any) -> str:
    """The kind a stage read from ``module`` has (None: a residual sum)."""
    if module is None:
        return "residual"
    if module is _ACTIVATION:
        return "activation"
    return next(kind.name for kind in KINDS.values() if type(module).__name__ in kind.torch_modules)


def _activation_parameters(stage: Any) -> set[str]:
    return {p.name for p in stage.choice.entry.parameters if p.learnable} if stage.choice is not None else set()


def _name(spec: Spec) -> str:
    return spec if isinstance(spec, str) else str(spec.get("name"))


def _required(loss: Spec) -> str | None:
    entry = LOSSES.get(_name(loss))
    return None if entry is None else entry.requires


def _fixed(spec: Spec) -> Callable[[Any], Spec]:
    return lambda module: spec


def _only(condition: bool, message: str) -> None:
    """Raise the one-line reason a module's settings have no catalog entry."""
    if not condition:
        raise ValueError(message)


# --- what each module means ----------------------------------------------------------------------


def _linear(m: Any) -> Layer:
    return Dense(int(m.out_features), "identity", m.bias is not None)


def _batch_norm(m: Any) -> Layer:
    _only(m.track_running_stats, "track_running_stats=False; chainrule's batch norm keeps running statistics for evaluation")
    _only(m.momentum is not None, "momentum=None (a cumulative average); chainrule's running statistics take a momentum, as torch's default 0.1")
    return BatchNorm(float(m.eps), float(m.momentum))


def _layer_norm(m: Any) -> Layer:
    _only(len(m.normalized_shape) == 1, f"normalized_shape={tuple(m.normalized_shape)}; only the last dimension is supported")
    return LayerNorm(float(m.eps))


def _prelu(m: Any) -> Spec:
    _only(m.weight.numel() == 1, f"num_parameters={m.weight.numel()}; only nn.PReLU(num_parameters=1) is supported")
    return {"name": "prelu", "alpha": float(m.weight.detach().double().reshape(()))}


def _softplus(m: Any) -> Spec:
    _only(m.beta == 1, f"beta={m.beta}; only beta=1 is supported")
    return "softplus"


def _gelu(m: Any) -> Spec:
    _only(m.approximate in ("none", "tanh"), f'approximate={m.approximate!r}; supported: "none", "tanh"')
    return "gelu" if m.approximate == "none" else "gelu_tanh"


def _hardtanh(m: Any) -> Spec:
    _only((m.min_val, m.max_val) == (-1, 1), f"min_val={m.min_val}, max_val={m.max_val}; only -1 and 1 are supported")
    return "hard_tanh"


def _softmax(m: Any) -> Spec:
    _only(m.dim in (-1, 1), f"dim={m.dim}; supported: dim=-1 or dim=1")
    return "softmax"


#: What each torch module computes, by class name: module -> a layer (``Dense``,
#: ``BatchNorm``, ...) or a catalog activation. A module whose settings have no entry
#: raises ValueError with the reason.
TORCH_MODULES: dict[str, Callable[[Any], Spec | Layer]] = {
    "Linear": _linear,
    "BatchNorm1d": _batch_norm,
    "LayerNorm": _layer_norm,
    "Dropout": lambda m: Dropout(float(m.p)),
    "Identity": lambda m: "identity",
    "Sigmoid": lambda m: "sigmoid",
    "Tanh": lambda m: "tanh",
    "ReLU": lambda m: "relu",
    "LeakyReLU": lambda m: {"name": "leaky_relu", "alpha": float(m.negative_slope)},
    "PReLU": _prelu,
    "ELU": lambda m: {"name": "elu", "alpha": float(m.alpha)},
    "SELU": lambda m: "selu",
    "Softplus": _softplus,
    "SiLU": lambda m: "silu",
    "GELU": _gelu,
    "Softsign": lambda m: "softsign",
    "Hardtanh": _hardtanh,
    "Softmax": _softmax,
}

#: The torch tensor behind each chainrule array, by the array's name without its layer number.
TORCH_ARRAYS: dict[str, str] = {
    "W": "weight", "b": "bias", "gamma": "weight", "beta": "bias", "mean": "running_mean", "var": "running_var",
}  # fmt: skip

#: Functions and tensor methods in a forward, by fx's qualified name: the module class
#: (an entry of ``TORCH_MODULES``) built from the call's other arguments.
TORCH_FUNCTIONS: dict[str, str] = {
    "torch.relu": "ReLU", "torch.nn.functional.relu": "ReLU", "Tensor.relu": "ReLU",
    "torch.tanh": "Tanh", "torch.nn.functional.tanh": "Tanh", "Tensor.tanh": "Tanh",
    "torch.sigmoid": "Sigmoid", "torch.nn.functional.sigmoid": "Sigmoid", "Tensor.sigmoid": "Sigmoid",
    "torch.nn.functional.leaky_relu": "LeakyReLU", "torch.nn.functional.elu": "ELU",
    "torch.selu": "SELU", "torch.nn.functional.selu": "SELU", "torch._C._nn.softplus": "Softplus",
    "torch.nn.functional.silu": "SiLU", "torch._C._nn.gelu": "GELU", "torch.nn.functional.softsign": "Softsign",
    "torch.nn.functional.hardtanh": "Hardtanh",
    "torch.softmax": "Softmax", "torch.nn.functional.softmax": "Softmax", "Tensor.softmax": "Softmax",
}  # fmt: skip

#: The calls that read as a residual sum when one summand is computed from the other.
RESIDUAL_SUMS = frozenset({"operator.add", "operator.iadd", "torch.add", "Tensor.add", "Tensor.add_"})

SUPPORTED_OPERATIONS = "supported operations: x + f(x) (a residual sum) and the activations " + ", ".join(
    sorted({name.rsplit(".", 1)[1] for name in TORCH_FUNCTIONS})
)
