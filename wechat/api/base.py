from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import WeChatUnavailable

if TYPE_CHECKING:
    from ..client import WeChatClient


class ApiGroup:
    """A group of related WeChat endpoints, reached as an attribute of the client."""

    def __init__(self, client: WeChatClient):
        self._client = client

    async def _call_for_json(self, method: str, path: str, **call_options: Any) -> dict[str, Any]:
        answer = await self._client.call(method, path, **call_options)
        if isinstance(answer, bytes):
            raise WeChatUnavailable(None, "binary answer where JSON was expected", path)
        return answer

    async def _redeem_code(self, path: str, code_name: str, code: str) -> dict[str, Any]:
        """What a one-time code from a WeChat login or authorization stands for; the app's secret vouches
        for the app, so no access token is needed."""
        return await self._call_for_json(
            "GET",
            path,
            params={
                "appid": self._client.app_id,
                "secret": self._client.app_secret,
                code_name: code,
                "grant_type": "authorization_code",
            },
            token=False,
        )


def without_none(**fields: Any) -> dict[str, Any]:
    """A request body without the optional fields left out by the caller."""
    return {name: value for name, value in fields.items() if value is not None}


def template_data(values: dict[str, str]) -> dict[str, dict[str, str]]:
    """WeChat's {"keyword": {"value": ...}} shape of template and subscription data."""
    return {keyword: {"value": value} for keyword, value in values.items()}
