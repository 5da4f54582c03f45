"""Every console route: the pages of each area, the stylesheet and scripts, and ECharts from node_modules."""

from __future__ import annotations

from pathlib import Path

import tornado.web

from handlers.console import (applications, audit, auth, dashboard, exports, finance, oa_menu, orders, posters,
                              privacy, products, promoters, risk, shop_settings, statements, withdrawals)
from handlers.console.base import STATIC

# `npm ci` (run by make) installs ECharts here; the console serves it itself, so no page loads from a CDN.
VENDOR = Path(__file__).resolve().parents[2] / "node_modules" / "echarts" / "dist"

PAGE_ROUTES: list[tuple[str, type[tornado.web.RequestHandler]]] = [
    *auth.ROUTES, *dashboard.ROUTES, *promoters.ROUTES, *products.ROUTES, *orders.ROUTES, *withdrawals.ROUTES,
    *statements.ROUTES, *applications.ROUTES, *shop_settings.ROUTES, *oa_menu.ROUTES, *posters.ROUTES,
    *exports.ROUTES, *finance.ROUTES, *audit.ROUTES, *privacy.ROUTES, *risk.ROUTES,
]

STATIC_ROUTES: list[tuple[str, type[tornado.web.RequestHandler], dict]] = [
    (r"/admin/static/(.*)", tornado.web.StaticFileHandler, {"path": str(STATIC)}),
    (r"/admin/vendor/(echarts\.min\.js)", tornado.web.StaticFileHandler, {"path": str(VENDOR)}),
]
