"""The data sets a network trains on: one table of sources, a seeded split, targets shaped for the network.

Nothing is downloaded. iris, breast_cancer and digits ship with scikit-learn; moons,
spirals and xor are generated. scikit-learn is imported inside the loaders that need it,
so importing chainrule does not pay for it.

>>> data = load_dataset("iris", outputs=3)
>>> data.classes
('setosa', 'versicolor', 'virginica')
>>> data.X_train.shape, data.Y_train.shape, len(data.labels_val), len(data.labels_test)
((90, 4), (90, 3), 30, 30)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from . import suggest

#: The kinds of targets a loss asks for (``catalog.Loss.targets``).
TARGETS = ("real", "unit", "distribution", "sign")
#: Generated sets smaller than this cannot give every part of a split a row of each class;
#: larger than this is no longer a small network's exercise, and only costs memory.
MIN_SIZE = 10
MAX_SIZE = 100_000
#: make_moons takes its seed as a NumPy legacy seed, which must fit in 32 bits.
MAX_SEED = 2**32 - 1

Loader = Callable[[int, int], tuple[np.ndarray, np.ndarray]]


class DataError(ValueError):
    """A data set cannot be loaded as asked: ``field: what is wrong; what would be right``."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class DataSource:
    """Where a data set comes from and what it holds; ``load(seed, size)`` gives its rows and labels."""

    name: str
    title: str
    task: str  # "classification"
    classes: tuple[str, ...]
    features: int
    description: str  # one line: where the rows come from
    #: (seed, size) -> (X float64 (n, features), labels int64 (n,)); fixed sets ignore both.
    load: Loader
    #: Rows a generated set has unless ``size`` is given; ``None`` for a fixed set.
    default_size: int | None = None
    #: A truth table rather than a sample (xor): every part is all of its rows, unstandardized.
    truth_table: bool = False
    #: Features on one scale (the pixels of an image): standardized by one mean and one
    #: deviation for all, not per feature. Per-pixel scaling blows up the border pixels that
    #: are ink in a handful of training images, and costs digits about a point of accuracy.
    shared_scale: bool = False
    #: For a set of images, their (height, width): a row of features is the pixels row by row.
    image: tuple[int, int] | None = None

    @property
    def generated(self) -> bool:
        return self.default_size is not None


@dataclass(frozen=True)
class Dataset:
    """A data set split for training: standardized features, targets shaped for the network.

    The arrays are read-only, so a training loop cannot change the data another run reads.
    """

    name: str
    classes: tuple[str, ...]
    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    labels_train: np.ndarray
    labels_val: np.ndarray
    labels_test: np.ndarray
    #: Features were mapped to (x - mean) / scale, with the training part's statistics only,
    #: so nothing about the validation and test rows leaks into training.
    mean: np.ndarray
    scale: np.ndarray
    targets: str = "real"

    @property
    def features(self) -> int:
        return self.X_train.shape[1]

    @property
    def outputs(self) -> int:
        return self.Y_train.shape[1]


def load_dataset(
    name: str,
    *,
    outputs: int,
    targets: str = "real",
    seed: int = 0,
    split: Sequence[float] = (0.6, 0.2, 0.2),
    size: int | None = None,
) -> Dataset:
    """Load a data set, split it train/validation/test by ``split``, and shape targets for ``outputs`` units.

    One output on two classes gives a column of 0/1 (−1/+1 for ``targets="sign"``); one
    output per class gives one-hot rows (+1 for the class, −1 elsewhere for "sign"). The
    same arguments give the same arrays, byte for byte.

    >>> data = load_dataset("moons", outputs=1, targets="sign", seed=3, size=100)
    >>> data.Y_train.shape, data.Y_train[:4, 0].tolist(), data.labels_train[:4].tolist()
    ((60, 1), [-1.0, 1.0, 1.0, -1.0], [0, 1, 1, 0])

    >>> load_dataset("digits", outputs=3)
    Traceback (most recent call last):
    ...
    chainrule.datasets.DataError: data: digits has 10 classes; the network has 3 outputs; give the last layer 10 units (one-hot targets)
    """
    source = DATASETS.get(name) if isinstance(name, str) else None
    if source is None:
        raise DataError("data", suggest.unknown("data set", str(name), DATASETS))
    _check_targets(targets)
    _check_outputs(source, outputs, targets)
    _check_seed(seed)
    fractions = _check_split(split)
    rows = _check_size(source, size)

    X, labels = source.load(seed, rows)
    if source.truth_table:
        # XOR is a truth table, not a sample of one: the task is to fit all four rows, and
        # whichever row were held out, the simplest function fitting the other three gets
        # it wrong. So every part is the four rows, and inputs stay 0/1 as the table has them.
        parts = (np.arange(len(labels)),) * 3
        mean, scale = np.zeros(source.features), np.ones(source.features)
    else:
        # The split's own stream, so the split does not shift when a generator draws more numbers.
        parts = _split(name, labels, fractions, np.random.default_rng((seed, 1)))
        train = X[parts[0]]
        mean = train.mean(axis=0)
        std = train.std(axis=0)
        if source.shared_scale:
            mean, std = np.full(source.features, train.mean()), np.full(source.features, train.std())
        # A feature constant in the training part (digits' blank corner pixels) carries no
        # information to scale; dividing by 0 would only make NaNs.
        scale = np.where(std > 0, std, 1.0)

    arrays = {}
    for part, index in zip(("train", "val", "test"), parts):
        arrays[f"X_{part}"] = (X[index] - mean) / scale
        arrays[f"Y_{part}"] = _targets(labels[index], len(source.classes), outputs, targets)
        arrays[f"labels_{part}"] = labels[index]
    arrays["mean"], arrays["scale"] = mean, scale
    for key, value in arrays.items():
        value = np.ascontiguousarray(value)
        value.flags.writeable = False
        arrays[key] = value
    return Dataset(name=name, classes=source.classes, targets=targets, **arrays)


def accuracy(truth: np.ndarray, scores: np.ndarray, targets: str = "real") -> float:
    """The fraction of rows whose predicted class is the true one.

    ``truth`` is class labels or the target rows ``Y``. With one output the prediction is
    class 1 where the score is above 0.5 (above 0 for ``targets="sign"``), and a one-column
    ``truth`` is read the same way, so 0/1 labels and −1/+1 targets both work; with more
    outputs the prediction is the highest score.

    >>> accuracy(np.array([0, 1, 1, 0]), np.array([[0.2], [0.7], [0.4], [0.1]]), "unit")
    0.75
    >>> accuracy(np.array([[-1.0], [1.0]]), np.array([[-0.3], [0.2]]), "sign")
    1.0
    >>> accuracy(np.array([2, 0]), np.array([[0.1, 0.2, 0.7], [0.3, 0.6, 0.1]]))
    0.5
    """
    _check_targets(targets)
    truth, scores = np.asarray(truth), np.asarray(scores)
    if scores.ndim == 1:
        scores = scores[:, None]
    if scores.ndim != 2 or len(scores) == 0 or len(truth) != len(scores) or truth.ndim not in (1, 2):
        raise DataError(
            "accuracy",
            f"scores of shape {scores.shape} do not match truth of shape {truth.shape}; give one row of scores per row",
        )
    if scores.shape[1] == 1:
        threshold = 0.0 if targets == "sign" else 0.5
        if truth.ndim == 2 and truth.shape[1] != 1:
            raise DataError("accuracy", f"one score per row but {truth.shape[1]} target columns")
        return float(np.mean((truth.reshape(-1) > threshold) == (scores[:, 0] > threshold)))
    if truth.ndim == 2:
        if truth.shape[1] != scores.shape[1]:
            raise DataError("accuracy", f"{scores.shape[1]} scores per row but {truth.shape[1]} target columns")
        truth = np.argmax(truth, axis=1)
    return float(np.mean(truth == np.argmax(scores, axis=1)))


# --- checks ---------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_targets(targets: str) -> None:
    if not isinstance(targets, str) or targets not in TARGETS:
        raise DataError("targets", suggest.unknown("kind of targets", str(targets), TARGETS))


def _check_outputs(source: DataSource, outputs: int, targets: str) -> None:
    classes = len(source.classes)
    one_column = outputs == 1 and classes == 2 and targets != "distribution"
    if _is_int(outputs) and (outputs == classes or one_column):
        return
    column = "a -1/+1 target" if targets == "sign" else "a 0/1 target"
    if classes == 2 and targets != "distribution":
        fix = f"give the last layer 1 unit ({column}) or 2 units (one-hot targets)"
    else:
        fix = f"give the last layer {classes} units (one-hot targets)"
    if outputs == 1 and classes == 2:
        # A distribution over two classes needs both probabilities: a single softmax unit is always 1.
        fix += "; distribution targets need one output per class"
    units = f"{outputs} output" + ("" if outputs == 1 else "s")
    raise DataError("data", f"{source.name} has {classes} classes; the network has {units}; {fix}")


def _check_seed(seed: int) -> None:
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise DataError("seed", f"the seed must be a whole number from 0 to {MAX_SEED}, not {seed!r}")


def _check_split(split: Sequence[float]) -> tuple[float, float, float]:
    try:
        fractions = tuple(float(f) for f in split)
    except (TypeError, ValueError):
        fractions = ()
    if len(fractions) != 3 or not all(math.isfinite(f) and f > 0 for f in fractions):
        raise DataError("split", f"give three positive fractions (train, validation, test), not {split!r}")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
        raise DataError("split", f"the fractions {split!r} add up to {sum(fractions):g}; they must add up to 1")
    return fractions


def _check_size(source: DataSource, size: int | None) -> int:
    if source.default_size is None:
        if size is not None:
            generated = ", ".join(name for name, entry in DATASETS.items() if entry.generated)
            raise DataError("size", f"{source.name} has fixed rows; size applies only to generated sets ({generated})")
        return 0
    if size is None:
        return source.default_size
    if not _is_int(size) or not MIN_SIZE <= size <= MAX_SIZE:
        raise DataError("size", f"{source.name} takes from {MIN_SIZE} to {MAX_SIZE} rows, not {size!r}")
    return int(size)


# --- split and targets ----------------------------------------------------------------------


def _split(
    name: str, labels: np.ndarray, fractions: tuple[float, float, float], rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """Row indices of the train, validation and test parts, each class spread over them by ``fractions``."""
    n = len(labels)
    order = rng.permutation(n)
    # Each row's place within its class (0 to 1, in shuffled order); sorting by it interleaves
    # the classes in proportion, so cutting the sequence cuts every class at the same fractions.
    place = np.empty(n)
    for label in np.unique(labels):
        members = order[labels[order] == label]
        place[members] = (np.arange(len(members)) + 0.5) / len(members)
    interleaved = order[np.argsort(place[order], kind="stable")]
    n_train = round(n * fractions[0])
    n_val = round(n * fractions[1])
    sizes = {"training": n_train, "validation": n_val, "test": n - n_train - n_val}
    for part, count in sizes.items():
        if count < 1:
            raise DataError("split", f"the fractions {fractions} leave the {part} part of {name} ({n} rows) empty")
    parts = np.split(interleaved, [n_train, n_train + n_val])
    # Interleaving leaves the classes in a regular pattern; shuffle so batches taken in order are random.
    return tuple(rng.permutation(part) for part in parts)


def _targets(labels: np.ndarray, classes: int, outputs: int, targets: str) -> np.ndarray:
    low = -1.0 if targets == "sign" else 0.0
    if outputs == 1:
        return np.where(labels == 1, 1.0, low)[:, None]
    return np.where(labels[:, None] == np.arange(classes), 1.0, low)


# --- loaders --------------------------------------------------------------------------------


def _xor(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return X, np.array([0, 1, 1, 0], dtype=np.int64)


def _moons(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    X, labels = make_moons(n_samples=size, noise=0.2, random_state=seed)
    return X.astype(np.float64), labels.astype(np.int64)


def _spirals(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(size, dtype=np.int64) % 2
    t = rng.uniform(0.0, 1.0, size)
    # One turn per arm, the second arm the first turned by π: the arms stay 0.4 apart, noise
    # of 0.05 blurs them without making them cross, and 16 tanh or relu units separate them.
    radius = 0.2 + 0.8 * t
    angle = 2.0 * np.pi * t + np.pi * labels
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    return X + rng.normal(0.0, 0.05, X.shape), labels


def _sklearn(loader: str) -> Loader:
    def load(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader)()
        return bunch.data.astype(np.float64), bunch.target.astype(np.int64)

    return load


_TWO = ("class 0", "class 1")

DATASETS: dict[str, DataSource] = {
    entry.name: entry
    for entry in (
        DataSource(
            name="xor",
            title="XOR",
            task="classification",
            classes=_TWO,
            features=2,
            description="the XOR truth table: (0,0)->0, (0,1)->1, (1,0)->1, (1,1)->0; no split, no standardization",
            load=_xor,
            truth_table=True,
        ),
        DataSource(
            name="moons",
            title="two moons",
            task="classification",
            classes=_TWO,
            features=2,
            description="two interleaving half circles, scikit-learn's make_moons with noise 0.2, drawn from the seed",
            load=_moons,
            default_size=400,
        ),
        DataSource(
            name="spirals",
            title="two spirals",
            task="classification",
            classes=_TWO,
            features=2,
            description="two interleaved spiral arms of one turn each with noise 0.05, drawn with NumPy from the seed",
            load=_spirals,
            default_size=400,
        ),
        DataSource(
            name="iris",
            title="iris flowers",
            task="classification",
            classes=("setosa", "versicolor", "virginica"),
            features=4,
            description="Fisher's iris (UCI ML): 150 flowers, 4 measurements in cm, shipped with scikit-learn",
            load=_sklearn("load_iris"),
        ),
        DataSource(
            name="breast_cancer",
            title="breast cancer",
            task="classification",
            classes=("malignant", "benign"),
            features=30,
            description="Wisconsin diagnostic breast cancer (UCI ML): 569 tumours, 30 cell-nucleus features, "
            "shipped with scikit-learn",
            load=_sklearn("load_breast_cancer"),
        ),
        DataSource(
            name="digits",
            title="hand-written digits",
            task="classification",
            classes=tuple(str(digit) for digit in range(10)),
            features=64,
            description="UCI ML hand-written digits: 1797 images of 8x8 pixels valued 0-16, shipped with scikit-learn",
            load=_sklearn("load_digits"),
            shared_scale=True,
            image=(8, 8),
        ),
    )
}
