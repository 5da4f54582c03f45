"""Two server processes racing the same binds against one MongoDB and Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest

from bot.simulate import event_xml
from distribution.scene import promoter_scene
from stores.embedded import free_port, port_answers
from tests.conftest import CONTENDED_STORE_TIMEOUT_SECONDS, production_environ, start_server
from tests.fault_fixtures import mongodb_uri, own_secantusdb  # noqa: F401 - a fixture
from tests.test_relations import add_member


def _start(port: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


@pytest.fixture
async def server(make_settings, own_secantusdb):
    """On a SecantusDB of its own: two servers stopped in the middle of a race leave work in flight that the
    session's database, which every other test shares, should not have to finish."""
    async for running in start_server(make_settings(MONGODB_URI=mongodb_uri(own_secantusdb))):
        yield running


async def test_two_processes_bind_each_member_once(server):
    settings = server.runtime.settings
    env = {
        **os.environ,
        "MONGODB_URI": settings.mongodb_uri,
        "MONGODB_DB": settings.mongodb_db,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "REDIS_PREFIX": settings.redis_prefix,
        "VAR_DIR": str(settings.var_dir),
        # Production mode, as such processes run behind a load balancer: no worker inside the server.
        **production_environ(settings.wechat_api_base),
        "STORE_TIMEOUT_SECONDS": CONTENDED_STORE_TIMEOUT_SECONDS,
    }
    ports = [free_port(), free_port()]
    processes = [_start(port, env) for port in ports]
    try:
        deadline = time.monotonic() + 90
        while not all(port_answers("127.0.0.1", port) for port in ports):
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "servers did not start"
            await asyncio.sleep(0.1)

        promoters = [await add_member(server.runtime) for _ in range(4)]
        buyers = [f"o_two_{i}" for i in range(12)]
        pushes = []
        for b, buyer in enumerate(buyers):
            for attempt in range(6):
                scene = promoter_scene(promoters[(b + attempt) % 4]["_id"])
                xml = event_xml(buyer, "subscribe", f"qrscene_{scene}", at=1700000000 + attempt) if attempt < 2 \
                    else event_xml(buyer, "SCAN", scene, at=1700000000 + attempt)
                pushes.append((ports[attempt % 2], xml))

        async with httpx.AsyncClient(timeout=90) as http:
            async def send(port: int, xml: str) -> int:
                query, body = server.signer.sign(xml)
                return (await http.post(f"http://127.0.0.1:{port}/wechat", params=query, content=body)).status_code

            statuses = await asyncio.gather(*(send(port, xml) for port, xml in pushes))
        assert set(statuses) == {200}
    finally:
        for process in processes:
            process.terminate()
        stuck = []
        for process in processes:
            try:
                # Waiting off the loop: the servers' workers may still be talking to this loop's sandbox.
                await asyncio.to_thread(process.wait, 60)
            except subprocess.TimeoutExpired:
                process.kill()
                stuck.append(process.pid)
        assert not stuck, f"servers {stuck} did not stop within 60 s of SIGTERM"

    runtime = server.runtime
    for buyer in buyers:
        bound = await runtime.members.by_oa_openid(buyer)
        assert bound["upline_id"] in {p["_id"] for p in promoters}
    assert await runtime.db.members.count_documents({"oa_openid": {"$in": buyers}}) == len(buyers)
    counted = [await runtime.members.get(p["_id"]) for p in promoters]
    assert sum(p["direct_count"] for p in counted) == len(buyers)
    assert sum(p["team_count"] for p in counted) == len(buyers)
    await runtime.relations.apply_follow_ups()
    assert await runtime.db.bind_log.count_documents({"result": "bound"}) == len(buyers)
