"""WeChat Pay's merchant transfer to a user's balance (商家转账到零钱), as the sandbox speaks it.

`POST /v3/transfer/batches` pays one or more openids; `out_batch_no` makes it
idempotent (the same batch number answers the batch already made). Errors are
WeChat Pay's: an HTTP status with `{code, message}`. An injected fault's
errcode picks the error (see PAY_FAULTS).
"""

from __future__ import annotations

import json
import time
from typing import Any

from tornado.web import RequestHandler

from .calls import RecordedCall
from .state import SandboxState

TRANSFER_ENDPOINT = "v3/transfer/batches"
# An injected fault's errcode -> (HTTP status, WeChat Pay's code).
PAY_FAULTS = {400: (400, "NOT_ENOUGH"), 403: (403, "NO_AUTH"), 429: (429, "FREQUENCY_LIMITED"),
              500: (500, "SYSTEM_ERROR")}


class TransferBatchesHandler(RequestHandler):
    def initialize(self, state: SandboxState) -> None:
        self._state = state

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, ensure_ascii=False))

    def _error(self, status: int, code: str, message: str) -> None:
        self._answer(status, {"code": code, "message": message})

    def post(self) -> None:
        try:
            body = json.loads(self.request.body)
        except ValueError:
            body = None
        self._state.calls.record(RecordedCall(TRANSFER_ENDPOINT, "POST", {}, body, self.request.body.decode(errors="replace"),
                                              (), time.time()))
        fault = self._state.faults.take(TRANSFER_ENDPOINT)
        if fault is not None and fault.errcode is not None:
            status, code = PAY_FAULTS.get(fault.errcode, (500, "SYSTEM_ERROR"))
            return self._error(status, code, "injected by the sandbox")
        problem = _invalid(body)
        if problem:
            return self._error(400, "PARAM_ERROR", problem)
        batch = self._state.transfers.setdefault(body["out_batch_no"], {
            "out_batch_no": body["out_batch_no"],
            "batch_id": f"1030000071100999991182020050700{len(self._state.transfers):04d}",
            "create_time": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
            "batch_status": "ACCEPTED",
            "total_amount": body["total_amount"],
            "details": body["transfer_detail_list"],
        })
        self._answer(200, {key: batch[key] for key in ("out_batch_no", "batch_id", "create_time", "batch_status")})


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    details = body.get("transfer_detail_list")
    if not isinstance(body.get("out_batch_no"), str) or not body["out_batch_no"]:
        return "out_batch_no is required"
    if not isinstance(details, list) or not details:
        return "transfer_detail_list is required"
    amounts = [d.get("transfer_amount") for d in details if isinstance(d, dict)]
    if len(amounts) != len(details) or not all(isinstance(a, int) and a > 0 for a in amounts) \
            or not all(isinstance(d.get("openid"), str) and d["openid"] for d in details):
        return "every detail needs an openid and a positive integer transfer_amount (fen)"
    if body.get("total_amount") != sum(amounts) or body.get("total_num") != len(details):
        return "total_amount and total_num must add up the details"
    return None
