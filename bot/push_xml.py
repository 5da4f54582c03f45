"""The XML of pushes and replies, read and written without a general-purpose XML library where WeChat's shapes
allow it.

A push as WeChat sends it is `<xml>` holding one level of fields, each a CDATA
section or text without markup. Such a push is read here by two patterns, a
few times faster than by ElementTree, into the very fields ElementTree would
give; any other document, well-formed or not, is left to ElementTree, which
reads or refuses it. Only text that XML takes exactly as it is written passes:
no entity or character reference, no carriage return (XML reads it as a line
feed), no character XML forbids.

Text and image replies are written from one template each: wechatpy renders a
reply through a field object per value. Text is put in CDATA sections, and a
"]]>" inside one, which would end it, is split across two sections.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from wechatpy.replies import BaseReply, ImageReply, TextReply
from wechatpy.utils import to_text

# The characters XML 1.0 forbids, and the carriage return it turns into a line feed.
_NOT_VERBATIM = "\x00-\x08\x0b\x0c\x0e-\x1f\r\ufffe\uffff"
_FLAT_ROOT = "<xml>"
# One CDATA section: it ends at the first "]]>", so a field of several sections is left to ElementTree.
_CDATA_TEXT = rf"[^\]{_NOT_VERBATIM}]*(?:\](?!\]>)[^\]{_NOT_VERBATIM}]*)*"
_FLAT_FIELD = re.compile(
    rf"[ \t\n]*<([A-Za-z_][A-Za-z0-9_]*)>"
    rf"(?:<!\[CDATA\[({_CDATA_TEXT})\]\]>|([^<>&{_NOT_VERBATIM}]*))"
    rf"</\1>"
)
_FLAT_END = re.compile(r"[ \t\n]*</xml>[ \t\n]*\Z")


def flat_fields(xml: str) -> dict[str, Any] | None:
    """The fields of a push in WeChat's flat shape, as `grouped` collects them from ElementTree (text stripped,
    None when empty); None when `xml` is not of that shape."""
    if not xml.startswith(_FLAT_ROOT):
        return None
    pairs = []
    position = len(_FLAT_ROOT)
    while (field := _FLAT_FIELD.match(xml, position)) is not None:
        tag, cdata, text = field.groups()
        pairs.append((tag, (cdata if cdata is not None else text).strip() or None))
        position = field.end()
    if not pairs or _FLAT_END.match(xml, position) is None:
        return None
    return grouped(pairs)


def grouped(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Fields by tag as xmltodict gives them: a tag that repeats holds the list of its values."""
    fields: dict[str, Any] = {}
    for tag, value in pairs:
        if tag not in fields:
            fields[tag] = value
        elif isinstance(fields[tag], list):
            fields[tag].append(value)
        else:
            fields[tag] = [fields[tag], value]
    return fields


def reply_xml(reply: BaseReply) -> str:
    """The reply's XML: text and image replies from their templates, any other kind as wechatpy renders it."""
    if type(reply) is TextReply:
        return _envelope(reply, "text", f"<Content>{cdata(reply.content)}</Content>")
    if type(reply) is ImageReply:
        return _envelope(reply, "image", f"<Image><MediaId>{cdata(reply.media_id)}</MediaId></Image>")
    return reply.render()


def cdata(value: Any) -> str:
    """`value` as text in CDATA: a "]]>" in it ends one section after "]]" and opens the next for ">"."""
    return f"<![CDATA[{to_text(value).replace(']]>', ']]]]><![CDATA[>')}]]>"


def _envelope(reply: BaseReply, kind: str, body: str) -> str:
    return (f"<xml><ToUserName>{cdata(reply.target)}</ToUserName><FromUserName>{cdata(reply.source)}</FromUserName>"
            f"<CreateTime>{int(reply.time)}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{body}</xml>")
