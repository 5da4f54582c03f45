"""The chain-move roles of members (`stores.members` holds their documents), read for many at once.

Only `role` and `upline_id` are read: a chain of team owners may be hundreds
long and each owner's document holds its own chains.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo.asynchronous.database import AsyncDatabase

from distribution.chain_move import Role, stored_role
from stores.members import MEMBERS


class MemberRoles:
    def __init__(self, db: AsyncDatabase):
        self.collection = db[MEMBERS]

    async def of(self, member_ids: Sequence[str]) -> dict[str, Role]:
        """The role of each of `member_ids` that exists, in one read by `_id`."""
        if not member_ids:
            return {}
        # All in the first batch, the cursor closed with it (not 101 and then getMore): one command however long
        # the chain.
        found = self.collection.find({"_id": {"$in": list(member_ids)}}, {"role": 1, "upline_id": 1},
                                     batch_size=len(member_ids), limit=len(member_ids))
        return {member["_id"]: stored_role(member.get("role"), member.get("upline_id")) async for member in found}
