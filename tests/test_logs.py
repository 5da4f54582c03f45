"""No openid, unionid, access token, secret, signature, session token or phone in any log line at INFO or above:
a realistic flow through the server, the worker and the sandbox, with every logger captured, and a failing
request of each 4xx kind with such values in its query string."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from bot.simulate import event_xml, text_xml
from bot.worker import job_handlers
from distribution.ledger import commission_frozen, commission_settled
from distribution.scene import promoter_scene
from distribution.withdrawals import WithdrawalRules
from sandbox.identities import openid_for, session_key_for, unionid_for
from stores.writes import WriteSet, commit
from tests.conftest import MERCHANT_TOKEN

MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
PHONE = "13912345678"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def worker_round(runtime) -> None:
    await runtime.relations.apply_follow_ups()
    await runtime.queue.drain("test-logs", job_handlers(runtime))


async def credit(runtime, member_id: str, fen: int, at) -> None:
    writes = WriteSet()
    writes.ledger(commission_frozen(member_id, "logs", fen) + commission_settled(member_id, "logs", fen), at)
    await commit(runtime.mongo, runtime.db, writes)


async def test_a_realistic_flow_logs_no_identifier_token_secret_signature_or_phone(server, sandbox, caplog):
    caplog.set_level(logging.INFO)
    runtime, http = server.runtime, server.http
    settings = runtime.settings
    oa, mini = settings.wechat_app_id, settings.miniapp_app_id
    signed_queries: list[dict] = []

    async def push(xml: str):
        query, body = server.signer.sign(xml)
        query["openid"] = parse_openid(xml)  # WeChat names the sender in the query string too
        signed_queries.append(query)
        return await http.post("/wechat", params=query, content=body)

    # The promoter logs in to the mini-program, gives a phone, and is paid a commission.
    login = await http.post("/api/v1/session", json={"code": "peggy", "profile": {"nickname": "佩吉"}})
    assert login.status_code == 200, login.text
    token, peggy_id = login.json()["token"], login.json()["member"]["id"]
    changed = await http.patch("/api/v1/me", json={"phone": PHONE}, headers=bearer(token))
    assert changed.status_code == 200, changed.text
    # A follower through her code, a follower who scans it, a text, a poster in chat and in the mini-program.
    quinn, rita = openid_for(oa, "quinn"), openid_for(oa, "rita")
    assert (await push(event_xml(quinn, "subscribe", f"qrscene_{promoter_scene(peggy_id)}"))).status_code == 200
    assert (await push(event_xml(rita, "subscribe"))).status_code == 200
    assert (await push(event_xml(rita, "SCAN", promoter_scene(peggy_id)))).status_code == 200
    assert (await push(text_xml(quinn, "你好"))).status_code == 200
    assert (await push(text_xml(openid_for(oa, "peggy"), "海报"))).status_code == 200
    assert (await http.get("/api/v1/poster", headers=bearer(token))).status_code == 200
    await worker_round(runtime)

    # Quinn's order is paid; Peggy withdraws what she earned.
    quinn_id = (await runtime.members.by_oa_openid(quinn))["_id"]
    order = {"order_no": "LOGS-1", "buyer": {"member_id": quinn_id},
             "items": [{"sku": "tea", "title": "龙井", "qty": 1, "paid_fen": 10_000}]}
    assert (await http.post("/api/merchant/v1/orders", json=order, headers=MERCHANT)).status_code == 201
    paid = await http.post("/api/merchant/v1/orders/LOGS-1/events", json={"event_id": "p1", "type": "paid"},
                           headers=MERCHANT)
    assert paid.status_code == 202
    await worker_round(runtime)
    await runtime.merchant_settings.put(WithdrawalRules.from_dict({"min_distinct_paying_buyers": 0,
                                                                   "auto_approve_under_fen": 100_000}))
    await credit(runtime, peggy_id, 5_000, datetime.now(timezone.utc))
    withdrawal = await http.post("/api/v1/withdrawals", json={"amount_fen": 3_000, "method": "wechat_balance"},
                                 headers=bearer(token))
    assert withdrawal.status_code == 201, withdrawal.text
    await worker_round(runtime)

    # A failing request of each 4xx kind, each with identifiers and tokens in its query string.
    leaky = {"openid": quinn, "access_token": "query-token-0123456789", "session": token}
    stale, _ = server.signer.sign("", timestamp="1")
    signed_queries.append(stale)
    replayed, replayed_body = server.signer.sign(text_xml(quinn, "hi"))
    signed_queries.append(replayed)
    assert (await http.post("/wechat", params=replayed, content=replayed_body)).status_code == 200
    failures = [
        (400, http.post("/api/v1/session", params=leaky, content=b"{")),
        (400, http.post("/wechat", params={**replayed, "openid": quinn}, content=b"<xml>unclosed")),
        (401, http.get("/api/v1/me", params=leaky)),
        (401, http.get("/api/merchant/v1/members", params={"openid": quinn})),
        (403, http.post("/wechat", params={**stale, "openid": quinn}, content=event_xml(quinn, "subscribe"))),
        (403, http.post("/wechat", params=replayed, content=text_xml(rita, "forged"))),
        (404, http.get("/api/merchant/v1/members", params={"openid": openid_for(oa, "nobody")}, headers=MERCHANT)),
        (404, http.get("/no/such/page", params=leaky)),
        (405, http.delete("/api/v1/me", params=leaky, headers=bearer(token))),
        (409, http.post("/api/v1/withdrawals", params=leaky, headers=bearer(token),
                        json={"amount_fen": 10_000_000, "method": "wechat_balance"})),
        (409, http.post("/api/merchant/v1/orders", params=leaky, json={**order, "items": order["items"] * 2},
                        headers=MERCHANT)),
        (413, http.post("/api/v1/session", params=leaky, content=b"{" + b" " * (2 * 1024 * 1024) + b"}")),
        (415, http.post("/api/merchant/v1/posters/backgrounds", params=leaky, content=b"picture",
                        headers={**MERCHANT, "Content-Type": "text/plain"})),
    ]
    for status, request in failures:
        response = await request
        assert response.status_code == status, (status, response.request.url.path, response.text)

    secrets = {
        "official-account openids": [quinn, rita, openid_for(oa, "peggy"), openid_for(oa, "nobody")],
        "mini-program openid": [openid_for(mini, "peggy")],
        "unionids": [unionid_for(user) for user in ("peggy", "quinn", "rita")],
        "session key": [session_key_for(mini, "peggy")],
        "session token": [token],
        "phone": [PHONE],
        "secrets": [settings.wechat_app_secret, settings.miniapp_app_secret, settings.merchant_api_token,
                    settings.session_secret, settings.share_link_secret or "", settings.wechat_token],
        "signatures": [q[name] for q in signed_queries for name in ("signature", "msg_signature") if name in q],
        "what the flow sent WeChat": [value for call in sandbox.state.calls.received()
                                      for name, value in call.query.items()
                                      if name in ("access_token", "secret", "js_code", "openid", "code")],
    }
    assert secrets["what the flow sent WeChat"], "the flow called WeChat"
    captured = "\n".join(f"{record.levelname} {record.name}: {record.getMessage()}"
                         + (f"\n{logging.Formatter().formatException(record.exc_info)}" if record.exc_info else "")
                         for record in caplog.records if record.levelno >= logging.INFO)
    assert captured, "the flow logged something to check"
    leaks = {kind: [value for value in values if value and value in captured] for kind, values in secrets.items()}
    assert {kind: found for kind, found in leaks.items() if found} == {}, captured


def parse_openid(xml: str) -> str:
    start = xml.index("<FromUserName><![CDATA[") + len("<FromUserName><![CDATA[")
    return xml[start:xml.index("]]>", start)]
