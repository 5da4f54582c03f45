"""Decode image bytes that came from outside (uploads, WeChat) without letting a
bad file cost unbounded memory or time."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps


class BadImage(ValueError):
    """The bytes are not an acceptable image; the message says why."""


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_side: int
    max_pixels: int
    min_side: int = 1
    formats: tuple[str, ...] = ("JPEG", "PNG")


def decode_image(data: bytes, limits: ImageLimits, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """The fully decoded image. `draft_size` lets a JPEG decode at a reduced
    scale still covering that size, much faster for pictures far bigger than
    where they are drawn."""
    if len(data) > limits.max_bytes:
        raise BadImage(f"{len(data):,} bytes is more than the {limits.max_bytes:,} allowed")
    try:
        image = Image.open(io.BytesIO(data), formats=limits.formats)
    except Image.DecompressionBombError:
        raise BadImage("its dimensions are absurdly large") from None
    except (OSError, SyntaxError, ValueError):
        raise BadImage(f"it is not a readable {' or '.join(limits.formats)} file") from None
    # Checked on the header alone, before any pixel is decoded: this is what
    # stops a small file that inflates into gigabytes.
    width, height = image.size
    sides_ok = limits.min_side <= min(width, height) and max(width, height) <= limits.max_side
    if not sides_ok or width * height > limits.max_pixels:
        raise BadImage(
            f"{width}x{height} is outside the allowed dimensions "
            f"({limits.min_side}-{limits.max_side} px a side, at most {limits.max_pixels:,} pixels)"
        )
    if draft_size is not None:
        image.draft("RGB", draft_size)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise BadImage("it is corrupt or truncated") from None
    ImageOps.exif_transpose(image, in_place=True)  # phone photos are often stored sideways
    return image


def flatten(image: Image.Image, underlay: Image.Image | tuple[int, int, int]) -> Image.Image:
    """An RGB image: `image` laid over `underlay` (an image of the same size or a
    colour) where it is transparent, since JPEG has no transparency."""
    if not image.has_transparency_data:
        return image.convert("RGB")
    if isinstance(underlay, tuple):
        underlay = Image.new("RGB", image.size, underlay)
    flat = underlay.convert("RGB")  # a copy even when already RGB, so the underlay stays untouched
    with_alpha = image.convert("RGBA")
    flat.paste(with_alpha, mask=with_alpha)
    return flat
