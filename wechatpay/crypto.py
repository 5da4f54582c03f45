"""WeChat Pay API v3's cryptography, pure: signing requests, verifying answers and callbacks, AES-256-GCM
and RSA-OAEP. Built on `cryptography` (RSA PKCS#1 v1.5 with SHA-256, AES-GCM, OAEP with SHA-1, as WeChat Pay
specifies); the tests check it against an independent implementation.

- A request is signed over `METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n` (URL: path and query) with the
  merchant's API private key, and says so in `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=...`; so is
  `wx.requestPayment`'s `paySign`, over `APPID\\nTIMESTAMP\\nNONCE\\nPACKAGE\\n`.
- An answer or callback is signed by WeChat Pay over `TIMESTAMP\\nNONCE\\nBODY\\n`; `Wechatpay-Serial` names
  the key: a WeChat Pay public key (`PUB_KEY_ID_...`) or a platform certificate's serial number.
- A callback's `resource`, and each platform certificate, is AES-256-GCM under the APIv3 key.
- A sensitive request field (`user_name`) is RSA-OAEP under WeChat Pay's key, named by `Wechatpay-Serial`.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEME = "WECHATPAY2-SHA256-RSA2048"
APIV3_KEY_BYTES = 32
MAX_CLOCK_SKEW_SECONDS = 300  # an answer or callback signed further from now is refused
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"


class BadKey(ValueError):
    """A key or certificate that cannot be read as what it should be."""


class CallbackUndecryptable(ValueError):
    """AES-GCM refused the ciphertext: a wrong APIv3 key, or a forged or damaged resource."""


def load_private_key(pem: bytes) -> RSAPrivateKey:
    """The merchant's API private key (`apiclient_key.pem`): PKCS#8 or PKCS#1 PEM, unencrypted."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise BadKey(f"not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, RSAPrivateKey) or key.key_size < 2048:
        raise BadKey("not an RSA private key of at least 2048 bits")
    return key


def load_public_key(pem: bytes) -> RSAPublicKey:
    """A WeChat Pay public key (`pub_key.pem`), or the public key of a PEM certificate."""
    try:
        if b"CERTIFICATE" in pem:
            key = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)
    except ValueError as error:
        raise BadKey(f"not a PEM public key or certificate: {error}") from None
    if not isinstance(key, RSAPublicKey):
        raise BadKey("not an RSA public key")
    return key


def load_certificate(pem: bytes) -> x509.Certificate:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as error:
        raise BadKey(f"not a PEM certificate: {error}") from None
    if not isinstance(certificate.public_key(), RSAPublicKey):
        raise BadKey("not an RSA certificate")
    return certificate


def certificate_serial(certificate: x509.Certificate) -> str:
    """The serial as WeChat Pay writes it in `Wechatpay-Serial`: upper-case hex."""
    return format(certificate.serial_number, "X")


def new_nonce() -> str:
    return secrets.token_hex(16).upper()


def request_message(method: str, url: str, timestamp: str, nonce: str, body: str) -> str:
    """What a request's signature covers; `url` is the path with its query string, `body` "" for a GET."""
    return f"{method}\n{url}\n{timestamp}\n{nonce}\n{body}\n"


def payment_message(app_id: str, timestamp: str, nonce: str, package: str) -> str:
    """What `wx.requestPayment`'s `paySign` covers; `app_id` is the app the order was made for."""
    return f"{app_id}\n{timestamp}\n{nonce}\n{package}\n"


def answer_message(timestamp: str, nonce: str, body: str) -> str:
    """What an answer's or a callback's signature covers."""
    return f"{timestamp}\n{nonce}\n{body}\n"


def sign(private_key: RSAPrivateKey, message: str) -> str:
    return base64.b64encode(private_key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(public_key: RSAPublicKey, message: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def authorization(mch_id: str, serial: str, private_key: RSAPrivateKey, method: str, url: str, body: str,
                  timestamp: str, nonce: str) -> str:
    """The `Authorization` header of one request."""
    signature = sign(private_key, request_message(method, url, timestamp, nonce, body))
    return (f'{SCHEME} mchid="{mch_id}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{serial}"')


@dataclass(frozen=True)
class Authorization:
    mch_id: str
    nonce: str
    signature: str
    timestamp: str
    serial: str


_PARAMETER = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*(?:,|$)')


def parse_authorization(header: str | None) -> Authorization | None:
    """An `Authorization` header read back (what WeChat Pay does with ours); None when it is not one."""
    if not header or not header.startswith(SCHEME + " "):
        return None
    fields = dict(_PARAMETER.findall(header[len(SCHEME) + 1:]))
    try:
        return Authorization(fields["mchid"], fields["nonce_str"], fields["signature"], fields["timestamp"],
                             fields["serial_no"])
    except KeyError:
        return None


def apiv3_key_bytes(apiv3_key: str) -> bytes:
    key = apiv3_key.encode()
    if len(key) != APIV3_KEY_BYTES:
        raise BadKey(f"the APIv3 key is {APIV3_KEY_BYTES} ASCII characters, not {len(key)} bytes")
    return key


def aes_gcm_decrypt(apiv3_key: str, nonce: str, associated_data: str, ciphertext: str) -> bytes:
    """A callback's `resource` or a certificate's `encrypt_certificate`, opened."""
    try:
        data = base64.b64decode(ciphertext, validate=True)
        return AESGCM(apiv3_key_bytes(apiv3_key)).decrypt(nonce.encode(), data, associated_data.encode() or None)
    except (binascii.Error, ValueError, InvalidTag):
        raise CallbackUndecryptable("the resource does not open with the APIv3 key") from None


def aes_gcm_encrypt(apiv3_key: str, nonce: str, associated_data: str, plaintext: bytes) -> str:
    """What WeChat Pay does to a callback's resource (the sandbox uses it)."""
    sealed = AESGCM(apiv3_key_bytes(apiv3_key)).encrypt(nonce.encode(), plaintext, associated_data.encode() or None)
    return base64.b64encode(sealed).decode()


_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def encrypt_field(public_key: RSAPublicKey, text: str) -> str:
    """A sensitive request field, for WeChat Pay's eyes only."""
    return base64.b64encode(public_key.encrypt(text.encode(), _OAEP)).decode()


def decrypt_field(private_key: RSAPrivateKey, ciphertext: str) -> str:
    """What WeChat Pay does with an encrypted field (the sandbox uses it)."""
    return private_key.decrypt(base64.b64decode(ciphertext), _OAEP).decode()
