"""chainrule: backpropagation, derived exactly and explained step by step.

>>> import chainrule
>>> net = chainrule.Network(inputs=2, layers=[chainrule.Dense(2, "sigmoid"), chainrule.Dense(1, "identity")], loss="mse")
>>> d = chainrule.derive(net)
>>> d.gradient(d.graph.parameters[0]).substituted
delta1_1*x_1
"""

__version__ = "0.1.0"

from .catalog import ACTIVATIONS, LOSSES, REGULARIZERS
from .datasets import DATASETS, Dataset, DataError, load_dataset
from .derive import Derivation, derive
from .model import INIT_SCHEMES, Model, compile
from .network import Dense, Example, Network, SpecError, default_network, load, loads
from .numeric import WorkedExample, draw_point, worked_example
from .optim import OPTIMIZERS, SCHEDULES
from .train import Settings, TrainingResult, fit, settings

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "INIT_SCHEMES",
    "LOSSES",
    "OPTIMIZERS",
    "REGULARIZERS",
    "SCHEDULES",
    "DataError",
    "Dataset",
    "Dense",
    "Derivation",
    "Example",
    "Model",
    "Network",
    "Settings",
    "SpecError",
    "TrainingResult",
    "WorkedExample",
    "compile",
    "default_network",
    "derive",
    "draw_point",
    "fit",
    "load",
    "load_dataset",
    "loads",
    "settings",
    "worked_example",
]
