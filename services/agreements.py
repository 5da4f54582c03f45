"""The promoter agreement (电子协议): the merchant publishes versions, members accept them, and the gates
(applying, sharing, withdrawing) ask whether the member has accepted what they need (`distribution.agreements`)."""

from __future__ import annotations

import time
from datetime import datetime

from distribution import errors
from distribution.agreements import AgreementAct, AgreementText, acceptance_missing
from stores.agreements import ACCEPTED_VERSION, AgreementStore

PUBLISH_ATTEMPTS = 5
# The gates read the current version through this process's copy, as merchant settings are read: a new version
# reaches every process within this time. Accepting reads the stored one.
CACHE_SECONDS = 5.0


class NoAgreement(errors.NotFound):
    code = "no_agreement"


class AgreementNotCurrent(errors.Conflict):
    code = "agreement_not_current"

    def __init__(self, version: int, current: int):
        super().__init__(f"version {version} is not the current agreement: read version {current} and accept it",
                         field="version")


class AgreementRequired(errors.Forbidden):
    code = "agreement_required"

    def __init__(self, current: int):
        super().__init__(f"accept the promoter agreement (version {current}) first: POST /api/v1/agreement/accept")


class AgreementService:
    def __init__(self, store: AgreementStore, cache_seconds: float = CACHE_SECONDS):
        self.store = store
        self.cache_seconds = cache_seconds
        self._current: tuple[float, int | None] | None = None

    async def publish(self, text: AgreementText, at: datetime) -> dict:
        """The new version, after the latest."""
        for _ in range(PUBLISH_ATTEMPTS):
            published = await self.store.add({**text.to_dict(), "published_at": at})
            if published is not None:
                self._current = None
                return published
        raise errors.Conflict("other versions were being published at the same time: publish again")

    async def page(self, limit: int, before: int | None) -> list[dict]:
        return await self.store.page(limit, before)

    async def current(self) -> dict:
        """The version in force; NoAgreement while none is published."""
        latest = await self.store.latest()
        if latest is None:
            raise NoAgreement("the shop has published no promoter agreement")
        return latest

    async def current_version(self) -> int | None:
        cached = self._current
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        latest = await self.store.latest()
        version = latest["_id"] if latest else None
        self._current = (time.monotonic() + self.cache_seconds, version)
        return version

    async def accept(self, member: dict, version: int, at: datetime) -> dict:
        """The member's acceptance of `version` (recorded once, however often it is sent); AgreementNotCurrent
        for any version but the current one."""
        current = (await self.current())["_id"]
        if version != current:
            raise AgreementNotCurrent(version, current)
        await self.store.accept(member["_id"], version, at)
        return await self.store.acceptance(member["_id"], version)

    async def acceptances_of(self, member_id: str) -> list[dict]:
        return await self.store.acceptances_of(member_id)

    async def require(self, member: dict, act: AgreementAct) -> None:
        """AgreementRequired unless the member has accepted what `act` needs."""
        current = await self.current_version()
        if acceptance_missing(act, current, member.get(ACCEPTED_VERSION)):
            raise AgreementRequired(current)


def accepted_version(member: dict) -> int | None:
    """The newest version of the agreement the member accepted."""
    return member.get(ACCEPTED_VERSION)
