"""``chainrule train`` and ``explain`` on the command line: progress lines, stalls, options named in errors, formulas with a minus.

Training runs here are tiny (XOR's four rows, a hundred epochs), so each test takes a second or less.
"""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import TRAIN_OPTIONS, main
from chainrule.model import compile
from chainrule.network import Dense, Network
from chainrule.progress import LINES, Progress
from chainrule.train import Epoch, Settings, _cause, saturation

XOR = "examples/xor.toml"
IRIS = "examples/iris.toml"


def epoch(n: int, loss: float, norm: float = 0.1) -> Epoch:
    return Epoch(n, loss, 1.0, loss, 1.0, 0.1, {"layer 1": norm}, n, 0.01)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- progress lines -----------------------------------------------------------------------------


def test_a_progress_line_keeps_four_significant_digits() -> None:
    out = io.StringIO()
    Progress(2000, stream=out).epoch(epoch(2000, 2.3121e-05))
    assert out.getvalue() == "epoch 2000/2000  loss 2.312e-05  acc 100.00%  val loss 2.312e-05  val acc 100.00%\n"


@pytest.mark.parametrize("epochs", [1, 7, 20, 21, 60, 2000, 100_000])
def test_not_in_a_terminal_a_run_prints_at_most_lines_evenly_spaced_and_the_last(epochs: int) -> None:
    out = io.StringIO()  # not a terminal
    progress = Progress(epochs, stream=out)
    for n in range(1, epochs + 1):
        progress.step(n, 1, 1, 0.5)
        progress.epoch(epoch(n, 0.5))
    progress.close()
    lines = out.getvalue().splitlines()
    shown = [int(line.split()[1].split("/")[0]) for line in lines]
    assert len(lines) <= LINES + 2 and len(lines) == min(epochs, len(lines))
    assert shown[0] == 1 and shown[-1] == epochs and shown == sorted(set(shown))
    gaps = {b - a for a, b in itertools.pairwise(shown[1:-1])}
    assert len(gaps) <= 1  # evenly spaced between the first and the last
    assert "\r" not in out.getvalue() and "\033" not in out.getvalue()


def test_the_command_line_prints_21_lines_for_2000_epochs(tmp_path, capsys) -> None:
    assert main(["train", XOR, "--out", str(tmp_path), "--format", "json"]) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 21 and lines[-1].startswith("epoch 2000/2000  loss 2.276e-05")
    assert "0.0000" not in err


# --- stalls ---------------------------------------------------------------------------------------


def test_a_saturated_run_is_reported_as_stalled_with_its_cause(tmp_path, capsys) -> None:
    code = main(["train", XOR, "--lr", "1000", "--optimizer", "sgd", "--epochs", "100", "--quiet", "--out", str(tmp_path)])
    assert code == 0  # it trained; the report and stderr say how badly
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("chainrule: training stalled from epoch ")
    assert "the units are saturated" in err and "100% of layer 1 (sigmoid)" in err
    assert "the first steps overshot" in err and "try --lr 100" in err
    report = json.loads((tmp_path / "xor-training.json").read_text())
    stall = report["stall"]
    assert stall["loss"] == pytest.approx(0.5) and stall["gradient_norm"] < 1e-9 < stall["largest_norm"]
    assert stall["initial_loss"] < 0.3 and [l["layer"] for l in stall["layers"]] == [1, 2]
    assert all(l["saturated"] == 1.0 for l in stall["layers"])
    html = (tmp_path / "xor-training.html").read_text()
    assert '<p class="stalled" role="status"><strong>Training stalled</strong> from epoch' in html


def test_a_run_that_learned_is_not_stalled(tmp_path, capsys) -> None:
    assert main(["train", XOR, "--epochs", "300", "--quiet", "--out", str(tmp_path), "--format", "json"]) == 0
    assert capsys.readouterr().err == ""
    assert json.loads((tmp_path / "xor-training.json").read_text())["stall"] is None


RELU = Network(2, (Dense(3, "relu"), Dense(1, "sigmoid")), "bce")
RUN = Settings("xor", "sgd", 0.5, 10, None, 0, "he_normal", "constant")


def test_dead_relus_are_named_as_the_cause() -> None:
    model = compile(RELU)
    params = model.init_params(0)
    params["b1"] = np.full(3, -100.0)  # z < 0 on every example: no relu passes anything
    X, Y = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), np.array([[0.0], [1.0], [1.0], [0.0]])
    layers = saturation(model, params, {}, X, Y)
    assert [(l.layer, l.activation, l.dead) for l in layers] == [(1, "relu", 1.0), (2, "sigmoid", 0.0)]
    cause = _cause(layers, RUN, rose=False)
    assert cause.startswith("100% of the units of layer 1 (relu) are dead, with f′(z) = 0 on every training example")
    assert "try --lr 0.05 or --init glorot_normal" in cause


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_a_flat_run_without_saturated_or_dead_units_is_a_plateau(activation: str) -> None:
    model = compile(Network(2, (Dense(3, activation), Dense(1, "sigmoid")), "bce"))
    params = model.init_params(0, "normal")  # small weights: every unit in its slope
    X, Y = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), np.array([[1.0], [1.0], [0.0]])
    layers = saturation(model, params, {}, X, Y)
    assert all(l.dead == 0.0 and l.saturated < 0.9 for l in layers), layers
    assert _cause(layers, RUN, rose=False).startswith("no layer is saturated or dead, so the run sits on a flat stretch")


def train_help(capsys) -> str:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_help_documents_the_exit_code_of_a_stalled_run(capsys) -> None:
    assert "has stalled: the report and stderr say so, with the likely cause" in train_help(capsys)
    assert "it still trained, so it exits 0" in train_help(capsys)


# --- an error in an option names the option -----------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "line"),
    [
        ("--optimizer", "adm", "chainrule: --optimizer: unknown optimizer 'adm'; did you mean 'adam'? (use gd, sgd,"),
        ("--schedule", "cosin", "chainrule: --schedule: unknown schedule 'cosin'; did you mean 'cosine'? (use constant, step or cosine)"),
        ("--init", "he_norml", "chainrule: --init: unknown init 'he_norml'; did you mean 'he_normal'? (use normal,"),
        ("--data", "irsi", "chainrule: --data: unknown data set 'irsi'; did you mean 'iris'? (use xor, moons,"),
        ("--lr", "-1", "chainrule: --lr: must be greater than 0, got -1.0"),
        ("--epochs", "0", "chainrule: --epochs: must be a whole number from 1 to 100000, got 0"),
    ],
)
def test_a_wrong_option_is_blamed_on_the_option(tmp_path, capsys, option: str, value: str, line: str) -> None:
    code = main(["train", IRIS, f"{option}={value}", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(line) and err.count("\n") == 1, err
    assert "iris.toml" not in err and "training." not in err
    assert listing(tmp_path) == []


def test_every_option_of_the_table_is_an_option_of_train(capsys) -> None:
    text = train_help(capsys)
    assert all(f"{option} " in text for option in TRAIN_OPTIONS.values())


@pytest.mark.parametrize(
    ("key", "value", "line"),
    [
        ("optimizer", '"adm"', "training.optimizer: unknown optimizer 'adm'; did you mean 'adam'?"),
        ("schedule", '"cosin"', "training.schedule: unknown schedule 'cosin'; did you mean 'cosine'?"),
        ("data", '"irsi"', "training.data: unknown data set 'irsi'; did you mean 'iris'?"),
    ],
)
def test_a_wrong_spec_value_is_blamed_on_the_file_and_the_field(tmp_path, capsys, key: str, value: str, line: str) -> None:
    spec = tmp_path / "bad.toml"
    text = Path(IRIS).read_text()
    lines = [f"{key} = {value}" if row.startswith(f"{key} =") else row for row in text.splitlines()]
    if not any(row.startswith(f"{key} =") for row in text.splitlines()):
        lines.append(f"{key} = {value}")
    spec.write_text("\n".join(lines) + "\n")
    code = main(["train", str(spec), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"chainrule: {spec}: {line}") and err.count("\n") == 1, err


# --- explain: a formula that starts with a minus ------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["-log(x)"], ["-log(x)", "--wrt", "x"], ["--wrt", "x", "-log(x)"], ["--", "-log(x)"]],
)
def test_explain_takes_a_formula_that_starts_with_a_minus(tmp_path, capsys, argv) -> None:
    code = main(["explain", *argv, "--out", str(tmp_path), "--format", "json"] if argv[0] != "--" else
                ["explain", "--out", str(tmp_path), "--format", "json", *argv])  # fmt: skip
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "d/dx: -1/x"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        ([], "chainrule explain: the following arguments are required: FORMULA (see chainrule explain --help)\n"),
        (["x**2", "-y"], "chainrule: unrecognized arguments: -y (see chainrule --help)\n"),
        (["-x", "--fromat", "json"], "chainrule: unrecognized arguments: -x --fromat (see chainrule --help)\n"),
    ],
)
def test_explain_still_refuses_what_is_not_a_formula(tmp_path, capsys, argv, line) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["explain", *argv, "--out", str(tmp_path / "out")])
    assert stop.value.code == 2 and capsys.readouterr().err == line
    assert listing(tmp_path) == []
