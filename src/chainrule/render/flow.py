"""The gradient-flow report of ``chainrule flow``: HTML, JSON, Markdown and LaTeX.

JSON contract (keys may be added, not changed)::

    {"runs": [{"activation": str, "init": str, "remedy": str, "depth": int, "width": int, "seeds": [int],
               "layers": [int],   # the hidden dense layers' stage numbers
               "at_init": {"weight_gradient_norms": [float per hidden layer, first layer first],
                           "delta_norms": [...], "activation_mean": [...], "activation_std": [...],
                           "saturated_fraction": [...], "weight_gradient_norms_spread": [[low, high], ...]},
               "ratio_first_to_last": float, "verdict": "vanishing" | "healthy" | "exploding",
               "training": [{"epoch": int, "loss": float, "weight_gradient_norms": [...]}, ...]}],
     "clipping": {"activation", "init", "depth", "learning_rate", "clip_norm",
                  "without": {"diverged": bool, "training": [...], "steps": [{"step", "loss", "norm", "clipped_norm"}]},
                  "with_clipping": {...}} | null,
     "settings": {"data", "width", "batch_size", "epochs", "seed", "seeds", "learning_rate", "clip_norm",
                  "clip_learning_rate", "vanishing", "exploding", "optimizer": "sgd", "saturated_below"},
     "theory": {"network": str, "activations": {name: {"sup", "at", ...}}, "layers", "product", "numbers"} | null}

``"theory"`` is the symbolic section's data (``flow_section.flow_document``) for its network.

Epoch 0 of ``training`` is the state at initialization. Numbers that are not finite are null.
The HTML inlines its charts as SVG; Markdown links SVG files and LaTeX PDF files, both
written beside it in ``STEM-figures/``. Every chart is drawn from the study's numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from .. import __version__, plots
from ..symbols import superscript
from .environment import TeX, html_environment, latex_environment, markdown_environment
from .training import json_value

if TYPE_CHECKING:
    from ..flow import FlowStudy, Run, Training

FORMATS = {"html": ".html", "json": ".json", "md": ".md", "tex": ".tex"}


@dataclass(frozen=True)
class Chart:
    """One chart: its key (anchor and file name), its caption, and how to draw it as SVG or PDF."""

    key: str
    caption: str
    draw: Any  # fmt -> str (svg) | bytes (pdf)


def _deepest(study: FlowStudy) -> list[Run]:
    deepest = max(c.depth for c in study.settings.grid)
    return [r for r in study.runs if r.combination.depth == deepest]


def charts(study: FlowStudy) -> list[Chart]:
    """Every chart of the report, in the order it shows them."""
    out: list[Chart] = []
    depths = sorted({c.depth for c in study.settings.grid})
    for depth in depths:
        runs = [r for r in study.runs if r.combination.depth == depth]
        x = list(range(1, depth + 1))
        series = {r.combination.family: list(r.at_init.weight_gradient_norms) for r in runs}
        title = f"Weight-gradient norm by layer, depth {depth}"
        out.append(Chart(
            f"gradients-depth-{depth}",
            f"‖∂L/∂W⁽ˡ⁾‖ (Frobenius) of each hidden layer l at initialization, the mean over "
            f"{study.settings.seeds} seeds, on a log scale: a line falling to the left is a gradient that vanishes "
            "on its way down to the first layer; one rising to the left, a gradient that explodes.",
            lambda fmt, series=series, x=x, title=title: plots.curves(
                series, x=x, xlabel="hidden layer l (1 = next to the input)", ylabel="‖∂L/∂W‖", title=title, log=True, fmt=fmt, legend_below=True),
        ))  # fmt: skip
    deepest = _deepest(study)
    depth = deepest[0].combination.depth
    series = {r.combination.family: list(r.at_init.delta_norms) for r in deepest}
    out.append(Chart(
        "deltas",
        f"‖δ⁽ˡ⁾‖ = ‖∂ℓ/∂z⁽ˡ⁾‖ of one example, the mean over the batch and the seeds, at depth {depth}.",
        lambda fmt: plots.curves(series, x=list(range(1, depth + 1)), xlabel="hidden layer l", ylabel="‖δ‖",
                                 title=f"Error signal by layer, depth {depth}", log=True, fmt=fmt, legend_below=True),
    ))  # fmt: skip
    for r in deepest:
        h = r.histogram
        counts = {f"layer {k}": v for k, v in h.counts.items()}
        name = r.combination.family
        out.append(Chart(
            f"histogram-{_slug(name)}",
            f"The activations a⁽ˡ⁾ of {name} at initialization (first seed, the measured batch): the share of "
            f"values in each of {len(h.edges) - 1} bins, for layers spread over the depth {depth}"
            + (". The layers' scales differ too much for one axis, so each layer's values are divided by its "
               "standard deviation (the table below gives them)." if h.scaled else "."),
            lambda fmt, counts=counts, h=h, name=name: plots.histograms(
                counts, edges=h.edges, xlabel="activation / its layer's std" if h.scaled else "activation value",
                title=f"Activations, {name}", fmt=fmt),
        ))  # fmt: skip
    for r in deepest:
        name = r.combination.family
        epochs = [e.epoch for e in r.training.epochs]
        values = [[e.weight_gradient_norms[k] for e in r.training.epochs] for k in range(depth)]
        out.append(Chart(
            f"heatmap-{_slug(name)}",
            f"‖∂L/∂W⁽ˡ⁾‖ of {name} on the measured batch after each epoch of SGD (epoch 0: at initialization), "
            "as colours on a log scale; a blank cell is a NaN.",
            lambda fmt, values=values, epochs=epochs, name=name: plots.heatmap(
                values, columns=epochs, rows=list(range(1, depth + 1)), xlabel="epoch", ylabel="hidden layer l",
                colorbar="‖∂L/∂W‖", title=f"Gradient norms in training, {name}", fmt=fmt),
        ))  # fmt: skip
    losses = {r.combination.family: [e.loss for e in r.training.epochs] for r in deepest}
    epochs = [e.epoch for e in deepest[0].training.epochs]
    out.append(Chart(
        "training-loss",
        f"The training loss after each epoch of SGD (rate {study.settings.learning_rate:g}) at depth {depth}; "
        "a line that stops is a run whose loss became NaN.",
        lambda fmt: plots.curves(losses, x=epochs, xlabel="epoch", ylabel="mean loss", title=f"Training loss, depth {depth}",
                                 log=True, fmt=fmt, legend_below=True),
    ))  # fmt: skip
    clip = study.clipping
    if clip is not None:
        runs = {"without clipping": clip.without, f"clipped to norm {clip.clip_norm:g}": clip.with_clipping}
        steps = max(len(t.steps) for t in runs.values())
        x = list(range(1, steps + 1))

        def padded(values: list[float]) -> list[float]:
            return values + [math.nan] * (steps - len(values))

        loss_series = {name: padded([s.loss for s in t.steps]) for name, t in runs.items()}
        norm_series = {
            "norm, without clipping": padded([s.norm for s in clip.without.steps]),
            "norm before clipping": padded([s.norm for s in clip.with_clipping.steps]),
            "norm after clipping": padded([s.clipped_norm for s in clip.with_clipping.steps]),
        }
        out.append(Chart(
            "clipping-loss",
            f"The batch loss at each SGD step at rate {clip.learning_rate:g}, {clip.combination.label}: without clipping "
            "and with the global gradient norm clipped; a line that stops is a loss that became NaN.",
            lambda fmt: plots.curves(loss_series, x=x, xlabel="step", ylabel="batch loss", title="Loss with and without clipping",
                                     log=True, fmt=fmt),
        ))  # fmt: skip
        epoch_series = {name: [e.loss for e in t.epochs] for name, t in runs.items()}
        epoch_x = [e.epoch for e in clip.without.epochs]
        out.append(Chart(
            "clipping-epochs",
            "The training loss over the whole training set after each epoch (epoch 0: at initialization), "
            "on a linear scale; a line that stops is a loss that became NaN.",
            lambda fmt: plots.curves(epoch_series, x=epoch_x, xlabel="epoch", ylabel="mean training loss",
                                     title="Training loss per epoch, with and without clipping", fmt=fmt),
        ))  # fmt: skip
        out.append(Chart(
            "clipping-norm",
            "The global gradient norm ‖∇L‖ at each step: of the unclipped run, and of the clipped run before and after clipping.",
            lambda fmt: plots.curves(norm_series, x=x, xlabel="step", ylabel="‖∇L‖", title="Gradient norm per step",
                                     log=True, fmt=fmt),
        ))  # fmt: skip
    return out


def _sig(value: float | None) -> str:
    """Three significant digits, a power of ten written out.

    >>> _sig(2.2375e-12), _sig(0.5), _sig(54500.0), _sig(float("nan"))
    ('2.24 × 10⁻¹²', '0.5', '5.45 × 10⁴', 'NaN')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    text = f"{value:.3g}"
    if "e" not in text:
        return text.replace("-", "−")
    mantissa, exponent = text.split("e")
    return f"{mantissa.replace('-', '−')} × 10{superscript(int(exponent))}"


def _sig_tex(value: float | None) -> Any:
    from .environment import TeX

    text = _sig(value)
    if "×" in text:
        mantissa, power = text.split(" × 10")
        exponent = power.translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789"))
        return TeX(rf"\ensuremath{{{mantissa.replace('−', '-')} \times 10^{{{exponent}}}}}")
    return TeX({"NaN": "NaN", "∞": r"\ensuremath{\infty}", "−∞": r"\ensuremath{-\infty}"}.get(text, rf"\ensuremath{{{text.replace('−', '-')}}}"))


def _percent(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:.1%}"


def _slug(text: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else " " for ch in text).split())


def _training(t: Training) -> list[dict[str, Any]]:
    return [{"epoch": e.epoch, "loss": json_value(e.loss), "weight_gradient_norms": json_value(list(e.weight_gradient_norms))}
            for e in t.epochs]  # fmt: skip


def flow_json(study: FlowStudy, theory: Theory | None = None) -> str:
    s = study.settings
    runs = []
    for r in study.runs:
        c = r.combination
        a = r.at_init
        runs.append({
            "activation": c.activation, "init": c.init, "remedy": c.remedy, "depth": c.depth, "width": r.width,
            "seeds": list(r.seeds), "layers": list(r.layers),
            "at_init": {
                "weight_gradient_norms": json_value(list(a.weight_gradient_norms)),
                "delta_norms": json_value(list(a.delta_norms)),
                "activation_mean": json_value(list(a.activation_mean)),
                "activation_std": json_value(list(a.activation_std)),
                "saturated_fraction": json_value(list(a.saturated_fraction)),
                "weight_gradient_norms_spread": json_value([list(p) for p in r.spread]),
            },
            "ratio_first_to_last": json_value(r.ratio),
            "verdict": r.verdict,
            "activation_std_growth": json_value(r.std_growth),
            "training_diverged": r.training.diverged,
            "training": _training(r.training),
        })  # fmt: skip
    clipping = None
    if study.clipping is not None:
        k = study.clipping

        def part(t: Training) -> dict[str, Any]:
            return {"diverged": t.diverged, "training": _training(t),
                    "steps": [{"step": x.step, "loss": json_value(x.loss), "norm": json_value(x.norm),
                               "clipped_norm": json_value(x.clipped_norm)} for x in t.steps]}  # fmt: skip

        clipping = {"activation": k.combination.activation, "init": k.combination.init, "depth": k.combination.depth,
                    "learning_rate": k.learning_rate, "clip_norm": k.clip_norm,
                    "without": part(k.without), "with_clipping": part(k.with_clipping)}  # fmt: skip
    settings = {
        "data": s.data, "width": s.width, "batch_size": s.batch_size, "epochs": s.epochs, "seed": s.seed,
        "seeds": s.seeds, "learning_rate": s.learning_rate, "optimizer": "sgd", "clip_norm": s.clip_norm,
        "clip_learning_rate": s.clip_learning_rate, "vanishing": s.vanishing, "exploding": s.exploding,
        "saturated_below": study.saturated_below,
    }  # fmt: skip
    doc = {"version": __version__, "runs": runs, "clipping": clipping, "settings": settings,
           "theory": None if theory is None else {"network": theory.network, **theory.data}}
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _context(study: FlowStudy, drawn: list[tuple[Chart, Any]], figures: str) -> dict[str, Any]:
    deepest = _deepest(study)
    return {
        "title": "Gradient flow: vanishing and exploding gradients, measured",
        "version": __version__,
        "st": study,
        "s": study.settings,
        "charts": drawn,
        "figures": figures,
        "deepest": deepest,
        "saturated_below": study.saturated_below,
        "theory": None,
    }


def render_flow(study: FlowStudy, fmt: str, stem: str = "flow", theory: Any = None,
                drawings: dict[tuple[str, str], str | bytes] | None = None) -> dict[str, str | bytes]:
    """One format of the report: its text by file name, and for md and tex its figure files by relative path.

    ``drawings`` keeps each chart drawn once per kind ((key, "svg" or "pdf") -> drawing) for
    the formats of one call: HTML and Markdown show the same SVG.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "json":
        return {f"{stem}.json": flow_json(study, theory)}
    drawings = {} if drawings is None else drawings
    figures = f"{stem}-figures"
    files: dict[str, str | bytes] = {}
    drawn = []
    for chart in charts(study):
        kind = "pdf" if fmt == "tex" else "svg"
        if (chart.key, kind) not in drawings:
            drawings[chart.key, kind] = chart.draw(kind)
        body = drawings[chart.key, kind]
        if fmt == "html":
            drawn.append((chart, Markup(body)))
            continue
        path = f"{figures}/{chart.key}.{kind}"
        files[path] = body if isinstance(body, bytes) else '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"
        drawn.append((chart, path))
    make = {"html": html_environment, "md": markdown_environment, "tex": latex_environment}[fmt]
    env = make({})
    env.filters.update({"sig": _sig_tex if fmt == "tex" else _sig, "pct": _percent})
    env.tests["nan"] = lambda v: isinstance(v, float) and math.isnan(v)
    context = _context(study, drawn, figures)
    context["theory"] = theory
    files[f"{stem}{FORMATS[fmt]}"] = env.get_template(f"flow{FORMATS[fmt]}").render(context)
    return files


def flow_documents(study: FlowStudy, out_dir: str | Path, stem: str = "flow", formats: Iterable[str] = tuple(FORMATS),
                   theory: Any = None) -> dict[Path, str | bytes]:
    """Every requested document and figure, keyed by its path; nothing is written (``render.save`` does)."""
    out: dict[Path, str | bytes] = {}
    drawings: dict[tuple[str, str], str | bytes] = {}
    for fmt in formats:
        for name, body in render_flow(study, fmt, stem, theory, drawings).items():
            out[Path(out_dir) / name] = body
    return out


@dataclass(frozen=True)
class Theory:
    """The derivation documents' gradient-flow section for one network, rendered for each format of the report."""

    key: str
    title: str
    html: Markup
    md: str
    tex: str
    #: The same as data, for the report's JSON (``flow_section.flow_document``).
    data: Mapping[str, Any]
    network: str  # its title


def theory(derivation: Any, example: Any, lead: str) -> Theory:
    """The gradient-flow section of ``derivation``'s documents (``render/flow_section.py``) as fragments of the report.

    ``lead`` is one sentence saying which network it is and why. The section is built once
    and printed with the derivation's own notation, by the same macros as its documents.
    """
    from ..layers import layer_rules
    from . import Shared, _context
    from .flow_section import flow_document, flow_section

    section = flow_section(derivation, example)
    rules = layer_rules(derivation.network)
    notation = {**derivation.notation, **rules.notation}
    shared = Shared((section,), rules, None, notation)
    out = {}
    for fmt, make, name in (("html", html_environment, "flow_theory.html"), ("md", markdown_environment, "flow_theory.md"),
                            ("tex", latex_environment, "flow_theory.tex")):  # fmt: skip
        context = {**_context(derivation, example, shared), "s": section, "lead": lead}
        out[fmt] = make(notation).get_template(name).render(context)
    # Already escaped where they were printed: the report's templates take them as they are.
    return Theory(section.key, section.title, Markup(out["html"]), TeX(out["md"]), TeX(out["tex"]),
                  flow_document(derivation, example), derivation.network.title or "")


def verdict_counts(study: FlowStudy) -> Mapping[str, int]:
    """How many runs got each verdict, for the command's summary line."""
    counts = {"vanishing": 0, "healthy": 0, "exploding": 0}
    for r in study.runs:
        counts[r.verdict] += 1
    return counts
