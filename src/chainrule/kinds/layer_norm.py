"""The layer-norm kind: each example normalized over its units, then γ x̂ + β.

Its statistics are each example's own, so training and evaluation compute the same thing
and a batch of one is fine (PyTorch's ``nn.LayerNorm`` over the last dimension).

>>> LayerNorm().eps
1e-05
"""

from __future__ import annotations

from dataclasses import dataclass

from .normalize import Normalization


@dataclass(frozen=True)
class LayerNorm:
    """Layer normalization with learned γ and β (PyTorch's ``nn.LayerNorm``)."""

    eps: float = 1e-5


class LayerNormKind(Normalization):
    name = "layer_norm"
    spec = LayerNorm
    keys = ("eps",)
    torch_modules = ("LayerNorm",)
    over = "units"
    short = "LN"
    words = "layer normalization"

    def parse(self, table, where, parse_layers):
        layer = LayerNorm(**self._options(table, where))
        self.check(layer, where)
        return layer


LAYER_NORM = LayerNormKind()
