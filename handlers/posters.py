"""Posters over HTTP: the mini-program's own poster, the merchant's preview of
any member's, and the merchant's background pictures.

The poster settings themselves (templates, keywords, code type) are read and
replaced through the generic `GET|PUT /api/merchant/v1/settings/posters`.
"""

from __future__ import annotations

import tornado.web

from wechat import WeChatError
from web.base import ApiError, BaseHandler
from handlers.merchant import MERCHANT_SECURITY, MerchantHandler
from web.openapi import json_response, ref
from miniapp_api.auth import MINIAPP_SECURITY, MiniappHandler
from posters.backgrounds import MAX_BACKGROUND_BYTES, BadBackground
from services.posters import NotAPromoter, PosterBusy, PosterUnavailable, UnknownTemplate

BACKGROUND_TYPES = ("image/jpeg", "image/png")
MAX_TEMPLATE_PARAMETER = 32
POSTER_CACHE_CONTROL = "private, max-age=300"

_ERRORS = {
    400: "Invalid input", 401: "Missing or wrong token", 403: "The member may not be a promoter",
    404: "Not found", 413: "Body too large", 415: "Not a JPEG or PNG body",
    503: "WeChat did not answer, or this kind of poster is not configured",
}


def _errors(*statuses: int) -> dict:
    return {str(status): json_response(_ERRORS[status], ref("Error")) for status in statuses}


def _image(description: str, *media_types: str) -> dict:
    return {"description": description,
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in media_types}}


TEMPLATE_PARAMETER = {
    "name": "template", "in": "query", "required": False,
    "schema": {"type": "string", "maxLength": MAX_TEMPLATE_PARAMETER},
    "description": "a template id of the poster settings; default: their default_template",
}


class PosterJpegMixin(BaseHandler):
    """Answers a member's poster as JPEG, with the poster service's refusals as JSON errors."""

    async def write_poster(self, member: dict) -> None:
        template = self.get_query_argument("template", None)
        if template is not None and not 0 < len(template) <= MAX_TEMPLATE_PARAMETER:
            raise ApiError(400, "invalid", f"template must be 1-{MAX_TEMPLATE_PARAMETER} characters", field="template")
        try:
            jpeg = await self.runtime.posters.jpeg(member, template)
        except UnknownTemplate as unknown:
            raise ApiError(400, "invalid", str(unknown), field="template") from None
        except NotAPromoter as refused:
            raise ApiError(403, refused.code, str(refused)) from None
        except (PosterUnavailable, PosterBusy) as unavailable:
            raise ApiError(503, unavailable.code, str(unavailable)) from None
        except WeChatError as error:
            raise ApiError(503, "wechat_unavailable", f"WeChat did not give the poster's code: {error}") from None
        self.set_header("Content-Type", "image/jpeg")
        self.set_header("Cache-Control", POSTER_CACHE_CONTROL)
        self.finish(jpeg)


class MyPosterHandler(MiniappHandler, PosterJpegMixin):
    openapi = {
        "get": {
            "summary": "My share poster (JPEG, 750x1334), drawn once and cached per template and version",
            "security": MINIAPP_SECURITY,
            "parameters": [TEMPLATE_PARAMETER],
            "responses": {"200": _image("The poster", "image/jpeg"), **_errors(400, 401, 403, 503)},
        }
    }

    async def get(self) -> None:
        await self.write_poster(self.member)


class MemberPosterHandler(MerchantHandler, PosterJpegMixin):
    openapi = {
        "get": {
            "summary": "A member's share poster (JPEG), as the member gets it",
            "security": MERCHANT_SECURITY,
            "parameters": [TEMPLATE_PARAMETER],
            "responses": {"200": _image("The poster", "image/jpeg"), **_errors(400, 401, 403, 404, 503)},
        }
    }

    async def get(self, member_id: str) -> None:
        await self.write_poster(await self.member_or_404(member_id))


@tornado.web.stream_request_body
class BackgroundsHandler(MerchantHandler):
    """The body is streamed and counted, so an oversized upload is refused without being kept."""

    openapi = {
        "post": {
            "summary": "Upload a poster background: the picture itself as the body (not multipart)",
            "description": f"A JPEG or PNG of at most {MAX_BACKGROUND_BYTES:,} bytes, 200-8000 px a side and at "
                           "most 40 megapixels. It is turned upright and shrunk to just cover the 750x1334 canvas. "
                           "Refer to its id as templates.<id>.background_id in the poster settings.",
            "security": MERCHANT_SECURITY,
            "requestBody": {"required": True, "content": {media_type: {"schema": {"type": "string", "format": "binary"}}
                                                          for media_type in BACKGROUND_TYPES}},
            "responses": {"201": json_response("The stored background", ref("PosterBackground")),
                          **_errors(400, 401, 413, 415)},
        }
    }

    def initialize(self, runtime) -> None:  # type: ignore[override]
        super().initialize(runtime)
        self.body_parts: list[bytes] = []
        self.body_size = 0

    def prepare(self) -> None:
        super().prepare()
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_BACKGROUND_BYTES:
            raise self._too_large()

    def data_received(self, chunk: bytes) -> None:
        self.body_size += len(chunk)
        if self.body_size > MAX_BACKGROUND_BYTES:
            self.body_parts.clear()  # the excess is never kept
        else:
            self.body_parts.append(chunk)

    def _too_large(self) -> ApiError:
        return ApiError(413, "too_large", f"a background may be at most {MAX_BACKGROUND_BYTES:,} bytes", field="body")

    async def post(self) -> None:
        if self.body_size > MAX_BACKGROUND_BYTES:
            raise self._too_large()
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in BACKGROUND_TYPES:
            raise ApiError(415, "unsupported_media_type",
                           f"send the picture itself as the body, Content-Type {' or '.join(BACKGROUND_TYPES)}")
        data = b"".join(self.body_parts)
        if not data:
            raise ApiError(400, "invalid", "the body is empty: send the picture", field="body")
        try:
            background = await self.runtime.posters.add_background(data)
        except BadBackground as refused:
            raise ApiError(400, "bad_image", str(refused), field="body") from None
        self.set_header("Location", f"{self.request.path}/{background['id']}")
        self.write_json(background, status=201)


class BackgroundHandler(MerchantHandler):
    openapi = {
        "get": {
            "summary": "A stored poster background, as prepared",
            "security": MERCHANT_SECURITY,
            "responses": {"200": _image("The picture", *BACKGROUND_TYPES), **_errors(401, 404)},
        }
    }

    async def get(self, background_id: str) -> None:
        background = await self.runtime.posters.background(background_id)
        if background is None:
            raise ApiError(404, "not_found", f"no poster background {background_id}")
        self.set_header("Content-Type", background["content_type"])
        self.set_header("Cache-Control", "private, max-age=86400")
        self.finish(bytes(background["data"]))
