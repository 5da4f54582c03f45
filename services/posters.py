"""Every promoter's share poster: code, avatar, drawing, caches and upload.

A poster is decided by a `PosterPlan` (member, template and version, code
slot, nickname and avatar), then found in the caches or made:

1. the code (`_code`), naming the promoter and the template: an
   official-account parametric QR whose `url` is kept per member and
   template in MongoDB until a quarter of its life is left (then a new one
   is asked for), a mini-program code kept likewise, or a signed H5 link
   computed on the spot;
2. the avatar, fetched with a short time limit and kept in Redis;
3. the drawing, in the process pool (`PosterPool`), stored in MongoDB;
4. for chat, the upload as temporary media, whose `media_id` is kept with
   the poster and reused for 2.5 of WeChat's 3 days.

A second request for the same poster reads one MongoDB document and makes no
WeChat call. Concurrent requests for one poster make it once: within a
process they share one task, across processes one holds a Redis lock per
(member, template) while the others wait for the lock to go and then read
what it made.

In chat WeChat waits 5 s for an answer: `for_chat` gives the poster until
`deadline` (4 s after the push arrived) and otherwise records the poster as
owed and queues a `POSTER_JOB` that sends it as a customer-service message
once it is ready; the work in progress is not lost, the job waits for it. It
is sent at most once per request (the job claims the record), and a record
whose job was lost is queued again by the sweep (`requeue_owed`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis

from wechat import WeChatClient, WeChatError, WeChatRateLimited, WeChatUnavailable
from distribution import errors
from distribution.binding import BindingSettings, may_be_upline
from distribution.content import ContentSettings
from distribution.poster_settings import PERMANENT_QR_LIMIT, CodeType, PosterSettings, TemplateChoice
from distribution.scene import is_valid_miniapp_scene, promoter_scene
from distribution.share_links import share_link
from posters.avatar_fetch import AvatarFetcher, on_loopback
from posters.backgrounds import MAX_BACKGROUND_BYTES, BadBackground
from posters.fonts import FontNotFound, find_cjk_font
from posters.render import PosterRequest
from posters.templates import BUILTIN_TEMPLATES, PosterTemplate
from services.merchant_settings import MerchantSettings
from services.outbound import outbound_tls
from services.poster_pool import PosterPool
from services.rate_limits import RateLimitService
from settings import Settings, SettingsError
from stores.job_queue import JobQueue, RetryLater
from stores.locks import held_once
from stores.members import MemberStore
from stores.posters import PosterStore, image_id

log = logging.getLogger(__name__)

POSTER_JOB = "send_poster"

REPLY_SECONDS = 4.0  # of WeChat's 5: what is left covers decoding, de-duplication and the network
MEDIA_REUSE = timedelta(days=2, hours=12)  # temporary media live 3 days
CODE_RENEW_FRACTION = 0.25  # a temporary QR code is replaced once only this much of its life is left
FOREVER = datetime(9999, 1, 1, tzinfo=timezone.utc)  # "never renewed": permanent codes, mini-program codes
LOCK_SECONDS = 30.0  # outlives a slow drawing plus two WeChat calls; a crashed holder's lock frees itself
LOCK_WAIT_SECONDS = 35.0
LOCK_POLL_SECONDS = 0.05
MAKING_PER_WORKER = 2
DELIVERY_SWEEP_AFTER = timedelta(minutes=5)  # a poster still owed then had its job lost: queued again
CUSTOMER_SERVICE_WINDOW = timedelta(hours=48)  # after the user last wrote, WeChat refuses customer-service messages

AVATAR_TIMEOUT_SECONDS = 1.5
AVATAR_MAX_BYTES = 1024 * 1024
AVATAR_CACHE_SECONDS = 7 * 86400
AVATAR_MISS_SECONDS = 600  # an avatar that failed is not tried again for this long
# WeChat serves an avatar at any of these sizes, chosen by the last path segment; 132 px fits the template.
WECHAT_AVATAR_HOST = ".qlogo.cn"
WECHAT_AVATAR_SIZES = frozenset({"0", "46", "64", "96", "132", "640"})
WECHAT_AVATAR_SIZE = "132"

INVALID_MEDIA_ID = 40007
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
BACKGROUNDS_PAGE = 24

# The most any built-in canvas needs: uploaded backgrounds are shrunk to cover this.
CANVAS_SIZE = (max(t.size[0] for t in BUILTIN_TEMPLATES.values()), max(t.size[1] for t in BUILTIN_TEMPLATES.values()))

class PosterError(errors.DomainError):
    """Why a poster cannot be had; each kind is also the `distribution.errors` kind an API answers it as."""


class UnknownTemplate(PosterError, errors.Invalid):
    code = "unknown_template"

    def __init__(self, message: str):
        super().__init__(message, field="template")


class NotAPromoter(PosterError, errors.Forbidden):
    """The merchant's rules do not let this member be an upline (or they are frozen)."""

    code = "not_a_promoter"


class PosterUnavailable(PosterError, errors.Unavailable):
    """The deployment cannot make this kind of poster (e.g. H5 links without their settings)."""

    code = "poster_unavailable"


class PosterBusy(PosterError, errors.Unavailable):
    """Another process holds the poster's lock for too long."""

    code = "poster_busy"


class RefusedBackground(errors.Invalid):
    """An uploaded background is not a picture we can use; the message says why."""

    code = "bad_image"

    def __init__(self, message: str):
        super().__init__(message, field="body")


class BackgroundInUse(errors.Conflict):
    code = "background_in_use"

    def __init__(self, message: str):
        super().__init__(message, field="background_id")


@dataclass(frozen=True)
class PosterPlan:
    """Everything that decides which picture a member's poster is."""

    member_id: str
    nickname: str | None
    avatar_url: str | None
    template_id: str
    template: PosterTemplate
    slot: str  # which code: "oa_qr:temporary:<template>", "oa_qr:permanent:<template>",
    # "miniapp:<page>:<width>:<template>", "h5"
    settings: PosterSettings

    @property
    def scene(self) -> str:
        """What the code says: the promoter, and the template, so that the funnel counts scans per template."""
        return promoter_scene(self.member_id, self.template_id)

    @property
    def person(self) -> str:
        """Changes when the promoter's name or picture does: their poster is redrawn."""
        return _digest(f"{self.nickname or ''}\x00{self.avatar_url or ''}", 16)

    @property
    def key(self) -> tuple[str, ...]:
        return self.member_id, self.template.cache_key, self.slot, self.person


@dataclass(frozen=True)
class Code:
    identity: str  # what the code says: a different code is a different poster
    renew_at: datetime
    qr_text: str | None = None
    qr_image: bytes | None = None


@dataclass(frozen=True)
class ShareLinkSettings:
    public_base_url: str | None
    secret: str | None


class PosterService:
    def __init__(
        self,
        store: PosterStore,
        members: MemberStore,
        merchant_settings: MerchantSettings,
        redis: Redis,
        key_prefix: str,
        oa: WeChatClient,
        miniapp: WeChatClient,
        queue: JobQueue,
        pool: PosterPool,
        font_path: str,
        share_links: ShareLinkSettings,
        avatars: AvatarFetcher,
        clock: Callable[[], datetime] | None = None,
        limits: RateLimitService | None = None,
    ):
        self.store = store
        self.members = members
        self.merchant_settings = merchant_settings
        self.redis = redis
        self.key_prefix = key_prefix
        self.oa = oa
        self.miniapp = miniapp
        self.queue = queue
        self.pool = pool
        self.font_path = font_path
        self.share_links = share_links
        self.avatars = avatars
        self.limits = limits  # None: redrawn whenever the member changes (tools, benchmarks)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._flights: dict[tuple[str, ...], asyncio.Task] = {}
        # Posters made at once by this process: enough to keep every drawing process busy, few enough
        # that a burst of requests never queues more than a few tasks' work ahead of everything else
        # the event loop serves (each costs about a millisecond of WeChat HTTP, BSON and pickling).
        self._making = asyncio.Semaphore(MAKING_PER_WORKER * pool.workers)
        self._templates: dict[tuple[str, TemplateChoice], PosterTemplate] = {}
        self._backgrounds: dict[str, bytes] = {}
        self.renders = 0  # posters drawn by this process
        self.uploads = 0  # posters uploaded by this process

    async def aclose(self) -> None:
        flights = list(self._flights.values())
        for flight in flights:
            flight.cancel()
        await asyncio.gather(*flights, return_exceptions=True)
        await self.avatars.aclose()
        await self.pool.aclose()

    # --- what callers ask ------------------------------------------------------------

    async def settings(self) -> PosterSettings:
        return await self.merchant_settings.get(PosterSettings)

    async def is_keyword(self, text: str | None) -> bool:
        """Whether a chat message asks for a poster (the merchant's keywords)."""
        return (await self.settings()).is_keyword(text)

    async def jpeg(self, member: dict, template_id: str | None = None) -> bytes:
        """The member's poster as JPEG (the mini-program's GET /api/v1/poster)."""
        plan = await self.plan(member, template_id)
        return await self._poster(plan, media=False)

    async def media_id(self, member: dict, template_id: str | None = None) -> str:
        """The `media_id` of the member's poster uploaded as temporary media."""
        plan = await self.plan(member, template_id)
        return await self._poster(plan, media=True)

    async def for_chat(self, member: dict, openid: str, request_id: str, deadline: float,
                       template_id: str | None = None) -> str | None:
        """The poster's `media_id` if it is ready by `deadline` (the loop's time); else None, and a job
        sends it by customer-service message as soon as it is. PosterError when there is none to send."""
        plan = await self.plan(member, template_id)
        try:
            async with asyncio.timeout_at(deadline):
                return await self._poster(plan, media=True)
        except TimeoutError:
            log.info("poster of %s not ready in time: sent when it is", plan.member_id)
        except PosterUnavailable:
            raise
        except Exception:  # noqa: BLE001 - the job tries again (with backoff) and dead-letters what keeps failing
            log.exception("poster of %s failed: the job tries again", plan.member_id)
        job = {"member_id": plan.member_id, "openid": openid, "template": plan.template_id, "request": request_id}
        await self.store.owe(_owed(job, self.clock()))
        await self.queue.enqueue(POSTER_JOB, job)
        return None

    async def deliver(self, payload: dict[str, Any]) -> None:
        """POSTER_JOB: send the poster by customer-service message, once per request however often
        the job runs."""
        now = self.clock()
        owed = _owed(payload, now)
        await self.store.owe(owed)  # already, unless the job was queued by other means than `for_chat`
        member = await self.members.get(payload["member_id"])
        if member is None:
            log.warning("poster job for unknown member %s dropped", payload["member_id"])
            return await self.store.finish_delivery(owed["_id"], "unknown member", now)
        try:
            try:
                plan = await self.plan(member, payload.get("template"))
            except UnknownTemplate:  # removed since it was asked for: the default one
                plan = await self.plan(member, None)
        except (NotAPromoter, PosterUnavailable) as refusal:
            log.info("poster job for %s dropped: %s", payload["member_id"], refusal)
            return await self.store.finish_delivery(owed["_id"], f"dropped: {refusal}", now)
        media_id = await self._poster(plan, media=True)
        # Claimed before sending: a job redone after a crash sends at most once.
        if not await self.store.claim_delivery(owed["_id"], now):
            return
        try:
            await self.oa.message.send_image(payload["openid"], media_id)
        except WeChatError as error:
            await self.store.release_delivery(owed["_id"])
            if error.errcode == INVALID_MEDIA_ID:
                await self.store.forget_media(media_id)  # gone before its time: the retry uploads again
            if isinstance(error, WeChatRateLimited):
                raise RetryLater(60, str(error)) from error
            raise
        await self.store.finish_delivery(owed["_id"], "sent", self.clock())

    async def requeue_owed(self, now: datetime) -> int:
        """The sweep of deliveries: posters still owed whose job was lost are queued again, while WeChat still
        lets a customer-service message reach the user; while a backlog drains, only those due before it
        (`JobQueue.sweep_cutoff`): a delivery's job may be waiting behind it."""
        due = await self.store.due_deliveries(await self.queue.sweep_cutoff(now, DELIVERY_SWEEP_AFTER),
                                              now - CUSTOMER_SERVICE_WINDOW, limit=100)
        if due:
            await self.store.postpone_deliveries([owed["_id"] for owed in due], now + DELIVERY_SWEEP_AFTER)
        for owed in due:
            await self.queue.enqueue(POSTER_JOB, {key: owed[key] for key in ("member_id", "openid", "template",
                                                                               "request")})
        return len(due)

    # --- backgrounds -----------------------------------------------------------------

    async def add_background(self, data: bytes) -> dict[str, Any]:
        """Check and store an uploaded background; the stored document, or RefusedBackground saying why."""
        if len(data) > MAX_BACKGROUND_BYTES:
            raise RefusedBackground(f"background image refused: {len(data):,} bytes is more than "
                                    f"the {MAX_BACKGROUND_BYTES:,} allowed")
        try:
            prepared = await self.pool.prepare_background(data, CANVAS_SIZE)
        except BadBackground as refused:
            raise RefusedBackground(str(refused)) from None
        fields = {"data": prepared.data, "content_type": prepared.content_type, "width": prepared.width,
                  "height": prepared.height, "uploaded_bytes": len(data), "created_at": self.clock()}
        return {"_id": await self.store.add_background(fields), **fields}

    async def background(self, background_id: str) -> dict | None:
        return await self.store.background(background_id)

    async def backgrounds(self, before_id: str | None = None, limit: int = BACKGROUNDS_PAGE) -> list[dict]:
        """The uploaded backgrounds, newest first, without their pictures."""
        return await self.store.backgrounds_page(before_id, limit)

    async def delete_background(self, background_id: str) -> dict:
        """Remove a background no template uses; what was removed, without its picture. NotFound, or
        BackgroundInUse naming the templates that still draw it."""
        using = [template_id for template_id, choice in (await self.settings()).templates.items()
                 if choice.background_id == background_id]
        if using:
            raise BackgroundInUse(f"poster templates {', '.join(using)} use background {background_id}: "
                                  f"choose another background for them first")
        found = await self.store.background(background_id)
        if found is None or not await self.store.delete_background(background_id):
            raise errors.NotFound(f"no poster background {background_id}")
        self._backgrounds.pop(background_id, None)
        return {key: value for key, value in found.items() if key != "data"}

    # --- deciding the poster ---------------------------------------------------------

    async def check_promoter(self, member: dict) -> None:
        """NotAPromoter unless the merchant's rules let `member` be an upline: what a poster or a share code of
        theirs would bind its scanners to."""
        binding = await self.merchant_settings.get(BindingSettings)
        if member.get("frozen") or not may_be_upline(await self.members.candidate(member, binding), binding):
            raise NotAPromoter(f"member {member['_id']} may not be an upline under the merchant's rules")

    async def plan(self, member: dict, template_id: str | None = None) -> PosterPlan:
        settings = await self.settings()
        template_id = template_id or settings.default_template
        choice = settings.templates.get(template_id)
        if choice is None:
            raise UnknownTemplate(f"no poster template {template_id!r}; there are: {', '.join(settings.templates)}")
        await self.check_promoter(member)
        template = await self._template(template_id, choice)
        return PosterPlan(
            member_id=member["_id"],
            # The nickname is the member's own choice and nobody reviews it: one with a sensitive word is not printed.
            nickname=(await self.merchant_settings.get(ContentSettings)).printable_name(member.get("nickname")),
            avatar_url=member.get("avatar_url"),
            template_id=template_id,
            template=template,
            slot=_slot(settings, template, template_id),
            settings=settings,
        )

    async def _template(self, template_id: str, choice: TemplateChoice) -> PosterTemplate:
        template = self._templates.get((template_id, choice))
        if template is not None:
            return template
        design = BUILTIN_TEMPLATES[choice.design]
        background = await self._background_data(choice.background_id) if choice.background_id else None
        # The id carries what the merchant chose, so a change redraws even without a version bump:
        # the worker processes cache canvases by id and version.
        chosen = _digest(f"{choice.design}|{choice.headline}|{choice.background_id}|{background is not None}", 8)
        template = dataclasses.replace(
            design, id=f"{template_id}.{chosen}", version=choice.version,
            headline=choice.headline or design.headline, background=background,
        )
        if choice.background_id is None or background is not None:
            if len(self._templates) >= 64:
                self._templates.clear()
            self._templates[(template_id, choice)] = template
        return template

    async def _background_data(self, background_id: str) -> bytes | None:
        data = self._backgrounds.get(background_id)
        if data is None:
            stored = await self.store.background(background_id)
            if stored is None:
                log.warning("poster background %s is missing: the design's own is drawn", background_id)
                return None
            data = bytes(stored["data"])
            if len(self._backgrounds) >= 16:
                self._backgrounds.pop(next(iter(self._backgrounds)))
            self._backgrounds[background_id] = data
        return data

    # --- finding or making it --------------------------------------------------------

    async def _poster(self, plan: PosterPlan, media: bool) -> Any:
        found = await self._found(plan, media, self.clock())
        if found is not None:
            return found
        kind = "media" if media else "jpeg"
        flight = self._flight((*plan.key, kind), lambda: self._locked(plan, media))
        # Shielded: a caller that stops waiting (the chat's deadline) leaves it running for the others.
        return await asyncio.shield(flight)

    async def _found(self, plan: PosterPlan, media: bool, now: datetime) -> Any:
        poster = await self.store.current(plan.member_id, plan.template_id, plan.template.cache_key, plan.slot,
                                          plan.person, now, with_jpeg=not media)
        if poster is None:
            return None
        if not media:
            return bytes(poster["jpeg"])
        return poster["media_id"] if _media_fresh(poster, now) else None

    def _flight(self, key: tuple[str, ...], make: Callable[[], Awaitable[Any]]) -> asyncio.Task:
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.create_task(make())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        return flight

    def _landed(self, key: tuple[str, ...], flight: asyncio.Task) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled() and flight.exception() is not None:
            # Retrieved here, so a failure nobody waited for any more (the chat moved on) is still told.
            log.info("poster %s failed: %r", key[0], flight.exception())

    async def _locked(self, plan: PosterPlan, media: bool) -> Any:
        lock = f"{self.key_prefix}poster:lock:{plan.member_id}:{plan.template.cache_key}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCK_WAIT_SECONDS
        while True:
            async with held_once(self.redis, lock, LOCK_SECONDS) as held:
                if held:
                    async with self._making:
                        return await self._make(plan, media)
            while await self.redis.exists(lock):
                if loop.time() > deadline:
                    raise PosterBusy(f"the poster of {plan.member_id} is still being made elsewhere")
                await asyncio.sleep(LOCK_POLL_SECONDS)
            found = await self._found(plan, media, self.clock())
            if found is not None:
                return found

    async def _make(self, plan: PosterPlan, media: bool) -> Any:
        now = self.clock()
        poster = await self.store.current(plan.member_id, plan.template_id, plan.template.cache_key, plan.slot,
                                          plan.person, now, with_jpeg=True)
        if poster is None:
            poster = await self._kept_instead_of_redrawing(plan, now) or await self._draw(plan, now)
        if not media:
            return bytes(poster["jpeg"])
        if _media_fresh(poster, now):
            return poster["media_id"]
        uploaded = await self.oa.media.upload("image", f"poster-{poster['picture'][:16]}.jpg", bytes(poster["jpeg"]))
        self.uploads += 1
        await self.store.set_media(poster["_id"], poster["picture"], uploaded["media_id"], now)
        return uploaded["media_id"]

    async def _kept_instead_of_redrawing(self, plan: PosterPlan, now: datetime) -> dict | None:
        """The member's poster as last drawn, served again when only their name or picture changed since and
        they have used up the day's redraws. A first drawing, the merchant's change of template and a code to
        renew are always drawn."""
        if self.limits is None:
            return None
        kept = await self.store.kept(plan.member_id, plan.template_id)
        if kept is None or kept["template_key"] != plan.template.cache_key or kept["slot"] != plan.slot \
                or kept["code_renew_at"] <= now:
            return None
        if await self.limits.may_redraw_poster(plan.member_id):
            return None
        log.info("poster of %s not redrawn: the day's redraws are used", plan.member_id)
        return kept

    async def _draw(self, plan: PosterPlan, now: datetime) -> dict:
        code = await self._code(plan, now)
        avatar = await self._avatar(plan.avatar_url)
        request = PosterRequest(plan.template, qr_text=code.qr_text, qr_image=code.qr_image,
                                nickname=plan.nickname, avatar=avatar, font_path=self.font_path)
        jpeg = await self.pool.render(request)
        self.renders += 1
        poster = {
            "_id": image_id(plan.member_id, plan.template_id),
            "picture": _digest("|".join((*plan.key, code.identity)), 32),
            "member_id": plan.member_id,
            "template": plan.template_id,
            "template_key": plan.template.cache_key,
            "slot": plan.slot,
            "person": plan.person,
            "code": code.identity,
            "code_renew_at": code.renew_at,
            "jpeg": jpeg,
            "created_at": now,
        }
        await self.store.save(poster)
        return poster

    # --- the code --------------------------------------------------------------------

    async def _code(self, plan: PosterPlan, now: datetime) -> Code:
        settings = plan.settings
        if settings.code_type is CodeType.H5_LINK:
            links = self.share_links
            if not (links.public_base_url and links.secret):
                raise PosterUnavailable("H5 share-link posters need PUBLIC_BASE_URL and SHARE_LINK_SECRET to be set")
            url = share_link(links.public_base_url, plan.member_id, links.secret, plan.template_id)
            return Code(url, FOREVER, qr_text=url)
        stored = await self.store.code(plan.member_id, plan.slot)
        if stored is None or stored["renew_at"] <= now:
            if settings.code_type is CodeType.MINIAPP_CODE:
                stored = await self._miniapp_code(plan, now)
            elif settings.permanent_qr:
                stored = await self._permanent_qr(plan, now)
            else:
                stored = await self._temporary_qr(plan, now)
            await self.store.save_code(plan.member_id, plan.slot, stored)
        if "png" in stored:
            return Code(stored["identity"], stored["renew_at"], qr_image=bytes(stored["png"]))
        return Code(stored["url"], stored["renew_at"], qr_text=stored["url"])

    async def _temporary_qr(self, plan: PosterPlan, now: datetime) -> dict[str, Any]:
        asked = plan.settings.qr_expire_days * 86400
        answer = await self.oa.qrcode.create(plan.scene, expire_seconds=asked)
        lifetime = int(answer.get("expire_seconds") or asked)
        return {"url": answer["url"], "ticket": answer.get("ticket"), "permanent": False, "created_at": now,
                "expires_at": now + timedelta(seconds=lifetime),
                "renew_at": now + timedelta(seconds=lifetime * (1 - CODE_RENEW_FRACTION))}

    async def _permanent_qr(self, plan: PosterPlan, now: datetime) -> dict[str, Any]:
        if not await self.store.claim_permanent_qr(PERMANENT_QR_LIMIT):
            log.warning("all %d permanent QR codes are used: member %s gets a temporary one",
                        PERMANENT_QR_LIMIT, plan.member_id)
            return await self._temporary_qr(plan, now)
        try:
            answer = await self.oa.qrcode.create(plan.scene, permanent=True)
        except BaseException:
            await self.store.unclaim_permanent_qr()
            raise
        return {"url": answer["url"], "ticket": answer.get("ticket"), "permanent": True, "created_at": now,
                "expires_at": None, "renew_at": FOREVER}

    async def _miniapp_code(self, plan: PosterPlan, now: datetime) -> dict[str, Any]:
        scene = plan.scene
        if not is_valid_miniapp_scene(scene):  # a template id too long to fit beside the promoter's: left out
            scene = promoter_scene(plan.member_id)
        page = plan.settings.miniapp_page
        # Drawn at the width of the template's code box: pasted as it comes, never resized.
        image = await self.miniapp.miniapp.get_unlimited_code(scene, page, width=plan.template.qr.width)
        if not image.startswith(IMAGE_SIGNATURES):
            raise WeChatUnavailable(None, "getwxacodeunlimit answered with something that is not an image",
                                    "wxa/getwxacodeunlimit")
        return {"png": image, "identity": f"miniapp:{page}:{scene}:{_digest_bytes(image, 16)}", "created_at": now,
                "renew_at": FOREVER}

    # --- the avatar ------------------------------------------------------------------

    def check_avatar_url(self, url: str) -> None:
        """Invalid (naming `avatar_url`) unless `url` is on a host avatars are fetched from."""
        if not self.avatars.allows(url):
            raise errors.Invalid(f"avatars are taken only from {', '.join(self.avatars.allowed)} (http or https)",
                                 field="avatar_url")

    async def _avatar(self, url: str | None) -> bytes | None:
        """The picture at `url`, or None (the poster draws the nickname's initial instead)."""
        if not url or not self.avatars.allows(url):
            return None
        url = wechat_avatar_url(url)
        key = f"{self.key_prefix}poster:avatar:{_digest(url, 32)}"
        cached = await self.redis.get(key)
        if cached is not None:
            return cached or None
        picture = await self.avatars.fetch(url)
        await self.redis.set(key, picture or b"", ex=AVATAR_CACHE_SECONDS if picture else AVATAR_MISS_SECONDS)
        return picture


def open_poster_service(settings: Settings, store: PosterStore, members: MemberStore,
                        merchant_settings: MerchantSettings, redis: Redis, oa: WeChatClient,
                        miniapp: WeChatClient, queue: JobQueue, limits: RateLimitService | None = None) -> PosterService:
    """The service with its process pool; stops the start when no font draws Chinese."""
    try:
        font_path = find_cjk_font(settings.poster_font)
    except FontNotFound as missing:
        raise SettingsError("POSTER_FONT", str(missing)) from None
    return PosterService(
        store, members, merchant_settings, redis, settings.redis_prefix, oa, miniapp, queue,
        PosterPool(settings.poster_workers), font_path,
        ShareLinkSettings(settings.public_base_url, settings.share_link_secret),
        open_avatar_fetcher(settings), limits=limits,
    )


def open_avatar_fetcher(settings: Settings) -> AvatarFetcher:
    """Avatars from AVATAR_HOSTS, and from the sandbox WeChat when that is what the server talks to: a WeChat
    API on a loopback address is one (it serves its users' avatars), and WeChat's own never is."""
    api = settings.wechat_api_base
    return AvatarFetcher(settings.avatar_hosts, [api] if api and on_loopback(api) else [],
                         timeout_seconds=AVATAR_TIMEOUT_SECONDS, max_bytes=AVATAR_MAX_BYTES, verify=outbound_tls())


def _owed(job: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The record of a poster owed by customer-service message: one per member and request."""
    return {"_id": f"{job['member_id']}:{job['request']}", **{key: job.get(key) for key in
                                                              ("member_id", "openid", "template", "request")},
            "status": "pending", "due_at": now + DELIVERY_SWEEP_AFTER, "created_at": now}


def wechat_avatar_url(url: str) -> str:
    """A WeChat avatar URL asks for the 132 px picture, which the template pastes unscaled."""
    parts = urlsplit(url)
    if not (parts.hostname or "").endswith(WECHAT_AVATAR_HOST):
        return url
    head, _, size = parts.path.rpartition("/")
    if size not in WECHAT_AVATAR_SIZES:
        return url
    return urlunsplit(parts._replace(path=f"{head}/{WECHAT_AVATAR_SIZE}"))


def _slot(settings: PosterSettings, template: PosterTemplate, template_id: str) -> str:
    """A code per template: each names its template (`PosterPlan.scene`). A permanent one therefore takes one of
    WeChat's permanent codes per promoter and template (past the limit, temporary ones are made)."""
    if settings.code_type is CodeType.MINIAPP_CODE:
        return f"miniapp:{settings.miniapp_page}:{template.qr.width}:{template_id}"
    if settings.code_type is CodeType.H5_LINK:
        return "h5"
    return f"oa_qr:{'permanent' if settings.permanent_qr else 'temporary'}:{template_id}"


def _media_fresh(poster: dict, now: datetime) -> bool:
    return bool(poster.get("media_id")) and poster.get("media_at") is not None and now - poster["media_at"] < MEDIA_REUSE


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _digest_bytes(data: bytes, length: int) -> str:
    return hashlib.sha256(data).hexdigest()[:length]
