"""Make text fit where it is drawn: drop what the font cannot draw, shorten one
line with an ellipsis, wrap and shrink a headline into its box."""

from __future__ import annotations

import unicodedata

from PIL import ImageDraw, ImageFont

from posters.fonts import draws_glyph, load_font
from posters.templates import RGB, Box

ELLIPSIS = "…"
# Chinese typesetting never starts a line with these; they stay on the line before.
NO_LINE_START = set("，。、；：？！”’）》」』】…,.;:?!)")
MIN_HEADLINE_SIZE = 28
LINE_SPACING = 1.25


def drawable_text(font: ImageFont.FreeTypeFont, text: str) -> str:
    """`text` without what would draw as a box (emoji, unknown symbols) or would
    not draw at all (control and zero-width characters), spaces collapsed."""
    kept = "".join(
        character
        for character in text
        if unicodedata.category(character)[0] != "C" and draws_glyph(font, character)
    )
    return " ".join(kept.split())


def ellipsize(font: ImageFont.FreeTypeFont, text: str, width: int) -> str:
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + ELLIPSIS) > width:
        text = text[:-1]
    return text.rstrip() + ELLIPSIS


def fit_lines(
    font_path: str, text: str, width: int, height: int, largest: int
) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """The largest font (at most `largest` px) whose wrapped lines fit the box;
    at the smallest size, the lines that fit, the last one ellipsized."""
    for size in range(max(largest, MIN_HEADLINE_SIZE), MIN_HEADLINE_SIZE - 1, -2):
        font = load_font(font_path, size)
        drawable = "\n".join(drawable_text(font, paragraph) for paragraph in text.splitlines())
        lines = _wrap(font, drawable, width)
        if len(lines) * _line_height(font) <= height and all(font.getlength(line) <= width for line in lines):
            return font, lines
    fitting = max(1, int(height // _line_height(font)))
    if len(lines) > fitting:
        lines = lines[: fitting - 1] + [ellipsize(font, lines[fitting - 1] + ELLIPSIS, width)]
    return font, lines


def draw_lines(
    draw: ImageDraw.ImageDraw,
    box: Box,
    lines: list[str],
    font: ImageFont.FreeTypeFont,
    fill: RGB,
    stroke_width: int = 0,
) -> None:
    """The lines as one block, centred vertically in the box and aligned as it says."""
    step = _line_height(font)
    first_middle = box.top + (box.height - step * len(lines)) / 2 + step / 2
    x, horizontal = (box.left, "l") if box.align == "left" else (box.left + box.width / 2, "m")
    for number, line in enumerate(lines):
        draw.text(
            (x, first_middle + number * step),
            line,
            font=font,
            fill=fill,
            anchor=horizontal + "m",
            stroke_width=stroke_width,
            stroke_fill=fill,
        )


def _wrap(font: ImageFont.FreeTypeFont, text: str, width: int) -> list[str]:
    """Lines no wider than `width`, broken between any two characters (as Chinese
    is), keeping the template's own line breaks."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        line = ""
        for character in paragraph:
            if line and character not in NO_LINE_START and font.getlength(line + character) > width:
                lines.append(line)
                line = ""
            line += character
        lines.append(line)
    return lines


def _line_height(font: ImageFont.FreeTypeFont) -> float:
    return font.size * LINE_SPACING
