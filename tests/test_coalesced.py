"""Reads by key made in one turn of the loop are answered by one query; each caller sees its own keys only."""

import asyncio

import pytest

from stores.coalesced import Coalesced


def counting_store(data: dict):
    queries = []

    async def load(keys):
        queries.append(keys)
        await asyncio.sleep(0)
        return {key: data[key] for key in keys if key in data}

    return queries, load


async def test_reads_of_one_turn_go_as_one_query_and_each_gets_what_it_asked():
    queries, load = counting_store({"a": 1, "b": 2, "c": 3})
    reads = Coalesced(load)
    answers = await asyncio.gather(reads.get(["a", "b"]), reads.get(["b", "x"]), reads.get(["c"]))
    assert answers == [{"a": 1, "b": 2}, {"b": 2}, {"c": 3}]
    assert queries == [["a", "b", "x", "c"]]
    assert await reads.get(["a"]) == {"a": 1}  # a later turn: a query of its own
    assert queries[1:] == [["a"]]


async def test_no_keys_ask_nothing():
    queries, load = counting_store({})
    assert await Coalesced(load).get([]) == {}
    assert queries == []


async def test_a_failed_query_fails_every_read_it_carried_and_the_next_turn_asks_again():
    calls = []

    async def load(keys):
        calls.append(keys)
        if len(calls) == 1:
            raise ConnectionError("the database went away")
        return {key: key.upper() for key in keys}

    reads = Coalesced(load)
    results = await asyncio.gather(reads.get(["a"]), reads.get(["b"]), return_exceptions=True)
    assert [type(result) for result in results] == [ConnectionError, ConnectionError]
    assert await reads.get(["a"]) == {"a": "A"}


async def test_a_cancelled_reader_leaves_the_others_answered():
    queries, load = counting_store({"a": 1, "b": 2})
    reads = Coalesced(load)
    first = asyncio.create_task(reads.get(["a"]))
    second = asyncio.create_task(reads.get(["b"]))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == {"b": 2}
    with pytest.raises(asyncio.CancelledError):
        await first
