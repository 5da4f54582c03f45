"""The async WeChat Pay API v3 client: every request signed, every answer and callback verified.

An answer is trusted only when its `Wechatpay-Signature` verifies with the key its `Wechatpay-Serial` names,
its `Wechatpay-Timestamp` is within 5 minutes of now and its `Wechatpay-Nonce` was never seen before (nonces
are remembered in Redis, so every process refuses a replay). The key is WeChat Pay's public key
(`PUB_KEY_ID_...`, public key mode) or one of its platform certificates (certificate mode), downloaded from
`GET /v3/certificates`, opened with the APIv3 key, and downloaded again when an answer names a serial not
known yet (at most once a minute) or every 12 hours.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from redis.asyncio import Redis

from settings import WeChatPaySettings

from . import crypto
from .errors import CallbackRejected, PayRefused, PaySignatureRejected, PayUnclear

log = logging.getLogger(__name__)

CERTIFICATES_PATH = "/v3/certificates"
REFRESH_CERTIFICATES_SECONDS = 12 * 3600
UNKNOWN_SERIAL_REFRESH_SECONDS = 60.0  # a forged serial cannot make us download certificates more often


@dataclass(frozen=True)
class MerchantKeys:
    """The merchant's side of WeChat Pay: its id, API private key and certificate serial, the APIv3 key, and
    WeChat Pay's public key with its id (public key mode) or None for both (platform certificate mode)."""

    mch_id: str
    cert_serial: str
    private_key: RSAPrivateKey
    apiv3_key: str
    public_key: RSAPublicKey | None = None
    public_key_id: str | None = None

    def __post_init__(self) -> None:
        crypto.apiv3_key_bytes(self.apiv3_key)
        if (self.public_key is None) != (self.public_key_id is None):
            raise crypto.BadKey("WeChat Pay's public key and its id come together")


def merchant_keys(settings: WeChatPaySettings) -> MerchantKeys:
    return MerchantKeys(settings.mch_id, settings.cert_serial, crypto.load_private_key(settings.private_key_pem),
                        settings.apiv3_key,
                        crypto.load_public_key(settings.public_key_pem) if settings.public_key_pem else None,
                        settings.public_key_id)


class ReplayGuard:
    """Nonces of answers and callbacks already accepted, in Redis, for as long as their timestamps pass."""

    def __init__(self, redis: Redis, prefix: str):
        self.redis = redis
        self.prefix = f"{prefix}wechatpay:nonce:"

    async def first_time(self, nonce: str) -> bool:
        seen = await self.redis.set(self.prefix + nonce, 1, nx=True, ex=2 * crypto.MAX_CLOCK_SKEW_SECONDS)
        return bool(seen)


class Unverified(Exception):
    """Why an answer or a callback is not WeChat Pay's, or not fresh: `replay` when only the nonce failed."""

    def __init__(self, reason: str, replay: bool = False):
        super().__init__(reason)
        self.replay = replay


class WeChatPayClient:
    def __init__(self, base_url: str, keys: MerchantKeys, replays: ReplayGuard, timeout: float,
                 http: httpx.AsyncClient | None = None, clock: Callable[[], float] = time.time,
                 verify: ssl.SSLContext | bool = True):
        self.base_url = base_url.rstrip("/")
        self.keys = keys
        self.replays = replays
        self.timeout = timeout
        self.http = http or httpx.AsyncClient(verify=verify)
        self.clock = clock
        self._certificates: dict[str, x509.Certificate] = {}  # serial -> platform certificate
        self._certificates_at = float("-inf")
        self._refresh_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self.http.aclose()

    @property
    def mch_id(self) -> str:
        return self.keys.mch_id

    # --- requests ------------------------------------------------------------------------------

    async def request(self, method: str, path: str, body: Mapping[str, Any] | None = None,
                      encrypted_with: str | None = None) -> dict[str, Any]:
        """The verified JSON answer of a 2xx. `encrypted_with`: the serial of the key that encrypted the
        body's sensitive fields (see `encryption_key`). PayUnclear, PayRefused or PaySignatureRejected."""
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body is not None else ""
        response = await self._send(method, path, text, encrypted_with)
        raw = response.content.decode("utf-8", errors="replace")
        if response.status_code == 401:
            raise PaySignatureRejected(_field(raw, "code") or "SIGN_ERROR",
                                       "WeChat Pay refused our request's signature: check WECHAT_PAY_MCH_ID, "
                                       "WECHAT_PAY_CERT_SERIAL and WECHAT_PAY_PRIVATE_KEY_FILE")
        try:
            await self._verify(response.headers, raw)
        except Unverified as why:
            log.error("WeChat Pay answer to %s %s not trusted (HTTP %d): %s", method, path, response.status_code, why)
            raise PayUnclear("UNVERIFIED", f"the answer (HTTP {response.status_code}) does not verify: {why}") from None
        if response.status_code >= 500:
            raise PayUnclear(_field(raw, "code") or "SYSTEM_ERROR", _field(raw, "message") or f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PayRefused(response.status_code, _field(raw, "code") or "HTTP_ERROR",
                             _field(raw, "message") or f"HTTP {response.status_code}")
        if not raw:
            return {}
        try:
            answer = json.loads(raw)
        except ValueError:
            raise PayUnclear("BAD_ANSWER", "a verified answer that is not JSON") from None
        if not isinstance(answer, dict):
            raise PayUnclear("BAD_ANSWER", "a verified answer that is not a JSON object")
        return answer

    async def _send(self, method: str, path: str, text: str, encrypted_with: str | None) -> httpx.Response:
        url = self.base_url + path
        signed_url = urlsplit(url)._replace(scheme="", netloc="").geturl()
        headers = {
            "Authorization": crypto.authorization(self.keys.mch_id, self.keys.cert_serial, self.keys.private_key,
                                                  method, signed_url, text, str(int(self.clock())), crypto.new_nonce()),
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "distribution-backend",
        }
        serial = encrypted_with or self.keys.public_key_id
        if serial:
            headers["Wechatpay-Serial"] = serial
        try:
            async with asyncio.timeout(self.timeout):
                return await self.http.request(method, url, content=text.encode() if text else None, headers=headers)
        except (TimeoutError, httpx.HTTPError) as error:
            raise PayUnclear("NO_ANSWER", f"no answer from WeChat Pay: {type(error).__name__}") from error

    # --- sensitive fields ----------------------------------------------------------------------

    async def encryption_key(self) -> tuple[str, RSAPublicKey]:
        """WeChat Pay's key for sensitive fields, and the serial to send with them: the public key, or the
        platform certificate that expires last."""
        if self.keys.public_key is not None and self.keys.public_key_id is not None:
            return self.keys.public_key_id, self.keys.public_key
        await self._refresh_certificates(force=False)
        if not self._certificates:
            raise PayUnclear("NO_CERTIFICATE", "WeChat Pay gave no platform certificate to encrypt with")
        serial, certificate = max(self._certificates.items(), key=lambda item: item[1].not_valid_after_utc)
        return serial, certificate.public_key()

    async def encrypt(self, text: str) -> tuple[str, str]:
        """(ciphertext, serial): `text` for WeChat Pay's eyes only."""
        serial, key = await self.encryption_key()
        return crypto.encrypt_field(key, text), serial

    # --- callbacks -----------------------------------------------------------------------------

    async def open_callback(self, headers: Mapping[str, str], body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the notification, its resource's plaintext) of a callback that is WeChat Pay's, fresh, and opens
        with our APIv3 key; CallbackRejected otherwise."""
        text = body.decode("utf-8", errors="replace")
        try:
            await self._verify(headers, text)
        except Unverified as why:
            raise CallbackRejected(400 if why.replay else 401, str(why)) from None
        try:
            notice = json.loads(text)
            resource = notice["resource"]
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise CallbackRejected(400, f"unknown algorithm {resource.get('algorithm')!r}")
            plaintext = crypto.aes_gcm_decrypt(self.keys.apiv3_key, resource["nonce"],
                                               resource.get("associated_data") or "", resource["ciphertext"])
            opened = json.loads(plaintext)
        except crypto.CallbackUndecryptable as error:
            raise CallbackRejected(400, str(error)) from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise CallbackRejected(400, "not a WeChat Pay notification") from None
        if not isinstance(opened, dict):
            raise CallbackRejected(400, "the resource is not a JSON object")
        return notice, opened

    # --- verification --------------------------------------------------------------------------

    async def _verify(self, headers: Mapping[str, str], body: str) -> None:
        timestamp = headers.get("Wechatpay-Timestamp")
        nonce = headers.get("Wechatpay-Nonce")
        signature = headers.get("Wechatpay-Signature")
        serial = headers.get("Wechatpay-Serial")
        if not (timestamp and nonce and signature and serial):
            raise Unverified("unsigned")
        if headers.get("Wechatpay-Signature-Type", crypto.SCHEME) != crypto.SCHEME:
            raise Unverified(f"unknown signature type {headers.get('Wechatpay-Signature-Type')!r}")
        try:
            skew = abs(self.clock() - int(timestamp))
        except ValueError:
            raise Unverified("the timestamp is not a number") from None
        if skew > crypto.MAX_CLOCK_SKEW_SECONDS:
            raise Unverified(f"signed {skew:.0f} s away from now")
        key = await self._verifying_key(serial)
        if key is None:
            raise Unverified(f"no WeChat Pay key has the serial {serial!r}")
        if not crypto.verify(key, crypto.answer_message(timestamp, nonce, body), signature):
            raise Unverified("the signature does not verify")
        if not await self.replays.first_time(nonce):
            raise Unverified("the nonce was seen before", replay=True)

    async def _verifying_key(self, serial: str) -> RSAPublicKey | None:
        if self.keys.public_key_id is not None and serial == self.keys.public_key_id:
            return self.keys.public_key
        if serial.startswith(crypto.PUBLIC_KEY_ID_PREFIX):
            return None  # a public key that is not ours: no certificate carries such a serial
        if serial not in self._certificates:
            await self._refresh_certificates(force=True)
        certificate = self._certificates.get(serial)
        return certificate.public_key() if certificate is not None else None

    async def _refresh_certificates(self, force: bool) -> None:
        """Download the platform certificates when it is time to, or (`force`) when an unknown serial was
        named and the last download is older than a minute."""
        async with self._refresh_lock:
            age = self.clock() - self._certificates_at
            if age < (UNKNOWN_SERIAL_REFRESH_SECONDS if force else REFRESH_CERTIFICATES_SECONDS):
                return
            self._certificates_at = self.clock()
            try:
                self._certificates = await self._download_certificates()
            except PayUnclear as error:
                log.warning("WeChat Pay platform certificates not downloaded: %s", error)

    async def _download_certificates(self) -> dict[str, x509.Certificate]:
        """The certificates the answer carries, opened with the APIv3 key (which authenticates them); the
        answer itself must verify with one of them."""
        response = await self._send("GET", CERTIFICATES_PATH, "", None)
        raw = response.content.decode("utf-8", errors="replace")
        if response.status_code != 200:
            raise PayUnclear(_field(raw, "code") or "HTTP_ERROR", f"certificates: HTTP {response.status_code}")
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        certificates: dict[str, x509.Certificate] = {}
        try:
            for item in json.loads(raw)["data"]:
                sealed = item["encrypt_certificate"]
                pem = crypto.aes_gcm_decrypt(self.keys.apiv3_key, sealed["nonce"], sealed["associated_data"],
                                             sealed["ciphertext"])
                certificate = crypto.load_certificate(pem)
                if certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
                    certificates[crypto.certificate_serial(certificate)] = certificate
        except (ValueError, KeyError, TypeError, crypto.BadKey) as error:
            raise PayUnclear("BAD_CERTIFICATES", f"the certificates do not open: {error}") from None
        serial = response.headers.get("Wechatpay-Serial", "")
        signed_by = certificates.get(serial)
        signature = response.headers.get("Wechatpay-Signature", "")
        message = crypto.answer_message(response.headers.get("Wechatpay-Timestamp", ""),
                                        response.headers.get("Wechatpay-Nonce", ""), raw)
        if signed_by is None or not crypto.verify(signed_by.public_key(), message, signature):
            raise PayUnclear("UNVERIFIED", "the certificates' answer is not signed by one of them")
        return certificates


def _field(raw: str, name: str) -> str | None:
    try:
        value = json.loads(raw).get(name)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
