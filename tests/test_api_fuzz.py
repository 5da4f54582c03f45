"""Every JSON endpoint fuzzed from /openapi.json: no 5xx, and every answer matches its documented schema.

The server under test is a real `python -m bot serve` process (with the
sandbox WeChat as another process), so schemathesis's blocking HTTP client
never shares an event loop with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from stores.embedded import free_port, port_answers
from tests.conftest import MERCHANT_TOKEN, REDIS_URL, production_environ

# Bounded so the whole run stays around a minute as endpoints are added.
EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


def _wait_for(port: int, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 30
    while not port_answers("127.0.0.1", port):
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            raise RuntimeError("a server under test did not start")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def live_server(mongo_uri, tmp_path_factory):
    sandbox_port, port = free_port(), free_port()
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    env = {**os.environ, "MONGODB_URI": mongo_uri, "MONGODB_DB": f"fuzz{uuid.uuid4().hex[:12]}",
           "REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix, "VAR_DIR": str(tmp_path_factory.mktemp("fuzz")),
           **production_environ(f"http://127.0.0.1:{sandbox_port}")}
    processes = [subprocess.Popen([sys.executable, "-m", "bot", "sandbox", "--port", str(sandbox_port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_for(sandbox_port, processes)
        processes.append(subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port)], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_for(port, processes)
        yield f"http://127.0.0.1:{port}"
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def member_token(base_url: str) -> str:
    response = httpx.post(f"{base_url}/api/v1/session", json={"code": f"fuzzer-{uuid.uuid4().hex}"})
    body = response.json()
    assert "token" in body, f"no member token: {response.status_code} {response.text}"
    return body["token"]


def test_no_input_makes_a_server_error_or_an_undocumented_answer(live_server):
    base_url = live_server
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    # A token of its own for each operation: fuzzing DELETE /api/v1/session logs out, and no other operation may
    # be left fuzzing only its 401. All signed in before any fuzzing: a fuzzed PUT of the rate limits may leave a
    # login allowed once a day.
    tokens = [MERCHANT_TOKEN if operation.path.startswith("/api/merchant/") else member_token(base_url)
              for operation in operations]
    for operation, token in zip(operations, tokens):
        statuses: set[int] = set()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                              checks=CHECKS)
            statuses.add(response.status_code)

        fuzz()
        assert statuses - {401}, f"{operation.method} {operation.path} was only ever refused at the door"
