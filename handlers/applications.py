"""The merchant reviews promoter applications."""

from __future__ import annotations

from datetime import datetime, timezone

from web.base import ApiError
from handlers.merchant import MERCHANT_SECURITY, MerchantHandler
from web.openapi import error_responses, json_response, ref
from web.paging import CURSOR_PARAMETER, LIMIT_PARAMETER, Paging, decode_cursor, encode_cursor, page_schema
from miniapp_api.applications import application_view
from services.applications import ApplicationRefused
from stores.applications import APPROVED, PENDING, REJECTED

DECISION_BODY = {"type": "object", "additionalProperties": False,
                 "properties": {"reason": {"type": ["string", "null"], "maxLength": 500}}}


class ApplicationsHandler(MerchantHandler, Paging):
    openapi = {
        "get": {
            "summary": "Promoter applications, newest first",
            "security": MERCHANT_SECURITY,
            "parameters": [{"name": "status", "in": "query",
                            "schema": {"type": "string", "enum": [PENDING, APPROVED, REJECTED]}},
                           CURSOR_PARAMETER, LIMIT_PARAMETER],
            "responses": {"200": json_response("A page of applications", page_schema(ref("Application"))),
                          **error_responses(400, 401)},
        }
    }

    async def get(self) -> None:
        status = self.get_query_argument("status", "") or None
        if status not in (None, PENDING, APPROVED, REJECTED):
            raise ApiError(400, "invalid", "status must be pending, approved or rejected", field="status")
        before = decode_cursor(cursor, 1)[0] if (cursor := self.get_query_argument("cursor", "")) else None
        limit = self.page_limit()
        page = await self.runtime.applications.applications.page(status, limit, before)
        items = [application_view(a) for a in page]
        self.write_json({"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if len(items) == limit else None})


class ApplicationDecisionHandler(MerchantHandler):
    openapi = {
        "post": {
            "summary": "Approve or reject a pending application; the applicant is told",
            "security": MERCHANT_SECURITY,
            "requestBody": {"required": False, "content": {"application/json": {"schema": DECISION_BODY}}},
            "responses": {"200": json_response("The decided application", ref("Application")),
                          **error_responses(400, 401, 404, 409)},
        }
    }
    path_schemas = {"decision": {"type": "string", "enum": ["approve", "reject"]}}

    async def post(self, application_id: str, decision: str) -> None:
        body = self.json_body() if self.request.body else {}
        note = body.get("reason") if isinstance(body, dict) else None
        if note is not None and (not isinstance(note, str) or len(note) > 500):
            raise ApiError(400, "invalid", "reason must be text of at most 500 characters", field="reason")
        try:
            decided = await self.runtime.applications.decide(application_id, decision == "approve", note,
                                                             datetime.now(timezone.utc))
        except ApplicationRefused as refused:
            raise ApiError(409, refused.code, str(refused)) from None
        if decided is None:
            raise ApiError(404, "application_not_found", f"no application {application_id}")
        self.write_json(application_view(decided))
