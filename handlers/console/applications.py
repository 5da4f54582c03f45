"""The console's applications pages."""

from __future__ import annotations

ROUTES: list = []
