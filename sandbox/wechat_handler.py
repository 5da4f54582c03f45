"""Serves every WeChat endpoint: records the call, applies injected faults,
checks the access token, then answers as the endpoint does."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tornado.web import HTTPError

from .calls import RecordedCall
from .endpoints import ENDPOINTS, Answer, Png, Received, Redirect
from .errors import SandboxError, error_answer
from .request_log import RequestLineOnly
from .state import SandboxState


class WeChatApiHandler(RequestLineOnly):
    def initialize(self, state: SandboxState) -> None:
        self._state = state
        self._caller_gone = asyncio.Event()

    def on_connection_close(self) -> None:
        self._caller_gone.set()

    async def get(self, endpoint: str) -> None:
        await self._serve(endpoint)

    async def post(self, endpoint: str) -> None:
        await self._serve(endpoint)

    async def _serve(self, endpoint: str) -> None:
        query = {name: values[0].decode(errors="replace") for name, values in self.request.query_arguments.items()}
        body, raw_body = self._json_body()
        self._state.calls.record(
            RecordedCall(
                endpoint=endpoint,
                method=self.request.method or "",
                query=query,
                body=body,
                raw_body=raw_body,
                multipart_fields=(*self.request.files, *self.request.body_arguments),
                at=time.time(),
            )
        )
        try:
            answer = await self._answer(endpoint, query, body)
        except SandboxError as error:
            answer = error_answer(error.errcode)
        except _CallerGone:
            return
        if isinstance(answer, Png):
            self.set_header("Content-Type", "image/png")
            self.finish(answer.content)
        elif isinstance(answer, Redirect):
            self.redirect(answer.location)
        else:
            self.set_header("Content-Type", "application/json; encoding=utf-8")
            self.finish(json.dumps(answer, ensure_ascii=False))

    async def _answer(self, endpoint: str, query: dict[str, str], body: Any) -> Answer:
        fault = self._state.faults.take(endpoint)
        if fault is not None:
            if fault.delay_seconds:
                await self._delay(fault.delay_seconds)
            if fault.errcode is not None:
                raise SandboxError(fault.errcode)
        served = ENDPOINTS.get(endpoint)
        if served is None:
            raise HTTPError(404)
        if self.request.method != served.method:
            raise SandboxError(43001 if served.method == "GET" else 43002)
        app_id = None
        if served.needs_token:
            app_id = self._state.tokens.app_of(query.get("access_token"))
            if app_id is None:
                raise SandboxError(40001)
        return await served.answer(self._state, Received(app_id, query, body, self.request.files))

    async def _delay(self, seconds: float) -> None:
        """Wait `seconds`, unless the caller hangs up first (a client that timed out)."""
        try:
            await asyncio.wait_for(self._caller_gone.wait(), seconds)
        except TimeoutError:
            return
        raise _CallerGone

    def _json_body(self) -> tuple[Any, str | None]:
        """The parsed JSON body and its text; (None, text) when it does not parse."""
        if not self.request.body or self.request.files or self.request.body_arguments:
            return None, None
        try:
            raw_body = self.request.body.decode()
        except UnicodeDecodeError:
            return None, self.request.body.decode(errors="replace")
        try:
            return json.loads(raw_body), raw_body
        except ValueError:
            return None, raw_body


class _CallerGone(Exception):
    """The caller hung up while its answer was delayed: there is no one to answer."""
