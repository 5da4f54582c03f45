"""The merchant's sensitive words (敏感词库) and how texts are checked against them.

Texts the shop publishes or keeps on a promoter's behalf — poster headlines,
application texts — must not carry absolute claims the 广告法 forbids
(最高级, 第一, ...) or any other word the merchant lists. A merchant's own text
with such a word is refused naming the word; a nickname printed on a poster
(the member chose it, nobody reviews it) is replaced by a neutral name on the
poster only.

Matching folds both sides the same way: NFKC (full-width Ｆｏｏ and half-width
katakana become their plain forms) then case folding, so a word is found
however it is typed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from distribution.poster_settings import PosterSettings
from distribution.records import InvalidField, Record, Text

MAX_WORDS = 500
MAX_WORD_LENGTH = 20
MAX_NEUTRAL_NAME_LENGTH = 16

# Absolute terms the 广告法 (article 9) forbids in advertising, and claims of sure effect.
DEFAULT_SENSITIVE_WORDS = (
    "最高级", "最佳", "最好", "最低价", "第一", "唯一", "首个", "国家级", "世界级", "顶级", "极品", "极致",
    "独一无二", "绝对", "万能", "100%有效", "永久有效", "根治", "包治百病", "稳赚不赔",
)

Word = Annotated[Text, StringConstraints(strip_whitespace=True, max_length=MAX_WORD_LENGTH)]


def folded(text: str) -> str:
    """How texts and words are compared: NFKC-normalised, then case folded."""
    return unicodedata.normalize("NFKC", text).casefold()


class SensitiveWordFound(InvalidField):
    """A text carries one of the merchant's sensitive words; `word` is the listed word it matched."""

    code = "sensitive_word"

    def __init__(self, field: str, word: str):
        super().__init__(field, f"contains the sensitive word {word!r}, which the shop's content rules forbid")
        self.word = word


class ContentSettings(Record):
    """The shop's sensitive words, refused in poster headlines and application texts and kept off posters."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "sensitive_words": ["最高级", "第一", "国家级"], "neutral_name": "推广员",
    }]})

    sensitive_words: Annotated[tuple[Word, ...], Field(max_length=MAX_WORDS)] = Field(
        DEFAULT_SENSITIVE_WORDS,
        description="Words no poster headline, application text or nickname on a poster may contain, compared "
                    "ignoring case and full/half width. By default the 广告法's absolute terms.")
    neutral_name: Annotated[Text, Field(max_length=MAX_NEUTRAL_NAME_LENGTH)] = Field(
        "推广员", description="Printed on a poster instead of a nickname that contains a sensitive word.")

    @model_validator(mode="after")
    def _words_differ_and_the_neutral_name_is_clean(self) -> Self:
        seen: set[str] = set()
        for index, word in enumerate(self.sensitive_words):
            if folded(word) in seen:
                raise InvalidField(f"sensitive_words[{index}]", f"{word!r} is listed twice")
            seen.add(folded(word))
        found = self.first_word_in(self.neutral_name)
        if found is not None:
            raise SensitiveWordFound("neutral_name", found)
        return self

    @cached_property
    def _folded_words(self) -> tuple[tuple[str, str], ...]:
        # Folded once per settings value: every poster and application is checked against them.
        return tuple((folded(word), word) for word in self.sensitive_words)

    def first_word_in(self, text: str | None) -> str | None:
        """The first listed word that `text` contains, as the merchant listed it; None when it is clean."""
        if not text:
            return None
        text = folded(text)
        return next((word for key, word in self._folded_words if key in text), None)

    def refuse_words(self, texts: Iterable[tuple[str, str | None]]) -> None:
        """SensitiveWordFound naming the first of `texts` (field, text) that contains a word."""
        for field, text in texts:
            word = self.first_word_in(text)
            if word is not None:
                raise SensitiveWordFound(field, word)

    def printable_name(self, nickname: str | None) -> str | None:
        """The nickname to print on a poster: itself, or the neutral name when it contains a word."""
        return self.neutral_name if self.first_word_in(nickname) is not None else nickname


def published_texts(settings: Record) -> Iterator[tuple[str, str | None]]:
    """The texts of a kind of merchant settings that the shop shows to the public, by field path: what the content
    rules check before such settings are stored."""
    if isinstance(settings, PosterSettings):
        for template_id, choice in settings.templates.items():
            yield f"templates.{template_id}.headline", choice.headline
