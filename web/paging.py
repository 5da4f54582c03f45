"""Cursor paging shared by every list endpoint: opaque cursors, bounded limits, team pages."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone

import tornado.web

from web.base import ApiError

MAX_PAGE = 100
LIMIT_PARAMETER = {"name": "limit", "in": "query",
                   "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 20}}
CURSOR_PARAMETER = {"name": "cursor", "in": "query", "schema": {"type": "string"},
                    "description": "next_cursor of the previous page"}


def page_schema(item: dict) -> dict:
    return {"type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}}}


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode()


def _bad_cursor() -> ApiError:
    return ApiError(400, "invalid", "cursor is not one this API gave out", field="cursor")


def decode_cursor(raw: str, parts: int) -> list[str]:
    try:
        # The last part may hold "|" itself (a commission's sort key does).
        decoded = base64.b64decode(raw.encode(), altchars=b"-_", validate=True).decode().split("|", parts - 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = []
    if len(decoded) != parts or not all(decoded):
        raise _bad_cursor()
    return decoded


class Paging(tornado.web.RequestHandler):
    """Mixed into handlers that list things a page at a time."""

    def page_limit(self) -> int:
        raw = self.get_query_argument("limit", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
            raise ApiError(400, "invalid", f"limit must be a whole number from 1 to {MAX_PAGE}", field="limit")
        return int(raw)

    def time_cursor(self) -> tuple[datetime, str] | None:
        """The `(time, _id)` position after which this page starts, for lists ordered newest first."""
        if not (cursor := self.get_query_argument("cursor", "")):
            return None
        at, last_id = decode_cursor(cursor, 2)
        try:
            return datetime.fromisoformat(at), last_id
        except ValueError:
            raise _bad_cursor() from None

    @staticmethod
    def next_time_cursor(page: list[dict], limit: int, time_field: str) -> str | None:
        if len(page) < limit:
            return None
        last = page[-1]
        return encode_cursor(last[time_field].astimezone(timezone.utc).isoformat(), last["_id"])

    async def team_page(self, member: dict, level: int | None) -> tuple[list[dict], str | None]:
        """A page of `member`'s team at `level` (None: everyone below), and the cursor of the next."""
        after, limit = self.time_cursor(), self.page_limit()
        members = await self.runtime.members.store.team_page(member, level, limit, after)
        return members, self.next_time_cursor(members, limit, "bound_at")
