"""What every handler shares: the runtime, parsing requests into models, answering with models, one error map."""

from __future__ import annotations

import array
import itertools
import json
import re
from typing import Any, TypeVar

import tornado.web
from pydantic import BaseModel, ValidationError

from distribution.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Refused, TooMany, Unavailable
from distribution.records import Record, invalid_field
from services.audit import Actor
from services.outages import store_outage
from services.runtime import Runtime
from wechat import WeChatError
from web.client_ip import client_ip
from web.models import Error, ErrorDetail

R = TypeVar("R", bound=Record)
Q = TypeVar("Q", bound=BaseModel)


class ApiError(tornado.web.HTTPError):
    """A refusal of the HTTP exchange itself (no token, too large, wrong media type), not of what it asks."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(status, reason=None, log_message=message)
        self.code, self.message, self.field = code, message, field
        # Sent with the answer: headers set before raising are cleared by Tornado's send_error.
        self.headers = headers or {}


# Every error a service, the domain or WeChat raises becomes one answer; the first kind in the error's MRO
# found here decides the status. A store that cannot be reached answers as the domain's Unavailable.
ERROR_STATUS: dict[type[Exception], int] = {
    Invalid: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Refused: 409,
    TooMany: 429,
    Unavailable: 503,
    WeChatError: 503,
}
WECHAT_UNAVAILABLE = "wechat_unavailable"
# Sent with every 503: what is missing (a store, WeChat) usually returns within seconds.
RETRY_AFTER_SECONDS = 5

# Tornado's own refusals (no such method, a malformed request) carry only a status.
_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                 409: "conflict", 413: "too_large", 415: "unsupported_media_type", 429: "rate_limited",
                 503: "unavailable"}


def error_status(error: BaseException) -> int | None:
    """The HTTP status `error` is answered with; None for a bug (a 500)."""
    error = store_outage(error) or error
    return next((ERROR_STATUS[kind] for kind in type(error).__mro__ if kind in ERROR_STATUS), None)


def error_detail(error: BaseException) -> ErrorDetail:
    """`{code, message, field}` of an error `error_status` knows."""
    error = store_outage(error) or error
    if isinstance(error, DomainError):
        return ErrorDetail(code=error.code, message=error.message, field=error.field)
    if isinstance(error, WeChatError):
        return ErrorDetail(code=WECHAT_UNAVAILABLE, message=f"WeChat did not answer: {error}")
    raise TypeError(f"{type(error).__name__} is not in the error map")


# What an uploaded picture (a poster background, a product photo) may be: what the decoder is checked for.
PICTURE_TYPES = ("image/jpeg", "image/png")

# JSON bodies are small: a larger one is refused rather than held in memory. Endpoints that take more
# (a picture upload) say so with their own `max_body_bytes`.
MAX_JSON_BODY_BYTES = 64 * 1024
# Far deeper than any request's shape; whatever the interpreter's recursion allows, nothing past
# the parser sees more.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes


def json_depth(document: str) -> int:
    """How deep the valid JSON `document` nests arrays and objects, counted in linear time without recursion."""
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", document)).encode()
    return max(itertools.accumulate(array.array("b", brackets.translate(_DEPTH_STEPS))), default=0)


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Bodies are counted as they arrive: one declared larger than `max_body_bytes` is refused (413) from its
    headers before it is read, and one that grows past it is cut off with a 413; neither is kept. A subclass
    that overrides `prepare` calls this one's first."""

    max_body_bytes = MAX_JSON_BODY_BYTES

    def initialize(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._body_parts: list[bytes] = []
        self._body_size = 0

    def prepare(self) -> None:
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large()

    def data_received(self, chunk: bytes) -> None:
        self._body_size += len(chunk)
        if self._body_size <= self.max_body_bytes:
            self._body_parts.append(chunk)
        elif not self._finished:
            self._body_parts.clear()
            # Answered now: Tornado closes the connection after the answer instead of reading the rest.
            too_large = self._too_large()
            self.send_error(too_large.status_code, exc_info=(type(too_large), too_large, None))

    @property
    def received_body(self) -> bytes:
        return b"".join(self._body_parts)

    def picture_body(self) -> bytes:
        """A picture uploaded as the body itself (not multipart), one of `PICTURE_TYPES`; 415 or 400 if not."""
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in PICTURE_TYPES:
            raise ApiError(415, "unsupported_media_type",
                           f"send the picture itself as the body, Content-Type {' or '.join(PICTURE_TYPES)}")
        data = self.received_body
        if not data:
            raise Invalid("the body is empty: send the picture", field="body")
        return data

    def _too_large(self) -> ApiError:
        return ApiError(413, "too_large", f"the body may be at most {self.max_body_bytes:,} bytes", field="body")

    def on_finish(self) -> None:
        self.runtime.metrics.count_request(type(self).__name__, self.request.method, self.get_status())

    # --- requests ------------------------------------------------------------------------------

    @property
    def client_ip(self) -> str:
        """The client's address: the socket's peer, or behind TRUSTED_PROXIES the one X-Forwarded-For names."""
        return client_ip(self.request, self.runtime.settings.trusted_proxies)

    def json_body(self) -> Any:
        body = self.received_body
        if not body:
            raise Invalid("a JSON body is required")
        try:
            document = body.decode("utf-8")
            parsed = json.loads(document)
        except (ValueError, RecursionError) as error:
            raise Invalid(f"the body is not valid JSON in UTF-8: {error}") from None
        if json_depth(document) > MAX_JSON_DEPTH:
            raise Invalid(f"the body nests arrays and objects more than {MAX_JSON_DEPTH} deep")
        return parsed

    def parse_body(self, record: type[R], required: bool = True) -> R:
        """The JSON body as `record`; without a body, `record`'s defaults when the body is optional."""
        if not required and not self.received_body:
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

    # --- the audit log -------------------------------------------------------------------------

    @property
    def actor(self) -> Actor:
        """Who is acting, as the audit log names them: each kind of handler that changes the shop says."""
        raise NotImplementedError(f"{type(self).__name__} names no actor for the audit log")

    async def audit(self, action: str, target_kind: str, target_id: str, before: Any = None, after: Any = None,
                    reason: str | None = None) -> None:
        """Record an action that has happened, with the state of what it acted on before and after."""
        await self.runtime.audit.record(self.actor, action, target_kind, target_id, before, after, reason)

    # --- answers -------------------------------------------------------------------------------

    def write_model(self, model: BaseModel, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(model.model_dump_json(by_alias=True))

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        if value is not None and error_status(value) is not None:
            return  # an answer, not a failure
        if isinstance(value, tornado.web.HTTPError):
            super().log_exception(typ, value, tb)  # a warning naming the request by `_request_summary`
        else:  # Tornado's own line would add the request's repr, query string and all
            tornado.web.app_log.error("Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb))

    def _request_summary(self) -> str:
        # What Tornado's warnings and error lines name a request by: never its query string, which carries
        # openids, signatures and tokens.
        return f"{self.request.method} {self.request.path} ({self.client_ip})"

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ApiError):
            detail = ErrorDetail(code=error.code, message=error.message, field=error.field)
            for name, value in error.headers.items():
                self.set_header(name, value)
        elif error is not None and (mapped := error_status(error)) is not None:
            self.set_status(mapped)
            detail = error_detail(error)
        else:
            code = _STATUS_CODES.get(status_code, "internal_error" if status_code >= 500 else "error")
            detail = ErrorDetail(code=code, message=self._reason)
        if self.get_status() == 503:
            self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
        elif isinstance(error, TooMany):
            self.set_header("Retry-After", str(error.retry_after))
        if not self.request._body_future.done():
            # Answered before the body was all read (a refusal in prepare): Tornado closes the connection after
            # this answer, and a client not told so would send its next request into the closing connection.
            self.set_header("Connection", "close")
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(Error(error=detail).model_dump_json(exclude_none=True))


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise ApiError(404, "not_found", f"no such resource: {self.request.path}")
