"""Transactions that commit in turn: the next holder ends a transaction its holder left open on the server (a
holder that died, or ran past its time), nobody ends the transaction of a holder still in its turn, and without
Redis a transaction commits without its turn, or keeps what it committed when Redis is lost during its turn."""

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from stores.commit_turns import CommitTurns
from stores.embedded import free_port
from stores.mongo import open_mongo
from stores.writes import WriteSet, commit, run_transaction
from tests.conftest import REDIS_URL
from tests.fault_fixtures import own_redis, redis_url  # noqa: F401 (a fixture)

STORE_SECONDS = 5.0


@pytest.fixture
async def stores(mongo_uri, redis_prefix):
    client, db = open_mongo(mongo_uri, f"turns_{uuid.uuid4().hex[:8]}", STORE_SECONDS)
    redis = Redis.from_url(REDIS_URL)
    yield redis, client, db, f"{redis_prefix}commits"
    await client.drop_database(db.name)
    await client.close()
    await redis.aclose()


def total_of(fen: int) -> WriteSet:
    writes = WriteSet()
    writes.guard("totals", {"_id": "shop"}, {"$inc": {"fen": fen}})
    return writes


async def test_the_next_holder_ends_the_transaction_a_holder_left_open_and_commits_its_own(stores):
    redis, client, db, name = stores
    await db["totals"].insert_one({"_id": "shop", "fen": 0})
    written = asyncio.Event()

    async def holder_that_never_finishes() -> None:
        # Its turn runs out while its transaction, having written, stays open: as a worker killed there leaves it.
        async with CommitTurns(redis, client, name).turn(0.3) as announce:
            async def write_and_stay(session) -> None:
                await db["totals"].update_one({"_id": "shop"}, {"$inc": {"fen": 1_000}}, session=session)
                written.set()
                await asyncio.Event().wait()

            await run_transaction(client, write_and_stay, announce)

    stuck = asyncio.create_task(holder_that_never_finishes())
    try:
        await asyncio.wait_for(written.wait(), STORE_SECONDS)
        # Without ending the open transaction this commit would fail on its write until the store's time limit.
        async with CommitTurns(redis, client, name).turn(STORE_SECONDS) as announce:
            assert announce is not None
            await commit(client, db, total_of(25), announce)
        assert (await db["totals"].find_one({"_id": "shop"}))["fen"] == 25
        assert not await redis.exists(f"{name}:session")  # given back: no later holder ends a session of its own
    finally:
        stuck.cancel()
        await asyncio.gather(stuck, return_exceptions=True)
    assert (await db["totals"].find_one({"_id": "shop"}))["fen"] == 25  # the one left open never committed


async def test_one_that_waited_out_the_turn_commits_without_touching_the_holders_transaction(stores):
    redis, client, db, name = stores
    await db["totals"].insert_one({"_id": "shop", "fen": 0})
    await redis.set(f"{name}:session", "a holder's session, still in its turn")
    async with CommitTurns(redis, client, name).turn(STORE_SECONDS):
        async with CommitTurns(redis, client, name).turn(0.2) as announce:
            assert announce is None  # not its turn: it commits as it would without turns, and names nothing
            await commit(client, db, total_of(7), announce)
    assert (await db["totals"].find_one({"_id": "shop"}))["fen"] == 7
    assert await redis.get(f"{name}:session") == b"a holder's session, still in its turn"


async def test_without_redis_a_commit_goes_without_its_turn(stores):
    _, client, db, name = stores
    await db["totals"].insert_one({"_id": "shop", "fen": 0})
    unreachable = Redis.from_url(f"redis://127.0.0.1:{free_port()}")  # nothing listens there: as a Redis down
    try:
        await CommitTurns(unreachable, client, name).commit(db, total_of(9))
    finally:
        await unreachable.aclose()
    assert (await db["totals"].find_one({"_id": "shop"}))["fen"] == 9


async def test_a_redis_lost_during_the_turn_leaves_the_commit_to_its_caller(stores, own_redis):
    _, client, db, name = stores
    await db["totals"].insert_one({"_id": "shop", "fen": 0})
    redis = Redis.from_url(redis_url(own_redis))
    writes = total_of(4)
    writes.then(lambda: asyncio.to_thread(own_redis.stop))  # committed, in its turn, its session named in Redis
    try:
        # It returns, so what its caller does after a commit runs; the turn and the name are left to expire.
        await CommitTurns(redis, client, name).commit(db, writes)
    finally:
        await redis.aclose()
    assert (await db["totals"].find_one({"_id": "shop"}))["fen"] == 4
