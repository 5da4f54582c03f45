"""The merchant settings' per-process cache: one read for all who miss it at once, none kept past `forget`."""

import asyncio
import uuid

from pymongo import AsyncMongoClient, monitoring

from distribution.chat import ChatSettings
from services.merchant_settings import MerchantSettings
from stores.settings import MERCHANT_SETTINGS


class SettingsReads(monitoring.CommandListener):
    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == MERCHANT_SETTINGS:
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_readers_who_miss_the_cache_together_share_one_read_and_forget_drops_a_read_under_way(mongo_uri):
    reads = SettingsReads()
    client = AsyncMongoClient(mongo_uri, event_listeners=[reads])
    db = client[f"settings_cache_{uuid.uuid4().hex[:8]}"]
    try:
        writer = MerchantSettings(db)
        changed = ChatSettings(commission_keywords=("收益",))
        await writer.put(changed)
        settings = MerchantSettings(db, cache_seconds=60)
        reads.count = 0

        values = await asyncio.gather(*(settings.get(ChatSettings) for _ in range(20)))
        assert reads.count == 1 and all(value == changed for value in values)
        assert await settings.get(ChatSettings) == changed and reads.count == 1  # cached

        # A read under way when the settings change is not kept: the next reader reads again.
        settings.forget(ChatSettings)
        under_way = asyncio.ensure_future(settings.get(ChatSettings))
        await asyncio.sleep(0)  # its read has started
        await writer.put(ChatSettings())
        settings.forget(ChatSettings)
        await under_way
        assert reads.count == 2
        assert await settings.get(ChatSettings) == ChatSettings() and reads.count == 3
    finally:
        await client.drop_database(db.name)
        await client.close()
