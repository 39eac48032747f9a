"""``chainrule flow``: per-layer gradients equal PyTorch, the verdicts of the default grid, clipping, the report.

The PyTorch reference is built here with ``nn.Linear``, ``nn.BatchNorm1d`` and x + F(x) for
a residual block, the weights copied in, and every hidden layer's z kept with
``retain_grad`` so that δ⁽ˡ⁾ = ∂ℓ/∂z⁽ˡ⁾ of each example can be compared too.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import required_program
from test_kinds_torch import one_thread  # noqa: F401 (autouse: torch on one thread for these small tensors)
from torch import nn

from chainrule.cli import main
from chainrule.flow import (
    DEFAULT_COMBINATIONS,
    DEFAULT_DEPTHS,
    Combination,
    flow_settings,
    hidden_layers,
    load,
    measure,
    network_for,
    run,
    study,
)
from chainrule.model import compile

RTOL = 1e-10


@pytest.fixture(scope="module")
def digits():
    return load(flow_settings())


def _tensor(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64)


TORCH_ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


def torch_pass(c: Combination, params: dict, X: np.ndarray, Y: np.ndarray):
    """PyTorch's loss gradient by hidden layer: ‖∂L/∂W‖_F, the mean per-example ‖δ‖₂, and the gradients."""
    network = network_for(c, X.shape[1], Y.shape[1], params["W1"].shape[0])
    f = TORCH_ACTIVATIONS[c.activation]
    outputs, zs, weights = {0: _tensor(X)}, {}, {}
    for stage in network.stages:
        l = stage.number
        x = outputs[stage.source]
        if stage.kind == "dense":
            linear = nn.Linear(stage.inputs, stage.units, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(_tensor(params[f"W{l}"]))
                linear.bias.copy_(_tensor(params[f"b{l}"]))
            weights[l] = linear.weight
            z = linear(x)
            z.retain_grad()
            zs[l] = z
            outputs[l] = z if l == network.stages[-1].number else f(z)
        elif stage.kind == "batch_norm":
            bn = nn.BatchNorm1d(stage.units, eps=stage.spec.eps, dtype=torch.float64)
            bn.train()
            outputs[l] = bn(x)
        else:
            assert stage.kind == "residual"
            outputs[l] = outputs[stage.skip] + x
    logits = outputs[network.stages[-1].number]
    loss = -(_tensor(Y) * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss.backward()
    n = X.shape[0]
    layers = hidden_layers(network)
    return (
        [float(weights[l].grad.norm()) for l in layers],
        [float((n * zs[l].grad).norm(dim=1).mean()) for l in layers],
        {l: weights[l].grad.numpy() for l in layers},
    )


DEFAULT_GRID = [Combination(a, i, r, d) for a, i, r in DEFAULT_COMBINATIONS for d in DEFAULT_DEPTHS]


def ulp_sensitivity(model, params: dict, X: np.ndarray, Y: np.ndarray) -> float:
    """How far the measured norms move (relative) when every weight moves by one ulp: float64's own floor here."""
    stats, _ = measure(model, params, X, Y)
    rng = np.random.default_rng(7)
    moved = {k: np.where(rng.random(v.shape) < 0.5, np.nextafter(v, np.inf), np.nextafter(v, -np.inf)) for k, v in params.items()}
    other, _ = measure(model, moved, X, Y)
    a = np.array(stats.weight_gradient_norms + stats.delta_norms)
    b = np.array(other.weight_gradient_norms + other.delta_norms)
    _, grads, _ = model.trace(params, X, Y)
    _, shifted, _ = model.trace(moved, X, Y)
    entries = max(np.abs(grads[k] - shifted[k]).max() / np.abs(grads[k]).max() for k in grads if k.startswith("W"))
    return max(float(np.max(np.abs(a - b) / np.abs(a))), float(entries))


@pytest.mark.parametrize("c", DEFAULT_GRID, ids=lambda c: c.label.replace(", ", "-").replace(" ", "_"))
def test_per_layer_gradients_equal_pytorch(c: Combination, digits) -> None:
    """Acceptance 1: every activation × init × remedy × depth of the default grid, the flow's own seeds and batch.

    The bound is 1e-10 relative, or ten times what one ulp of the weights moves the result
    where that is more: tanh with N(0, 1) weights at depth 20 is chaotic (one ulp moves its
    norms by 2e-10 to 3e-9), so no two float64 implementations agree closer than that.
    """
    network = network_for(c, 64, 10, 32)
    model = compile(network)
    X, Y = digits.X_train[:256], digits.Y_train[:256]
    for seed in flow_settings().seed + np.arange(flow_settings().seeds):
        params = model.init_params(seed=int(seed), scheme=c.init)
        stats, _ = measure(model, params, X, Y)
        want_w, want_delta, want_grads = torch_pass(c, params, X, Y)
        got = np.array(stats.weight_gradient_norms + stats.delta_norms)
        want = np.array(want_w + want_delta)
        _, grads, _ = model.trace(params, X, Y)
        # The norms, and every entry of every ∂L/∂W⁽ˡ⁾ relative to its largest.
        worst = max(float(np.max(np.abs(got - want) / np.abs(want))),
                    *(float(np.abs(grads[f"W{l}"] - w).max() / np.abs(w).max()) for l, w in want_grads.items()))
        bound = RTOL if worst <= RTOL else max(RTOL, 10 * ulp_sensitivity(model, params, X, Y))
        assert worst <= bound, f"seed {seed}: {worst:.3g} > {bound:.3g}"
        assert len(stats.weight_gradient_norms) == c.depth


@pytest.fixture(scope="module")
def depth_20(digits):
    s = flow_settings(depths=[20], epochs=1)
    return {(a, i, r): run(Combination(a, i, r, 20), s, digits) for a, i, r in DEFAULT_COMBINATIONS}


def test_sigmoid_with_glorot_vanishes_at_depth_20(depth_20) -> None:
    r = depth_20["sigmoid", "glorot_normal", "none"]
    assert r.verdict == "vanishing"
    assert r.ratio < 1e-8
    assert r.seeds == (0, 1, 2)
    # Each layer passes back less: the norms rise from the first layer to the last.
    norms = r.at_init.weight_gradient_norms
    assert sum(b > a for a, b in itertools.pairwise(norms)) >= 17


def test_tanh_with_standard_normal_explodes_at_depth_20(depth_20) -> None:
    r = depth_20["tanh", "standard_normal", "none"]
    assert r.verdict == "exploding"
    assert r.ratio > 1e3
    # Saturated: most units sit where tanh′ < 0.01.
    assert r.saturated > 0.3


@pytest.mark.parametrize("key", [("relu", "he_normal", "none"), ("sigmoid", "glorot_normal", "batch_norm"),
                                 ("sigmoid", "glorot_normal", "residual")])  # fmt: skip
def test_the_cures_are_healthy_at_depth_20(depth_20, key) -> None:
    r = depth_20[key]
    assert r.verdict == "healthy"
    assert 0.1 <= r.ratio <= 10


def test_relu_with_standard_normal_weights_explodes_in_the_forward_pass(depth_20) -> None:
    r = depth_20["relu", "standard_normal", "none"]
    # The ratio looks healthy, but each layer multiplies the activations' scale by about √(32/2) = 4.
    assert r.std_growth > 1e9
    assert r.training.epochs[0].loss > 1e6


def test_the_spread_brackets_the_mean(depth_20) -> None:
    for r in depth_20.values():
        for (low, high), mean in zip(r.spread, r.at_init.weight_gradient_norms):
            assert low <= mean * (1 + 1e-12) and mean <= high * (1 + 1e-12)
        assert low < high  # three different initializations


def test_clipping_tames_the_run_that_explodes() -> None:
    """Acceptance 5: without clipping the loss becomes NaN or ends above its start; clipped to 1 it decreases."""
    s = flow_settings(depths=[20], activations=["relu"], inits=["he_normal"], remedies=["clip"], epochs=5, seeds=1)
    assert s.clip_study == Combination("relu", "he_normal", "clip", 20)
    result = study(s)
    k = result.clipping
    start = k.without.epochs[0].loss
    assert k.without.diverged
    assert any(math.isnan(e.loss) or e.loss > start for e in k.without.epochs[1:])
    clipped = [e.loss for e in k.with_clipping.epochs]
    assert not k.with_clipping.diverged and clipped[-1] < clipped[0]
    assert all(s.clipped_norm <= 1.0 + 1e-12 for s in k.with_clipping.steps)
    assert max(s.norm for s in k.with_clipping.steps) > 1.0  # clipping did something


def test_a_grid_is_the_product_of_the_lists() -> None:
    s = flow_settings(depths=[2, 4], activations=["tanh", "relu"], inits=["he_normal"], remedies=["none", "residual"])
    assert len(s.grid) == 8
    assert {c.depth for c in s.grid} == {2, 4} and {c.remedy for c in s.grid} == {"none", "residual"}
    assert s.clip_study is None
    assert len(flow_settings().grid) == 24 and flow_settings().clip_study == Combination("relu", "he_normal", "clip", 20)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--activation", "sigmod"], "--activation: unknown activation 'sigmod'; did you mean 'sigmoid'?"),
        (["--init", "glorot_norml"], "--init: unknown init scheme 'glorot_norml'; did you mean 'glorot_normal'?"),
        (["--remedy", "batchnorm"], "--remedy: unknown remedy 'batchnorm'; did you mean 'batch_norm'?"),
        (["--data", "digit"], "--data: unknown data set 'digit'; did you mean 'digits'?"),
        (["--depth", "0"], "--depth: must be a whole number from 1 to 200, got 0"),
        (["--depth", "201"], "--depth: must be a whole number from 1 to 200, got 201"),
        (["--width", "0"], "--width: must be a whole number from 1 to 512, got 0"),
        (["--depth", ","], "--depth: the list is empty"),
        (["--activation", ""], "--activation: the list is empty"),
        (["--remedy", ","], "--remedy: the list is empty"),
        (["--depth", "5,x"], "expected whole numbers separated by commas"),
        (["--activation", "softmax"], "softmax is not elementwise"),
        (["--clip-norm", "0"], "--clip-norm: must be a number greater than 0"),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(args, message, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    try:
        code = main(["flow", *args, "--out", str(out)])
    except SystemExit as exc:  # argparse's own checks exit through parser.error
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("flow")
    args = ["flow", "--depth", "2,4", "--activation", "sigmoid", "--init", "he_normal", "--remedy", "none,clip",
            "--epochs", "2", "--seeds", "2", "--quiet", "--out"]  # fmt: skip
    assert main([*args, str(out / "a")]) == 0
    assert main([*args, str(out / "b")]) == 0
    return out


def test_the_report_is_the_same_bytes_every_time(report: Path) -> None:
    a = sorted(p.relative_to(report / "a") for p in (report / "a").rglob("*") if p.is_file())
    b = sorted(p.relative_to(report / "b") for p in (report / "b").rglob("*") if p.is_file())
    assert a == b and Path("flow.html") in a and Path("flow.tex") in a
    assert any(p.suffix == ".pdf" for p in a) and any(p.suffix == ".svg" for p in a)
    for p in a:
        assert (report / "a" / p).read_bytes() == (report / "b" / p).read_bytes(), p


def test_the_json_has_the_documented_shape(report: Path) -> None:
    doc = json.loads((report / "a" / "flow.json").read_text())
    assert set(doc) >= {"runs", "settings", "clipping"}
    assert len(doc["runs"]) == 4
    r = doc["runs"][0]
    assert {"activation": r["activation"], "init": r["init"], "remedy": r["remedy"], "depth": r["depth"]} == {
        "activation": "sigmoid", "init": "he_normal", "remedy": "none", "depth": 2}  # fmt: skip
    assert r["width"] == 32 and r["seeds"] == [0, 1]
    for key in ("weight_gradient_norms", "delta_norms", "activation_std", "saturated_fraction"):
        assert len(r["at_init"][key]) == 2 and all(isinstance(v, float) for v in r["at_init"][key])
    ratio = r["at_init"]["weight_gradient_norms"][0] / r["at_init"]["weight_gradient_norms"][-1]
    assert r["ratio_first_to_last"] == pytest.approx(ratio, rel=1e-12)
    assert r["verdict"] in ("vanishing", "healthy", "exploding")
    assert [e["epoch"] for e in r["training"]] == [0, 1, 2]
    assert doc["settings"]["vanishing"] == 1e-3 and doc["settings"]["exploding"] == 1e3
    assert doc["clipping"]["learning_rate"] == 0.5 and doc["clipping"]["depth"] == 4


def test_the_report_derives_the_bounds_of_its_example_network(report: Path) -> None:
    """Item 3: the symbolic section, for a network with a sigmoid, a relu and a tanh layer, in every document."""
    html = (report / "a" / "flow.html").read_text()
    md = (report / "a" / "flow.md").read_text()
    tex = (report / "a" / "flow.tex").read_text()
    assert '<section id="flow">' in html and "How large f′ gets: sigmoid" in html
    for name in ("sigmoid", "tanh", "relu"):
        assert f"How large f′ gets: {name}" in html and f"How large f′ gets: {name}" in md
        assert f"How large f\\ensuremath{{'}} gets: {name}" in tex
    doc = json.loads((report / "a" / "flow.json").read_text())
    sups = {name: b["sup"] for name, b in doc["theory"]["activations"].items()}
    assert sups == {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}
    assert doc["theory"]["numbers"]["holds"] is True


def test_every_chart_is_in_every_document(report: Path) -> None:
    html = (report / "a" / "flow.html").read_text()
    md = (report / "a" / "flow.md").read_text()
    tex = (report / "a" / "flow.tex").read_text()
    svgs = sorted(p.stem for p in (report / "a" / "flow-figures").glob("*.svg"))
    pdfs = sorted(p.stem for p in (report / "a" / "flow-figures").glob("*.pdf"))
    assert svgs == pdfs and {"gradients-depth-2", "gradients-depth-4", "clipping-loss", "clipping-norm"} <= set(svgs)
    assert html.count('<figure class="chart"') == len(svgs)
    for stem in svgs:
        assert f"flow-figures/{stem}.svg" in md and f"flow-figures/{stem}.pdf" in tex


@pytest.mark.pdflatex
def test_the_report_compiles_with_pdflatex(report: Path) -> None:
    pdflatex = required_program("pdflatex")
    result = subprocess.run([pdflatex, "-halt-on-error", "-no-shell-escape", "-interaction=nonstopmode", "flow.tex"],
                            check=False, cwd=report / "a", capture_output=True, text=True, errors="replace",
                            stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip
    log = (report / "a" / "flow.log").read_text(encoding="latin-1")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "[U+" not in log and "Missing character" not in log
    overfull = [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide", log)]
    assert max(overfull, default=0) < 20


#: Writes, into the page, how wide it is laid out and which elements stand outside the window.
WIDTHS = """
<script>
window.addEventListener("load", function () {
  var vw = document.documentElement.clientWidth, outside = [];
  document.querySelectorAll("body *").forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.width > 0 && (r.right > vw + 0.5 || r.left < -0.5)) outside.push(e.tagName + " " + Math.round(r.right));
  });
  var svgs = Array.prototype.slice.call(document.querySelectorAll("figure svg")).map(function (s) { return s.getBoundingClientRect().width; });
  var pre = document.createElement("pre");
  pre.id = "chainrule-test-result";
  pre.textContent = JSON.stringify({viewport: vw, page: document.documentElement.scrollWidth, outside: outside.slice(0, 10), svgs: svgs});
  document.body.appendChild(pre);
});
</script>
"""


@pytest.mark.browser
def test_the_report_fits_a_narrow_window(report: Path) -> None:
    """At 640 px nothing stands outside the window (not even in a scrolling box) and every chart is drawn."""
    import html as markup

    from test_browser import run_chromium

    page = report / "a" / "flow.html"
    probe = report / "probe.html"
    probe.write_text(page.read_text().replace("</body>", WIDTHS + "</body>"), encoding="utf-8")
    dom = run_chromium(report, probe, 640, "--dump-dom").stdout
    found = re.search(r'<pre id="chainrule-test-result">(.*?)</pre>', dom, re.DOTALL)
    assert found, dom[-500:]
    measured = json.loads(markup.unescape(found.group(1)))
    assert measured["outside"] == [] and measured["page"] <= measured["viewport"]
    assert len(measured["svgs"]) == 11 and min(measured["svgs"]) > 500
