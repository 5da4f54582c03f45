"""What a poster looks like: canvas size, background, colours, headline and where
each part goes. Pure data; drawing lives elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from distribution.poster_settings import Design

MIN_QR_SIDE = 260  # smaller codes get hard to scan from a phone held at arm's length
# WeChat serves avatars 132 px square (…/132): boxes of that size paste them unscaled.
AVATAR_SIDE = 132

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Box:
    """A rectangle of the canvas. A one-line text box's height is its font size."""

    left: int
    top: int
    width: int
    height: int
    align: Literal["left", "center"] = "center"  # where content narrower than the box sits

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def corners(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom), as Pillow's crop and paste take them."""
        return self.left, self.top, self.right, self.bottom

    def grown(self, margin: int, canvas_size: tuple[int, int]) -> Box:
        """This box with `margin` px more on every side, kept inside the canvas."""
        left, top = max(0, self.left - margin), max(0, self.top - margin)
        right, bottom = min(canvas_size[0], self.right + margin), min(canvas_size[1], self.bottom + margin)
        return Box(left, top, right - left, bottom - top, self.align)

    def place(self, width: int, height: int) -> tuple[int, int]:
        """Top-left corner of content of this size: aligned, and centred vertically."""
        left = self.left if self.align == "left" else self.left + (self.width - width) // 2
        return left, self.top + (self.height - height) // 2


@dataclass(frozen=True)
class Palette:
    gradient_top: RGB
    gradient_bottom: RGB
    text: RGB  # headline and nickname, drawn on the background
    card: RGB  # behind the QR code, which needs a light, quiet surface to scan
    qr: RGB
    caption: RGB


@dataclass(frozen=True)
class PosterTemplate:
    """A poster design. Its identity is id and version only: whatever changes how
    it draws must come with a version bump, which is what invalidates every
    cache of it (the pre-drawn canvas here, stored posters elsewhere)."""

    id: str
    version: int
    name: str = field(compare=False)
    headline: str = field(compare=False)
    palette: Palette = field(compare=False)
    avatar: Box = field(compare=False)
    nickname: Box = field(compare=False)
    headline_box: Box = field(compare=False)
    qr: Box = field(compare=False)
    caption_box: Box = field(compare=False)
    headline_size: int = field(default=80, compare=False)  # largest; shrunk until the headline fits its box
    caption: str = field(default="长按识别二维码", compare=False)
    size: tuple[int, int] = field(default=(750, 1334), compare=False)
    # None: a background drawn from the palette; else JPEG/PNG bytes checked by
    # posters.backgrounds.validate_background when uploaded.
    background: bytes | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        width, height = self.size
        for name in ("avatar", "nickname", "headline_box", "qr", "caption_box"):
            box = getattr(self, name)
            if box.left < 0 or box.top < 0 or box.right > width or box.bottom > height:
                raise ValueError(f"template {self.id}: {name} box {box} leaves the {width}x{height} canvas")
        if min(self.qr.width, self.qr.height) < MIN_QR_SIDE:
            raise ValueError(f"template {self.id}: the QR box must be at least {MIN_QR_SIDE} px square to scan")

    @property
    def cache_key(self) -> str:
        return f"{self.id}@v{self.version}"


CLASSIC = PosterTemplate(
    id=Design.CLASSIC,
    version=1,
    name="喜庆红",
    headline="好物分享\n一起赚佣金",
    palette=Palette(
        gradient_top=(236, 72, 62),
        gradient_bottom=(255, 154, 84),
        text=(255, 255, 255),
        card=(255, 255, 255),
        qr=(34, 24, 24),
        caption=(120, 104, 100),
    ),
    avatar=Box(70, 84, AVATAR_SIDE, AVATAR_SIDE),
    nickname=Box(215, 126, 470, 48, align="left"),
    headline_box=Box(60, 290, 630, 300),
    qr=Box(195, 740, 360, 360),
    caption_box=Box(195, 1116, 360, 32),
)

FRESH = PosterTemplate(
    id=Design.FRESH,
    version=1,
    name="清新蓝",
    headline="扫码加入我的团队，分享即赚钱！",
    palette=Palette(
        gradient_top=(36, 110, 214),
        gradient_bottom=(78, 205, 196),
        text=(255, 255, 255),
        card=(255, 255, 255),
        qr=(16, 42, 67),
        caption=(90, 110, 130),
    ),
    avatar=Box(309, 90, AVATAR_SIDE, AVATAR_SIDE),
    nickname=Box(75, 252, 600, 44),
    headline_box=Box(60, 340, 630, 260),
    qr=Box(195, 720, 360, 360),
    caption_box=Box(195, 1096, 360, 32),
)

# Every design the merchant may choose (`Design`) must be drawable here.
BUILTIN_TEMPLATES: dict[Design, PosterTemplate] = {Design.CLASSIC: CLASSIC, Design.FRESH: FRESH}
