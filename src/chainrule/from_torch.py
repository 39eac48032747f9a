"""A PyTorch ``nn.Sequential`` of linear layers and activations as a chainrule ``Network``.

``from_torch`` reads the module, never runs it: each ``nn.Linear`` becomes a ``Dense``
layer whose activation is the module that follows it (``identity`` if none does), and the
parameters come out as float64 arrays named as ``model.compile`` expects them. Torch is
imported inside the function, so ``import chainrule`` never loads it.

What each activation module means is one entry of ``TORCH_MODULES``; a module of your own
(say one whose forward calls a custom ``torch.autograd.Function``) is named with
``custom={"MySigmoid": "sigmoid"}``: what it is meant to compute, so that comparing its
gradients with chainrule's tests its backward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .catalog import LOSSES
from .network import Dense, Network

Spec = str | Mapping[str, Any]


def from_torch(
    module: Any,
    loss: Spec = "mse",
    inputs: int | None = None,
    custom: Mapping[str, Spec] | None = None,
) -> tuple[Network, dict[str, np.ndarray]]:
    """An nn.Sequential of nn.Linear and supported activation modules as a chainrule Network, with the module's parameters as float64 arrays ("W1", "b1", ..., "alpha1" for nn.PReLU with one parameter).

    ``loss`` is a chainrule loss name or mapping. A loss defined on softmax outputs
    (``cross_entropy``) matches ``nn.CrossEntropyLoss`` on the module's logits: if the
    Sequential does not end with ``nn.Softmax``, its last layer gets softmax, which is
    what ``CrossEntropyLoss`` applies. ``inputs`` checks the first layer's width.
    ``custom`` maps a module class name to the activation it computes (a catalog name or
    ``{"name": ..., parameters}``); it takes precedence over ``TORCH_MODULES``.

    ``nn.Softplus`` becomes ``softplus``, log(1 + eᶻ) everywhere; torch returns z itself
    where z > 20 (its threshold), a relative difference below 1e-9.

    >>> import torch
    >>> net, params = from_torch(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)))
    >>> [(layer.units, layer.activation) for layer in net.layers], net.loss
    ([(3, 'tanh'), (1, 'identity')], 'mse')
    >>> {name: value.shape for name, value in params.items()}
    {'W1': (3, 2), 'b1': (3,), 'W2': (1, 3), 'b2': (1,)}
    """
    from torch import nn

    if not isinstance(module, nn.Sequential):
        raise TypeError(f"from_torch takes an nn.Sequential, got {type(module).__name__}")
    table: dict[str, Callable[[Any], Spec]] = {**TORCH_MODULES, **{k: _fixed(v) for k, v in (custom or {}).items()}}
    layers: list[Dense] = []
    params: dict[str, np.ndarray] = {}
    # activation of the layer being built: None until a module after its Linear says
    pending: Spec | None = None
    children = list(module)
    for index, child in enumerate(children):
        kind = type(child).__name__
        where = f"module {index} ({kind})"
        if isinstance(child, nn.Linear):
            if layers:
                layers[-1] = Dense(layers[-1].units, "identity" if pending is None else pending, layers[-1].bias)
            fan_in = inputs if not layers else layers[-1].units
            if fan_in is not None and child.in_features != fan_in:
                raise ValueError(f"{where}: takes {child.in_features} inputs but gets {fan_in}")
            number = len(layers) + 1
            params[f"W{number}"] = _array(child.weight)
            if child.bias is not None:
                params[f"b{number}"] = _array(child.bias)
            layers.append(Dense(child.out_features, "identity", child.bias is not None))
            inputs = child.in_features if inputs is None else inputs
            pending = None
            continue
        if kind not in table:
            raise ValueError(f"{where} is not supported; from_torch takes nn.Linear and {', '.join(sorted(TORCH_MODULES))}, or a class named in custom=")
        if not layers:
            raise ValueError(f"{where}: an activation before the first nn.Linear; put an nn.Linear first")
        if pending is not None:
            raise ValueError(f"{where}: a second activation after one nn.Linear; chainrule applies one activation per layer")
        try:
            pending = table[kind](child)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if _name(pending) == "softmax" and index != len(children) - 1:
            raise ValueError(f"{where}: softmax is supported only as the last module")
        if _name(pending) == "prelu":
            params[f"alpha{len(layers)}"] = np.array(float(pending["alpha"]))
    if not layers:
        raise ValueError("from_torch needs at least one nn.Linear")
    last = "identity" if pending is None else pending
    required = _required(loss)
    if required is not None and _name(last) != required:
        if _name(last) != "identity":
            raise ValueError(f"loss {_name(loss)} is defined on {required} outputs; the module ends with {_name(last)}, not logits")
        last = required  # as nn.CrossEntropyLoss applies softmax to the logits
    layers[-1] = Dense(layers[-1].units, last, layers[-1].bias)
    return Network(inputs, tuple(layers), loss), params


def _array(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().double().numpy().copy()


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


#: What each torch activation module computes, by class name: module -> catalog activation.
#: A module whose settings have no entry raises ValueError with the reason.
TORCH_MODULES: dict[str, Callable[[Any], Spec]] = {
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
