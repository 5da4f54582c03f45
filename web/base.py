"""What every handler shares: the runtime, JSON answers and errors, metrics."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

import tornado.web

from services.runtime import Runtime
from distribution.records import InvalidField, Record

R = TypeVar("R", bound=Record)


class ApiError(tornado.web.HTTPError):
    """An error the client caused or should know of: `{error: {code, message}}`."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(status, reason=None, log_message=message)
        self.code, self.message, self.field = code, message, field


_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                 409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid", 429: "rate_limited",
                 503: "unavailable"}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class BaseHandler(tornado.web.RequestHandler):
    def initialize(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_finish(self) -> None:
        self.runtime.metrics.requests.labels(type(self).__name__, self.request.method, str(self.get_status())).inc()

    def json_body(self) -> Any:
        if not self.request.body:
            raise ApiError(400, "invalid", "a JSON body is required")
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise ApiError(400, "invalid", f"the body is not valid JSON: {error}") from None

    def parse_body(self, record: type[R]) -> R:
        """The JSON body as `record`; a 400 naming the field when it does not fit."""
        try:
            return record.from_dict(self.json_body())
        except InvalidField as invalid:
            raise ApiError(400, "invalid", str(invalid), field=invalid.field) from None

    def write_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body, ensure_ascii=False, default=_json_default))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ApiError):
            body = {"code": error.code, "message": error.message}
            if error.field:
                body["field"] = error.field
        else:
            body = {"code": _STATUS_CODES.get(status_code, "internal_error" if status_code >= 500 else "error"),
                    "message": self._reason}
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": body}, ensure_ascii=False))


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise ApiError(404, "not_found", f"no such resource: {self.request.path}")
