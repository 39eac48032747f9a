"""Bad layer specs: one line on stderr naming the file and the field, exit 2, nothing written.

Each case goes through a TOML spec and ``chainrule derive`` (``chainrule.cli.main`` in
process, one through a real interpreter), and, where Python can say the same thing,
through ``chainrule.Network(...)``, which raises ``chainrule.SpecError`` with the same
field and message.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import chainrule
from chainrule.cli import main
from chainrule.kinds import BatchNorm, Dense, Dropout, LayerNorm, Residual
from chainrule.network import Example

#: A network with one layer of the case's between a tanh layer of 2 units and the output.
SPEC = """\
[network]
inputs = 2
layers = [ {{ units = 2, activation = "tanh" }}, {layer}, {{ units = 1, activation = "identity" }} ]
loss = "mse"
"""


def api(layer, example: Example | None = None) -> chainrule.Network:
    return chainrule.Network(2, (Dense(2, "tanh"), layer, Dense(1, "identity")), "mse", example=example)


#: name -> (the layer's TOML table, [example] text or "", the field, words the message has,
#: the same network in Python or None).
BAD = {
    "unknown kind, closest suggested": (
        '{ kind = "batchnorm" }', "", "network.layers[1].kind", ["'batchnorm'", "did you mean 'batch_norm'?"], None,
    ),
    "misspelt residual": (
        '{ kind = "resdiual", layers = [ { units = 2 } ] }', "", "network.layers[1].kind", ["did you mean 'residual'?"], None,
    ),
    "misspelt layer norm": ('{ kind = "layernorm" }', "", "network.layers[1].kind", ["did you mean 'layer_norm'?"], None),
    "kind not a string": ("{ kind = 3 }", "", "network.layers[1].kind", ["layer kind", "dense, batch_norm"], None),
    "p = 1": ('{ kind = "dropout", p = 1 }', "", "network.layers[1].p", ["probability", "the number 1"], lambda: api(Dropout(1))),
    "p = -0.1": ('{ kind = "dropout", p = -0.1 }', "", "network.layers[1].p", ["probability", "-0.1"], lambda: api(Dropout(-0.1))),
    'p = "x"': ('{ kind = "dropout", p = "x" }', "", "network.layers[1].p", ["probability", "the string 'x'"], lambda: api(Dropout("x"))),
    "p = true": ('{ kind = "dropout", p = true }', "", "network.layers[1].p", ["the boolean true"], lambda: api(Dropout(True))),
    "residual output wider than its input": (
        '{ kind = "residual", layers = [ { units = 3 } ] }', "", "network.layers[1].layers",
        ["3 units", "input has 2", "equal widths"], lambda: api(Residual([Dense(3)])),
    ),
    "residual output narrower than its input": (
        '{ kind = "residual", layers = [ { units = 4 }, { units = 1 } ] }', "", "network.layers[1].layers",
        ["1 unit", "input has 2"], lambda: api(Residual([Dense(4), Dense(1)])),
    ),
    "inner layers = 3": (
        '{ kind = "residual", layers = 3 }', "", "network.layers[1].layers", ["the number 3"], lambda: api(Residual(3)),
    ),
    "inner layers a table": (
        '{ kind = "residual", layers = { units = 2 } }', "", "network.layers[1].layers", ["a table"],
        lambda: api(Residual({"units": 2})),
    ),
    "inner layers empty": (
        '{ kind = "residual", layers = [] }', "", "network.layers[1].layers", ["0 items"], lambda: api(Residual([])),
    ),
    "inner layers missing": ('{ kind = "residual" }', "", "network.layers[1].layers", ["missing"], None),
    "a bad inner layer": (
        '{ kind = "residual", layers = [ { units = 2 }, { kind = "dropout", p = 2.0 } ] }', "",
        "network.layers[1].layers[1].p", ["probability"], lambda: api(Residual([Dense(2), Dropout(2.0)])),
    ),
    "batch norm eps = 0": (
        '{ kind = "batch_norm", eps = 0.0 }', "", "network.layers[1].eps", ["above 0"], lambda: api(BatchNorm(eps=0.0)),
    ),
    "layer norm eps < 0": (
        '{ kind = "layer_norm", eps = -1e-5 }', "", "network.layers[1].eps", ["above 0"], lambda: api(LayerNorm(eps=-1e-5)),
    ),
    "momentum = 0": (
        '{ kind = "batch_norm", momentum = 0.0 }', "", "network.layers[1].momentum", ["above 0 and at most 1"],
        lambda: api(BatchNorm(momentum=0.0)),
    ),
    "momentum = 1.5": (
        '{ kind = "batch_norm", momentum = 1.5 }', "", "network.layers[1].momentum", ["at most 1", "1.5"],
        lambda: api(BatchNorm(momentum=1.5)),
    ),
    "momentum a string": ('{ kind = "batch_norm", momentum = "fast" }', "", "network.layers[1].momentum", ["number"], None),
    "unknown key in batch_norm": (
        '{ kind = "batch_norm", epsilon = 1e-5 }', "", "network.layers[1].epsilon", ["unknown key", "use eps, kind or momentum"], None,
    ),
    "activation layer with softmax": (
        '{ kind = "activation", activation = "softmax" }', "", "network.layers[1].activation", ["normalizes a whole layer", "last dense layer"],
        lambda: api(chainrule.Activation("softmax")),
    ),
    "activation layer with an unknown activation": (
        '{ kind = "activation", activation = "rleu" }', "", "network.layers[1].activation", ["unknown activation 'rleu'"],
        lambda: api(chainrule.Activation("rleu")),
    ),
    "unknown key in dropout": ('{ kind = "dropout", rate = 0.5 }', "", "network.layers[1].rate", ["unknown key", "use kind or p"], None),
    "dense keys on batch norm": ('{ kind = "batch_norm", units = 2 }', "", "network.layers[1].units", ["unknown key"], None),
    "batch norm over one example": (
        '{ kind = "batch_norm" }', "[example]\nx = [[0.1, 0.2]]\n", "example.x", ["batch norm", "rows"],
        lambda: api(BatchNorm(), Example(x=((0.1, 0.2),))),
    ),
    "batch norm over one example with y": (
        '{ kind = "batch_norm" }', "[example]\nx = [[0.1, 0.2]]\ny = [[0.5]]\n", "example.x", ["batch norm"],
        lambda: api(BatchNorm(), Example(x=((0.1, 0.2),), y=((0.5,),))),
    ),
    "a dropout mask of a wrong value": (
        '{ kind = "dropout", p = 0.5 }', "[example]\nx = [0.1, 0.2]\nM2 = [[2.0, 1.0]]\n", "example.M2",
        ["0 or 1/(1 − p) = 2", "1.0"], lambda: api(Dropout(0.5), Example(x=(0.1, 0.2), parameters={"M2": ((2.0, 1.0),)})),
    ),
    "a dropout mask of a wrong shape": (
        '{ kind = "dropout", p = 0.5 }', "[example]\nx = [[0.1, 0.2], [0.3, 0.4]]\ny = [[1.0], [0.0]]\nM2 = [[2.0, 0.0]]\n",
        "example.M2", ["must have shape (2, 2): 2 examples × 2 units of layer 2, one row per example; got 1 row instead of 2"], None,
    ),
    "a γ of a wrong shape": (
        '{ kind = "layer_norm" }', "[example]\ngamma2 = [1.0]\n", "example.gamma2",
        ["must have shape (2,): one number for each of the 2 units of layer 2; got 1 number instead of 2"],
        lambda: api(LayerNorm(), Example(parameters={"gamma2": (1.0,)})),
    ),
    "a β row that is a number": (
        '{ kind = "batch_norm" }', "[example]\nx = [[0.1, 0.2], [0.3, 0.4]]\nbeta2 = 0.5\n", "example.beta2",
        ["must have shape (2,): one number for each of the 2 units of layer 2; got the number 0.5, not an array of 2 numbers"],
        lambda: api(BatchNorm(), Example(x=((0.1, 0.2), (0.3, 0.4)), parameters={"beta2": 0.5})),
    ),
    "a mask for a layer that is not dropout": ('{ kind = "layer_norm" }', "[example]\nM2 = [[2.0, 0.0]]\n", "example.M2", ["unknown key"], None),
}


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("name", list(BAD))
def test_bad_layer_spec_is_one_line_exit_2_and_writes_nothing(name: str, tmp_path: Path, capsys) -> None:
    layer, example, field, words, _ = BAD[name]
    spec = tmp_path / "bad.toml"
    spec.write_text(SPEC.format(layer=layer) + example, encoding="utf-8")
    before = listing(tmp_path)
    try:
        code = main(["derive", str(spec), "--out", str(tmp_path / "out")])
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # noqa: BLE001 - out of main, it is a traceback for the user
        pytest.fail(f"{type(exc).__name__}: {exc}")
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"chainrule: {spec}: {field}: "), err
    for word in words:
        assert word in err, (word, err)
    assert "Traceback" not in err and out == ""
    assert listing(tmp_path) == before


@pytest.mark.parametrize("name", [n for n, case in BAD.items() if case[4] is not None])
def test_the_same_message_through_the_python_api(name: str, tmp_path: Path) -> None:
    layer, example, field, words, build = BAD[name]
    with pytest.raises(chainrule.SpecError) as caught:
        build()
    error = caught.value
    assert error.field == field
    for word in words:
        assert word in error.message, (word, error.message)
    with pytest.raises(chainrule.SpecError) as from_toml:
        chainrule.loads(SPEC.format(layer=layer) + example, source="bad.toml")
    assert from_toml.value.field == field
    # The same message, but for how TOML and Python write the number (0.0 and 0); a block's
    # layers are "an array of tables" in TOML and "a list of layers" in Python.
    if not field.endswith(".layers"):
        assert from_toml.value.message.split(", got")[0] == error.message.split(", got")[0]


def test_bad_kind_through_a_real_interpreter(tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(SPEC.format(layer='{ kind = "batchnorm" }'), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "chainrule", "derive", str(spec), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{spec}: network.layers[1].kind" in result.stderr and "did you mean 'batch_norm'?" in result.stderr
    assert not (tmp_path / "out").exists()


def test_training_batch_norm_on_batches_of_one_is_refused(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "bn.toml"
    spec.write_text(SPEC.format(layer='{ kind = "batch_norm" }'), encoding="utf-8")
    code = main(["train", str(spec), "--data", "xor", "--batch-size", "1", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "out")])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1, err
    assert "chainrule: --batch-size: batch norm" in err
    assert not (tmp_path / "out").exists()


def test_a_layer_that_is_not_a_layer_object() -> None:
    with pytest.raises(chainrule.SpecError) as caught:
        chainrule.Network(2, ({"kind": "batch_norm"}, Dense(1)), "mse")
    assert caught.value.field == "network.layers[0]" and "BatchNorm" in caught.value.message


def test_good_edge_values_are_accepted() -> None:
    """The ends of the ranges that are allowed: p = 0, momentum = 1, a mask of 1/(1 − p), 2 rows for batch norm."""
    api(Dropout(0.0))
    api(BatchNorm(momentum=1.0, eps=1.0))
    api(Dropout(0.2), Example(x=(0.1, 0.2), parameters={"M2": ((1.25, 0.0),)}))
    net = api(BatchNorm(), Example(x=((0.1, 0.2), (0.3, 0.4)), y=((0.5,), (0.1,))))
    assert net.batch == 2


def test_kinds_are_exported_beside_dense() -> None:
    """The issue: "the same in Python (BatchNorm(), Residual([...]), Dropout(0.2), LayerNorm()) beside Dense"."""
    for spec in (Dense, BatchNorm, Residual, Dropout, LayerNorm):
        assert getattr(chainrule, spec.__name__, None) is spec, f"chainrule.{spec.__name__} is missing"
