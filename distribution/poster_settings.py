"""The merchant's poster settings: which templates promoters may ask for, the
words that ask for a poster in chat, and which code a poster carries.

Pure: a `Record` read and replaced through
`GET|PUT /api/merchant/v1/settings/posters`. A template here is a choice of
one of the built-in designs (`posters.templates.BUILTIN_TEMPLATES`) with the
merchant's own version, headline and background picture.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from distribution.records import InvalidField, Record, boolean, checked, choice, integer, optional
from posters.templates import BUILTIN_TEMPLATES


class CodeType(StrEnum):
    OA_QR = "oa_qr"  # the official account's parametric QR: scanning follows the account
    MINIAPP_CODE = "miniapp_code"  # a mini-program code (getwxacodeunlimit): scanning opens the mini-program
    H5_LINK = "h5_link"  # a signed web link drawn as a QR code


MAX_TEMPLATES = 20
MAX_KEYWORDS = 10
MAX_KEYWORD_LENGTH = 20
MAX_HEADLINE_LENGTH = 40
MAX_QR_EXPIRE_DAYS = 30  # WeChat's longest temporary QR code
# How many permanent parametric QR codes (QR_LIMIT_STR_SCENE) WeChat lets one account create.
PERMANENT_QR_LIMIT = 100_000

_TEMPLATE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_BACKGROUND_ID = re.compile(r"[0-9a-f]{24}")
# A mini-program page path as getwxacodeunlimit takes it: no leading slash, no query.
_MINIAPP_PAGE = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+){0,9}")


def _design(field: str, value: Any) -> str:
    if value not in BUILTIN_TEMPLATES:
        raise InvalidField(field, f"must be one of the built-in designs: {', '.join(BUILTIN_TEMPLATES)}")
    return value


def _headline(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(field, "must be a non-empty string")
    if len(value) > MAX_HEADLINE_LENGTH:
        raise InvalidField(field, f"must be at most {MAX_HEADLINE_LENGTH} characters")
    if any(ord(character) < 32 and character != "\n" for character in value):
        raise InvalidField(field, "must not contain control characters (a line break is allowed)")
    return value


def _background_id(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _BACKGROUND_ID.fullmatch(value):
        raise InvalidField(field, "must be the id of an uploaded background (POST /api/merchant/v1/posters/backgrounds)")
    return value


@dataclass(frozen=True)
class TemplateChoice(Record):
    """One template the merchant offers. Bump `version` after replacing the
    background picture's content under the same id, or to redraw every poster."""

    design: str = checked(_design, "classic")
    version: int = checked(integer(minimum=1), 1)
    headline: str | None = checked(optional(_headline), None)  # None: the design's own
    background_id: str | None = checked(optional(_background_id), None)  # None: drawn from the design's palette


def _template_id(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _TEMPLATE_ID.fullmatch(value):
        raise InvalidField(field, "a template id is 1-32 lowercase letters, digits, _ or -, starting with a letter or digit")
    return value


def _templates(field: str, value: Any) -> dict[str, TemplateChoice]:
    if not isinstance(value, Mapping):
        raise InvalidField(field, "must be an object: template id -> template")
    if not 1 <= len(value) <= MAX_TEMPLATES:
        raise InvalidField(field, f"must hold 1 to {MAX_TEMPLATES} templates")
    templates = {}
    for template_id, template in value.items():
        where = f"{field}.{template_id}"
        _template_id(where, template_id)
        if isinstance(template, TemplateChoice):
            templates[template_id] = template
            continue
        if not isinstance(template, Mapping):
            raise InvalidField(where, "must be an object")
        try:
            templates[template_id] = TemplateChoice.from_dict(template)
        except InvalidField as invalid:
            raise InvalidField(f"{where}.{invalid.field}", str(invalid).partition(": ")[2]) from None
    return templates


def _keywords(field: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise InvalidField(field, "must be a list of words")
    if len(value) > MAX_KEYWORDS:
        raise InvalidField(field, f"must hold at most {MAX_KEYWORDS} words")
    keywords: list[str] = []
    for index, keyword in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(keyword, str) or not keyword.strip():
            raise InvalidField(where, "must be a non-empty string")
        keyword = keyword.strip()
        if len(keyword) > MAX_KEYWORD_LENGTH:
            raise InvalidField(where, f"must be at most {MAX_KEYWORD_LENGTH} characters")
        if normalised_keyword(keyword) in map(normalised_keyword, keywords):
            raise InvalidField(where, f"{keyword!r} is listed twice")
        keywords.append(keyword)
    return tuple(keywords)


def _miniapp_page(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _MINIAPP_PAGE.fullmatch(value):
        raise InvalidField(field, "must be a mini-program page path such as pages/index/index (no leading /, no query)")
    return value


def normalised_keyword(text: str) -> str:
    """How a chat message is compared with the keywords: trimmed, case folded."""
    return text.strip().casefold()


def _default_templates() -> dict[str, TemplateChoice]:
    return {template_id: TemplateChoice(design=template_id) for template_id in BUILTIN_TEMPLATES}


@dataclass(frozen=True)
class PosterSettings(Record):
    templates: dict[str, TemplateChoice] = checked(_templates, default_factory=_default_templates)
    default_template: str = checked(_template_id, "classic")  # one of `templates`: checked below
    keywords: tuple[str, ...] = checked(_keywords, ("海报", "推广海报"))
    code_type: CodeType = checked(choice(CodeType), CodeType.OA_QR)
    # Official-account codes: permanent (QR_LIMIT_STR_SCENE, at most 100,000 per account; temporary
    # ones are used once they are spent) or temporary for `qr_expire_days`, renewed before they expire.
    permanent_qr: bool = checked(boolean(), False)
    qr_expire_days: int = checked(integer(minimum=1, maximum=MAX_QR_EXPIRE_DAYS), MAX_QR_EXPIRE_DAYS)
    miniapp_page: str = checked(_miniapp_page, "pages/index/index")

    def check_together(self) -> None:
        if self.default_template not in self.templates:
            raise InvalidField("default_template", f"must be one of the templates: {', '.join(self.templates)}")

    def is_keyword(self, text: str | None) -> bool:
        return bool(text) and normalised_keyword(text) in {normalised_keyword(each) for each in self.keywords}
