"""A write set larger than one command: sent in commands of at most MAX_STATEMENTS, committed whole or not at all;
increments of one document in a set, however many steps made them, sent as one update."""

import uuid

import pytest
from pymongo import AsyncMongoClient

from stores.writes import MAX_STATEMENTS, Conflict, Increment, WriteSet, commit, merged
from tests.started_commands import StartedCommands

SIZE = 2 * MAX_STATEMENTS + 3


def the_writes() -> WriteSet:
    writes = WriteSet()
    for number in range(SIZE):
        writes.guard("things", {"_id": number, "v": 0}, {"$set": {"v": 1}})
    writes.insert("made", [{"_id": number} for number in range(SIZE)])
    return writes


@pytest.fixture
def commands():
    return StartedCommands()


@pytest.fixture
async def db(mongo_uri, commands):
    client = AsyncMongoClient(mongo_uri, event_listeners=[commands])
    database = client[f"writes_{uuid.uuid4().hex[:8]}"]
    yield database
    await client.drop_database(database.name)
    await client.close()


async def test_a_stale_guard_in_a_later_command_leaves_every_earlier_command_uncommitted(db):
    await db["things"].insert_many([{"_id": number, "v": 5 if number == SIZE - 2 else 0} for number in range(SIZE)])
    with pytest.raises(Conflict):
        await commit(db.client, db, the_writes())
    assert await db["things"].count_documents({"v": 1}) == 0
    assert await db["made"].count_documents({}) == 0


async def test_every_command_carries_at_most_max_statements_and_all_of_it_commits(db, commands):
    await db["things"].insert_many([{"_id": number, "v": 0} for number in range(SIZE)])
    commands.commands.clear()
    await commit(db.client, db, the_writes())
    assert await db["things"].count_documents({"v": 1}) == SIZE
    assert await db["made"].count_documents({}) == SIZE
    pieces = [MAX_STATEMENTS, MAX_STATEMENTS, 3]
    sizes = [(command["update"], len(command["updates"])) for command in commands.named("update")]
    sizes += [(command["insert"], len(command["documents"])) for command in commands.named("insert")]
    assert sizes == [("things", size) for size in pieces] + [("made", size) for size in pieces]


async def test_the_increments_of_one_document_in_a_set_are_added_up_into_one_update(db, commands):
    steps = []
    for fen in (100, 250, -30):
        step = WriteSet()
        step.update("daily", Increment("promoter:2026-12-07", {"orders": 1, "fen": fen}, {"day": "2026-12-07"}))
        step.update("daily", Increment(f"other:{fen}", {"orders": 1}))
        steps.append(step)
    await db["daily"].insert_one({"_id": "promoter:2026-12-07", "day": "2026-12-07", "orders": 2, "fen": 5})
    commands.commands.clear()
    await commit(db.client, db, merged(steps))
    assert [len(command["updates"]) for command in commands.named("update")] == [4]
    assert await db["daily"].find_one({"_id": "promoter:2026-12-07"}) == {
        "_id": "promoter:2026-12-07", "day": "2026-12-07", "orders": 5, "fen": 325}
    assert await db["daily"].find_one({"_id": "other:-30"}) == {"_id": "other:-30", "orders": 1}
    assert all(len(step.increments["daily"]) == 2 for step in steps)  # each step's own set is left as it was
