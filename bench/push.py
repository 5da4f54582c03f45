"""Throughput of the /wechat text-message reply path against a bare Tornado
handler (python -m bench.push):

    bare: a Tornado handler that answers `success` to a POST;
    push: a signed plain-mode text push, a unique MsgId and nonce each, through
          the real application (signature and timestamp check, XML parse,
          router, one Redis script that remembers the nonce, default text
          reply, metrics).
    佣金: the same, asking for the commission (`佣金`) from one of `PROMOTERS`
          promoters, each with a direct member's paid order of three items
          (made and applied by the order service when the server starts):
          the answer reads the member, the ledger's balances, the month's
          daily stats, the latest commissions and their orders, and is
          claimed and remembered in Redis for WeChat's retries.

Target: push req/s >= 0.7 x bare req/s, same run, same load. The 佣金 phase
has no target: its req/s is shown against the text reply's.

Both applications are served by ONE separate process (`--serve`, one event
loop) on two loopback ports, built the way `python -m bot serve` builds them;
the real one runs on an embedded SecantusDB (":memory:") started here and on
the Redis at 127.0.0.1:6379 under a key prefix of its own (`bench:<uuid>:`),
whose keys, and only those, are deleted at the end. The two are measured in
turn, bare then push, for `--rounds` rounds (3 by default), by a light asyncio
HTTP/1.1 keep-alive client in this process (pre-built request bytes, one
request in flight per connection). The ratio is the median round's: this
machine's speed drifts between windows, and one round of unchanged code gave
anything from 0.58 to 0.74. A third,
short phase against a raw asyncio responder in the same server process shows
what the load generator can do at most, so it is known not to be the limit.

Flags: --connections, --warmup, --duration, --pool (how many distinct pushes,
the bound on requests over all push windows), --rounds, --profile
cprofile|py-spy (profile the server during the first push window; slows it, so
the ratio of that run is not the one to quote), --no-ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/0"
TARGET_RATIO = 0.7
SAMPLE_EVERY = 101  # keep every Nth response body for checking (from the first on)
MAX_SAMPLES = 64
SERVER_READY_SECONDS = 60
DRAIN_SECONDS = 10
TEXT = "你好，想了解一下"  # not a keyword: the router's fallback answers it with the default reply
OPENIDS = 500
COMMISSION_TEXT = "佣金"
PROMOTERS = 200
SEED_CONCURRENCY = 20


# --------------------------------------------------------------------------- server process


async def _serve(max_seconds: float) -> None:
    import logging

    import tornado.httpserver
    import tornado.netutil
    import tornado.web

    from bot.app import make_app
    from bot.heap import settle_heap
    from bot.runtime import open_runtime
    from settings import load_settings

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="[bench server] %(levelname)s %(name)s: %(message)s")
    environ = json.loads(os.environ["BENCH_PUSH_SETTINGS"])
    settings = load_settings(environ, env_file=None)
    promoters = json.loads(os.environ["BENCH_PUSH_PROMOTERS"])

    class BareHandler(tornado.web.RequestHandler):
        def post(self) -> None:
            self.write("success")

    # No access log line on either side: the real app's log_function logs only 5xx.
    bare_app = tornado.web.Application([(r"/wechat", BareHandler)], log_function=lambda handler: None)
    loop = asyncio.get_running_loop()

    async with open_runtime(settings) as runtime:
        await _seed_promoters(runtime, promoters)
        servers = []
        ports = {}
        for name, app in (("bare", bare_app), ("push", make_app(runtime))):
            server = tornado.httpserver.HTTPServer(app, xheaders=True)  # as `python -m bot serve` listens
            sockets = tornado.netutil.bind_sockets(0, address="127.0.0.1")
            server.add_sockets(sockets)
            servers.append(server)
            ports[name] = sockets[0].getsockname()[1]
        raw = await loop.create_server(_RawResponder, "127.0.0.1", 0)
        ports["raw"] = raw.sockets[0].getsockname()[1]
        settle_heap()  # as `python -m bot serve` does once it listens
        print(json.dumps({"ports": ports, "pid": os.getpid()}), flush=True)

        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        profiler = None
        deadline = loop.time() + max_seconds
        try:
            while True:  # commands from the bench; end of input (the bench is gone) stops the server
                try:
                    line = await asyncio.wait_for(reader.readline(), max(0.1, deadline - loop.time()))
                except asyncio.TimeoutError:
                    print("[bench server] lifetime limit reached, stopping", file=sys.stderr)
                    break
                if not line:
                    break
                command, _, argument = line.decode().strip().partition(" ")
                if command == "profile-start":
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
                elif command == "profile-stop" and profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(argument)
                    profiler = None
                    print(json.dumps({"profile": argument}), flush=True)
        finally:
            raw.close()
            for server in servers:
                server.stop()
                await server.close_all_connections()
            try:
                await asyncio.wait_for(runtime.mongo.drop_database(settings.mongodb_db), 5)
            except Exception:  # noqa: BLE001 - the database is in memory and goes with SecantusDB anyway
                pass


async def _seed_promoters(runtime, openids: list[str]) -> None:
    """Each openid a promoter whose direct member paid an order of three items, applied as the worker applies
    it: three commissions frozen, with their ledger entries, balances and daily stats."""
    from datetime import datetime, timezone

    from distribution.orders import NewOrder
    from stores.members import new_member_fields

    now = datetime.now(timezone.utc)
    promoters = [{**new_member_fields(now), "oa_openid": openid} for openid in openids]
    buyers = [{**new_member_fields(now), "upline_id": promoter["_id"], "ancestor_ids": [promoter["_id"]],
               "bound_at": now, "bind_source": "oa_scan"} for promoter in promoters]
    await runtime.db["members"].insert_many(promoters + buyers)

    async def paid_order(number: int, buyer: dict) -> None:
        order_no = f"bench-{number}"
        await runtime.orders.create(NewOrder.from_dict({
            "order_no": order_no, "buyer": {"member_id": buyer["_id"]}, "paid_at": now.isoformat(),
            "items": [{"sku": f"tea-{item}", "title": "龙井茶", "qty": 1, "paid_fen": 9_900 + item}
                      for item in range(3)]}))
        await runtime.orders.apply_pending(order_no)

    for start in range(0, len(buyers), SEED_CONCURRENCY):
        await asyncio.gather(*(paid_order(number, buyer) for number, buyer
                               in enumerate(buyers[start:start + SEED_CONCURRENCY], start)))


class _RawResponder(asyncio.Protocol):
    """The least an HTTP/1.1 server can do: frame each request, answer a fixed 200."""

    RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nsuccess"

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        answered = 0
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            length = _content_length(bytes(buffer[:end]))
            if len(buffer) < end + 4 + length:
                break
            del buffer[: end + 4 + length]
            answered += 1
        if answered:
            self.transport.write(self.RESPONSE * answered)


def _content_length(head: bytes) -> int:
    at = head.lower().find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    stop = head.find(b"\r\n", at + 2)
    return int(head[at + 17 : stop if stop >= 0 else len(head)])


# --------------------------------------------------------------------------- load generator


@dataclass
class Phase:
    """One measured run: connections share a request source and the counters."""

    requests: list[bytes]
    cyclic: bool  # the bare server may see a push twice; the real one never does
    ok: int = 0
    failed: int = 0
    next_index: int = 0
    stopping: bool = False
    in_flight: int = 0
    samples: list[tuple[int, int, bytes]] = field(default_factory=list)  # (request index, status, body)
    exhausted_at: float | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        self.exhausted = asyncio.Event()
        self.drained = asyncio.Event()

    def take(self) -> int | None:
        if self.stopping:
            return None
        index = self.next_index
        if index >= len(self.requests):
            if not self.cyclic:
                if self.exhausted_at is None:
                    self.exhausted_at = time.perf_counter()
                    self.exhausted.set()
                return None
            index = index % len(self.requests)
        self.next_index += 1
        return index

    def done(self, index: int, status: int, body: bytes) -> None:
        if status == 200:
            self.ok += 1
            if self.ok % SAMPLE_EVERY == 1 and len(self.samples) < MAX_SAMPLES:
                self.samples.append((index, status, body))
        else:
            self.failed += 1
            if self.failed <= 5:
                self.samples.append((index, status, body))


class ClientConnection(asyncio.Protocol):
    """Keep-alive HTTP/1.1, one request in flight; the next goes out as the answer is read."""

    def __init__(self, phase: Phase):
        self.phase = phase
        self.buffer = bytearray()
        self.index = -1
        self.body_at = -1
        self.end_at = -1
        self.status = 0
        self.transport = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.phase.in_flight += 1
        self.send_next()

    def send_next(self) -> None:
        index = self.phase.take()
        if index is None:
            self.phase.in_flight -= 1
            if self.phase.in_flight == 0:
                self.phase.drained.set()
            self.index = -1
            return
        self.index = index
        self.transport.write(self.phase.requests[index])

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if self.end_at < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end])
            self.status = int(head[9:12])
            lower = head.lower()
            if b"\r\ncontent-length:" not in lower:
                self.phase.error = f"response without Content-Length: {head[:200]!r}"
                self.transport.close()
                return
            self.body_at = end + 4
            self.end_at = self.body_at + _content_length(head)
        if len(buffer) < self.end_at:
            return
        body = bytes(buffer[self.body_at : self.end_at])
        del buffer[: self.end_at]
        self.end_at = -1
        self.phase.done(self.index, self.status, body)
        self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.index >= 0:  # closed with a request unanswered
            self.phase.error = self.phase.error or f"connection lost mid-request: {exc!r}"
            self.index = -1
            self.phase.in_flight -= 1
            if self.phase.in_flight == 0:
                self.phase.drained.set()


@dataclass
class Result:
    name: str
    rate: float
    seconds: float
    responses: int
    failed: int
    client_cpu: float  # fraction of one core over the window
    server_cpu: float
    redis_cpu: float | None
    other_cpu: float  # busy cores of the whole machine less the three above: SecantusDB, anything else
    stolen_cpu: float  # cores' worth of time the hypervisor gave other guests while this machine wanted it
    samples: list[tuple[int, int, bytes]]
    note: str = ""


class CpuProbe:
    """CPU seconds of this process, the server process, Redis (INFO cpu), the whole machine, and the machine's
    steal time: time a virtual machine's cores were ready to run and the hypervisor ran another guest instead,
    which slows every process here alike and shows up as a round that differs from the next."""

    def __init__(self, server_pid: int, redis_client):
        self.server_pid = server_pid
        self.redis = redis_client
        self.tick = os.sysconf("SC_CLK_TCK")

    def read(self) -> tuple[float, float, float | None, float, float]:
        with open("/proc/stat") as stat:
            cpu = [int(value) for value in stat.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal: the machine's own work is all but idle, iowait and steal
        machine, steal = (sum(cpu[:7]) - cpu[3] - cpu[4]) / self.tick, cpu[7] / self.tick
        with open(f"/proc/{self.server_pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        server = (int(fields[11]) + int(fields[12])) / self.tick
        redis_cpu = None
        try:
            info = self.redis.info("cpu")
            redis_cpu = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        except Exception:  # noqa: BLE001 - informative only
            pass
        return time.process_time(), server, redis_cpu, machine, steal


async def run_phase(name: str, port: int, phase: Phase, args, probe: CpuProbe, on_window=None) -> Result:
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(args.connections):
        transport, protocol = await loop.create_connection(lambda: ClientConnection(phase), "127.0.0.1", port)
        connections.append((transport, protocol))
    try:
        await asyncio.sleep(args.warmup)
        if phase.error or phase.exhausted.is_set():
            raise RuntimeError(f"{name}: {phase.error or 'ran out of distinct pushes during warm-up; raise --pool'}")
        if on_window:
            await on_window("start")
        cpu0, t0, ok0, failed0 = probe.read(), time.perf_counter(), phase.ok, phase.failed
        try:
            await asyncio.wait_for(phase.exhausted.wait(), args.duration)
        except asyncio.TimeoutError:
            pass
        t1, ok1, failed1, cpu1 = time.perf_counter(), phase.ok, phase.failed, probe.read()
        if on_window:
            await on_window("stop")
        phase.stopping = True
        try:
            await asyncio.wait_for(phase.drained.wait(), DRAIN_SECONDS)
        except asyncio.TimeoutError:
            phase.error = phase.error or f"{phase.in_flight} requests unanswered {DRAIN_SECONDS} s after the window"
    finally:
        phase.stopping = True
        for transport, _ in connections:
            transport.close()
    seconds = t1 - t0
    note = ""
    if phase.exhausted_at is not None:
        note = f"pool of {len(phase.requests)} pushes ran out after {seconds:.1f} s of the window; raise --pool"
    if phase.error:
        raise RuntimeError(f"{name}: {phase.error}")
    redis = None if cpu0[2] is None or cpu1[2] is None else (cpu1[2] - cpu0[2]) / seconds
    client, server = (cpu1[0] - cpu0[0]) / seconds, (cpu1[1] - cpu0[1]) / seconds
    other = (cpu1[3] - cpu0[3]) / seconds - client - server - (redis or 0.0)
    return Result(
        name=name, rate=(ok1 - ok0) / seconds, seconds=seconds, responses=ok1 - ok0, failed=failed1 - failed0,
        client_cpu=client, server_cpu=server, redis_cpu=redis, other_cpu=max(0.0, other),
        stolen_cpu=(cpu1[4] - cpu0[4]) / seconds,
        samples=phase.samples, note=note,
    )


# --------------------------------------------------------------------------- checks and report


def check_bare(result: Result) -> list[str]:
    problems = [] if result.samples else ["no bare response to check"]
    problems += [f"HTTP {status}: {body[:120]!r}" for _, status, body in result.samples if status != 200]
    problems += [f"body {body[:120]!r}, expected b'success'" for _, status, body in result.samples
                 if status == 200 and body != b"success"]
    return problems


def check_push(result: Result, openids: list[str], expected) -> list[str]:
    """`expected(content)`: whether a reply's text is the one its phase asks for."""
    from wechatpy import parse_message

    problems = [] if result.samples else [f"no /wechat response to check ({result.name})"]
    for index, status, body in result.samples:
        if status != 200:
            problems.append(f"HTTP {status}: {body[:160]!r}")
            continue
        text = body.decode("utf-8", "replace")
        if text in ("", "success"):
            problems.append(f"push {index}: answered {text!r}, not a text reply (de-dup short-circuit?)")
            continue
        try:
            reply = parse_message(text)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"push {index}: unparsable reply ({exc}): {text[:160]!r}")
            continue
        expected_to = openids[index % len(openids)]
        if reply.type != "text" or not expected(reply.content) or reply.target != expected_to:
            problems.append(f"push {index}: unexpected reply {text[:200]!r}")
    return problems


def is_commission_answer(content: str) -> bool:
    """The answer of a seeded promoter: three commissions of 10% of 99.00, 99.01 and 99.02 yuan, all frozen."""
    return content.startswith("【我的佣金】") and "冻结中：29.70元" in content and "最近3笔佣金" in content


def print_result(label: str, result: Result, reads_database: bool = False) -> None:
    """`reads_database`: the phase's requests read SecantusDB, which the rest of the machine's CPU is then."""
    redis = "" if result.redis_cpu is None else f", redis {100 * result.redis_cpu:3.0f}%"
    per_request = 1e6 * result.server_cpu * result.seconds / max(1, result.responses)
    print(f"{label} {result.rate:8.0f} req/s   ({result.responses} responses in {result.seconds:.2f} s, "
          f"{per_request:.0f} us server CPU each; CPU: server {100 * result.server_cpu:3.0f}%, load generator {100 * result.client_cpu:3.0f}%{redis}, "
          f"rest of machine {100 * result.other_cpu:3.0f}%, steal {100 * result.stolen_cpu:3.0f}%)")
    if reads_database:
        print(f"{'':28}(the rest of the machine is mostly SecantusDB answering the reads)")
    elif result.other_cpu > 0.25:
        print(f"{'':28}WARNING: something else kept {result.other_cpu:.1f} cores busy: this figure is disturbed")
    if result.stolen_cpu > 0.1:
        print(f"{'':28}WARNING: the hypervisor took {result.stolen_cpu:.1f} cores' worth from this machine "
              "(steal): this figure is disturbed")
    if result.failed:
        print(f"{'':28}{result.failed} non-200 responses in the window")
    if result.note:
        print(f"{'':28}NOTE: {result.note}")


def summarize_cprofile(path: str, top: int = 30) -> None:
    import pstats

    stats = pstats.Stats(path)
    stats.strip_dirs()
    print("\nServer profile (cProfile, push phase window) - by own time:")
    stats.sort_stats("tottime").print_stats(top)
    print("By cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)


def summarize_pyspy(path: str, top: int = 25) -> None:
    """Per function (line numbers dropped): share of samples where it runs itself, and where it is on the stack."""
    import re

    line_number = re.compile(r":\d+\)$")
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    with open(path, encoding="utf-8", errors="replace") as collapsed:
        for line in collapsed:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            total += count
            frames = [line_number.sub(")", frame) for frame in stack.split(";")]
            own[frames[-1]] = own.get(frames[-1], 0) + count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count
    if not total:
        print("py-spy recorded no samples")
        return
    print(f"\nServer profile (py-spy, push phase window, {total} samples of a busy server) - own time:")
    for frame, count in sorted(own.items(), key=lambda item: -item[1])[:top]:
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print("Inclusive time:")
    for frame, count in sorted(inclusive.items(), key=lambda item: -item[1])[:top + 15]:
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print(f"(collapsed stacks in {path}; e.g. feed them to flamegraph.pl or speedscope)")


# --------------------------------------------------------------------------- orchestration


def new_openids(count: int) -> list[str]:
    return [f"o_bench_{uuid.uuid4().hex[:20]}" for _ in range(count)]


def build_pushes(settings, count: int, text: str, openids: list[str]) -> list[bytes]:
    """`count` signed plain-mode pushes of `text` with distinct MsgIds, from `openids` in turn, as full HTTP
    requests."""
    from bot.simulate import PushSigner, text_xml

    timestamp = str(int(time.time()))
    signer = PushSigner(settings.wechat_token, settings.wechat_app_id, settings.wechat_aes_key)
    first_id = 10**18 + secrets.randbelow(10**17)  # 19 digits, below 2**63, distinct per run
    at = int(timestamp)
    requests = []
    for index in range(count):
        # A nonce of its own each, as WeChat sends them: the door refuses a nonce seen with another push.
        query, body = signer.sign(text_xml(openids[index % len(openids)], text, msg_id=first_id + index, at=at),
                                  timestamp=timestamp)
        head = f"POST /wechat?{urlencode(query)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nContent-Length: "
        requests.append(head.encode() + str(len(body)).encode() + b"\r\n\r\n" + body)
    return requests


class ServerProcess:
    def __init__(self, environ: dict[str, str], promoters: list[str], max_seconds: float):
        env = {**os.environ, "BENCH_PUSH_SETTINGS": json.dumps(environ), "BENCH_PUSH_PROMOTERS": json.dumps(promoters),
               "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.push", "--serve", "--max-seconds", str(int(max_seconds))],
            cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )

    def read_message(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if self.process.poll() is not None:
                raise RuntimeError(f"bench server exited with {self.process.returncode}")
            if remaining <= 0:
                raise RuntimeError(f"bench server said nothing within {timeout:.0f} s")
            ready, _, _ = select.select([self.process.stdout], [], [], min(remaining, 0.5))
            if ready:
                line = self.process.stdout.readline()
                if line:
                    return json.loads(line)

    def send(self, command: str) -> None:
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()  # end of input: the server stops by itself
            except OSError:
                pass
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


def delete_prefix(prefix: str) -> int:
    import redis as sync_redis

    client = sync_redis.Redis.from_url(REDIS_URL)
    deleted = 0
    try:
        batch = []
        for key in client.scan_iter(match=f"{prefix}*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                deleted += client.unlink(*batch)
                batch = []
        if batch:
            deleted += client.unlink(*batch)
    finally:
        client.close()
    return deleted


async def measure(args, server: ServerProcess, ports: dict, server_pid: int, requests, openids, asks, promoters,
                  settings, tmp: Path) -> int:
    import redis as sync_redis

    redis_client = sync_redis.Redis.from_url(REDIS_URL)
    probe = CpuProbe(server_pid, redis_client)
    pyspy = None

    async def profile_window(event: str) -> None:
        nonlocal pyspy
        if args.profile == "cprofile":
            if event == "start":
                server.send("profile-start")
            else:
                server.send(f"profile-stop {tmp / 'push.pstats'}")
        elif args.profile == "py-spy" and event == "start":
            pyspy = await asyncio.create_subprocess_exec(
                args.py_spy, "record", "--pid", str(server_pid), "--duration", str(max(1, int(args.duration))),
                "--rate", "250", "--format", "raw", "--output", str(tmp / "push.collapsed"),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )

    rounds: list[tuple[Result, Result]] = []
    try:
        sent = 0  # pushes taken by earlier rounds: each push goes out once
        for number in range(args.rounds):
            bare = await run_phase("bare", ports["bare"], Phase(requests, cyclic=True), args, probe)
            pushes = Phase(requests, cyclic=False, next_index=sent)
            push = await run_phase("push", ports["push"], pushes, args, probe,
                                   on_window=profile_window if args.profile != "none" and number == 0 else None)
            sent = pushes.next_index
            rounds.append((bare, push))
        commission = await run_phase("commission", ports["push"], Phase(asks, cyclic=False), args, probe)
        ceiling = None
        if not args.no_ceiling:
            ceiling_args = argparse.Namespace(**{**vars(args), "warmup": 0.5, "duration": min(args.duration, 2.0)})
            ceiling = await run_phase("raw", ports["raw"], Phase(requests, cyclic=True), ceiling_args, probe)
        if pyspy is not None:
            _, err = await asyncio.wait_for(pyspy.communicate(), args.duration + 30)
            if pyspy.returncode:
                print(f"py-spy failed: {err.decode(errors='replace').strip()}", file=sys.stderr)
    finally:
        redis_client.close()
        if pyspy is not None and pyspy.returncode is None:
            pyspy.kill()
            await pyspy.wait()

    problems = [problem for bare, push in rounds for problem in
                check_bare(bare) + check_push(push, openids, lambda content: content == settings.default_reply)]
    problems += check_push(commission, promoters, is_commission_answer)
    ratios = [push.rate / bare.rate if bare.rate else 0.0 for bare, push in rounds]
    median = sorted(range(len(rounds)), key=ratios.__getitem__)[len(rounds) // 2]
    bare, push = rounds[median]
    ratio = ratios[median]
    print()
    print("each round, bare then push: " + ", ".join(f"{each:.2f} ({push.rate:.0f}/{bare.rate:.0f} req/s)"
                                                     for each, (bare, push) in zip(ratios, rounds)))
    print(f"round {median + 1}, the median:")
    print_result("bare tornado 'success':   ", bare)
    print_result("/wechat text reply:       ", push)
    print_result("/wechat 佣金 answer:      ", commission, reads_database=True)
    print(f"{'':28}{commission.rate / push.rate if push.rate else 0.0:.2f} x the text reply's req/s "
          f"(claimed, its reply remembered in Redis; about five MongoDB reads)")
    if ceiling is not None:
        print_result("load generator ceiling:   ", ceiling)
        print(f"{'':28}(raw asyncio responder in the server process: the most this client delivers here)")
        if ceiling.rate < 1.5 * bare.rate:
            print(f"{'':28}WARNING: the load generator may limit the bare figure (ceiling < 1.5 x bare)")
    met = ratio >= TARGET_RATIO
    profiled = " (server profiled: slowed, do not quote)" if args.profile != "none" else ""
    print(f"ratio: {ratio:.2f} (target >= {TARGET_RATIO}) {'met' if met else 'MISSED'}{profiled}")
    if push.responses and bare.responses and push.server_cpu and bare.server_cpu:
        # Less sensitive to other load on the machine than the req/s ratio: server CPU per request.
        cpu_ratio = (bare.server_cpu / bare.rate) / (push.server_cpu / push.rate)
        print(f"server CPU per request, bare / push: {cpu_ratio:.2f} (the ratio with the server on a core of its own; "
              "less sensitive to other load on the machine)")
    print(f"checked {len(push.samples) + len(commission.samples)} sampled /wechat replies and "
          f"{len(bare.samples)} bare bodies: "
          f"{'all as expected' if not problems else f'{len(problems)} PROBLEMS'}")
    for problem in problems[:10]:
        print(f"  {problem}")

    if args.profile == "cprofile":
        message = server.read_message(30)
        summarize_cprofile(message["profile"])
    elif args.profile == "py-spy" and (tmp / "push.collapsed").exists():
        keep = Path(tempfile.gettempdir()) / f"bench-push-{os.getpid()}.collapsed"
        shutil.copy(tmp / "push.collapsed", keep)
        summarize_pyspy(str(keep))
    return 0 if met and not problems else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.push", description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each window (default 1)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per phase (default 5)")
    parser.add_argument("--pool", type=int, default=150_000,
                        help="distinct pushes built beforehand: the most the /wechat windows may send together "
                             "(default 150000)")
    parser.add_argument("--rounds", type=int, default=3, help="bare and push windows measured in turn (default 3)")
    parser.add_argument("--commission-pool", type=int, default=20_000,
                        help="distinct 佣金 pushes built beforehand: the most the 佣金 phase may send (default 20000)")
    parser.add_argument("--profile", choices=["none", "cprofile", "py-spy"], default="none",
                        help="profile the server during the /wechat window")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy", help="py-spy executable")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the load generator ceiling phase")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--max-seconds", type=float, default=300, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench stops us (end of input); Ctrl-C goes to it
        asyncio.run(_serve(args.max_seconds))
        return 0
    if not (1 <= args.connections <= 256 and 0 <= args.warmup <= 60 and 0.5 <= args.duration <= 120
            and 1000 <= args.pool <= 2_000_000 and 1000 <= args.commission_pool <= 2_000_000
            and 1 <= args.rounds <= 15):
        parser.error("--connections 1-256, --warmup 0-60, --duration 0.5-120, --pool and --commission-pool "
                     "1000-2000000, --rounds 1-15")

    from settings import load_settings
    from stores.embedded import port_answers, secantusdb_uri, start_secantusdb

    if not port_answers("127.0.0.1", 6379):
        print("no Redis answers at 127.0.0.1:6379", file=sys.stderr)
        return 2

    def on_sigterm(signum, frame):  # run the clean-up below on `kill` too
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    prefix = f"bench:{uuid.uuid4().hex}:"
    tmp = Path(tempfile.mkdtemp(prefix="bench-push-"))
    secantus = server = None
    try:
        secantus = start_secantusdb(":memory:", tmp / "secantusdb.log")
        environ = {
            "DEMO": "1",
            "MONGODB_URI": secantusdb_uri(secantus.port),
            "MONGODB_DB": f"bench{uuid.uuid4().hex[:12]}",
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": prefix,
            # Demo-mode credentials; an API base of our own so no sandbox WeChat is started:
            # the text reply path never calls WeChat.
            "WECHAT_API_BASE": "http://127.0.0.1:9",
            "MERCHANT_API_TOKEN": secrets.token_urlsafe(24),
            "VAR_DIR": str(tmp / "var"),
        }
        settings = load_settings(environ, env_file=None)
        phases = 2 * args.rounds + (1 if args.no_ceiling else 2)
        lifetime = 60 + phases * (args.warmup + args.duration + DRAIN_SECONDS) + (60 if args.profile != "none" else 0)
        promoters = new_openids(PROMOTERS)
        server = ServerProcess(environ, promoters, lifetime + SERVER_READY_SECONDS)
        built = time.perf_counter()
        openids = new_openids(OPENIDS)
        requests = build_pushes(settings, args.pool, TEXT, openids)
        asks = build_pushes(settings, args.commission_pool, COMMISSION_TEXT, promoters)
        built = time.perf_counter() - built
        ready = server.read_message(SERVER_READY_SECONDS)
        print(f"/wechat push throughput: one server process (pid {ready['pid']}, one event loop) serving a bare "
              f"Tornado app on :{ready['ports']['bare']} and the real app on :{ready['ports']['push']}")
        print(f"{os.cpu_count()} CPUs; Redis 127.0.0.1:6379 prefix {prefix}; SecantusDB :memory: on :{secantus.port}")
        print(f"{args.connections} keep-alive connections, {args.warmup:g} s warm-up + {args.duration:g} s measured "
              f"each, {args.rounds} rounds of bare then push; {len(requests)} distinct signed text pushes and {len(asks)} 佣金 pushes "
              f"from {PROMOTERS} promoters (each with three commissions, seeded by the server) built in {built:.2f} s "
              f"({len(requests[0])} bytes each)")
        return asyncio.run(measure(args, server, ready["ports"], ready["pid"], requests, openids, asks, promoters,
                                   settings, tmp))
    except (RuntimeError, OSError) as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()
        if secantus is not None:
            secantus.stop()
        try:
            deleted = delete_prefix(prefix)
            print(f"cleaned up: bench server and SecantusDB stopped, {deleted} Redis keys under {prefix} deleted")
        except Exception as error:  # noqa: BLE001
            print(f"could not delete Redis keys under {prefix}: {error}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
