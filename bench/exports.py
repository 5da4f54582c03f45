"""Export memory and speed against list length (python -m bench.exports [--sizes 1000,100000,1000000]).

The ledger is the longest list a shop has (several entries per commission and withdrawal), so its export is
the one measured. One embedded SecantusDB (a storage directory under /tmp, removed afterwards) holds 10,000
promoters with nicknames and ledger entries a year's worth of the largest size apart, the newest now; each
size adds older ones (with `insert_many`, the project's indexes in place) to the newest ones.

The server is a separate process, `python -m bot serve` in demo mode on that database (its Redis and sandbox
WeChat its own), signed in to as the demo's owner over real HTTP. Each size is exported as CSV and as XLSX
(`/admin/export/ledger.csv|.xlsx`, every entry, nicknames looked up per batch) and the bytes are read and
dropped as they arrive. For each export: rows (counted in the CSV as it streams, read from the XLSX's sheet
dimension), seconds to the last byte, rows/s, and the server process's memory: its peak RSS while the
export ran (VmHWM, reset before the export through /proc/<pid>/clear_refs, and its RSS sampled every 20 ms
besides) above its RSS when idle (signed in, before any export), and above its RSS when this export started.
The first export of each format is a warm-up, not printed.

Target: flat. An export holds a batch of 1,000 rows at a time (two while the next is read), and the
nicknames of up to 10,000 promoters it named; a 1,000-row export is a single batch and names 1,000, so
memory reaches its plateau a few batches in, and from there on stays put however long the list. Exit
status 0 when every export has all its rows and the peak RSS above idle at the largest size is at most
--max-ratio times that at the size before it.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import openpyxl
from bson import ObjectId

from bench.harness import run_bounded
from stores.embedded import free_port, port_answers, secantusdb_uri, start_secantusdb
from stores.mongo import ensure_indexes, open_mongo

PROMOTERS = 10_000
SPAN = timedelta(days=365)
INSERT_BATCH = 10_000
SAMPLE_SECONDS = 0.02
KINDS = (("commission_frozen", "frozen", 1), ("commission_settled", "frozen", -1),
         ("commission_settled", "available", 1), ("withdrawal_locked", "available", -1),
         ("withdrawal_locked", "locked", 1), ("withdrawal_paid", "locked", -1))
_PASSWORD = re.compile(r"user: admin\s+password: (\S+)")
_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def kib(process_id: int, field: str) -> int:
    for line in Path(f"/proc/{process_id}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{process_id}/status has no {field}")


@dataclass
class Measured:
    rows: int
    seconds: float
    bytes: int
    peak_kib: int  # the server's peak RSS while the export ran
    growth_kib: int  # that peak less its RSS when the export started


class Ledger:
    """Entries numbered from the newest: entry i of `total` is dated i/total of a year before `now`."""

    def __init__(self, total: int, promoters: list[str], now: datetime):
        self.promoters, self.now, self.step = promoters, now, SPAN / total

    def entries(self, first: int, last: int) -> list[dict]:
        documents = []
        for number in range(first, last):
            kind, bucket, sign = KINDS[number % len(KINDS)]
            ref = f"B{number:09d}:0:1"
            documents.append({"_id": f"{kind}:{bucket}:{ref}", "account_id": self.promoters[number % PROMOTERS],
                              "bucket": bucket, "amount_fen": sign * (100 + number % 9_900), "kind": kind,
                              "ref": ref, "at": self.now - self.step * number})
        return documents


async def seed_promoters(db: Any, now: datetime) -> list[str]:
    ids = [str(ObjectId()) for _ in range(PROMOTERS)]
    await db["members"].insert_many([{"_id": member_id, "created_at": now - SPAN, "nickname": f"推广员{number}",
                                      "upline_id": None, "ancestor_ids": [], "direct_count": 0, "team_count": 0,
                                      "frozen": False, "promoter_status": "approved"}
                                     for number, member_id in enumerate(ids)], ordered=False)
    return ids


async def top_up(db: Any, ledger: Ledger, have: int, want: int) -> float:
    """Insert entries `have` to `want` (each batch made in a thread while the previous one is inserted)."""
    started = time.perf_counter()
    bounds = [(first, min(first + INSERT_BATCH, want)) for first in range(have, want, INSERT_BATCH)]
    pending = asyncio.create_task(asyncio.to_thread(ledger.entries, *bounds[0])) if bounds else None
    for index in range(len(bounds)):
        documents = await pending
        if index + 1 < len(bounds):
            pending = asyncio.create_task(asyncio.to_thread(ledger.entries, *bounds[index + 1]))
        await db["ledger_entries"].insert_many(documents, ordered=False)
    return time.perf_counter() - started


async def start_server(directory: Path, mongodb_uri: str) -> tuple[subprocess.Popen, str, str]:
    """`python -m bot serve` in demo mode on the bench's database; its process, base URL and owner password."""
    port = free_port()
    environ = {**os.environ, "DEMO": "1", "PORT": str(port), "MONGODB_URI": mongodb_uri,
               "MONGODB_DB": "bench_exports", "VAR_DIR": str(directory / "var"),
               "MERCHANT_API_TOKEN": f"bench-{uuid.uuid4().hex}"}
    environ.pop("REDIS_URL", None)  # its own embedded Redis, under VAR_DIR
    server = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=environ, stdout=subprocess.PIPE,
                              stderr=(directory / "serve.log").open("wb"), text=True)
    deadline = time.monotonic() + 120
    password = None
    while password is None:
        line = await asyncio.to_thread(server.stdout.readline)
        if not line or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start; see {directory / 'serve.log'}")
        if found := _PASSWORD.search(line):
            password = found.group(1)
    while not port_answers("127.0.0.1", port):
        await asyncio.sleep(0.1)
    return server, f"http://127.0.0.1:{port}", password


async def sign_in(http: httpx.AsyncClient, password: str) -> None:
    page = await http.get("/admin/login", headers={"Accept": "text/html"})
    token = _CSRF.search(page.text).group(1)
    answer = await http.post("/admin/login", data={"_csrf": token, "username": "admin", "password": password},
                             headers={"Accept": "text/html"})
    if answer.status_code != 302:
        raise RuntimeError(f"signing in answered {answer.status_code}")


async def export(http: httpx.AsyncClient, server_id: int, file_format: str) -> Measured:
    """One export of the whole ledger, with the server's peak RSS growth while it ran."""
    Path(f"/proc/{server_id}/clear_refs").write_text("5")  # VmHWM := VmRSS
    baseline = kib(server_id, "VmRSS")
    sampled = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal sampled
        while not done.is_set():
            sampled = max(sampled, kib(server_id, "VmRSS"))
            await asyncio.sleep(SAMPLE_SECONDS)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    size, lines = 0, 0
    xlsx = io.BytesIO() if file_format == "xlsx" else None
    try:
        async with http.stream("GET", f"/admin/export/ledger.{file_format}") as answer:
            if answer.status_code != 200:
                raise RuntimeError(f"the export answered {answer.status_code}: {(await answer.aread())[:300]!r}")
            async for chunk in answer.aiter_raw():
                size += len(chunk)
                if xlsx is None:
                    lines += chunk.count(b"\n")  # a row ends in CRLF, which a chunk may split
                else:
                    xlsx.write(chunk)
        seconds = time.perf_counter() - started
    finally:
        done.set()
        await sampler
    peak = max(sampled, kib(server_id, "VmHWM"))
    if xlsx is None:
        rows = lines - 1
    else:
        sheets = (await asyncio.to_thread(openpyxl.load_workbook, xlsx, read_only=True)).worksheets
        rows = sum(sheet.max_row - 1 for sheet in sheets)
    return Measured(rows, seconds, size, peak, peak - baseline)


async def run(args: argparse.Namespace) -> int:
    sizes = sorted(int(size) for size in args.sizes.split(","))
    directory = Path(tempfile.mkdtemp(prefix="bench-exports-", dir=args.tmp))
    database = start_secantusdb(directory / "data", directory / "secantusdb.log")
    mongodb_uri = secantusdb_uri(database.port)
    client, db = open_mongo(mongodb_uri, "bench_exports", 600)
    server = None
    try:
        now = datetime.now(timezone.utc)
        await ensure_indexes(db)
        ledger = Ledger(sizes[-1], await seed_promoters(db, now), now)
        server, base_url, password = await start_server(directory, mongodb_uri)
        timeout = httpx.Timeout(60, read=3600)
        async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as http:
            await sign_in(http, password)
            idle = kib(server.pid, "VmRSS")
            print(f"Exports over HTTP, python -m bench.exports: the ledger in SecantusDB "
                  f"({mongodb_uri.split('/')[2]}), {PROMOTERS:,} promoters; server: python -m bot serve (DEMO=1), "
                  f"pid {server.pid}, "
                  f"idle RSS {idle / 1024:.0f} MB")
            print(f"  {'rows':>11}  {'format':<6}  {'seconds':>8}  {'rows/s':>8}  {'size':>9}  {'peak RSS - idle':>15}"
                  f"  {'growth in export':>16}")
            results: dict[tuple[int, str], Measured] = {}
            have = 0
            for size in sizes:
                seconds = await top_up(db, ledger, have, size)
                if size > have:
                    print(f"  ... {size - have:,} entries inserted in {seconds:.0f} s "
                          f"({(size - have) / seconds:,.0f}/s)", flush=True)
                have = size
                for file_format in ("csv", "xlsx"):
                    if size == sizes[0]:
                        await export(http, server.pid, file_format)  # the warm-up
                    measured = results[size, file_format] = await export(http, server.pid, file_format)
                    wrong = "" if measured.rows == size else f"   WRONG: {measured.rows:,} rows, not {size:,}"
                    print(f"  {measured.rows:>11,}  {file_format:<6}  {measured.seconds:>8.2f}  "
                          f"{measured.rows / measured.seconds:>8,.0f}  {measured.bytes / 2 ** 20:>6.1f} MB  "
                          f"{(measured.peak_kib - idle) / 1024:>12.1f} MB  {measured.growth_kib / 1024:>13.1f} MB"
                          f"{wrong}", flush=True)
            print(f"  server RSS after the last export: {kib(server.pid, 'VmRSS') / 1024:.0f} MB")
        met = all(measured.rows == size for (size, _), measured in results.items())
        small, large = sizes[0], sizes[-1]
        previous = sizes[-2] if len(sizes) > 1 else small
        for file_format in ("csv", "xlsx"):
            above_idle = {size: (results[size, file_format].peak_kib - idle) / 1024 for size in sizes}
            flat = above_idle[large] / max(above_idle[previous], 1 / 1024)
            met = met and flat <= args.max_ratio
            print(f"  {file_format}: peak RSS above idle at {large:,} rows / at {small:,} rows "
                  f"{above_idle[large] / max(above_idle[small], 1 / 1024):.2f}, / at {previous:,} rows {flat:.2f}")
        print(f"  target: the peak at {large:,} rows about that at {previous:,} (at most {args.max_ratio:g} times): "
              f"{'met' if met else 'NOT met'}")
        return 0 if met else 1
    except Exception:
        log = directory / "serve.log"
        if log.exists():
            print("the server's log ends:\n" + "".join(log.read_text(errors="replace").splitlines(True)[-30:]),
                  file=sys.stderr)
        raise
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        await client.close()
        database.stop()
        shutil.rmtree(directory, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--max-ratio", type=float, default=1.5)
    parser.add_argument("--tmp", default="/tmp", help="where the storage directory goes")
    parser.add_argument("--max-minutes", type=float, default=120.0, help="hard stop for the whole run")
    args = parser.parse_args()
    return run_bounded(run(args), args.max_minutes * 60)


if __name__ == "__main__":
    sys.exit(main())
