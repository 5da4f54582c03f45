"""Prometheus metrics, one registry per application so tests can run several."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from stores.job_queue import QueueStatus

UNKNOWN = float("nan")  # Redis did not answer: no figure rather than a stale one
# Children of the per-request metrics kept at hand: a `labels()` lookup costs more than the rest of counting a
# request. Past this many label sets (they are bounded in practice) the rest are looked up each time.
CACHED_CHILDREN = 1024


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "HTTP requests by route and status", ["route", "method", "status"], registry=self.registry
        )
        self.push_seconds = Histogram(
            "wechat_push_seconds", "Time to answer a WeChat push", ["kind"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 4.5, 10),
        )
        self.wechat_calls = Counter(
            "wechat_api_calls", "WeChat API calls by endpoint and errcode", ["endpoint", "errcode"], registry=self.registry
        )
        self.wechat_call_seconds = Histogram(
            "wechat_api_call_seconds", "WeChat API call latency", ["endpoint"], registry=self.registry
        )
        # The queue and the workers, read from Redis at each scrape: the same in every process.
        self.worker_up = Gauge("worker_up", "1 when a worker has run within WORKER_STALE_SECONDS",
                               registry=self.registry)
        self.worker_heartbeat_age = Gauge("worker_heartbeat_age_seconds", "Time since any worker last ran",
                                          registry=self.registry)
        self.task_last_success = Gauge(
            "worker_periodic_task_last_success_timestamp_seconds", "When each periodic task last succeeded",
            ["task"], registry=self.registry,
        )
        self.queue_length = Gauge("job_queue_length", "Jobs queued, waiting or being done", registry=self.registry)
        self.queue_pending = Gauge("job_queue_pending", "Jobs being done", registry=self.registry)
        self.queue_retrying = Gauge("job_queue_retrying", "Jobs waiting for a retry", registry=self.registry)
        self.queue_dead = Gauge("job_queue_dead_letters", "Jobs given up on", registry=self.registry)
        self.queue_oldest_age = Gauge("job_queue_oldest_job_age_seconds",
                                      "Age of the oldest job queued (0 when none is)", registry=self.registry)
        self._children: dict[tuple, Any] = {}

    def count_request(self, route: str, method: str, status: int) -> None:
        self._child(self.requests, route, method, str(status)).inc()

    def observe_push(self, kind: str, seconds: float) -> None:
        self._child(self.push_seconds, kind).observe(seconds)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*labels)
            if len(self._children) < CACHED_CHILDREN:
                self._children[key] = child
        return child

    def count_wechat_call(self, endpoint: str, errcode: int | None, seconds: float) -> None:
        # errcode None: WeChat gave no usable answer (timeout, connection, HTTP error).
        self.wechat_calls.labels(endpoint, "unavailable" if errcode is None else str(errcode)).inc()
        self.wechat_call_seconds.labels(endpoint).observe(seconds)

    def observe_queue(self, status: QueueStatus | None, worker_up: bool) -> None:
        """`status` None: Redis did not answer."""
        self.worker_up.set(1 if worker_up else 0)
        if status is None:
            for gauge in (self.worker_heartbeat_age, self.queue_length, self.queue_pending, self.queue_retrying,
                          self.queue_dead, self.queue_oldest_age):
                gauge.set(UNKNOWN)
            return
        self.worker_heartbeat_age.set(UNKNOWN if status.last_heartbeat is None else status.now - status.last_heartbeat)
        for task, at in status.task_runs.items():
            self.task_last_success.labels(task).set(at)
        self.queue_length.set(status.length)
        self.queue_pending.set(status.pending)
        self.queue_retrying.set(status.retrying)
        self.queue_dead.set(status.dead)
        self.queue_oldest_age.set(0 if status.oldest_job_at is None else max(0.0, status.now - status.oldest_job_at))

    def render(self) -> bytes:
        return generate_latest(self.registry)
