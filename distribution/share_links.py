"""H5 share links: a promoter's web link, signed so that nobody can forge a
link binding to someone else. Made and checked here only.

A link is `{PUBLIC_BASE_URL}/s/<member id>?sig=<signature>`; the signature is
an HMAC-SHA256 (SHARE_LINK_SECRET) of the promoter's scene, truncated to 128
bits (small in the QR code) and written in hex, 32 characters: WeChat's web
authorization carries it back as `state`, which it allows only letters and
digits in.
WeChat's web authorization brings the visitor back to the link's bind URL,
`{PUBLIC_BASE_URL}/s/<member id>/bind`, with the signature as its `state`.
A poster's link also names its template (`?t=<template id>&sig=...`), carried
on to the bind URL, for the funnel's counts per template; it is not signed:
a visitor who changes it only moves a count between templates.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from distribution.scene import is_member_id, promoter_scene

SHARE_PATH = "/s/"
BIND_SUFFIX = "/bind"
TEMPLATE_PARAMETER = "t"
SIGNATURE_BYTES = 16


def share_signature(member_id: str, secret: str) -> str:
    """ValueError if `member_id` is not a member id."""
    digest = hmac.new(secret.encode(), promoter_scene(member_id).encode(), hashlib.sha256).digest()
    return digest[:SIGNATURE_BYTES].hex()


def share_link(base_url: str, member_id: str, secret: str, template_id: str | None = None) -> str:
    query = {TEMPLATE_PARAMETER: template_id} if template_id else {}
    query["sig"] = share_signature(member_id, secret)
    return f"{base_url.rstrip('/')}{SHARE_PATH}{member_id}?{urlencode(query)}"


def share_bind_url(base_url: str, member_id: str, template_id: str | None = None) -> str:
    """Where WeChat's web authorization sends a visitor of `member_id`'s link back to, to be bound."""
    url = f"{base_url.rstrip('/')}{SHARE_PATH}{member_id}{BIND_SUFFIX}"
    return f"{url}?{urlencode({TEMPLATE_PARAMETER: template_id})}" if template_id else url


def verify_share_signature(member_id: object, signature: object, secret: str) -> bool:
    """Whether `signature` is the one `share_link` put on `member_id`'s link. Never raises."""
    if not is_member_id(member_id) or not isinstance(signature, str):
        return False
    return hmac.compare_digest(share_signature(member_id, secret).encode(), signature.encode())
