"""The console's audit pages."""

from __future__ import annotations

ROUTES: list = []
