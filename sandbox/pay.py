"""WeChat Pay API v3's merchant transfer (商家转账), as the sandbox speaks it.

Every request must carry a valid `WECHATPAY2-SHA256-RSA2048` Authorization of a known merchant (else
`401 SIGN_ERROR`, unsigned, as WeChat Pay answers it); every other answer is signed (see `SandboxPay.sign`).
Errors are WeChat Pay's: an HTTP status with `{code, message}`. An injected fault (`Fault(endpoint, ...)`,
endpoint one of the `*_ENDPOINT` names) answers its errcode's error instead (see PAY_FAULTS), after its delay;
a delay alone carries the request out and then waits before answering, as a WeChat Pay whose answer is lost
on the way does.

`/_sandbox/transfer-bills/{out_bill_no}/confirm|cancel|fail` do what the payee (accepting it or not) and
WeChat Pay (closing it) would, and deliver the callback before answering.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from tornado.web import RequestHandler

from .calls import RecordedCall
from .state import SandboxState
from .wechat_pay import BillNotWaiting, oaep_open

BILLS = "v3/fund-app/mch-transfer/transfer-bills"
CREATE_BILL_ENDPOINT = BILLS
QUERY_BILL_ENDPOINT = f"{BILLS}/out-bill-no"
CANCEL_BILL_ENDPOINT = f"{BILLS}/out-bill-no/cancel"
CERTIFICATES_ENDPOINT = "v3/certificates"

# An injected fault's errcode -> (HTTP status, WeChat Pay's code); FORGED_ANSWER answers 200 signed by a stranger.
FORGED_ANSWER = 1
PAY_FAULTS = {400: (400, "PARAM_ERROR"), 401: (401, "SIGN_ERROR"), 402: (403, "NOT_ENOUGH"), 403: (403, "NO_AUTH"),
              404: (404, "NOT_FOUND"), 429: (429, "FREQUENCY_LIMITED"), 500: (500, "SYSTEM_ERROR")}
COMMISSION_REPORT = {"岗位类型", "报酬说明"}  # what scene 1005 (佣金报酬) must report, exactly
USER_NAME_FROM_FEN = 200_000  # from 2,000 yuan the payee's name is required
_OUT_BILL_NO = re.compile(r"^[A-Za-z0-9]{5,32}$")


class _PayError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _PayHandler(RequestHandler):
    endpoint = ""

    def initialize(self, state: SandboxState) -> None:
        self._state = state
        self._pay = state.pay
        self._caller_gone = False

    def on_connection_close(self) -> None:
        self._caller_gone = True

    async def _serve(self, carry_out: Any, *args: str) -> None:
        raw = self.request.body.decode(errors="replace")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self._state.calls.record(RecordedCall(self.endpoint, self.request.method or "", {}, body, raw, (), time.time()))
        refusal = self._pay.verify_request(self.request.method or "", self.request.uri or "", raw,
                                           self.request.headers.get("Authorization"))
        if refusal is not None:
            return self._unsigned(401, "SIGN_ERROR", f"签名错误: {refusal}")
        fault = self._state.faults.take(self.endpoint)
        delay = fault.delay_seconds if fault is not None else 0.0
        try:
            if fault is not None and fault.errcode is not None:
                await asyncio.sleep(delay)
                if fault.errcode == FORGED_ANSWER:
                    return self._answer(200, {"state": "SUCCESS", "out_bill_no": args[0] if args else ""}, forged=True)
                status, code = PAY_FAULTS.get(fault.errcode, (500, "SYSTEM_ERROR"))
                if status == 401:
                    return self._unsigned(status, code, "injected by the sandbox")
                raise _PayError(status, code, "injected by the sandbox")
            answer = carry_out(body, *args)
            await asyncio.sleep(delay)  # done, and answered late: past a caller's timeout, the answer is lost
            self._answer(200, answer)
        except _PayError as error:
            await asyncio.sleep(delay)
            self._answer(error.status, {"code": error.code, "message": error.message})

    def _answer(self, status: int, answer: dict[str, Any], forged: bool = False) -> None:
        if self._caller_gone:
            return  # it gave up waiting: the answer is lost
        text = json.dumps(answer, ensure_ascii=False)
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        headers = self._pay.sign(text, self._signing_serial())
        if forged:
            headers["Wechatpay-Signature"] = self._pay.sign(text + " ", None)["Wechatpay-Signature"]
        for name, value in headers.items():
            self.set_header(name, value)
        self.finish(text)

    def _signing_serial(self) -> str | None:
        """The key the answer is signed with: the one the request names in `Wechatpay-Serial`, if any."""
        return self.request.headers.get("Wechatpay-Serial")

    def _unsigned(self, status: int, code: str, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"code": code, "message": message}, ensure_ascii=False))

    def _bill(self, out_bill_no: str):
        bill = self._pay.bills.get(out_bill_no)
        if bill is None:
            raise _PayError(404, "NOT_FOUND", "记录不存在")
        return bill


class TransferBillsHandler(_PayHandler):
    endpoint = CREATE_BILL_ENDPOINT

    async def post(self) -> None:
        await self._serve(self._create)

    def _create(self, body: Any) -> dict[str, Any]:
        problem = _invalid(body)
        if problem:
            raise _PayError(400, "PARAM_ERROR", problem)
        if body["appid"] not in self._state.apps:
            raise _PayError(400, "PARAM_ERROR", "appid 与商户号未绑定")
        user_name = None
        if "user_name" in body:
            key = self._pay.decrypting_key(self.request.headers.get("Wechatpay-Serial"))
            user_name = oaep_open(key, body["user_name"]) if key is not None else None
            if user_name is None:
                raise _PayError(400, "PARAM_ERROR", "user_name 解密失败: 请用 Wechatpay-Serial 所指的公钥加密")
        elif body["transfer_amount"] >= USER_NAME_FROM_FEN:
            raise _PayError(400, "PARAM_ERROR", "转账金额 >= 2000 元时 user_name 必填")
        existing = self._pay.bills.get(body["out_bill_no"])
        if existing is None:
            return self._pay.answer(self._pay.new_bill(body, user_name))
        same = (existing.appid, existing.openid, existing.transfer_amount, existing.user_name) == (
            body["appid"], body["openid"], body["transfer_amount"], user_name)
        if not same:
            raise _PayError(400, "INVALID_REQUEST", "商户单号重复, 且请求参数与原单不一致")
        return self._pay.answer(existing)


class TransferBillHandler(_PayHandler):
    endpoint = QUERY_BILL_ENDPOINT

    async def get(self, out_bill_no: str) -> None:
        await self._serve(lambda _body, number: self._pay.query_answer(self._bill(number)), out_bill_no)


class CancelTransferBillHandler(_PayHandler):
    endpoint = CANCEL_BILL_ENDPOINT

    async def post(self, out_bill_no: str) -> None:
        await self._serve(self._cancel, out_bill_no)

    def _cancel(self, _body: Any, out_bill_no: str) -> dict[str, Any]:
        self._bill(out_bill_no)
        try:
            bill = self._pay.cancel(out_bill_no)
        except BillNotWaiting as error:
            raise _PayError(400, "INVALID_REQUEST", f"当前状态不可撤销: {error}") from None
        return {"out_bill_no": bill.out_bill_no, "transfer_bill_no": bill.transfer_bill_no, "state": bill.state,
                "update_time": bill.update_time}


class CertificatesHandler(_PayHandler):
    endpoint = CERTIFICATES_ENDPOINT

    async def get(self) -> None:
        await self._serve(self._certificates)

    def _certificates(self, _body: Any) -> dict[str, Any]:
        return {"data": [self._pay.sealed_certificate(each) for each in self._pay.platform_certificates()]}

    def _signing_serial(self) -> str | None:
        return self._pay.platform_certificates()[-1].serial


class TransferBillControl(RequestHandler):
    """What the payee and WeChat Pay do to a bill; answers the bill and the status of each callback."""

    def initialize(self, state: SandboxState) -> None:
        self._pay = state.pay

    async def post(self, out_bill_no: str, action: str) -> None:
        if out_bill_no not in self._pay.bills:
            self.set_status(404)
            return self.finish({"error": f"no bill {out_bill_no}"})
        try:
            if action == "confirm":
                bill = await self._pay.confirm(out_bill_no)
            elif action == "cancel":
                bill = await self._pay.user_cancel(out_bill_no)
            else:
                bill = await self._pay.fail(out_bill_no)
        except BillNotWaiting as error:
            self.set_status(409)
            return self.finish({"error": str(error)})
        self.finish({"out_bill_no": bill.out_bill_no, "state": bill.state, "notices_sent": bill.notices_sent})


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "请求体须为 JSON 对象"
    for name in ("appid", "out_bill_no", "transfer_scene_id", "openid", "transfer_remark"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"{name} 必填"
    if not _OUT_BILL_NO.match(body["out_bill_no"]):
        return "out_bill_no 须为 5-32 位数字或大小写字母"
    amount = body.get("transfer_amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
        return "transfer_amount 须为正整数 (分)"
    if len(body["transfer_remark"]) > 32:
        return "transfer_remark 最多 32 个字符"
    infos = body.get("transfer_scene_report_infos")
    if not isinstance(infos, list) or not all(isinstance(each, dict) and isinstance(each.get("info_type"), str)
                                              and isinstance(each.get("info_content"), str) for each in infos):
        return "transfer_scene_report_infos 必填"
    if body["transfer_scene_id"] == "1005" and sorted(each["info_type"] for each in infos) != sorted(COMMISSION_REPORT):
        return "转账场景 1005 须报备且仅报备 岗位类型 与 报酬说明"
    if "notify_url" in body and (not isinstance(body["notify_url"], str) or "?" in body["notify_url"]):
        return "notify_url 须为不带参数的 URL"
    return None
