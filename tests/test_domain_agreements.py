"""What accepting the promoter agreement allows, version by version."""

import pytest

from distribution.agreements import Acceptance, AgreementAct, AgreementText, acceptance_missing
from distribution.records import InvalidField


@pytest.mark.parametrize("act", list(AgreementAct))
def test_nothing_needs_accepting_while_no_agreement_is_published(act):
    assert not acceptance_missing(act, None, None)


@pytest.mark.parametrize("act", list(AgreementAct))
def test_a_member_who_never_accepted_may_do_nothing_once_one_is_published(act):
    assert acceptance_missing(act, 1, None)


@pytest.mark.parametrize("act", list(AgreementAct))
def test_the_current_version_accepted_allows_everything(act):
    assert not acceptance_missing(act, 3, 3)


def test_a_new_version_is_needed_to_apply_and_withdraw_but_not_to_go_on_sharing():
    assert acceptance_missing(AgreementAct.APPLY, 2, 1)
    assert acceptance_missing(AgreementAct.WITHDRAW, 2, 1)
    assert not acceptance_missing(AgreementAct.SHARE, 2, 1)


def test_texts_and_versions_are_bounded():
    with pytest.raises(InvalidField) as blank:
        AgreementText.from_dict({"title": " ", "body": "x"})
    assert blank.value.field == "title"
    with pytest.raises(InvalidField) as long:
        AgreementText.from_dict({"title": "协议", "body": "字" * 20_001})
    assert long.value.field == "body"
    for version in (0, 10**7, True, "1"):
        with pytest.raises(InvalidField):
            Acceptance.from_dict({"version": version})
