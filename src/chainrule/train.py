"""Training loops over real data with the compiled gradients: history, metrics, clean stops.

(The loop itself lands with issue 4; the records below are the contract the report reads.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Epoch:
    """What one epoch measured. Accuracies are ``None`` for regression."""

    epoch: int  # from 1
    train_loss: float  # mean loss over the training set, with the parameters at the end of the epoch
    train_accuracy: float | None
    val_loss: float
    val_accuracy: float | None
    learning_rate: float  # the rate used during this epoch (after the schedule)
    #: Per layer ("layer 1", "layer 2", ...): the mean over the epoch's steps of the L2 norm
    #: of that layer's whole gradient (W, b and any learned activation parameter together).
    gradient_norms: Mapping[str, float]
    steps: int  # optimizer steps taken so far, over all epochs
    seconds: float  # wall time of this epoch


@dataclass(frozen=True)
class Settings:
    """How a run was set up: from the command line, else the spec's [training] table, else defaults."""

    data: str
    optimizer: str
    learning_rate: float
    epochs: int
    batch_size: int | None  # None: full batch
    seed: int
    init: str  # an init scheme name: "glorot_uniform", "he_normal", ...
    schedule: str  # "constant", "step" or "cosine"
    #: Hyperparameters of the optimizer and the schedule as given or defaulted (β₁, step size ...).
    hyperparameters: Mapping[str, float] = field(default_factory=dict)
    clip_value: float | None = None
    clip_norm: float | None = None


@dataclass(frozen=True)
class TrainingResult:
    """A finished (or stopped) run: the history, the final metrics and why it stopped."""

    title: str
    settings: Settings
    history: tuple[Epoch, ...]
    test_loss: float | None  # None when training stopped on a NaN before any epoch ended
    test_accuracy: float | None
    #: None when every epoch ran; otherwise one sentence: "interrupted (Ctrl-C) in epoch 3",
    #: or the NaN/inf message naming epoch, step, layer and the likely cause.
    stopped: str | None
    parameters: Mapping[str, np.ndarray]
    #: Sizes of the data set's parts and its classes, for the report.
    train_size: int = 0
    val_size: int = 0
    test_size: int = 0
    classes: tuple[str, ...] = ()
