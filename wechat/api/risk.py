from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from redis.exceptions import RedisError

from ..errors import WeChatError
from .base import ApiGroup, without_none

RISK_RANK_PATH = "wxa/getuserriskrank"
LOWEST_RISK_RANK = 0
HIGHEST_RISK_RANK = 4
# WeChat gives up on its side after 5 s: waiting longer can only delay the caller.
MAX_RISK_RANK_TIMEOUT_SECONDS = 5.0
DEFAULT_RISK_RANK_TIMEOUT_SECONDS = 2.0

log = logging.getLogger(__name__)


class RiskScene(IntEnum):
    """Why the rank is asked for, as WeChat names its scenes."""

    REGISTRATION = 0  # 注册
    MARKETING_FRAUD = 1  # 营销作弊


@dataclass(frozen=True)
class UserRiskRank:
    rank: int  # 0 (lowest risk) to 4 (highest)
    request_id: int  # WeChat's `unoin_id` (sic): names this one answer when asking WeChat about it


class RiskApi(ApiGroup):
    """WeChat's judgement of a mini-program user (用户安全等级): call it on the mini-program's client, with the
    openid the user has in the mini-program."""

    async def user_risk_rank(
        self,
        openid: str,
        scene: RiskScene,
        client_ip: str,
        *,
        mobile_no: str | None = None,
        email_address: str | None = None,
        extended_info: str | None = None,
        is_test: bool = False,
        timeout: float = DEFAULT_RISK_RANK_TIMEOUT_SECONDS,
    ) -> UserRiskRank | None:
        """The user's risk rank; None when WeChat gives none within `timeout` seconds (at most 5), refuses
        (any errcode, such as 61010 for a user not seen in the mini-program for two hours) or is unreachable.

        A missing rank is no signal, never a failure: this never raises for what WeChat or the token cache
        does, so a caller needs no `except` of its own.
        """
        body = without_none(appid=self._client.app_id, openid=openid, scene=int(scene), client_ip=client_ip,
                            mobile_no=mobile_no, email_address=email_address, extended_info=extended_info,
                            is_test=is_test)
        seconds = min(timeout, MAX_RISK_RANK_TIMEOUT_SECONDS)
        try:
            # Bounds the whole call, a token fetch and a retry after a rejected token included.
            async with asyncio.timeout(seconds):
                answer = await self._call_for_json("POST", RISK_RANK_PATH, json=body)
        except TimeoutError:
            log.warning("%s: no answer within %s s, so no risk signal", RISK_RANK_PATH, seconds)
            return None
        except WeChatError as error:  # its message names the endpoint and errcode, never the body
            log.warning("no risk signal: %s", error)
            return None
        except RedisError as error:  # the access token's cache
            log.warning("%s: no risk signal, the token cache failed: %s", RISK_RANK_PATH, type(error).__name__)
            return None
        return _rank_of(answer)


def _rank_of(answer: dict[str, Any]) -> UserRiskRank | None:
    rank, request_id = answer.get("risk_rank"), answer.get("unoin_id", 0)
    # `type(...) is int`: a JSON true is no rank.
    if not (type(rank) is int and LOWEST_RISK_RANK <= rank <= HIGHEST_RISK_RANK and type(request_id) is int):
        log.warning("%s: an answer without a valid risk_rank, so no risk signal", RISK_RANK_PATH)
        return None
    return UserRiskRank(rank, request_id)
