"""The console's withdrawals pages."""

from __future__ import annotations

ROUTES: list = []
