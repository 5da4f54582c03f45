"""The zero-setup stores: with no MONGODB_URI (or no REDIS_URL and nothing at the default Redis), the runtime
starts them, and every later process with the same VAR_DIR uses the running ones instead of starting more;
and the demo they make possible, on any PORT, with the CLI beside it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

import bot.runtime
from bot.runtime import open_runtime
from settings import Settings, load_settings
from stores.embedded import free_port, port_answers
from tests.conftest import MERCHANT_TOKEN, REDIS_URL

ROOT = Path(__file__).resolve().parent.parent

# A second process: opens its own runtime from the environment, reads what the first wrote, writes an answer.
SECOND_PROCESS = """
import asyncio, json
from bot.runtime import open_runtime
from settings import load_settings

async def main():
    async with open_runtime(load_settings()) as runtime:
        marker = await runtime.db["embedded"].find_one({"_id": "first"})
        await runtime.db["embedded"].insert_one({"_id": "second", "value": marker["value"]})
        print(json.dumps({"port": (await runtime.mongo.address)[1], "value": marker["value"]}))

asyncio.run(main())
"""


@pytest.fixture
def environ(redis_prefix: str, sandbox, tmp_path: Path) -> dict[str, str]:
    """No MONGODB_URI: the embedded SecantusDB, with its data and its record in this test's VAR_DIR."""
    return {
        "MONGODB_DB": f"t{uuid.uuid4().hex[:16]}",
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": redis_prefix,
        "WECHAT_API_BASE": sandbox.base_url,
        "MERCHANT_API_TOKEN": MERCHANT_TOKEN,
        "VAR_DIR": str(tmp_path / "var"),
    }


def recorded(settings: Settings, name: str) -> dict[str, int]:
    return json.loads((settings.var_dir / f"{name}.json").read_text())


async def run_python(environ: dict[str, str], *args: str) -> tuple[int, str, str]:
    """A `python` process with this environment, run without blocking the loop that serves the sandbox."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=ROOT, env={**os.environ, **environ},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, stdout.decode(), stderr.decode()


def a_dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


async def test_a_second_process_uses_the_secantusdb_the_first_started_and_sees_its_data(environ):
    settings = load_settings(environ, env_file=None)
    async with open_runtime(settings) as first:
        record = recorded(settings, "secantusdb")
        assert (await first.mongo.address)[1] == record["port"]
        value = uuid.uuid4().hex
        await first.db["embedded"].insert_one({"_id": "first", "value": value})

        code, out, err = await run_python(environ, "-c", SECOND_PROCESS)
        assert code == 0, err
        assert json.loads(out) == {"port": record["port"], "value": value}
        assert await first.db["embedded"].find_one({"_id": "second"}) == {"_id": "second", "value": value}

        # The second process left the server to the one that started it.
        assert recorded(settings, "secantusdb") == record and port_answers("127.0.0.1", record["port"])
    assert not (settings.var_dir / "secantusdb.json").exists()
    assert not port_answers("127.0.0.1", record["port"])


@pytest.mark.parametrize("stale", ["dead process, closed port", "live process, closed port",
                                   "dead process, another server's port"])
async def test_a_record_left_by_a_crashed_run_does_not_block_a_start(environ, stale):
    settings = load_settings(environ, env_file=None)
    left_behind = {
        "dead process, closed port": {"port": free_port(), "pid": a_dead_pid()},
        "live process, closed port": {"port": free_port(), "pid": os.getpid()},
        "dead process, another server's port": {"port": 6379, "pid": a_dead_pid()},  # the machine's Redis
    }[stale]
    settings.var_dir.mkdir(parents=True)
    (settings.var_dir / "secantusdb.json").write_text(json.dumps(left_behind))

    async with open_runtime(settings) as runtime:
        await runtime.db["embedded"].insert_one({"_id": "started"})
        record = recorded(settings, "secantusdb")
        assert record != left_behind and (await runtime.mongo.address)[1] == record["port"]
    assert not (settings.var_dir / "secantusdb.json").exists()


async def test_with_no_redis_url_and_nothing_at_the_default_an_embedded_redis_is_started_and_shared(
        environ, mongo_uri, monkeypatch):
    closed = free_port()
    monkeypatch.setattr(bot.runtime, "DEFAULT_REDIS_URL", f"redis://127.0.0.1:{closed}/0")
    without_redis_url = {**{k: v for k, v in environ.items() if k != "REDIS_URL"}, "MONGODB_URI": mongo_uri}
    settings = load_settings(without_redis_url, env_file=None)
    assert settings.redis_url is None

    async with open_runtime(settings) as first:
        record = recorded(settings, "redis")
        assert record["port"] != closed and await first.redis.ping()
        await first.redis.set(f"{settings.redis_prefix}shared", "yes")
        async with open_runtime(settings) as second:
            assert second.redis.connection_pool.connection_kwargs["port"] == record["port"]
            assert await second.redis.get(f"{settings.redis_prefix}shared") == b"yes"
        assert recorded(settings, "redis") == record and await first.redis.ping()
    assert not (settings.var_dir / "redis.json").exists()
    assert not port_answers("127.0.0.1", record["port"])


async def test_the_demo_serves_on_any_port_prints_its_token_and_the_cli_works_beside_it(redis_prefix, tmp_path):
    port = free_port()
    # Nothing configured but the port, and Redis under this test's prefix so that its keys are cleaned up.
    environ = {"PORT": str(port), "VAR_DIR": str(tmp_path / "var"), "REDIS_URL": REDIS_URL,
               "REDIS_PREFIX": redis_prefix}
    with (tmp_path / "serve.log").open("wb") as serve_log:
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", cwd=ROOT, env={**os.environ, **environ},
            stdout=asyncio.subprocess.PIPE, stderr=serve_log)
    try:
        printed = ""
        while not printed.startswith("export TOKEN="):
            line = await asyncio.wait_for(server.stdout.readline(), 90)
            assert line, f"serve exited: {(tmp_path / 'serve.log').read_text()}"
            printed = line.decode().strip()
        exported = dict(assignment.split("=", 1) for assignment in printed.removeprefix("export ").split())
        assert exported["PORT"] == str(port)

        code, out, err = await run_python(environ, "-m", "bot", "simulate", "follow", "--openid", "o_demo_alice")
        assert code == 0 and out.startswith("HTTP 200"), err
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as http:
            member = await http.get("/api/merchant/v1/members", params={"openid": "o_demo_alice"},
                                    headers={"Authorization": f"Bearer {exported['TOKEN']}"})
        assert member.status_code == 200, member.text

        code, out, err = await run_python(environ, "-m", "bot", "jobs")
        assert code == 0 and '"settled": 0' in out, err
        code, out, err = await run_python(environ, "-m", "bot", "ledger", "verify")
        assert code == 0 and "ledger clean" in out, err
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)
    assert not (tmp_path / "var" / "secantusdb.json").exists()
