"""Team pages newest first through the cursor, whatever the times look like: bursts at one instant,
years of silence, a hint that lags. Long teams are read in time bands (stores/paging.py); every page
must still be exactly the next slice of the full order."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from distribution.binding import BindSource
from stores.members import NEWEST_FIELDS, SHORT_TEAM, new_member_fields

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def spread_times(rng: random.Random, count: int) -> list[datetime]:
    """Bursts sharing one instant, steady trickles, and gaps of years between them."""
    times, at = [], NOW
    while len(times) < count:
        kind = rng.random()
        if kind < 0.2:
            times += [at] * rng.randint(5, 40)  # a burst: many binds stamped with one instant
        elif kind < 0.3:
            at -= timedelta(days=rng.randint(200, 1500))  # silence
        else:
            at -= timedelta(seconds=rng.randint(1, 5000))
            times.append(at)
    return times[:count]


async def walk(members, member: dict, level: int | None, limit: int) -> list[str]:
    seen, after = [], None
    while True:
        page = await members.team_page(member, level, limit, after)
        seen += [m["_id"] for m in page]
        if len(page) < limit:
            return seen
        after = (page[-1]["bound_at"], page[-1]["_id"])


@pytest.mark.parametrize("hint_lag", [timedelta(0), timedelta(hours=3)])
async def test_long_team_pages_are_exactly_the_full_order_at_every_level(server, hint_lag):
    runtime, rng = server.runtime, random.Random(7)
    root = {**new_member_fields(NOW - timedelta(days=4000)), "nickname": "root"}
    hub = {**new_member_fields(NOW - timedelta(days=4000)), "upline_id": root["_id"], "ancestor_ids": [root["_id"]],
           "bound_at": NOW - timedelta(days=3999)}
    directs = [{**new_member_fields(NOW - timedelta(days=4000)), "upline_id": root["_id"],
                "ancestor_ids": [root["_id"]], "bound_at": at} for at in spread_times(rng, 2 * SHORT_TEAM)]
    seconds = [{**new_member_fields(NOW - timedelta(days=4000)), "upline_id": hub["_id"],
                "ancestor_ids": [hub["_id"], root["_id"]], "bound_at": at} for at in spread_times(rng, SHORT_TEAM + 50)]
    everyone = [hub, *directs, *seconds]
    newest = max(m["bound_at"] for m in everyone)
    root.update(direct_count=len(directs) + 1, team_count=len(everyone),
                # a hint may lag behind the newest bind (the worker adds it for ancestors above the upline)
                **{NEWEST_FIELDS[1]: newest - hint_lag, NEWEST_FIELDS[None]: newest - hint_lag})
    await runtime.db.members.insert_many([root, *everyone])
    members = runtime.members

    def newest_first(members: list[dict]) -> list[str]:
        return [m["_id"] for m in sorted(members, key=lambda m: (m["bound_at"], m["_id"]), reverse=True)]

    assert await walk(members, root, 1, 7) == newest_first([hub, *directs])
    assert await walk(members, root, 2, 9) == newest_first(seconds)
    assert await walk(members, root, None, 20) == newest_first(everyone)
    assert await walk(members, root, None, 100) == newest_first(everyone)


async def test_binds_keep_the_newest_times_their_pages_start_from(server):
    runtime = server.runtime
    root, promoter, buyer = ({**new_member_fields(NOW)} for _ in range(3))
    await runtime.db.members.insert_many([root, promoter, buyer])
    assert (await runtime.relations.bind(promoter, root["_id"], BindSource.OA_SCAN, NOW)).bound
    later = NOW + timedelta(minutes=5)
    assert (await runtime.relations.bind(buyer, promoter["_id"], BindSource.OA_SCAN, later)).bound
    await runtime.relations.apply_follow_ups()

    root_now, promoter_now = [await runtime.members.get(m["_id"]) for m in (root, promoter)]
    assert (root_now[NEWEST_FIELDS[1]], root_now[NEWEST_FIELDS[None]]) == (NOW, later)
    assert (promoter_now[NEWEST_FIELDS[1]], promoter_now[NEWEST_FIELDS[None]]) == (later, later)
