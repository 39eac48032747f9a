"""The JSON document: the worked example's numbers and the symbolic results as text.

Contract (keys may be added, not changed)::

    {"loss": float,
     "parameters": {"W1": {"value": [[...]], "gradient": [[...]], "updated": [[...]]}, "b1": {...}, ...},
     "layer_rules": {"forward": [{"label", "layer", "lhs", "rhs", "code", "note"}, ...], "loss": [...],
                     "backward": [...], "kernels": [{"name", "args", "expr", "title"}, ...],
                     "proof": {"batch", "entries", "identical", "expanded", "evaluated", "failures", "passed"} | null},
     "gradient_flow": {"activations", "layers", "product", "numbers"}}   (render/flow_section.py)

The layer rules' ``lhs`` and ``rhs`` are LaTeX, as the documents write them; a kernel's
``expr`` is in the formula language (``chainrule.expr``), or null where it cannot say it
(a piecewise function), with ``latex`` beside it either way.

Symbolic results are written with the symbols' plain names (``delta1_2*x_1``); the
``symbols`` table says how each is written in the documents (δ⁽¹⁾₂).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..expr import to_formula
from ..graph import parameter_names
from ..kinds import KINDS
from .flow_section import flow_document
from .printing import latex_printer, plain_printer, text_name
from .steps import closed_form_shown

if TYPE_CHECKING:
    from ..derive import Derivation
    from ..layers import LayerRules
    from ..numeric import WorkedExample
    from ..proof import Proof


def _nested(symbols, leaf) -> Any:
    if isinstance(symbols, tuple):
        return [_nested(s, leaf) for s in symbols]
    return leaf(symbols)


def _formula(expr) -> str | None:
    try:
        return to_formula(expr)
    except ValueError:  # Piecewise, floats: the formula language has no way to write them
        return None


def layer_rules_document(derivation: Derivation, rules: LayerRules, proof: Proof | None) -> dict[str, Any]:
    """The batch-level rules as data: equations in LaTeX, code lines, kernels, and what the proof checked."""
    tex = latex_printer({**derivation.notation, **rules.notation})

    def rule(r) -> dict[str, Any]:
        return {"label": r.label, "layer": r.layer, "lhs": tex(r.lhs), "rhs": tex(r.rhs), "code": r.code, "note": r.note}

    return {
        "forward": [rule(r) for r in rules.forward],
        "loss": [rule(r) for r in rules.loss],
        "backward": [rule(r) for r in rules.backward],
        "kernels": [
            {
                "name": k.name,
                "args": [str(a) for a in k.args],
                "expr": _formula(k.expr),
                "latex": tex(k.expr),
                "title": k.title,
            }
            for k in rules.kernels.values()
        ],
        "proof": None
        if proof is None
        else {
            "batch": proof.batch,
            "network": list(proof.network.sizes),
            "entries": proof.entries,
            "identical": proof.identical,
            "expanded": proof.expanded,
            "evaluated": proof.evaluated,
            "failures": list(proof.failures),
            "passed": proof.passed,
        },
    }


def json_document(
    derivation: Derivation, example: WorkedExample | None, rules: LayerRules | None = None, proof: Proof | None = None
) -> str:
    """The JSON document; ``rules`` (``layer_rules(derivation.network)``) and their ``proof`` add ``layer_rules``."""
    graph, net = derivation.graph, derivation.network
    text = plain_printer()

    def closed(expr) -> str | None:
        """A closed form as text, or null where it is too long to write out (see steps)."""
        return text(expr) if closed_form_shown(expr) else None

    doc: dict[str, Any] = {
        "title": net.title,
        "network": {
            "inputs": net.inputs,
            "layers": [KINDS[stage.kind].describe(stage) for stage in net.stages],
            "stages": [
                {
                    "number": stage.number,
                    "kind": stage.kind,
                    "title": layer.title,
                    "units": stage.units,
                    "source": stage.source,
                    "skip": stage.skip,
                    "picture": KINDS[stage.kind].picture(stage).style,
                    "nodes": [str(s) for s in layer.nodes],
                    "leaves": {name: _nested(grid, str) for name, grid in layer.leaves.items()},
                }
                for stage, layer in zip(net.stages, graph.layers)
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
        # Every node, mask and adjoint by its plain name, whatever the kind of its stage.
        doc["nodes"] = {str(n.symbol): example.values[n.symbol] for n in graph.nodes}
        doc["masks"] = {str(m): example.values[m] for m in graph.masks}
        doc["adjoints"] = {str(s): example.adjoints[s] for s in derivation.adjoints}
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
            "substituted": _nested(symbols, lambda s: text(derivation.adjoints[s].substituted)),
            "closed": _nested(symbols, lambda s: closed(derivation.adjoints[s].closed)),
        }
        parameters[name] = entry
    doc["parameters"] = parameters
    doc["deltas_symbolic"] = {
        str(a.name): {
            "substituted": text(a.substituted),
            "closed": closed(a.closed),
            "simplified": None if a.simplified is None else text(a.simplified),
            "assumption": a.assumption,
            # The lines of algebra from the substituted form to the simplified one, when shown.
            "steps": [
                {"title": step.title, "expression": text(step.expr), "assuming": None if step.assuming is None else text(step.assuming)}
                for step in a.steps
            ],
        }
        for a in derivation.deltas
    }
    names = graph.adjoint_names
    doc["adjoints_symbolic"] = {
        str(s): {"name": None if a.name is None else str(a.name), "substituted": text(a.substituted), "closed": closed(a.closed)}
        for s, a in derivation.adjoints.items()
        if s not in names or a.name is not None
    }
    doc["layer_equations"] = [
        {"label": eq.label, "layer": eq.layer, "title": eq.title, "lhs": text(eq.lhs), "rhs": text(eq.rhs),
         "explicit": [[text(eq.explicit[i, j]) for j in range(eq.explicit.shape[1])] for i in range(eq.explicit.shape[0])],
         "of": _nested(tuple(eq.of), str)}
        for eq in derivation.equations
    ]  # fmt: skip
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
    doc["gradient_flow"] = flow_document(derivation, example)
    if rules is not None:
        doc["layer_rules"] = layer_rules_document(derivation, rules, proof)
    doc["symbols"] = {str(s): text_name(s, derivation.notation) for s in graph.notation}
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
