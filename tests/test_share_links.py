"""H5 share links: signed for one promoter, verified in one place."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distribution.share_links import share_link, share_signature, verify_share_signature

SECRET = "a-share-link-secret-of-some-length"
MEMBER = "65a1b2c3d4e5f60718293a4b"
OTHER = "65a1b2c3d4e5f60718293a4c"


def test_a_link_names_the_member_and_carries_a_short_signature():
    link = share_link("https://shop.example.com/", MEMBER, SECRET)
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "shop.example.com", f"/s/{MEMBER}")
    (signature,) = parse_qs(parts.query)["sig"]
    assert len(signature) == 32 and signature.isalnum() and verify_share_signature(MEMBER, signature, SECRET)


def test_a_signature_binds_to_one_member_and_one_secret():
    signature = share_signature(MEMBER, SECRET)
    assert not verify_share_signature(OTHER, signature, SECRET)
    assert not verify_share_signature(MEMBER, signature, SECRET + "x")
    assert not verify_share_signature(MEMBER, signature[:-1], SECRET)


@pytest.mark.parametrize("member_id, signature", [(None, "x"), ("p:1", "x"), (MEMBER, None), (MEMBER, 7), (MEMBER, "签名")])
def test_malformed_input_is_refused_without_raising(member_id, signature):
    assert not verify_share_signature(member_id, signature, SECRET)


def test_only_member_ids_get_links():
    with pytest.raises(ValueError):
        share_link("https://x", "../admin", SECRET)


@given(st.text(max_size=40))
def test_no_guessed_signature_verifies(guess):
    assert verify_share_signature(MEMBER, guess, SECRET) == (guess == share_signature(MEMBER, SECRET))
