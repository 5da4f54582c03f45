"""Request bodies are bounded: a JSON body past its endpoint's limit is refused from its Content-Length before
it is read, or cut off as it grows, and no nesting however deep makes a parse failure anything but a 400.

The oversized requests below never send all they promise (headers alone, or a chunked body left unfinished):
an answer can only come from a server that refused without waiting for the rest."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import MERCHANT_TOKEN
from web.base import MAX_JSON_BODY_BYTES, MAX_JSON_DEPTH

NINETY_MB = 90 * 1024 * 1024
MERCHANT = {"Authorization": f"Bearer {MERCHANT_TOKEN}"}
ORDERS = "/api/merchant/v1/orders"


async def exchange(server, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """Send a request head and `body` on a new connection and nothing more; the answer's status and body, read
    until the server closes the connection."""
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = "".join(f"{name}: {value}\r\n" for name, value in {"Host": host, **headers}.items())
    writer.write(f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode() + body)
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(), 10)  # to the end: the server hangs up after refusing
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def too_large(body: bytes, limit: int = MAX_JSON_BODY_BYTES) -> bool:
    error = json.loads(body)["error"]
    return (error["code"], error["field"]) == ("too_large", "body") and f"{limit:,}" in error["message"]


def chunked(size: int) -> bytes:
    """One chunk of `size` bytes, and no final chunk: a body that never ends."""
    return f"{size:x}\r\n".encode() + b" " * size + b"\r\n"


async def session_token(server) -> str:
    return (await server.http.post("/api/v1/session", json={"code": "body-sender"})).json()["token"]


@pytest.mark.parametrize("method,path,authorized", [
    ("POST", "/api/v1/session", False),  # no login needed: anyone may send it
    ("PATCH", "/api/v1/me", True),
    ("POST", ORDERS, True),
])
async def test_a_declared_body_over_the_limit_is_refused_from_its_headers(server, method, path, authorized):
    headers = {"Content-Type": "application/json", "Content-Length": str(NINETY_MB)}
    if authorized:
        token = MERCHANT_TOKEN if path == ORDERS else await session_token(server)
        headers["Authorization"] = f"Bearer {token}"
    status, body = await exchange(server, method, path, headers)  # the 90 MB are never sent
    assert status == 413 and too_large(body)


@pytest.mark.parametrize("method,path,authorized", [
    ("POST", "/api/v1/session", False),
    ("PATCH", "/api/v1/me", True),
    ("POST", ORDERS, True),
])
async def test_a_chunked_body_growing_past_the_limit_is_cut_off(server, method, path, authorized):
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    if authorized:
        token = MERCHANT_TOKEN if path == ORDERS else await session_token(server)
        headers["Authorization"] = f"Bearer {token}"
    status, body = await exchange(server, method, path, headers, chunked(MAX_JSON_BODY_BYTES + 1))
    assert status == 413 and too_large(body)


async def test_a_body_at_the_limit_is_read_and_one_byte_more_is_not(server):
    token = await session_token(server)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    change = '{"nickname": "满"}'.encode()
    padding = MAX_JSON_BODY_BYTES - len(change)
    at_limit = await server.http.patch("/api/v1/me", content=change + b" " * padding, headers=headers)
    assert at_limit.status_code == 200 and at_limit.json()["nickname"] == "满"
    over = await server.http.patch("/api/v1/me", content='{"nickname": "溢"}'.encode() + b" " * (padding + 1),
                                   headers=headers)
    assert over.status_code == 413 and too_large(over.content)
    assert (await server.http.get("/api/v1/me", headers=headers)).json()["nickname"] == "满"


async def test_the_background_upload_keeps_its_own_larger_limit(server):
    from posters.backgrounds import MAX_BACKGROUND_BYTES

    headers = {**MERCHANT, "Content-Type": "image/png", "Content-Length": str(MAX_BACKGROUND_BYTES + 1)}
    status, body = await exchange(server, "POST", "/api/merchant/v1/posters/backgrounds", headers)
    assert status == 413 and too_large(body, MAX_BACKGROUND_BYTES)


async def test_tornados_own_limit_is_the_largest_an_endpoint_takes_not_100_mb(server):
    # /openapi.json is no API handler: Tornado reads its body whole, and refuses one past its own limit.
    status, _ = await exchange(server, "POST", "/openapi.json", {"Content-Length": str(NINETY_MB)})
    assert status == 400


@pytest.mark.parametrize("path,headers", [("/api/v1/session", {}), (ORDERS, MERCHANT)])
async def test_nesting_however_deep_is_a_400_and_never_a_server_error(server, path, headers):
    for body in (b"[" * 60_000, b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000):
        response = await server.http.post(path, content=body, headers=headers)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid", body[:20]
    too_deep = b'{"code": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}"  # parses, but nests 33 deep
    response = await server.http.post(path, content=too_deep, headers=headers)
    assert response.status_code == 400 and f"more than {MAX_JSON_DEPTH} deep" in response.json()["error"]["message"]
    deep_enough = b'{"code": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    response = await server.http.post(path, content=deep_enough, headers=headers)
    assert response.status_code == 400 and "deep" not in response.json()["error"]["message"]  # the fields' 400
    # 200,000 brackets are past the size limit before their depth matters.
    response = await server.http.post(path, content=b"[" * 200_000, headers=headers)
    assert response.status_code == 413


async def test_a_body_that_is_not_utf_8_is_a_400(server):
    response = await server.http.post("/api/v1/session", content='{"code": "码"}'.encode("utf-16"))
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
