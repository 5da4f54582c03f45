"""Everything one process shares: the settings, the stores' clients, the WeChat clients and the services.

Built and closed by the composition root (`bot.runtime.open_runtime`); the
entrypoints (the official account's door, the HTTP handlers, the worker and
the CLI) receive it and call the services on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

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
from services.health import check_stores, check_worker
from services.identity import IdentityService
from services.ledger import LedgerService
from services.members import MemberService
from services.merchant_settings import MerchantSettings
from services.metrics import Metrics
from services.notifications import NotificationService
from services.oa_menu import OaMenuService
from services.orders import OrderService
from services.posters import PosterService
from services.rate_limits import RateLimitService
from services.relations import RelationService
from services.risk import RiskService
from services.risk_review import RiskReview
from services.sealing import Sealer
from services.sessions import SessionService
from services.share_links import ShareLinkService
from services.staff import StaffService
from services.statements import StatementService
from services.stats import StatsService
from services.tax import TaxService
from services.withdrawals import WithdrawalService
from settings import Settings
from stores.job_queue import JobQueue, QueueStatus
from wechat import WeChatClient
from wechatpay import Refunds, Transactions


@dataclass
class Runtime:
    settings: Settings
    mongo: AsyncMongoClient
    db: AsyncDatabase
    redis: aioredis.Redis
    metrics: Metrics
    oa: WeChatClient
    miniapp: WeChatClient
    queue: JobQueue
    merchant_settings: MerchantSettings
    sealer: Sealer
    notifications: NotificationService
    members: MemberService
    relations: RelationService
    sessions: SessionService
    identity: IdentityService
    applications: ApplicationService
    posters: PosterService
    ledger: LedgerService
    grades: GradeService
    stats: StatsService
    dashboard: DashboardService
    commissions: CommissionService
    statements: StatementService
    orders: OrderService
    withdrawals: WithdrawalService
    transactions: Transactions | None  # None: WeChat Pay is not configured
    refunds: Refunds | None
    share_links: ShareLinkService
    staff: StaffService
    audit: AuditLog
    exports: ExportService
    finance: FinanceService
    tax: TaxService
    finance_exports: FinanceExports
    chat: ChatService
    oa_menu: OaMenuService
    catalogue: CatalogueService
    checkout: CheckoutService
    agreements: AgreementService
    data_rights: DataRightsService
    limits: RateLimitService
    risk: RiskService
    risk_review: RiskReview

    async def store_health(self) -> dict[str, str]:
        return await check_stores(self.db, self.redis)

    async def worker_health(self) -> tuple[str, QueueStatus | None]:
        return await check_worker(self.queue, self.settings.worker_stale_seconds)
