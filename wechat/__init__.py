"""The project's async WeChat HTTP client: every WeChat API call goes through it."""

from .api.miniapp import is_valid_scene
from .api.risk import RiskScene, UserRiskRank
from .client import CallObserver, WeChatClient
from .errors import (
    WeChatError,
    WeChatRateLimited,
    WeChatRefused,
    WeChatTimeout,
    WeChatTokenRejected,
    WeChatUnavailable,
)

__all__ = [
    "CallObserver",
    "RiskScene",
    "UserRiskRank",
    "WeChatClient",
    "WeChatError",
    "WeChatRateLimited",
    "WeChatRefused",
    "WeChatTimeout",
    "WeChatTokenRejected",
    "WeChatUnavailable",
    "is_valid_scene",
]
