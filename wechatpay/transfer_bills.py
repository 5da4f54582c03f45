"""Paying promoters: WeChat Pay's merchant transfer (商家转账), in user-confirmation mode.

A bill is made with `POST /v3/fund-app/mch-transfer/transfer-bills` under the merchant's own number
(`out_bill_no`, the withdrawal's id: sending it again answers the same bill, never a second one). It waits
for the payee to accept it in WeChat (`WAIT_USER_CONFIRM`, with the `package_info` the mini-program hands
to `wx.requestMerchantTransfer`), then is transferred. `GET .../out-bill-no/{no}` tells its state (without
`package_info`), `POST .../out-bill-no/{no}/cancel` cancels it while the payee has not accepted it, and
WeChat Pay calls `notify_url` (`MCHTRANSFER.BILL.FINISHED`) when it is final.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from distribution.withdrawals import BillState

from .client import WeChatPayClient
from .errors import PayRefused, PayUnclear

BILLS_PATH = "/v3/fund-app/mch-transfer/transfer-bills"
TRANSFER_NOTIFY_PATH = "/wechatpay/notify/transfer"
BILL_FINISHED = "MCHTRANSFER.BILL.FINISHED"
MAX_REMARK_CHARACTERS = 32


@dataclass(frozen=True)
class TransferScene:
    """The transfer scene the merchant applied for, and the report WeChat Pay wants with each bill: scene 1005
    (佣金报酬) wants exactly 岗位类型 and 报酬说明."""

    scene_id: str = "1005"
    report_infos: tuple[tuple[str, str], ...] = (("岗位类型", "推广员"), ("报酬说明", "推广佣金"))
    remark: str = "佣金提现"


@dataclass(frozen=True)
class Transfer:
    out_bill_no: str
    app_id: str  # the app whose openid is paid
    openid: str
    amount_fen: int
    user_name: str | None = None  # sent encrypted; WeChat Pay checks it against the payee's real name


@dataclass(frozen=True)
class Bill:
    out_bill_no: str
    state: BillState
    transfer_bill_no: str | None = None
    package_info: str | None = None  # only in the answer to create, while it waits for the payee
    fail_reason: str | None = None
    amount_fen: int | None = None  # `transfer_amount`: in the query's answer and the callback


def bill_of(answer: dict[str, Any], mch_id: str | None = None) -> Bill:
    """A bill from an answer or a callback's resource; PayUnclear when it is not one, or (`mch_id` given:
    the query names `mch_id`, a callback `mchid`) is another merchant's."""
    try:
        state = BillState(answer.get("state"))
        out_bill_no = answer["out_bill_no"]
    except (ValueError, KeyError):
        raise PayUnclear("BAD_ANSWER", f"not a transfer bill (state {answer.get('state')!r})") from None
    if mch_id is not None and answer.get("mch_id", answer.get("mchid")) != mch_id:
        raise PayUnclear("OTHER_MERCHANT", "the bill names another merchant")
    amount = answer.get("transfer_amount")
    return Bill(out_bill_no, state, answer.get("transfer_bill_no"), answer.get("package_info") or None,
                answer.get("fail_reason") or None, amount if type(amount) is int else None)


class TransferBills:
    def __init__(self, client: WeChatPayClient, notify_url: str, scene: TransferScene = TransferScene()):
        self.client = client
        self.notify_url = notify_url
        self.scene = scene

    @property
    def mch_id(self) -> str:
        return self.client.mch_id

    async def create(self, transfer: Transfer) -> Bill:
        """The bill under `transfer.out_bill_no`, made now or before. Only a 200 in WAIT_USER_CONFIRM (or a
        later state) means a bill exists; PayUnclear, PayRefused or PaySignatureRejected otherwise."""
        body: dict[str, Any] = {
            "appid": transfer.app_id,
            "out_bill_no": transfer.out_bill_no,
            "transfer_scene_id": self.scene.scene_id,
            "openid": transfer.openid,
            "transfer_amount": transfer.amount_fen,
            "transfer_remark": self.scene.remark[:MAX_REMARK_CHARACTERS],
            "notify_url": self.notify_url,
            "transfer_scene_report_infos": [{"info_type": kind, "info_content": content}
                                            for kind, content in self.scene.report_infos],
        }
        serial = None
        if transfer.user_name:
            body["user_name"], serial = await self.client.encrypt(transfer.user_name)
        bill = bill_of(await self.client.request("POST", BILLS_PATH, body, encrypted_with=serial))
        if bill.out_bill_no != transfer.out_bill_no:
            raise PayUnclear("BAD_ANSWER", "the answer is about another bill")
        return bill

    async def query(self, out_bill_no: str) -> Bill | None:
        """The bill, or None when WeChat Pay has none under this number."""
        try:
            answer = await self.client.request("GET", f"{BILLS_PATH}/out-bill-no/{quote(out_bill_no, safe='')}")
        except PayRefused as refused:
            if refused.code == "NOT_FOUND":
                return None
            raise
        return bill_of(answer, self.mch_id)

    async def cancel(self, out_bill_no: str) -> Bill:
        """CANCELING or CANCELLED; PayRefused when it can no longer be cancelled (the payee accepted it)."""
        answer = await self.client.request("POST", f"{BILLS_PATH}/out-bill-no/{quote(out_bill_no, safe='')}/cancel")
        return bill_of(answer)
