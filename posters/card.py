"""The picture of the mini-program card the official account sends in chat: the classic poster design's
background, cut to the card's shape, so that the card looks like the posters promoters share."""

from __future__ import annotations

import functools

from PIL import Image, ImageOps

from distribution.poster_settings import Design
from posters.backgrounds import background
from posters.jpeg import encode_jpeg
from posters.templates import BUILTIN_TEMPLATES

CARD_SIZE = (520, 416)  # what WeChat suggests for a mini-program card's picture


@functools.cache
def card_picture() -> bytes:
    """The card's JPEG; drawn once per process."""
    drawn = background(BUILTIN_TEMPLATES[Design.CLASSIC])
    return encode_jpeg(ImageOps.fit(drawn, CARD_SIZE, Image.Resampling.LANCZOS, centering=(0.5, 0.0)))
