"""The console's posters page (海报): the templates of the poster settings, a promoter's poster as they get it,
and the background pictures, uploaded and deleted through the same service as the merchant API's."""

from __future__ import annotations

from pydantic import Field

from distribution.errors import Invalid
from distribution.staff import Permission
from handlers.console.base import ConsoleHandler
from handlers.console.shop_settings import CHOICE_WORDS
from posters.backgrounds import MAX_BACKGROUND_BYTES
from services.members import MemberNotFound
from services.posters import BACKGROUNDS_PAGE, BackgroundInUse, PosterError, RefusedBackground
from web.posters import BackgroundWriter, PosterQuery, PosterWriter

POSTERS_PAGE = "/admin/posters"
BACKGROUND_PATTERN = r"^[0-9a-f]{24}$"
BACKGROUND_ID = r"(?P<background_id>[0-9a-f]{24})"
BACKGROUND_FIELD = "background"
# The multipart framing around the picture (boundaries, part headers, the CSRF field) is far below this.
MULTIPART_ALLOWANCE = 64 * 1024


class PostersQuery(PosterQuery):
    member_id: str | None = Field(None, max_length=64, description="whose poster to preview")
    before: str | None = Field(None, pattern=BACKGROUND_PATTERN, description="backgrounds older than this one")
    uploaded: str | None = Field(None, pattern=BACKGROUND_PATTERN, description="the background just uploaded")
    deleted: str | None = Field(None, pattern=BACKGROUND_PATTERN, description="the background just deleted")

    def notice(self) -> str | None:
        if self.uploaded:
            return f"背景图已上传：{self.uploaded}"
        return f"背景图已删除：{self.deleted}" if self.deleted else None


class PosterPage(ConsoleHandler):
    permission = Permission.POSTERS

    async def render_posters(self, status: int = 200, errors: dict[str, str] | None = None) -> None:
        query = self.parse_query(PostersQuery)
        settings = await self.runtime.posters.settings()
        backgrounds = await self.runtime.posters.backgrounds(query.before)
        errors = dict(errors or {})
        previewed = None
        if query.member_id:
            previewed = await self._previewable(query, errors)
        older = backgrounds[-1]["_id"] if len(backgrounds) == BACKGROUNDS_PAGE else None
        self.render_page("posters.html", status=status, settings=settings, backgrounds=backgrounds, older=older,
                         query=query, previewed=previewed, errors=errors, notice=query.notice(), design_words=CHOICE_WORDS,
                         max_background_bytes=MAX_BACKGROUND_BYTES)

    async def _previewable(self, query: PostersQuery, errors: dict[str, str]) -> str | None:
        """The member whose poster the page shows, once the service agrees to draw it; else why not, in `errors`."""
        member = await self.runtime.members.get(query.member_id)
        if member is None:
            errors["member_id"] = "找不到该会员"
            return None
        try:
            await self.runtime.posters.plan(member, query.template)
        except PosterError as refused:
            errors["template" if refused.field == "template" else "member_id"] = refused.message
            return None
        return member["_id"]


class PostersPageHandler(PosterPage):
    async def get(self) -> None:
        await self.render_posters()


class PosterImageHandler(ConsoleHandler, PosterWriter):
    """The poster a promoter gets, drawn (or found in the caches) by the service the merchant API's preview uses."""

    permission = Permission.POSTERS

    async def get(self, member_id: str) -> None:
        member = await self.runtime.members.get(member_id)
        if member is None:
            raise MemberNotFound(f"no member {member_id}")
        await self.write_poster(member)


class BackgroundUploadHandler(PosterPage):
    max_body_bytes = MAX_BACKGROUND_BYTES + MULTIPART_ALLOWANCE

    async def post(self) -> None:
        uploaded = self.form_files().get(BACKGROUND_FIELD)
        try:
            if not uploaded or not uploaded[0].body:
                raise Invalid("请选择一张 JPEG 或 PNG 图片", field=BACKGROUND_FIELD)
            background = await self.runtime.posters.add_background(uploaded[0].body)
        except (Invalid, RefusedBackground) as refused:
            await self.render_posters(400, errors={BACKGROUND_FIELD: refused.message})
            return
        await self.audit("poster.background_add", "poster_background", background["_id"],
                         after=_described(background))
        # Shown by a GET, so that reloading the page does not upload the picture again.
        self.redirect(f"{POSTERS_PAGE}?uploaded={background['_id']}", status=303)


class BackgroundPictureHandler(ConsoleHandler, BackgroundWriter):
    permission = Permission.POSTERS

    async def get(self, background_id: str) -> None:
        await self.write_background(background_id)


class BackgroundDeleteHandler(PosterPage):
    async def post(self, background_id: str) -> None:
        try:
            removed = await self.runtime.posters.delete_background(background_id)
        except BackgroundInUse as refused:
            await self.render_posters(409, errors={"background_id": refused.message})
            return
        await self.audit("poster.background_delete", "poster_background", background_id, before=_described(removed))
        self.redirect(f"{POSTERS_PAGE}?deleted={background_id}", status=303)


def _described(background: dict) -> dict:
    """A background as the audit log keeps it: what it is, never the picture."""
    return {key: background[key] for key in ("content_type", "width", "height", "uploaded_bytes")}


ROUTES = [
    (POSTERS_PAGE, PostersPageHandler),
    (rf"{POSTERS_PAGE}/members/(?P<member_id>[^/]+)/poster", PosterImageHandler),
    (rf"{POSTERS_PAGE}/backgrounds", BackgroundUploadHandler),
    (rf"{POSTERS_PAGE}/backgrounds/{BACKGROUND_ID}", BackgroundPictureHandler),
    (rf"{POSTERS_PAGE}/backgrounds/{BACKGROUND_ID}/delete", BackgroundDeleteHandler),
]
