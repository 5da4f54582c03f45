"""The merchant settings' per-process cache: one read for all who miss it at once, none kept past `forget`."""

import asyncio
import uuid

from pymongo import AsyncMongoClient

from distribution.chat import ChatSettings
from services.merchant_settings import MerchantSettings
from stores.settings import MERCHANT_SETTINGS
from tests.started_commands import StartedCommands


def reads(commands: StartedCommands) -> int:
    return len(commands.named("find", MERCHANT_SETTINGS))


async def test_readers_who_miss_the_cache_together_share_one_read_and_forget_drops_a_read_under_way(mongo_uri):
    commands = StartedCommands()
    client = AsyncMongoClient(mongo_uri, event_listeners=[commands])
    db = client[f"settings_cache_{uuid.uuid4().hex[:8]}"]
    try:
        writer = MerchantSettings(db)
        changed = ChatSettings(commission_keywords=("收益",))
        await writer.put(changed)
        settings = MerchantSettings(db, cache_seconds=60)
        commands.commands.clear()

        values = await asyncio.gather(*(settings.get(ChatSettings) for _ in range(20)))
        assert reads(commands) == 1 and all(value == changed for value in values)
        assert await settings.get(ChatSettings) == changed and reads(commands) == 1  # cached

        # A read under way when the settings change is not kept: the next reader reads again.
        settings.forget(ChatSettings)
        under_way = asyncio.ensure_future(settings.get(ChatSettings))
        await asyncio.sleep(0)  # its read has started
        await writer.put(ChatSettings())
        settings.forget(ChatSettings)
        await under_way
        assert reads(commands) == 2
        assert await settings.get(ChatSettings) == ChatSettings() and reads(commands) == 3
    finally:
        await client.drop_database(db.name)
        await client.close()
