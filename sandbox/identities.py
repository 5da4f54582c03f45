"""The sandbox's users, named by tests: openids, unionids and session keys derived from the name.

A mini-program login code is the user's name (js_code "alice" logs in
"alice"), and an openid carries the name after an app-specific tag, so the
same user gets a different openid per app and the same unionid everywhere,
as with WeChat. Tests compute the values they expect with these functions.
"""

from __future__ import annotations

import base64
import hashlib

_TAG_LENGTH = 8


def openid_for(app_id: str, user: str) -> str:
    return f"o{_digest(app_id)[:_TAG_LENGTH]}_{user}"


def user_of(openid: str) -> str:
    """The user an openid of `openid_for` belongs to; any other openid is its own user."""
    tag_end = 1 + _TAG_LENGTH
    if openid.startswith("o") and openid[tag_end : tag_end + 1] == "_":
        return openid[tag_end + 1 :]
    return openid


def unionid_for(user: str) -> str:
    return f"o{_digest('unionid:' + user)[:27]}"


def session_key_for(app_id: str, user: str) -> str:
    """A base64 16-byte key, the shape of WeChat's session_key."""
    return base64.b64encode(hashlib.sha256(f"session:{app_id}:{user}".encode()).digest()[:16]).decode()


def _digest(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode().replace("_", "-")
