"""The fast reading of WeChat's flat pushes gives ElementTree's fields or steps aside; replies are valid XML that
wechatpy reads back to what they say."""

from xml.etree import ElementTree

import pytest
from wechatpy import parse_message
from wechatpy.replies import ArticlesReply, ImageReply, TextReply

from bot.push_codec import PushCodec, PushRejected, _fields
from bot.push_xml import cdata, flat_fields, reply_xml
from tests.push_samples import EVENTS, MESSAGES, UNKNOWN_MESSAGE, fill

SAMPLES = {name: fill(template, "o_sample", 1700000000) for name, template in {**MESSAGES, **EVENTS}.items()}
SAMPLES["unknown"] = fill(UNKNOWN_MESSAGE, "o_sample", 1700000000)
HEAD = "<ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType>"


def tree_fields(xml: str):
    return _fields(ElementTree.fromstring(xml))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_push_reads_to_elementtrees_fields(name):
    xml = SAMPLES[name]
    fields = flat_fields(xml)
    if fields is None:  # nested fields: ElementTree reads those
        assert any(len(child) for child in ElementTree.fromstring(xml))
    else:
        assert fields == tree_fields(xml)


@pytest.mark.parametrize(
    "content",
    [
        "plain",
        "  padded  ",
        "",
        "<b>&amp; not an entity in CDATA</b>",
        "]] ]> ]]",
        "line\nbreak\ttab",
        "中文 and emoji 🍵",
        "</Content>",
        "x]",
        "]",
    ],
)
def test_cdata_content_reads_as_elementtree_reads_it(content):
    xml = f"<xml>{HEAD}<Content><![CDATA[{content}]]></Content><MsgId>7</MsgId></xml>"
    assert flat_fields(xml) == tree_fields(xml)


def test_text_that_holds_the_cdata_end_marker_reads_as_elementtree_reads_it():
    # A "]]>" in a chat message comes split across two CDATA sections, as `cdata` writes it.
    xml = f"<xml>{HEAD}<Content>{cdata('a]]>b')}</Content><MsgId>7</MsgId></xml>"
    assert PushCodec.parse(xml).content == "a]]>b" == tree_fields(xml)["Content"]


@pytest.mark.parametrize(
    "xml",
    [
        f"<xml>{HEAD}<Content>a &amp; b</Content></xml>",  # an entity: ElementTree resolves it
        f"<xml>{HEAD}<Content>&#65;</Content></xml>",  # a character reference
        f"<xml>{HEAD}<Content><![CDATA[a\r\nb]]></Content></xml>",  # XML reads CR LF as LF
        f"<xml>{HEAD}<Content>x<![CDATA[y]]></Content></xml>",  # mixed content
        f"<xml>{HEAD}<Content a='1'>x</Content></xml>",  # an attribute
        f"<xml>{HEAD}<Content/></xml>",
        f"<?xml version='1.0'?><xml>{HEAD}</xml>",
        f" <xml>{HEAD}</xml>",
        f"<xml>{HEAD}<Outer><Inner>1</Inner></Outer></xml>",
        "<xml></xml>",
    ],
)
def test_anything_but_the_flat_shape_is_left_to_elementtree(xml):
    assert flat_fields(xml) is None


@pytest.mark.parametrize(
    "xml",
    [
        f"<xml>{HEAD}<Content>x</Contents></xml>",  # mismatched tags
        f"<xml>{HEAD}<Content>x</Content>",  # unclosed root
        f"<xml>{HEAD}</xml>trailing",
        f"<xml>{HEAD}<Content><![CDATA[x]]></Content></xml><xml></xml>",
        f"<xml>{HEAD}<Content>\x01</Content></xml>",  # a character XML forbids
        f"<xml>{HEAD}<Content><![CDATA[\x0b]]></Content></xml>",
        f"<xml>{HEAD}<Content><![CDATA[unterminated</Content></xml>",
        f"<xml>{HEAD}<Content><![CDATA[x]]>y]]></Content></xml>",  # "]]>" outside CDATA
    ],
)
def test_malformed_pushes_are_still_refused(xml):
    assert flat_fields(xml) is None
    with pytest.raises(PushRejected) as refused:
        PushCodec.parse(xml)
    assert refused.value.status == 400


def test_a_repeated_field_is_a_list_as_elementtree_gives_it():
    xml = f"<xml>{HEAD}<Tag>a</Tag><Tag>b</Tag><Tag><![CDATA[c]]></Tag></xml>"
    assert flat_fields(xml)["Tag"] == ["a", "b", "c"] == tree_fields(xml)["Tag"]


def test_a_flat_push_parses_to_the_same_message_either_way():
    xml = SAMPLES["subscribe_with_scene"]
    fast = PushCodec.parse(xml)
    assert (fast.type, fast.event, fast.scene_id, fast.source, fast.time) == (
        "event", "subscribe_scan", "123123", "o_sample", 1700000000)


@pytest.mark.parametrize("content", ["你好", "", "a ]]> b", "]]>]]>", "<xml>&amp;</xml>", "x]]"])
def test_a_text_reply_reads_back_to_what_it_says(content):
    message = PushCodec.parse(SAMPLES["text"])
    xml = reply_xml(TextReply(message=message, content=content, time=message.time))
    reply = parse_message(xml)
    assert (reply.type, reply.content or "", reply.source, reply.target, reply.time) == (
        "text", content, "gh_sandbox", "o_sample", 1700000000)
    assert tree_fields(xml)["Content"] == (content.strip() or None)


def test_an_image_reply_reads_back_to_its_media():
    message = PushCodec.parse(SAMPLES["text"])
    xml = reply_xml(ImageReply(message=message, media_id="media]]>id", time=message.time))
    fields = tree_fields(xml)
    assert fields["MsgType"] == "image" and fields["Image"] == {"MediaId": "media]]>id"}
    assert fields["ToUserName"] == "o_sample" and fields["CreateTime"] == "1700000000"


def test_other_replies_are_rendered_by_wechatpy():
    message = PushCodec.parse(SAMPLES["text"])
    reply = ArticlesReply(message=message, articles=[{"title": "t", "description": "d", "image": "i", "url": "u"}])
    assert reply_xml(reply) == reply.render()


def test_cdata_splits_only_the_end_marker():
    assert cdata("a]]>b") == "<![CDATA[a]]]]><![CDATA[>b]]>"
    assert cdata(None) == "<![CDATA[]]>"
