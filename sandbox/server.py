"""The sandbox as a Tornado app, and starting it on a port."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

from .control import CallsControl, ExpireTokensControl, FaultsControl, RiskRanksControl
from .pay import (
    BILLS,
    CERTIFICATES_ENDPOINT,
    REFUNDS,
    TRANSACTIONS,
    CancelTransferBillHandler,
    CertificatesHandler,
    CloseTransactionHandler,
    JsapiTransactionsHandler,
    RefundControl,
    RefundHandler,
    RefundsHandler,
    TransactionControl,
    TransactionHandler,
    TransferBillControl,
    TransferBillHandler,
    TransferBillsHandler,
)
from .request_log import log_request
from .state import SandboxState
from .wechat_handler import WeChatApiHandler

_WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def make_sandbox_app(state: SandboxState) -> Application:
    handler_args = {"state": state}
    return Application(
        [
            (r"/_sandbox/calls", CallsControl, handler_args),
            (r"/_sandbox/faults", FaultsControl, handler_args),
            (r"/_sandbox/tokens/expire", ExpireTokensControl, handler_args),
            (r"/_sandbox/risk-ranks", RiskRanksControl, handler_args),
            (r"/_sandbox/transfer-bills/([^/]+)/(confirm|cancel|fail)", TransferBillControl, handler_args),
            (rf"/{BILLS}", TransferBillsHandler, handler_args),
            (rf"/{BILLS}/out-bill-no/([^/]+)", TransferBillHandler, handler_args),
            (rf"/{BILLS}/out-bill-no/([^/]+)/cancel", CancelTransferBillHandler, handler_args),
            (rf"/{CERTIFICATES_ENDPOINT}", CertificatesHandler, handler_args),
            (r"/_sandbox/pay/([^/]+)/pay", TransactionControl, handler_args),
            (r"/_sandbox/refunds/([^/]+)/(succeed|close|abnormal)", RefundControl, handler_args),
            (rf"/{TRANSACTIONS}/jsapi", JsapiTransactionsHandler, handler_args),
            (rf"/{TRANSACTIONS}/out-trade-no/([^/]+)", TransactionHandler, handler_args),
            (rf"/{TRANSACTIONS}/out-trade-no/([^/]+)/close", CloseTransactionHandler, handler_args),
            (rf"/{REFUNDS}", RefundsHandler, handler_args),
            (rf"/{REFUNDS}/([^/]+)", RefundHandler, handler_args),
            (r"/(.+)", WeChatApiHandler, handler_args),
        ],
        log_function=log_request,
    )


class RunningSandbox(NamedTuple):
    server: HTTPServer
    state: SandboxState
    base_url: str  # what WECHAT_API_BASE points at

    async def stop(self, grace_seconds: float = 10) -> None:
        """Stop listening and close the connections; a request still waiting is cut off after the grace. WeChat
        Pay's callbacks still on their way are delivered (or fail) first."""
        await self.state.pay.settle()
        self.server.stop()
        try:
            await asyncio.wait_for(self.server.close_all_connections(), grace_seconds)
        except asyncio.TimeoutError:
            pass


async def start_sandbox(host: str = "127.0.0.1", port: int = 0, state: SandboxState | None = None) -> RunningSandbox:
    """Serve the sandbox on the running loop; port 0 picks a free port."""
    state = state if state is not None else SandboxState()
    sockets = bind_sockets(port, host)
    server = HTTPServer(make_sandbox_app(state))
    server.add_sockets(sockets)
    bound_port = sockets[0].getsockname()[1]
    return RunningSandbox(server, state, f"http://{_url_host(host)}:{bound_port}")


def _url_host(host: str) -> str:
    if host in _WILDCARD_HOSTS:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
