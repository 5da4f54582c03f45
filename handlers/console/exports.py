"""The console's exports pages."""

from __future__ import annotations

ROUTES: list = []
