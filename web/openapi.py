"""/openapi.json, assembled from the route table so it cannot drift from it.

Each handler class declares its operations in an `openapi` attribute; path
parameters come from the route's named groups.
"""

from __future__ import annotations

import re
from typing import Iterable

import tornado.web

_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")

SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}},
            }
        },
    },
    "Member": {
        "type": "object",
        "required": ["id", "upline_id", "ancestor_ids", "direct_count", "team_count"],
        "properties": {
            "id": {"type": "string"},
            "oa_openid": {"type": ["string", "null"]},
            "miniapp_openid": {"type": ["string", "null"]},
            "unionid": {"type": ["string", "null"]},
            "nickname": {"type": ["string", "null"]},
            "avatar_url": {"type": ["string", "null"]},
            "subscribed": {"type": ["boolean", "null"]},
            "upline_id": {"type": ["string", "null"]},
            "ancestor_ids": {"type": "array", "items": {"type": "string"}, "description": "nearest first"},
            "bound_at": {"type": ["string", "null"], "format": "date-time"},
            "bind_source": {"type": ["string", "null"]},
            "direct_count": {"type": "integer"},
            "team_count": {"type": "integer"},
            "frozen": {"type": ["boolean", "null"]},
            "promoter_status": {"type": ["string", "null"]},
            "created_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
}

SCHEMAS["Me"] = {
    "type": "object",
    "required": ["id", "balances", "direct_count", "team_count"],
    "properties": {
        "id": {"type": "string"}, "nickname": {"type": ["string", "null"]}, "avatar_url": {"type": ["string", "null"]},
        "phone": {"type": ["string", "null"], "description": "masked"}, "grade": {"type": ["string", "null"]},
        "promoter_status": {"type": ["string", "null"]},
        "upline": {"type": ["object", "null"], "properties": {"nickname": {"type": ["string", "null"]}}},
        "balances": {"type": "object", "required": ["frozen_fen", "available_fen", "locked_fen"],
                     "properties": {name: {"type": "integer"} for name in ("frozen_fen", "available_fen", "locked_fen")}},
        "direct_count": {"type": "integer"}, "team_count": {"type": "integer"},
        "joined_at": {"type": "string", "format": "date-time"},
    },
}
SCHEMAS["Teammate"] = {
    "type": "object",
    "required": ["id", "nickname", "joined_at", "order_count", "order_fen"],
    "properties": {
        "id": {"type": "string"}, "nickname": {"type": "string", "description": "masked"},
        "avatar_url": {"type": ["string", "null"]}, "joined_at": {"type": ["string", "null"], "format": "date-time"},
        "order_count": {"type": "integer"}, "order_fen": {"type": "integer"},
    },
}

# Orders and commissions (issue 5).
_FEN = {"type": "integer", "description": "fen (分)"}
_TIME = {"type": ["string", "null"], "format": "date-time"}
SCHEMAS["NewOrder"] = {
    "type": "object",
    "required": ["order_no", "buyer", "items"],
    "additionalProperties": False,
    "properties": {
        "order_no": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
        "buyer": {"type": "object", "minProperties": 1, "additionalProperties": False,
                  "description": "tried in this order: member_id, unionid, oa_openid, miniapp_openid; an unknown "
                                 "buyer's order is kept and earns no commission",
                  "properties": {name: {"type": "string"} for name in ("member_id", "unionid", "oa_openid",
                                                                       "miniapp_openid")}},
        "items": {"type": "array", "minItems": 1, "maxItems": 200, "items": {
            "type": "object", "required": ["sku", "title", "qty", "paid_fen"], "additionalProperties": False,
            "properties": {"sku": {"type": "string"}, "title": {"type": "string"},
                           "qty": {"type": "integer", "minimum": 1}, "paid_fen": {**_FEN, "minimum": 0},
                           "category": {"type": ["string", "null"]}}}},
        "paid_at": {"type": ["string", "null"], "format": "date-time", "description": "with a UTC offset"},
    },
}
SCHEMAS["NewOrderEvent"] = {
    "type": "object",
    "required": ["event_id", "type"],
    "additionalProperties": False,
    "properties": {
        "event_id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"},
        "type": {"type": "string", "enum": ["paid", "confirmed", "refunded", "closed"]},
        "at": {"type": ["string", "null"], "format": "date-time", "description": "when it happened; default: now"},
        "items": {"type": ["array", "null"], "description": "refunded only; left out: everything left is refunded",
                  "items": {"type": "object", "required": ["sku", "refund_fen"], "additionalProperties": False,
                            "properties": {"sku": {"type": "string"}, "refund_fen": {**_FEN, "minimum": 1}}}},
    },
}
SCHEMAS["OrderEvent"] = {
    "type": "object",
    "required": ["event_id", "type", "state"],
    "properties": {
        "order_no": {"type": "string"}, "event_id": {"type": "string"}, "type": {"type": "string"},
        "at": _TIME, "items": {"type": ["array", "null"], "items": {"type": "object"}},
        "state": {"type": "string", "enum": ["pending", "waiting", "applied"]},
        "outcome": {"type": ["string", "null"]}, "received_at": _TIME, "applied_at": _TIME,
        "duplicate": {"type": "boolean"},
    },
}
SCHEMAS["Commission"] = {
    "type": "object",
    "required": ["id", "order_no", "beneficiary_id", "level", "status", "amount_fen", "net_fen"],
    "properties": {
        "id": {"type": "string", "description": "<order_no>:<item index>:<level>"},
        "order_no": {"type": "string"}, "item_index": {"type": "integer"}, "sku": {"type": "string"},
        "beneficiary_id": {"type": "string"}, "level": {"type": "integer", "description": "1 is the nearest"},
        "status": {"type": "string", "enum": ["frozen", "settled", "cancelled", "clawed_back"]},
        "amount_fen": _FEN, "cancelled_fen": _FEN, "clawed_back_fen": _FEN,
        "net_fen": {**_FEN, "description": "amount less cancellations and clawbacks"},
        "item_paid_fen": _FEN, "refunded_fen": _FEN,
        "created_at": _TIME, "unfreeze_at": _TIME, "settled_at": _TIME,
    },
}
SCHEMAS["Order"] = {
    "type": "object",
    "required": ["order_no", "status", "buyer", "items", "total_fen"],
    "properties": {
        "order_no": {"type": "string"},
        "status": {"type": "string", "enum": ["created", "paid", "confirmed", "refunded", "closed"]},
        "buyer": {"type": "object"}, "buyer_id": {"type": ["string", "null"]},
        "upline_chain": {"type": "array", "items": {"type": "string"},
                         "description": "the buyer's ancestors when the order was created, nearest first"},
        "items": {"type": "array", "items": {"type": "object"}},
        "total_fen": _FEN, "refunded_fen": _FEN, "commission_fen": _FEN,
        "paid_at": _TIME, "confirmed_at": _TIME, "unfreeze_at": _TIME, "closed_at": _TIME, "created_at": _TIME,
        "commissions": {"type": "array", "items": {"$ref": "#/components/schemas/Commission"}},
        "events": {"type": "array", "items": {"$ref": "#/components/schemas/OrderEvent"}},
    },
}
SCHEMAS["PromoterRanking"] = {
    "type": "object",
    "required": ["from", "to", "sort", "items"],
    "properties": {
        "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
        "sort": {"type": "string"},
        "items": {"type": "array", "items": {
            "type": "object",
            "properties": {"member_id": {"type": "string"}, "orders": {"type": "integer"}, "paid_fen": _FEN,
                           "commission_fen": _FEN, "commission_reversed_fen": _FEN, "net_commission_fen": _FEN,
                           "refunded_fen": _FEN, "new_direct_members": {"type": "integer"}}}},
    },
}

SCHEMAS["Application"] = {
    "type": "object",
    "required": ["id", "member_id", "name", "status", "created_at"],
    "properties": {
        "id": {"type": "string"}, "member_id": {"type": "string"}, "name": {"type": "string"},
        "reason": {"type": ["string", "null"]}, "status": {"type": "string", "enum": ["pending", "approved", "rejected"]},
        "decision_note": {"type": ["string", "null"]}, "created_at": {"type": "string", "format": "date-time"},
        "decided_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

# Posters (issue 4).
SCHEMAS["PosterBackground"] = {
    "type": "object",
    "required": ["id", "content_type", "width", "height", "bytes"],
    "properties": {
        "id": {"type": "string", "description": "templates.<id>.background_id in the poster settings"},
        "content_type": {"type": "string", "enum": ["image/jpeg", "image/png"]},
        "width": {"type": "integer"}, "height": {"type": "integer"},
        "bytes": {"type": "integer", "description": "size as stored, once shrunk to cover the canvas"},
        "uploaded_bytes": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"},
    },
}
SCHEMAS["PosterSettings"] = {
    "type": "object",
    "description": "GET|PUT /api/merchant/v1/settings/posters; fields left out take their defaults",
    "properties": {
        "templates": {"type": "object", "minProperties": 1, "maxProperties": 20,
                      "description": "template id (1-32 of a-z 0-9 _ -) -> template",
                      "additionalProperties": {"type": "object", "additionalProperties": False, "properties": {
                          "design": {"type": "string", "enum": ["classic", "fresh"], "default": "classic"},
                          "version": {"type": "integer", "minimum": 1, "default": 1,
                                      "description": "bump it to redraw every poster of the template"},
                          "headline": {"type": ["string", "null"], "maxLength": 40},
                          "background_id": {"type": ["string", "null"],
                                            "description": "from POST /api/merchant/v1/posters/backgrounds"}}}},
        "default_template": {"type": "string", "default": "classic"},
        "keywords": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 20},
                     "default": ["海报", "推广海报"], "description": "chat messages that ask for the poster"},
        "code_type": {"type": "string", "enum": ["oa_qr", "miniapp_code", "h5_link"], "default": "oa_qr"},
        "permanent_qr": {"type": "boolean", "default": False,
                         "description": "official-account codes that never expire (100,000 per account)"},
        "qr_expire_days": {"type": "integer", "minimum": 1, "maximum": 30, "default": 30},
        "miniapp_page": {"type": "string", "default": "pages/index/index"},
    },
}

SCHEMAS["Withdrawal"] = {
    "type": "object",
    "required": ["id", "member_id", "amount_fen", "fee_fen", "net_fen", "method", "status", "created_at"],
    "properties": {
        "id": {"type": "string"}, "member_id": {"type": "string"}, "amount_fen": {"type": "integer"},
        "fee_fen": {"type": "integer"}, "net_fen": {"type": "integer"},
        "method": {"type": "string", "enum": ["wechat_balance", "bank"]},
        "status": {"type": "string", "enum": ["requested", "pending_review", "approved", "paid", "rejected", "failed",
                                              "returned", "cancelled"]},
        "note": {"type": ["string", "null"]}, "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

_STATUS_TEXT = {400: "Invalid input", 401: "Missing or wrong bearer token", 404: "Not found", 409: "Conflict",
                413: "Body too large", 422: "Invalid input", 503: "A store is down"}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_responses(*statuses: int) -> dict:
    return {str(status): json_response(_STATUS_TEXT[status], ref("Error")) for status in statuses}


def openapi_path(pattern: str) -> str:
    return _NAMED_GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern).rstrip("$")


def build_document(routes: Iterable[tuple[str, type[tornado.web.RequestHandler]]]) -> dict:
    paths: dict[str, dict] = {}
    for pattern, handler in routes:
        operations = getattr(handler, "openapi", None)
        if not operations:
            continue
        path_schemas = getattr(handler, "path_schemas", {})
        path_params = [
            {"name": name, "in": "path", "required": True, "schema": path_schemas.get(name, {"type": "string"})}
            for name in _NAMED_GROUP.findall(pattern)
        ]
        paths[openapi_path(pattern)] = {
            method: {**operation, "parameters": path_params + operation.get("parameters", [])}
            for method, operation in operations.items()
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "WeChat distribution backend", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"merchantToken": {"type": "http", "scheme": "bearer"},
                                "memberSession": {"type": "http", "scheme": "bearer",
                                                  "description": "the token from POST /api/v1/session"}},
        },
    }


class OpenApiHandler(tornado.web.RequestHandler):
    def initialize(self, document: dict) -> None:
        self.document = document

    def get(self) -> None:
        self.write(self.document)
