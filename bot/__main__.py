"""`python -m bot serve|worker|sandbox|simulate|jobs|ledger|admin|menu`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from settings import SettingsError, load_settings

log = logging.getLogger("bot")


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(port: int | None) -> None:
    from bot.app import make_app
    from bot.heap import settle_heap
    from bot.runtime import open_runtime
    from bot.worker import run_worker

    # --port is PORT for everything that derives from it, such as the demo's share links.
    settings = load_settings(None if port is None else {**os.environ, "PORT": str(port)})
    async with open_runtime(settings) as runtime:
        # The demo's data, sandbox and token are for the person at this machine, not for its network.
        address = "127.0.0.1" if settings.demo else "0.0.0.0"
        server = make_app(runtime).listen(settings.port, address=address, xheaders=True)
        settle_heap()
        log.info("serving on %s:%d (%s mode)", address, settings.port, "demo" if settings.demo else "production")
        stop = _stop_event()
        # The demo is one command: its worker runs inside the server. Production runs `worker` processes.
        worker = asyncio.create_task(run_worker(runtime, stop)) if settings.demo else None
        if settings.demo:
            # Like the token: on stdout for the person at this machine, never in the log.
            password = await runtime.staff.ensure_demo_admin()
            print(f"console: http://127.0.0.1:{settings.port}/admin  user: admin  password: {password}", flush=True)
        if settings.merchant_token_generated:
            # Bare on stdout, never in the log, to paste into the shell that plays WeChat and the shop: the
            # CLI there reads DEMO and PORT too.
            print("merchant API token generated for this run; in another shell:", flush=True)
            print(f"export DEMO=1 TOKEN={settings.merchant_api_token} PORT={settings.port}", flush=True)
        await stop.wait()
        server.stop()
        await server.close_all_connections()
        if worker is not None:
            await worker


async def worker() -> None:
    from bot.runtime import open_runtime
    from bot.worker import run_worker

    async with open_runtime(load_settings()) as runtime:
        log.info("worker started")
        await run_worker(runtime, _stop_event())


def _iso_time(raw: str):
    """An ISO 8601 time for --now; one without an offset is taken as UTC."""
    from datetime import datetime, timezone

    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an ISO 8601 time") from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


async def jobs(now) -> None:
    import json
    from datetime import datetime, timezone

    from bot.runtime import open_runtime
    from bot.worker import run_due_tasks

    now = now or datetime.now(timezone.utc)
    async with open_runtime(load_settings()) as runtime:
        done = await run_due_tasks(runtime, now)
    print(json.dumps({"now": now.isoformat(), **done}))


def _day(raw: str):
    """A China calendar day for --day, YYYY-MM-DD."""
    from datetime import date

    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a day (YYYY-MM-DD)") from None


async def reconcile(day) -> int:
    """The day's finance report against the ledger and WeChat Pay; non-zero on any difference."""
    from datetime import datetime, timedelta

    from bot.runtime import open_runtime
    from distribution.calendar import CHINA

    day = day or datetime.now(CHINA).date() - timedelta(days=1)
    async with open_runtime(load_settings()) as runtime:
        report = await runtime.finance.day_report(day)
    print("\n".join(report.summary()))
    return 0 if report.clean else 1


async def ledger(action: str, day=None) -> int:
    from bot.runtime import open_runtime

    if action == "reconcile":
        return await reconcile(day)
    async with open_runtime(load_settings()) as runtime:
        report = await runtime.ledger.verify()
    for difference in report.differences:
        print(difference)
    verdict = "clean" if report.clean else "NOT BALANCED"
    print(f"ledger {verdict}: {report.accounts} accounts, {report.entries} entries, "
          f"{len(report.differences)} differences")
    return 0 if report.clean else 1


async def admin(args: argparse.Namespace) -> int:
    """Staff accounts of the console: create users, set passwords, a second factor for owners."""
    import getpass

    from bot.runtime import open_runtime
    from distribution.errors import DomainError
    from distribution.staff import Role

    def new_password() -> str:
        password = os.environ.get("ADMIN_PASSWORD")
        if password:
            return password
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise SystemExit("the two passwords differ")
        return password

    async with open_runtime(load_settings()) as runtime:
        staff = runtime.staff
        try:
            if args.action == "create-user":
                await staff.create_user(args.name, new_password(), Role(args.role))
                print(f"created {args.name} ({args.role})")
            elif args.action == "set-password":
                await staff.set_password(args.name, new_password())
                print(f"password of {args.name} changed")
            elif args.action == "totp":
                if args.disable:
                    await staff.disable_totp(args.name)
                    print(f"second factor of {args.name} removed")
                else:
                    print("scan into an authenticator app, then sign in with its 6-digit codes:")
                    print(await staff.enable_totp(args.name))
            else:
                for user in await staff.users():
                    print(f"{user['username']}\t{user['role']}\t{'totp' if user.get('has_totp') else ''}")
        except DomainError as error:
            print(f"refused: {error.message}", file=sys.stderr)
            return 1
    return 0


async def menu(action: str) -> int:
    """The official account's menu: install the stored one in WeChat, or show what WeChat holds."""
    import json

    from bot.runtime import open_runtime
    from distribution.errors import DomainError
    from wechat import WeChatError

    async with open_runtime(load_settings()) as runtime:
        try:
            buttons = await (runtime.oa_menu.install() if action == "install" else runtime.oa_menu.installed())
        except DomainError as error:
            print(f"refused: {error.message}", file=sys.stderr)
            return 1
        except WeChatError as error:
            print(f"WeChat did not answer: {error}", file=sys.stderr)
            return 1
    print(json.dumps({"installed": buttons is not None, "button": buttons or []}, ensure_ascii=False, indent=2))
    return 0


async def sandbox(host: str, port: int) -> None:
    from sandbox import start_sandbox

    server, _state, base_url = await start_sandbox(host, port)
    log.info("sandbox WeChat at %s", base_url)
    await _stop_event().wait()
    server.stop()


def simulate(args: argparse.Namespace) -> None:
    import httpx

    from bot.simulate import PushSigner, event_xml, reply_content, text_xml

    settings = load_settings()
    if args.action == "follow":
        xml = event_xml(args.openid, "subscribe", f"qrscene_{args.scene}" if args.scene else None)
    elif args.action == "scan":
        xml = event_xml(args.openid, "SCAN", args.scene)
    elif args.action == "unfollow":
        xml = event_xml(args.openid, "unsubscribe")
    else:
        xml = text_xml(args.openid, args.text)
    signer = PushSigner(settings.wechat_token, settings.wechat_app_id, settings.wechat_aes_key)
    query, body = signer.sign(xml)
    url = args.url or f"http://127.0.0.1:{settings.port}/wechat"
    response = httpx.post(url, params=query, content=body, timeout=10)
    print(f"HTTP {response.status_code}")
    reply = signer.open_reply(query, response.text) if response.status_code == 200 else response.text
    print(reply_content(reply) or reply)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="WeChat distribution backend")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the HTTP server")
    serve_cmd.add_argument("--port", type=int, help="overrides PORT")
    commands.add_parser("worker", help="run the background worker")
    sandbox_cmd = commands.add_parser("sandbox", help="run the sandbox WeChat server alone")
    sandbox_cmd.add_argument("--host", default="127.0.0.1")
    sandbox_cmd.add_argument("--port", type=int, default=8100)
    jobs_cmd = commands.add_parser("jobs", help="run the due periodic tasks once: settle commissions, sweeps")
    jobs_cmd.add_argument("--now", type=_iso_time, help="ISO 8601 time to run them as of (default: now; no offset: UTC)")
    ledger_cmd = commands.add_parser("ledger", help="check the ledger")
    ledger_cmd.add_argument("action", choices=["verify", "reconcile"],
                            help="verify: recompute every balance from the entries; reconcile: a day's finance "
                                 "report, the business records against the ledger and WeChat Pay's bills")
    ledger_cmd.add_argument("--day", type=_day, help="reconcile: the China day, YYYY-MM-DD (default: yesterday)")
    admin_cmd = commands.add_parser("admin", help="the console's staff accounts")
    admin_actions = admin_cmd.add_subparsers(dest="action", required=True)
    create_cmd = admin_actions.add_parser("create-user", help="a new user; password from ADMIN_PASSWORD or a prompt")
    create_cmd.add_argument("name")
    create_cmd.add_argument("--role", required=True, choices=["owner", "finance", "operator"])
    admin_actions.add_parser("set-password", help="password from ADMIN_PASSWORD or a prompt").add_argument("name")
    totp_cmd = admin_actions.add_parser("totp", help="give an owner a second factor (prints the otpauth URI)")
    totp_cmd.add_argument("name")
    totp_cmd.add_argument("--disable", action="store_true", help="remove the second factor instead")
    admin_actions.add_parser("list", help="every user and role")
    menu_cmd = commands.add_parser("menu", help="the official account's menu (settings/oa_menu) in WeChat")
    menu_cmd.add_argument("action", choices=["install", "show"],
                          help="install: send the stored menu to WeChat; show: the menu WeChat holds")
    sim = commands.add_parser("simulate", help="send a signed push to a running server")
    sim.add_argument("action", choices=["follow", "scan", "unfollow", "text"])
    sim.add_argument("--openid", default="o_demo_buyer")
    sim.add_argument("--scene", help="scene of the scanned code, e.g. p:<member id>")
    sim.add_argument("--text", default="你好")
    sim.add_argument("--url", help="the server's /wechat (default: http://127.0.0.1:$PORT/wechat)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # `simulate`'s request line would carry the signature
    try:
        if args.command == "serve":
            asyncio.run(serve(args.port))
        elif args.command == "worker":
            asyncio.run(worker())
        elif args.command == "sandbox":
            asyncio.run(sandbox(args.host, args.port))
        elif args.command == "jobs":
            asyncio.run(jobs(args.now))
        elif args.command == "admin":
            return asyncio.run(admin(args))
        elif args.command == "ledger":
            return asyncio.run(ledger(args.action, args.day))
        elif args.command == "menu":
            return asyncio.run(menu(args.action))
        else:
            simulate(args)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
