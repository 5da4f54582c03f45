"""Everything that is the same on every promoter's poster of one template,
prepared once per worker process: the canvas with background, headline, the
card behind the code, its caption and the ring around the avatar; that
canvas as JPEG rows; and where on it each poster draws its own parts.

Posters are drawn on a working copy that each thread keeps and reuses:
restoring the few regions that a poster draws on costs far less than copying
the whole canvas for every poster.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFilter

from posters.backgrounds import background
from posters.fonts import load_font
from posters.jpeg import BlockRows, JpegRows, block_rows
from posters.shapes import circle_mask, scaled, smooth_layer
from posters.templates import RGB, Box, PosterTemplate
from posters.text import draw_lines, ellipsize, fit_lines

CARD_PADDING = 30
CARD_RADIUS = 28
SHADOW_BLUR = 14
SHADOW_DROP = 8
SHADOW_OPACITY = 70
AVATAR_RING = 6
RING_COLOUR = (255, 255, 255)
HEADLINE_STROKE = 1  # the fonts have one weight; a thin stroke of the same colour reads as bold


@dataclass(frozen=True, eq=False)
class TemplateCanvas:
    """One template, ready for posters to be drawn on it."""

    pristine: Image.Image  # shared by every thread: never drawn on
    jpeg: JpegRows
    promoter_rows: tuple[BlockRows, ...]  # the rows of blocks that posters draw on
    patches: tuple[tuple[Image.Image, tuple[int, int]], ...]  # pristine pixels of where posters draw
    _per_thread: threading.local = field(default_factory=threading.local, init=False, repr=False)

    def working_copy(self) -> Image.Image:
        """This thread's copy, every region that a poster draws on restored.
        Valid until the thread's next call."""
        copy = getattr(self._per_thread, "canvas", None)
        if copy is None:
            copy = self._per_thread.canvas = self.pristine.copy()
        for patch, corner in self.patches:
            copy.paste(patch, corner)
        return copy


@functools.lru_cache(maxsize=16)
def template_canvas(template: PosterTemplate, font_path: str) -> TemplateCanvas:
    pristine = _drawn_canvas(template, font_path)
    regions = _promoter_regions(template)
    return TemplateCanvas(
        pristine=pristine,
        jpeg=JpegRows.encode(pristine),
        promoter_rows=block_rows(regions),
        patches=tuple((pristine.crop(region.corners), (region.left, region.top)) for region in regions),
    )


def _promoter_regions(template: PosterTemplate) -> tuple[Box, ...]:
    """Where posters draw: the avatar, code and nickname boxes, the nickname's
    grown by half its height since glyphs may overshoot the line they sit on."""
    nickname = template.nickname.grown(template.nickname.height // 2, template.size)
    return template.avatar, template.qr, nickname


def _drawn_canvas(template: PosterTemplate, font_path: str) -> Image.Image:
    canvas = background(template)
    _draw_card(canvas, template)
    _draw_disc(canvas, template.avatar, AVATAR_RING, RING_COLOUR)
    draw = ImageDraw.Draw(canvas)
    box = template.headline_box
    font, lines = fit_lines(font_path, template.headline, box.width, box.height, template.headline_size)
    draw_lines(draw, box, lines, font, template.palette.text, stroke_width=HEADLINE_STROKE)
    caption_font = load_font(font_path, template.caption_box.height)
    caption = ellipsize(caption_font, template.caption, template.caption_box.width)
    draw_lines(draw, template.caption_box, [caption], caption_font, template.palette.caption)
    return canvas


def _draw_card(canvas: Image.Image, template: PosterTemplate) -> None:
    left = min(template.qr.left, template.caption_box.left) - CARD_PADDING
    top = min(template.qr.top, template.caption_box.top) - CARD_PADDING
    right = max(template.qr.right, template.caption_box.right) + CARD_PADDING
    bottom = max(template.qr.bottom, template.caption_box.bottom) + CARD_PADDING
    margin = 3 * SHADOW_BLUR  # room for the blur to fade out
    size = (right - left + 2 * margin, bottom - top + 2 * margin)

    def paint(draw: ImageDraw.ImageDraw, scale: int) -> None:
        card = (margin, margin, size[0] - margin, size[1] - margin)
        draw.rounded_rectangle(scaled(card, scale), radius=CARD_RADIUS * scale, fill=255)

    card = smooth_layer(size, "L", paint)
    shadow = card.filter(ImageFilter.GaussianBlur(SHADOW_BLUR)).point(lambda level: level * SHADOW_OPACITY // 255)
    canvas.paste((0, 0, 0), (left - margin, top - margin + SHADOW_DROP), shadow)
    canvas.paste(template.palette.card, (left - margin, top - margin), card)


def _draw_disc(canvas: Image.Image, box: Box, border: int, colour: RGB) -> None:
    """A disc `border` px wider all round than the square that fits in `box`."""
    side = min(box.width, box.height) + 2 * border
    left, top = box.place(side - 2 * border, side - 2 * border)
    canvas.paste(colour, (left - border, top - border), circle_mask(side))
