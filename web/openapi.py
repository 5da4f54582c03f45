"""/openapi.json, generated from the route table and the models each handler method declares.

A handler method declares its operation with `@operation(...)`: a summary, the
request body, query and answer models, and the error statuses it may answer
with. Path parameters come from the route's named groups; every schema comes
from pydantic, so the document cannot drift from what the handlers parse and
write.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import tornado.web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from web.models import Error

F = TypeVar("F", bound=Callable[..., Any])

METHODS = ("get", "post", "put", "patch", "delete")
SCHEMA_REF = "#/components/schemas/{model}"
JSON = "application/json"
BINARY = {"type": "string", "format": "binary"}
_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>([^)]*)\)")
_WORDS = re.compile(r"\w+(\|\w+)+")
ERROR_TEXT = {400: "Invalid input; `field` names the culprit", 401: "No valid bearer token",
              403: "Not allowed", 404: "Not found", 409: "Refused: it conflicts with what is stored, or a rule says no",
              413: "The body is too large", 415: "The body is of a media type this endpoint does not take",
              429: "Too many requests: a rate limit (`settings/limits`); Retry-After says when to try again",
              503: "Something this depends on (a store, WeChat, a setting) cannot serve it now"}
SECURITY_SCHEMES = {
    "merchantToken": {"type": "http", "scheme": "bearer", "description": "MERCHANT_API_TOKEN"},
    "memberSession": {"type": "http", "scheme": "bearer", "description": "the token from POST /api/v1/session"},
}


class Schemas:
    """The JSON Schema of every model the operations use, generated together: each model is one component."""

    def __init__(self, models: Iterable[tuple[type[BaseModel], JsonSchemaMode]]):
        self.refs, top = models_json_schema(list(dict.fromkeys(models)), ref_template=SCHEMA_REF)
        self.components: dict[str, dict] = top.get("$defs", {})

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict:
        return self.refs[(model, mode)]

    def component(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict:
        return self.components[self.ref(model, mode)["$ref"].rsplit("/", 1)[-1]]


@dataclass(frozen=True)
class Reply:
    """An answer of one status: a JSON model, a picture (`media_types`), or nothing."""

    description: str
    model: type[BaseModel] | None = None
    media_types: tuple[str, ...] = ()

    def described(self, schemas: Schemas) -> dict:
        if self.model is not None:
            content = {JSON: {"schema": schemas.ref(self.model, "serialization")}}
        else:
            content = {media_type: {"schema": BINARY} for media_type in self.media_types}
        return {"description": self.description, **({"content": content} if content else {})}


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: dict[int, Reply]
    description: str | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    body_media_types: tuple[str, ...] = ()  # a raw body (a picture) instead of a JSON model
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()  # 400, 401, 413 and 503 are added where they apply
    security: str | None = None  # None: the handler's

    def models(self) -> Iterator[tuple[type[BaseModel], JsonSchemaMode]]:
        if self.body is not None:
            yield self.body, "validation"
        if self.query is not None:
            yield self.query, "validation"
        for reply in self.responses.values():
            if reply.model is not None:
                yield reply.model, "serialization"

    def described(self, pattern: str, security: str | None, schemas: Schemas) -> dict:
        # Any operation may find a store or WeChat unavailable: 503.
        errors = {*self.errors, 503, *((400,) if self.body or self.query else ()), *((413,) if self.body else ()),
                  *((401,) if security else ())}
        replies = {**self.responses, **{status: Reply(ERROR_TEXT[status], Error) for status in errors}}
        described: dict[str, Any] = {"summary": self.summary}
        if self.description:
            described["description"] = self.description
        if security:
            described["security"] = [{security: []}]
        described["parameters"] = path_parameters(pattern) + (
            _query_parameters(schemas.component(self.query, "validation")) if self.query else [])
        if self.body is not None:
            described["requestBody"] = {"required": self.body_required,
                                        "content": {JSON: {"schema": schemas.ref(self.body, "validation")}}}
        elif self.body_media_types:
            described["requestBody"] = {"required": True,
                                        "content": {media_type: {"schema": BINARY}
                                                    for media_type in self.body_media_types}}
        described["responses"] = {str(status): reply.described(schemas) for status, reply in sorted(replies.items())}
        return described


def operation(summary: str, *, responses: dict[int, Reply], **declared: Any) -> Callable[[F], F]:
    """Declare what a handler method takes and answers (see `Operation`)."""

    def declare(method: F) -> F:
        method.operation = Operation(summary, responses, **declared)  # type: ignore[attr-defined]
        return method

    return declare


def operations(handler: type[tornado.web.RequestHandler]) -> dict[str, Operation]:
    return {method: declared for method in METHODS
            if (declared := getattr(getattr(handler, method, None), "operation", None)) is not None}


def openapi_path(pattern: str) -> str:
    return _NAMED_GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern).rstrip("$")


def path_parameters(pattern: str) -> list[dict]:
    """A route's named groups as path parameters: a choice of words is an enum, any other group a pattern."""
    parameters = []
    for name, regex in _NAMED_GROUP.findall(pattern):
        if regex == "[^/]+":
            schema: dict = {"type": "string"}
        elif _WORDS.fullmatch(regex):
            schema = {"type": "string", "enum": regex.split("|")}
        else:
            schema = {"type": "string", "pattern": f"^{regex}$"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _query_parameter(name: str, schema: dict, required: bool) -> dict:
    """A query parameter is given or left out, never null: `X | None = None` is documented as an optional X."""
    branches = [each for each in schema.get("anyOf", ()) if each != {"type": "null"}]
    if len(branches) == 1:
        schema = {**schema, **branches[0]}
        del schema["anyOf"]
    if "default" in schema and schema["default"] is None:
        del schema["default"]
    parameter = {"name": name, "in": "query", "required": required,
                 "schema": {key: value for key, value in schema.items() if key not in ("title", "description")}}
    return parameter | ({"description": schema["description"]} if "description" in schema else {})


def _query_parameters(schema: dict) -> list[dict]:
    required = set(schema.get("required", ()))
    return [_query_parameter(name, dict(each), name in required) for name, each in schema["properties"].items()]


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            yield value["$ref"].rsplit("/", 1)[-1]
        for each in value.values():
            yield from _refs(each)
    elif isinstance(value, list):
        for each in value:
            yield from _refs(each)


def _reachable(paths: dict, schemas: dict[str, dict]) -> dict[str, dict]:
    """The schemas the paths use, directly or through other schemas."""
    seen: set[str] = set()
    waiting = list(_refs(paths))
    while waiting:
        name = waiting.pop()
        if name not in seen:
            seen.add(name)
            waiting += _refs(schemas[name])
    return {name: schemas[name] for name in sorted(seen)}


def build_document(routes: Iterable[tuple[str, type[tornado.web.RequestHandler]]]) -> dict:
    declared = [(pattern, handler, operations(handler)) for pattern, handler in routes]
    schemas = Schemas([(Error, "serialization"), *(pair for _, _, ops in declared for op in ops.values()
                                                    for pair in op.models())])
    paths: dict[str, dict] = {}
    for pattern, handler, ops in declared:
        for method, op in ops.items():
            security = op.security or getattr(handler, "security", None)
            paths.setdefault(openapi_path(pattern), {})[method] = op.described(pattern, security, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "WeChat distribution backend", "version": "1",
                 "description": "Amounts are integer fen (分). Times are ISO 8601 with a UTC offset. "
                                "Lists are paged: pass a page's next_cursor as ?cursor= for the next."},
        "paths": paths,
        "components": {"schemas": _reachable(paths, schemas.components), "securitySchemes": SECURITY_SCHEMES},
    }


class OpenApiHandler(tornado.web.RequestHandler):
    def initialize(self, document: dict) -> None:
        self.document = document

    def get(self) -> None:
        self.write(self.document)
