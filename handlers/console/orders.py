"""The console's orders pages."""

from __future__ import annotations

ROUTES: list = []
