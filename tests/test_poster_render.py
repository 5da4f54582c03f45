"""Poster rendering: codes that scan, Chinese that is not boxes, bad input that
is refused or survived. Speed is measured by bench/poster_render.py, not here."""

from __future__ import annotations

import dataclasses
import io
import pickle
import struct
import zlib
from concurrent.futures import ProcessPoolExecutor

import pytest
import qrcode
import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from posters import canvas, fonts
from posters.avatar import INITIAL_COLOURS, round_avatar
from posters.backgrounds import BadBackground, validate_background
from posters.fonts import FontNotFound, find_cjk_font, has_cjk_glyphs, load_font
from posters.images import BadImage
from posters.jpeg import encode_jpeg
from posters.qr import QrTooDense
from posters.render import DEFAULT_NICKNAME, PosterRequest, draw_poster, render_poster
from posters.templates import BUILTIN_TEMPLATES, CLASSIC, PosterTemplate
from posters.text import drawable_text

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
OFFICIAL_ACCOUNT_URL = "http://weixin.qq.com/q/02Z3Tb0xVf1Kc10000xAhyQ"
LONG_URL = (
    "https://mp.weixin.qq.com/s?__biz=MzA5NzQ0MjEwMA==&mid=2650000000&idx=1&sn=0123456789abcdef&scene=p%3A1234567"
)


@pytest.fixture(scope="module")
def cjk_font() -> str:
    return find_cjk_font()


def scanned(poster: bytes | Image.Image) -> list[str]:
    image = Image.open(io.BytesIO(poster)) if isinstance(poster, bytes) else poster
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


def encoded(image: Image.Image, image_format: str) -> bytes:
    out = io.BytesIO()
    image.save(out, image_format)
    return out.getvalue()


def region(poster: Image.Image, box) -> bytes:
    return poster.crop(box.corners).tobytes()


def draws_distinct_cjk_glyphs(font_path: str) -> bool:
    """Three Chinese characters drawn differently from each other and from the
    font's missing-glyph box (what a character the font lacks draws as)."""
    font = ImageFont.truetype(font_path, 40)

    def pixels(character: str) -> bytes:
        image = Image.new("L", (80, 80))
        ImageDraw.Draw(image).text((20, 20), character, font=font, fill=255)
        return image.tobytes()

    glyphs = [pixels(character) for character in "推广员"]
    return len(set(glyphs)) == 3 and pixels("\U0010fffd") not in glyphs


# --- codes that scan ---------------------------------------------------------


@pytest.mark.parametrize("template", BUILTIN_TEMPLATES.values(), ids=BUILTIN_TEMPLATES)
@pytest.mark.parametrize("url", [OFFICIAL_ACCOUNT_URL, LONG_URL], ids=["short-url", "long-url"])
def test_the_poster_qr_scans_to_exactly_the_url(template: PosterTemplate, url: str) -> None:
    poster = render_poster(PosterRequest(template, qr_text=url, nickname="张三"))

    image = Image.open(io.BytesIO(poster))
    assert (image.format, image.size) == ("JPEG", template.size)
    assert scanned(poster) == [url]


def test_a_pasted_mini_program_code_scans() -> None:
    # WeChat's transparent (is_hyaline) style: the code must land on the light card.
    builder = qrcode.QRCode(box_size=10)
    builder.add_data("scene=p:42")
    code = builder.make_image(back_color="transparent").get_image()
    assert code.mode == "RGBA"
    request = PosterRequest(CLASSIC, qr_image=encoded(code.resize((430, 430)), "PNG"), nickname="李四")

    assert scanned(render_poster(request)) == ["scene=p:42"]


def test_text_too_long_for_a_scannable_qr_is_refused() -> None:
    with pytest.raises(QrTooDense):
        render_poster(PosterRequest(CLASSIC, qr_text="x" * 2000))


def test_a_corrupt_mini_program_code_is_refused() -> None:
    with pytest.raises(BadImage, match="mini-program code"):
        render_poster(PosterRequest(CLASSIC, qr_image=b"\x89PNG\r\n\x1a\n not really"))


def test_a_request_needs_exactly_one_code() -> None:
    with pytest.raises(ValueError):
        PosterRequest(CLASSIC)
    with pytest.raises(ValueError):
        PosterRequest(CLASSIC, qr_text=OFFICIAL_ACCOUNT_URL, qr_image=b"png")


# --- Chinese glyphs, never boxes ---------------------------------------------


def test_the_chosen_font_draws_real_chinese_glyphs(cjk_font: str) -> None:
    assert draws_distinct_cjk_glyphs(cjk_font)
    assert has_cjk_glyphs(cjk_font)


def test_the_glyph_check_fails_for_a_font_without_chinese() -> None:
    assert not draws_distinct_cjk_glyphs(DEJAVU)
    assert not has_cjk_glyphs(DEJAVU)


def test_a_configured_font_without_chinese_is_refused() -> None:
    with pytest.raises(FontNotFound, match="POSTER_FONT"):
        render_poster(PosterRequest(CLASSIC, qr_text=OFFICIAL_ACCOUNT_URL, font_path=DEJAVU))


def test_no_chinese_font_on_the_system_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "_system_candidates", lambda: [DEJAVU])
    fonts._system_cjk_font.cache_clear()
    try:
        with pytest.raises(FontNotFound, match="fonts-wqy-microhei.*POSTER_FONT"):
            find_cjk_font()
    finally:
        fonts._system_cjk_font.cache_clear()


def test_different_chinese_nicknames_draw_differently() -> None:
    # With a font lacking Chinese both would be two identical boxes.
    first = draw_poster(PosterRequest(CLASSIC, qr_text=OFFICIAL_ACCOUNT_URL, nickname="张三"))
    second = draw_poster(PosterRequest(CLASSIC, qr_text=OFFICIAL_ACCOUNT_URL, nickname="李四"))

    assert region(first, CLASSIC.nickname) != region(second, CLASSIC.nickname)


def test_what_the_font_cannot_draw_is_left_out(cjk_font: str) -> None:
    assert drawable_text(load_font(cjk_font, 40), "小明😀\u200b\n ") == "小明"


def test_no_nickname_draws_the_default(cjk_font: str) -> None:
    unnamed = draw_poster(PosterRequest(CLASSIC, qr_text=OFFICIAL_ACCOUNT_URL))
    default = draw_poster(PosterRequest(CLASSIC, qr_text=OFFICIAL_ACCOUNT_URL, nickname=DEFAULT_NICKNAME))

    assert region(unnamed, CLASSIC.nickname) == region(default, CLASSIC.nickname)


# --- avatars -------------------------------------------------------------------


def test_no_avatar_draws_the_nickname_initial_on_a_disc(cjk_font: str) -> None:
    avatar = round_avatar(None, "张三", 132, cjk_font)

    assert (avatar.mode, avatar.size) == ("RGBA", (132, 132))
    assert avatar.getpixel((0, 0))[3] == 0  # outside the circle
    assert avatar.getpixel((12, 66))[:3] in INITIAL_COLOURS  # the disc, left of the character
    assert avatar.crop((33, 33, 99, 99)).convert("L").getextrema()[1] >= 250  # the white character
    assert avatar.tobytes() != round_avatar(None, "李四", 132, cjk_font).tobytes()
    assert avatar.tobytes() == round_avatar(None, "张三", 132, cjk_font).tobytes()


def test_corrupt_avatar_bytes_fall_back_to_the_initial(cjk_font: str) -> None:
    fallback = round_avatar(b"\xff\xd8\xff\xe0 truncated jpeg", "张三", 132, cjk_font)

    assert fallback.tobytes() == round_avatar(None, "张三", 132, cjk_font).tobytes()
    poster = render_poster(PosterRequest(CLASSIC, qr_text=OFFICIAL_ACCOUNT_URL, nickname="张三", avatar=b"garbage"))
    assert scanned(poster) == [OFFICIAL_ACCOUNT_URL]


def test_an_avatar_picture_is_used(cjk_font: str) -> None:
    picture = encoded(Image.new("RGB", (640, 640), (200, 30, 30)), "JPEG")

    red, green, blue, alpha = round_avatar(picture, "张三", 132, cjk_font).getpixel((66, 66))
    assert red > 180 and green < 60 and blue < 60 and alpha == 255


# --- uploaded backgrounds ----------------------------------------------------------


def noisy_background() -> Image.Image:
    return Image.merge("RGB", [Image.effect_noise((750, 1334), 60)] * 3)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions: tiny on disk, gigabytes once decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_a_sound_background_is_accepted_as_is(image_format: str) -> None:
    data = encoded(noisy_background(), image_format)

    assert validate_background(data) is data


@pytest.mark.parametrize(
    "data, problem",
    [
        (encoded(noisy_background(), "JPEG")[:5000], "corrupt or truncated"),
        (b"definitely not an image" * 100, "not a readable JPEG or PNG"),
        (encoded(noisy_background(), "GIF"), "not a readable JPEG or PNG"),
        (encoded(noisy_background(), "BMP"), "not a readable JPEG or PNG"),
        (png_header_only(50_000, 50_000), "dimensions"),
        (encoded(Image.new("RGB", (20, 20)), "PNG"), "dimensions"),
    ],
    ids=["truncated", "garbage", "gif", "bmp", "decompression-bomb", "tiny"],
)
def test_a_bad_background_is_refused(data: bytes, problem: str) -> None:
    with pytest.raises(BadBackground, match=problem):
        validate_background(data)


def test_an_oversized_background_is_refused() -> None:
    data = encoded(noisy_background(), "JPEG")

    with pytest.raises(BadBackground, match="more than"):
        validate_background(data, max_bytes=len(data) - 1)


def test_the_code_scans_on_a_busy_uploaded_background() -> None:
    template = dataclasses.replace(
        CLASSIC, id="uploaded", background=validate_background(encoded(noisy_background(), "JPEG"))
    )

    assert scanned(render_poster(PosterRequest(template, qr_text=OFFICIAL_ACCOUNT_URL))) == [OFFICIAL_ACCOUNT_URL]


# --- caching -----------------------------------------------------------------------


def test_a_version_bump_changes_the_cache_key() -> None:
    bumped = dataclasses.replace(CLASSIC, version=CLASSIC.version + 1)

    assert bumped.cache_key != CLASSIC.cache_key
    assert dataclasses.replace(CLASSIC, name="改名").cache_key == CLASSIC.cache_key


def test_a_bumped_template_is_drawn_anew() -> None:
    renamed = dataclasses.replace(CLASSIC, version=CLASSIC.version + 1, headline="全新标题")
    before = draw_poster(PosterRequest(CLASSIC, qr_text=OFFICIAL_ACCOUNT_URL))
    after = draw_poster(PosterRequest(renamed, qr_text=OFFICIAL_ACCOUNT_URL))

    assert region(before, CLASSIC.headline_box) != region(after, CLASSIC.headline_box)


def test_a_poster_shows_nothing_of_the_previous_one() -> None:
    # Posters are drawn on a reused canvas: everything the last one drew must go.
    canvas.template_canvas.cache_clear()
    plain = PosterRequest(CLASSIC, qr_text="http://weixin.qq.com/q/short", nickname="王")
    busy = PosterRequest(
        CLASSIC,
        qr_text=LONG_URL,
        nickname="一个非常非常非常长的昵称会被省略号截断",
        avatar=encoded(Image.new("RGB", (132, 132), (10, 200, 10)), "JPEG"),
    )
    first = render_poster(plain)
    render_poster(busy)

    assert render_poster(plain) == first


def test_only_the_changed_rows_are_encoded_yet_the_pixels_are_the_whole_posters() -> None:
    request = PosterRequest(CLASSIC, qr_text=LONG_URL, nickname="张三", avatar=b"garbage")

    spliced = Image.open(io.BytesIO(render_poster(request)))
    whole = Image.open(io.BytesIO(encode_jpeg(draw_poster(request))))
    assert spliced.tobytes() == whole.tobytes()


# --- runs in a process pool ---------------------------------------------------------


def test_a_request_renders_in_a_process_pool() -> None:
    request = PosterRequest(CLASSIC, qr_text=OFFICIAL_ACCOUNT_URL, nickname="张三", avatar=b"\x00")
    assert pickle.loads(pickle.dumps(request)) == request

    with ProcessPoolExecutor(max_workers=1) as pool:
        poster = pool.submit(render_poster, request).result(timeout=60)

    assert scanned(poster) == [OFFICIAL_ACCOUNT_URL]
