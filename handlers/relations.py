"""Merchant API over relations: teams, the bind log, admin re-binds, freezing."""

from __future__ import annotations

from datetime import datetime, timezone

from distribution.binding import BindSource
from distribution.scene import is_member_id
from web.base import ApiError
from handlers.merchant import MERCHANT_SECURITY, MerchantHandler
from web.openapi import error_responses, json_response, ref
from web.paging import CURSOR_PARAMETER, LIMIT_PARAMETER, Paging, decode_cursor, encode_cursor, page_schema
from services.members import member_json

class TeamHandler(MerchantHandler, Paging):
    openapi = {
        "get": {
            "summary": "A member's team, newest first: direct members (depth=1) or everyone below (depth=all)",
            "security": MERCHANT_SECURITY,
            "parameters": [{"name": "depth", "in": "query", "schema": {"type": "string", "enum": ["1", "all"], "default": "1"}},
                           CURSOR_PARAMETER, LIMIT_PARAMETER],
            "responses": {"200": json_response("A page of members", page_schema(ref("Member"))),
                          **error_responses(400, 401, 404)},
        }
    }

    async def get(self, member_id: str) -> None:
        member = await self.member_or_404(member_id)
        depth = self.get_query_argument("depth", "1")
        if depth not in ("1", "all"):
            raise ApiError(400, "invalid", "depth must be 1 or all", field="depth")
        members, next_cursor = await self.team_page(member, 1 if depth == "1" else None)
        self.write_json({"items": [member_json(m) for m in members], "next_cursor": next_cursor})


BIND_ENTRY = {
    "type": "object",
    "required": ["id", "member_id", "upline_id", "source", "result", "at"],
    "properties": {
        "id": {"type": "string"}, "member_id": {"type": ["string", "null"]}, "upline_id": {"type": ["string", "null"]},
        "previous_upline_id": {"type": ["string", "null"]},
        "source": {"type": "string", "enum": [s.value for s in BindSource]},
        "result": {"type": "string", "enum": ["bound", "refused"]}, "reason": {"type": ["string", "null"]},
        "at": {"type": "string", "format": "date-time"}, "note": {"type": "string"}, "scene": {"type": "string"},
        "notify": {"type": "string"},
    },
}


class BindLogHandler(MerchantHandler, Paging):
    openapi = {
        "get": {
            "summary": "Every bind attempt of a member, bound or refused, newest first",
            "security": MERCHANT_SECURITY,
            "parameters": [CURSOR_PARAMETER, LIMIT_PARAMETER],
            "responses": {"200": json_response("A page of bind attempts", page_schema(BIND_ENTRY)),
                          **error_responses(400, 401, 404)},
        }
    }

    async def get(self, member_id: str) -> None:
        member = await self.member_or_404(member_id)
        before = decode_cursor(cursor, 1)[0] if (cursor := self.get_query_argument("cursor", "")) else None
        limit = self.page_limit()
        entries = await self.runtime.relations.log_page(member, limit, before)
        items = [{"id": e.pop("_id"), **e} for e in entries]
        self.write_json({"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if len(items) == limit else None})


class UplineHandler(MerchantHandler):
    openapi = {
        "post": {
            "summary": "Re-bind a member by hand (audited): every rule applies but the bind mode",
            "security": MERCHANT_SECURITY,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["upline_id", "reason"], "additionalProperties": False,
                "properties": {"upline_id": {"type": "string"}, "reason": {"type": "string", "minLength": 1}}}}}},
            "responses": {
                "200": json_response("Bound; the member as it is now", ref("Member")),
                **error_responses(400, 401, 404, 409),
            },
        }
    }

    async def post(self, member_id: str) -> None:
        member = await self.member_or_404(member_id)
        body = self.json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "invalid", "the body must be a JSON object")
        upline_id, reason = body.get("upline_id"), body.get("reason")
        if not is_member_id(upline_id):
            raise ApiError(400, "invalid", "upline_id must be a member id", field="upline_id")
        if not isinstance(reason, str) or not reason.strip():
            raise ApiError(400, "invalid", "reason is required: admin re-binds are audited", field="reason")
        await self.member_or_404(upline_id)
        outcome = await self.runtime.relations.bind(member, upline_id, BindSource.ADMIN, datetime.now(timezone.utc),
                                                    note=reason.strip()[:500])
        if not outcome.bound:
            raise ApiError(409, outcome.reason or "refused", f"not bound: {outcome.reason}")
        self.write_json(member_json(await self.member_or_404(member_id)))


class FreezeHandler(MerchantHandler):
    frozen = True
    openapi = {
        "post": {
            "summary": "Freeze a member: a frozen member is never an upline nor bound",
            "security": MERCHANT_SECURITY,
            "responses": {"200": json_response("The member as it is now", ref("Member")), **error_responses(401, 404)},
        }
    }

    async def post(self, member_id: str) -> None:
        if not await self.runtime.relations.set_frozen(member_id, self.frozen):
            raise ApiError(404, "member_not_found", f"no member {member_id}")
        self.write_json(member_json(await self.member_or_404(member_id)))


class UnfreezeHandler(FreezeHandler):
    frozen = False
    openapi = {"post": {**FreezeHandler.openapi["post"], "summary": "Unfreeze a member"}}
