"""What is behind everything on a poster: the merchant's uploaded picture, or a
gradient with soft shapes drawn from the template's palette."""

from __future__ import annotations

import dataclasses
import io

from PIL import Image, ImageDraw, ImageOps

from posters.images import BadImage, ImageLimits, decode_image, flatten
from posters.shapes import scaled, smooth_layer
from posters.templates import PosterTemplate

MAX_BACKGROUND_BYTES = 5 * 1024 * 1024
BACKGROUND_LIMITS = ImageLimits(max_bytes=MAX_BACKGROUND_BYTES, max_side=8000, max_pixels=40_000_000, min_side=200)
# Light on any palette: (centre x, centre y, radius) as fractions of the width,
# outline width in px (0: filled), opacity.
DECORATION = (
    (0.92, 0.10, 0.36, 0, 34),
    (0.02, 0.62, 0.24, 0, 22),
    (0.86, 1.20, 0.16, 7, 46),
    (0.15, 0.30, 0.05, 0, 40),
    (0.50, 1.95, 0.70, 0, 26),
)


class BadBackground(BadImage):
    """An uploaded background is refused; the message says why."""


def validate_background(data: bytes, max_bytes: int = MAX_BACKGROUND_BYTES) -> bytes:
    """`data` itself, once known to be a sound JPEG or PNG of sane size."""
    _decode(data, dataclasses.replace(BACKGROUND_LIMITS, max_bytes=max_bytes))
    return data


def background(template: PosterTemplate) -> Image.Image:
    """An RGB image of the template's size."""
    drawn = _drawn(template)
    if template.background is None:
        return drawn
    # Square, so that it still covers the canvas once an EXIF rotation is applied.
    longest = max(template.size)
    picture = _decode(template.background, BACKGROUND_LIMITS, draft_size=(longest, longest))
    covering = ImageOps.fit(picture, template.size, Image.Resampling.LANCZOS)
    return flatten(covering, drawn)


def _decode(data: bytes, limits: ImageLimits, draft_size: tuple[int, int] | None = None) -> Image.Image:
    try:
        return decode_image(data, limits, draft_size)
    except BadImage as problem:
        raise BadBackground(f"background image refused: {problem}") from None


def _drawn(template: PosterTemplate) -> Image.Image:
    palette = template.palette
    top = Image.new("RGB", template.size, palette.gradient_top)
    bottom = Image.new("RGB", template.size, palette.gradient_bottom)
    downwards = Image.linear_gradient("L").resize(template.size, Image.Resampling.BICUBIC)
    gradient = Image.composite(bottom, top, downwards).convert("RGBA")
    width = template.size[0]

    def paint(draw: ImageDraw.ImageDraw, scale: int) -> None:
        for x, y, radius, outline, opacity in DECORATION:
            circle = scaled((x - radius, y - radius, x + radius, y + radius), width * scale)
            if outline:
                draw.ellipse(circle, outline=(255, 255, 255, opacity), width=outline * scale)
            else:
                draw.ellipse(circle, fill=(255, 255, 255, opacity))

    shapes = smooth_layer(template.size, "RGBA", paint, scale=2)
    return Image.alpha_composite(gradient, shapes).convert("RGB")


@dataclasses.dataclass(frozen=True)
class PreparedBackground:
    data: bytes
    content_type: str  # image/jpeg, or image/png when the picture has transparency
    width: int
    height: int


PREPARED_JPEG_QUALITY = 92


def prepare_background(data: bytes, covering: tuple[int, int] = (750, 1334)) -> PreparedBackground:
    """An uploaded background checked as `validate_background` does, turned
    upright and shrunk to the smallest size that still covers `covering`
    (the canvas), so that every poster drawn on it handles a small picture.
    BadBackground when refused."""
    picture = _decode(data, BACKGROUND_LIMITS)
    scale = min(1.0, max(covering[0] / picture.width, covering[1] / picture.height))
    if scale < 1.0:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    if picture.has_transparency_data:
        picture.convert("RGBA").save(out, "PNG", optimize=False)
        content_type = "image/png"
    else:
        picture.convert("RGB").save(out, "JPEG", quality=PREPARED_JPEG_QUALITY)
        content_type = "image/jpeg"
    return PreparedBackground(out.getvalue(), content_type, picture.width, picture.height)
