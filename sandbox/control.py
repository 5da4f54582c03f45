"""The sandbox's control API under /_sandbox/, for tests and servers in other processes."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any


from .faults import Fault
from .request_log import RequestLineOnly
from .state import SandboxState

# Fault field -> the JSON types it accepts.
_FAULT_FIELDS: dict[str, tuple[type, ...]] = {
    "endpoint": (str,),
    "errcode": (int, type(None)),
    "times": (int, type(None)),
    "delay_seconds": (int, float),
}


class _ControlHandler(RequestLineOnly):
    def initialize(self, state: SandboxState) -> None:
        self._state = state

    def _reply(self, answer: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(answer, ensure_ascii=False))


class CallsControl(_ControlHandler):
    def get(self) -> None:
        endpoint = self.get_query_argument("endpoint", None)
        self._reply({"calls": [asdict(call) for call in self._state.calls.received(endpoint)]})

    def delete(self) -> None:
        self._state.calls.clear()
        self._reply({"ok": True})


class FaultsControl(_ControlHandler):
    def post(self) -> None:
        """Body: {endpoint, errcode?, times? (default 1, null for every call), delay_seconds?}."""
        try:
            fault = _fault_from_json(self.request.body)
        except ValueError as error:
            self._reply({"error": str(error)}, status=400)
            return
        self._state.faults.add(fault)
        self._reply({"ok": True})

    def delete(self) -> None:
        self._state.faults.clear()
        self._reply({"ok": True})


class ExpireTokensControl(_ControlHandler):
    def post(self) -> None:
        self._state.tokens.expire_all()
        self._reply({"ok": True})


class RiskRanksControl(_ControlHandler):
    def post(self) -> None:
        """Body: {openid, risk_rank (0-4)}: what getuserriskrank answers for that openid from now on."""
        try:
            self._state.risk_ranks.set(*_risk_rank_from_json(self.request.body))
        except ValueError as error:
            self._reply({"error": str(error)}, status=400)
            return
        self._reply({"ok": True})

    def delete(self) -> None:
        """Every openid ranks the lowest again."""
        self._state.risk_ranks.clear()
        self._reply({"ok": True})


def _fault_from_json(body: bytes) -> Fault:
    fields = json.loads(body or b"null")
    if not isinstance(fields, dict) or "endpoint" not in fields:
        raise ValueError("the body must be a JSON object with at least an endpoint")
    for name, value in fields.items():
        if name not in _FAULT_FIELDS:
            raise ValueError(f"unknown field {name!r}; known: {sorted(_FAULT_FIELDS)}")
        if isinstance(value, bool) or not isinstance(value, _FAULT_FIELDS[name]):
            raise ValueError(f"{name} has the wrong type")
    return Fault(**fields)


def _risk_rank_from_json(body: bytes) -> tuple[str, int]:
    fields = json.loads(body or b"null")
    openid, rank = (fields.get("openid"), fields.get("risk_rank")) if isinstance(fields, dict) else (None, None)
    if not isinstance(openid, str) or not openid or type(rank) is not int:
        raise ValueError('the body must be {"openid": a string, "risk_rank": an integer}')
    return openid, rank
