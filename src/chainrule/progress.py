"""A progress bar for training on stderr: one line redrawn in a terminal, one line per epoch otherwise."""

from __future__ import annotations

import sys
from typing import TextIO

from .train import Epoch

WIDTH = 24


class Progress:
    """``step`` and ``epoch`` are the callbacks ``train.fit`` takes.

    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress(2, stream=out)
    >>> p.epoch(Epoch(1, 0.5, 0.75, 0.6, 0.5, 0.01, {"layer 1": 1.0}, 10, 0.1))
    >>> out.getvalue()
    'epoch 1/2  loss 0.5000  acc 75.00%  val loss 0.6000  val acc 50.00%\\n'
    """

    def __init__(self, epochs: int, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.epochs = epochs
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.enabled and self.stream.isatty()
        self.loss = float("nan")

    def step(self, epoch: int, step: int, steps: int, loss: float) -> None:
        self.loss = loss if step == 1 else 0.9 * self.loss + 0.1 * loss
        if self.live and (step == steps or step % max(1, steps // 50) == 0):
            filled = int(WIDTH * step / steps)
            bar = "#" * filled + "-" * (WIDTH - filled)
            self.stream.write(f"\r\033[Kepoch {epoch}/{self.epochs} [{bar}] loss {self.loss:.4f}")
            self.stream.flush()

    def epoch(self, e: Epoch) -> None:
        if not self.enabled:
            return
        acc = "" if e.train_accuracy is None else f"  acc {e.train_accuracy:.2%}"
        val = "" if e.val_accuracy is None else f"  val acc {e.val_accuracy:.2%}"
        line = f"epoch {e.epoch}/{self.epochs}  loss {e.train_loss:.4f}{acc}  val loss {e.val_loss:.4f}{val}"
        self.stream.write(("\r\033[K" if self.live else "") + line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()
