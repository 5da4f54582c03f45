"""The one place every WeChat HTTP call goes through.

One class serves the official account and the mini-program alike: they
differ only in app id and secret.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from typing import Any, Callable

import httpx
from redis.asyncio import Redis

from .api.media import MediaApi
from .api.menu import MenuApi
from .api.message import MessageApi
from .api.miniapp import MiniAppApi
from .api.qrcode import QrCodeApi
from .api.risk import RiskApi
from .api.user import UserApi
from .api.web_auth import WebAuthApi
from .errors import WeChatError, WeChatTimeout, WeChatTokenRejected, WeChatUnavailable, error_for
from .token import AccessToken

# (endpoint, errcode, seconds) after every HTTP exchange. errcode is 0 on
# success and None when WeChat gave no usable answer (see WeChatError).
CallObserver = Callable[[str, int | None, float], None]

# A multipart upload: field name -> (filename, content, content type).
Files = dict[str, tuple[str, bytes, str]]

_BINARY_MEDIA_TYPES = ("image/", "audio/", "video/", "application/octet-stream")

# httpx logs every request's URL at INFO, and WeChat's URLs carry the access token, the app secret or a
# login code: only its warnings get through, in every process that talks to WeChat.
logging.getLogger("httpx").setLevel(logging.WARNING)


class WeChatClient:
    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_secret: str,
        redis: Redis,
        key_prefix: str,
        timeout: float,
        http: httpx.AsyncClient | None = None,
        on_call: CallObserver | None = None,
        verify: ssl.SSLContext | bool = True,
    ):
        self.app_id = app_id
        self.app_secret = app_secret
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._owns_http = http is None
        # No per-phase limit of httpx's own: `_send` bounds the whole call by `timeout`.
        self._http = http if http is not None else httpx.AsyncClient(timeout=None, verify=verify)
        self._on_call = on_call
        self.token = AccessToken(self, redis, key_prefix, fetch_timeout=timeout)
        self.qrcode = QrCodeApi(self)
        self.media = MediaApi(self)
        self.menu = MenuApi(self)
        self.message = MessageApi(self)
        self.miniapp = MiniAppApi(self)
        self.risk = RiskApi(self)
        self.user = UserApi(self)
        self.web_auth = WebAuthApi(self)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> WeChatClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        files: Files | None = None,
        token: bool = True,
    ) -> dict[str, Any] | bytes:
        """WeChat's answer: parsed JSON, or the bytes of a binary answer.

        Raises a `WeChatError` for a non-zero errcode or a missing answer. With
        `token`, a rejected access token is refreshed and the call retried
        once; a second rejection is raised.
        """
        endpoint = path.strip("/")
        if not token:
            return await self._exchange(method, endpoint, params, json, files)

        async def attempt(access_token: str) -> dict[str, Any] | bytes:
            return await self._exchange(method, endpoint, {**(params or {}), "access_token": access_token}, json, files)

        access_token = await self.token.get()
        try:
            return await attempt(access_token)
        except WeChatTokenRejected:
            fresh_token = await self.token.refresh(rejected=access_token)
        return await attempt(fresh_token)

    async def _exchange(
        self,
        method: str,
        endpoint: str,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        files: Files | None,
    ) -> dict[str, Any] | bytes:
        started = time.perf_counter()
        errcode: int | None = None
        try:
            answer = await self._send(method, endpoint, params, body, files)
            errcode = 0
            return answer
        except WeChatError as error:
            errcode = error.errcode
            raise
        finally:
            if self._on_call is not None:
                self._on_call(endpoint, errcode, time.perf_counter() - started)

    async def _send(
        self,
        method: str,
        endpoint: str,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        files: Files | None,
    ) -> dict[str, Any] | bytes:
        # WeChat shows \uXXXX escapes literally, so Chinese must travel as UTF-8.
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = None if body is None else {"Content-Type": "application/json; charset=utf-8"}
        try:
            # httpx's own timeouts bound each phase separately; this bounds the whole call.
            async with asyncio.timeout(self._timeout):
                response = await self._http.request(
                    method,
                    f"{self._base_url}/{endpoint}",
                    params=params,
                    content=content,
                    headers=headers,
                    files=files,
                )
        except (TimeoutError, httpx.TimeoutException):
            raise WeChatTimeout(None, f"no answer within {self._timeout}s", endpoint) from None
        except httpx.HTTPError as error:
            raise WeChatUnavailable(None, f"{type(error).__name__}: {error}", endpoint) from error
        return _parse(endpoint, response)


def _parse(endpoint: str, response: httpx.Response) -> dict[str, Any] | bytes:
    if not response.is_success:
        raise WeChatUnavailable(None, f"HTTP {response.status_code}", endpoint)
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type.startswith(_BINARY_MEDIA_TYPES):
        return response.content
    # Any other content type is WeChat's JSON: it labels it text/plain on some endpoints.
    try:
        answer = json.loads(response.content, strict=False)
    except ValueError:
        raise WeChatUnavailable(None, f"unreadable answer of type {media_type!r}", endpoint) from None
    if not isinstance(answer, dict):
        raise WeChatUnavailable(None, "answer is not a JSON object", endpoint)
    errcode = answer.get("errcode", 0)
    if errcode != 0:
        raise error_for(errcode, str(answer.get("errmsg", "")), endpoint)
    return answer
