"""Signed pushes as WeChat sends them: for `python -m bot simulate` and the tests."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner


def push_xml(fields: dict[str, str | int]) -> str:
    """WeChat's XML: numbers bare, strings in CDATA."""
    parts = []
    for name, value in fields.items():
        text = str(value) if isinstance(value, int) else f"<![CDATA[{value}]]>"
        parts.append(f"<{name}>{text}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def event_xml(openid: str, event: str, event_key: str | None = None, to: str = "gh_sandbox", at: int | None = None) -> str:
    fields: dict[str, str | int] = {"ToUserName": to, "FromUserName": openid, "CreateTime": at or int(time.time()),
                                    "MsgType": "event", "Event": event}
    if event_key is not None:
        fields["EventKey"] = event_key
    return push_xml(fields)


def text_xml(openid: str, content: str, msg_id: int | None = None, to: str = "gh_sandbox", at: int | None = None) -> str:
    return push_xml({"ToUserName": to, "FromUserName": openid, "CreateTime": at or int(time.time()),
                     "MsgType": "text", "Content": content, "MsgId": msg_id or secrets.randbits(62)})


def _sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


@dataclass(frozen=True)
class PushSigner:
    """Signs (and in safe mode encrypts) a push with the account's token, as WeChat does."""

    token: str
    app_id: str
    aes_key: str | None = None

    def sign(self, xml: str, timestamp: str | None = None, nonce: str | None = None) -> tuple[dict[str, str], bytes]:
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or secrets.token_hex(8)
        query = {"timestamp": timestamp, "nonce": nonce, "signature": _sign(self.token, timestamp, nonce)}
        if not self.aes_key:
            return query, xml.encode()
        envelope = WeChatCrypto(self.token, self.aes_key, self.app_id).encrypt_message(xml, nonce, timestamp)
        encrypt = parse_message_fields(envelope)["Encrypt"]
        query.update(encrypt_type="aes", msg_signature=_sign(self.token, timestamp, nonce, encrypt))
        # WeChat's envelope: the app's user name and the ciphertext only.
        return query, push_xml({"ToUserName": "gh_sandbox", "Encrypt": encrypt}).encode()

    def verification_query(self, echostr: str) -> dict[str, str]:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
        return {"timestamp": timestamp, "nonce": nonce, "echostr": echostr,
                "signature": _sign(self.token, timestamp, nonce)}

    def open_reply(self, query: dict[str, str], body: str) -> str:
        """The plain reply XML (decrypted in safe mode); `success` as it is."""
        if not self.aes_key or body in ("", "success"):
            return body
        fields = parse_message_fields(body)
        return WeChatCrypto(self.token, self.aes_key, self.app_id).decrypt_message(
            body, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
        )


def parse_message_fields(xml: str) -> dict[str, str]:
    import xmltodict

    return dict(xmltodict.parse(xml)["xml"])


def reply_content(reply_xml: str) -> str | None:
    """The text of a text reply, for printing."""
    if reply_xml in ("", "success"):
        return None
    return getattr(parse_message(reply_xml), "content", None) or reply_xml
