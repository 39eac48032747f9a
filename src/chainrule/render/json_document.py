"""The JSON document: the worked example's numbers and the symbolic results as text.

Contract (keys may be added, not changed)::

    {"loss": float,
     "parameters": {"W1": {"value": [[...]], "gradient": [[...]], "updated": [[...]]}, "b1": {...}, ...}}

Symbolic results are written with the symbols' plain names (``delta1_2*x_1``); the
``symbols`` table says how each is written in the documents (δ⁽¹⁾₂).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..graph import parameter_names
from .printing import text_name
from .steps import closed_form_shown

if TYPE_CHECKING:
    from ..derive import Derivation
    from ..numeric import WorkedExample


def _nested(symbols, leaf) -> Any:
    if isinstance(symbols, tuple):
        return [_nested(s, leaf) for s in symbols]
    return leaf(symbols)


def _closed(expr) -> str | None:
    """A closed form as text, or null where it is too long to write out (see steps)."""
    return str(expr) if closed_form_shown(expr) else None


def json_document(derivation: Derivation, example: WorkedExample | None) -> str:
    graph, net = derivation.graph, derivation.network
    doc: dict[str, Any] = {
        "title": net.title,
        "network": {
            "inputs": net.inputs,
            "layers": [
                {"units": l.units, "activation": c.name, "parameters": dict(c.values), "bias": l.bias}
                for l, c in zip(net.layers, net.activations)
            ],
            "loss": net.loss_choice.name,
            "loss_parameters": dict(net.loss_choice.values),
            "regularizer": None
            if net.regularizer_choice is None
            else {"name": net.regularizer_choice.name, "parameters": dict(net.regularizer_choice.values)},
        },
        "constants": {str(s): v for s, v in graph.constants.items()},
    }
    if example is not None:
        doc["loss"] = example.loss
        doc["learning_rate"] = example.point.learning_rate
        doc["example"] = {
            "x": list(example.point.x),
            "y": list(example.point.y),
            "seed": example.point.seed,
            "drawn": list(example.point.drawn),
        }
        doc["forward"] = {}
        for layer in graph.layers:
            doc["forward"][f"z{layer.number}"] = [example.values[s] for s in layer.z]
            doc["forward"][f"a{layer.number}"] = [example.values[s] for s in layer.a]
        doc["forward"]["yhat"] = [example.values[s] for s in graph.outputs]
        doc["deltas"] = {f"delta{layer.number}": [example.adjoints[z] for z in layer.z] for layer in graph.layers}
        doc["input_gradient"] = [example.adjoints[x] for x in graph.inputs]
    parameters: dict[str, Any] = {}
    for name, symbols in parameter_names(graph).items():
        entry: dict[str, Any] = {}
        if example is not None:
            entry["value"] = _nested(symbols, lambda s: example.values[s])
            entry["gradient"] = _nested(symbols, lambda s: example.adjoints[s])
            entry["updated"] = _nested(symbols, lambda s: example.updated[s])
            entry["finite_difference"] = _nested(symbols, lambda s: example.check.finite_differences[s])
        entry["symbolic"] = {
            "substituted": _nested(symbols, lambda s: str(derivation.adjoints[s].substituted)),
            "closed": _nested(symbols, lambda s: _closed(derivation.adjoints[s].closed)),
        }
        parameters[name] = entry
    doc["parameters"] = parameters
    doc["deltas_symbolic"] = {
        str(a.name): {
            "substituted": str(a.substituted),
            "closed": _closed(a.closed),
            "simplified": None if a.simplified is None else str(a.simplified),
            "assumption": a.assumption,
        }
        for a in derivation.deltas
    }
    if example is not None:
        check = example.check
        doc["check"] = {
            "method": "fourth-order central differences of the loss",
            "max_relative_error": check.max_relative_error,
            "worst_parameter": str(check.worst),
            "tolerance": check.tolerance,
            "passed": check.passed,
            "kinks": {str(p): {"left": left, "right": right} for p, (left, right) in check.kinks.items()},
        }
    doc["symbols"] = {str(s): text_name(s, derivation.notation) for s in graph.notation}
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
