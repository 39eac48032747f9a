"""Training: settings, the loop against PyTorch's SGD, clean stops, and the examples' results."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from chainrule.cli import main
from chainrule.datasets import load_dataset
from chainrule.model import compile
from chainrule.network import Dense, Network, SpecError, load
from chainrule.optim import OPTIMIZERS, SCHEDULES
from chainrule.train import DEFAULTS, batches, fit, settings

MOONS = Network(2, (Dense(8, "tanh"), Dense(8, "relu"), Dense(1, "sigmoid")), "bce")


def _moons():
    return load_dataset("moons", outputs=1, targets="unit", seed=0)


def test_sgd_follows_pytorch_for_200_steps() -> None:
    data = _moons()
    assert len(data.X_train) == 240
    run = settings({"data": "moons", "optimizer": "sgd", "learning_rate": 0.1, "epochs": 20, "batch_size": 24})
    model = compile(MOONS)
    result = fit(model, data, run)
    assert result.history[-1].steps == 200

    params = {k: torch.tensor(v, requires_grad=True) for k, v in model.init_params(seed=0).items()}
    opt = torch.optim.SGD(params.values(), lr=0.1)
    rng = np.random.default_rng((0, 2))  # the loop's own stream for batches
    X, Y = torch.tensor(data.X_train), torch.tensor(data.Y_train)
    for _ in range(20):
        for rows in batches(240, 24, rng):
            opt.zero_grad()
            a = X[rows]
            a = torch.tanh(a @ params["W1"].T + params["b1"])
            a = torch.relu(a @ params["W2"].T + params["b2"])
            p = torch.sigmoid(a @ params["W3"].T + params["b3"])
            torch.nn.functional.binary_cross_entropy(p, Y[rows]).backward()
            opt.step()
    for name, tensor in params.items():
        want = tensor.detach().numpy()
        assert np.abs(result.parameters[name] - want).max() <= 1e-9 * max(1.0, np.abs(want).max())
    assert result.history[-1].train_loss < result.history[0].train_loss


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_lowers_the_loss(name: str) -> None:
    rate = {"gd": 0.5, "sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.1}.get(name, 0.01)
    run = settings({"data": "moons", "optimizer": name, "learning_rate": rate, "epochs": 8, "batch_size": 16})
    model, data = compile(MOONS), _moons()
    before = model.loss(model.init_params(seed=0), data.X_train, data.Y_train)
    result = fit(model, data, run)
    losses = [e.train_loss for e in result.history]
    assert result.stopped is None and len(losses) == 8
    assert losses[-1] < 0.8 * before
    steps = [e.steps for e in result.history]
    assert steps[-1] == (8 if OPTIMIZERS[name].full_batch else 8 * 15)
    assert result.test_accuracy > 0.75


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_the_schedule_sets_each_epochs_rate(name: str) -> None:
    run = settings({"data": "xor", "schedule": name, "learning_rate": 0.2, "epochs": 25, "batch_size": "full",
                    "hyperparameters": {"step_size": 10, "gamma": 0.5} if name == "step" else {}})
    result = fit(compile(Network(2, (Dense(2, "tanh"), Dense(1, "sigmoid")), "bce")), load_dataset("xor", outputs=1, targets="unit"), run)
    rates = [e.learning_rate for e in result.history]
    if name == "constant":
        assert rates == [0.2] * 25
    elif name == "step":
        assert rates[:10] == [0.2] * 10 and rates[10:20] == [0.1] * 10 and rates[20:] == [0.05] * 5
    else:
        assert rates[0] == 0.2 and rates[-1] == pytest.approx(0.2 * (1 + math.cos(math.pi * 24 / 25)) / 2)


def test_clipping_by_norm_bounds_every_sgd_step() -> None:
    run = settings({"data": "moons", "optimizer": "sgd", "learning_rate": 1.0, "epochs": 1, "batch_size": 16, "clip_norm": 0.01})
    model = compile(MOONS)
    start = model.init_params(seed=0)
    result = fit(model, _moons(), run)
    moved = math.sqrt(sum(float(((result.parameters[k] - start[k]) ** 2).sum()) for k in start))
    assert 0 < moved <= 15 * 0.01 + 1e-12  # 15 steps of at most lr * 0.01 each


def test_a_nan_stops_training_and_names_epoch_step_layer_and_cause() -> None:
    run = settings({"data": "moons", "optimizer": "sgd", "learning_rate": 1e6, "epochs": 5, "batch_size": 16})
    net = Network(2, (Dense(8, "relu"), Dense(1, "identity")), "mse")
    result = fit(compile(net), load_dataset("moons", outputs=1, seed=0), run)
    assert result.stopped is not None
    assert "became NaN or infinite in epoch 1, step " in result.stopped
    assert " in layer " in result.stopped
    assert "learning rate" in result.stopped or "exploding" in result.stopped
    assert result.test_loss is None and len(result.history) == 0


def test_ctrl_c_keeps_the_epochs_that_finished() -> None:
    def interrupt(epoch, step, steps, loss):
        if epoch == 3 and step == 2:
            raise KeyboardInterrupt

    run = settings({"data": "moons", "epochs": 10})
    result = fit(compile(MOONS), _moons(), run, on_step=interrupt)
    assert [e.epoch for e in result.history] == [1, 2]
    assert result.stopped.startswith("interrupted (Ctrl-C) in epoch 3")
    assert result.test_accuracy is not None


def test_settings_take_the_command_line_over_the_spec_over_the_defaults() -> None:
    run = settings({"data": "iris", "learning_rate": 0.5, "epochs": 7}, {"learning_rate": 0.1, "epochs": None})
    assert (run.data, run.learning_rate, run.epochs, run.optimizer, run.batch_size) == ("iris", 0.1, 7, "adam", DEFAULTS["batch_size"])
    assert run.hyperparameters == {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-08}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "training.data: no data set given"),
        ({"data": "mnist"}, "training.data: unknown data set 'mnist'; use one of xor, moons"),
        ({"data": "xor", "optimizer": "adamax"}, "training.optimizer: unknown optimizer 'adamax'; use one of gd, sgd"),
        ({"data": "xor", "learning_rate": -1}, "training.learning_rate: must be greater than 0, got -1"),
        ({"data": "xor", "learning_rate": "fast"}, "training.learning_rate: must be a finite number, got 'fast'"),
        ({"data": "xor", "epochs": 2.5}, "training.epochs: must be a whole number from 1 to 100000, got 2.5"),
        ({"data": "xor", "batch_size": 0}, "training.batch_size: must be a whole number from 1"),
        ({"data": "xor", "schedule": "linear"}, "training.schedule: unknown schedule 'linear'"),
        ({"data": "xor", "init": "xavier"}, "training.init: unknown init 'xavier'"),
        ({"data": "xor", "momentum": 0.9}, "training.momentum: unknown key"),
        ({"data": "xor", "hyperparameters": {"beta3": 1}}, "training.hyperparameters.'beta3': not a hyperparameter of adam"),
        ({"data": "xor", "hyperparameters": {"beta1": 2}}, "training.hyperparameters: beta1 = 2.0 is outside its range"),
        ({"data": "xor", "clip_norm": 0}, "training.clip_norm: must be greater than 0, got 0"),
    ],
)
def test_bad_settings_are_one_clear_line(table, message) -> None:
    with pytest.raises(SpecError) as caught:
        settings(table)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# --- the command line and the examples ------------------------------------------------------------


def _report(out) -> dict:
    return json.loads(next(out.glob("*-training.json")).read_text())


def test_digits_example_reaches_97_percent(tmp_path, capsys) -> None:
    assert main(["train", "examples/digits.toml", "--out", str(tmp_path), "--quiet"]) == 0
    report = _report(tmp_path)
    assert report["test_accuracy"] >= 0.97
    assert len(report["history"]) == 60 and report["history"][0]["epoch"] == 1
    assert set(report["history"][0]) >= {"epoch", "train_loss", "val_accuracy", "val_loss", "train_accuracy"}
    assert "test accuracy 97" in capsys.readouterr().out
    html = (tmp_path / "digits-training.html").read_text()
    assert html.count("<svg") >= 3 and "Adam" in html


def test_xor_example_reaches_loss_below_001(tmp_path) -> None:
    assert main(["train", "examples/xor.toml", "--out", str(tmp_path), "--quiet"]) == 0
    report = _report(tmp_path)
    assert report["history"][-1]["train_loss"] < 0.01 and report["test_loss"] < 0.01
    assert report["test_accuracy"] == 1.0


@pytest.mark.parametrize("example", ["iris", "moons"])
def test_other_examples_learn(tmp_path, example: str) -> None:
    assert main(["train", f"examples/{example}.toml", "--out", str(tmp_path), "--quiet"]) == 0
    assert _report(tmp_path)["test_accuracy"] >= 0.85
    assert load(f"examples/{example}.toml").training["data"] == example


def test_cli_options_override_the_spec_and_reports_are_byte_identical_but_for_timings(tmp_path) -> None:
    args = ["train", "examples/iris.toml", "--optimizer", "sgd", "--lr", "0.05", "--epochs", "3", "--batch-size", "full", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a, b = _report(tmp_path / "a"), _report(tmp_path / "b")
    assert a["settings"]["optimizer"] == "sgd" and a["settings"]["batch_size"] is None
    assert [e["steps"] for e in a["history"]] == [1, 2, 3]
    for report in (a, b):
        for epoch in report["history"]:
            epoch.pop("seconds")
    assert a == b


def test_a_nan_run_exits_1_and_still_writes_the_report(tmp_path, capsys) -> None:
    code = main(["train", "examples/moons.toml", "--lr", "1e6", "--optimizer", "sgd", "--out", str(tmp_path), "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "training stopped: " in err and "in epoch 1, step" in err
    assert _report(tmp_path)["stopped"].startswith("the ")


def test_ctrl_c_on_the_command_line_writes_the_report(tmp_path, monkeypatch) -> None:
    from chainrule import progress

    def interrupt(self, epoch, step, steps, loss):
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress.Progress, "step", interrupt)
    assert main(["train", "examples/iris.toml", "--out", str(tmp_path), "--quiet"]) == 0
    report = _report(tmp_path)
    assert len(report["history"]) == 1 and report["stopped"].startswith("interrupted (Ctrl-C) in epoch 2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "cifar"], "examples/iris.toml: training.data: unknown data set 'cifar'"),
        (["--data", "digits"], "network.inputs: digits has 64 features; the network has 4 inputs; set inputs = 64"),
        (["--data", "moons"], "network.inputs: moons has 2 features; the network has 4 inputs; set inputs = 2"),
        (["--lr", "abc"], "argument --lr: must be a number, got 'abc'"),
        (["--optimizer", "lbfgs"], "training.optimizer: unknown optimizer 'lbfgs'"),
        (["--batch-size", "-3"], "argument --batch-size: must be a whole number"),
    ],
)
def test_bad_train_input_is_one_line_exit_2_and_no_files(tmp_path, capsys, args, message) -> None:
    with pytest.raises(SystemExit) if args[0] in ("--lr", "--batch-size") else _nothing() as caught:
        code = main(["train", "examples/iris.toml", *args, "--out", str(tmp_path / "out"), "--quiet"])
    if caught is not None and hasattr(caught, "value"):
        code = caught.value.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
