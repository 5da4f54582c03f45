"""The console's posters pages."""

from __future__ import annotations

ROUTES: list = []
