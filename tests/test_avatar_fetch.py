"""Avatars are fetched from WeChat's avatar hosts at public addresses only: a member's avatar URL never makes
the server connect to this machine, its network, a redirect's target, or a name that resolves to either.

Local listeners record every connection they get, so "never fetched" is seen, not assumed."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import tempfile
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from posters import avatar_fetch
from posters.avatar_fetch import AvatarFetcher, is_public
from sandbox.avatars import render_avatar_png
from settings import WECHAT_AVATAR_HOSTS, SettingsError
from tests.conftest import start_server
from tests.test_posters import AVATAR, differs, region
from tests.test_relations import add_member

PICTURE = render_avatar_png("someone")


class Listener:
    """A TCP server that records each connection (the address connected to) and the request head it got, then
    answers `answer`."""

    def __init__(self, answer: bytes = b""):
        self.answer = answer
        self.connections: list[str] = []
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int = 0, tls: ssl.SSLContext | None = None) -> int:
        self.server = await asyncio.start_server(self._serve, host, port, ssl=tls)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer.get_extra_info("sockname")[0])  # the address connected to
        try:
            self.requests.append(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5))
            writer.write(self.answer)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def http_answer(status: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close",
             *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
async def listeners():
    started: list[Listener] = []

    async def listen(answer: bytes = b"", host: str = "127.0.0.1", port: int = 0,
                     tls: ssl.SSLContext | None = None) -> tuple[Listener, int]:
        listener = Listener(answer)
        bound = await listener.start(host, port, tls)
        started.append(listener)
        return listener, bound

    yield listen
    for listener in started:
        await listener.stop()


def resolving_to(*answers: str, calls: list[str] | None = None):
    """A name server that answers `answers` for any name (recording the names asked in `calls`)."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return list(answers)

    return resolve


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- which addresses are public ------------------------------------------------------------------


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "ff0e::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "::127.0.0.1",  # IPv4-compatible
    "2002:7f00:1::1", "2002:a9fe:a9fe::1",  # 6to4 of 127.0.0.1 and 169.254.169.254
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",  # NAT64 of the same
    "2001:db8::1",  # documentation
])
def test_addresses_of_this_machine_its_network_and_special_ranges_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "183.3.226.35", "2001:4860:4860::8888", "::ffff:8.8.8.8",
                                     "2002:808:808::1"])
def test_internet_addresses_are_public(address):
    assert is_public(ipaddress.ip_address(address))


# --- which URLs are allowed ----------------------------------------------------------------------


def test_only_urls_on_an_allowed_host_and_port_are_allowed():
    fetcher = AvatarFetcher(WECHAT_AVATAR_HOSTS, ["http://127.0.0.1:8100"])
    allowed = ["https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132", "http://wx.qlogo.cn/mmhead/abc/0",
               "https://THIRDWX.QLOGO.CN/x", "https://thirdwx.qlogo.cn:443/x", "http://mmbiz.qpic.cn/x",
               "http://127.0.0.1:8100/mmopen/avatar?user=a"]
    refused = ["https://thirdwx.qlogo.cn:8443/x", "https://evil.example/thirdwx.qlogo.cn", "ftp://wx.qlogo.cn/x",
               "https://thirdwx.qlogo.cn.evil.example/x", "https://evil.thirdwx.qlogo.cn/x",
               "https://user@thirdwx.qlogo.cn/x", "https://thirdwx.qlogo.cn@127.0.0.1/x",
               "http://127.0.0.1:6379/", "http://127.0.0.1/", "https://127.0.0.1:8100/", "http://localhost:8100/",
               "http://[::1]:8100/", "http://169.254.169.254/latest/meta-data/", "http://wx.qlogo.cn:99999/x",
               "http://[::1", "javascript:alert(1)", "//wx.qlogo.cn/x", ""]
    assert [url for url in allowed if not fetcher.allows(url)] == []
    assert [url for url in refused if fetcher.allows(url)] == []


def test_only_a_loopback_address_written_as_such_may_be_a_loopback_origin():
    for origin in ("http://localhost:8100", "http://10.0.0.1:8100", "https://api.weixin.qq.com", "ftp://127.0.0.1"):
        with pytest.raises(ValueError):
            AvatarFetcher(WECHAT_AVATAR_HOSTS, [origin])


def test_avatar_hosts_default_to_wechats_and_are_checked_when_read(make_settings):
    assert make_settings().avatar_hosts == WECHAT_AVATAR_HOSTS
    assert make_settings(AVATAR_HOSTS="cdn.example.com, Avatars.Example:8443").avatar_hosts == \
        ("cdn.example.com", "avatars.example:8443")
    for bad in ("http://cdn.example.com", "cdn.example.com/x", "user@cdn.example.com", "cdn.example.com:0",
                "cdn.example.com:http"):
        with pytest.raises(SettingsError) as refused:
            make_settings(AVATAR_HOSTS=bad)
        assert refused.value.name == "AVATAR_HOSTS"


# --- fetching ----------------------------------------------------------------------------------


@pytest.mark.parametrize("answers", [
    ("127.0.0.1",), ("169.254.169.254",), ("::1",), ("::ffff:127.0.0.1",), ("10.1.2.3",), ("0.0.0.0",),
    ("8.8.8.8", "127.0.0.1"),  # one public answer does not make the others so
])
async def test_an_allowed_name_that_resolves_to_a_private_address_is_not_fetched(listeners, answers):
    listener, port = await listeners(http_answer("200 OK", PICTURE))
    names: list[str] = []
    fetcher = AvatarFetcher([f"avatars.example:{port}"], resolve=resolving_to(*answers, calls=names))
    try:
        assert await fetcher.fetch(f"http://avatars.example:{port}/a.png") is None
    finally:
        await fetcher.aclose()
    assert names == ["avatars.example"]
    assert listener.connections == []


async def test_a_name_the_machine_resolves_to_itself_is_not_fetched(listeners):
    listener, port = await listeners(http_answer("200 OK", PICTURE))
    fetcher = AvatarFetcher([f"localhost:{port}"])  # the system's own resolver
    try:
        assert await fetcher.fetch(f"http://localhost:{port}/a.png") is None
    finally:
        await fetcher.aclose()
    assert listener.connections == []


async def test_the_connection_goes_to_the_address_checked_and_the_name_is_resolved_once(listeners, monkeypatch):
    # 127.0.0.2 stands in for an internet address; the name server then rebinds the name to 127.0.0.1.
    monkeypatch.setattr(avatar_fetch, "is_public", lambda address: str(address) == "127.0.0.2")
    checked, port = await listeners(http_answer("200 OK", PICTURE), host="127.0.0.2")
    rebound, _ = await listeners(http_answer("200 OK", b"not this"), host="127.0.0.1", port=port)
    answers = iter([["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"]])
    names: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        names.append(host)
        return next(answers)

    fetcher = AvatarFetcher([f"avatars.example:{port}"], resolve=rebinding)
    try:
        assert await fetcher.fetch(f"http://avatars.example:{port}/a.png?size=132") == PICTURE
    finally:
        await fetcher.aclose()
    assert names == ["avatars.example"]
    assert (checked.connections, rebound.connections) == (["127.0.0.2"], [])
    head = checked.requests[0].decode()
    assert head.startswith("GET /a.png?size=132 HTTP/1.1\r\n")
    assert f"\r\nhost: avatars.example:{port}\r\n" in head.lower()


def self_signed_tls(name: str) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                   .sign(key, hashes.SHA256()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.NamedTemporaryFile() as cert_file, tempfile.NamedTemporaryFile() as key_file:
        cert_file.write(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        cert_file.flush()
        key_file.flush()
        context.load_cert_chain(cert_file.name, key_file.name)
    return context


async def test_tls_names_the_host_not_the_address_and_checks_its_certificate(listeners, monkeypatch):
    monkeypatch.setattr(avatar_fetch, "is_public", lambda address: str(address) == "127.0.0.2")
    tls = self_signed_tls("avatars.example")
    told: list[str | None] = []
    tls.sni_callback = lambda connection, server_name, context: told.append(server_name)
    listener, port = await listeners(http_answer("200 OK", PICTURE), host="127.0.0.2", tls=tls)
    fetcher = AvatarFetcher([f"avatars.example:{port}"], resolve=resolving_to("127.0.0.2"))
    try:
        # The certificate is for the right name but signed by nobody WeChat's would be: refused.
        assert await fetcher.fetch(f"https://avatars.example:{port}/a.png") is None
    finally:
        await fetcher.aclose()
    assert told == ["avatars.example"]
    assert listener.requests == []  # no request was sent over an unverified connection


async def test_redirects_are_not_followed(listeners):
    target, target_port = await listeners(http_answer("200 OK", PICTURE))
    redirecting, port = await listeners(http_answer("302 Found", Location=f"http://127.0.0.1:{target_port}/a.png"))
    fetcher = AvatarFetcher([], [f"http://127.0.0.1:{port}"])
    try:
        assert await fetcher.fetch(f"http://127.0.0.1:{port}/a.png") is None
    finally:
        await fetcher.aclose()
    assert len(redirecting.connections) == 1 and target.connections == []


async def test_a_picture_over_the_size_limit_or_the_time_limit_is_given_up(listeners):
    exact, exact_port = await listeners(http_answer("200 OK", PICTURE))
    larger, larger_port = await listeners(http_answer("200 OK", PICTURE + b"x"))
    silent, silent_port = await listeners(b"")  # reads the request and never answers
    origins = [f"http://127.0.0.1:{port}" for port in (exact_port, larger_port, silent_port)]
    fetcher = AvatarFetcher([], origins, max_bytes=len(PICTURE), timeout_seconds=0.5)
    try:
        assert await fetcher.fetch(f"{origins[0]}/a") == PICTURE
        assert await fetcher.fetch(f"{origins[1]}/a") is None
        assert await fetcher.fetch(f"{origins[2]}/a") is None
        assert await fetcher.fetch(f"{origins[0]}/\x00") is None  # a URL that cannot be sent: no error either
    finally:
        await fetcher.aclose()
    assert [len(each.connections) for each in (exact, larger, silent)] == [1, 1, 1]


# --- end to end: a member's avatar URL ----------------------------------------------------------


async def initial_only(runtime, member: dict) -> bool:
    """Whether the member's poster shows the nickname's initial where the avatar goes, like a member without."""
    plain = await add_member(runtime, nickname=member["nickname"])
    box = (await runtime.posters.plan(plain)).template.avatar
    poster, without = await runtime.posters.jpeg(member), await runtime.posters.jpeg(plain)
    return not differs(region(poster, box), region(without, box))


async def test_a_members_avatar_url_never_reaches_this_machine_or_a_redirect_target(server, sandbox, listeners):
    runtime = server.runtime
    listener, port = await listeners(http_answer("200 OK", PICTURE))
    redirect = f"{sandbox.base_url}/connect/oauth2/authorize?" + urlencode({
        "appid": runtime.settings.wechat_app_id, "redirect_uri": f"http://127.0.0.1:{port}/a.png",
        "response_type": "code", "scope": "snsapi_base", "sandbox_user": "x"})  # an allowed origin's redirect
    urls = [f"http://127.0.0.1:{port}/a.png", f"http://localhost:{port}/a.png", f"http://[::ffff:127.0.0.1]:{port}/",
            f"http://0.0.0.0:{port}/", "http://169.254.169.254/latest/meta-data/", f"http://127.0.0.1:{port}@wx.qlogo.cn/",
            redirect]
    if ipv6_loopback_available():
        listener6, port6 = await listeners(http_answer("200 OK", PICTURE), host="::1")
        urls.append(f"http://[::1]:{port6}/a.png")
    else:
        listener6 = Listener()
    for number, url in enumerate(urls):
        member = await add_member(runtime, nickname=f"{number}号", avatar_url=url)
        assert await initial_only(runtime, member), url
    assert listener.connections == listener6.connections == []
    assert len(sandbox.state.calls.received("connect/oauth2/authorize")) == 1  # asked, and its redirect ignored


async def test_an_allowed_name_resolving_to_this_machine_is_never_fetched(make_settings, listeners):
    listener, port = await listeners(http_answer("200 OK", PICTURE))
    async for server in start_server(make_settings(AVATAR_HOSTS=f"localhost:{port}")):
        member = await add_member(server.runtime, nickname="近", avatar_url=f"http://localhost:{port}/a.png")
        assert await initial_only(server.runtime, member)
    assert listener.connections == []


async def test_the_sandbox_serves_the_avatars_of_the_demo_and_the_tests(server, sandbox):
    member = await add_member(server.runtime, nickname="远", avatar_url=f"{sandbox.base_url}/{AVATAR}?user=far")
    assert not await initial_only(server.runtime, member)


async def test_changing_ones_avatar_to_a_url_not_fetched_is_refused_naming_the_field(server, sandbox):
    login = await server.http.post("/api/v1/session", json={"code": "avatar-changer"})
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    for url in ("http://127.0.0.1:6379/", "http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/a.png",
                "http://localhost/a.png", "https://evil.example/a.png", "https://thirdwx.qlogo.cn:8443/a.png"):
        response = await server.http.patch("/api/v1/me", json={"avatar_url": url, "nickname": "改"}, headers=headers)
        assert response.status_code == 400, url
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("invalid", "avatar_url") and "thirdwx.qlogo.cn" in error["message"]
    member = await server.runtime.members.get(login.json()["member"]["id"])
    assert (member.get("avatar_url"), member.get("nickname")) == (None, None)  # nothing written
    for url in ("https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132", f"{sandbox.base_url}/{AVATAR}?user=me"):
        response = await server.http.patch("/api/v1/me", json={"avatar_url": url}, headers=headers)
        assert response.status_code == 200 and response.json()["avatar_url"] == url
