"""The batch-norm kind: each unit normalized over the examples of the batch, then γ x̂ + β.

Training uses the batch's mean and variance and updates running statistics
(μ ← (1 − m) μ + m μ_batch, and likewise σ² with the batch variance divided by n − 1, as
PyTorch's ``BatchNorm1d``); evaluation uses the running statistics. Because μ and σ² couple
the examples, its scalar derivation is over a batch of examples.

>>> BatchNorm().eps, BatchNorm().momentum
(1e-05, 0.1)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec import SpecError, describe
from .normalize import Normalization


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalization with learned γ and β (PyTorch's ``nn.BatchNorm1d``)."""

    eps: float = 1e-5
    #: The weight of the new batch in the running statistics.
    momentum: float = 0.1


class BatchNormKind(Normalization):
    name = "batch_norm"
    spec = BatchNorm
    keys = ("eps", "momentum")
    couples_batch = True
    torch_modules = ("BatchNorm1d",)
    over = "examples"
    short = "BN"
    words = "batch normalization"

    def parse(self, table, where, parse_layers):
        layer = BatchNorm(**self._options(table, where))
        self.check(layer, where)
        return layer

    def check(self, spec, where):
        super().check(spec, where)
        m = spec.momentum
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 < m <= 1:
            raise SpecError(f"{where}.momentum", f"must be a number above 0 and at most 1 (PyTorch's default is 0.1), got {describe(m)}")

    def state(self, stage):
        return {f"mean{stage.number}": (stage.units,), f"var{stage.number}": (stage.units,)}


BATCH_NORM = BatchNormKind()
