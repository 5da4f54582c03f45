"""Antialiased shapes. ImageDraw draws hard, jagged edges, so shapes are painted
at a multiple of their size and shrunk, which averages the edges smooth."""

from __future__ import annotations

import functools
from typing import Callable

from PIL import Image, ImageDraw

Painter = Callable[[ImageDraw.ImageDraw, int], None]  # gets the draw and the scale to multiply coordinates by


def smooth_layer(size: tuple[int, int], mode: str, paint: Painter, scale: int = 4) -> Image.Image:
    """A transparent (zero) layer of `size` with what `paint` drew, edges smoothed."""
    width, height = size
    large = Image.new(mode, (width * scale, height * scale), 0)
    paint(ImageDraw.Draw(large), scale)
    return large.reduce(scale)


def scaled(box: tuple[float, ...], scale: int) -> list[float]:
    return [coordinate * scale for coordinate in box]


@functools.lru_cache(maxsize=8)
def circle_mask(side: int) -> Image.Image:
    """An "L" mask of a disc filling a `side` px square."""
    def paint(draw: ImageDraw.ImageDraw, scale: int) -> None:
        draw.ellipse(scaled((0, 0, side, side), scale), fill=255)

    return smooth_layer((side, side), "L", paint)
