"""The server's heap once it is built: kept out of the garbage collector's way.

A request in flight when the collector runs is promoted to an older generation and dies there, so a busy server
runs full collections often, and each one walks every object start-up made (modules, the runtime, the routes:
a hundred thousand or more) although none of them is ever garbage. Frozen, they are left out of every
collection; full passes then walk only what the requests left.

A young collection runs once so many more container objects were made than freed: CPython's 700 are made
by the requests in flight alone (each holds a few hundred until it is answered), on a busy /wechat door about
fifty times a second, and each pass walks and promotes live requests whose objects die by reference counting
anyway: about 3% of the server's time. At 10,000 a pass runs when objects really pile up, as garbage in
reference cycles does; what may wait for it is a few megabytes at most.
"""

from __future__ import annotations

import gc

YOUNG_COLLECTION_THRESHOLD = 10_000


def settle_heap() -> None:
    """Collect what start-up left behind, freeze the rest, and make young collections rarer. Call once the server
    is built, before it serves."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, oldest)
