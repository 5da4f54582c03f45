"""What every handler shares: the runtime, parsing requests into models, answering with models, one error map."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import tornado.web
from pydantic import BaseModel, ValidationError

from distribution.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Refused, Unavailable
from distribution.records import Record, invalid_field
from services.runtime import Runtime
from wechat import WeChatError
from web.models import Error, ErrorDetail

R = TypeVar("R", bound=Record)
Q = TypeVar("Q", bound=BaseModel)


class ApiError(tornado.web.HTTPError):
    """A refusal of the HTTP exchange itself (no token, too large, wrong media type), not of what it asks."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(status, reason=None, log_message=message)
        self.code, self.message, self.field = code, message, field


# Every error a service, the domain or WeChat raises becomes one answer; the first kind in the error's MRO
# found here decides the status.
ERROR_STATUS: dict[type[Exception], int] = {
    Invalid: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Refused: 409,
    Unavailable: 503,
    WeChatError: 503,
}
WECHAT_UNAVAILABLE = "wechat_unavailable"

# Tornado's own refusals (no such method, a malformed request) carry only a status.
_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                 409: "conflict", 413: "too_large", 415: "unsupported_media_type", 429: "rate_limited",
                 503: "unavailable"}


def error_status(error: BaseException) -> int | None:
    """The HTTP status `error` is answered with; None for a bug (a 500)."""
    return next((ERROR_STATUS[kind] for kind in type(error).__mro__ if kind in ERROR_STATUS), None)


def error_detail(error: BaseException) -> ErrorDetail:
    """`{code, message, field}` of an error `error_status` knows."""
    if isinstance(error, DomainError):
        return ErrorDetail(code=error.code, message=error.message, field=error.field)
    if isinstance(error, WeChatError):
        return ErrorDetail(code=WECHAT_UNAVAILABLE, message=f"WeChat did not answer: {error}")
    raise TypeError(f"{type(error).__name__} is not in the error map")


class BaseHandler(tornado.web.RequestHandler):
    def initialize(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_finish(self) -> None:
        self.runtime.metrics.requests.labels(type(self).__name__, self.request.method, str(self.get_status())).inc()

    # --- requests ------------------------------------------------------------------------------

    def json_body(self) -> Any:
        if not self.request.body:
            raise Invalid("a JSON body is required")
        try:
            return json.loads(self.request.body)
        except (ValueError, RecursionError) as error:
            raise Invalid(f"the body is not valid JSON: {error}") from None

    def parse_body(self, record: type[R], required: bool = True) -> R:
        """The JSON body as `record`; without a body, `record`'s defaults when the body is optional."""
        if not required and not self.request.body:
            return record()
        return record.from_dict(self.json_body())

    def parse_query(self, model: type[Q]) -> Q:
        """The query string as `model`; a parameter given empty counts as left out."""
        given = {name: values[-1].decode("utf-8", "replace")
                 for name, values in self.request.query_arguments.items() if values[-1]}
        try:
            return model.model_validate(given)
        except ValidationError as error:
            raise invalid_field(error) from None

    # --- answers -------------------------------------------------------------------------------

    def write_model(self, model: BaseModel, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(model.model_dump_json(by_alias=True))

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        if value is not None and error_status(value) is not None:
            return  # an answer, not a failure
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ApiError):
            detail = ErrorDetail(code=error.code, message=error.message, field=error.field)
        elif error is not None and (mapped := error_status(error)) is not None:
            self.set_status(mapped)
            detail = error_detail(error)
        else:
            code = _STATUS_CODES.get(status_code, "internal_error" if status_code >= 500 else "error")
            detail = ErrorDetail(code=code, message=self._reason)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(Error(error=detail).model_dump_json(exclude_none=True))


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise ApiError(404, "not_found", f"no such resource: {self.request.path}")
