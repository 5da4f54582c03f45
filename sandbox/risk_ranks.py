"""The risk ranks the sandbox's getuserriskrank answers, set by tests per openid."""

from __future__ import annotations

import itertools

from wechat.api.risk import HIGHEST_RISK_RANK, LOWEST_RISK_RANK


class RiskRanks:
    """Every openid ranks LOWEST_RISK_RANK until a test ranks it otherwise."""

    def __init__(self) -> None:
        self._ranks: dict[str, int] = {}
        self._request_ids = itertools.count(1)

    def set(self, openid: str, rank: int) -> None:
        if not LOWEST_RISK_RANK <= rank <= HIGHEST_RISK_RANK:
            raise ValueError(f"a risk rank is {LOWEST_RISK_RANK} to {HIGHEST_RISK_RANK}, got {rank}")
        self._ranks[openid] = rank

    def of(self, openid: str) -> int:
        return self._ranks.get(openid, LOWEST_RISK_RANK)

    def next_request_id(self) -> int:
        """WeChat's `unoin_id` of one answer."""
        return next(self._request_ids)

    def clear(self) -> None:
        self._ranks.clear()
