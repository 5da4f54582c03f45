"""The application factory: the route table and the Tornado application."""

from __future__ import annotations

from functools import cache
from typing import Any

import tornado.web
from tornado.httpserver import HTTPServer

from bot.push_handler import PushDoor, WeChatPushHandler, push_door
from distribution.share_links import BIND_SUFFIX, SHARE_PATH
from handlers.agreements import AgreementsHandler
from handlers.applications import ApplicationDecisionHandler, ApplicationsHandler
from handlers.console.routes import PAGE_ROUTES as CONSOLE_ROUTES, STATIC_ROUTES as CONSOLE_STATIC_ROUTES
from handlers.deletions import DeletionProcessHandler, DeletionsHandler
from handlers.finance import ROUTES as FINANCE_ROUTES
from handlers.health import HealthHandler, MetricsHandler
from handlers.merchant import MemberHandler, MemberSearchHandler
from handlers.merchant_settings import SETTINGS_ROUTES, UNKNOWN_SETTINGS_ROUTE
from handlers.oa_menu import ROUTES as OA_MENU_ROUTES
from handlers.orders import CommissionsHandler, OrderEventsHandler, OrderHandler, OrderRefundsHandler, OrdersHandler
from handlers.posters import BackgroundHandler, BackgroundsHandler, MemberPosterHandler
from handlers.products import ROUTES as PRODUCT_ROUTES
from handlers.relations import (BindLogHandler, FreezeHandler, GradeHandler, TeamHandler, UnfreezeHandler,
                                UplineHandler)
from handlers.risk import RiskFlagDecisionHandler, RiskFlagsHandler
from handlers.share_links import ShareBindHandler, ShareLinkHandler
from handlers.statements import ROUTES as STATEMENT_ROUTES
from handlers.stats import OverviewHandler, PromoterStatsHandler
from handlers.wechatpay_notify import PaymentNotifyHandler, RefundNotifyHandler, TransferNotifyHandler
from handlers.withdrawals import (
    BankAccountHandler,
    MarkBankFailedHandler,
    MarkBankPaidHandler,
    WithdrawalDecisionHandler,
    WithdrawalsHandler,
)
from miniapp_api.agreement import AcceptAgreementHandler, AgreementHandler
from miniapp_api.applications import PromoterApplicationHandler
from miniapp_api.data_rights import MyDeletionHandler, MyExportHandler
from miniapp_api.me import MeHandler, MyTeamHandler
from miniapp_api.money import MyCommissionsHandler, MyLedgerHandler
from miniapp_api.orders import ConfirmOrderHandler, MyOrderHandler, MyOrdersHandler, PayOrderHandler
from miniapp_api.posters import MyPosterHandler
from miniapp_api.products import ROUTES as SHOP_ROUTES
from miniapp_api.session import SessionHandler
from miniapp_api.statements import MyStatementsHandler
from miniapp_api.subscriptions import SubscriptionsHandler
from miniapp_api.withdrawals import CancelWithdrawalHandler, MyWithdrawalHandler, MyWithdrawalsHandler
from services.runtime import Runtime
from web.base import NotFoundHandler
from web.docs import docs_routes
from web.openapi import OpenApiHandler, build_document
from wechatpay import PAYMENT_NOTIFY_PATH, REFUND_NOTIFY_PATH, TRANSFER_NOTIFY_PATH

MEMBER_ID = r"(?P<member_id>[^/]+)"
# Tornado refuses a chunk of a body that would take it past its limit before the handler sees any of it, with
# a bare 400. This much above the largest a handler takes, a chunk of up to this size that crosses a handler's
# own limit reaches the handler, which answers 413 and closes the connection.
BODY_SLACK_BYTES = 1024 * 1024

API_ROUTES: list[tuple[str, type[tornado.web.RequestHandler]]] = [
    (r"/api/v1/session", SessionHandler),
    (r"/api/v1/me", MeHandler),
    (r"/api/v1/me/export", MyExportHandler),
    (r"/api/v1/me/deletion", MyDeletionHandler),
    (r"/api/v1/agreement", AgreementHandler),
    (r"/api/v1/agreement/accept", AcceptAgreementHandler),
    (r"/api/merchant/v1/agreements", AgreementsHandler),
    (r"/api/merchant/v1/deletions", DeletionsHandler),
    (rf"/api/merchant/v1/deletions/{MEMBER_ID}/process", DeletionProcessHandler),
    (r"/api/v1/team", MyTeamHandler),
    (r"/api/v1/promoter-application", PromoterApplicationHandler),
    (r"/api/v1/subscriptions", SubscriptionsHandler),
    (r"/api/v1/commissions", MyCommissionsHandler),
    (r"/api/v1/ledger", MyLedgerHandler),
    (r"/api/v1/me/statements", MyStatementsHandler),
    (r"/api/v1/withdrawals", MyWithdrawalsHandler),
    (r"/api/v1/withdrawals/(?P<withdrawal_id>[^/]+)", MyWithdrawalHandler),
    (r"/api/v1/withdrawals/(?P<withdrawal_id>[^/]+)/cancel", CancelWithdrawalHandler),
    (r"/api/merchant/v1/withdrawals", WithdrawalsHandler),
    (r"/api/merchant/v1/withdrawals/(?P<withdrawal_id>[^/]+)/(?P<decision>approve|reject)", WithdrawalDecisionHandler),
    (r"/api/merchant/v1/withdrawals/(?P<withdrawal_id>[^/]+)/bank-account", BankAccountHandler),
    (r"/api/merchant/v1/withdrawals/(?P<withdrawal_id>[^/]+)/mark-paid", MarkBankPaidHandler),
    (r"/api/merchant/v1/withdrawals/(?P<withdrawal_id>[^/]+)/mark-failed", MarkBankFailedHandler),
    (r"/api/merchant/v1/risk/flags", RiskFlagsHandler),
    (r"/api/merchant/v1/risk/flags/(?P<flag_id>[^/]+)/(?P<decision>clear|void)", RiskFlagDecisionHandler),
    (r"/api/merchant/v1/applications", ApplicationsHandler),
    (r"/api/merchant/v1/applications/(?P<application_id>[^/]+)/(?P<decision>approve|reject)", ApplicationDecisionHandler),
    (r"/api/merchant/v1/members", MemberSearchHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}", MemberHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/team", TeamHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/binds", BindLogHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/upline", UplineHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/freeze", FreezeHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/unfreeze", UnfreezeHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/grade", GradeHandler),
    *SETTINGS_ROUTES,
    *OA_MENU_ROUTES,
    (r"/api/v1/poster", MyPosterHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/poster", MemberPosterHandler),
    (r"/api/merchant/v1/posters/backgrounds", BackgroundsHandler),
    (r"/api/merchant/v1/posters/backgrounds/(?P<background_id>[0-9a-f]{24})", BackgroundHandler),
    (r"/api/merchant/v1/orders", OrdersHandler),
    (r"/api/merchant/v1/orders/(?P<order_no>[^/]+)", OrderHandler),
    (r"/api/merchant/v1/orders/(?P<order_no>[^/]+)/events", OrderEventsHandler),
    (r"/api/merchant/v1/orders/(?P<order_no>[^/]+)/refunds", OrderRefundsHandler),
    (r"/api/v1/orders", MyOrdersHandler),
    (r"/api/v1/orders/(?P<order_no>[^/]+)", MyOrderHandler),
    (r"/api/v1/orders/(?P<order_no>[^/]+)/pay", PayOrderHandler),
    (r"/api/v1/orders/(?P<order_no>[^/]+)/confirm", ConfirmOrderHandler),
    (r"/api/merchant/v1/commissions", CommissionsHandler),
    *STATEMENT_ROUTES,
    (r"/api/merchant/v1/stats/promoters", PromoterStatsHandler),
    (r"/api/merchant/v1/stats/overview", OverviewHandler),
    *SHOP_ROUTES,
    *PRODUCT_ROUTES,
    *FINANCE_ROUTES,
]

# The H5 share link's pages, opened by browsers: HTML, not the JSON API, so not in /openapi.json.
PAGE_ROUTES: list[tuple[str, type[tornado.web.RequestHandler]]] = [
    (rf"{SHARE_PATH}{MEMBER_ID}", ShareLinkHandler),
    (rf"{SHARE_PATH}{MEMBER_ID}{BIND_SUFFIX}", ShareBindHandler),
]


@cache
def api_document() -> dict:
    """The OpenAPI document of `API_ROUTES`, built once per process: half a second of pydantic's schema work,
    and the routes never change while it runs."""
    return build_document(API_ROUTES)


def make_app(runtime: Runtime, door: PushDoor | None = None) -> tornado.web.Application:
    with_runtime = {"runtime": runtime}
    routes = [
        (r"/wechat", WeChatPushHandler, {**with_runtime, "door": door or push_door(runtime)}),
        # WeChat Pay's callbacks: not the JSON API
        (TRANSFER_NOTIFY_PATH, TransferNotifyHandler, with_runtime),
        (PAYMENT_NOTIFY_PATH, PaymentNotifyHandler, with_runtime),
        (REFUND_NOTIFY_PATH, RefundNotifyHandler, with_runtime),
        (r"/healthz", HealthHandler, with_runtime),
        (r"/metrics", MetricsHandler, with_runtime),
        (r"/openapi.json", OpenApiHandler, {"document": api_document()}),
        *docs_routes(),
        *CONSOLE_STATIC_ROUTES,
        *((pattern, handler, with_runtime)
          for pattern, handler in [*API_ROUTES, UNKNOWN_SETTINGS_ROUTE, *PAGE_ROUTES, *CONSOLE_ROUTES]),
    ]
    # /wechat takes pushes of up to MAX_PUSH_BYTES; every other handler declares what it takes.
    largest_body = max(runtime.settings.max_push_bytes, *(getattr(route[1], "max_body_bytes", 0) for route in routes))
    return Application(
        routes,
        max_body_bytes=largest_body + BODY_SLACK_BYTES,
        default_handler_class=NotFoundHandler,
        default_handler_args=with_runtime,
        log_function=_quiet_access_log,
    )


class Application(tornado.web.Application):
    """Serves with Tornado's own body limit (100 MB unless told) just above the largest body any endpoint takes:
    a handler that reads its body whole before it runs holds no more than that."""

    def __init__(self, routes: list, max_body_bytes: int, **settings: Any):
        super().__init__(routes, **settings)
        self.max_body_bytes = max_body_bytes

    def listen(self, port: int, address: str | None = None, **kwargs: Any) -> HTTPServer:  # type: ignore[override]
        return super().listen(port, address, **{"max_body_size": self.max_body_bytes, **kwargs})


def _quiet_access_log(handler: tornado.web.RequestHandler) -> None:
    # Per-request lines would cost the push path more than the push itself; /metrics counts them.
    status = handler.get_status()
    if status >= 500:
        # Method and path only: the query string carries openids, signatures and tokens.
        tornado.web.app_log.error("%d %s %s %.1fms", status, handler.request.method, handler.request.path,
                                  1000 * handler.request.request_time())
