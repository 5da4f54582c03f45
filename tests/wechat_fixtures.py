"""Fixtures for talking to the sandbox WeChat: the sandbox itself on a free
port, an async Redis client, and WeChat clients of the sandbox's two apps.

Registered in conftest through `pytest_plugins`. Redis keys live under the
test's `redis_prefix` (conftest), which removes them afterwards.
"""

from __future__ import annotations

from typing import AsyncIterator, Callable

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from wechat import CallObserver, WeChatClient
from sandbox import RunningSandbox, start_sandbox
from settings import SANDBOX_MINIAPP_APP_ID, SANDBOX_MINIAPP_APP_SECRET, SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET

REDIS_URL = "redis://127.0.0.1:6379/0"
TEST_TIMEOUT_SECONDS = 2.0

MakeWeChatClient = Callable[..., WeChatClient]


@pytest_asyncio.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    """The sandbox WeChat on a free port: `.base_url`, and `.state` to inspect and steer it."""
    running = await start_sandbox()
    yield running
    await running.stop()


@pytest_asyncio.fixture
async def wechat_redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def make_wechat_client(
    sandbox: RunningSandbox, wechat_redis: aioredis.Redis, redis_prefix: str
) -> AsyncIterator[MakeWeChatClient]:
    """make_wechat_client(app_id, app_secret, timeout=2.0, on_call=None): a client of the sandbox, closed afterwards."""
    clients: list[WeChatClient] = []

    def make(
        app_id: str,
        app_secret: str,
        timeout: float = TEST_TIMEOUT_SECONDS,
        on_call: CallObserver | None = None,
    ) -> WeChatClient:
        client = WeChatClient(
            sandbox.base_url, app_id, app_secret, wechat_redis, redis_prefix, timeout=timeout, on_call=on_call
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def oa_client(make_wechat_client: MakeWeChatClient) -> WeChatClient:
    """The official account's client."""
    return make_wechat_client(SANDBOX_OA_APP_ID, SANDBOX_OA_APP_SECRET)


@pytest.fixture
def miniapp_client(make_wechat_client: MakeWeChatClient) -> WeChatClient:
    """The mini-program's client."""
    return make_wechat_client(SANDBOX_MINIAPP_APP_ID, SANDBOX_MINIAPP_APP_SECRET)
