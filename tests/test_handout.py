"""What a handout shows: the worked example's real data, and the entries a summary must not hide."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.datasets import load_dataset
from chainrule.derive import derive
from chainrule.layers import layer_rules
from chainrule.network import default_network, load, loads
from chainrule.numeric import draw_point, worked_example
from chainrule.proof import prove
from chainrule.render import render, render_documents
from chainrule.render.steps import sections
from chainrule.render.summary import More, value_rows

ROOT = Path(__file__).resolve().parent.parent

# A small network on the digits: 64-2-10 has 160 parameters, so its documents are summaries.
DIGITS = """
title = "digits, small"
[network]
inputs = 64
layers = [ { units = 2, activation = "tanh" }, { units = 10, activation = "softmax" } ]
loss = "cross_entropy"
[training]
data = "digits"
"""


@pytest.fixture(scope="module")
def digits():
    return loads(DIGITS)


def test_a_spec_that_trains_on_a_data_set_takes_its_example_from_it(digits):
    data = load_dataset("digits", outputs=10, targets="distribution")
    for seed in (0, 8):
        point = draw_point(digits, seed)
        np.testing.assert_allclose(point.x, np.round(data.X_train[seed], 2) + 0.0)
        assert point.y == tuple(data.Y_train[seed])
        assert point.sample.rows == (seed + 1,)
        assert point.sample.classes == (data.classes[data.labels_train[seed]],)
        assert "x" not in point.drawn and "y" not in point.drawn and "W1" in point.drawn


def test_a_given_example_is_kept(digits):
    net = loads(DIGITS + "[example]\nx = " + str([0.5] * 64) + "\n")
    point = draw_point(net, 0)
    assert point.sample is None and point.x == (0.5,) * 64 and "y" in point.drawn


def test_without_a_data_set_the_example_is_drawn():
    net = loads('[network]\ninputs = 2\nlayers = [ { units = 1, activation = "sigmoid" } ]\nloss = "mse"\n')
    point = draw_point(net, 0)
    assert point.sample is None and {"x", "y"} <= set(point.drawn)


def test_a_summary_never_hides_the_one_of_a_one_hot_target(digits):
    # Training row 9 is a 9: its 1 is y₁₀, past the first eight rows a summary shows.
    d = derive(digits)
    ex = worked_example(d, seed=8)
    rows = value_rows(d, ex.values).example
    targets = [r for r in rows if r in d.graph.targets or (isinstance(r, More) and r.what == "targets")]
    shown = [str(r) for r in targets if not isinstance(r, More)]
    assert shown[-1] == "y_10" and ex.values[d.graph.targets[-1]] == 1.0
    (gap,) = [r for r in targets if isinstance(r, More)]
    assert (gap.count, gap.each) == (2, 0.0)
    md = render(d, "md", ex)
    assert "| $y_{10}$ | 1 |" in md and "2 more targets, each 0" in md
    assert "row 9 of the training part of the `digits` data set" in md


def test_a_digit_is_drawn_as_its_pixels(digits):
    d = derive(digits)
    ex = worked_example(d, seed=0)
    (image,) = ex.point.sample.images
    raw = np.asarray(image)
    # The pixels as loaded: 0 to 16, the same digit the standardized x encodes.
    assert raw.shape == (8, 8) and raw.min() == 0.0 and raw.max() == 16.0
    data = load_dataset("digits", outputs=10, targets="distribution")
    np.testing.assert_allclose((raw.reshape(-1) - data.mean) / data.scale, data.X_train[0], atol=1e-12)
    html, tex, md = (render(d, fmt, ex) for fmt in ("html", "tex", "md"))
    assert html.count('<rect x="') >= 64 and 'aria-label="training example 1 of digits, a 2"' in html
    assert tex.count("\\textcolor[gray]") == 64
    assert "█" in md and "training example 1 of digits, a 2, as loaded" in md


# --- --detail ------------------------------------------------------------------------------



@pytest.fixture(scope="module")
def mazur():
    d = derive(default_network())
    return d, worked_example(d)


def _blocks(outline, key):
    (section,) = [s for s in outline if s.key == key]
    return [b.key for b in section.blocks]


def test_brief_shows_one_block_for_each_kind_of_step(mazur):
    d, ex = mazur
    brief = sections(d, ex, layer_rules(d.network), None, "brief")
    full = sections(d, ex, layer_rules(d.network), None)
    assert [s.key for s in full] == ["forward", "activations", "backward", "gradients", "flow", "inputs", "equations", "batch"]
    assert [s.key for s in brief] == ["forward", "activations", "backward", "gradients", "equations"]
    # One unit per layer (its ∂L/∂a and its δ); the weight and bias of layer 2 take the steps of layer 1's.
    assert _blocks(brief, "backward") == ["adjoint-a2_1", "adjoint-z2_1", "adjoint-a1_1", "adjoint-z1_1"]
    assert _blocks(brief, "gradients") == ["gradient-w1_1_1", "gradient-b1_1"]
    assert len(_blocks(full, "gradients")) == 12
    # Each of BP1–BP4 once.
    assert _blocks(brief, "equations") == ["BP1-2", "BP3-2", "BP4-2", "BP2-1"]
    assert len(_blocks(full, "equations")) == 6


def test_brief_tables_show_the_derived_entries(mazur):
    d, ex = mazur
    md = render(d, "md", ex, detail="brief")
    step = md[md.index("## One gradient-descent step"):]
    assert "… and 8 more parameters (all in the JSON document)" in step
    assert md.count("w^{(1)}_{12}$ |") == 1  # in the example's table only


def test_full_derives_every_gradient_of_a_network_past_the_summary_size(tmp_path):
    net = load(ROOT / "examples" / "iris.toml")
    d = derive(net)
    ex = worked_example(d)
    full, default = (render(d, "md", ex, detail=level) for level in ("full", None))
    title = "#### The weight into unit "
    assert full.count(title) == 56 and default.count(title) == 2


def test_the_command_line_takes_detail_and_refuses_a_bad_one(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as usage:
        main(["derive", "--detail", "breif", "--out", str(out)])
    assert usage.value.code == 2
    assert "--detail: unknown detail 'breif'; did you mean 'brief'? (use brief or full)" in capsys.readouterr().err
    assert main(["derive", str(ROOT / "examples" / "digits.toml"), "--detail", "full", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        (
            "chainrule: --detail: full documents are written for up to 400 parameters and this network has "
            "2410; use --detail brief, or leave it out for a summary"
        )
    ]
    assert not out.exists()
    assert main(["derive", "--detail", "brief", "--out", str(out), "--format", "md"]) == 0
    assert "## Gradient flow" not in (out / "default.md").read_text()


def test_a_brief_handout_of_the_default_example_prints_to_at_most_six_pages(mazur, tmp_path):
    from test_pdflatex import compile_tex

    d, ex = mazur
    docs = render_documents(d, ex, tmp_path, "default", ("tex",), prove(d.network), "brief")
    compiled = compile_tex(tmp_path / "pdf", next(iter(docs.values())))
    assert compiled.result.returncode == 0, compiled.errors()
    assert compiled.pages <= 6, compiled.pages


def test_the_special_functions_a_derivation_shows_are_defined_once(mazur):
    d, ex = mazur
    md = render(d, "md", ex)
    assert md.count("the logistic sigmoid; its derivative is σ(u)·(1 − σ(u))") == 1
    html = render(d, "html", ex)
    assert html.count('<dl class="notation">') == 1 and "the logistic sigmoid" in html
    plain = derive(loads('[network]\ninputs = 2\nlayers = [ { units = 1, activation = "tanh" } ]\nloss = "mse"\n'))
    assert '<dl class="notation">' not in render(plain, "html", worked_example(plain))
