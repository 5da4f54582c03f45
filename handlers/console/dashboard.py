"""The console's dashboard (概况)."""

from __future__ import annotations

from handlers.console.base import ConsoleHandler


class DashboardHandler(ConsoleHandler):
    async def get(self) -> None:
        self.render_page("dashboard.html")


ROUTES = [(r"/admin", DashboardHandler)]
