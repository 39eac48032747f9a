"""The training report (render/training.py, templates/html/training.html) and its charts (plots.py).

Every run here is built by hand, so each test knows the numbers the report must show.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import replace
from xml.dom import minidom

import numpy as np
import pytest
import sympy as sp
from markupsafe import escape

from chainrule import plots
from chainrule.graph import Notation
from chainrule.optim import NOTATION, OPTIMIZERS, SCHEDULES, worked_step
from chainrule.render.environment import format_number
from chainrule.render.printing import mathml
from chainrule.render.training import (
    TABLE_ROWS,
    _printer_notation,
    _worked_mathml,
    render_training,
    training_documents,
)
from chainrule.train import (
    Boundary,
    Classified,
    Epoch,
    Miss,
    Saturation,
    Settings,
    Stall,
    TrainingResult,
)

EVIL = "<script>alert('x')</script> & co"


def history(n: int, classification: bool = True) -> tuple[Epoch, ...]:
    return tuple(
        Epoch(
            epoch=i,
            train_loss=1.5 / i,
            train_accuracy=0.5 + i / (4 * n) if classification else None,
            val_loss=1.6 / i + 0.01,
            val_accuracy=0.45 + i / (4 * n) if classification else None,
            learning_rate=0.1 * 0.5 ** (i // 10),
            gradient_norms={"layer 1": 0.3 / i, "layer 2": 0.9 / i**0.5},
            steps=6 * i,
            seconds=0.01 * i,
        )
        for i in range(1, n + 1)
    )


SETTINGS = Settings(
    data="iris",
    optimizer="momentum",
    learning_rate=0.1,
    epochs=5,
    batch_size=16,
    seed=3,
    init="glorot_uniform",
    schedule="step",
    hyperparameters={"momentum": 0.8, "step_size": 10, "gamma": 0.5},
    clip_value=None,
    clip_norm=2.5,
)
PARAMETERS = {"W1": np.zeros((4, 4)), "b1": np.zeros(4), "W2": np.zeros((3, 4)), "b2": np.zeros(3)}


@pytest.fixture
def classification() -> TrainingResult:
    return TrainingResult(
        "Iris, 4-4-3", SETTINGS, history(5), 0.4321, 0.9333, None, PARAMETERS, 90, 30, 30, ("setosa", "versicolor", "virginica")
    )


@pytest.fixture
def regression() -> TrainingResult:
    settings = replace(SETTINGS, data="sine", optimizer="sgd", schedule="constant", hyperparameters={}, clip_norm=None)
    return TrainingResult("Sine", settings, history(5, classification=False), 0.0123, None, None, {}, 60, 20, 20)


@pytest.fixture
def stopped_empty() -> TrainingResult:
    return TrainingResult(
        "Diverged", replace(SETTINGS, learning_rate=100.0), (), None, None,
        "loss became nan in epoch 1, step 2 (layer 2): the learning rate may be too high", PARAMETERS, 90, 30, 30, ("a", "b", "c"),
    )  # fmt: skip


@pytest.fixture
def stopped_nan() -> TrainingResult:
    runs = list(history(3))
    runs[2] = replace(runs[2], val_loss=math.nan, train_loss=math.inf, gradient_norms={"layer 1": math.nan, "layer 2": 1.0})
    return TrainingResult("Blew up", SETTINGS, tuple(runs), math.nan, None, "loss became inf in epoch 3", PARAMETERS, 90, 30, 30, ("a", "b"))


@pytest.fixture
def long_run() -> TrainingResult:
    return TrainingResult("Long", replace(SETTINGS, epochs=200), history(200), 0.01, 0.99, None, PARAMETERS, 90, 30, 30, ("a", "b", "c"))


@pytest.fixture
def batch_norm() -> TrainingResult:
    """A run of a network with batch norm at layer 2: its running statistics are part of the result."""
    parameters = {"W1": np.zeros((3, 4)), "b1": np.zeros(3), "gamma2": np.ones(3), "beta2": np.zeros(3),
                  "W3": np.zeros((2, 3)), "b3": np.zeros(2)}  # fmt: skip
    state = {"mean2": np.array([0.25, -1.5, 3.0]), "var2": np.array([0.5, 2.0, 1.125])}
    return TrainingResult("With batch norm", SETTINGS, history(3), 0.2, 0.9, None, parameters, 90, 30, 30, ("a", "b"),
                          None, state)  # fmt: skip


def svgs(html: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html, flags=re.DOTALL)


def body_rows(html: str) -> list[str]:
    tbody = re.search(r'<table class="values epochs">.*?<tbody>(.*?)</tbody>', html, flags=re.DOTALL).group(1)
    return re.findall(r"<tr>.*?</tr>", tbody, flags=re.DOTALL)


# --- JSON -----------------------------------------------------------------------------------


def test_json_holds_the_contract_and_the_numbers_of_the_run(classification: TrainingResult) -> None:
    doc = json.loads(render_training(classification, "json"))
    assert doc["title"] == "Iris, 4-4-3"
    assert doc["test_loss"] == 0.4321 and doc["test_accuracy"] == 0.9333 and doc["stopped"] is None
    assert (doc["train_size"], doc["val_size"], doc["test_size"]) == (90, 30, 30)
    assert doc["classes"] == ["setosa", "versicolor", "virginica"]
    assert doc["settings"] == {
        "data": "iris", "optimizer": "momentum", "learning_rate": 0.1, "epochs": 5, "batch_size": 16, "seed": 3,
        "init": "glorot_uniform", "schedule": "step", "hyperparameters": {"momentum": 0.8, "step_size": 10, "gamma": 0.5},
        "clip_value": None, "clip_norm": 2.5,
    }  # fmt: skip
    assert len(doc["history"]) == 5
    for row, epoch in zip(doc["history"], classification.history):
        assert list(row) == [
            "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
            "learning_rate", "gradient_norms", "steps", "seconds",
        ]  # fmt: skip
        assert row == {
            "epoch": epoch.epoch, "train_loss": epoch.train_loss, "train_accuracy": epoch.train_accuracy,
            "val_loss": epoch.val_loss, "val_accuracy": epoch.val_accuracy, "learning_rate": epoch.learning_rate,
            "gradient_norms": dict(epoch.gradient_norms), "steps": epoch.steps, "seconds": epoch.seconds,
        }  # fmt: skip
    assert doc["history"][1]["gradient_norms"] == {"layer 1": 0.15, "layer 2": 0.9 / 2**0.5}
    assert "update" not in doc


def test_json_writes_what_is_not_a_finite_number_as_null(stopped_nan: TrainingResult) -> None:
    text = render_training(stopped_nan, "json")
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    last = doc["history"][2]
    assert last["val_loss"] is None and last["train_loss"] is None
    assert last["gradient_norms"] == {"layer 1": None, "layer 2": 1.0}
    assert doc["test_loss"] is None and doc["test_accuracy"] is None
    assert doc["stopped"] == "loss became inf in epoch 3"
    assert doc["history"][0]["val_loss"] == 1.61


def test_json_of_a_regression_run_has_null_accuracies(regression: TrainingResult) -> None:
    doc = json.loads(render_training(regression, "json"))
    assert [row["train_accuracy"] for row in doc["history"]] == [None] * 5
    assert [row["val_accuracy"] for row in doc["history"]] == [None] * 5
    assert doc["test_accuracy"] is None and doc["test_loss"] == 0.0123 and doc["classes"] == []


def test_json_of_a_run_stopped_before_any_epoch(stopped_empty: TrainingResult) -> None:
    doc = json.loads(render_training(stopped_empty, "json"))
    assert doc["history"] == [] and doc["test_loss"] is None and doc["test_accuracy"] is None
    assert doc["stopped"].startswith("loss became nan in epoch 1")


# --- HTML -----------------------------------------------------------------------------------


def test_html_shows_the_run(classification: TrainingResult) -> None:
    html = render_training(classification, "html")
    pictures = svgs(html)
    assert len(pictures) == 3
    assert [re.search(r'aria-label="([^"]*)"', p).group(1) for p in pictures] == ["Loss", "Accuracy", "Gradient norm by layer"]
    assert 'id="loss-chart"' in html and 'id="accuracy-chart"' in html and 'id="gradient-chart"' in html
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html
    assert "93.33%" in html and ">0.4321<" in html  # the test metrics
    assert "90 training, 30 validation and 30 test examples" in html
    assert "classification into 3 classes: setosa, versicolor, virginica" in html
    assert "the global norm to 2.5" in html and "momentum = 0.8" in html
    assert "35: W1 (4×4), b1 (4), W2 (3×4), b2 (3)" in html
    assert 'class="stopped"' not in html
    rows = body_rows(html)
    assert len(rows) == 5
    # epoch 2: losses, accuracies as percentages, rate, the two layers' norms, steps, seconds
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[1])
    assert cells == ["2", "0.75", "0.81", "60.00%", "55.00%", "0.1", "0.15", "0.6364", "12", "0.02"]
    assert 'class="table-box"' in html


def test_html_of_a_regression_run_has_no_accuracy(regression: TrainingResult) -> None:
    html = render_training(regression, "html")
    assert [re.search(r'aria-label="([^"]*)"', p).group(1) for p in svgs(html)] == ["Loss", "Gradient norm by layer"]
    assert "test accuracy" not in html and "<td>regression</td>" in html
    assert len(re.findall(r"<td[^>]*>(.*?)</td>", body_rows(html)[0])) == 8  # no accuracy columns


def test_title_and_class_names_are_text_not_markup(classification: TrainingResult) -> None:
    result = replace(classification, title=EVIL, classes=("<b>bold</b>", "a&b"), stopped="<img src=x onerror=alert(1)>")
    html = render_training(result, "html")
    assert "<script" not in html and "<b>bold" not in html and "<img" not in html
    assert "<title>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co</title>" in html
    assert "<h1>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co</h1>" in html
    assert "&lt;b&gt;bold&lt;/b&gt;, a&amp;b" in html
    assert json.loads(render_training(result, "json"))["title"] == EVIL


def test_a_run_stopped_before_any_epoch_has_a_banner_and_no_charts(stopped_empty: TrainingResult) -> None:
    html = render_training(stopped_empty, "html")
    assert '<p class="stopped" role="alert"><strong>Training stopped early:</strong> loss became nan in epoch 1, step 2' in html
    assert svgs(html) == [] and "No epoch finished" in html
    assert "No test metrics" in html and 'id="epochs"' not in html
    assert "5 planned, 0 finished" in html


def test_non_finite_numbers_are_shown_and_marked(stopped_nan: TrainingResult) -> None:
    html = render_training(stopped_nan, "html")
    assert 'class="stopped"' in html and "loss became inf in epoch 3" in html
    cells = re.findall(r'<td class="([^"]*)">(.*?)</td>', body_rows(html)[2])
    assert ("num bad", "inf") in cells and ("num bad", "nan") in cells
    assert len(svgs(html)) == 3
    assert ">nan<" in html  # the test loss


def test_a_long_history_scrolls_in_a_box(long_run: TrainingResult) -> None:
    html = render_training(long_run, "html")
    assert len(long_run.history) > TABLE_ROWS
    assert 'class="table-box long"' in html and "All 200 epochs" in html
    assert len(body_rows(html)) == 200
    assert len(svgs(html)) == 4  # loss, accuracy, the learning rate the step schedule changes, gradient norms


def test_the_same_run_gives_the_same_bytes(classification: TrainingResult) -> None:
    for fmt in ("html", "json"):
        assert render_training(classification, fmt) == render_training(classification, fmt)


def test_documents_are_keyed_by_path(classification: TrainingResult, tmp_path) -> None:
    docs = training_documents(classification, tmp_path, "iris")
    assert list(docs) == [tmp_path / "iris.html", tmp_path / "iris.json"]
    assert docs[tmp_path / "iris.json"] == render_training(classification, "json")
    with pytest.raises(ValueError, match="unknown format 'tex'"):
        render_training(classification, "tex")


# --- the update rule --------------------------------------------------------------------------


def printed(expr) -> str:
    return mathml(expr, _printer_notation(NOTATION))


def test_step_subscripts_are_set_as_subscripts() -> None:
    notation = _printer_notation(NOTATION)
    theta = next(s for s in NOTATION if s.name == "theta_{t-1}")
    assert notation[theta] == Notation("\\theta", "θ", subscript="t-1")
    assert printed(theta) == "<msub><mi>θ</mi><mrow><mi>t</mi><mo>−</mo><mn>1</mn></mrow></msub>"


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_shows_its_equations_and_a_worked_step(name: str, stopped_empty: TrainingResult) -> None:
    optimizer = OPTIMIZERS[name]
    values = {p.name: p.default * 0.5 for p in optimizer.hyperparameters}
    run = replace(stopped_empty, settings=replace(SETTINGS, optimizer=name, hyperparameters=values))
    worked = worked_step(optimizer, 0.5, -0.25, 0.1, values)
    html = render_training(run, "html", worked, optimizer, SCHEDULES["step"], NOTATION)
    section = html.split('<section id="update">')[1]
    assert str(escape(optimizer.title)) in section and str(escape(optimizer.reference)) in section
    for u in optimizer.updates:
        assert f"{printed(u.target)}</math></td><td class=\"rhs\"><div class=\"scroll\"><math class=\"d\"><mo>=</mo>{printed(u.expr)}</math>" in section
    for w in worked:
        assert f"<mo>=</mo>{_worked_mathml(_printer_notation(NOTATION))(w.value)}</math>" in section
    for p in optimizer.hyperparameters:
        assert f"<td><math>{printed(p.symbol)}</math></td><td><code>{p.name}</code></td><td class=\"num\">{format_number(values[p.name])}</td>" in section
    doc = json.loads(render_training(run, "json", worked, optimizer, SCHEDULES["step"], NOTATION))["update"]
    assert doc["optimizer"] == name and doc["hyperparameters"] == values
    assert [e["target"] for e in doc["equations"]] == [str(u.target) for u in optimizer.updates]
    assert [w["value"] for w in doc["worked"]] == [w.value for w in worked]


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_shows_its_formula(name: str, stopped_empty: TrainingResult) -> None:
    schedule = SCHEDULES[name]
    html = render_training(stopped_empty, "html", (), OPTIMIZERS["sgd"], schedule, NOTATION)
    assert f"The learning rate schedule: {schedule.title}" in html
    assert f"<mo>=</mo>{printed(schedule.expr)}</math>" in html
    for p in schedule.parameters:
        assert f"<code>{p.name}</code>" in html


def test_a_worked_step_prints_negative_numbers_as_numbers(stopped_empty: TrainingResult) -> None:
    worked = worked_step(OPTIMIZERS["sgd"], 0.5, -0.25, 0.1)
    html = render_training(stopped_empty, "html", worked, OPTIMIZERS["sgd"], None, NOTATION)
    assert "unevaluatedexpr" not in html


def test_without_the_optimizer_the_report_names_it(classification: TrainingResult) -> None:
    html = render_training(classification, "html")
    assert "The optimizer was <strong>momentum</strong> with learning rate 0.1 and schedule step" in html


# --- the charts -----------------------------------------------------------------------------

AXES = {"xlabel": "epoch", "ylabel": "loss", "title": "Loss"}


def test_a_chart_is_an_inline_labelled_svg_element() -> None:
    svg = plots.curves_svg({"training": [1.0, 0.5, 0.25]}, x=[1, 2, 3], xlabel="epoch", ylabel="loss", title='Loss "&" <co>')
    assert svg.startswith("<svg ") and svg.endswith("</svg>")
    assert "<?xml" not in svg and "DOCTYPE" not in svg and "<style" not in svg
    root = minidom.parseString(svg).documentElement
    assert root.getAttribute("role") == "img" and root.getAttribute("aria-label") == 'Loss "&" <co>'
    assert root.getAttribute("class") == "plot" and root.getAttribute("viewBox")
    title = root.firstChild
    assert title.tagName == "title" and title.firstChild.data == 'Loss "&" <co>'
    # nothing but the definitions that are referred to keeps an id
    assert all(g.getAttribute("id") == "" for g in root.getElementsByTagName("g"))
    assert ">training<" in svg


def test_charts_are_deterministic_and_their_ids_do_not_collide() -> None:
    loss = plots.curves_svg({"a": [1.0, 0.5]}, x=[1, 2], **AXES)
    assert loss == plots.curves_svg({"a": [1.0, 0.5]}, x=[1, 2], **AXES)
    norms = plots.curves_svg({"a": [1.0, 0.5]}, x=[1, 2], xlabel="epoch", ylabel="loss", title="Norms", log=True)
    ids = lambda svg: re.findall(r'\bid="([^"]+)"', svg)
    assert ids(loss) and ids(norms) and not set(ids(loss)) & set(ids(norms))


def test_a_chart_is_the_same_in_a_fresh_process() -> None:
    code = (
        "import hashlib; from chainrule.plots import curves_svg\n"
        "svg = curves_svg({'a': [0.3, None, 0.1], 'b': [1.0, 0.5, float('nan')]}, x=[1, 2, 3], "
        "xlabel='epoch', ylabel='norm', title='Norms', log=True)\n"
        "print(hashlib.sha256(svg.encode()).hexdigest())\n"
    )
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, env={**os.environ, "PYTHONHASHSEED": "1"})
    here = plots.curves_svg({"a": [0.3, None, 0.1], "b": [1.0, 0.5, math.nan]}, x=[1, 2, 3], xlabel="epoch", ylabel="norm", title="Norms", log=True)
    assert fresh.stdout.strip() == hashlib.sha256(here.encode()).hexdigest()


def test_what_cannot_be_drawn_is_left_out() -> None:
    svg = plots.curves_svg({"a": [1.0, math.nan, math.inf, 0.5, None, 0.25], "gone": [None] * 6}, x=range(1, 7), **AXES)
    assert ">a<" in svg and ">gone<" not in svg  # a series with nothing to draw has no legend entry
    log = plots.curves_svg({"a": [1.0, 0.0, -1.0, 0.5]}, x=[1, 2, 3, 4], xlabel="epoch", ylabel="norm", title="Norms", log=True)
    assert ">a<" in log
    with pytest.raises(ValueError, match="series 'a' has 2 values for 3 x positions"):
        plots.curves_svg({"a": [1.0, 2.0]}, x=[1, 2, 3], **AXES)


@pytest.mark.parametrize("series", [{}, {"a": []}, {"a": [None]}, {"a": [math.nan, math.inf]}])
def test_a_chart_with_nothing_to_draw_says_so(series) -> None:
    x = list(range(1, len(next(iter(series.values()), [])) + 1))
    svg = plots.curves_svg(series, x=x, **AXES)
    assert "nothing to plot" in svg and svg.startswith("<svg ")


def test_one_epoch_is_a_point_at_an_integer_tick() -> None:
    svg = plots.curves_svg({"a": [0.5]}, x=[1], **AXES)
    assert "<use " in svg  # the marker: a one-point line draws nothing else
    ticks = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "1" in ticks and not any(t.startswith("0.9") for t in ticks)


def test_markers_mark_short_curves_and_lone_points() -> None:
    assert plots._marked([1.0, 2.0, math.nan]) == [0, 1]
    long = [1.0] * 50
    long[10] = long[12] = math.nan
    assert plots._marked(long) == [11]


def test_dollar_signs_in_labels_stay_text() -> None:
    svg = plots.curves_svg({"cost in $": [1.0, 2.0]}, x=[1, 2], xlabel="epoch", ylabel="$ per step", title="Cost")
    assert ">cost in $<" in svg and ">$ per step<" in svg


# --- what importing loads --------------------------------------------------------------------


def test_importing_chainrule_and_the_report_does_not_load_matplotlib() -> None:
    code = (
        "import sys, json, chainrule, chainrule.plots, chainrule.render.training\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'chainrule'))))\n"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout)
    assert "chainrule.plots" in loaded and "chainrule.render.training" in loaded
    assert not [m for m in loaded if m.startswith("matplotlib")]


# --- the running statistics -------------------------------------------------------------------


def test_json_holds_the_running_statistics(batch_norm: TrainingResult, classification: TrainingResult) -> None:
    doc = json.loads(render_training(batch_norm, "json"))
    assert doc["state"] == {"mean2": [0.25, -1.5, 3.0], "var2": [0.5, 2.0, 1.125]}
    assert json.loads(render_training(classification, "json"))["state"] == {}


def test_json_writes_a_running_statistic_that_is_not_finite_as_null(batch_norm: TrainingResult) -> None:
    broken = replace(batch_norm, state={"mean2": np.array([math.nan, 1.0]), "var2": np.array([math.inf, 1.0])})
    assert json.loads(render_training(broken, "json"))["state"] == {"mean2": [None, 1.0], "var2": [None, 1.0]}


def test_html_shows_the_running_statistics_per_unit(batch_norm: TrainingResult, classification: TrainingResult) -> None:
    html = render_training(batch_norm, "html")
    section = re.search(r'<section id="state">(.*?)</section>', html, flags=re.DOTALL).group(1)
    assert "<h2>The running statistics</h2>" in section
    head = re.search(r"<thead>(.*?)</thead>", section, flags=re.DOTALL).group(1)
    assert re.findall(r"<th[^>]*>(.*?)</th>", head) == ["array", "layer", "unit 1", "unit 2", "unit 3"]
    rows = re.findall(r"<tr>(.*?)</tr>", re.search(r"<tbody>(.*?)</tbody>", section, flags=re.DOTALL).group(1))
    assert len(rows) == 2 and "<code>mean2</code>" in rows[0] and "<code>var2</code>" in rows[1]
    cells = [re.findall(r'<td class="num">(.*?)</td>', row) for row in rows]
    assert cells == [["2", format_number(0.25, 4), "\u22121.5", format_number(3.0, 4)],
                     ["2", format_number(0.5, 4), format_number(2.0, 4), format_number(1.125, 4)]]  # fmt: skip
    assert html.index('id="state"') < html.index('id="update"')
    assert 'id="state"' not in render_training(classification, "html")


# --- issue 12: a loss that spans decades, the rate a schedule sets, what the classifier predicts ---


def falling(n: int = 40) -> tuple[Epoch, ...]:
    """XOR's shape: a loss from 0.25 down to 2.3·10⁻⁵, four decades."""
    return tuple(replace(e, train_loss=0.25 * (2.3e-5 / 0.25) ** ((e.epoch - 1) / (n - 1)),
                         val_loss=0.25 * (2.3e-5 / 0.25) ** ((e.epoch - 1) / (n - 1)), learning_rate=0.1)
                 for e in history(n))  # fmt: skip


def chart(html: str, key: str) -> str:
    return re.search(rf'<figure class="chart" id="{key}">(.*?)</figure>', html, flags=re.DOTALL).group(1)


def ticks(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_a_loss_that_spans_decades_is_drawn_on_a_log_axis(classification: TrainingResult) -> None:
    run = replace(classification, history=falling(), settings=replace(SETTINGS, schedule="constant", epochs=40))
    loss = chart(render_training(run, "html"), "loss-chart")
    assert "on a log scale: it spans 4 decades." in loss
    assert {"10⁻¹", "10⁻²", "10⁻³", "10⁻⁴"} <= set(ticks(loss))  # a linear axis put 2.3·10⁻⁵ on zero
    flat = chart(render_training(classification, "html"), "loss-chart")  # 1.5 → 0.3: less than a decade
    assert "log scale" not in flat and "0.4" in ticks(flat)


@pytest.mark.parametrize(("schedule", "log"), [("step", True), ("cosine", False)])
def test_a_schedule_that_changes_the_rate_has_a_chart_of_it(classification: TrainingResult, schedule: str, log: bool) -> None:
    n = 40
    rates = [SCHEDULES[schedule].rate(0.1, e, n, {"step_size": 10, "gamma": 0.1}) for e in range(n)]
    run = replace(classification, settings=replace(SETTINGS, schedule=schedule, epochs=n),
                  history=tuple(replace(e, learning_rate=r) for e, r in zip(history(n), rates)))  # fmt: skip
    html = render_training(run, "html")
    rate = chart(html, "rate-chart")
    assert 'aria-label="Learning rate"' in rate and f"as the {schedule} schedule set it" in rate
    assert ("on a log scale" in rate) is log and ("10⁻³" in ticks(rate)) is log
    constant = replace(run, history=tuple(replace(e, learning_rate=0.1) for e in run.history))
    assert 'id="rate-chart"' not in render_training(constant, "html")


def worked_run(stopped_empty: TrainingResult, name: str) -> tuple[str, tuple]:
    optimizer = OPTIMIZERS[name]
    run = replace(stopped_empty, settings=replace(SETTINGS, optimizer=name, hyperparameters={}), first_entry=("W1", (0, 0)))
    worked = worked_step(optimizer, 0.12573, 0.000253718265, 0.1)
    html = render_training(run, "html", worked, optimizer, None, NOTATION)
    return html.split("<h3>One step, with numbers</h3>")[1].split("</table>")[0], worked


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_the_worked_step_names_its_parameter_and_writes_every_number_alike(stopped_empty: TrainingResult, name: str) -> None:
    section, _ = worked_run(stopped_empty, name)
    w11 = mathml(sp.Symbol("w"), {sp.Symbol("w"): Notation("w", "w", 1, (1, 1))})
    assert f"The first step (<math><mi>t</mi><mo>=</mo><mn>1</mn></math>) of <math>{w11}</math>, the weight from input 1 to unit 1 of layer 1 (<code>W1[0, 0]</code>)" in section
    numbers = re.findall(r"<mn>([^<]*)</mn>", section)
    assert not [n for n in numbers if "e" in n or n.endswith(".0")]  # not 2.53718265e-05, not 1.0·10⁻⁸
    assert all(len(n.lstrip("−0.").replace(".", "")) <= 6 for n in numbers)  # six significant digits at most
    if name in ("adam", "adamw"):
        # m₁ = 0.9·0 + (1 − 0.9)·0.000253718 = 2.53718·10⁻⁵, its result in the form of its arithmetic
        assert "<mn>2.53718</mn><mo>·</mo><msup><mn>10</mn><mn>−5</mn></msup>" in section
        assert "<mn>1</mn><mo>·</mo><msup><mn>10</mn><mn>−8</mn></msup>" in section  # ε


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_update_reads_in_the_textbook_order(stopped_empty: TrainingResult, name: str) -> None:
    section, _ = worked_run(stopped_empty, name)
    theta_before = printed(next(s for s in NOTATION if s.name == "theta_{t-1}"))
    rows = re.findall(r'<td class="rhs"><div class="scroll"><math class="d"><mo>=</mo>(.*?)</math>', section)
    step = rows[-3:]  # θₜ: its equation, its numbers, its result
    assert re.match(rf"(<mrow>)*{re.escape(theta_before)}", step[0])  # θₜ₋₁ first, not −η m̂/(ε + √v̂) + θₜ₋₁
    assert re.match(r"(<mrow>)*<mn>0\.12573</mn>", step[1])  # θₜ₋₁'s number first: θₜ₋₁ − η …
    if name not in ("adamw",):
        assert f"{theta_before}<mo>−</mo>" in step[0]


def classified(boundary: bool = True, images: bool = False) -> Classified:
    grid = Boundary((0.0, 0.5, 1.0), (0.0, 0.5, 1.0), ((0, 1, 1), (1, 1, 0), (1, 0, 0)),
                    ((0.0, 0.0, 0), (0.0, 1.0, 1), (1.0, 0.0, 1), (1.0, 1.0, 0)))  # fmt: skip
    image = ((0.0, 16.0), (8.0, 4.0))
    misses = (Miss(3, "setosa", "virginica", image if images else ()), Miss(7, "versicolor", "setosa", image if images else ()))
    return Classified(((9, 0, 1), (1, 8, 1), (0, 0, 10)), misses, 3, grid if boundary else None)


def test_the_report_shows_the_confusion_matrix(classification: TrainingResult) -> None:
    html = render_training(replace(classification, classified=classified(boundary=False)), "html")
    section = re.search(r'<section id="predictions">(.*?)</section>', html, flags=re.DOTALL).group(1)
    assert "3 of 30 are off it" in section
    rows = re.findall(r"<tr><th scope=\"row\">(.*?)</tr>", section)
    assert [re.findall(r">(\d+)</td>", r) for r in rows] == [["9", "0", "1", "10"], ["1", "8", "1", "10"], ["0", "0", "10", "10"]]
    assert '<td class="num right" style="background: rgba(31, 119, 180, 0.40)">9</td>' in rows[0]
    assert '<td class="num" style="background: rgba(214, 39, 40, 0.20)">1</td>' in rows[0]  # an error shows
    assert '<td class="num zero">0</td>' in rows[0]
    doc = json.loads(render_training(replace(classification, classified=classified()), "json"))["classified"]
    assert doc == {"confusion": [[9, 0, 1], [1, 8, 1], [0, 0, 10]], "missed": 3,
                   "misses": [{"row": 3, "truth": "setosa", "predicted": "virginica"},
                              {"row": 7, "truth": "versicolor", "predicted": "setosa"}]}  # fmt: skip
    assert json.loads(render_training(classification, "json"))["classified"] is None


def test_a_2d_data_set_has_its_decision_boundary_and_an_image_set_its_misses(classification: TrainingResult) -> None:
    run = replace(classification, settings=replace(SETTINGS, data="xor"), classified=classified(images=True))
    html = render_training(run, "html")
    boundary, misses = chart(html, "boundary-chart"), chart(html, "misses-chart")
    assert 'aria-label="Decision boundary on xor"' in boundary and "<image" in boundary and ">setosa<" in boundary
    assert 'aria-label="Misclassified test images"' in misses and boundary.count("<svg") == misses.count("<svg") == 1
    assert "#3: setosa → virginica" in misses and "#7: versicolor → setosa" in misses
    assert "(the first 2 of 3)" in misses
    assert html == render_training(run, "html")  # byte for byte
    plain = render_training(replace(run, classified=classified(boundary=False)), "html")
    assert 'id="boundary-chart"' not in plain and 'id="misses-chart"' not in plain


def test_a_stalled_run_says_so_in_the_report(classification: TrainingResult) -> None:
    layers = (Saturation(1, "sigmoid", 1.0, 0.5), Saturation(2, "sigmoid", 1.0, 0.0))
    stall = Stall(28, 0.4999999999986, 0.2501540916, 1.38e-12, 0.033, layers, "the units are saturated, … try --lr 100")
    run = replace(classification, stall=stall)
    html = render_training(run, "html")
    assert ('<p class="stalled" role="status"><strong>Training stalled</strong> from epoch 28 on: the training loss '
            "stayed at 0.5 (0.2502 at initialization) and the gradient norm fell to 1.4e-12 (at most 0.033 earlier). "
            "Likely cause: the units are saturated, … try --lr 100.</p>") in html
    doc = json.loads(render_training(run, "json"))["stall"]
    assert doc["since"] == 28 and doc["layers"][0] == {"layer": 1, "activation": "sigmoid", "saturated": 1.0, "dead": 0.5}
    assert doc["message"] == stall.message and doc["message"].startswith("training stalled from epoch 28 on")
    assert 'class="stalled"' not in render_training(classification, "html")
