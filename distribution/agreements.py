"""The promoter agreement (电子协议): versioned text the merchant publishes, and what accepting it allows.

Versions count up from 1 and never change once published. While none is
published nothing needs accepting. Once one is:

- becoming a promoter by application needs the current version accepted;
- sharing (a poster, a product's code) needs some version accepted: a member
  who accepted an earlier one became a promoter under it;
- every withdrawal needs the current version accepted, so a new version is
  accepted before the next withdrawal.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from distribution.records import Integer, Record, Text

MAX_TITLE_LENGTH = 64
MAX_BODY_LENGTH = 20_000
MAX_VERSION = 1_000_000


class AgreementAct(StrEnum):
    APPLY = "apply"  # asking to become a promoter
    SHARE = "share"  # a poster or a product's share code
    WITHDRAW = "withdraw"


class AgreementText(Record):
    """A new version of the promoter agreement, as the merchant publishes it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "title": "推广员服务协议", "body": "一、推广员应如实宣传商品，不得使用绝对化用语……",
    }]})

    title: Annotated[Text, Field(max_length=MAX_TITLE_LENGTH)] = Field(description="The agreement's title.")
    body: Annotated[Text, Field(max_length=MAX_BODY_LENGTH)] = Field(
        description="The agreement's full text, as promoters read and accept it.")


class Acceptance(Record):
    """A member accepts one version of the agreement: the one they were shown, which must be the current one."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"version": 2}]})

    version: Annotated[Integer, Field(ge=1, le=MAX_VERSION)] = Field(
        description="The version accepted, as GET /api/v1/agreement gave it.")


def acceptance_missing(act: AgreementAct, current_version: int | None, accepted_version: int | None) -> bool:
    """Whether a member who accepted `accepted_version` at most (None: never) must accept the agreement before
    `act`, while `current_version` is the one published (None: none is)."""
    if current_version is None:
        return False
    if act is AgreementAct.SHARE:
        return accepted_version is None
    return accepted_version != current_version
