"""Errors and delays injected into the sandbox's answers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Fault:
    """The next `times` calls of `endpoint` (every call when None) wait
    `delay_seconds`, then answer with `errcode` when one is given."""

    endpoint: str
    errcode: int | None = None
    times: int | None = 1
    delay_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.endpoint = self.endpoint.strip("/")
        if not self.endpoint:
            raise ValueError("endpoint is required")
        if self.errcode is None and not self.delay_seconds:
            raise ValueError("a fault needs an errcode, a delay, or both")
        if self.errcode == 0:
            raise ValueError("errcode 0 is success, not a fault")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1, or None for every call")
        if self.delay_seconds < 0:
            raise ValueError("delay_seconds cannot be negative")


class Faults:
    def __init__(self) -> None:
        self._pending: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue `fault` behind the faults already pending for its endpoint."""
        self._pending.append(fault)

    def take(self, endpoint: str) -> Fault | None:
        """The fault that applies to this call of `endpoint`, using it up once."""
        for fault in self._pending:
            if fault.endpoint == endpoint:
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self._pending.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._pending.clear()
