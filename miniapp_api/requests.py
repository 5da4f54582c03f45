"""The shapes of the mini-program's request bodies, validated field by field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from distribution.records import InvalidField, Record, checked, choice, integer, nested, optional, text

_URL = re.compile(r"https?://\S+")
_PHONE = re.compile(r"\+?\d{6,15}")


def url(field: str, value: Any) -> str:
    value = text(512)(field, value)
    if not _URL.fullmatch(value):
        raise InvalidField(field, "must be an http(s) URL")
    return value


def phone(field: str, value: Any) -> str:
    value = text(16)(field, value)
    if not _PHONE.fullmatch(value):
        raise InvalidField(field, "must be a phone number: digits, optionally a leading +")
    return value


@dataclass(frozen=True)
class ProfileFields(Record):
    nickname: str | None = checked(optional(text(32)), None)
    avatar_url: str | None = checked(optional(url), None)


@dataclass(frozen=True)
class LoginRequest(Record):
    code: str = checked(text(128))
    scene: str | None = checked(optional(text(64)), None)
    profile: ProfileFields = checked(optional(nested(ProfileFields)), None)


@dataclass(frozen=True)
class ProfileChange(Record):
    nickname: str | None = checked(optional(text(32)), None)
    avatar_url: str | None = checked(optional(url), None)
    phone: str | None = checked(optional(phone), None)


@dataclass(frozen=True)
class PromoterApplication(Record):
    name: str = checked(text(32))
    phone: str = checked(phone)
    reason: str = checked(text(500))


class WithdrawalMethod(StrEnum):
    WECHAT_BALANCE = "wechat_balance"
    BANK = "bank"


@dataclass(frozen=True)
class BankAccount(Record):
    account_name: str = checked(text(64))
    account_no: str = checked(text(34))
    bank_name: str = checked(text(64))


@dataclass(frozen=True)
class WithdrawalRequest(Record):
    amount_fen: int = checked(integer(minimum=1, maximum=10**10))
    method: WithdrawalMethod = checked(choice(WithdrawalMethod))
    bank: BankAccount | None = checked(optional(nested(BankAccount)), None)

    def check_together(self) -> None:
        if (self.method is WithdrawalMethod.BANK) != (self.bank is not None):
            raise InvalidField("bank", "is required for bank withdrawals, and only for them")


def template_id_list(field: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > 20:
        raise InvalidField(field, "must be a list of at most 20 template ids")
    return tuple(text(64)(f"{field}[{index}]", each) for index, each in enumerate(value))


@dataclass(frozen=True)
class SubscriptionConsents(Record):
    """What wx.requestSubscribeMessage answered: the templates asked for, and those the user accepted."""

    template_ids: tuple[str, ...] = checked(template_id_list)
    accepted: tuple[str, ...] = checked(template_id_list)

    def check_together(self) -> None:
        if not set(self.accepted) <= set(self.template_ids):
            raise InvalidField("accepted", "may only name templates that were asked for")
