"""The console's promoters pages."""

from __future__ import annotations

ROUTES: list = []
