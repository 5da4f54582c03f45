"""H5 share links: a promoter's web link, signed so that nobody can forge a
link binding to someone else. Made and checked here only.

A link is `{PUBLIC_BASE_URL}/s/<member id>?sig=<signature>`; the signature is
an HMAC-SHA256 (SHARE_LINK_SECRET) of the promoter's scene, truncated to 128
bits and base64url-encoded (22 characters), which keeps the QR code small.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from distribution.scene import is_member_id, promoter_scene

SHARE_PATH = "/s/"
SIGNATURE_BYTES = 16


def share_signature(member_id: str, secret: str) -> str:
    """ValueError if `member_id` is not a member id."""
    digest = hmac.new(secret.encode(), promoter_scene(member_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:SIGNATURE_BYTES]).decode().rstrip("=")


def share_link(base_url: str, member_id: str, secret: str) -> str:
    return f"{base_url.rstrip('/')}{SHARE_PATH}{member_id}?sig={share_signature(member_id, secret)}"


def verify_share_signature(member_id: object, signature: object, secret: str) -> bool:
    """Whether `signature` is the one `share_link` put on `member_id`'s link. Never raises."""
    if not is_member_id(member_id) or not isinstance(signature, str):
        return False
    return hmac.compare_digest(share_signature(member_id, secret).encode(), signature.encode())
