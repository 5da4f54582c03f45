"""Applications to promote: the states one goes through while the merchant reviews it."""

from __future__ import annotations

from enum import StrEnum


class ApplicationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
