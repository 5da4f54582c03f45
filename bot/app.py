"""The application factory: the route table and the Tornado application."""

from __future__ import annotations

import tornado.web

from bot.conversation import build_router
from bot.dedup import PushDeduplicator
from bot.push_codec import PushCodec
from bot.push_handler import PushDoor, WeChatPushHandler
from distribution.share_links import BIND_SUFFIX, SHARE_PATH
from handlers.applications import ApplicationDecisionHandler, ApplicationsHandler
from handlers.health import HealthHandler, MetricsHandler
from handlers.merchant import MemberHandler, MemberLookupHandler
from handlers.merchant_settings import SETTINGS_ROUTES, UNKNOWN_SETTINGS_ROUTE
from handlers.orders import CommissionsHandler, OrderEventsHandler, OrderHandler, OrdersHandler
from handlers.posters import BackgroundHandler, BackgroundsHandler, MemberPosterHandler
from handlers.relations import BindLogHandler, FreezeHandler, TeamHandler, UnfreezeHandler, UplineHandler
from handlers.share_links import ShareBindHandler, ShareLinkHandler
from handlers.stats import PromoterStatsHandler
from handlers.withdrawals import WithdrawalDecisionHandler, WithdrawalsHandler
from miniapp_api.applications import PromoterApplicationHandler
from miniapp_api.me import MeHandler, MyTeamHandler
from miniapp_api.money import MyCommissionsHandler, MyLedgerHandler
from miniapp_api.posters import MyPosterHandler
from miniapp_api.session import SessionHandler
from miniapp_api.subscriptions import SubscriptionsHandler
from miniapp_api.withdrawals import CancelWithdrawalHandler, MyWithdrawalsHandler
from services.runtime import Runtime
from web.base import NotFoundHandler
from web.docs import docs_routes
from web.openapi import OpenApiHandler, build_document

MEMBER_ID = r"(?P<member_id>[^/]+)"

API_ROUTES: list[tuple[str, type[tornado.web.RequestHandler]]] = [
    (r"/api/v1/session", SessionHandler),
    (r"/api/v1/me", MeHandler),
    (r"/api/v1/team", MyTeamHandler),
    (r"/api/v1/promoter-application", PromoterApplicationHandler),
    (r"/api/v1/subscriptions", SubscriptionsHandler),
    (r"/api/v1/commissions", MyCommissionsHandler),
    (r"/api/v1/ledger", MyLedgerHandler),
    (r"/api/v1/withdrawals", MyWithdrawalsHandler),
    (r"/api/v1/withdrawals/(?P<withdrawal_id>[^/]+)/cancel", CancelWithdrawalHandler),
    (r"/api/merchant/v1/withdrawals", WithdrawalsHandler),
    (r"/api/merchant/v1/withdrawals/(?P<withdrawal_id>[^/]+)/(?P<decision>approve|reject)", WithdrawalDecisionHandler),
    (r"/api/merchant/v1/applications", ApplicationsHandler),
    (r"/api/merchant/v1/applications/(?P<application_id>[^/]+)/(?P<decision>approve|reject)", ApplicationDecisionHandler),
    (r"/api/merchant/v1/members", MemberLookupHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}", MemberHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/team", TeamHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/binds", BindLogHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/upline", UplineHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/freeze", FreezeHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/unfreeze", UnfreezeHandler),
    *SETTINGS_ROUTES,
    (r"/api/v1/poster", MyPosterHandler),
    (rf"/api/merchant/v1/members/{MEMBER_ID}/poster", MemberPosterHandler),
    (r"/api/merchant/v1/posters/backgrounds", BackgroundsHandler),
    (r"/api/merchant/v1/posters/backgrounds/(?P<background_id>[0-9a-f]{24})", BackgroundHandler),
    (r"/api/merchant/v1/orders", OrdersHandler),
    (r"/api/merchant/v1/orders/(?P<order_no>[^/]+)", OrderHandler),
    (r"/api/merchant/v1/orders/(?P<order_no>[^/]+)/events", OrderEventsHandler),
    (r"/api/merchant/v1/commissions", CommissionsHandler),
    (r"/api/merchant/v1/stats/promoters", PromoterStatsHandler),
]

# The H5 share link's pages, opened by browsers: HTML, not the JSON API, so not in /openapi.json.
PAGE_ROUTES: list[tuple[str, type[tornado.web.RequestHandler]]] = [
    (rf"{SHARE_PATH}{MEMBER_ID}", ShareLinkHandler),
    (rf"{SHARE_PATH}{MEMBER_ID}{BIND_SUFFIX}", ShareBindHandler),
]


def push_door(runtime: Runtime) -> PushDoor:
    settings = runtime.settings
    return PushDoor(
        codec=PushCodec(settings.wechat_token, settings.wechat_app_id, settings.wechat_aes_key),
        router=build_router(),
        dedup=PushDeduplicator(runtime.redis, settings.redis_prefix, settings.push_dedup_seconds),
    )


def make_app(runtime: Runtime, door: PushDoor | None = None) -> tornado.web.Application:
    with_runtime = {"runtime": runtime}
    routes = [
        (r"/wechat", WeChatPushHandler, {**with_runtime, "door": door or push_door(runtime)}),
        (r"/healthz", HealthHandler, with_runtime),
        (r"/metrics", MetricsHandler, with_runtime),
        (r"/openapi.json", OpenApiHandler, {"document": build_document(API_ROUTES)}),
        *docs_routes(),
        *((pattern, handler, with_runtime) for pattern, handler in [*API_ROUTES, UNKNOWN_SETTINGS_ROUTE, *PAGE_ROUTES]),
    ]
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=with_runtime,
        log_function=_quiet_access_log,
    )


def _quiet_access_log(handler: tornado.web.RequestHandler) -> None:
    # Per-request lines would cost the push path more than the push itself; /metrics counts them.
    status = handler.get_status()
    if status >= 500:
        tornado.web.app_log.error("%d %s %.1fms", status, handler._request_summary(), 1000 * handler.request.request_time())
