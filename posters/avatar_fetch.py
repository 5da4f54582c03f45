"""Fetching a promoter's avatar picture without letting its URL reach anything else.

Members choose their avatar URL, so fetching it is a request made on a
stranger's behalf (server-side request forgery, if careless). An
`AvatarFetcher` fetches only:

- http(s) URLs without user info whose host is an allowed one (`AVATAR_HOSTS`:
  WeChat's avatar hosts), on the scheme's default port unless the allowed
  entry names a port;
- at a public address: the host is resolved once, every address it resolves
  to must be public (not private, loopback, link-local, multicast, reserved,
  unspecified or shared, nor one of those inside IPv6: IPv4-mapped, 6to4,
  NAT64), and the connection goes to the address that was checked, so a
  second answer of the name server (DNS rebinding) is never used;
- without following redirects, within a time limit that covers resolving,
  connecting and reading, and no more than a size limit.

One exception is made for the sandbox WeChat of the demo and the tests, which
serves its users' avatars from 127.0.0.1: `loopback_origins` lists exact
origins (scheme, loopback address, port) fetched although their address is
not public. Nothing else can be let through that way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}
# IPv6 addresses that carry an IPv4 address the connection ends up at: 6to4 and IPv4-mapped are
# read by `ipaddress`; NAT64's well-known prefix is not.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Awaitable[list[str]]]


def is_public(address: Address) -> bool:
    """Whether `address` is on the public internet: none of this machine's, its network's, or special ones."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64_PREFIX:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not (address.is_multicast or address.is_reserved)


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (off the event loop: the loop's resolver runs in a thread)."""
    answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [answer[4][0] for answer in answers]


def host_entry(host: str, port: int | None) -> str:
    """An allow-list entry as written: `host` or `host:port` (an IPv6 host in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def parse_host_entry(entry: str) -> tuple[str, int | None]:
    """(host, port or None) of `host` or `host:port`; ValueError when it is neither."""
    parts = urlsplit(f"//{entry.strip().lower()}")
    if not parts.hostname or parts.username is not None or parts.password is not None or parts.path \
            or parts.query or parts.fragment:
        raise ValueError(f"{entry!r} is not a host or host:port")
    return parts.hostname, parts.port  # .port raises ValueError for a port that is not one


@dataclass(frozen=True)
class _Target:
    parts: SplitResult
    scheme: str
    host: str  # lowercase, IPv6 without brackets
    port: int


class AvatarFetcher:
    def __init__(self, hosts: Iterable[str], loopback_origins: Iterable[str] = (), *, timeout_seconds: float = 1.5,
                 max_bytes: int = 1024 * 1024, resolve: Resolve = resolve_host, verify: ssl.SSLContext | bool = True):
        """`hosts`: allowed entries, `host` or `host:port`. `loopback_origins`: base URLs on a loopback address
        (the sandbox WeChat's) whose avatars are fetched there."""
        self.hosts = frozenset(parse_host_entry(entry) for entry in hosts)
        self.loopback_origins = frozenset(_loopback_origin(origin) for origin in loopback_origins)
        self.timeout_seconds = timeout_seconds
        self.max_bytes = max_bytes
        self.resolve = resolve
        # No connection is kept: each fetch connects to the address it checked, for the name it checked.
        self.http = httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False, trust_env=False,
                                      limits=httpx.Limits(max_keepalive_connections=0), verify=verify)

    async def aclose(self) -> None:
        await self.http.aclose()

    def allows(self, url: str) -> bool:
        """Whether `url` is on an allowed host (its address is checked when it is fetched)."""
        return self._target(url) is not None

    @property
    def allowed(self) -> list[str]:
        """The allowed hosts as written, for telling a member which are."""
        return sorted(host_entry(host, port) for host, port in self.hosts)

    async def fetch(self, url: str) -> bytes | None:
        """The body of a 200 answer at `url`; None when the URL is not allowed or the fetch fails."""
        target = self._target(url)
        if target is None:
            log.info("avatar not fetched: not on an allowed host")
            return None
        try:
            async with asyncio.timeout(self.timeout_seconds):
                address = await self._checked_address(target)
                if address is None:
                    log.warning("avatar at %s not fetched: the host resolves to an address that is not public",
                                target.host)
                    return None
                return await self._get(target, address)
        except (TimeoutError, OSError, httpx.HTTPError, httpx.InvalidURL) as error:
            log.info("avatar at %s not fetched: %r", target.host, error)
            return None

    def _target(self, url: str) -> _Target | None:
        try:
            parts = urlsplit(url)
            port = parts.port  # a port that is not one raises, as does a broken IPv6 host
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or parts.username is not None or parts.password is not None:
            return None
        port = port or DEFAULT_PORTS[scheme]
        host = parts.hostname or ""
        target = _Target(parts, scheme, host, port)
        if (scheme, host, port) in self.loopback_origins or (host, port) in self.hosts \
                or (port == DEFAULT_PORTS[scheme] and (host, None) in self.hosts):
            return target
        return None

    async def _checked_address(self, target: _Target) -> Address | None:
        """The address to connect to; None when any address the host resolves to is not public."""
        if (target.scheme, target.host, target.port) in self.loopback_origins:
            return ipaddress.ip_address(target.host)
        answers = [ipaddress.ip_address(answer.split("%", 1)[0]) for answer in await self.resolve(target.host,
                                                                                                   target.port)]
        if not answers or not all(is_public(address) for address in answers):
            return None
        return answers[0]

    async def _get(self, target: _Target, address: Address) -> bytes | None:
        shown = f"[{address}]" if address.version == 6 else str(address)
        url = urlunsplit(target.parts._replace(scheme=target.scheme, netloc=f"{shown}:{target.port}", fragment=""))
        # The URL names the checked address; the Host header and TLS (SNI and the certificate check) the host.
        host_header = host_entry(target.host, None if target.port == DEFAULT_PORTS[target.scheme] else target.port)
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        async with self.http.stream("GET", url, headers={"Host": host_header}, extensions=extensions) as response:
            if response.status_code != 200:
                log.info("avatar at %s not fetched: HTTP %d", target.host, response.status_code)
                return None
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    log.info("avatar at %s not fetched: more than %d bytes", target.host, self.max_bytes)
                    return None
                chunks.append(chunk)
            return b"".join(chunks)


def on_loopback(base_url: str) -> bool:
    """Whether `base_url` is http(s) on a loopback address written as such (a name may resolve anywhere)."""
    parts = urlsplit(base_url)
    try:
        return parts.scheme.lower() in DEFAULT_PORTS and ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        return False


def _loopback_origin(base_url: str) -> tuple[str, str, int]:
    if not on_loopback(base_url):
        raise ValueError(f"{base_url!r} is not an http(s) URL on a loopback address")
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname or "", parts.port or DEFAULT_PORTS[scheme]
