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

``"stall"`` is null, or why the run stalled: ``{"since", "loss", "initial_loss",
"gradient_norm", "largest_norm", "layers": [{"layer", "activation", "saturated", "dead"}],
"cause", "message"}``. ``"classified"`` is null (regression, or no finite prediction), or
what the trained classifier makes of the test set: ``{"confusion": [[int]] (rows: the true
class, columns: the predicted one), "missed": int, "misses": [{"row", "truth",
"predicted"}]}``.

JSON has no NaN or infinity: a number that is not finite is written as null. With an
optimizer, ``"update"`` adds its equations and the worked step as SymPy text, and
``"parameter"``, the entry the worked step moves: ``{"array": "W1", "index": [0, 0]}``.

The charts are drawn by ``chainrule.plots`` from the history's numbers; the update rule's
equations come from ``chainrule.optim`` through the caller, because ``optim`` computes with
NumPy and ``render`` does not import it.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sympy as sp
from markupsafe import Markup

from .. import __version__, plots
from ..graph import Notation
from . import printing
from .environment import format_number, html_environment

if TYPE_CHECKING:
    from ..optim import Hyperparameter, Optimizer, Schedule, WorkedUpdate
    from ..train import TrainingResult

#: Longer histories show their epoch table in a box that scrolls.
TABLE_ROWS = 30
#: A chart whose values span this many decades or more has a log axis: a loss that falls
#: from 0.25 to 2·10⁻⁵ would otherwise sit on zero for most of the run.
LOG_DECADES = 2
#: The opacity of a confusion-matrix cell that holds its whole row; an error's cell starts at ERROR_SHADE.
SHADE = 0.45
ERROR_SHADE = 0.15
#: The significant digits of every number of the worked step, its arithmetic and its results
#: alike: a reader follows a step to that, and more is noise.
WORKED_DIGITS = 6


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

    losses = {"training": [e.train_loss for e in history], "validation": [e.val_loss for e in history]}
    span = plots.decades([v for values in losses.values() for v in values])
    log = span >= LOG_DECADES
    charts = [
        chart(
            "loss-chart",
            "The mean loss over the training and the validation set after each epoch"
            + (f", on a log scale: it spans {math.floor(span)} decades." if log else "."),
            "Loss",
            "mean loss",
            losses,
            log=log,
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
    rates = [e.learning_rate for e in history]
    if len(set(rates)) > 1:
        # A step schedule multiplies: its drops read as equal steps on a log axis. A cosine reads as one on a linear one.
        log = result.settings.schedule == "step" and plots.decades(rates) >= 1
        charts.append(
            chart(
                "rate-chart",
                f"The learning rate of each epoch, as the {result.settings.schedule} schedule set it"
                + (", on a log scale." if log else "."),
                "Learning rate",
                "learning rate η",
                {"learning rate": rates},
                log=log,
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


@dataclass(frozen=True)
class ConfusionRow:
    """One true class of the confusion matrix: its examples by predicted class, each with its share of the row."""

    truth: str
    #: (count, its cell's shade: a CSS alpha that grows with the count's share of the row, "0.42")
    cells: tuple[tuple[int, str], ...]
    total: int


def _confusion(result: TrainingResult) -> list[ConfusionRow]:
    seen = result.classified
    if seen is None:
        return []
    names = result.classes or tuple(f"class {i}" for i in range(len(seen.confusion)))
    rows = []
    for i, (name, counts) in enumerate(zip(names, seen.confusion)):
        total = sum(counts)
        rows.append(ConfusionRow(name, tuple((c, _shade(c, total, i == j)) for j, c in enumerate(counts)), total))
    return rows


def _shade(count: int, total: int, right: bool) -> str:
    """A confusion cell's opacity: its share of the row, at most SHADE so black digits stay readable; an error shows even when rare.

    >>> _shade(35, 36, True), _shade(1, 36, False), _shade(0, 36, False)
    ('0.44', '0.16', '0')
    """
    if not count or not total:
        return "0"
    return f"{SHADE * count / total + (0 if right else ERROR_SHADE):.2f}"


def _predictions(result: TrainingResult) -> list[Chart]:
    """The pictures of what the trained classifier does: a 2-D set's decision boundary, an image set's misses."""
    seen = result.classified
    if seen is None:
        return []
    charts = []
    names = result.classes or tuple(f"class {i}" for i in range(len(seen.confusion)))
    if seen.boundary is not None:
        b = seen.boundary
        svg = plots.boundary(b.x, b.y, b.predicted, b.points, classes=names, xlabel="x₁", ylabel="x₂",
                             title=f"Decision boundary on {result.settings.data}", margin=b.margin)  # fmt: skip
        charts.append(Chart(
            "boundary-chart",
            f"The class the trained network predicts at each point of the plane (shaded), the border between the "
            f"classes (the black line), and the {len(b.points)} training examples, each marked by its true class.",
            Markup(svg),
        ))  # fmt: skip
    pictured = [m for m in seen.misses if m.image]
    if pictured:
        svg = plots.images([m.image for m in pictured], [f"#{m.row}: {m.truth} → {m.predicted}" for m in pictured],
                           title="Misclassified test images")  # fmt: skip
        more = f" (the first {len(pictured)} of {seen.missed})" if seen.missed > len(pictured) else ""
        charts.append(Chart(
            "misses-chart",
            f"The test images the trained network gets wrong{more}: test row, true class → predicted class.",
            Markup(svg),
        ))  # fmt: skip
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


@dataclass(frozen=True)
class WorkedParameter:
    """The entry a worked step moves, as documents write it: w⁽¹⁾₁₁, and what it is."""

    symbol: sp.Symbol
    notation: Notation
    what: str  # "the weight from input 1 to unit 1 of layer 1"
    code: str  # "W1[0, 0]": the entry in the arrays of the JSON and the generated code


#: Each kind of parameter array by the letters of its name: the letter documents write, and what an entry is.
_ENTRIES = {
    "W": ("w", "w", "weight"),
    "b": ("b", "b", "bias"),
    "gamma": ("\\gamma", "γ", "scale γ"),
    "beta": ("\\beta", "β", "shift β"),
}


def worked_parameter(entry: tuple[str, tuple[int, ...]] | None) -> WorkedParameter | None:
    """The worked step's parameter: ("W1", (0, 0)) is w⁽¹⁾₁₁, the weight from input 1 to unit 1 of layer 1.

    >>> p = worked_parameter(("W2", (2, 0)))
    >>> p.what, p.code, printing.text_name(p.symbol, {p.symbol: p.notation})
    ('the weight from unit 1 of layer 1 to unit 3 of layer 2', 'W2[2, 0]', 'w⁽²⁾₃₁')
    >>> worked_parameter(("b1", (1,))).what
    'the bias of unit 2 of layer 1'
    """
    if entry is None:
        return None
    name, index = entry
    letters, digits = name.rstrip("0123456789"), name[len(name.rstrip("0123456789")):]
    layer = int(digits) if digits else None
    code = f"{name}[{', '.join(map(str, index))}]" if index else name
    tex, text, kind = _ENTRIES.get(letters, (letters, letters, f"parameter {letters}"))
    where = f" of layer {layer}" if layer is not None else ""
    if letters == "W" and len(index) == 2 and layer is not None:
        source = f"input {index[1] + 1}" if layer == 1 else f"unit {index[1] + 1} of layer {layer - 1}"
        what = f"the weight from {source} to unit {index[0] + 1}{where}"
    elif len(index) == 1:
        what = f"the {kind} of unit {index[0] + 1}{where}"
    else:
        what = f"the {kind}{where}"
    notation = Notation(tex, text, layer, tuple(i + 1 for i in index))
    return WorkedParameter(sp.Symbol(f"{name}_worked", real=True), notation, what, code)


class _WorkedPrinter(printing.NotationMathMLPrinter):
    """The MathML printer of a worked step: every number in one form, WORKED_DIGITS significant digits.

    2.53718·10⁻⁵, 1·10⁻⁸, 0.000253718, 1000: SymPy's own floats read 1.0·10⁻⁸ and 1000.0, and
    the step's results, printed apart, read 2.53718265e-05 beside them.
    """

    def _print_Float(self, e):
        value = float(e)
        text = f"{abs(value):.{WORKED_DIGITS}g}"
        sign = "\u2212" if value < 0 else ""
        if "e" not in text:
            return self._el("mn", text=sign + text)
        mantissa, exponent = text.split("e")
        power = self._el("msup", self._el("mn", text="10"), self._el("mn", text=str(int(exponent)).replace("-", "\u2212")))
        return self._el("mrow", self._el("mn", text=sign + mantissa), self._el("mo", text="·"), power)

    def _print_Mul(self, expr):
        # A product written in order (the equations are) with a dot between its factors:
        # 0.9 0.5 side by side would read as one number, "0.90.5".
        if self._settings["order"] != "none" or not isinstance(expr, sp.Mul):
            return super()._print_Mul(expr)
        negative, numer, denom = printing._as_written(expr)

        def row(factors):
            out = self._el("mrow")
            for i, f in enumerate(factors):
                if i:
                    out.appendChild(self._el("mo", text="·"))
                out.appendChild(self._fenced(f) if printing._needs_parens(f, i, len(factors)) else self._print(f))
            return out

        top = row(numer) if numer else self._el("mn", text="1")
        body = self._el("mfrac", top, row(denom)) if denom else top
        return self._el("mrow", self._el("mo", text="-"), body) if negative else body


def _worked_mathml(notation: Mapping) -> Callable[[Any], str]:
    """expr -> MathML, as ``printing.mathml_printer`` writes it, with the worked step's numbers."""
    printer = _WorkedPrinter({"notation": notation, "mul_symbol": "dot"})

    def show(expr) -> str:
        element = printer._print(sp.Float(expr) if isinstance(expr, float) else expr)
        # the finishing touches every MathML of chainrule gets (true minus signs, flat parentheses, escaped text)
        printing._true_minus(element)
        printing._flat_parens(element)
        printing._escaped(element)
        return element.toxml()

    return show


def _printer_notation(notation: Mapping[sp.Symbol, tuple[str, str]] | None) -> dict[sp.Symbol, Notation]:
    """optim's (LaTeX, Unicode) pairs as the printers' ``Notation``."""
    written = {}
    for symbol, (tex, text) in (notation or {}).items():
        # "m_{t-1}" is m with the subscript t-1: set as a subscript, so that m stays an italic letter.
        match = re.fullmatch(r"(.+?)_\{?([^{}]+)\}?", tex)
        if match is None:
            written[symbol] = Notation(tex, text)
        else:
            base = _italic_hat(re.split(r"[_ₜ₋₀₁₂₃₄₅₆₇₈₉]", text)[0])
            written[symbol] = Notation(match.group(1), base, subscript=match.group(2).replace("\\", ""))
    return written


def _italic_hat(text: str) -> str:
    """m̂ with an italic m: a letter and a combining hat are two characters, which MathML sets upright.

    >>> _italic_hat("m̂"), _italic_hat("θ")
    ('𝑚̂', 'θ')
    """
    if len(text) == 2 and text[1] == "\u0302" and "a" <= text[0] <= "z":
        return ("\u210e" if text[0] == "h" else chr(0x1D44E + ord(text[0]) - ord("a"))) + text[1]
    return text


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(value)


def _significant(value: float, digits: int) -> str:
    """A table's number to ``digits`` significant digits, with a true minus sign.

    >>> _significant(-0.000123456, 4), _significant(2.27623e-05, 5), _significant(-0.0, 5)
    ('−0.0001235', '2.2762e-05', '0')
    """
    return format_number(value, digits).replace("-", "\u2212", 1) if value < 0 else format_number(value, digits)


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
        "predictions": _predictions(result),
        "confusion": _confusion(result),
        "seen": result.classified,
        "parameter": worked_parameter(result.first_entry) if rule is not None and rule.worked else None,
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
    parameter = worked_parameter(result.first_entry)
    if parameter is not None:
        notation = {**notation, parameter.symbol: parameter.notation}
    env = html_environment(notation)
    # A worked step multiplies numbers, and 0.01 0.5 side by side would read as one number.
    arithmetic = _worked_mathml(notation)
    env.filters.update({"arith": lambda expr: Markup(arithmetic(expr)), "percent": _percent, "sig": _significant})
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
        "stall": None if result.stall is None else {
            **{f.name: json_value(getattr(result.stall, f.name)) for f in fields(result.stall) if f.name != "layers"},
            "layers": [_record(l) for l in result.stall.layers], "message": result.stall.message,
        },
        "classified": None if result.classified is None else {
            "confusion": json_value(result.classified.confusion),
            "missed": result.classified.missed,
            "misses": [{"row": m.row, "truth": m.truth, "predicted": m.predicted} for m in result.classified.misses],
        },
    }  # fmt: skip
    if rule is not None:
        doc["update"] = {
            "optimizer": rule.optimizer.name,
            "hyperparameters": {p.name: json_value(v) for p, v in rule.values},
            "parameter": None if result.first_entry is None else {
                "array": result.first_entry[0], "index": list(result.first_entry[1]),
            },
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
