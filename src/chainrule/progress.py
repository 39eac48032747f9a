"""Training progress on stderr: a line redrawn in a terminal, and a line for some epochs.

A long run does not print a line per epoch: at most ``LINES`` epochs evenly spaced, and the
last one, get a line of their own (in a terminal the redrawn line shows every epoch).
Losses keep four significant digits, so 2.312e-05 is not "0.0000".
"""

from __future__ import annotations

import math
import sys
from typing import TextIO

from .train import Epoch

WIDTH = 24
#: The most epochs a run prints a line for, besides its last one.
LINES = 20


def shown(epoch: int, epochs: int) -> bool:
    """Whether ``epoch`` (from 1) of ``epochs`` gets a line: the first, every ``epochs / LINES``-th and the last.

    >>> [e for e in range(1, 2001) if shown(e, 2000)][:4], sum(shown(e, 2000) for e in range(1, 2001))
    ([1, 100, 200, 300], 21)
    >>> [e for e in range(1, 6) if shown(e, 5)]
    [1, 2, 3, 4, 5]
    """
    every = math.ceil(epochs / LINES)
    return epoch == 1 or epoch % every == 0 or epoch == epochs


def loss_text(value: float) -> str:
    """A loss with four significant digits.

    >>> loss_text(2.3121e-05), loss_text(0.5), loss_text(0.123456), loss_text(float("nan"))
    ('2.312e-05', '0.5', '0.1235', 'nan')
    """
    return f"{value:.4g}"


class Progress:
    """``step`` and ``epoch`` are the callbacks ``train.fit`` takes.

    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress(2, stream=out)
    >>> p.epoch(Epoch(1, 0.5, 0.75, 2.3121e-05, 0.5, 0.01, {"layer 1": 1.0}, 10, 0.1))
    >>> out.getvalue()
    'epoch 1/2  loss 0.5  acc 75.00%  val loss 2.312e-05  val acc 50.00%\\n'
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
            self.stream.write(f"\r\033[Kepoch {epoch}/{self.epochs} [{bar}] loss {loss_text(self.loss)}")
            self.stream.flush()

    def epoch(self, e: Epoch) -> None:
        if not self.enabled or not (self.live or shown(e.epoch, self.epochs)):
            return
        acc = "" if e.train_accuracy is None else f"  acc {e.train_accuracy:.2%}"
        val = "" if e.val_accuracy is None else f"  val acc {e.val_accuracy:.2%}"
        line = f"epoch {e.epoch}/{self.epochs}  loss {loss_text(e.train_loss)}{acc}  val loss {loss_text(e.val_loss)}{val}"
        # In a terminal an epoch without a line of its own stays on the redrawn line until the next.
        end = "\n" if shown(e.epoch, self.epochs) else ""
        self.stream.write(("\r\033[K" if self.live else "") + line + end)
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()
