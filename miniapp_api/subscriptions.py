"""POST /api/v1/subscriptions: the one-time consents wx.requestSubscribeMessage obtained."""

from __future__ import annotations

from web.openapi import error_responses, json_response
from miniapp_api.auth import MINIAPP_SECURITY, MiniappHandler
from miniapp_api.requests import SubscriptionConsents

_IDS = {"type": "array", "maxItems": 20, "items": {"type": "string", "minLength": 1, "maxLength": 64}}


class SubscriptionsHandler(MiniappHandler):
    openapi = {
        "post": {
            "summary": "Record accepted subscription-message consents: each allows one message",
            "security": MINIAPP_SECURITY,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["template_ids", "accepted"], "additionalProperties": False,
                "properties": {"template_ids": _IDS, "accepted": _IDS}}}}},
            "responses": {
                "200": json_response("Unused consents per template asked for", {
                    "type": "object", "required": ["consents"],
                    "properties": {"consents": {"type": "object", "additionalProperties": {"type": "integer"}}}}),
                **error_responses(400, 401),
            },
        }
    }

    async def post(self) -> None:
        consents = self.parse_body(SubscriptionConsents)
        notifications = self.runtime.notifications
        await notifications.add_consents(self.member["_id"], list(consents.accepted))
        counts = {template: await notifications.unused_consents(self.member["_id"], template)
                  for template in consents.template_ids}
        self.write_json({"consents": counts})
