"""The server's heap settling: start-up frozen, young collections made rarer."""

import gc

from bot.heap import YOUNG_COLLECTION_THRESHOLD, settle_heap


def test_settling_freezes_the_start_up_heap_and_raises_the_young_threshold():
    threshold = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
