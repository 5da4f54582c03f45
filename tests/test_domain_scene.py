import pytest
from hypothesis import given
from hypothesis import strategies as st

from distribution.scene import (
    is_member_id,
    is_valid_miniapp_scene,
    PromoterScene,
    parse_scene,
    promoter_scene,
    scene_from_event_key,
)

MEMBER_ID = "65f1c2a9e4b0a1b2c3d4e5f6"
SCENE = f"p:{MEMBER_ID}"

member_ids = st.text(alphabet="0123456789abcdef", min_size=24, max_size=24)


def test_promoter_scene_names_the_member():
    assert promoter_scene(MEMBER_ID) == SCENE
    assert parse_scene(SCENE) == PromoterScene(MEMBER_ID)


def test_a_scene_may_name_the_poster_template_and_fits_a_miniapp_code_when_short():
    assert promoter_scene(MEMBER_ID, "fresh") == f"{SCENE}:fresh"
    assert parse_scene(f"{SCENE}:fresh") == PromoterScene(MEMBER_ID, "fresh")
    assert parse_scene(f"p%3A{MEMBER_ID}%3Aspring-2") == PromoterScene(MEMBER_ID, "spring-2")
    assert is_valid_miniapp_scene(promoter_scene(MEMBER_ID, "fresh"))
    assert not is_valid_miniapp_scene(promoter_scene(MEMBER_ID, "classic"))
    assert len(promoter_scene(MEMBER_ID, "t" * 32)) <= 64  # an official-account scene_str holds any


@pytest.mark.parametrize("template_id", ["", "Spring", "-x", "t" * 33, "a:b", "春"])
def test_a_malformed_template_makes_no_scene_and_parses_to_none(template_id):
    with pytest.raises(ValueError):
        promoter_scene(MEMBER_ID, template_id)
    assert parse_scene(f"{SCENE}:{template_id}") is None


@given(member_ids)
def test_every_promoter_scene_parses_back_and_fits_a_miniapp_code(member_id):
    scene = promoter_scene(member_id)
    assert parse_scene(scene) == PromoterScene(member_id)
    assert is_valid_miniapp_scene(scene)


@pytest.mark.parametrize(
    "not_an_id", ["", "65f1c2a9e4b0a1b2c3d4e5f", MEMBER_ID.upper(), MEMBER_ID + "0", "z" * 24, None, 42]
)
def test_promoter_scene_refuses_what_is_not_a_member_id(not_an_id):
    assert not is_member_id(not_an_id)
    with pytest.raises(ValueError):
        promoter_scene(not_an_id)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "p:",
        MEMBER_ID,
        f"P:{MEMBER_ID}",
        f"q:{MEMBER_ID}",
        f"p:{MEMBER_ID.upper()}",
        f"p:{MEMBER_ID}0",
        f"p:{MEMBER_ID[:-1]}",
        f" p:{MEMBER_ID}",
        f"p:{MEMBER_ID} ",
        "p:../../etc/passwd",
        "123",
    ],
)
def test_malformed_or_unknown_scenes_parse_to_none(raw):
    assert parse_scene(raw) is None


def test_a_percent_encoded_miniapp_scene_is_decoded_once():
    assert parse_scene(f"p%3A{MEMBER_ID}") == PromoterScene(MEMBER_ID)
    assert parse_scene(f"p%253A{MEMBER_ID}") is None


@pytest.mark.parametrize(
    ("event", "event_key", "scene"),
    [
        ("subscribe", f"qrscene_{SCENE}", SCENE),
        ("SUBSCRIBE", f"qrscene_{SCENE}", SCENE),
        ("Subscribe", f"qrscene_{SCENE}", SCENE),
        ("SCAN", SCENE, SCENE),
        ("scan", SCENE, SCENE),
        ("SCAN", f"qrscene_{SCENE}", SCENE),
        ("subscribe", SCENE, SCENE),
        ("subscribe", "qrscene_123", "123"),
        ("subscribe", "", None),
        ("subscribe", None, None),
        ("subscribe", "qrscene_", None),
        ("SCAN", None, None),
        ("subscribe", "last_trade_no_4200001234202401011234567890", None),
        ("CLICK", SCENE, None),
        ("VIEW", f"qrscene_{SCENE}", None),
        ("unsubscribe", f"qrscene_{SCENE}", None),
        ("", SCENE, None),
        (None, SCENE, None),
    ],
)
def test_scene_from_event_key_handles_wechat_quirks(event, event_key, scene):
    assert scene_from_event_key(event, event_key) == scene


def test_scene_from_subscribe_event_names_the_promoter():
    assert parse_scene(scene_from_event_key("subscribe", f"qrscene_{SCENE}")) == PromoterScene(MEMBER_ID)


@pytest.mark.parametrize("scene", [SCENE, "a", "A1", "!#$&'()*+,/:;=?@-._~", "x" * 32])
def test_valid_miniapp_scenes(scene):
    assert is_valid_miniapp_scene(scene)


@pytest.mark.parametrize("scene", ["", "x" * 33, "推客", "a b", "a%3Ab", 'a"b', "a<b", "a\nb", None, 7])
def test_invalid_miniapp_scenes(scene):
    assert not is_valid_miniapp_scene(scene)
