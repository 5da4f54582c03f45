"""The sandbox's log lines name a request by method and path only: its query string carries app secrets,
access tokens, login codes and openids, as WeChat's does."""

from __future__ import annotations

from typing import Any

from tornado.httputil import HTTPServerRequest
from tornado.log import access_log, app_log
from tornado.web import HTTPError, RequestHandler


def request_line(request: HTTPServerRequest) -> str:
    return f"{request.method} {request.path} ({request.remote_ip})"


def log_request(handler: RequestHandler) -> None:
    """The application's access log (`log_function`)."""
    status = handler.get_status()
    log = access_log.info if status < 400 else access_log.warning if status < 500 else access_log.error
    log("%d %s %.1fms", status, request_line(handler.request), 1000 * handler.request.request_time())


class RequestLineOnly(RequestHandler):
    """Tornado's warnings and error lines name the request by `_request_summary`, and an uncaught exception's
    line adds the request's repr: both without the query string here."""

    def _request_summary(self) -> str:
        return request_line(self.request)

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        if isinstance(value, HTTPError):
            super().log_exception(typ, value, tb)
        else:
            app_log.error("Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb))
