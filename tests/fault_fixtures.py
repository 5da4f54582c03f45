"""Stores of a test's own, to stop and start again on the same port and data directory.

Fault tests stop these, never the machine's Redis nor the session's SecantusDB. A module uses them by
importing the fixtures (`from tests.fault_fixtures import own_redis`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from stores.embedded import EmbeddedServer, secantusdb_uri, start_redis, start_secantusdb


class RestartableStore:
    """A server started by `start(port)`: the first time on a free port, then again on the same one."""

    def __init__(self, start: Callable[[int | None], EmbeddedServer]):
        self._start = start
        self.server = start(None)
        self.port = self.server.port

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = self._start(self.port)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RestartableStore]:
    """A redis-server exactly as `make serve` starts one: no persistence, so a restart comes back empty."""
    redis = RestartableStore(lambda port: start_redis(tmp_path / "redis", port=port))
    yield redis
    redis.stop()


@pytest.fixture
def own_secantusdb(tmp_path: Path) -> Iterator[RestartableStore]:
    """A SecantusDB keeping its data on disk, as `make serve` starts one: a restart reopens it intact."""
    database = RestartableStore(lambda port: start_secantusdb(tmp_path / "secantusdb", tmp_path / "secantusdb.log",
                                                              port=port))
    yield database
    database.stop()


def redis_url(store: RestartableStore) -> str:
    return f"redis://127.0.0.1:{store.port}/0"


def mongodb_uri(store: RestartableStore) -> str:
    return secantusdb_uri(store.port)
