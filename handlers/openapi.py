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
            "securitySchemes": {"merchantToken": {"type": "http", "scheme": "bearer"}},
        },
    }


class OpenApiHandler(tornado.web.RequestHandler):
    def initialize(self, document: dict) -> None:
        self.document = document

    def get(self) -> None:
        self.write(self.document)
