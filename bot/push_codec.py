"""Turning a WeChat push into a message and a reply back into a response body.

Plain, compatible and AES safe mode, all through wechatpy. Everything that is
not a well-formed push signed with our token, sent in the last
`PUSH_WINDOW_SECONDS`, is a `PushRejected` with the HTTP status to answer;
nothing downstream runs for it. In plain and compatible mode the signature
covers only token, timestamp and nonce, not the body: the door also refuses a
nonce seen before with another push (`bot.dedup`). With an AES key configured
only encrypted pushes are accepted, whose `msg_signature` covers the body too,
unless plaintext is explicitly still allowed for a migration.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any, Callable
from xml.etree import ElementTree
from xml.parsers.expat import ExpatError

from wechatpy.crypto import WeChatCrypto
from wechatpy.events import EVENT_TYPES
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import MESSAGE_TYPES, BaseMessage, UnknownMessage

from bot.push_xml import flat_fields, grouped

# A push never carries a DTD, entity or comment; refusing "<!" (bar CDATA)
# outright shuts out entity expansion bombs and external entities.
_MARKUP_DECLARATION = re.compile(rb"<!(?!\[CDATA\[)")

# How far a push's timestamp may be from our clock, either way; its nonce is remembered as long.
PUSH_WINDOW_SECONDS = 300


class PushRejected(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PushQuery:
    signature: str
    timestamp: str
    nonce: str
    encrypt_type: str
    msg_signature: str

    @classmethod
    def from_arguments(cls, argument: Callable[[str], str]) -> "PushQuery":
        """`argument(name)`: the query string's value of `name`, empty when it has none."""
        return cls(*map(argument, ("signature", "timestamp", "nonce", "encrypt_type", "msg_signature")))

    @property
    def encrypted(self) -> bool:
        return self.encrypt_type.lower() == "aes"

    @property
    def nonce_id(self) -> str:
        """What a replay repeats: the signed timestamp and nonce."""
        return f"{self.timestamp}:{self.nonce}"


class PushCodec:
    def __init__(self, token: str, app_id: str, aes_key: str | None, accept_plaintext: bool = False,
                 clock: Callable[[], float] = time.time):
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None
        self.plaintext_refused = self.crypto is not None and not accept_plaintext
        self.clock = clock

    def verify(self, query: PushQuery) -> None:
        if not (query.signature and query.timestamp and query.nonce):
            raise PushRejected(403, "missing signature, timestamp or nonce")
        if not self._signed(query):
            raise PushRejected(403, "invalid signature")
        if not (query.timestamp.isascii() and query.timestamp.isdigit()) \
                or abs(self.clock() - int(query.timestamp)) > PUSH_WINDOW_SECONDS:
            raise PushRejected(403, f"timestamp more than {PUSH_WINDOW_SECONDS} s away from now")

    def _signed(self, query: PushQuery) -> bool:
        """WeChat's signature: SHA-1 of token, timestamp and nonce sorted and joined (wechatpy's `check_signature`,
        without its signer object per push, and compared in constant time)."""
        signed = "".join(sorted((self.token, query.timestamp, query.nonce))).encode()
        return hmac.compare_digest(hashlib.sha1(signed).hexdigest().encode(), query.signature.encode())

    def open(self, query: PushQuery, body: bytes) -> str:
        """The push's XML, once its query is verified (and its body decrypted in safe mode)."""
        self.verify(query)
        if self.plaintext_refused and not query.encrypted:
            raise PushRejected(403, "plaintext push refused: WECHAT_AES_KEY is set, pushes must be encrypt_type=aes")
        if not body.strip():
            raise PushRejected(400, "empty body")
        if _MARKUP_DECLARATION.search(body):
            raise PushRejected(400, "DTDs, entities and comments are not accepted")
        if query.encrypted:
            return self._decrypt(query, body)
        try:
            return body.decode()
        except UnicodeDecodeError:
            raise PushRejected(400, "the push is not UTF-8") from None

    @staticmethod
    def parse(xml: str) -> BaseMessage:
        try:
            fields = flat_fields(xml) or _tree_fields(xml)
            # wechatpy converts fields on each read: the ones we key on are checked once here, so bad values fail now.
            if not (fields.get("FromUserName") and fields.get("ToUserName") and fields.get("CreateTime")):
                raise KeyError("FromUserName, ToUserName and CreateTime are required")
            int(fields["CreateTime"]), int(fields.get("MsgId") or 0)
            msg = message_of(fields)
        except (ElementTree.ParseError, ExpatError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PushRejected(400, f"malformed push XML: {exc}") from None
        return msg

    def _decrypt(self, query: PushQuery, body: bytes) -> str:
        if self.crypto is None:
            raise PushRejected(400, "encrypted push, but WECHAT_AES_KEY is not configured")
        try:
            xml = self.crypto.decrypt_message(body, query.msg_signature, query.timestamp, query.nonce)
        except (InvalidSignatureException, InvalidAppIdException):
            raise PushRejected(403, "invalid msg_signature or app id") from None
        except (ExpatError, KeyError, TypeError, ValueError) as exc:
            raise PushRejected(400, f"malformed encrypted push: {exc}") from None
        if _MARKUP_DECLARATION.search(xml.encode()):
            raise PushRejected(400, "DTDs, entities and comments are not accepted")
        return xml

    def encode(self, query: PushQuery, reply_xml: str) -> str:
        """`success` and empty replies go out as they are; real replies are encrypted in safe mode."""
        if not query.encrypted or self.crypto is None or reply_xml in ("", "success"):
            return reply_xml
        return self.crypto.encrypt_message(reply_xml, query.nonce, query.timestamp)


# wechatpy's own parser goes through xmltodict, a Python callback per element: ElementTree's C parser reads
# a push several times faster, and `open` has already refused every DTD and entity. Pushes in WeChat's flat
# shape are read faster still by `flat_fields`; the others come here.
def _tree_fields(xml: str) -> Any:
    root = ElementTree.fromstring(xml)
    if root.tag != "xml":
        raise KeyError("the push's root element must be <xml>")
    return _fields(root)


def _fields(element: ElementTree.Element) -> Any:
    """An element's content as xmltodict gives it: its text (None when empty), or its children by tag, those
    that repeat as a list (the pictures of a `pic_sysphoto` event, say)."""
    if len(element) == 0:
        return element.text.strip() or None if element.text else None
    return grouped((child.tag, _fields(child)) for child in element)


def message_of(fields: dict[str, Any]) -> BaseMessage:
    """The wechatpy message or event of a push's fields, classified as `wechatpy.parse_message` does."""
    message_type = fields["MsgType"].lower()
    if message_type != "event" and not message_type.startswith("device_"):
        return MESSAGE_TYPES.get(message_type, UnknownMessage)(fields)
    event_type = fields["Event"].lower() if "Event" in fields else None
    if message_type.startswith("device_"):
        event_type = message_type if event_type is None else f"device_{event_type}"
    event_key = fields.get("EventKey")
    if event_type == "subscribe" and event_key:
        if event_key.startswith(("scanbarcode|", "scanimage|")):
            event_type = fields["Event"] = "subscribe_scan_product"
        elif event_key.startswith("qrscene_"):
            event_type = fields["Event"] = "subscribe_scan"
            fields["EventKey"] = event_key[len("qrscene_"):]
    return EVENT_TYPES.get(event_type, UnknownMessage)(fields)
