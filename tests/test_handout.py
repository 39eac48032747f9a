"""What a handout shows: the worked example's real data, and the entries a summary must not hide."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.datasets import load_dataset
from chainrule.derive import derive
from chainrule.network import loads
from chainrule.numeric import draw_point, worked_example
from chainrule.render import render
from chainrule.render.summary import More, value_rows

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
