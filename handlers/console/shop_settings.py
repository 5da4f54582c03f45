"""The console's shop_settings pages."""

from __future__ import annotations

ROUTES: list = []
