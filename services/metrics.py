"""Prometheus metrics, one registry per application so tests can run several."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


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

    def count_wechat_call(self, endpoint: str, errcode: int | None, seconds: float) -> None:
        # errcode None: WeChat gave no usable answer (timeout, connection, HTTP error).
        self.wechat_calls.labels(endpoint, "unavailable" if errcode is None else str(errcode)).inc()
        self.wechat_call_seconds.labels(endpoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
