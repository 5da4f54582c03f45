"""A store that cannot be reached, told apart from a bug, whichever driver call found it out.

A request reads and writes MongoDB and Redis in many places (stores, services,
the WeChat client's token cache). Rather than wrap each call, whatever
escapes a service is asked about once, at the entrypoint's error map: a
connection refused or cut, a socket or server-selection timeout, a
transaction given up on because its server went away — each means "try
again shortly", and reads as the domain's `Unavailable`. Nothing partial is
left behind by design, not by this module: a step's writes are one
transaction, and what follows a commit is replayed by the sweeps.
"""

from __future__ import annotations

from pymongo.errors import ConnectionFailure, PyMongoError

from distribution.errors import Unavailable
from stores.locks import REDIS_UNAVAILABLE

MONGODB_DOWN = "the database (MongoDB) did not answer; try again shortly"
REDIS_DOWN = "Redis did not answer; try again shortly"


def store_outage(error: BaseException) -> Unavailable | None:
    """`error` as the domain's `Unavailable` when it says a store could not be reached in time; else None."""
    if isinstance(error, REDIS_UNAVAILABLE):
        return Unavailable(REDIS_DOWN)
    # `timeout` also covers a bounded transaction that ran out of time (an ExecutionTimeout, not a
    # ConnectionFailure) while its server was gone.
    if isinstance(error, ConnectionFailure) or (isinstance(error, PyMongoError) and error.timeout):
        return Unavailable(MONGODB_DOWN)
    return None
