"""chainrule: backpropagation, derived exactly and explained step by step.

>>> import chainrule
>>> net = chainrule.Network(inputs=2, layers=[chainrule.Dense(2, "sigmoid"), chainrule.Dense(1, "identity")], loss="mse")
>>> d = chainrule.derive(net)
>>> d.gradient(d.graph.parameters[0]).substituted
delta1_1*x_1
"""

__version__ = "0.1.0"

from .catalog import ACTIVATIONS, LOSSES
from .derive import Derivation, derive
from .network import Dense, Example, Network, SpecError, default_network, load, loads
from .numeric import WorkedExample, draw_point, worked_example

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "Dense",
    "Derivation",
    "Example",
    "Network",
    "SpecError",
    "WorkedExample",
    "default_network",
    "derive",
    "draw_point",
    "load",
    "loads",
    "worked_example",
]
