"""Sensitive words: matching ignores case and width, refusals name the field and the word."""

import pytest

from distribution.content import DEFAULT_SENSITIVE_WORDS, ContentSettings, SensitiveWordFound, published_texts
from distribution.poster_settings import PosterSettings
from distribution.records import InvalidField


def test_the_default_list_holds_the_advertising_laws_absolute_terms():
    assert {"最高级", "第一", "最佳", "国家级", "顶级", "极品", "100%有效"} <= set(DEFAULT_SENSITIVE_WORDS)
    assert ContentSettings().sensitive_words == DEFAULT_SENSITIVE_WORDS


@pytest.mark.parametrize("text", ["全网第一好茶", "ＢＥＳＴ in town", "best IN TOWN", "１００％有效", "本品100%有效"])
def test_a_word_is_found_whatever_its_case_or_width(text):
    settings = ContentSettings(sensitive_words=("第一", "Best", "100%有效"))
    assert settings.first_word_in(text) in {"第一", "Best", "100%有效"}


def test_a_clean_text_and_no_text_contain_nothing():
    settings = ContentSettings()
    assert settings.first_word_in("春季大促 好茶送好友") is None
    assert settings.first_word_in(None) is None and settings.first_word_in("") is None


def test_the_refusal_names_the_field_and_the_word_as_listed():
    settings = ContentSettings(sensitive_words=("顶级",))
    with pytest.raises(SensitiveWordFound) as refused:
        settings.refuse_words([("name", "李雷"), ("reason", "我卖ＴＯＰ级也卖顶级茶")])
    assert refused.value.field == "reason" and refused.value.word == "顶级" and "顶级" in refused.value.message
    assert refused.value.code == "sensitive_word"
    settings.refuse_words([("name", "李雷"), ("reason", None)])  # nothing to refuse


def test_a_nickname_with_a_word_is_printed_as_the_neutral_name():
    settings = ContentSettings(sensitive_words=("极品",), neutral_name="好友")
    assert settings.printable_name("极品小王") == "好友"
    assert settings.printable_name("小王") == "小王"
    assert settings.printable_name(None) is None


def test_words_listed_twice_or_a_dirty_neutral_name_are_refused():
    with pytest.raises(InvalidField) as twice:
        ContentSettings.from_dict({"sensitive_words": ["第一", "第 一", "ＡＢ", "ab"]})
    assert twice.value.field == "sensitive_words[3]"
    with pytest.raises(InvalidField) as dirty:
        ContentSettings.from_dict({"neutral_name": "第一推广员"})
    assert dirty.value.field == "neutral_name" and "第一" in dirty.value.problem
    with pytest.raises(InvalidField) as blank:
        ContentSettings.from_dict({"sensitive_words": ["  "]})
    assert blank.value.field == "sensitive_words[0]"


def test_poster_headlines_are_the_published_texts_of_poster_settings():
    posters = PosterSettings.from_dict({"templates": {"spring": {"headline": "春季大促"}, "plain": {}},
                                        "default_template": "spring"})
    assert list(published_texts(posters)) == [("templates.spring.headline", "春季大促"),
                                               ("templates.plain.headline", None)]
    assert list(published_texts(ContentSettings())) == []
