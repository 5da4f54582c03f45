"""Share posters end to end: asked for in chat or by the mini-program, codes
that scan to what WeChat said, caches that spare WeChat, the 5-second answer.

Real services throughout: the sandbox WeChat over HTTP, Redis, SecantusDB,
and the process pool that draws. Speed is measured by bench/poster.py; the
only timed assertions are the issue's "within 5 s".
"""

from __future__ import annotations

import asyncio
import io
import time
from datetime import timedelta
from types import SimpleNamespace

import zxingcpp
from PIL import Image

from bot.conversation import NOT_A_PROMOTER, POSTER_UNAVAILABLE
from bot.simulate import event_xml, parse_message_fields, text_xml
from bot.worker import job_handlers
from distribution.binding import BindingSettings, PromoterStatus, UplineEligibility
from distribution.poster_settings import PosterSettings
from distribution.scene import promoter_scene
from distribution.share_links import share_link, verify_share_signature
from sandbox import Fault
from services.posters import MEDIA_REUSE, POSTER_JOB, PosterService, ShareLinkSettings, open_avatar_fetcher
from services.poster_pool import PosterPool
from stores.posters import PosterStore
from tests.test_relations import add_member

THIRTY_DAYS = 30 * 86400
DEFAULT_TEMPLATE = PosterSettings().default_template  # whose code names it


def scanned(jpeg: bytes) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(Image.open(io.BytesIO(jpeg)))]


def calls(sandbox, endpoint: str) -> list:
    return sandbox.state.calls.received(endpoint=endpoint)


def uploaded(sandbox, media_id: str) -> bytes:
    media = sandbox.state.media.get(media_id)
    assert media is not None, f"the sandbox has no media {media_id}"
    return media.content


def parsed_reply(xml: str) -> SimpleNamespace | None:
    """A reply's type, text (text replies) and media_id (image replies); None for "success"."""
    if xml == "success":
        return None
    fields = parse_message_fields(xml)
    return SimpleNamespace(type=fields["MsgType"], content=fields.get("Content"),
                           media_id=(fields.get("Image") or {}).get("MediaId"))


async def ask(server, openid: str, text: str = "海报") -> SimpleNamespace | None:
    """The reply to a chat message."""
    response = await server.push(text_xml(openid, text))
    assert response.status_code == 200
    return parsed_reply(response.text)


async def use_posters(runtime, **values) -> None:
    await runtime.merchant_settings.put(PosterSettings.from_dict(values))


async def drain(runtime) -> int:
    return await runtime.queue.drain("test", job_handlers(runtime))


async def oa_url(runtime, member_id: str) -> str:
    """What WeChat's qrcode/create answers for this promoter's scene on the default template's poster (the sandbox
    answers the same every time)."""
    scene = promoter_scene(member_id, DEFAULT_TEMPLATE)
    return (await runtime.oa.qrcode.create(scene, expire_seconds=THIRTY_DAYS))["url"]


# --- in chat -----------------------------------------------------------------------------


async def test_asking_in_chat_replies_with_a_poster_whose_code_is_the_url_wechat_returned(server, sandbox):
    runtime = server.runtime
    promoter = await add_member(runtime, nickname="小王", oa_openid="o_poster")

    reply = await ask(server, "o_poster")

    assert reply.type == "image"
    poster = uploaded(sandbox, reply.media_id)
    assert Image.open(io.BytesIO(poster)).size == (750, 1334)
    (created,) = calls(sandbox, "cgi-bin/qrcode/create")
    assert created.body == {"action_name": "QR_STR_SCENE", "expire_seconds": THIRTY_DAYS,
                            "action_info": {"scene": {"scene_str": promoter_scene(promoter["_id"], DEFAULT_TEMPLATE)}}}
    assert scanned(poster) == [await oa_url(runtime, promoter["_id"])]


async def test_a_cached_poster_is_answered_without_any_wechat_call(server, sandbox):
    runtime = server.runtime
    await add_member(runtime, oa_openid="o_cached")
    first = await ask(server, "o_cached")
    sandbox.state.calls.clear()

    second = await ask(server, "o_cached")

    assert second.media_id == first.media_id
    assert sandbox.state.calls.received() == []
    assert (runtime.posters.renders, runtime.posters.uploads) == (1, 1)


async def test_the_menu_key_and_the_merchants_keywords_ask_for_the_poster(server):
    runtime = server.runtime
    await add_member(runtime, oa_openid="o_menu")
    response = await server.push(event_xml("o_menu", "CLICK", "POSTER"))
    assert parsed_reply(response.text).type == "image"

    await use_posters(runtime, keywords=["分享码", "Poster"])
    assert (await ask(server, "o_menu", " poster ")).type == "image"  # trimmed, any case
    assert (await ask(server, "o_menu", "分享码")).type == "image"
    assert (await ask(server, "o_menu", "海报")).content == runtime.settings.default_reply
    assert (await ask(server, "o_menu", "你好")).content == runtime.settings.default_reply


async def test_a_member_who_may_not_be_an_upline_is_told_so_and_gets_no_poster(server, sandbox):
    runtime = server.runtime
    await runtime.merchant_settings.put(BindingSettings(upline_eligibility=UplineEligibility.REVIEWED))
    await add_member(runtime, oa_openid="o_applicant")
    await add_member(runtime, oa_openid="o_approved", promoter_status=PromoterStatus.APPROVED.value)

    assert (await ask(server, "o_applicant")).content == NOT_A_PROMOTER
    assert (await ask(server, "o_approved")).type == "image"
    assert len(calls(sandbox, "cgi-bin/media/upload")) == 1


async def test_a_follower_unknown_to_the_server_becomes_a_member_and_gets_a_poster(server):
    reply = await ask(server, "o_stranger")
    assert reply.type == "image"
    assert await server.runtime.members.by_oa_openid("o_stranger") is not None


async def test_twenty_promoters_at_once_are_all_answered_within_5_s_with_one_token_fetch(server, sandbox):
    runtime = server.runtime
    openids = [f"o_crowd_{number}" for number in range(20)]
    for number, openid in enumerate(openids):
        await add_member(runtime, oa_openid=openid, nickname=f"推广员{number}")

    async def timed(openid: str) -> tuple[float, object]:
        started = time.perf_counter()
        reply = await ask(server, openid)
        return time.perf_counter() - started, reply

    answers = await asyncio.gather(*(timed(openid) for openid in openids))

    assert max(seconds for seconds, _ in answers) < 5.0
    assert [reply.type for _, reply in answers] == ["image"] * 20
    assert len({reply.media_id for _, reply in answers}) == 20
    assert len(calls(sandbox, "cgi-bin/stable_token")) == 1
    assert len(calls(sandbox, "cgi-bin/qrcode/create")) == 20


async def test_a_slow_upload_answers_success_within_5_s_and_the_image_follows_by_customer_service(server, sandbox):
    runtime = server.runtime
    member = await add_member(runtime, oa_openid="o_slow")
    sandbox.state.faults.add(Fault("cgi-bin/media/upload", delay_seconds=6))  # longer than the client waits (5 s)
    runtime.queue.base_backoff_seconds = 0  # retries due at once, so that drain() runs them

    started = time.perf_counter()
    response = await server.push(text_xml("o_slow", "海报"))
    assert time.perf_counter() - started < 5.0
    assert response.text == "success"

    # The job joins the upload under way; when that times out it fails, and its retry uploads again.
    await drain(runtime)
    (sent,) = calls(sandbox, "cgi-bin/message/custom/send")
    assert sent.body["touser"] == "o_slow" and sent.body["msgtype"] == "image"
    media_id = sent.body["image"]["media_id"]
    assert scanned(uploaded(sandbox, media_id)) == [await oa_url(runtime, member["_id"])]
    assert runtime.posters.renders == 1  # drawn once: only the upload was done again

    # Now cached: the next request is answered directly.
    assert (await ask(server, "o_slow")).media_id == media_id


async def test_the_poster_job_sends_once_per_request_however_often_it_runs(server, sandbox):
    runtime = server.runtime
    member = await add_member(runtime, oa_openid="o_job")
    job = {"member_id": member["_id"], "openid": "o_job", "template": "classic", "request": "m:42"}
    for _ in range(3):
        await runtime.queue.enqueue(POSTER_JOB, job)
    await runtime.queue.enqueue(POSTER_JOB, {**job, "request": "m:43"})  # another request: another send

    assert await drain(runtime) == 4
    assert len(calls(sandbox, "cgi-bin/message/custom/send")) == 2
    assert runtime.posters.uploads == 1


async def test_a_failed_send_is_retried_by_the_job(server, sandbox):
    runtime = server.runtime
    member = await add_member(runtime, oa_openid="o_retry")
    runtime.queue.base_backoff_seconds = 0
    sandbox.state.faults.add(Fault("cgi-bin/message/custom/send", errcode=-1))
    await runtime.queue.enqueue(POSTER_JOB, {"member_id": member["_id"], "openid": "o_retry", "template": None,
                                             "request": "m:1"})
    await drain(runtime)
    await asyncio.sleep(0.01)
    await drain(runtime)
    assert len(calls(sandbox, "cgi-bin/message/custom/send")) == 2  # refused once, then sent


# --- one member, many requests -----------------------------------------------------------


def second_process(runtime) -> PosterService:
    """What another server process has: its own service, pool and in-process state, the same stores."""
    return PosterService(
        PosterStore(runtime.db), runtime.members.store, runtime.merchant_settings, runtime.redis,
        runtime.settings.redis_prefix, runtime.oa, runtime.miniapp, runtime.queue, PosterPool(1),
        runtime.posters.font_path, runtime.posters.share_links, open_avatar_fetcher(runtime.settings),
    )


async def test_concurrent_requests_for_one_member_in_two_processes_draw_and_upload_once(server, sandbox):
    runtime = server.runtime
    member = await add_member(runtime, oa_openid="o_rush")
    other = second_process(runtime)
    try:
        media_ids = await asyncio.gather(*(service.media_id(member) for service in (runtime.posters, other) * 5))
    finally:
        await other.aclose()
    assert len(set(media_ids)) == 1
    assert runtime.posters.renders + other.renders == 1
    assert runtime.posters.uploads + other.uploads == 1
    assert len(calls(sandbox, "cgi-bin/qrcode/create")) == 1


# --- codes -------------------------------------------------------------------------------


async def session_get(server, member_id: str, path: str, **params: str):
    token = await server.runtime.sessions.issue(member_id)
    return await server.http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


async def test_a_mini_program_code_poster_scans_to_the_promoters_scene(server, sandbox):
    runtime = server.runtime
    await use_posters(runtime, code_type="miniapp_code", miniapp_page="pages/shop/index")
    member = await add_member(runtime, miniapp_openid="mp_promoter")

    response = await session_get(server, member["_id"], "/api/v1/poster")

    assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"
    assert scanned(response.content) == [promoter_scene(member["_id"])]  # the sandbox's code reads its scene
    (asked,) = calls(sandbox, "wxa/getwxacodeunlimit")
    assert asked.body["scene"] == promoter_scene(member["_id"])
    assert asked.body["page"] == "pages/shop/index" and asked.body["width"] == 360
    again = await session_get(server, member["_id"], "/api/v1/poster")
    assert again.content == response.content and len(calls(sandbox, "wxa/getwxacodeunlimit")) == 1


async def test_a_json_error_instead_of_a_mini_program_code_is_a_clear_503(server, sandbox):
    runtime = server.runtime
    await use_posters(runtime, code_type="miniapp_code")
    member = await add_member(runtime)
    sandbox.state.faults.add(Fault("wxa/getwxacodeunlimit", errcode=41030))  # JSON, with HTTP 200

    response = await server.merchant_get(f"/api/merchant/v1/members/{member['_id']}/poster")

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "wechat_unavailable" and "41030" in error["message"]
    assert await runtime.db.poster_images.count_documents({}) == 0


async def test_an_h5_share_link_poster_scans_to_a_signed_link(server):
    runtime = server.runtime
    await use_posters(runtime, code_type="h5_link")
    member = await add_member(runtime)

    response = await server.merchant_get(f"/api/merchant/v1/members/{member['_id']}/poster")

    (link,) = scanned(response.content)
    settings = runtime.settings
    assert link == share_link(settings.public_base_url, member["_id"], settings.share_link_secret, DEFAULT_TEMPLATE)
    signature = link.rpartition("sig=")[2]
    assert verify_share_signature(member["_id"], signature, settings.share_link_secret)


async def test_h5_posters_without_their_settings_are_unavailable_not_broken(server):
    runtime = server.runtime
    runtime.posters.share_links = ShareLinkSettings(public_base_url=None, secret=None)  # outside demo mode, unset
    await use_posters(runtime, code_type="h5_link")
    member = await add_member(runtime, oa_openid="o_h5")

    response = await server.merchant_get(f"/api/merchant/v1/members/{member['_id']}/poster")

    assert response.status_code == 503 and "SHARE_LINK_SECRET" in response.json()["error"]["message"]
    assert (await ask(server, "o_h5")).content == POSTER_UNAVAILABLE


async def test_permanent_codes_are_counted_against_wechats_limit_then_temporary_ones_are_used(server, sandbox):
    runtime = server.runtime
    await use_posters(runtime, permanent_qr=True)
    first, second = await add_member(runtime), await add_member(runtime)

    await runtime.posters.jpeg(first)
    (created,) = calls(sandbox, "cgi-bin/qrcode/create")
    assert created.body["action_name"] == "QR_LIMIT_STR_SCENE" and "expire_seconds" not in created.body
    assert (await runtime.db.poster_quota.find_one())["issued"] == 1

    await runtime.db.poster_quota.update_one({}, {"$set": {"issued": 100_000}})
    await runtime.posters.jpeg(second)
    assert calls(sandbox, "cgi-bin/qrcode/create")[-1].body["action_name"] == "QR_STR_SCENE"


async def test_a_temporary_code_is_renewed_before_it_expires_and_media_reused_for_under_3_days(server, sandbox):
    runtime = server.runtime
    member = await add_member(runtime)
    service = runtime.posters
    real_clock = service.clock
    media_id = await service.media_id(member)

    service.clock = lambda: real_clock() + MEDIA_REUSE - timedelta(minutes=1)
    assert await service.media_id(member) == media_id
    service.clock = lambda: real_clock() + MEDIA_REUSE + timedelta(minutes=1)
    assert await service.media_id(member) != media_id  # uploaded again
    assert len(calls(sandbox, "cgi-bin/qrcode/create")) == 1

    service.clock = lambda: real_clock() + timedelta(days=23)  # under a quarter of 30 days left
    poster = await service.jpeg(member)
    assert len(calls(sandbox, "cgi-bin/qrcode/create")) == 2
    assert scanned(poster) == [await oa_url(runtime, member["_id"])]


# --- templates ---------------------------------------------------------------------------


async def test_bumping_a_template_version_redraws_without_asking_wechat_for_a_new_code(server, sandbox):
    runtime = server.runtime
    member = await add_member(runtime)
    first = await runtime.posters.jpeg(member)
    await use_posters(runtime, templates={"classic": {"version": 2}, "fresh": {"design": "fresh"}})

    second = await runtime.posters.jpeg(member)

    assert runtime.posters.renders == 2
    assert scanned(second) == scanned(first)
    assert len(calls(sandbox, "cgi-bin/qrcode/create")) == 1


async def test_each_template_is_its_own_poster_and_an_unknown_one_is_refused(server):
    runtime = server.runtime
    member = await add_member(runtime)
    classic = await server.merchant_get(f"/api/merchant/v1/members/{member['_id']}/poster", template="classic")
    fresh = await server.merchant_get(f"/api/merchant/v1/members/{member['_id']}/poster", template="fresh")
    # Each template's code names it, so that the funnel counts scans per template.
    assert classic.content != fresh.content and scanned(classic.content) != scanned(fresh.content)
    assert scanned(classic.content) == [await oa_url(runtime, member["_id"])]

    unknown = await server.merchant_get(f"/api/merchant/v1/members/{member['_id']}/poster", template="nope")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["field"] == "template" and "classic" in unknown.json()["error"]["message"]


def region(jpeg: bytes, box) -> Image.Image:
    return Image.open(io.BytesIO(jpeg)).convert("L").crop(box.corners)


def differs(first: Image.Image, second: Image.Image) -> bool:
    """More than JPEG noise apart."""
    return sum(abs(a - b) for a, b in zip(first.tobytes(), second.tobytes())) / (first.width * first.height) > 3


async def test_chinese_nickname_and_headline_draw_real_glyphs_not_boxes(server):
    runtime = server.runtime
    await use_posters(runtime, templates={"a": {"headline": "好物分享赚佣金"}, "b": {"headline": "金佣赚享分物好"}},
                      default_template="a")
    one, other = await add_member(runtime, nickname="张三丰"), await add_member(runtime, nickname="丰三张")
    posters = {(member["_id"], template): await runtime.posters.jpeg(member, template)
               for member in (one, other) for template in ("a", "b")}
    template = (await runtime.posters.plan(one, "a")).template

    # Missing glyphs all draw the same box: the same characters in another order would look the same.
    nickname = template.nickname
    assert differs(region(posters[one["_id"], "a"], nickname), region(posters[other["_id"], "a"], nickname))
    headline = template.headline_box
    assert differs(region(posters[one["_id"], "a"], headline), region(posters[one["_id"], "b"], headline))


# --- avatars -----------------------------------------------------------------------------


AVATAR = "mmopen/avatar"  # where the sandbox serves its users' avatars


async def test_the_avatar_is_downloaded_once_and_drawn_else_an_initial(server, sandbox):
    runtime = server.runtime
    pictured = await add_member(runtime, nickname="王", avatar_url=f"{sandbox.base_url}/{AVATAR}?user=wang")
    plain = await add_member(runtime, nickname="王")

    with_picture = await runtime.posters.jpeg(pictured, "classic")
    await runtime.posters.jpeg(pictured, "fresh")
    without = await runtime.posters.jpeg(plain, "classic")

    assert len(calls(sandbox, AVATAR)) == 1
    avatar_box = (await runtime.posters.plan(plain, "classic")).template.avatar
    assert differs(region(with_picture, avatar_box), region(without, avatar_box))


async def test_a_slow_avatar_is_given_up_on_and_the_initial_is_drawn(server, sandbox):
    runtime = server.runtime
    sandbox.state.faults.add(Fault(AVATAR, delay_seconds=3))
    slow = await add_member(runtime, nickname="李", avatar_url=f"{sandbox.base_url}/{AVATAR}?user=li")
    plain = await add_member(runtime, nickname="李")
    poster = await runtime.posters.jpeg(slow)
    assert len(calls(sandbox, AVATAR)) == 1
    # Had the fetch waited for the picture, the poster would show it instead of the initial.
    avatar_box = (await runtime.posters.plan(plain)).template.avatar
    assert not differs(region(poster, avatar_box), region(await runtime.posters.jpeg(plain), avatar_box))


def test_wechat_avatars_are_asked_for_at_132_px():
    from services.posters import wechat_avatar_url

    assert wechat_avatar_url("https://thirdwx.qlogo.cn/mmopen/vi_32/abc/0") == "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"
    assert wechat_avatar_url("https://wx.qlogo.cn/mmhead/abc/640?x=1") == "https://wx.qlogo.cn/mmhead/abc/132?x=1"
    assert wechat_avatar_url("https://example.com/a/0") == "https://example.com/a/0"
