"""Find a font that really draws Chinese, load it once per size, and tell which
characters it draws.

A font without CJK glyphs does not fail: it silently draws its missing-glyph box
for every Chinese character. So every candidate is checked by drawing a few
Chinese characters and comparing them with that box.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Iterator

from PIL import Image, ImageDraw, ImageFont

# Checked before asking fontconfig, best looking first.
KNOWN_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)

CJK_PROBE = "推广码"
# Plane-16 private use: no font maps it, so drawing it shows the font's notdef glyph.
UNMAPPED_CHARACTER = "\U0010fffd"
PROBE_SIZE = 32

_HOW_TO_FIX = (
    "Install a CJK font (apt-get install fonts-wqy-microhei) "
    "or set POSTER_FONT to a .ttf/.ttc/.otf file that has Chinese glyphs."
)


class FontNotFound(RuntimeError):
    """No usable font with Chinese glyphs; the message says how to get one."""


def find_cjk_font(explicit_path: str | None = None) -> str:
    """The path of a font that draws Chinese: `explicit_path` (settings.poster_font)
    when given, else the first suitable font on the system."""
    if explicit_path is not None:
        return _checked_explicit_font(explicit_path)
    return _system_cjk_font()


@functools.lru_cache(maxsize=64)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # Chinese needs no shaping, and the basic layout measures and draws text
    # several times faster than Raqm.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


def has_cjk_glyphs(path: str) -> bool:
    try:
        font = load_font(path, PROBE_SIZE)
    except OSError:
        return False
    signatures = {_glyph_signature(font, character) for character in CJK_PROBE}
    return len(signatures) == len(CJK_PROBE) and _notdef_signature(font) not in signatures


def draws_glyph(font: ImageFont.FreeTypeFont, character: str) -> bool:
    """False when `font` would draw its missing-glyph box for `character`."""
    return character.isspace() or _glyph_signature(font, character) != _notdef_signature(font)


@functools.lru_cache(maxsize=4096)
def _glyph_signature(font: ImageFont.FreeTypeFont, character: str) -> bytes:
    """The pixels `font` draws for `character`: equal signatures mean the same glyph."""
    side = 2 * int(font.size)
    canvas = Image.new("L", (side, side))
    ImageDraw.Draw(canvas).text((side // 4, side // 4), character, font=font, fill=255)
    return canvas.tobytes()


def _notdef_signature(font: ImageFont.FreeTypeFont) -> bytes:
    return _glyph_signature(font, UNMAPPED_CHARACTER)


@functools.lru_cache(maxsize=8)
def _checked_explicit_font(path: str) -> str:
    if not Path(path).is_file():
        raise FontNotFound(f"POSTER_FONT={path!r}: no such file. {_HOW_TO_FIX}")
    if not has_cjk_glyphs(path):
        raise FontNotFound(f"POSTER_FONT={path!r} has no Chinese glyphs (they would print as boxes). {_HOW_TO_FIX}")
    return path


@functools.lru_cache(maxsize=1)
def _system_cjk_font() -> str:
    for path in _system_candidates():
        if has_cjk_glyphs(path):
            return path
    raise FontNotFound(f"No font with Chinese glyphs found on this system. {_HOW_TO_FIX}")


def _system_candidates() -> Iterator[str]:
    """Font files worth checking, best first, fontconfig asked only once the
    known paths are exhausted."""
    yield from (path for path in KNOWN_CJK_FONTS if Path(path).is_file())
    yield from _fontconfig("fc-match", "--format=%{file}\n", "sans-serif:lang=zh-cn")
    yield from sorted(_fontconfig("fc-list", "--format=%{file}\n", ":lang=zh"))


def _fontconfig(*command: str) -> list[str]:
    try:
        listing = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []  # fontconfig absent or broken: the known paths are all we have
    return [line for line in listing.splitlines() if line]

