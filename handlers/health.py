"""Liveness of the stores, and the Prometheus scrape."""

from __future__ import annotations

from services.health import OK
from web.base import BaseHandler
from web.models import StoreHealth


class HealthHandler(BaseHandler):
    async def get(self) -> None:
        report = StoreHealth.model_validate(await self.runtime.store_health())
        self.write_model(report, 200 if report.mongo == report.redis == OK else 503)


class MetricsHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Content-Type", self.runtime.metrics.content_type)
        self.finish(self.runtime.metrics.render())
