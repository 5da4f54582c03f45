"""The promoter's round avatar: their picture, or the first character of their
nickname on a coloured disc when there is no usable picture."""

from __future__ import annotations

import zlib

from PIL import Image, ImageDraw, ImageOps

from posters.fonts import load_font
from posters.images import BadImage, ImageLimits, decode_image, flatten
from posters.shapes import circle_mask
from posters.text import drawable_text

# Common picture formats only: some others Pillow reads (EPS) run external programs.
AVATAR_LIMITS = ImageLimits(
    max_bytes=4 * 1024 * 1024,
    max_side=4096,
    max_pixels=16_000_000,
    formats=("JPEG", "PNG", "GIF", "WEBP", "BMP"),
)
INITIAL_COLOURS = ((239, 108, 0), (0, 137, 123), (57, 73, 171), (216, 27, 96), (94, 53, 177), (3, 155, 229))
INITIAL_INK = (255, 255, 255)
INITIAL_SCALE = 0.5  # the character's font size, relative to the disc


def round_avatar(picture: bytes | None, nickname: str, side: int, font_path: str) -> Image.Image:
    """An RGBA image `side` px square, transparent outside the circle."""
    avatar = _picture(picture, side)
    if avatar is None:
        avatar = _initial(nickname, side, font_path)
    avatar.putalpha(circle_mask(side))
    return avatar


def _picture(data: bytes | None, side: int) -> Image.Image | None:
    if data is None:
        return None
    try:
        image = decode_image(data, AVATAR_LIMITS, draft_size=(side, side))
    except BadImage:
        return None  # a broken avatar must not cost the promoter their poster
    # Bilinear: a few times faster than Lanczos, and no visible difference when
    # shrinking by the small factors left after JPEG draft decoding.
    return ImageOps.fit(flatten(image, (255, 255, 255)), (side, side), Image.Resampling.BILINEAR)


def _initial(nickname: str, side: int, font_path: str) -> Image.Image:
    # crc32, not hash(): the colour must be the same in every worker process.
    colour = INITIAL_COLOURS[zlib.crc32(nickname.encode()) % len(INITIAL_COLOURS)]
    disc = Image.new("RGB", (side, side), colour)
    font = load_font(font_path, round(side * INITIAL_SCALE))
    initial = drawable_text(font, nickname)[:1].upper()
    ImageDraw.Draw(disc).text((side / 2, side / 2), initial, font=font, fill=INITIAL_INK, anchor="mm")
    return disc
