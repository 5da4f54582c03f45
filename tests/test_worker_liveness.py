"""How the worker is doing, as any server process tells it: `/healthz` fails when no worker has run for
WORKER_STALE_SECONDS, `/metrics` shows the queue's lag and each periodic task's last success, and a failing
periodic task never stops the others nor the worker. Workers take turns at each periodic task."""

from __future__ import annotations

import asyncio
import re

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

import bot.worker
from bot.worker import run_worker
from settings import SettingsError


def gauge(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in a Prometheus text exposition."""
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name}{labels} not in /metrics"
    return float(found.group(1))


async def until(condition, seconds: float = 15.0) -> None:
    async def wait() -> None:
        while not await condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), seconds)


async def test_healthz_fails_and_says_why_when_no_worker_has_run(server):
    response = await server.http.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"mongo": "ok", "redis": "ok", "worker": "down: no worker has written a heartbeat yet"}


async def test_healthz_fails_when_the_last_heartbeat_is_older_than_the_threshold(server):
    queue = server.runtime.queue
    seconds, _ = await queue.redis.time()
    await queue.redis.zadd(queue.heartbeats, {"a-worker-gone-quiet": seconds - 100})
    response = await server.http.get("/healthz")
    assert response.status_code == 503
    assert re.fullmatch(r"down: no worker has run for 10\d s \(WORKER_STALE_SECONDS is 60\)",
                        response.json()["worker"])

    await queue.beat("a-worker-at-work")  # another worker: the newest heartbeat of any counts
    assert (await server.http.get("/healthz")).status_code == 200


async def test_metrics_show_the_queue_lag_while_no_worker_runs(server):
    await server.runtime.queue.enqueue("orders.apply_events", {"order_no": "waiting"})
    await asyncio.sleep(1.1)
    text = (await server.http.get("/metrics")).text
    assert gauge(text, "worker_up") == 0
    assert gauge(text, "job_queue_length") == 1
    assert gauge(text, "job_queue_oldest_job_age_seconds") >= 1.0
    assert gauge(text, "job_queue_dead_letters") == 0


async def test_the_worker_beats_records_its_periodic_tasks_and_buries_what_it_cannot_do(server):
    runtime = server.runtime
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(runtime, stop))
    try:
        async def healthy() -> bool:
            return (await server.http.get("/healthz")).status_code == 200

        await until(healthy)
        await runtime.queue.enqueue("from_the_future", {})

        async def buried() -> bool:
            return gauge((await server.http.get("/metrics")).text, "job_queue_dead_letters") == 1

        await until(buried)
        before = await runtime.queue.status()
        text = (await server.http.get("/metrics")).text
        after = await runtime.queue.status()
        assert gauge(text, "worker_up") == 1
        assert 0 <= gauge(text, "worker_heartbeat_age_seconds") < 60
        assert (gauge(text, "job_queue_length"), gauge(text, "job_queue_oldest_job_age_seconds")) == (0, 0)
        # Every one of them ran at the start; those run every second may have run again while /metrics was read.
        for task, _ in bot.worker.PERIODIC:
            at = gauge(text, "worker_periodic_task_last_success_timestamp_seconds", f'{{task="{task.__name__}"}}')
            assert before.task_runs[task.__name__] <= at <= after.task_runs[task.__name__]
            assert 0 <= after.now - at < 60
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)


async def test_a_failing_periodic_task_is_run_again_and_never_stops_the_others(server, monkeypatch):
    runtime = server.runtime
    runs = {"flaky": 0, "steady": 0}

    async def flaky(runtime) -> None:
        runs["flaky"] += 1
        if runs["flaky"] <= 3:
            raise RuntimeError("a bug, this time")

    async def steady(runtime) -> None:
        runs["steady"] += 1

    monkeypatch.setattr(bot.worker, "PERIODIC", [(flaky, 0.05), (steady, 0.05)])
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(runtime, stop))
    try:
        async def flaky_succeeded() -> bool:
            return "flaky" in (await runtime.queue.status()).task_runs

        await until(flaky_succeeded)
        assert runs["flaky"] >= 4 and runs["steady"] >= 3 and not worker.done()
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)


async def test_workers_take_turns_at_a_periodic_task_so_its_runs_do_not_multiply_with_them(server, monkeypatch):
    runtime = server.runtime
    period, periods = 0.25, 12
    runs: list[float] = []

    async def counted(runtime) -> None:
        runs.append(asyncio.get_running_loop().time())

    monkeypatch.setattr(bot.worker, "PERIODIC", [(counted, period)])
    stop = asyncio.Event()
    workers = [asyncio.create_task(run_worker(runtime, stop)) for _ in range(3)]
    await asyncio.sleep(period * periods)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*workers), 10)
    # Each on its own would have run it about `periods` times: three times as often in all.
    assert periods // 2 <= len(runs) <= periods + 2
    assert "counted" in (await runtime.queue.status()).task_runs


async def test_without_redis_to_ask_for_turns_each_worker_runs_its_periodic_tasks(server, monkeypatch):
    runtime = server.runtime
    runs = 0

    async def counted(runtime) -> None:
        nonlocal runs
        runs += 1

    async def redis_down(task: str, seconds: float) -> bool:
        raise RedisConnectionError("connection refused")

    monkeypatch.setattr(runtime.queue, "task_turn", redis_down)
    stop = asyncio.Event()
    every = asyncio.create_task(bot.worker.run_every(runtime, counted, 0.05, stop))

    async def ran_again() -> bool:
        return runs >= 3

    await until(ran_again, 5)
    stop.set()
    await asyncio.wait_for(every, 5)


async def test_the_threshold_is_a_setting_with_a_floor(make_settings):
    assert make_settings().worker_stale_seconds == 60
    assert make_settings(WORKER_STALE_SECONDS="300").worker_stale_seconds == 300
    for bad in ("10", "soon"):
        with pytest.raises(SettingsError) as refused:
            make_settings(WORKER_STALE_SECONDS=bad)
        assert refused.value.name == "WORKER_STALE_SECONDS"
