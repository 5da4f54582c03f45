"""Messages the official account sends on its own (not replies), as the worker sends them."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.conversation import promoter_name
from bot.runtime import Runtime
from bot.wechat import WeChatRateLimited, WeChatRefused
from stores.job_queue import RetryLater

RATE_LIMIT_BACKOFF_SECONDS = 60


async def send_new_member_notice(runtime: Runtime, upline: dict, member: dict, bound_at: datetime) -> bool:
    """A template message to the upline; False when it cannot be reached (no openid, no template, refused)."""
    template_id = runtime.settings.new_member_template_id
    if not (template_id and upline.get("oa_openid")):
        return False
    data = {
        "first": "你有一位新的直属成员",
        "keyword1": promoter_name(member) if member.get("nickname") else "新成员",
        "keyword2": bound_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "remark": f"团队人数：{upline.get('team_count', 0)}",
    }
    try:
        await runtime.oa.message.send_template(upline["oa_openid"], template_id, data)
    except WeChatRateLimited as error:
        raise RetryLater(RATE_LIMIT_BACKOFF_SECONDS, str(error)) from error
    except WeChatRefused:
        return False
    return True
