"""Shared fixtures: a real SecantusDB for the session, a Redis key prefix per
test (only its own keys are removed), and the server itself on a free port."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import httpx
import pymongo
import pytest
import redis as sync_redis

from bot.app import make_app, push_door
from bot.push_handler import PushDoor
from bot.runtime import open_runtime
from services.runtime import Runtime
from bot.simulate import PushSigner
from settings import (SANDBOX_MINIAPP_APP_ID, SANDBOX_MINIAPP_APP_SECRET, SANDBOX_NOTIFY_TEMPLATES,
                      SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET, SANDBOX_WECHAT_TOKEN, NotifyTemplate, Settings,
                      load_settings)
from stores.embedded import free_port, secantusdb_uri, start_secantusdb

pytest_plugins = ["tests.wechat_fixtures"]

REDIS_URL = "redis://127.0.0.1:6379/0"
MERCHANT_TOKEN = "test-merchant-token-0123456789abcdef"
# The store limit of the tests where dozens of transactions write one document at once: each retries its write
# conflicts within that limit, and on a slow or shared machine the last of them needed more than the default 5 s.
CONTENDED_STORE_TIMEOUT_SECONDS = "30"
# Fixed, so that the server processes a test starts share them with its own server; strong enough to be accepted.
SESSION_SECRET = "test-session-secret-0123456789abcdef"
SHARE_LINK_SECRET = "test-share-link-secret-0123456789abcdef"
DATA_KEY = base64.b64encode(hashlib.sha256(b"the tests' data key").digest()).decode()
PUBLIC_BASE_URL = "https://shop.example.test"
DROP_SECONDS = 120.0


def notify_templates_json(templates: dict[str, dict[str, NotifyTemplate]]) -> str:
    """Templates as NOTIFY_TEMPLATES spells them."""
    return json.dumps({kind: {channel: {"template_id": template.template_id, "fields": dict(template.fields)}
                              for channel, template in channels.items()}
                       for kind, channels in templates.items()})


def production_environ(sandbox_url: str) -> dict[str, str]:
    """Production mode on the sandbox WeChat: every identity, secret and URL configured explicitly, as a
    deployment does, with the sandbox's app ids, secrets, token and templates. DEMO=0 wins over a DEMO=1 that a
    shell running the tests may have exported for the demo."""
    return {
        "DEMO": "0",
        "WECHAT_APP_ID": SANDBOX_OA_APP_ID,
        "WECHAT_APP_SECRET": SANDBOX_OA_APP_SECRET,
        "WECHAT_TOKEN": SANDBOX_WECHAT_TOKEN,
        "MINIAPP_APP_ID": SANDBOX_MINIAPP_APP_ID,
        "MINIAPP_APP_SECRET": SANDBOX_MINIAPP_APP_SECRET,
        "WECHAT_API_BASE": sandbox_url,
        "WECHAT_PAY_API_BASE": sandbox_url,
        "WECHAT_OPEN_BASE": sandbox_url,
        "MERCHANT_API_TOKEN": MERCHANT_TOKEN,
        "SESSION_SECRET": SESSION_SECRET,
        "DATA_KEY": DATA_KEY,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "SHARE_LINK_SECRET": SHARE_LINK_SECRET,
        "NOTIFY_TEMPLATES": notify_templates_json(SANDBOX_NOTIFY_TEMPLATES),
    }


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    log_path = tmp_path_factory.mktemp("secantusdb") / "secantusdb.log"
    server = start_secantusdb(":memory:", log_path)
    yield secantusdb_uri(server.port)
    server.stop()


@pytest.fixture
def redis_prefix() -> str:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = sync_redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def make_settings(mongo_uri: str, redis_prefix: str, sandbox, tmp_path: Path):
    """Settings for this test's server: its own database and key prefix, production mode on the sandbox WeChat
    (and its WeChat Pay)."""

    def build(**overrides: str) -> Settings:
        environ = {
            "MONGODB_URI": mongo_uri,
            "MONGODB_DB": f"t{uuid.uuid4().hex[:16]}",
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": redis_prefix,
            "VAR_DIR": str(tmp_path / "var"),
            **production_environ(sandbox.base_url),
            **sandbox.state.pay.merchant_environ(tmp_path / "wechatpay"),  # the sandbox's WeChat Pay merchant
            **overrides,
        }
        return load_settings(environ, env_file=None)

    return build


@dataclass
class RunningServer:
    runtime: Runtime
    door: PushDoor
    base_url: str
    http: httpx.AsyncClient
    signer: PushSigner

    async def push(self, xml: str, **sign_args: str) -> httpx.Response:
        query, body = self.signer.sign(xml, **sign_args)
        return await self.http.post("/wechat", params=query, content=body)

    async def merchant_get(self, path: str, **params: str) -> httpx.Response:
        return await self.http.get(path, params=params, headers={"Authorization": f"Bearer {MERCHANT_TOKEN}"})


async def start_server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with open_runtime(settings) as runtime:
        port = free_port()
        door = push_door(runtime)
        server = make_app(runtime, door).listen(port, address="127.0.0.1", xheaders=True)  # as `python -m bot serve` listens
        base_url = f"http://127.0.0.1:{port}"
        signer = PushSigner(settings.wechat_token, settings.wechat_app_id, settings.wechat_aes_key)
        # Plain http to the test's own server: no TLS context (60 ms of CPU to load the CA bundle) is built.
        async with httpx.AsyncClient(base_url=base_url, timeout=15, verify=False) as http:
            yield RunningServer(runtime, door, base_url, http, signer)
        server.stop()
        try:
            await asyncio.wait_for(server.close_all_connections(), 10)
        except asyncio.TimeoutError:
            pass  # a request still open is cut off: the test is over
        # Dropping a database is cleanup, and on a busy machine it outlasts the client's limit for a request
        # when the test wrote thousands of documents. A worker process the test killed mid-transaction leaves that
        # transaction open until SecantusDB's reaper meets a later statement, and a drop under it spins on its
        # locks: every transaction is aborted first, the test being over.
        with pymongo.timeout(DROP_SECONDS):
            await runtime.db.client.admin.command("killAllSessions", [])
            await runtime.db.client.drop_database(settings.mongodb_db)


@pytest.fixture
async def server(make_settings) -> AsyncIterator[RunningServer]:
    async for running in start_server(make_settings()):
        yield running


@pytest.fixture
async def contended_server(make_settings) -> AsyncIterator[RunningServer]:
    """A server whose store limit lets dozens of transactions writing one document each retry their conflicts."""
    async for running in start_server(make_settings(STORE_TIMEOUT_SECONDS=CONTENDED_STORE_TIMEOUT_SECONDS)):
        yield running
