"""The shapes of the mini-program's request bodies: each a `Record`, so validation, the 400 naming
the field and the schema in /openapi.json come from one declaration."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from distribution.records import Integer, InvalidField, Record, Text, matching
from distribution.withdrawals import WithdrawalMethod

MAX_WITHDRAWAL_FEN = 10**10
MAX_SUBSCRIPTION_TEMPLATES = 20

Url = Annotated[Text, Field(max_length=512), matching(r"^https?://\S+$", "must be an http(s) URL")]
Phone = Annotated[Text, matching(
    r"^\+?[0-9]{6,15}$", "must be a phone number: 6 to 15 digits, optionally after a +")]
Nickname = Annotated[Text, Field(max_length=32)]
SubscriptionTemplateId = Annotated[Text, Field(max_length=64)]


class ProfileFields(Record):
    """What wx.getUserProfile (or the user, typing) gave; either may be left out."""

    nickname: Nickname | None = Field(None, description="The user's WeChat nickname.")
    avatar_url: Url | None = Field(None, description="The user's WeChat avatar, an http(s) URL.")


class LoginRequest(Record):
    """A mini-program login: wx.login's code, and the invitation the mini-program was opened with, if any."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"code": "0a3Xk0ll2Hy8Xf4XmFll2Jv8kz1Xk0lH", "scene": "p:6650f0c2a4e1b2c3d4e5f601",
         "profile": {"nickname": "小李", "avatar_url": "https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132"}},
    ]})

    code: Annotated[Text, Field(max_length=128)] = Field(
        description="The code wx.login gave, to be exchanged for the user's openid; usable once.")
    scene: Annotated[Text, Field(max_length=64)] | None = Field(
        None, description="The scene of the mini-program code or link that opened the mini-program: it binds the "
                          "user to the promoter who shared it.")
    profile: ProfileFields | None = Field(None, description="The user's nickname and avatar, when they gave them.")
    device_id: Annotated[Text, Field(max_length=128)] | None = Field(
        None, description="An id the mini-program keeps for this device (in its storage), if it sends one: kept "
                          "only as a keyed hash, to tell one person's accounts apart from different people's.")


class ProfileChange(Record):
    """What the user changes in their profile: at least one of the fields."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"nickname": "伊万", "phone": "13812345678"}]})

    nickname: Nickname | None = Field(None, description="The name shown to the user's upline and team (masked).")
    avatar_url: Url | None = Field(None, description="The user's avatar, an http(s) URL on a host avatars are "
                                                     "fetched from (AVATAR_HOSTS: WeChat's, unless configured).")
    phone: Phone | None = Field(None, description="The user's phone number; stored sealed and shown masked.")


class PromoterApplication(Record):
    """An application to become a promoter, for the merchant to review."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "李雷", "phone": "13812345678", "reason": "I run a tea lovers' group of 300 people."},
    ]})

    name: Annotated[Text, Field(max_length=32)] = Field(description="The applicant's real name.")
    phone: Phone = Field(description="A phone number the merchant can reach the applicant at.")
    reason: Annotated[Text, Field(max_length=500)] = Field(
        description="Why the applicant wants to promote, and to whom.")


class BankAccount(Record):
    """The bank account a bank withdrawal is paid into; stored sealed."""

    account_name: Annotated[Text, Field(max_length=64)] = Field(
        description="The account holder's name, as the bank knows it.")
    account_no: Annotated[Text, Field(max_length=34)] = Field(
        description="The account or card number (an IBAN is at most 34 characters).")
    bank_name: Annotated[Text, Field(max_length=64)] = Field(
        description="The bank and branch, such as 招商银行杭州分行.")


class WithdrawalRequest(Record):
    """A promoter asks to withdraw part of their available commission."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"amount_fen": 5_000, "method": "wechat_balance"},
        {"amount_fen": 50_000, "method": "bank",
         "bank": {"account_name": "李雷", "account_no": "6225880212345678", "bank_name": "招商银行杭州分行"}},
    ]})

    amount_fen: Annotated[Integer, Field(ge=1, le=MAX_WITHDRAWAL_FEN)] = Field(
        description="How much to withdraw, in fen, before the fee.")
    method: WithdrawalMethod = Field(
        description="Where it is paid: into the promoter's WeChat balance, or a bank account (paid by hand).")
    bank: BankAccount | None = Field(None, description="The account to pay into: for bank withdrawals, and only them.")
    real_name: Annotated[Text, Field(max_length=32)] | None = Field(
        None, description="WeChat-balance withdrawals: the promoter's real name, which WeChat Pay checks against their "
                          "WeChat account; required from 2,000 yuan, or always when the merchant checks real names. "
                          "Stored sealed.")

    @model_validator(mode="after")
    def _bank_only_for_bank_withdrawals(self) -> Self:
        if (self.method is WithdrawalMethod.BANK) != (self.bank is not None):
            raise InvalidField("bank", "is required for bank withdrawals, and only for them")
        if self.real_name is not None and self.method is not WithdrawalMethod.WECHAT_BALANCE:
            raise InvalidField("real_name", "is for WeChat-balance withdrawals only")
        return self


class SubscriptionConsents(Record):
    """What wx.requestSubscribeMessage answered: the templates asked for, and those the user accepted."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"template_ids": ["tmpl-commission", "tmpl-withdrawal"], "accepted": ["tmpl-commission"]},
    ]})

    template_ids: Annotated[tuple[SubscriptionTemplateId, ...], Field(max_length=MAX_SUBSCRIPTION_TEMPLATES)] = Field(
        description="The subscription-message templates the mini-program asked the user about.")
    accepted: Annotated[tuple[SubscriptionTemplateId, ...], Field(max_length=MAX_SUBSCRIPTION_TEMPLATES)] = Field(
        description="Those the user accepted: each allows one message.")

    @model_validator(mode="after")
    def _accepted_were_asked_for(self) -> Self:
        if not set(self.accepted) <= set(self.template_ids):
            raise InvalidField("accepted", "may only name templates that were asked for")
        return self
