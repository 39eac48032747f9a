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
from chainrule.network import (
    BatchNorm,
    Dense,
    Dropout,
    Network,
    Residual,
    SpecError,
    load,
)
from chainrule.optim import OPTIMIZERS, SCHEDULES
from chainrule.train import DEFAULTS, GRID, MISSES, batches, fit, settings

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
        ({"data": "mnist"}, "training.data: unknown data set 'mnist'; use xor, moons"),
        ({"data": "xor", "optimizer": "adamax"}, "training.optimizer: unknown optimizer 'adamax'; did you mean 'adamw'? (use gd, sgd"),
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
        (["--data", "cifar"], "chainrule: --data: unknown data set 'cifar'"),
        (["--data", "digits"], ("--data: digits has 64 features; the network of examples/iris.toml has 4 inputs; "
                                "use a data set of 4 features (iris) or set network.inputs = 64 in it")),
        (["--data", "moons"], "--data: moons has 2 features; the network of examples/iris.toml has 4 inputs"),
        (["--lr", "abc"], "argument --lr: must be a number, got 'abc'"),
        (["--optimizer", "lbfgs"], "chainrule: --optimizer: unknown optimizer 'lbfgs'"),
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


# --- every layer kind: running statistics, dropout masks, batches -----------------------------

BN_MOONS = Network(2, (Dense(8, "tanh"), BatchNorm(), Dense(1, "sigmoid")), "bce")


def test_batch_norm_training_follows_pytorch_and_keeps_the_running_statistics() -> None:
    data = _moons()
    run = settings({"data": "moons", "optimizer": "sgd", "learning_rate": 0.1, "epochs": 3, "batch_size": 24}, network=BN_MOONS)
    model = compile(BN_MOONS)
    result = fit(model, data, run)
    assert result.history[-1].steps == 30 and sorted(result.state) == ["mean2", "var2"]

    F = torch.nn.functional
    params = {k: torch.tensor(v, requires_grad=True) for k, v in model.init_params(seed=0).items()}
    mean, var = torch.zeros(8, dtype=torch.float64), torch.ones(8, dtype=torch.float64)
    opt = torch.optim.SGD(params.values(), lr=0.1)
    rng = np.random.default_rng((0, 2))
    X, Y = torch.tensor(data.X_train), torch.tensor(data.Y_train)

    def forward(x, training):
        a = torch.tanh(x @ params["W1"].T + params["b1"])
        a = F.batch_norm(a, mean, var, params["gamma2"], params["beta2"], training=training, momentum=0.1, eps=1e-5)
        return torch.sigmoid(a @ params["W3"].T + params["b3"])

    for _ in range(3):
        for rows in batches(240, 24, rng):
            opt.zero_grad()
            F.binary_cross_entropy(forward(X[rows], True), Y[rows]).backward()
            opt.step()
    for name, tensor in params.items():
        want = tensor.detach().numpy()
        assert np.abs(result.parameters[name] - want).max() <= 1e-9 * max(1.0, np.abs(want).max())
    assert np.abs(result.state["mean2"] - mean.numpy()).max() <= 1e-9
    assert np.abs(result.state["var2"] - var.numpy()).max() <= 1e-9
    assert not np.allclose(result.state["var2"], 1.0)  # they moved
    with torch.no_grad():  # evaluation uses the running statistics (PyTorch's eval mode)
        p = forward(torch.tensor(data.X_test), False)
        want = F.binary_cross_entropy(p, torch.tensor(data.Y_test)).item()
    assert result.test_loss == pytest.approx(want, rel=1e-10)


def test_dropout_masks_come_from_the_seed() -> None:
    net = Network(2, (Dense(16, "relu"), Dropout(0.5), Dense(1, "sigmoid")), "bce")
    model, data = compile(net), _moons()

    def trained(seed: int):
        run = settings({"data": "moons", "optimizer": "adam", "epochs": 3, "batch_size": 32, "seed": seed})
        return fit(model, data, run)

    a, b, c = trained(0), trained(0), trained(1)
    assert all(np.array_equal(a.parameters[k], b.parameters[k]) for k in a.parameters)
    assert a.test_loss == b.test_loss and a.state == {} and a.stopped is None
    assert not np.array_equal(a.parameters["W1"], c.parameters["W1"])
    # The masks do act: the same run with p = 0 (every unit kept, same weights and batches) ends elsewhere.
    plain = compile(Network(2, (Dense(16, "relu"), Dropout(0.0), Dense(1, "sigmoid")), "bce"))
    kept = fit(plain, data, settings({"data": "moons", "optimizer": "adam", "epochs": 3, "batch_size": 32}))
    assert np.abs(kept.parameters["W1"] - a.parameters["W1"]).max() > 1e-3


def test_a_residual_network_reports_the_gradient_norm_of_each_layer_with_parameters() -> None:
    net = Network(2, (Dense(8, "relu"), Residual([Dense(8, "relu"), Dense(8, "identity")]), Dropout(0.1), Dense(1, "sigmoid")), "bce")
    result = fit(compile(net), _moons(), settings({"data": "moons", "epochs": 2, "batch_size": 32}))
    # stages: 1 dense, 2 and 3 inside the block, 4 the sum, 5 dropout, 6 dense; 4 and 5 have no parameters
    assert list(result.history[0].gradient_norms) == ["layer 1", "layer 2", "layer 3", "layer 6"]
    assert all(v > 0 for v in result.history[0].gradient_norms.values())


def test_batch_norm_with_a_batch_of_one_is_refused_at_settings_time() -> None:
    with pytest.raises(SpecError) as caught:
        settings({"data": "moons", "batch_size": 1}, network=BN_MOONS)
    message = str(caught.value)
    assert message.startswith("<network>: training.batch_size: batch norm normalizes over the examples of a batch")
    assert 'use 2 or more (e.g. 32) or "full"' in message and "\n" not in message
    assert settings({"data": "moons", "batch_size": 1}, network=MOONS).batch_size == 1  # dense alone: fine
    assert settings({"data": "moons", "batch_size": 1, "optimizer": "gd"}, network=BN_MOONS).optimizer == "gd"  # full batch


def test_batch_norm_with_a_batch_of_one_on_the_command_line_is_exit_2_and_no_files(tmp_path, capsys) -> None:
    code = main(["train", "examples/batchnorm.toml", "--batch-size", "1", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "chainrule: --batch-size: batch norm normalizes over the examples of a batch" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_last_batch_of_one_row_joins_the_batch_before_it_under_batch_norm() -> None:
    assert [len(b) for b in batches(240, 239, np.random.default_rng(0))] == [239, 1]
    run = settings({"data": "moons", "optimizer": "sgd", "epochs": 2, "batch_size": 239}, network=BN_MOONS)
    result = fit(compile(BN_MOONS), _moons(), run)
    assert result.stopped is None and [e.steps for e in result.history] == [1, 2]
    dense = fit(compile(MOONS), _moons(), settings({"data": "moons", "optimizer": "sgd", "epochs": 2, "batch_size": 239}))
    assert [e.steps for e in dense.history] == [2, 4]  # without batch norm the lone row is a step of its own


@pytest.mark.parametrize("example", ["batchnorm", "residual", "dropout"])
def test_the_layer_kind_examples_reach_96_percent_on_digits(tmp_path, capsys, example: str) -> None:
    assert main(["train", f"examples/{example}.toml", "--out", str(tmp_path), "--quiet"]) == 0
    report = _report(tmp_path)
    assert report["test_accuracy"] >= 0.96, report["test_accuracy"]
    assert report["settings"]["data"] == "digits" and len(report["history"]) == 20
    if example == "batchnorm":
        assert sorted(report["state"]) == ["mean2", "var2"] and len(report["state"]["var2"]) == 64
        assert min(report["state"]["var2"]) > 0
        html = (tmp_path / "batchnorm-training.html").read_text()
        assert "The running statistics" in html and "<code>mean2</code>" in html
    else:
        assert report["state"] == {}


def test_depth_20_sigmoid_trains_with_batch_norm_and_not_without() -> None:
    """Twenty sigmoid layers: plain, δ vanishes (σ' ≤ 1/4 per layer); with batch norm after each, it trains."""
    plain = Network(2, (*(Dense(8, "sigmoid") for _ in range(20)), Dense(1, "sigmoid")), "bce")
    normed = Network(2, (*(s for _ in range(20) for s in (Dense(8, "sigmoid"), BatchNorm())), Dense(1, "sigmoid")), "bce")
    table = {"data": "moons", "optimizer": "sgd", "learning_rate": 0.1, "epochs": 10, "batch_size": 32}
    a = fit(compile(plain), _moons(), settings(table, network=plain))
    b = fit(compile(normed), _moons(), settings(table, network=normed))
    # measured: plain 0.695 -> 0.694, 50.0% test accuracy, layer 1 gradient 1e-14; batch norm 0.695 -> 0.406, 82.5%
    assert a.history[-1].train_loss > 0.69 and a.test_accuracy <= 0.55
    assert a.history[0].gradient_norms["layer 1"] < 1e-10
    assert b.history[-1].train_loss < 0.5 and b.test_accuracy >= 0.8
    assert b.history[0].gradient_norms["layer 1"] > 1e-2


# --- after training: what the classifier makes of the test set (issue 12) -------------------------

XOR_NET = Network(2, (Dense(2, "sigmoid"), Dense(1, "sigmoid")), "mse")


def test_a_trained_xor_has_its_confusion_matrix_and_decision_boundary() -> None:
    run = settings({"data": "xor", "optimizer": "adam", "learning_rate": 0.1, "epochs": 300, "batch_size": "full", "init": "he_normal"})
    result = fit(compile(XOR_NET), load_dataset("xor", outputs=1, targets="unit"), run)
    assert result.test_accuracy == 1.0 and result.stall is None
    seen = result.classified
    assert seen.confusion == ((2, 0), (0, 2)) and seen.missed == 0 and seen.misses == ()
    b = seen.boundary
    assert len(b.x) == len(b.y) == len(b.predicted) == len(b.predicted[0]) == GRID
    assert sorted(b.points) == [(0.0, 0.0, 0), (0.0, 1.0, 1), (1.0, 0.0, 1), (1.0, 1.0, 0)]
    # the grid's corners are XOR's corners, outside by a margin: (0, 0) → 0 and (1, 0) → 1
    assert b.x[0] < 0 and b.x[-1] > 1 and b.predicted[0][0] == 0 and b.predicted[0][-1] == 1
    assert result.first_entry == ("W1", (0, 0))
    assert result.first_step[0] == compile(XOR_NET).init_params(0, "he_normal")["W1"][0, 0]


def test_digits_keeps_its_first_misclassified_test_images() -> None:
    net = Network(64, (Dense(10, "softmax"),), "cross_entropy")
    data = load_dataset("digits", outputs=10, targets="distribution")
    result = fit(compile(net), data, settings({"data": "digits", "epochs": 1, "learning_rate": 0.001}))
    seen = result.classified
    assert sum(map(sum, seen.confusion)) == len(data.X_test) == 360
    assert seen.missed == 360 - sum(seen.confusion[i][i] for i in range(10)) > MISSES
    assert len(seen.misses) == MISSES and seen.boundary is None
    first = seen.misses[0]
    row = first.row - 1
    assert first.truth == data.classes[data.labels_test[row]] != first.predicted
    assert np.allclose(np.array(first.image), (data.X_test[row] * data.scale + data.mean).reshape(8, 8))
    assert np.array(first.image).max() <= 16 and np.array(first.image).min() >= 0  # pixels as loaded, 0 to 16

