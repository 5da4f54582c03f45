"""Liveness of the stores, and the Prometheus scrape."""

from __future__ import annotations

import asyncio

from web.base import BaseHandler

CHECK_SECONDS = 2.0


class HealthHandler(BaseHandler):
    async def get(self) -> None:
        checks = {
            "mongo": self.runtime.db.command("ping"),
            "redis": self.runtime.redis.ping(),
        }
        results = await asyncio.gather(
            *(asyncio.wait_for(check, CHECK_SECONDS) for check in checks.values()), return_exceptions=True
        )
        report = {name: "ok" if not isinstance(result, BaseException) else f"down: {type(result).__name__}"
                  for name, result in zip(checks, results)}
        self.write_json(report, 200 if all(v == "ok" for v in report.values()) else 503)


class MetricsHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Content-Type", self.runtime.metrics.content_type)
        self.finish(self.runtime.metrics.render())
