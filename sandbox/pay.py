"""WeChat Pay API v3's merchant transfer (商家转账), JSAPI payments and refunds, as the sandbox speaks them.

Every request must carry a valid `WECHATPAY2-SHA256-RSA2048` Authorization of a known merchant (else
`401 SIGN_ERROR`, unsigned, as WeChat Pay answers it); every other answer is signed (see `SandboxPay.sign`).
Errors are WeChat Pay's: an HTTP status with `{code, message}`. An injected fault (`Fault(endpoint, ...)`,
endpoint one of the `*_ENDPOINT` names) answers its errcode's error instead (see PAY_FAULTS), after its delay;
a delay alone carries the request out and then waits before answering, as a WeChat Pay whose answer is lost
on the way does.

`/_sandbox/transfer-bills/{out_bill_no}/confirm|cancel|fail` do what the payee (accepting it or not) and
WeChat Pay (closing it) would, and deliver the callback before answering. So do
`/_sandbox/pay/{out_trade_no}/pay` (the buyer pays; `?deliver=0` loses the callback, `?times=N` repeats it)
and `/_sandbox/refunds/{out_refund_no}/succeed|close|abnormal` (WeChat Pay ends a refund).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from typing import Any

from tornado.web import RequestHandler

from .calls import RecordedCall
from .state import SandboxState
from .wechat_pay import BillNotWaiting, RefundEnding, TradeRefused, oaep_open

BILLS = "v3/fund-app/mch-transfer/transfer-bills"
CREATE_BILL_ENDPOINT = BILLS
QUERY_BILL_ENDPOINT = f"{BILLS}/out-bill-no"
CANCEL_BILL_ENDPOINT = f"{BILLS}/out-bill-no/cancel"
CERTIFICATES_ENDPOINT = "v3/certificates"
TRANSACTIONS = "v3/pay/transactions"
CREATE_TRANSACTION_ENDPOINT = f"{TRANSACTIONS}/jsapi"
QUERY_TRANSACTION_ENDPOINT = f"{TRANSACTIONS}/out-trade-no"
CLOSE_TRANSACTION_ENDPOINT = f"{TRANSACTIONS}/out-trade-no/close"
REFUNDS = "v3/refund/domestic/refunds"
CREATE_REFUND_ENDPOINT = REFUNDS
QUERY_REFUND_ENDPOINT = f"{REFUNDS}/out-refund-no"

# An injected fault's errcode -> (HTTP status, WeChat Pay's code); FORGED_ANSWER answers 200 signed by a stranger.
FORGED_ANSWER = 1
PAY_FAULTS = {400: (400, "PARAM_ERROR"), 401: (401, "SIGN_ERROR"), 402: (403, "NOT_ENOUGH"), 403: (403, "NO_AUTH"),
              404: (404, "NOT_FOUND"), 429: (429, "FREQUENCY_LIMITED"), 500: (500, "SYSTEM_ERROR")}
COMMISSION_REPORT = {"岗位类型", "报酬说明"}  # what scene 1005 (佣金报酬) must report, exactly
USER_NAME_FROM_FEN = 200_000  # from 2,000 yuan the payee's name is required
_OUT_BILL_NO = re.compile(r"^[A-Za-z0-9]{5,32}$")
_OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
_OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
MAX_DESCRIPTION_CHARACTERS = 127
MAX_REASON_CHARACTERS = 80
REFUND_ENDINGS: dict[str, RefundEnding] = {"succeed": "SUCCESS", "close": "CLOSED", "abnormal": "ABNORMAL"}


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
            try:
                answer = carry_out(body, *args)
            except TradeRefused as refused:
                raise _PayError(refused.status, refused.code, refused.message) from None
            await asyncio.sleep(delay)  # done, and answered late: past a caller's timeout, the answer is lost
            self._answer(200 if answer is not None else 204, answer)
        except _PayError as error:
            await asyncio.sleep(delay)
            self._answer(error.status, {"code": error.code, "message": error.message})

    def _answer(self, status: int, answer: dict[str, Any] | None, forged: bool = False) -> None:
        """A signed answer; `None`: no content (204), its empty body signed all the same."""
        if self._caller_gone:
            return  # it gave up waiting: the answer is lost
        text = json.dumps(answer, ensure_ascii=False) if answer is not None else ""
        self.set_status(status)
        if answer is not None:
            self.set_header("Content-Type", "application/json; charset=utf-8")
        headers = self._pay.sign(text, self._signing_serial())
        if forged:
            headers["Wechatpay-Signature"] = self._pay.sign(text + " ", None)["Wechatpay-Signature"]
        for name, value in headers.items():
            self.set_header(name, value)
        self.finish(text or None)

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

    def _transaction(self, out_trade_no: str):
        transaction = self._pay.transactions.get(out_trade_no)
        if transaction is None:
            raise _PayError(404, "ORDER_NOT_EXIST", "订单不存在")
        return transaction


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


class JsapiTransactionsHandler(_PayHandler):
    endpoint = CREATE_TRANSACTION_ENDPOINT

    async def post(self) -> None:
        await self._serve(self._create)

    def _create(self, body: Any) -> dict[str, Any]:
        problem = _invalid_transaction(body)
        if problem:
            raise _PayError(400, "PARAM_ERROR", problem)
        if body["appid"] not in self._state.apps or body["mchid"] != self._pay.mch_id:
            raise _PayError(400, "PARAM_ERROR", "appid 与 mchid 不匹配")
        time_expire = _rfc3339(body["time_expire"]) if "time_expire" in body else None
        return {"prepay_id": self._pay.prepay(body, time_expire).prepay_id}


class TransactionHandler(_PayHandler):
    endpoint = QUERY_TRANSACTION_ENDPOINT

    async def get(self, out_trade_no: str) -> None:
        await self._serve(self._query, out_trade_no)

    def _query(self, _body: Any, out_trade_no: str) -> dict[str, Any]:
        if self.get_query_argument("mchid", None) != self._pay.mch_id:
            raise _PayError(400, "PARAM_ERROR", "mchid 必填, 且须为本商户号")
        return self._pay.transaction_answer(self._transaction(out_trade_no))


class CloseTransactionHandler(_PayHandler):
    endpoint = CLOSE_TRANSACTION_ENDPOINT

    async def post(self, out_trade_no: str) -> None:
        await self._serve(self._close, out_trade_no)

    def _close(self, body: Any, out_trade_no: str) -> None:
        if not isinstance(body, dict) or body.get("mchid") != self._pay.mch_id:
            raise _PayError(400, "PARAM_ERROR", "mchid 必填, 且须为本商户号")
        self._pay.close_transaction(self._transaction(out_trade_no).out_trade_no)


class RefundsHandler(_PayHandler):
    endpoint = CREATE_REFUND_ENDPOINT

    async def post(self) -> None:
        await self._serve(self._create)

    def _create(self, body: Any) -> dict[str, Any]:
        problem = _invalid_refund(body)
        if problem:
            raise _PayError(400, "PARAM_ERROR", problem)
        return self._pay.refund_answer(self._pay.new_refund(body))


class RefundHandler(_PayHandler):
    endpoint = QUERY_REFUND_ENDPOINT

    async def get(self, out_refund_no: str) -> None:
        await self._serve(self._query, out_refund_no)

    def _query(self, _body: Any, out_refund_no: str) -> dict[str, Any]:
        refund = self._pay.refunds.get(out_refund_no)
        if refund is None:
            raise _PayError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return self._pay.refund_answer(refund)


class TransactionControl(RequestHandler):
    """The buyer pays: answers the transaction and the status of each callback."""

    def initialize(self, state: SandboxState) -> None:
        self._pay = state.pay

    async def post(self, out_trade_no: str) -> None:
        if out_trade_no not in self._pay.transactions:
            self.set_status(404)
            return self.finish({"error": f"no transaction {out_trade_no}"})
        try:
            times = int(self.get_query_argument("times", "1"))
        except ValueError:
            times = 0
        if not 1 <= times <= 10:
            self.set_status(400)
            return self.finish({"error": "times is a whole number from 1 to 10"})
        try:
            transaction = await self._pay.pay(out_trade_no, self.get_query_argument("deliver", "1") != "0", times)
        except TradeRefused as refused:
            self.set_status(409)
            return self.finish({"error": str(refused)})
        self.finish({"out_trade_no": transaction.out_trade_no, "trade_state": transaction.trade_state,
                     "transaction_id": transaction.transaction_id, "notices_sent": transaction.notices_sent})


class RefundControl(RequestHandler):
    """WeChat Pay ends a refund: answers the refund and the status of each callback."""

    def initialize(self, state: SandboxState) -> None:
        self._pay = state.pay

    async def post(self, out_refund_no: str, action: str) -> None:
        if out_refund_no not in self._pay.refunds:
            self.set_status(404)
            return self.finish({"error": f"no refund {out_refund_no}"})
        try:
            refund = await self._pay.finish_refund(out_refund_no, REFUND_ENDINGS[action])
        except TradeRefused as refused:
            self.set_status(409)
            return self.finish({"error": str(refused)})
        self.finish({"out_refund_no": refund.out_refund_no, "status": refund.status,
                     "notices_sent": refund.notices_sent})


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


def _invalid_transaction(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "请求体须为 JSON 对象"
    for name in ("appid", "mchid", "description", "out_trade_no", "notify_url"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"{name} 必填"
    if len(body["description"]) > MAX_DESCRIPTION_CHARACTERS:
        return f"description 最多 {MAX_DESCRIPTION_CHARACTERS} 个字符"
    if not _OUT_TRADE_NO.match(body["out_trade_no"]):
        return "out_trade_no 须为 6-32 位数字、大小写字母或 _-|*"
    if "?" in body["notify_url"]:
        return "notify_url 须为不带参数的 URL"
    if "time_expire" in body and _rfc3339(body["time_expire"]) is None:
        return "time_expire 须为 RFC 3339 格式 (yyyy-MM-DDTHH:mm:ss+TIMEZONE)"
    problem = _invalid_amount(body.get("amount"), ("total",))
    if problem:
        return problem
    payer = body.get("payer")
    if not isinstance(payer, dict) or not isinstance(payer.get("openid"), str) or not payer["openid"]:
        return "payer.openid 必填"
    return None


def _invalid_refund(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "请求体须为 JSON 对象"
    if not isinstance(body.get("out_trade_no"), str) or not _OUT_TRADE_NO.match(body["out_trade_no"]):
        return "out_trade_no 必填: 6-32 位数字、大小写字母或 _-|*"
    if not isinstance(body.get("out_refund_no"), str) or not _OUT_REFUND_NO.match(body["out_refund_no"]):
        return "out_refund_no 必填: 1-64 位数字、大小写字母或 _-|*@"
    if "reason" in body and (not isinstance(body["reason"], str) or len(body["reason"]) > MAX_REASON_CHARACTERS):
        return f"reason 最多 {MAX_REASON_CHARACTERS} 个字符"
    if "notify_url" in body and (not isinstance(body["notify_url"], str) or "?" in body["notify_url"]):
        return "notify_url 须为不带参数的 URL"
    return _invalid_amount(body.get("amount"), ("refund", "total"))


def _invalid_amount(amount: Any, names: tuple[str, ...]) -> str | None:
    if not isinstance(amount, dict) or amount.get("currency") != "CNY":
        return "amount 必填, 且 amount.currency 须为 CNY"
    for name in names:
        value = amount.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return f"amount.{name} 须为正整数 (分)"
    return None


def _rfc3339(text: Any) -> dt.datetime | None:
    """A time with its offset, as WeChat Pay wants it; None when it is not one."""
    try:
        moment = dt.datetime.fromisoformat(text) if isinstance(text, str) and "T" in text else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None
