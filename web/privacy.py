"""What the agreement and data-rights endpoints answer, for the merchant API and the mini-program alike."""

from __future__ import annotations

from typing import Self

from pydantic import Field, JsonValue

from distribution.data_rights import DeletionStatus, MoneyPending
from web.models import Answer, Time


class Published(Answer):
    """A version of the promoter agreement, stored under its number."""

    version: int = Field(description="1 for the first; each publication takes the next")
    title: str
    published_at: Time

    @classmethod
    def from_document(cls, document: dict) -> Self:
        return cls.model_validate({**document, "version": document["_id"]})


class AgreementVersion(Published):
    """A published version of the promoter agreement, as the merchant lists them."""

    accepted_count: int = Field(description="members who accepted this version")


class Agreement(Published):
    """The promoter agreement in force, with its text."""

    body: str


class CurrentAgreement(Agreement):
    accepted: bool = Field(description="whether I have accepted this version")


class AgreementAcceptance(Answer):
    member_id: str
    version: int
    accepted_at: Time


class DeletionRequest(Answer):
    """A member's request to delete their personal data."""

    member_id: str
    status: DeletionStatus = Field(description="waiting: not carried out yet; done: the personal data is erased")
    requested_at: Time
    blocked_by: list[MoneyPending] = Field(
        description="while waiting, the money still pending for the member, which keeps the deletion waiting")
    checked_at: Time | None = Field(None, description="when blocked_by was last worked out")
    processed_at: Time | None = None


# A stored document as JSON, every field of it (ids as `id`, times in ISO 8601): an export shows what is stored,
# whatever it is, rather than what some answer of the API picks out of it.
StoredDocument = dict[str, JsonValue]


class DataExport(Answer):
    """Everything the shop holds about me: my profile with its sealed fields opened, my relations (other members as
    ids only), balances, and my records of each collection."""

    profile: StoredDocument
    relations: StoredDocument = Field(description="upline_id, ancestor_ids (nearest first), direct_member_ids")
    balances: dict[str, int]
    applications: list[StoredDocument]
    bind_log: list[StoredDocument] = Field(description="my bind attempts, bound or refused")
    commissions: list[StoredDocument]
    ledger_entries: list[StoredDocument]
    withdrawals: list[StoredDocument]
    orders: list[StoredDocument] = Field(description="the orders I bought")
    notifications: list[StoredDocument] = Field(description="the notifications sent to me")
    subscription_consents: list[StoredDocument]
    agreement_acceptances: list[StoredDocument]
    grade_changes: list[StoredDocument]
    statements: list[StoredDocument]
    accounts: list[StoredDocument]
    tax_profiles: list[StoredDocument]
    buyer_totals: list[StoredDocument] = Field(description="order_count and order_fen: my paid orders that still "
                                                           "hold something, and what they hold")
    deletion_requests: list[StoredDocument]
