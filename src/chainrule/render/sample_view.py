"""The worked example's images, when its x is an image from the data set (a digit): pixels as shades.

The documents draw each pixel as a square (SVG in HTML, the picture environment in LaTeX)
or a block character (Markdown), darker for more ink, scaled from the image's own lightest
to darkest pixel.

>>> from chainrule.numeric import Sample
>>> img = images(Sample("digits", "Digits", (1,), ("2",), (((0.0, 16.0), (8.0, 4.0)),)))[0]
>>> [(p.row, p.column, p.gray, p.block) for p in img.pixels]
[(0, 0, 1.0, ' '), (0, 1, 0.0, '█'), (1, 0, 0.5, '▒'), (1, 1, 0.75, '░')]
>>> img.caption
'training example 1 of digits, a 2'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..numeric import Sample

#: From no ink to full ink, for Markdown's text picture.
BLOCKS = " ░▒▓█"


@dataclass(frozen=True)
class Pixel:
    row: int
    column: int
    #: Gray level from 0 (black, full ink) to 1 (white, the paper), as LaTeX's gray model has it.
    gray: float
    #: The block character of about this much ink.
    block: str

    @property
    def rgb(self) -> str:
        """The gray as an SVG colour, #rrggbb."""
        level = round(255 * self.gray)
        return f"#{level:02x}{level:02x}{level:02x}"


@dataclass(frozen=True)
class Image:
    height: int
    width: int
    pixels: tuple[Pixel, ...]
    caption: str

    @property
    def text_rows(self) -> tuple[str, ...]:
        """Markdown's picture: a line per row, two block characters per pixel (so it comes out square)."""
        rows = [[" "] * self.width for _ in range(self.height)]
        for p in self.pixels:
            rows[p.row][p.column] = p.block * 2
        return tuple("".join(r).rstrip() or "" for r in rows)


def images(sample: Sample | None) -> tuple[Image, ...]:
    """One ``Image`` per example of ``sample`` that is an image; none for other data."""
    if sample is None:
        return ()
    shown = []
    for row, label, grid in zip(sample.rows, sample.classes, sample.images):
        values = [v for line in grid for v in line]
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        pixels = []
        for i, line in enumerate(grid):
            for j, v in enumerate(line):
                ink = (v - low) / span
                block = BLOCKS[min(len(BLOCKS) - 1, int(ink * len(BLOCKS)))]
                pixels.append(Pixel(i, j, round(1.0 - ink, 4), block))
        caption = f"training example {row} of {sample.data}, a {label}"
        shown.append(Image(len(grid), len(grid[0]), tuple(pixels), caption))
    return tuple(shown)
