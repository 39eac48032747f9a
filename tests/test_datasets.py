"""The data sets: the table's entries, the seeded stratified split, standardization, targets, accuracy."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from chainrule.catalog import LOSSES
from chainrule.datasets import (
    DATASETS,
    TARGETS,
    DataError,
    Dataset,
    accuracy,
    load_dataset,
)

NAMES = list(DATASETS)
SPLIT_NAMES = [name for name in NAMES if not DATASETS[name].truth_table]
PARTS = ("train", "val", "test")
ARRAYS = [f"{kind}_{part}" for part in PARTS for kind in ("X", "Y", "labels")] + ["mean", "scale"]

#: Rows, classes and features of each set as its source publishes them.
KNOWN = {
    "xor": (4, 2, 2),
    "moons": (400, 2, 2),
    "spirals": (400, 2, 2),
    "iris": (150, 3, 4),
    "breast_cancer": (569, 2, 30),
    "digits": (1797, 10, 64),
}
#: Rows per class in the fixed sets (scikit-learn's documentation gives the same counts).
CLASS_COUNTS = {
    "xor": [2, 2],
    "iris": [50, 50, 50],
    "breast_cancer": [212, 357],
    "digits": [178, 182, 177, 183, 181, 182, 181, 179, 174, 180],
}
#: The first row of each fixed set, raw, as the source has it.
FIRST_ROWS = {
    "xor": [0.0, 0.0],
    "iris": [5.1, 3.5, 1.4, 0.2],
    "breast_cancer": [17.99, 10.38, 122.8],
    "digits": [0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0, 0.0, 0.0, 13.0, 15.0],
}


def classes(name: str) -> int:
    return len(DATASETS[name].classes)


def raw_rows(data: Dataset) -> np.ndarray:
    """Every row of every part with the standardization undone, in one array."""
    parts = [getattr(data, f"X_{part}") * data.scale + data.mean for part in PARTS]
    return np.concatenate(parts)


def sorted_rows(X: np.ndarray) -> np.ndarray:
    X = np.round(X, 9)
    return X[np.lexsort(X.T[::-1])]


# --- the table ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_entry_describes_what_its_loader_gives(name: str) -> None:
    source = DATASETS[name]
    assert source.name == name and source.task == "classification"
    assert source.title and source.description and "\n" not in source.description
    assert len(set(source.classes)) == len(source.classes) >= 2
    X, labels = source.load(0, source.default_size or 0)
    assert X.dtype == np.float64 and labels.dtype == np.int64
    assert X.shape == (len(labels), source.features)
    assert np.array_equal(np.unique(labels), np.arange(len(source.classes)))


@pytest.mark.parametrize("name", NAMES)
def test_known_sizes(name: str) -> None:
    rows, count, features = KNOWN[name]
    data = load_dataset(name, outputs=count)
    assert classes(name) == count and DATASETS[name].features == features == data.features
    total = len(data.labels_train) + len(data.labels_val) + len(data.labels_test)
    assert total == (rows * 3 if name == "xor" else rows)


@pytest.mark.parametrize("name", sorted(CLASS_COUNTS))
def test_known_values_of_fixed_sets(name: str) -> None:
    X, labels = DATASETS[name].load(0, 0)
    assert np.bincount(labels).tolist() == CLASS_COUNTS[name]
    assert X[0, : len(FIRST_ROWS[name])].tolist() == FIRST_ROWS[name]


def test_class_names() -> None:
    assert DATASETS["iris"].classes == ("setosa", "versicolor", "virginica")
    assert DATASETS["breast_cancer"].classes == ("malignant", "benign")
    assert DATASETS["digits"].classes == tuple("0123456789")
    assert DATASETS["xor"].classes == DATASETS["moons"].classes == ("class 0", "class 1")


def test_every_loss_target_kind_is_known() -> None:
    assert {loss.targets for loss in LOSSES.values()} <= set(TARGETS)


# --- shapes, dtypes, determinism ------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes(name: str) -> None:
    data = load_dataset(name, outputs=classes(name))
    assert data.name == name and data.classes == DATASETS[name].classes and data.outputs == classes(name)
    for part in PARTS:
        X, Y, labels = (getattr(data, f"{kind}_{part}") for kind in ("X", "Y", "labels"))
        assert X.dtype == Y.dtype == np.float64 and labels.dtype == np.int64
        assert X.shape == (len(labels), DATASETS[name].features) and Y.shape == (len(labels), classes(name))
        assert np.all(np.isfinite(X))
    assert data.mean.shape == data.scale.shape == (DATASETS[name].features,)


@pytest.mark.parametrize("name", NAMES)
def test_arrays_are_read_only(name: str) -> None:
    data = load_dataset(name, outputs=classes(name))
    with pytest.raises(ValueError, match="read-only"):
        data.X_train[0, 0] = 1.0


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes(name: str) -> None:
    first, second = (load_dataset(name, outputs=classes(name), seed=7) for _ in range(2))
    for key in ARRAYS:
        a, b = getattr(first, key), getattr(second, key)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), key


@pytest.mark.parametrize("name", SPLIT_NAMES)
def test_another_seed_another_split(name: str) -> None:
    first, second = (load_dataset(name, outputs=classes(name), seed=seed) for seed in (0, 1))
    assert first.X_train.shape == second.X_train.shape
    assert not np.array_equal(first.X_train, second.X_train)
    assert not np.array_equal(first.labels_test, second.labels_test)


# --- the split ------------------------------------------------------------------------------


@pytest.mark.parametrize("split", [(0.6, 0.2, 0.2), (0.5, 0.25, 0.25), (0.8, 0.1, 0.1)])
@pytest.mark.parametrize("name", SPLIT_NAMES)
def test_split_sizes_follow_the_fractions(name: str, split: tuple[float, float, float]) -> None:
    data = load_dataset(name, outputs=classes(name), split=split)
    sizes = [len(getattr(data, f"labels_{part}")) for part in PARTS]
    rows = KNOWN[name][0]
    assert sum(sizes) == rows
    for size, fraction in zip(sizes, split):
        assert abs(size - fraction * rows) <= 1


@pytest.mark.parametrize("name", SPLIT_NAMES)
def test_split_is_a_stratified_partition_of_the_rows(name: str) -> None:
    data = load_dataset(name, outputs=classes(name), seed=5)
    X, labels = DATASETS[name].load(5, DATASETS[name].default_size or 0)
    # The parts, standardization undone, hold exactly the source's rows: none lost, none twice.
    assert np.array_equal(sorted_rows(raw_rows(data)), sorted_rows(X))
    counts = np.bincount(labels)
    for part, fraction in zip(PARTS, (0.6, 0.2, 0.2)):
        in_part = np.bincount(getattr(data, f"labels_{part}"), minlength=len(counts))
        assert np.all(np.abs(in_part - fraction * counts) <= 1), (part, in_part, counts)


def test_size_sets_the_rows_of_generated_sets() -> None:
    data = load_dataset("spirals", outputs=1, size=50, split=(0.5, 0.3, 0.2))
    assert [len(data.labels_train), len(data.labels_val), len(data.labels_test)] == [25, 15, 10]
    assert np.bincount(np.concatenate([data.labels_train, data.labels_val, data.labels_test])).tolist() == [25, 25]


def test_xor_is_the_truth_table_in_every_part() -> None:
    data = load_dataset("xor", outputs=1, seed=3)
    for part in PARTS:
        assert getattr(data, f"X_{part}").tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
        assert getattr(data, f"Y_{part}").tolist() == [[0], [1], [1], [0]]
        assert getattr(data, f"labels_{part}").tolist() == [0, 1, 1, 0]
    assert data.mean.tolist() == [0, 0] and data.scale.tolist() == [1, 1]


def test_spirals_can_be_told_apart() -> None:
    # A modest noise: the nearest training point almost always has the right class.
    data = load_dataset("spirals", outputs=1, seed=0)
    distances = ((data.X_val[:, None, :] - data.X_train[None, :, :]) ** 2).sum(axis=2)
    assert np.mean(data.labels_train[distances.argmin(axis=1)] == data.labels_val) >= 0.97


# --- standardization ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPLIT_NAMES)
def test_standardized_with_the_training_part(name: str) -> None:
    data = load_dataset(name, outputs=classes(name))
    if DATASETS[name].shared_scale:
        # One mean and one deviation for all features: the whole training block is standardized.
        assert abs(data.X_train.mean()) < 1e-12 and abs(data.X_train.std() - 1) < 1e-12
        assert np.all(data.mean == data.mean[0]) and np.all(data.scale == data.scale[0])
    else:
        varying = data.X_train.std(axis=0) > 0
        assert np.allclose(data.X_train.mean(axis=0), 0, rtol=0, atol=1e-12)
        assert np.allclose(data.X_train.std(axis=0)[varying], 1, rtol=0, atol=1e-12)
        assert np.all(data.scale[~varying] == 1)
    # The other parts use the training statistics, not their own.
    assert not np.allclose(data.X_val.mean(axis=0), 0, rtol=0, atol=1e-6)
    raw_train = data.X_train * data.scale + data.mean
    assert np.allclose((raw_train - data.mean) / data.scale, data.X_train, rtol=0, atol=1e-12)


def test_digits_share_one_scale() -> None:
    data = load_dataset("digits", outputs=10)
    raw = data.X_train * data.scale + data.mean
    # Pixels are 0..16 ink levels; every pixel is mapped by the same (x - mean) / scale.
    assert np.allclose(raw, np.round(raw), atol=1e-9) and raw.min() == 0 and raw.max() == 16
    assert data.scale[0] == pytest.approx(raw.std(), rel=1e-12)
    assert np.isfinite(data.X_test).all()


# --- targets --------------------------------------------------------------------------------


@pytest.mark.parametrize("targets", TARGETS)
@pytest.mark.parametrize("name", NAMES)
def test_one_hot_targets(name: str, targets: str) -> None:
    data = load_dataset(name, outputs=classes(name), targets=targets)
    assert data.targets == targets
    for part in PARTS:
        Y, labels = getattr(data, f"Y_{part}"), getattr(data, f"labels_{part}")
        assert np.array_equal(Y.argmax(axis=1), labels)
        if targets == "sign":
            assert set(np.unique(Y)) == {-1.0, 1.0} and np.all(Y.sum(axis=1) == 2 - classes(name))
        else:
            assert set(np.unique(Y)) == {0.0, 1.0} and np.all(Y.sum(axis=1) == 1)


@pytest.mark.parametrize("targets", [kind for kind in TARGETS if kind != "distribution"])
@pytest.mark.parametrize("name", [name for name in NAMES if classes(name) == 2])
def test_one_column_targets(name: str, targets: str) -> None:
    data = load_dataset(name, outputs=1, targets=targets)
    low = -1.0 if targets == "sign" else 0.0
    for part in PARTS:
        Y, labels = getattr(data, f"Y_{part}"), getattr(data, f"labels_{part}")
        assert Y.shape == (len(labels), 1)
        assert np.array_equal(Y[:, 0], np.where(labels == 1, 1.0, low))


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_wrong_outputs(name: str) -> None:
    count = classes(name)
    with pytest.raises(DataError, match=f"^data: {name} has {count} classes; the network has {count + 1} outputs; "):
        load_dataset(name, outputs=count + 1)


@pytest.mark.parametrize(
    ("name", "outputs", "targets", "message"),
    [
        ("digits", 3, "real", "data: digits has 10 classes; the network has 3 outputs; give the last layer 10 units (one-hot targets)"),
        ("iris", 1, "unit", "data: iris has 3 classes; the network has 1 output; give the last layer 3 units (one-hot targets)"),
        (
            "moons",
            3,
            "sign",
            (
                "data: moons has 2 classes; the network has 3 outputs; give the last layer 1 unit (a -1/+1 target) "
                "or 2 units (one-hot targets)"
            ),
        ),
        (
            "xor",
            1,
            "distribution",
            (
                "data: xor has 2 classes; the network has 1 output; give the last layer 2 units (one-hot targets); "
                "distribution targets need one output per class"
            ),
        ),
        ("iris", 0, "real", "data: iris has 3 classes; the network has 0 outputs; give the last layer 3 units (one-hot targets)"),
    ],
)
def test_wrong_outputs_messages(name: str, outputs: int, targets: str, message: str) -> None:
    with pytest.raises(DataError) as caught:
        load_dataset(name, outputs=outputs, targets=targets)
    assert str(caught.value) == message and caught.value.field == "data"
    assert isinstance(caught.value, ValueError)


def test_unknown_name() -> None:
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", outputs=10)
    assert str(caught.value) == "data: unknown data set 'mnist'; use xor, moons, spirals, iris, breast_cancer or digits"


def test_misspelt_name_is_suggested() -> None:
    with pytest.raises(DataError) as caught:
        load_dataset("digts", outputs=10)
    assert str(caught.value) == (
        "data: unknown data set 'digts'; did you mean 'digits'? (use xor, moons, spirals, iris, breast_cancer or digits)"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"targets": "labels"}, "targets: unknown kind of targets 'labels'; use real, unit, distribution or sign"),
        ({"targets": "sing"}, "targets: unknown kind of targets 'sing'; did you mean 'sign'? (use real, unit, distribution or sign)"),
        ({"split": (0.6, 0.2)}, "split: give three positive fractions (train, validation, test), not (0.6, 0.2)"),
        ({"split": (0.8, 0.2, 0.0)}, "split: give three positive fractions (train, validation, test), not (0.8, 0.2, 0.0)"),
        ({"split": "abc"}, "split: give three positive fractions (train, validation, test), not 'abc'"),
        ({"split": (0.6, 0.3, 0.3)}, "split: the fractions (0.6, 0.3, 0.3) add up to 1.2; they must add up to 1"),
        (
            {"split": (0.98, 0.01, 0.01), "size": 20},
            "split: the fractions (0.98, 0.01, 0.01) leave the validation part of moons (20 rows) empty",
        ),
        ({"size": 5}, "size: moons takes from 10 to 100000 rows, not 5"),
        ({"size": 10**6}, "size: moons takes from 10 to 100000 rows, not 1000000"),
        ({"size": 50.0}, "size: moons takes from 10 to 100000 rows, not 50.0"),
        ({"seed": -1}, "seed: the seed must be a whole number from 0 to 4294967295, not -1"),
        ({"seed": True}, "seed: the seed must be a whole number from 0 to 4294967295, not True"),
    ],
)
def test_bad_arguments(arguments: dict, message: str) -> None:
    with pytest.raises(DataError) as caught:
        load_dataset("moons", outputs=1, **arguments)
    assert str(caught.value) == message


def test_size_of_a_fixed_set() -> None:
    with pytest.raises(DataError) as caught:
        load_dataset("iris", outputs=3, size=100)
    assert str(caught.value) == "size: iris has fixed rows; size applies only to generated sets (moons, spirals)"


# --- accuracy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("truth", "scores", "targets", "expected"),
    [
        ([0, 1, 1, 0], [[0.2], [0.7], [0.4], [0.1]], "unit", 0.75),
        ([[0.0], [1.0], [1.0], [0.0]], [0.2, 0.7, 0.4, 0.1], "real", 0.75),
        ([0, 1, 1, 0], [[0.5], [0.51], [0.9], [0.6]], "unit", 0.75),  # 0.5 is not above 0.5
        ([[-1.0], [1.0], [1.0]], [[-0.3], [0.2], [-0.1]], "sign", 2 / 3),
        ([0, 1, 1], [[-0.3], [0.2], [0.0]], "sign", 2 / 3),  # 0/1 labels with -1/+1 scores
        ([2, 0, 1], [[0.1, 0.2, 0.7], [0.3, 0.6, 0.1], [0.0, 0.9, 0.1]], "distribution", 2 / 3),
        ([[0, 0, 1], [1, 0, 0]], [[0.1, 0.2, 0.7], [0.3, 0.6, 0.1]], "distribution", 0.5),
        ([[-1, 1], [1, -1]], [[-0.5, 0.5], [0.3, -0.2]], "sign", 1.0),
        ([1, 0], [[0.2, 0.1], [0.9, 0.1]], "real", 0.5),
    ],
)
def test_accuracy(truth: list, scores: list, targets: str, expected: float) -> None:
    assert accuracy(np.array(truth), np.array(scores), targets) == pytest.approx(expected, abs=1e-15)


def test_accuracy_of_loaded_targets() -> None:
    data = load_dataset("iris", outputs=3, targets="sign")
    assert accuracy(data.Y_test, data.Y_test, "sign") == 1.0
    assert accuracy(data.labels_test, -data.Y_test, "sign") == 0.0


@pytest.mark.parametrize(
    ("truth", "scores", "targets", "message"),
    [
        ([0, 1], [[0.1], [0.2], [0.3]], "unit", "accuracy: scores of shape (3, 1) do not match truth of shape (2,)"),
        ([], [], "unit", "accuracy: scores of shape (0, 1) do not match truth of shape (0,)"),
        ([[0, 1], [1, 0]], [0.1, 0.2], "unit", "accuracy: one score per row but 2 target columns"),
        ([[0, 1], [1, 0]], [[0.1, 0.2, 0.3]] * 2, "real", "accuracy: 3 scores per row but 2 target columns"),
        ([0, 1], [0.1, 0.2], "labels", "targets: unknown kind of targets 'labels'"),
    ],
)
def test_accuracy_errors(truth: list, scores: list, targets: str, message: str) -> None:
    with pytest.raises(DataError) as caught:
        accuracy(np.array(truth), np.array(scores), targets)
    assert str(caught.value).startswith(message)


# --- what importing loads -------------------------------------------------------------------


def test_importing_datasets_does_not_load_scikit_learn() -> None:
    code = (
        "import sys, json\n"
        "import chainrule.datasets as d\n"
        "before = 'sklearn' in sys.modules\n"
        "d.load_dataset('spirals', outputs=1)\n"
        "generated = 'sklearn' in sys.modules\n"
        "d.load_dataset('iris', outputs=3)\n"
        "print(json.dumps([before, generated, 'sklearn' in sys.modules]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    # The last value shows the probe sees scikit-learn once a loader needs it.
    assert json.loads(result.stdout) == [False, False, True]
