"""The promoter scene: what a poster's QR code carries, defined and parsed here only.

A promoter scene is `p:<member id>`, where a member id is the 24 lowercase
hex digits of a MongoDB ObjectId, optionally followed by `:<template id>`,
the poster template the code was drawn on (so the funnel can tell templates
apart). The bare form fits both carriers: an official-account parametric QR
(`scene_str`, up to 64 characters, room for any template id) and a
mini-program code (`getwxacodeunlimit`, up to 32 characters from a
restricted set, room for a template id of at most 5 characters). Scenes
without a template, on codes drawn before templates were named, stay valid.

A promoter's share of a product is `p:<member id>.<product id>` (a product id
is 5 characters, `distribution.catalogue`): exactly 32 characters, a
mini-program code's scene. It binds as any promoter scene does; the
mini-program opens the product it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from distribution.catalogue import is_product_id

PROMOTER_PREFIX = "p:"
TEMPLATE_SEPARATOR = ":"
PRODUCT_SEPARATOR = "."  # never in a template id, so neither form reads as the other
MINIAPP_SCENE_MAX_LENGTH = 32

_MEMBER_ID = re.compile(r"[0-9a-f]{24}")
# As the merchant's poster settings name templates (`distribution.poster_settings.TemplateId`).
_TEMPLATE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_MINIAPP_SCENE = re.compile(rf"[A-Za-z0-9!#$&'()*+,/:;=?@\-._~]{{1,{MINIAPP_SCENE_MAX_LENGTH}}}")

# WeChat prefixes the scene with this on `subscribe`, and some clients on `SCAN` too.
_SUBSCRIBE_PREFIX = "qrscene_"
# A follow from a WeChat Pay result page carries the payment's number, not a scene.
_PAYMENT_FOLLOW_PREFIX = "last_trade_no_"
_SCENE_EVENTS = {"subscribe", "scan"}


def is_member_id(value: object) -> bool:
    return isinstance(value, str) and _MEMBER_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class PromoterScene:
    member_id: str
    template_id: str | None = None  # the poster template whose code was scanned, when the code says
    product_id: str | None = None  # the product the promoter shared, when the code says


def promoter_scene(member_id: str, template_id: str | None = None) -> str:
    """The scene that binds a scanner to `member_id`, naming the poster template if given; ValueError if
    either is malformed."""
    if not is_member_id(member_id):
        raise ValueError(f"not a member id: {member_id!r}")
    if template_id is None:
        return PROMOTER_PREFIX + member_id
    if _TEMPLATE_ID.fullmatch(template_id) is None:
        raise ValueError(f"not a template id: {template_id!r}")
    return f"{PROMOTER_PREFIX}{member_id}{TEMPLATE_SEPARATOR}{template_id}"


def product_scene(member_id: str, product_id: str) -> str:
    """The scene of `member_id`'s share of a product: binds the scanner to them and opens the product;
    ValueError if either is malformed."""
    if not is_member_id(member_id):
        raise ValueError(f"not a member id: {member_id!r}")
    if not is_product_id(product_id):
        raise ValueError(f"not a product id: {product_id!r}")
    return f"{PROMOTER_PREFIX}{member_id}{PRODUCT_SEPARATOR}{product_id}"


def parse_scene(raw: str | None) -> PromoterScene | None:
    """The promoter (and template, or product) a scene names, or None when it is not a well-formed promoter scene.

    A mini-program receives its scene percent-encoded (`p%3A...`) and clients
    often pass it on without decoding, so one level of decoding is applied.
    """
    if not isinstance(raw, str):
        return None
    scene = unquote(raw)
    if not scene.startswith(PROMOTER_PREFIX):
        return None
    named = scene[len(PROMOTER_PREFIX) :]
    member_id, shared, product_id = named.partition(PRODUCT_SEPARATOR)
    if shared:
        return PromoterScene(member_id, product_id=product_id) if is_member_id(member_id) and is_product_id(
            product_id) else None
    member_id, separator, template_id = named.partition(TEMPLATE_SEPARATOR)
    if not is_member_id(member_id):
        return None
    if not separator:
        return PromoterScene(member_id)
    return PromoterScene(member_id, template_id) if _TEMPLATE_ID.fullmatch(template_id) else None


def scene_from_event_key(event: str | None, event_key: str | None) -> str | None:
    """The scene of an official-account `subscribe` or `SCAN` push, or None when it carries none.

    `event` is matched in any case. A plain follow has an empty EventKey; a
    follow from a payment page has `last_trade_no_...`; other events (CLICK,
    VIEW...) use EventKey for menu keys, never scenes.
    """
    if not event or event.lower() not in _SCENE_EVENTS or not event_key:
        return None
    if event_key.startswith(_PAYMENT_FOLLOW_PREFIX):
        return None
    scene = event_key.removeprefix(_SUBSCRIBE_PREFIX)
    return scene or None


def is_valid_miniapp_scene(scene: object) -> bool:
    """Whether `getwxacodeunlimit` accepts `scene`: 1-32 characters from WeChat's allowed set."""
    return isinstance(scene, str) and _MINIAPP_SCENE.fullmatch(scene) is not None
