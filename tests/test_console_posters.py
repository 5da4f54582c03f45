"""The console's posters page: the templates, a promoter's poster as they get it, and background pictures
uploaded and deleted through the merchant API's service, audited; operators may, finance may not."""

from __future__ import annotations

import asyncio
import io
import re

from PIL import Image

from distribution.poster_settings import PosterSettings
from handlers.console.posters import BackgroundUploadHandler
from posters.backgrounds import MAX_BACKGROUND_BYTES
from tests.console_fixtures import staff_client
from tests.test_console_settings import FormReader
from tests.test_posters_merchant import encoded, stripes
from tests.test_relations import add_member

POSTERS = "/admin/posters"
BACKGROUNDS = "/admin/posters/backgrounds"
_LISTED = re.compile(r'data-background="([0-9a-f]{24})"')


def png(size: tuple[int, int] = (1500, 2668)) -> bytes:
    return encoded(stripes(size), "PNG")


async def upload(staff, data: bytes, name: str = "spring.png", csrf: bool = True):
    return await staff.post(BACKGROUNDS, files={"background": (name, data, "image/png")}, csrf=csrf)


async def uploaded(staff, data: bytes) -> str:
    """The id of a picture uploaded through the form, from where the upload sends the browser."""
    answer = await upload(staff, data)
    assert answer.status_code == 303, answer.text
    return re.fullmatch(r"/admin/posters\?uploaded=([0-9a-f]{24})", answer.headers["Location"])[1]


def listed(page: str) -> list[str]:
    return _LISTED.findall(page)


async def audit_entries(server, action: str) -> list[dict]:
    return await server.runtime.db["audit_log"].find({"action": action}).to_list()


async def test_the_page_shows_the_templates_of_the_poster_settings(server):
    await server.runtime.merchant_settings.put(PosterSettings.from_dict({
        "templates": {"spring": {"design": "fresh", "headline": "春季大促", "version": 3}},
        "default_template": "spring"}))
    operator = await staff_client(server, "operator")
    page = await operator.get(POSTERS)
    assert page.status_code == 200
    assert 'data-template="spring"' in page.text and "春季大促" in page.text and "清新蓝" in page.text
    assert 'data-template="classic"' not in page.text
    assert "/admin/settings/posters" not in page.text  # an operator may not change the settings themselves


async def test_a_promoters_poster_is_previewed_as_they_get_it(server):
    member = await add_member(server.runtime, nickname="春")
    operator = await staff_client(server, "operator")
    page = await operator.get(POSTERS, member_id=member["_id"], template="fresh")
    assert page.status_code == 200
    image_path = f"{POSTERS}/members/{member['_id']}/poster?template=fresh"
    assert f'src="{image_path}"' in page.text

    image = await operator.http.get(image_path)
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).size == (750, 1334)
    merchants = await server.merchant_get(f"/api/merchant/v1/members/{member['_id']}/poster", template="fresh")
    assert merchants.content == image.content


async def test_a_poster_that_cannot_be_had_is_said_beside_the_input(server):
    frozen = await add_member(server.runtime, nickname="冻", frozen=True)
    owner = await staff_client(server, "owner")
    cases = [({"member_id": "nobody"}, "member_id", "找不到该会员"),
             ({"member_id": frozen["_id"]}, "member_id", "may not be an upline"),
             ({"member_id": frozen["_id"], "template": "missing"}, "template", "no poster template")]
    for query, field, words in cases:
        page = await owner.get(POSTERS, **query)
        assert words in FormReader(page.text).field_errors[field], query
        assert 'id="poster-image"' not in page.text
    assert (await owner.http.get(f"{POSTERS}/members/nobody/poster")).status_code == 404
    assert (await owner.http.get(f"{POSTERS}/members/{frozen['_id']}/poster")).status_code == 403


async def test_a_background_is_uploaded_listed_served_and_audited(server):
    operator = await staff_client(server, "operator")
    background_id = await uploaded(operator, png())
    page = await operator.get(POSTERS, uploaded=background_id)
    assert f"背景图已上传：{background_id}" in page.text
    assert listed(page.text) == [background_id]

    picture = await operator.http.get(f"{BACKGROUNDS}/{background_id}")
    assert picture.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(picture.content)).size == (750, 1334)  # shrunk to cover the canvas, as the API does
    [entry] = await audit_entries(server, "poster.background_add")
    assert entry["actor"] == {"kind": "staff", "name": "operator1", "role": "operator"}
    assert entry["target"] == {"kind": "poster_background", "id": background_id}
    assert entry["after"] == {"content_type": "image/jpeg", "width": 750, "height": 1334,
                              "uploaded_bytes": len(png())}


async def test_a_bad_or_missing_picture_is_refused_beside_the_file_input(server):
    owner = await staff_client(server, "owner")
    for data, words in [(b"GIF89a not really" * 40, "not a readable JPEG or PNG"),
                        (png((120, 120)), "outside the allowed dimensions"), (b"", "请选择")]:
        refused = await upload(owner, data)
        assert refused.status_code == 400
        assert words in FormReader(refused.text).field_errors["background"]
    assert await server.runtime.db.poster_backgrounds.count_documents({}) == 0
    assert await audit_entries(server, "poster.background_add") == []


async def test_a_picture_of_the_largest_size_fits_with_its_form_and_a_larger_body_is_refused_unread(server):
    owner = await staff_client(server, "owner")
    largest = await upload(owner, b"\xff\xd8\xff" + bytes(MAX_BACKGROUND_BYTES - 3))
    assert largest.status_code == 400  # read whole and judged: not a picture
    assert "not a readable JPEG or PNG" in FormReader(largest.text).field_errors["background"]

    # As a browser does with a large body: headers first, refused from its declared length.
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write((f"POST {BACKGROUNDS} HTTP/1.1\r\nHost: {host}\r\n"
                  f"Content-Type: multipart/form-data; boundary=x\r\n"
                  f"Content-Length: {BackgroundUploadHandler.max_body_bytes + 1}\r\nExpect: 100-continue\r\n\r\n").encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413")
    assert await server.runtime.db.poster_backgrounds.count_documents({}) == 0


async def test_a_background_in_use_is_kept_and_one_no_template_uses_is_deleted(server):
    runtime = server.runtime
    owner = await staff_client(server, "owner")
    background_id = await uploaded(owner, png())
    await runtime.merchant_settings.put(PosterSettings.from_dict({
        "templates": {"spring": {"design": "fresh", "background_id": background_id}}, "default_template": "spring"}))

    kept = await owner.post(f"{BACKGROUNDS}/{background_id}/delete")
    assert kept.status_code == 409
    assert "spring" in FormReader(kept.text).field_errors["background_id"]
    assert listed(kept.text) == [background_id]

    await runtime.merchant_settings.put(PosterSettings())
    deleted = await owner.post(f"{BACKGROUNDS}/{background_id}/delete")
    assert (deleted.status_code, deleted.headers["Location"]) == (303, f"{POSTERS}?deleted={background_id}")
    page = await owner.get(POSTERS, deleted=background_id)
    assert listed(page.text) == [] and f"背景图已删除：{background_id}" in page.text
    assert (await owner.http.get(f"{BACKGROUNDS}/{background_id}")).status_code == 404
    assert (await owner.post(f"{BACKGROUNDS}/{background_id}/delete")).status_code == 404
    [entry] = await audit_entries(server, "poster.background_delete")
    assert entry["target"] == {"kind": "poster_background", "id": background_id}
    assert entry["before"]["width"] == 750 and entry["after"] is None


async def test_backgrounds_are_paged_newest_first(server):
    owner = await staff_client(server, "owner")
    small = png((400, 700))
    ids = [await uploaded(owner, small) for _ in range(26)]
    first = await owner.get(POSTERS)
    assert listed(first.text) == ids[::-1][:24]
    older = re.search(r'href="/admin/posters\?before=([0-9a-f]{24})"', first.text)[1]
    assert listed((await owner.get(POSTERS, before=older)).text) == ids[1::-1]


async def test_finance_may_not_and_every_change_needs_the_csrf_token(server):
    finance = await staff_client(server, "finance")
    assert (await finance.get(POSTERS)).status_code == 403
    assert (await upload(finance, png())).status_code == 403
    operator = await staff_client(server, "operator")
    assert (await upload(operator, png(), csrf=False)).status_code == 403
    assert (await operator.post(f"{BACKGROUNDS}/{'0' * 24}/delete", csrf=False)).status_code == 403
    assert await server.runtime.db.poster_backgrounds.count_documents({}) == 0
