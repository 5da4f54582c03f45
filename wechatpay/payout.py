"""Paying promoters: WeChat Pay's merchant transfer to a user's balance.

The sandbox speaks this contract unsigned; the real WeChat Pay also wants
each request signed with the merchant's API certificate (WECHATPAY2-SHA256-
RSA2048), which is configured when a shop goes live and is not built yet.
"""

from __future__ import annotations

import asyncio

import httpx

# WeChat Pay's codes worth another try later; any other refusal is final.
RETRYABLE = {"NOT_ENOUGH", "FREQUENCY_LIMITED", "SYSTEM_ERROR"}


class PayoutFailed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.retryable = code in RETRYABLE


class PayoutPort:
    def __init__(self, base_url: str, timeout: float, http: httpx.AsyncClient | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = http or httpx.AsyncClient()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def transfer(self, app_id: str, out_batch_no: str, openid: str, amount_fen: int, remark: str) -> str:
        """WeChat Pay's batch id. `out_batch_no` makes a repeat harmless: the same batch comes back.
        `openid` is the payee's openid in the app `app_id`."""
        body = {
            "appid": app_id, "out_batch_no": out_batch_no, "batch_name": remark, "batch_remark": remark,
            "total_amount": amount_fen, "total_num": 1,
            "transfer_detail_list": [{"out_detail_no": out_batch_no, "transfer_amount": amount_fen,
                                      "transfer_remark": remark, "openid": openid}],
        }
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.http.post(f"{self.base_url}/v3/transfer/batches", json=body)
        except (TimeoutError, httpx.HTTPError) as error:
            raise PayoutFailed("SYSTEM_ERROR", f"no answer from WeChat Pay: {type(error).__name__}") from error
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200:
            raise PayoutFailed(answer.get("code", "SYSTEM_ERROR"), answer.get("message", f"HTTP {response.status_code}"))
        return answer["batch_id"]
