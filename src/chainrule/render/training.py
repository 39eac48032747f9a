"""The training report: a run's settings, curves, epoch table and the update rule it used.

JSON contract (keys may be added, not changed)::

    {"title": str, "settings": {"data", "optimizer", "learning_rate", "epochs", "batch_size",
                                "seed", "init", "schedule", "hyperparameters", "clip_value", "clip_norm"},
     "stopped": str | null, "train_size": int, "val_size": int, "test_size": int, "classes": [str],
     "test_loss": float | null, "test_accuracy": float | null,
     "history": [{"epoch": 1, "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                  "learning_rate", "gradient_norms": {"layer 1": float, ...}, "steps", "seconds"}, ...],
     "state": {"mean2": [float, ...], "var2": [float, ...], ...}}

``"state"`` holds the running statistics as training left them (batch norm's running mean
and variance per unit, which evaluation uses); it is ``{}`` for a network without any.
``"gradient_norms"`` has one entry per numbered layer that has parameters.

JSON has no NaN or infinity: a number that is not finite is written as null. With an
optimizer, ``"update"`` adds its equations and the worked step as SymPy text.

The charts are drawn by ``chainrule.plots`` from the history's numbers; the update rule's
equations come from ``chainrule.optim`` through the caller, because ``optim`` computes with
NumPy and ``render`` does not import it.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sympy as sp
from markupsafe import Markup

from .. import __version__, plots
from ..graph import Notation
from . import printing
from .environment import html_environment

if TYPE_CHECKING:
    from ..optim import Hyperparameter, Optimizer, Schedule, WorkedUpdate
    from ..train import TrainingResult

#: Longer histories show their epoch table in a box that scrolls.
TABLE_ROWS = 30


@dataclass(frozen=True)
class Chart:
    """One chart of the report: its anchor in the page, its caption and its inline SVG."""

    key: str
    caption: str
    svg: Markup


@dataclass(frozen=True)
class UpdateRule:
    """What the report shows of the optimizer and the schedule, with the values the run used."""

    optimizer: Optimizer
    values: tuple[tuple[Hyperparameter, float], ...]
    worked: tuple[WorkedUpdate, ...]
    schedule: Schedule | None
    schedule_values: tuple[tuple[Hyperparameter, float], ...]


def _layers(result: TrainingResult) -> list[str]:
    """Every layer that has a gradient norm in some epoch, in the order they first appear."""
    return list(dict.fromkeys(name for e in result.history for name in e.gradient_norms))


def _classification(result: TrainingResult) -> bool:
    return bool(result.classes) or result.test_accuracy is not None or any(
        e.train_accuracy is not None or e.val_accuracy is not None for e in result.history
    )


def _charts(result: TrainingResult) -> list[Chart]:
    history = result.history
    if not history:
        return []
    x = [e.epoch for e in history]

    def chart(key: str, caption: str, title: str, ylabel: str, series: Mapping, log: bool = False) -> Chart:
        svg = plots.curves_svg(series, x=x, xlabel="epoch", ylabel=ylabel, title=title, log=log)
        return Chart(key, caption, Markup(svg))

    charts = [
        chart(
            "loss-chart",
            "The mean loss over the training and the validation set after each epoch.",
            "Loss",
            "mean loss",
            {"training": [e.train_loss for e in history], "validation": [e.val_loss for e in history]},
        )
    ]
    if _classification(result):
        charts.append(
            chart(
                "accuracy-chart",
                "The fraction of examples classified correctly after each epoch.",
                "Accuracy",
                "accuracy",
                {"training": [e.train_accuracy for e in history], "validation": [e.val_accuracy for e in history]},
            )
        )
    layers = _layers(result)
    if layers:
        charts.append(
            chart(
                "gradient-chart",
                "Each layer's gradient norm, averaged over the epoch's steps, on a log scale: "
                "a curve falling towards zero is a layer that stopped learning; one that shoots up, an unstable step.",
                "Gradient norm by layer",
                "L2 norm",
                {name: [e.gradient_norms.get(name) for e in history] for name in layers},
                log=True,
            )
        )
    return charts


def _chosen(parameters: Iterable[Hyperparameter], given: Mapping[str, float]) -> tuple[tuple[Hyperparameter, float], ...]:
    # The run's settings hold every value it used; a default fills in only for a hand-made result.
    return tuple((p, given.get(p.name, p.default)) for p in parameters)


def _update_rule(
    result: TrainingResult, optimizer: Optimizer | None, update: Sequence[WorkedUpdate] | None, schedule: Schedule | None
) -> UpdateRule | None:
    if optimizer is None:
        return None
    given = result.settings.hyperparameters
    return UpdateRule(
        optimizer=optimizer,
        values=_chosen(optimizer.hyperparameters, given),
        worked=tuple(update or ()),
        schedule=schedule,
        schedule_values=_chosen(schedule.parameters, given) if schedule is not None else (),
    )


def _printer_notation(notation: Mapping[sp.Symbol, tuple[str, str]] | None) -> dict[sp.Symbol, Notation]:
    """optim's (LaTeX, Unicode) pairs as the printers' ``Notation``."""
    written = {}
    for symbol, (tex, text) in (notation or {}).items():
        # "m_{t-1}" is m with the subscript t-1: set as a subscript, so that m stays an italic letter.
        match = re.fullmatch(r"(.+?)_\{?([^{}]+)\}?", tex)
        if match is None:
            written[symbol] = Notation(tex, text)
        else:
            base = re.split(r"[_ₜ₋₀₁₂₃₄₅₆₇₈₉]", text)[0]
            written[symbol] = Notation(match.group(1), base, subscript=match.group(2).replace("\\", ""))
    return written


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(value)


def _percent(value: float) -> str:
    """An accuracy as a percentage with two decimals.

    >>> _percent(0.97333), _percent(1.0)
    ('97.33%', '100.00%')
    """
    return f"{value:.2%}"


@dataclass(frozen=True)
class StateRow:
    """One running-statistics array of the trained model: its name, its layer and its values per unit."""

    name: str
    layer: int
    values: tuple[float, ...]


def _state_rows(state: Mapping[str, Any]) -> list[StateRow]:
    """The state arrays in layer order, each flattened to its values per unit.

    >>> [(r.name, r.layer, r.values) for r in _state_rows({"mean2": [0.5, -1.0], "var2": [2.0, 1.0]})]
    [('mean2', 2, (0.5, -1.0)), ('var2', 2, (2.0, 1.0))]
    """
    rows = []
    for name, values in state.items():
        digits = "".join(ch for ch in name if ch.isdigit())
        flat = values.ravel().tolist() if hasattr(values, "ravel") else list(values)
        rows.append(StateRow(name, int(digits) if digits else 0, tuple(float(v) for v in flat)))
    return sorted(rows, key=lambda r: r.layer)


def _context(result: TrainingResult, rule: UpdateRule | None) -> dict[str, Any]:
    shapes = [(name, "×".join(map(str, p.shape)) or "1", p.size) for name, p in result.parameters.items()]
    state = _state_rows(result.state)
    return {
        "title": result.title or "A training run",
        "version": __version__,
        "r": result,
        "s": result.settings,
        "classification": _classification(result),
        "charts": _charts(result),
        "layers": _layers(result),
        "long": len(result.history) > TABLE_ROWS,
        "shapes": shapes,
        "parameter_count": sum(size for _, _, size in shapes),
        "rule": rule,
        "state": state,
        "state_units": max((len(r.values) for r in state), default=0),
        "state_long": len(state) > TABLE_ROWS,
    }


def _html(result: TrainingResult, rule: UpdateRule | None, notation: Mapping) -> str:
    env = html_environment(notation)
    # A worked step multiplies numbers, and 0.01 0.5 side by side would read as one number.
    # 6 significant digits: a reader follows a worked step to that, and more is noise.
    arithmetic = printing.mathml_printer(notation, mul_symbol="dot", float_digits=6)
    env.filters.update({"arith": lambda expr: Markup(arithmetic(expr)), "percent": _percent})
    env.tests["finite"] = _finite
    return env.get_template("training.html").render(_context(result, rule))


def json_value(value: Any) -> Any:
    """A record's field as JSON: mappings as objects, sequences as arrays, non-finite numbers as null."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _record(obj: Any) -> dict[str, Any]:
    return {f.name: json_value(getattr(obj, f.name)) for f in fields(obj)}


def training_json(result: TrainingResult, rule: UpdateRule | None = None) -> str:
    doc: dict[str, Any] = {
        "title": result.title,
        "settings": _record(result.settings),
        "stopped": result.stopped,
        "train_size": result.train_size,
        "val_size": result.val_size,
        "test_size": result.test_size,
        "classes": list(result.classes),
        "test_loss": json_value(result.test_loss),
        "test_accuracy": json_value(result.test_accuracy),
        "history": [_record(e) for e in result.history],
        "state": {r.name: [json_value(v) for v in r.values] for r in _state_rows(result.state)},
    }
    if rule is not None:
        doc["update"] = {
            "optimizer": rule.optimizer.name,
            "hyperparameters": {p.name: json_value(v) for p, v in rule.values},
            "equations": [{"target": str(u.target), "expr": str(u.expr)} for u in rule.optimizer.updates],
            "worked": [
                {"target": str(w.target), "expr": str(w.expr), "substituted": str(w.substituted), "value": json_value(w.value)}
                for w in rule.worked
            ],
        }
        if rule.schedule is not None:
            doc["update"]["schedule"] = {"name": rule.schedule.name, "expr": str(rule.schedule.expr)}
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n"


SUFFIXES = {"html": ".html", "json": ".json"}


def render_training(
    result: TrainingResult,
    fmt: str,
    update: Sequence[WorkedUpdate] | None = None,
    optimizer: Optimizer | None = None,
    schedule: Schedule | None = None,
    notation: Mapping[sp.Symbol, tuple[str, str]] | None = None,
) -> str:
    """The report of a run as text: ``fmt`` is html or json.

    The update-rule section needs ``optimizer`` (``optim.OPTIMIZERS[name]``); ``update`` is
    its worked step (``optim.worked_step(...)``), ``schedule`` the ``optim.SCHEDULES`` entry
    and ``notation`` how symbols are written (``optim.NOTATION``). Without ``optimizer`` the
    report names the optimizer and leaves the equations out.

    >>> from chainrule.train import Epoch, Settings, TrainingResult
    >>> run = TrainingResult("xor", Settings("xor", "sgd", 0.1, 1, None, 0, "glorot_uniform", "constant"),
    ...     (Epoch(1, 0.7, 0.5, float("nan"), 0.5, 0.1, {"layer 1": 0.2}, 1, 0.01),), 0.69, 0.5, None, {})
    >>> doc = json.loads(render_training(run, "json"))
    >>> doc["history"][0]["train_loss"], doc["history"][0]["val_loss"], doc["test_loss"]
    (0.7, None, 0.69)
    >>> "<h1>xor</h1>" in render_training(run, "html")
    True
    """
    if fmt not in SUFFIXES:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(SUFFIXES)}")
    rule = _update_rule(result, optimizer, update, schedule)
    if fmt == "json":
        return training_json(result, rule)
    return _html(result, rule, _printer_notation(notation))


def training_documents(
    result: TrainingResult,
    out_dir: str | Path,
    stem: str,
    formats: Iterable[str] = ("html", "json"),
    update: Sequence[WorkedUpdate] | None = None,
    optimizer: Optimizer | None = None,
    schedule: Schedule | None = None,
    notation: Mapping[sp.Symbol, tuple[str, str]] | None = None,
) -> dict[Path, str]:
    """Every requested document as text, keyed by its path; nothing is written (``render.save`` does).

    >>> from chainrule.train import Settings, TrainingResult
    >>> run = TrainingResult("xor", Settings("xor", "sgd", 0.1, 1, None, 0, "glorot_uniform", "constant"),
    ...     (), None, None, "interrupted (Ctrl-C) in epoch 1", {})
    >>> [path.name for path in training_documents(run, "out", "xor", formats=["json"])]
    ['xor.json']
    """
    return {
        Path(out_dir) / f"{stem}{SUFFIXES[f]}": render_training(result, f, update, optimizer, schedule, notation)
        for f in formats
    }
