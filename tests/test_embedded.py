"""The zero-setup stores: with no MONGODB_URI (or no REDIS_URL and nothing at the default Redis), the runtime
starts them, and every later process with the same VAR_DIR uses the running ones instead of starting more;
and the demo they make possible (DEMO=1), on any PORT, on 127.0.0.1 only, with the CLI beside it. Production's
server, by contrast, listens on every interface and never prints its merchant token."""

from __future__ import annotations

import asyncio
import json
import os
import socket
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
from stores.writes import WriteSet, commit
from tests.conftest import MERCHANT_TOKEN, REDIS_URL, production_environ
from tests.console_fixtures import login_form

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
    """The demo's stores: no MONGODB_URI, so the embedded SecantusDB, with its data and its record in this test's
    VAR_DIR."""
    return {
        "DEMO": "1",
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


async def test_the_embedded_secantusdb_is_written_without_retryable_write_records(environ):
    # SecantusDB keeps a record per retryable write, scanned by every write: past 10,000 in half an hour each
    # insert became ten times slower. A node of our own has no failover for a retry to ride out.
    async with open_runtime(load_settings(environ, env_file=None)) as runtime:
        assert runtime.mongo.options.retry_writes is False
        await runtime.db["embedded"].insert_one({"_id": "written"})
        assert await runtime.db["embedded"].count_documents({}) == 1


async def test_the_embedded_secantusdb_keeps_no_oplog_and_still_commits_transactions(environ):
    # An oplog entry per document changed served only change streams, which nothing here opens.
    async with open_runtime(load_settings(environ, env_file=None)) as runtime:
        assert "setName" not in await runtime.mongo.admin.command("hello")
        await commit(runtime.mongo, runtime.db, written_together())
        assert await runtime.db["embedded"].count_documents({}) == 2
        assert await runtime.mongo["local"]["oplog.rs"].count_documents({"ns": f"{runtime.db.name}.embedded"}) == 0


def written_together() -> WriteSet:
    writes = WriteSet()
    writes.insert("embedded", [{"_id": "one"}, {"_id": "two"}])
    return writes


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


def answers_beyond_127_0_0_1(port: int) -> bool:
    """Whether what listens on `port` takes a connection to another loopback address: a server on every
    interface does, one on 127.0.0.1 alone does not."""
    return port_answers("127.0.0.2", port)


async def test_the_demo_serves_on_any_port_prints_its_token_and_the_cli_works_beside_it(redis_prefix, tmp_path):
    port = free_port()
    # Nothing configured but DEMO and the port, and Redis under this test's prefix so that its keys are cleaned up.
    environ = {"DEMO": "1", "PORT": str(port), "VAR_DIR": str(tmp_path / "var"), "REDIS_URL": REDIS_URL,
               "REDIS_PREFIX": redis_prefix}
    with (tmp_path / "serve.log").open("wb") as serve_log:
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", cwd=ROOT, env={**os.environ, **environ},
            stdout=asyncio.subprocess.PIPE, stderr=serve_log)
    try:
        printed, console = "", ""
        while not printed.startswith("export "):
            line = await asyncio.wait_for(server.stdout.readline(), 90)
            assert line, f"serve exited: {(tmp_path / 'serve.log').read_text()}"
            printed = line.decode().strip()
            console = printed if printed.startswith("console: ") else console
        exported = dict(assignment.split("=", 1) for assignment in printed.removeprefix("export ").split())
        assert exported["PORT"] == str(port) and exported["DEMO"] == "1"

        assert port_answers("127.0.0.1", port) and not answers_beyond_127_0_0_1(port)
        with socket.create_server(("0.0.0.0", 0)) as everywhere:  # the check sees a server on every interface
            assert answers_beyond_127_0_0_1(everywhere.getsockname()[1])

        # The other shell has what the printed line exports, not the DEMO that `make serve` gave the server.
        shell = {**environ, "DEMO": "", **exported}
        code, out, err = await run_python(shell, "-m", "bot", "simulate", "follow", "--openid", "o_demo_alice")
        assert code == 0 and out.startswith("HTTP 200"), err
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15) as http:
            member = await http.get("/api/merchant/v1/members", params={"openid": "o_demo_alice"},
                                    headers={"Authorization": f"Bearer {exported['TOKEN']}"})
            assert member.status_code == 200, member.text
            # The console's owner `admin`, with the password printed for the person at this machine.
            assert console.startswith(f"console: http://127.0.0.1:{port}/admin  user: admin  password: ")
            signed_in = await login_form(http, "admin", console.rsplit(" ", 1)[1])
            assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/admin"

        code, out, err = await run_python(shell, "-m", "bot", "jobs")
        assert code == 0 and '"settled": 0' in out, err
        code, out, err = await run_python(shell, "-m", "bot", "ledger", "verify")
        assert code == 0 and "ledger clean" in out, err
        code, out, err = await run_python({**shell, "DEMO": ""}, "-m", "bot", "ledger", "verify")
        assert code == 2 and "WECHAT_APP_ID" in err and "DEMO=1" in err  # without it: neither demo nor production
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)
    assert not (tmp_path / "var" / "secantusdb.json").exists()
    logged = (tmp_path / "serve.log").read_text()
    assert exported["TOKEN"] not in logged and console.rsplit(" ", 1)[1] not in logged  # printed, never logged


async def test_production_serves_on_every_interface_and_never_prints_its_merchant_token(
        mongo_uri, redis_prefix, sandbox, tmp_path):
    port = free_port()
    environ = {"PORT": str(port), "VAR_DIR": str(tmp_path / "var"), "MONGODB_URI": mongo_uri,
               "MONGODB_DB": f"t{uuid.uuid4().hex[:16]}", "REDIS_URL": REDIS_URL, "REDIS_PREFIX": redis_prefix,
               **production_environ(sandbox.base_url)}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", cwd=ROOT, env={**os.environ, **environ},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = b""
    try:
        while b"serving on" not in output:
            line = await asyncio.wait_for(server.stdout.readline(), 90)
            assert line, f"serve exited: {output.decode()}"
            output += line
        assert b"0.0.0.0:%d (production mode)" % port in output
        assert answers_beyond_127_0_0_1(port)
    finally:
        server.terminate()
        output += await asyncio.wait_for(server.stdout.read(), 30)
        await asyncio.wait_for(server.wait(), 30)
    assert MERCHANT_TOKEN not in output.decode()
