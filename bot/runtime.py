"""The composition root: stores, WeChat clients and services, opened and closed together as one `Runtime`."""

from __future__ import annotations

import dataclasses
import logging
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Callable
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from services.agreements import AgreementService
from services.applications import ApplicationService
from services.audit import AuditLog
from services.catalogue import CatalogueService
from services.checkout import CheckoutService
from services.chat import ChatService
from services.commissions import CommissionService
from services.dashboard import DashboardService
from services.data_rights import DataRightsService
from services.exports import ExportService
from services.finance import FinanceService
from services.finance_exports import FinanceExports
from services.grades import GradeService
from services.identity import IdentityService
from services.ledger import LedgerService
from services.members import MemberService
from services.merchant_settings import MerchantSettings
from services.metrics import Metrics
from services.notifications import NotificationService
from services.oa_menu import OaMenuService
from services.orders import OrderService
from services.outbound import outbound_tls
from services.posters import ShareLinkSettings, open_poster_service
from services.rate_limits import RateLimitService
from services.relations import RelationService
from services.risk import RiskService, ranked_by_wechat
from services.risk_review import RiskReview
from services.runtime import Runtime
from services.sealing import Sealer
from services.sessions import SessionService
from services.share_links import ShareLinkService
from services.staff import StaffService
from services.statements import StatementService
from services.stats import StatsService
from services.tax import TaxService
from services.withdrawals import PayeeApps, WithdrawalService
from settings import Settings
from stores import embedded
from stores.agreements import AgreementStore
from stores.applications import ApplicationStore
from stores.audit_log import AuditLogStore
from stores.bind_log import BindLog
from stores.commit_turns import CommitTurns
from stores.exports import ExportStore
from stores.job_queue import JobQueue
from stores.members import MemberStore
from stores.mongo import ensure_indexes, open_mongo
from stores.orders import OrderStore
from stores.personal_data import PersonalDataStore
from stores.posters import PosterStore
from stores.products import ProductStore
from stores.rate_limits import RateLimiter
from stores.risk import RiskStore
from stores.staff import StaffStore
from stores.stats import StatsStore
from wechat import WeChatClient
from wechatpay import (
    PAYMENT_NOTIFY_PATH,
    REFUND_NOTIFY_PATH,
    TRANSFER_NOTIFY_PATH,
    Refunds,
    ReplayGuard,
    Transactions,
    TransferBills,
    TransferScene,
    WeChatPayClient,
    merchant_keys,
)

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEMO_REFUND_SECONDS = 3.0  # the demo's refunds succeed by themselves, as WeChat Pay's do after a while


async def _mongo_uri(settings: Settings, stack: AsyncExitStack) -> str:
    if settings.mongodb_uri:
        log.info("MongoDB: %s", _without_password(settings.mongodb_uri))
        return settings.mongodb_uri
    data = settings.var_dir / "secantusdb"
    port, whose = _embedded_port(settings.var_dir / "secantusdb.json",
                                 lambda: embedded.start_secantusdb(data, settings.var_dir / "secantusdb.log"), stack)
    log.info("MongoDB: embedded SecantusDB on 127.0.0.1:%d (%s), data in %s", port, whose, data)
    return embedded.secantusdb_uri(port)


async def _redis_url(settings: Settings, stack: AsyncExitStack) -> str:
    if settings.redis_url:
        log.info("Redis: %s", _without_password(settings.redis_url))
        return settings.redis_url
    default = urlsplit(DEFAULT_REDIS_URL)
    if embedded.port_answers(default.hostname, default.port):
        log.info("Redis: %s (REDIS_URL unset, a server answers there)", DEFAULT_REDIS_URL)
        return DEFAULT_REDIS_URL
    port, whose = _embedded_port(settings.var_dir / "redis.json",
                                 lambda: embedded.start_redis(settings.var_dir / "redis"), stack)
    log.info("Redis: embedded redis-server on 127.0.0.1:%d (%s)", port, whose)
    return f"redis://127.0.0.1:{port}/0"


def _embedded_port(record: Path, start: Callable[[], embedded.EmbeddedServer], stack: AsyncExitStack) -> tuple[int, str]:
    """The embedded server of VAR_DIR that another process runs, or one started now: this runtime stops only
    a server it started."""
    port, started = embedded.running_or_started(record, start)
    if started is None:
        return port, "already running"
    stack.callback(started.stop)
    return port, "started"


async def _demo_wechat(settings: Settings, stack: AsyncExitStack) -> Settings:
    """Outside demo mode every WeChat URL is configured. In demo mode those left unset are the sandbox WeChat's,
    started here when WECHAT_API_BASE names none."""
    if not settings.demo:
        return settings
    api_base = settings.wechat_api_base
    if api_base is None:
        from sandbox import start_sandbox

        server, state, api_base = await start_sandbox("127.0.0.1", 0)
        stack.callback(server.stop)
        log.info("WeChat API: demo mode, sandbox WeChat at %s", api_base)
        state.pay.refunds_succeed_after = DEMO_REFUND_SECONDS
        settings = dataclasses.replace(settings, wechat_pay=settings.wechat_pay or state.pay.demo_settings())
    return dataclasses.replace(settings, wechat_api_base=api_base,
                               wechat_pay_api_base=settings.wechat_pay_api_base or api_base,
                               wechat_open_base=settings.wechat_open_base or api_base)


@dataclasses.dataclass(frozen=True)
class WeChatPayApis:
    """WeChat Pay's API groups, on one client signed with the merchant's keys."""

    transfer_bills: TransferBills
    transactions: Transactions
    refunds: Refunds


def _wechat_pay(settings: Settings, redis: aioredis.Redis, stack: AsyncExitStack) -> WeChatPayApis | None:
    """None when WeChat Pay is not configured."""
    pay = settings.wechat_pay
    if pay is None or settings.wechat_pay_api_base is None or settings.public_base_url is None:
        log.warning("WeChat Pay is not configured: WeChat-balance withdrawals and mini-program payments are refused")
        return None
    if not settings.public_base_url.startswith("https://") and not settings.demo:
        log.warning("WeChat Pay's callbacks go to %s: WeChat Pay requires https in production",
                    settings.public_base_url)
    client = WeChatPayClient(settings.wechat_pay_api_base, merchant_keys(pay), ReplayGuard(redis, settings.redis_prefix),
                             settings.wechat_timeout_seconds, verify=outbound_tls())
    stack.push_async_callback(client.aclose)
    return WeChatPayApis(
        TransferBills(client, settings.public_base_url + TRANSFER_NOTIFY_PATH,
                      TransferScene(pay.transfer_scene_id, pay.transfer_report)),
        # The buyer pays in the mini-program, so the order is the mini-program's and paySign is signed for it.
        Transactions(client, settings.miniapp_app_id, settings.public_base_url + PAYMENT_NOTIFY_PATH),
        Refunds(client, settings.public_base_url + REFUND_NOTIFY_PATH))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Everything the server and the worker need; closes all of it on exit."""
    async with AsyncExitStack() as stack:
        # Both stores answer within STORE_TIMEOUT_SECONDS or raise: a request on a store that is down fails fast.
        store_timeout = settings.store_timeout_seconds
        mongo, db = open_mongo(await _mongo_uri(settings, stack), settings.mongodb_db, store_timeout)
        stack.push_async_callback(mongo.close)
        # A pooled connection that a restarted Redis closed fails on its next command: sent once more, on a new
        # connection, the command reaches the Redis that is back (one that is down refuses both at once).
        redis = aioredis.from_url(await _redis_url(settings, stack), socket_connect_timeout=store_timeout,
                                  socket_timeout=store_timeout,
                                  retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)))
        stack.push_async_callback(redis.aclose)
        settings = await _demo_wechat(settings, stack)
        api_base = settings.wechat_api_base
        await ensure_indexes(db)

        metrics = Metrics()
        queue = JobQueue(redis, settings.redis_prefix)
        merchant_settings = MerchantSettings(db)
        member_store = MemberStore(db)
        sealer = Sealer(settings.data_key)

        def wechat_client(app_id: str, secret: str) -> WeChatClient:
            client = WeChatClient(
                api_base, app_id, secret, redis, settings.redis_prefix,
                timeout=settings.wechat_timeout_seconds, on_call=metrics.count_wechat_call, verify=outbound_tls(),
            )
            stack.push_async_callback(client.aclose)
            return client

        oa = wechat_client(settings.wechat_app_id, settings.wechat_app_secret)
        miniapp = wechat_client(settings.miniapp_app_id, settings.miniapp_app_secret)

        limits = RateLimitService(merchant_settings, RateLimiter(redis, settings.redis_prefix))
        # Posters: the CJK font is checked now; drawing happens in a process pool closed with the runtime.
        posters = open_poster_service(settings, PosterStore(db), member_store, merchant_settings, redis, oa, miniapp,
                                      queue, limits)
        stack.push_async_callback(posters.aclose)
        notifications = NotificationService(db, queue, oa, miniapp, settings)
        risk = RiskService(RiskStore(db, redis, settings.redis_prefix), merchant_settings, notifications, sealer,
                           settings.data_key, risk_rank=ranked_by_wechat(miniapp))
        grades = GradeService(mongo, db, merchant_settings)
        commissions = CommissionService(mongo, db, notifications, grades, merchant_settings)
        relations = RelationService(mongo, member_store, BindLog(db), merchant_settings, queue, notifications,
                                    limits=limits, risk=risk)
        identity = IdentityService(mongo, member_store, miniapp, oa, sealer, merchant_settings)
        # The transactions that write the shop's day totals take turns, in every process.
        commit_turns = CommitTurns(redis, mongo, f"{queue.stream}:total-commits")
        stats = StatsService(db, commit_turns, lambda uplines, now: grades.evaluate(uplines, "bind", now))
        members = MemberService(member_store, merchant_settings)
        ledger = LedgerService(db)
        wechat_pay = _wechat_pay(settings, redis, stack)
        orders = OrderService(mongo, db, queue, commit_turns, merchant_settings, notifications, grades, commissions,
                              risk=risk)
        finance = FinanceService(db, wechat_pay.transfer_bills if wechat_pay else None)
        tax = TaxService(db, merchant_settings, notifications, sealer)
        catalogue = CatalogueService(ProductStore(mongo, db), merchant_settings, posters, miniapp)
        sessions = SessionService(redis, settings.redis_prefix, settings.session_secret, settings.session_days)
        withdrawals = WithdrawalService(mongo, db, member_store, merchant_settings, queue,
                                        wechat_pay.transfer_bills if wechat_pay else None,
                                        PayeeApps(settings.miniapp_app_id, settings.wechat_app_id), notifications,
                                        sealer, redis, settings.redis_prefix, risk=risk)

        yield Runtime(
            settings=settings,
            mongo=mongo,
            db=db,
            redis=redis,
            metrics=metrics,
            oa=oa,
            miniapp=miniapp,
            queue=queue,
            merchant_settings=merchant_settings,
            sealer=sealer,
            notifications=notifications,
            members=members,
            relations=relations,
            sessions=sessions,
            identity=identity,
            applications=ApplicationService(mongo, ApplicationStore(db), member_store, merchant_settings, sealer,
                                            notifications),
            posters=posters,
            ledger=ledger,
            grades=grades,
            stats=stats,
            dashboard=DashboardService(db, stats),
            commissions=commissions,
            statements=StatementService(mongo, db, merchant_settings, commissions, grades),
            orders=orders,
            withdrawals=withdrawals,
            transactions=wechat_pay.transactions if wechat_pay else None,
            refunds=wechat_pay.refunds if wechat_pay else None,
            share_links=ShareLinkService(ShareLinkSettings(settings.public_base_url, settings.share_link_secret),
                                         settings.wechat_open_base, oa, member_store, identity, relations),
            staff=StaffService(StaffStore(db), redis, settings.redis_prefix, sealer, settings.admin_idle_minutes * 60,
                               settings.admin_session_hours * 3600),
            audit=AuditLog(AuditLogStore(db)),
            exports=ExportService(db, sealer),
            finance=finance,
            tax=tax,
            finance_exports=FinanceExports(finance, tax, ExportStore(db)),
            chat=ChatService(merchant_settings, members, ledger, commissions, OrderStore(db), StatsStore(db), oa,
                             redis, settings.redis_prefix, settings.miniapp_app_id),
            oa_menu=OaMenuService(merchant_settings, oa, settings.miniapp_app_id),
            catalogue=catalogue,
            checkout=CheckoutService(mongo, db, orders, catalogue, wechat_pay.transactions if wechat_pay else None,
                                     wechat_pay.refunds if wechat_pay else None, merchant_settings, sealer),
            agreements=AgreementService(AgreementStore(mongo, db)),
            data_rights=DataRightsService(PersonalDataStore(mongo, db), ledger, sealer, sessions),
            limits=limits,
            risk=risk,
            risk_review=RiskReview(mongo, risk.store, withdrawals),
        )
