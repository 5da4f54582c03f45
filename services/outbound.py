"""The TLS context of every client this process opens to WeChat, WeChat Pay and avatar hosts."""

from __future__ import annotations

import ssl
from functools import cache

import httpx


@cache
def outbound_tls() -> ssl.SSLContext:
    """One verifying context, shared: building one loads the whole CA bundle, about 60 ms of CPU each time, and
    a server or worker opens several clients (a context serves any number of connections at once)."""
    return httpx.create_ssl_context()
