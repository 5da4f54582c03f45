"""One promoter's poster as JPEG bytes: the template's prepared canvas plus
what is theirs (avatar, nickname, code), of which only the changed rows are
encoded.

`render_poster` is CPU-bound: callers run it in a process pool so that the
event loop never waits on it. Its argument pickles, and each worker process
keeps its own cache of template canvases and fonts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from posters.avatar import round_avatar
from posters.canvas import template_canvas
from posters.fonts import find_cjk_font, load_font
from posters.images import BadImage, ImageLimits, decode_image, flatten
from posters.qr import qr_image
from posters.templates import PosterTemplate
from posters.text import draw_lines, drawable_text, ellipsize

DEFAULT_NICKNAME = "推广达人"
CODE_IMAGE_LIMITS = ImageLimits(max_bytes=2 * 1024 * 1024, max_side=4096, max_pixels=16_000_000)


@dataclass(frozen=True)
class PosterRequest:
    """Exactly one of `qr_text` (drawn as a QR code, e.g. the `url` of an
    official-account parametric QR) and `qr_image` (PNG or JPEG pasted as it
    is, e.g. a mini-program code from getwxacodeunlimit)."""

    template: PosterTemplate
    qr_text: str | None = None
    qr_image: bytes | None = field(default=None, repr=False)
    nickname: str | None = None
    avatar: bytes | None = field(default=None, repr=False)
    font_path: str | None = None  # settings.poster_font; None: the system's CJK font

    def __post_init__(self) -> None:
        if (self.qr_text is None) == (self.qr_image is None):
            raise ValueError("a poster needs exactly one of qr_text and qr_image")


def render_poster(request: PosterRequest) -> bytes:
    font_path = find_cjk_font(request.font_path)
    prepared = template_canvas(request.template, font_path)
    canvas = _drawn(prepared.working_copy(), request, font_path)
    return prepared.jpeg.with_rows_from(canvas, prepared.promoter_rows)


def draw_poster(request: PosterRequest) -> Image.Image:
    """The poster as an image of its own."""
    font_path = find_cjk_font(request.font_path)
    working_copy = template_canvas(request.template, font_path).working_copy()
    return _drawn(working_copy, request, font_path).copy()


def _drawn(canvas: Image.Image, request: PosterRequest, font_path: str) -> Image.Image:
    _draw_code(canvas, request)
    _draw_promoter(canvas, request, font_path)
    return canvas


def _draw_code(canvas: Image.Image, request: PosterRequest) -> None:
    template = request.template
    box = template.qr
    if request.qr_text is not None:
        code = qr_image(request.qr_text, min(box.width, box.height), template.palette.qr, template.palette.card)
        canvas.paste(code, box.place(*code.size))
        return
    try:
        code = decode_image(request.qr_image, CODE_IMAGE_LIMITS)
    except BadImage as problem:
        raise BadImage(f"mini-program code refused: {problem}") from None
    code = flatten(code, template.palette.card)
    # Only ever shrunk: asking WeChat for the box's width skips this resize.
    code.thumbnail((box.width, box.height), Image.Resampling.BILINEAR)
    canvas.paste(code, box.place(*code.size))


def _draw_promoter(canvas: Image.Image, request: PosterRequest, font_path: str) -> None:
    template = request.template
    box = template.nickname
    font = load_font(font_path, box.height)
    nickname = ellipsize(font, drawable_text(font, request.nickname or "") or DEFAULT_NICKNAME, box.width)
    draw_lines(ImageDraw.Draw(canvas), box, [nickname], font, template.palette.text)
    side = min(template.avatar.width, template.avatar.height)
    avatar = round_avatar(request.avatar, nickname, side, font_path)
    canvas.paste(avatar, template.avatar.place(side, side), avatar)
