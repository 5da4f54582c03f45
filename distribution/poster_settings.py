"""The merchant's poster settings: which templates promoters may ask for, the
words that ask for a poster in chat, and which code a poster carries.

Pure: a `Record` read and replaced through
`GET|PUT /api/merchant/v1/settings/posters`. A template here is a choice of
one of the built-in designs (`Design`, drawn by `posters.templates`) with the
merchant's own version, headline and background picture.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StrictBool, StringConstraints, model_validator

from distribution.records import Integer, InvalidField, Record, Text, matching


class Design(StrEnum):
    """The built-in poster designs."""

    CLASSIC = "classic"  # 喜庆红: festive red, the headline large in the middle
    FRESH = "fresh"  # 清新蓝: fresh blue, the avatar centred on top


class CodeType(StrEnum):
    OA_QR = "oa_qr"  # the official account's parametric QR: scanning follows the account
    MINIAPP_CODE = "miniapp_code"  # a mini-program code (getwxacodeunlimit): scanning opens the mini-program
    H5_LINK = "h5_link"  # a signed web link drawn as a QR code


MAX_TEMPLATES = 20
MAX_KEYWORDS = 10
MAX_KEYWORD_LENGTH = 20
MAX_HEADLINE_LENGTH = 40
MAX_TEMPLATE_VERSION = 1_000_000
MAX_QR_EXPIRE_DAYS = 30  # WeChat's longest temporary QR code
# How many permanent parametric QR codes (QR_LIMIT_STR_SCENE) WeChat lets one account create.
PERMANENT_QR_LIMIT = 100_000

TemplateId = Annotated[Text, matching(
    r"^[a-z0-9][a-z0-9_-]{0,31}$",
    "a template id is 1-32 lowercase letters, digits, _ or -, starting with a letter or digit",
)]
Headline = Annotated[Text, StringConstraints(max_length=MAX_HEADLINE_LENGTH), matching(
    r"^[^\x00-\x09\x0b-\x1f]*[^\s\x00-\x1f][^\x00-\x09\x0b-\x1f]*$",
    "must not be blank nor contain control characters (a line break is allowed)",
)]
BackgroundId = Annotated[Text, matching(
    r"^[0-9a-f]{24}$", "must be the id of an uploaded background (POST /api/merchant/v1/posters/backgrounds)",
)]
Keyword = Annotated[Text, StringConstraints(strip_whitespace=True, max_length=MAX_KEYWORD_LENGTH)]
# A mini-program page path as getwxacodeunlimit takes it: no leading slash, no query.
MiniappPage = Annotated[Text, matching(
    r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+){0,9}$",
    "must be a mini-program page path such as pages/index/index (no leading /, no query)",
)]


class TemplateChoice(Record):
    """One template the merchant offers: a built-in design with the merchant's headline and background."""

    design: Design = Field(Design.CLASSIC, description="The built-in design it is drawn with.")
    version: Annotated[Integer, Field(ge=1, le=MAX_TEMPLATE_VERSION)] = Field(
        1, description="Raise it after replacing the background picture's content under the same id, or to redraw "
                       "every poster of this template.")
    headline: Headline | None = Field(
        None, description="The words in large type; a line break is allowed. null: the design's own.")
    background_id: BackgroundId | None = Field(
        None, description="An uploaded background picture (POST /api/merchant/v1/posters/backgrounds). null: the "
                          "design's own colours.")


def normalised_keyword(text: str) -> str:
    """How a chat message is compared with the keywords: trimmed, case folded."""
    return text.strip().casefold()


def _default_templates() -> dict[str, TemplateChoice]:
    return {design.value: TemplateChoice(design=design) for design in Design}


class PosterSettings(Record):
    """The posters promoters can ask for, the words that ask for one in chat, and the code they carry."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "templates": {"spring": {"design": "fresh", "version": 2, "headline": "春季\n大促", "background_id": None},
                      "classic": {"design": "classic", "version": 1, "headline": None, "background_id": None}},
        "default_template": "spring", "keywords": ["海报", "邀请码"], "code_type": "oa_qr", "permanent_qr": False,
        "qr_expire_days": 30, "miniapp_page": "pages/index/index",
    }]})

    templates: Annotated[dict[TemplateId, TemplateChoice], Field(min_length=1, max_length=MAX_TEMPLATES)] = Field(
        default_factory=_default_templates, description="The templates promoters may choose from, by template id.")
    default_template: TemplateId = Field(
        Design.CLASSIC.value, description="The template drawn when a promoter names none: one of templates.")
    keywords: Annotated[tuple[Keyword, ...], Field(max_length=MAX_KEYWORDS)] = Field(
        ("海报", "推广海报"), description="Chat messages that ask for a poster, compared trimmed and ignoring case.")
    code_type: CodeType = Field(
        CodeType.OA_QR, description="The code on a poster: the official account's QR code (scanning follows the "
                                    "account), a mini-program code, or a QR code of a web link.")
    permanent_qr: StrictBool = Field(
        False, description=f"Official-account codes only: permanent codes (at most {PERMANENT_QR_LIMIT:,} per "
                           f"account, then temporary ones are used) rather than temporary ones.")
    qr_expire_days: Annotated[Integer, Field(ge=1, le=MAX_QR_EXPIRE_DAYS)] = Field(
        MAX_QR_EXPIRE_DAYS, description="Temporary official-account codes: days they last; posters are redrawn "
                                        "before their code expires.")
    miniapp_page: MiniappPage = Field(
        "pages/index/index", description="Mini-program codes: the page a scan opens, such as pages/index/index.")

    @model_validator(mode="after")
    def _keywords_differ_and_the_default_is_offered(self) -> Self:
        seen: set[str] = set()
        for index, keyword in enumerate(self.keywords):
            if normalised_keyword(keyword) in seen:
                raise InvalidField(f"keywords[{index}]", f"{keyword!r} is listed twice")
            seen.add(normalised_keyword(keyword))
        if self.default_template not in self.templates:
            raise InvalidField("default_template", f"must be one of the templates: {', '.join(self.templates)}")
        return self

    @cached_property
    def folded_keywords(self) -> frozenset[str]:
        # Folded once per settings value: every chat message of every push is compared with them.
        return frozenset(normalised_keyword(each) for each in self.keywords)

    def is_keyword(self, text: str | None) -> bool:
        return bool(text) and normalised_keyword(text) in self.folded_keywords
