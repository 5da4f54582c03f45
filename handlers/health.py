"""Liveness of the stores and the workers, and the Prometheus scrape."""

from __future__ import annotations

import asyncio

from services.health import OK
from web.base import BaseHandler
from web.models import StoreHealth


class Health(StoreHealth):
    """Each store, and the workers: "ok", or "down: <what went wrong>"."""

    worker: str


class HealthHandler(BaseHandler):
    async def get(self) -> None:
        stores, (worker, _) = await asyncio.gather(self.runtime.store_health(), self.runtime.worker_health())
        report = Health.model_validate({**stores, "worker": worker})
        self.write_model(report, 200 if report.mongo == report.redis == report.worker == OK else 503)


class MetricsHandler(BaseHandler):
    async def get(self) -> None:
        verdict, queue = await self.runtime.worker_health()
        self.runtime.metrics.observe_queue(queue, verdict == OK)
        self.set_header("Content-Type", self.runtime.metrics.content_type)
        self.finish(self.runtime.metrics.render())
