"""POST /api/v1/promoter-application: ask the merchant to let me promote."""

from __future__ import annotations

from datetime import datetime, timezone

from web.base import ApiError
from web.openapi import error_responses, json_response, ref
from miniapp_api.auth import MINIAPP_SECURITY, MiniappHandler
from miniapp_api.requests import PromoterApplication
from services.applications import ApplicationRefused

APPLICATION_BODY = {
    "type": "object", "required": ["name", "phone", "reason"], "additionalProperties": False,
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 32},
                   "phone": {"type": "string", "pattern": r"^\+?\d{6,15}$"},
                   "reason": {"type": "string", "minLength": 1, "maxLength": 500}},
}


def application_view(application: dict) -> dict:
    return {name: application.get(name) for name in ("member_id", "name", "reason", "status", "decision_note",
                                                     "created_at", "decided_at")} | {"id": application["_id"]}


class PromoterApplicationHandler(MiniappHandler):
    openapi = {
        "post": {
            "summary": "Apply to promote (where the merchant reviews promoters)",
            "security": MINIAPP_SECURITY,
            "requestBody": {"required": True, "content": {"application/json": {"schema": APPLICATION_BODY}}},
            "responses": {"201": json_response("The application, pending review", ref("Application")),
                          **error_responses(400, 401, 409)},
        }
    }

    async def post(self) -> None:
        request = self.parse_body(PromoterApplication)
        try:
            application = await self.runtime.applications.apply(self.member, request.name, request.phone,
                                                                request.reason, datetime.now(timezone.utc))
        except ApplicationRefused as refused:
            raise ApiError(409, refused.code, str(refused)) from None
        self.write_json(application_view(application), status=201)
