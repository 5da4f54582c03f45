"""The address of the client a request comes from, as the rate limits count it.

The socket's peer, unless that peer is one of TRUSTED_PROXIES: then the
address the proxies appended to X-Forwarded-For. Read from the right, each
trusted proxy's entry is skipped, and the first address no trusted proxy
owns is the client: entries further left were written by the client itself
and prove nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import tornado.httputil

Networks = Sequence[IPv4Network | IPv6Network]


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: IPv4Address | IPv6Address | None, proxies: Networks) -> bool:
    return address is not None and any(address in network for network in proxies)


def _peer(request: tornado.httputil.HTTPServerRequest) -> str:
    """The socket's own peer. Not `remote_ip`: a server listening with `xheaders` (for the scheme a TLS proxy
    reports) sets that from X-Real-Ip or X-Forwarded-For, whoever sent them."""
    address = getattr(getattr(request.connection, "context", None), "address", None)
    if isinstance(address, tuple) and address:
        return str(address[0])
    return request.remote_ip or ""


def client_ip(request: tornado.httputil.HTTPServerRequest, proxies: Networks) -> str:
    peer = _peer(request)
    if not _trusted(_address(peer), proxies):
        return peer
    forwarded = [each for header in request.headers.get_list("X-Forwarded-For") for each in header.split(",")]
    client = peer
    for entry in reversed(forwarded):
        address = _address(entry)
        if address is None:
            break  # garbled: what lies further left cannot be trusted either
        client = str(address)
        if not _trusted(address, proxies):
            break
    return client
