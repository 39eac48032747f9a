"""chainrule: backpropagation, derived exactly and explained step by step.

>>> import chainrule
>>> net = chainrule.Network(inputs=2, layers=[chainrule.Dense(2, "sigmoid"), chainrule.Dense(1, "identity")], loss="mse")
>>> d = chainrule.derive(net)
>>> d.gradient(d.graph.parameters[0]).substituted
delta1_1*x_1
"""

__version__ = "0.1.0"

from importlib import import_module

from .catalog import ACTIVATIONS, LOSSES, REGULARIZERS
from .derive import Derivation, derive
from .kinds import KINDS
from .network import (
    Activation,
    BatchNorm,
    Dense,
    Dropout,
    Example,
    LayerNorm,
    Network,
    Residual,
    SpecError,
    default_network,
    load,
    loads,
)
from .numeric import WorkedExample, draw_point, worked_example

#: Training names load their modules on first use, so that deriving never imports them.
_LAZY = {
    "DATASETS": "datasets", "Dataset": "datasets", "DataError": "datasets", "load_dataset": "datasets",
    "INIT_SCHEMES": "model", "Model": "model", "compile": "model",
    "OPTIMIZERS": "optim", "SCHEDULES": "optim",
    "Settings": "train", "TrainingResult": "train", "fit": "train", "settings": "train",
    "from_torch": "from_torch",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        # Importing chainrule.from_torch binds the submodule to the package's attribute of
        # that name; the function, not the module, is what the name means.
        globals()[name] = value
        return value
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "INIT_SCHEMES",
    "KINDS",
    "LOSSES",
    "OPTIMIZERS",
    "REGULARIZERS",
    "SCHEDULES",
    "Activation",
    "BatchNorm",
    "DataError",
    "Dataset",
    "Dense",
    "Derivation",
    "Dropout",
    "Example",
    "LayerNorm",
    "Model",
    "Network",
    "Residual",
    "Settings",
    "SpecError",
    "TrainingResult",
    "WorkedExample",
    "compile",
    "default_network",
    "derive",
    "draw_point",
    "fit",
    "from_torch",
    "load",
    "load_dataset",
    "loads",
    "settings",
    "worked_example",
]
