"""The merchant's side of posters: the settings door, background uploads
(refused with a clear message when too big or broken), and settings checked
at start."""

from __future__ import annotations

import asyncio
import io
import json
import os

import pytest
import zxingcpp
from PIL import Image

from bot.app import API_ROUTES
from bot.runtime import open_runtime
from distribution.poster_settings import PosterSettings
from distribution.records import InvalidField
from distribution.scene import promoter_scene
from web.openapi import build_document
from posters.backgrounds import MAX_BACKGROUND_BYTES
from posters.templates import BUILTIN_TEMPLATES
from settings import SettingsError, load_settings
from tests.conftest import MERCHANT_TOKEN
from tests.test_relations import add_member

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
BACKGROUNDS = "/api/merchant/v1/posters/backgrounds"
SETTINGS = "/api/merchant/v1/settings/posters"
DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def encoded(image: Image.Image, image_format: str) -> bytes:
    out = io.BytesIO()
    image.save(out, image_format)
    return out.getvalue()


def stripes(size: tuple[int, int]) -> Image.Image:
    """Bold vertical stripes: nothing like a drawn background."""
    image = Image.new("RGB", size, (20, 160, 40))
    for left in range(0, size[0], size[0] // 10):
        image.paste((240, 240, 40), (left, 0, left + size[0] // 20, size[1]))
    return image


async def upload(server, data: bytes, content_type: str = "image/png", headers: dict | None = None):
    return await server.http.post(BACKGROUNDS, content=data,
                                  headers={**MERCHANT, "Content-Type": content_type, **(headers or {})})


# --- the settings door ---------------------------------------------------------------------


async def test_poster_settings_have_defaults_and_are_replaced_through_the_settings_door(server):
    defaults = await server.merchant_get(SETTINGS)
    assert defaults.status_code == 200
    assert defaults.json() == PosterSettings().to_dict()
    assert set(defaults.json()["templates"]) == set(BUILTIN_TEMPLATES)

    body = {"templates": {"spring": {"design": "fresh", "version": 3, "headline": "春季\n大促"}},
            "default_template": "spring", "keywords": ["海报", "邀请码"], "code_type": "miniapp_code",
            "miniapp_page": "pages/invite/index"}
    stored = await server.http.put(SETTINGS, json=body, headers=MERCHANT)
    assert stored.status_code == 200
    assert (await server.merchant_get(SETTINGS)).json() == stored.json()
    settings = await server.runtime.posters.settings()
    assert settings.templates["spring"].version == 3 and settings.is_keyword("邀请码")


BAD_SETTINGS = [
    ({"code_type": "sms"}, "code_type"),
    ({"default_template": "missing"}, "default_template"),
    ({"templates": {}}, "templates"),
    ({"templates": {"Bad Id": {}}}, "templates.Bad Id"),
    ({"templates": {"x": {"design": "gold"}}, "default_template": "x"}, "templates.x.design"),
    ({"templates": {"x": {"version": 0}}, "default_template": "x"}, "templates.x.version"),
    ({"templates": {"x": {"headline": "长" * 41}}, "default_template": "x"}, "templates.x.headline"),
    ({"templates": {"x": {"background_id": "../etc"}}, "default_template": "x"}, "templates.x.background_id"),
    ({"templates": {"x": {"colour": "red"}}, "default_template": "x"}, "templates.x.colour"),
    ({"keywords": ["海报", " 海报 "]}, "keywords[1]"),
    ({"keywords": "海报"}, "keywords"),
    ({"keywords": [""]}, "keywords[0]"),
    ({"qr_expire_days": 31}, "qr_expire_days"),
    ({"permanent_qr": "yes"}, "permanent_qr"),
    ({"miniapp_page": "/pages/index/index"}, "miniapp_page"),
    ({"miniapp_page": "pages/index?x=1"}, "miniapp_page"),
    ({"colours": []}, "colours"),
]


async def test_bad_poster_settings_are_refused_naming_the_field(server):
    for body, field in BAD_SETTINGS:  # one server for all the cases: each is a request
        response = await server.http.put(SETTINGS, json=body, headers=MERCHANT)
        assert (response.status_code, response.json()["error"].get("field")) == (400, field), body
    assert (await server.merchant_get(SETTINGS)).json() == PosterSettings().to_dict()


def test_the_settings_record_round_trips_and_names_nested_fields():
    settings = PosterSettings.from_dict({"templates": {"a": {"design": "fresh"}}, "default_template": "a"})
    assert PosterSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(InvalidField) as refused:
        PosterSettings.from_dict({"templates": {"a": {"version": "2"}}, "default_template": "a"})
    assert refused.value.field == "templates.a.version"


# --- backgrounds ---------------------------------------------------------------------------


async def test_a_background_is_stored_shrunk_to_the_canvas_and_drawn_behind_the_poster(server):
    runtime = server.runtime
    picture = stripes((1500, 2668))
    response = await upload(server, encoded(picture, "PNG"))

    assert response.status_code == 201
    background = response.json()
    assert (background["width"], background["height"], background["content_type"]) == (750, 1334, "image/jpeg")
    stored = await server.merchant_get(f"{BACKGROUNDS}/{background['id']}")
    assert stored.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(stored.content)).size == (750, 1334)

    member = await add_member(runtime, nickname="春")
    plain = await runtime.posters.jpeg(member, "fresh")
    await runtime.posters.merchant_settings.put(PosterSettings.from_dict({
        "templates": {"spring": {"design": "fresh", "background_id": background["id"]}}, "default_template": "spring",
    }))
    pictured = await runtime.posters.jpeg(member)

    def corner(jpeg: bytes) -> tuple:
        return Image.open(io.BytesIO(jpeg)).convert("RGB").getpixel((30, 700))  # on a yellow stripe

    assert corner(pictured) != corner(plain)
    assert abs(corner(pictured)[0] - 240) < 30 and abs(corner(pictured)[2] - 40) < 40
    codes = [code.text for code in zxingcpp.read_barcodes(Image.open(io.BytesIO(pictured)))]
    spring_code = await runtime.oa.qrcode.create(promoter_scene(member["_id"], "spring"), expire_seconds=30 * 86400)
    assert codes == [spring_code["url"]]  # readable on the picture


async def test_a_background_with_transparency_stays_a_png_and_a_small_one_is_kept_as_it_is(server):
    see_through = stripes((700, 1200)).convert("RGBA")  # smaller than the canvas: not enlarged
    see_through.putalpha(128)
    response = await upload(server, encoded(see_through, "PNG"))
    assert response.status_code == 201
    assert (response.json()["content_type"], response.json()["width"]) == ("image/png", 700)
    stored = await server.merchant_get(f"{BACKGROUNDS}/{response.json()['id']}")
    assert Image.open(io.BytesIO(stored.content)).mode == "RGBA"


async def test_an_oversized_background_is_refused_before_it_is_sent(server):
    # As curl does for a large body: headers first, the body only after "100 Continue".
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write((f"POST {BACKGROUNDS} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {MERCHANT_TOKEN}\r\n"
                  f"Content-Type: image/jpeg\r\nContent-Length: {MAX_BACKGROUND_BYTES + 1}\r\n"
                  "Expect: 100-continue\r\n\r\n").encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    error = json.loads(body)["error"]
    assert error["code"] == "too_large" and f"{MAX_BACKGROUND_BYTES:,}" in error["message"]


async def test_an_oversized_background_sent_without_a_length_is_counted_and_refused(server):
    too_big = b"\xff\xd8\xff" + os.urandom(MAX_BACKGROUND_BYTES)

    async def chunks():  # no Content-Length: counted as it arrives, never kept
        for start in range(0, len(too_big), 256 * 1024):
            yield too_big[start:start + 256 * 1024]

    response = await server.http.post(BACKGROUNDS, content=chunks(), headers={**MERCHANT, "Content-Type": "image/jpeg"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    assert await server.runtime.db.poster_backgrounds.count_documents({}) == 0


BAD_BACKGROUNDS = [  # (body, content type, status, words of the message)
    (encoded(stripes((800, 1400)), "JPEG")[:5000], "image/jpeg", 400, "corrupt or truncated"),
    (b"GIF89a not really" * 40, "image/png", 400, "not a readable JPEG or PNG"),
    (encoded(stripes((120, 120)), "PNG"), "image/png", 400, "outside the allowed dimensions"),
    (encoded(stripes((400, 400)), "GIF"), "image/png", 400, "not a readable JPEG or PNG"),
    (encoded(stripes((400, 400)), "PNG"), "text/plain", 415, "image/jpeg or image/png"),
    (b"", "image/png", 400, "empty"),
]


async def test_a_bad_background_is_refused_with_a_clear_message(server):
    for data, content_type, status, words in BAD_BACKGROUNDS:  # one server for all the cases
        response = await upload(server, data, content_type)
        assert response.status_code == status, words
        assert words in response.json()["error"]["message"]
    assert await server.runtime.db.poster_backgrounds.count_documents({}) == 0


async def test_backgrounds_need_the_merchant_token(server):
    response = await server.http.post(BACKGROUNDS, content=encoded(stripes((400, 400)), "PNG"),
                                      headers={"Content-Type": "image/png"})
    assert response.status_code == 401
    assert (await server.http.get(f"{BACKGROUNDS}/{'0' * 24}")).status_code == 401
    assert (await server.merchant_get(f"{BACKGROUNDS}/{'0' * 24}")).status_code == 404


# --- documents and start ---------------------------------------------------------------------


def test_the_openapi_document_describes_the_poster_endpoints():
    document = build_document(API_ROUTES)
    paths, schemas = document["paths"], document["components"]["schemas"]
    assert set(paths["/api/v1/poster"]["get"]["responses"]["200"]["content"]) == {"image/jpeg"}
    assert "post" in paths["/api/merchant/v1/posters/backgrounds"]
    assert "get" in paths["/api/merchant/v1/members/{member_id}/poster"]
    (template,) = schemas["PosterSettings"]["properties"]["templates"]["patternProperties"].values()
    design = schemas[template["$ref"].rsplit("/", 1)[-1]]["properties"]["design"]
    designs = schemas[design["$ref"].rsplit("/", 1)[-1]]
    assert designs["enum"] == list(BUILTIN_TEMPLATES)


@pytest.mark.parametrize(
    "change, variable",
    [
        ({"POSTER_WORKERS": "0"}, "POSTER_WORKERS"),
        ({"POSTER_WORKERS": "65"}, "POSTER_WORKERS"),
        ({"PUBLIC_BASE_URL": "shop.example.com"}, "PUBLIC_BASE_URL"),
        ({"SHARE_LINK_SECRET": "too-short"}, "SHARE_LINK_SECRET"),
    ],
)
def test_a_bad_poster_setting_names_its_variable(change, variable):
    with pytest.raises(SettingsError) as refused:
        load_settings({"DEMO": "1", **change}, env_file=None)
    assert refused.value.name == variable


def test_demo_mode_makes_up_share_link_settings():
    settings = load_settings({"DEMO": "1", "PORT": "8123"}, env_file=None)
    assert settings.public_base_url == "http://127.0.0.1:8123"
    assert len(settings.share_link_secret) >= 16
    assert load_settings({"DEMO": "1"}, env_file=None).share_link_secret != settings.share_link_secret
    elsewhere = load_settings({"DEMO": "1", "PUBLIC_BASE_URL": "https://shop.example.com/"}, env_file=None)
    assert elsewhere.public_base_url == "https://shop.example.com"


@pytest.mark.parametrize("font, words", [("/nowhere/font.ttf", "no such file"), (DEJAVU, "no Chinese glyphs")])
async def test_without_a_chinese_font_the_start_stops_naming_poster_font(make_settings, font, words):
    if font == DEJAVU and not os.path.exists(DEJAVU):
        pytest.skip("DejaVu Sans is not installed")
    with pytest.raises(SettingsError) as refused:
        async with open_runtime(make_settings(POSTER_FONT=font)):
            pass
    assert refused.value.name == "POSTER_FONT" and words in str(refused.value)
