"""GET|PUT /api/merchant/v1/settings/{name}: every kind of merchant rule, one door."""

from __future__ import annotations

from web.base import ApiError
from handlers.merchant import MERCHANT_SECURITY, MerchantHandler
from web.openapi import error_responses, json_response
from services.merchant_settings import SETTINGS_KINDS, UnknownSettings, settings_kind

_SETTINGS_NAME = {"type": "string", "enum": sorted(SETTINGS_KINDS)}
_ANY_OBJECT = {"type": "object", "additionalProperties": True}


class MerchantSettingsHandler(MerchantHandler):
    path_schemas = {"name": _SETTINGS_NAME}
    openapi = {
        "get": {
            "summary": "The merchant's rules of one kind (defaults until set)",
            "security": MERCHANT_SECURITY,
            "responses": {"200": json_response("The settings", _ANY_OBJECT), **error_responses(401, 404)},
        },
        "put": {
            "summary": "Replace the merchant's rules of one kind; fields left out take their defaults",
            "security": MERCHANT_SECURITY,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ANY_OBJECT}}},
            "responses": {"200": json_response("The settings as stored", _ANY_OBJECT), **error_responses(400, 401, 404)},
        },
    }

    def _kind(self, name: str):
        try:
            return settings_kind(name)
        except UnknownSettings:
            raise ApiError(404, "unknown_settings", f"no settings named {name!r}; known: {', '.join(sorted(SETTINGS_KINDS))}")

    async def get(self, name: str) -> None:
        self.write_json((await self.runtime.merchant_settings.get(self._kind(name))).to_dict())

    async def put(self, name: str) -> None:
        value = self.parse_body(self._kind(name))
        await self.runtime.merchant_settings.put(value)
        self.write_json(value.to_dict())
