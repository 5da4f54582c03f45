"""What the console exports: members, orders, commissions, ledger entries, withdrawals and the promoters'
daily stats, each as rows under one header, a batch at a time.

Each export reads its list newest first in batches (`stores.exports`), adds to each batch what a row shows
beside the document (nicknames, balances: read by id, per batch), and turns the batch into rows of
cells (`services.export_files`). Memory holds a batch, however long the list.

What leaves the shop: ids, nicknames, phones masked (138****5678), amounts, statuses and times. Never an
openid, a unionid, a sealed field (bank details, real names, phones) or a payee: an export is a file that gets
mailed around.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from itertools import islice
from typing import Any, Awaitable

from pymongo.asynchronous.database import AsyncDatabase

from distribution.binding import BindSource, PromoterStatus
from distribution.calendar import CHINA
from distribution.chat import level_words
from distribution.ledger import Bucket, EntryKind
from distribution.orders import OrderStatus
from distribution.stats import day_range
from distribution.withdrawals import WithdrawalMethod, WithdrawalStatus
from services.commissions import CommissionStatus, remaining_fen
from services.export_files import Cell, Column
from services.orders import OrderFilter
from services.sealing import Sealer, mask_phone
from stores.exports import ExportStore
from stores.members import order_totals

BATCH = 1000
NICKNAMES_KEPT = 10_000
DEFAULT_STATS_DAYS = 30

LABELS: dict[type[StrEnum], dict[str, str]] = {
    PromoterStatus: {"none": "普通会员", "pending": "申请中", "approved": "推广员", "rejected": "申请被拒",
                     "appointed": "指定推广员"},
    BindSource: {"oa_scan": "公众号扫码", "miniapp_scene": "小程序码", "share_link": "分享链接", "admin": "后台改绑"},
    OrderStatus: {"created": "待支付", "paid": "已支付", "confirmed": "已确认收货", "refunded": "已退款",
                  "closed": "已关闭"},
    CommissionStatus: {"frozen": "冻结中", "settled": "已结算", "cancelled": "已取消", "clawed_back": "已追回"},
    Bucket: {"frozen": "冻结", "available": "可提现", "locked": "提现中"},
    EntryKind: {"commission_frozen": "佣金入账（冻结）", "commission_settled": "佣金结算", "commission_cancelled": "佣金取消",
                "commission_clawback": "佣金追回", "withdrawal_locked": "提现锁定", "withdrawal_paid": "提现打款",
                "withdrawal_fee": "提现手续费", "withdrawal_unlocked": "提现退回"},
    WithdrawalMethod: {"wechat_balance": "微信零钱", "bank": "银行卡"},
    WithdrawalStatus: {"requested": "已申请", "pending_review": "待审核", "approved": "已通过",
                       "waiting_user_confirm": "待用户确认收款", "transferring": "转账中", "cancelling": "撤销中",
                       "paid": "已打款", "rejected": "已驳回", "failed": "打款失败", "returned": "已退回",
                       "cancelled": "已取消"},
}


def label(kind: type[StrEnum], value: str | None) -> str:
    """A stored status in Chinese; a value this version has no word for stays as stored."""
    return LABELS[kind].get(value, value) if value else ""


def _field(name: str) -> Callable[[dict], Any]:
    return lambda document: document.get(name)


def _counter(name: str) -> Callable[[dict], int]:
    """A counter: absent until it first counts."""
    return lambda document: document.get(name) or 0


def _labelled(name: str, kind: type[StrEnum]) -> Callable[[dict], Any]:
    return lambda document: label(kind, document.get(name))


def _yes_no(name: str) -> Callable[[dict], str]:
    return lambda document: "是" if document.get(name) else "否"


MEMBER = "_member"  # what a batch's lookups add to a document: the member it names (nickname)
ACCOUNT = "_account"  # the member's balances (`stores.ledger` accounts)


def _nickname(document: dict) -> str | None:
    return document[MEMBER].get("nickname")


def _balance(bucket: Bucket) -> Callable[[dict], int]:
    return lambda document: int(document[ACCOUNT].get(f"{bucket.value}_fen", 0))


MEMBER_COLUMNS = (
    Column("会员ID", _field("_id")),
    Column("昵称", _field("nickname")),
    Column("手机号（脱敏）", _field("phone")),
    Column("推广员状态", _labelled("promoter_status", PromoterStatus)),
    Column("等级", _field("grade")),
    Column("已冻结", _yes_no("frozen")),
    Column("上级ID", _field("upline_id")),
    Column("上级昵称", _nickname),
    Column("绑定方式", _labelled("bind_source", BindSource)),
    Column("绑定时间", _field("bound_at"), Cell.TIME),
    Column("直属人数", _counter("direct_count"), Cell.COUNT),
    Column("团队人数", _counter("team_count"), Cell.COUNT),
    Column("购买订单数", _counter("order_count"), Cell.COUNT),
    Column("购买金额（元）", _counter("order_fen"), Cell.YUAN),
    Column("冻结佣金（元）", _balance(Bucket.FROZEN), Cell.YUAN),
    Column("可提现（元）", _balance(Bucket.AVAILABLE), Cell.YUAN),
    Column("提现中（元）", _balance(Bucket.LOCKED), Cell.YUAN),
    Column("加入时间", _field("created_at"), Cell.TIME),
)

ORDER_COLUMNS = (
    Column("订单号", _field("_id")),
    Column("状态", _labelled("status", OrderStatus)),
    Column("买家ID", _field("buyer_id")),
    Column("买家昵称", _nickname),
    Column("一级推广员ID", lambda order: next(iter(order.get("upline_chain") or []), None)),
    Column("推广链（由近及远）", lambda order: " > ".join(order.get("upline_chain") or [])),
    Column("商品", lambda order: "；".join(f"{item['title']}（{item['sku']}）×{item['qty']}" for item in order["items"])),
    Column("实付金额（元）", _field("total_fen"), Cell.YUAN),
    Column("已退款（元）", _field("refunded_fen"), Cell.YUAN),
    Column("佣金合计（元）", _field("commission_fen"), Cell.YUAN),
    Column("下单时间", _field("created_at"), Cell.TIME),
    Column("支付时间", _field("paid_at"), Cell.TIME),
    Column("确认收货时间", _field("confirmed_at"), Cell.TIME),
    Column("关闭时间", _field("closed_at"), Cell.TIME),
)

COMMISSION_COLUMNS = (
    Column("佣金ID", _field("_id")),
    Column("订单号", _field("order_no")),
    Column("商品SKU", _field("sku")),
    Column("推广员ID", _field("beneficiary_id")),
    Column("推广员昵称", _nickname),
    Column("层级", lambda commission: level_words(commission["level"], commission.get("reward"))),
    Column("状态", _labelled("status", CommissionStatus)),
    Column("佣金（元）", _field("amount_fen"), Cell.YUAN),
    Column("已取消（元）", _field("cancelled_fen"), Cell.YUAN),
    Column("已追回（元）", _field("clawed_back_fen"), Cell.YUAN),
    Column("净佣金（元）", remaining_fen, Cell.YUAN),
    Column("商品实付（元）", _field("item_paid_fen"), Cell.YUAN),
    Column("商品退款（元）", _field("refunded_fen"), Cell.YUAN),
    Column("产生时间", _field("created_at"), Cell.TIME),
    Column("解冻时间", _field("unfreeze_at"), Cell.TIME),
    Column("结算时间", _field("settled_at"), Cell.TIME),
)

LEDGER_COLUMNS = (
    Column("流水ID", _field("_id")),
    Column("推广员ID", _field("account_id")),
    Column("推广员昵称", _nickname),
    Column("账户", _labelled("bucket", Bucket)),
    Column("类型", _labelled("kind", EntryKind)),
    Column("金额（元）", _field("amount_fen"), Cell.YUAN),
    Column("关联单号", _field("ref")),
    Column("时间", _field("at"), Cell.TIME),
)

WITHDRAWAL_COLUMNS = (
    Column("提现单号", _field("_id")),
    Column("推广员ID", _field("member_id")),
    Column("推广员昵称", _nickname),
    Column("方式", _labelled("method", WithdrawalMethod)),
    Column("状态", _labelled("status", WithdrawalStatus)),
    Column("提现金额（元）", _field("amount_fen"), Cell.YUAN),
    Column("手续费（元）", _field("fee_fen"), Cell.YUAN),
    Column("到账金额（元）", _field("net_fen"), Cell.YUAN),
    Column("微信转账单号", _field("transfer_bill_no")),
    Column("银行转账凭证号", _field("reference")),
    Column("备注", _field("note")),
    Column("申请时间", _field("created_at"), Cell.TIME),
    Column("更新时间", _field("updated_at"), Cell.TIME),
)

DAILY_STATS_COLUMNS = (
    Column("日期", _field("day")),
    Column("推广员ID", _field("member_id")),
    Column("推广员昵称", _nickname),
    Column("订单数", _counter("orders"), Cell.COUNT),
    Column("销售额（元）", _counter("paid_fen"), Cell.YUAN),
    Column("佣金（元）", _counter("commission_fen"), Cell.YUAN),
    Column("退回佣金（元）", _counter("commission_reversed_fen"), Cell.YUAN),
    Column("净佣金（元）", lambda day: day.get("commission_fen", 0) - day.get("commission_reversed_fen", 0), Cell.YUAN),
    Column("退款（元）", _counter("refunded_fen"), Cell.YUAN),
    Column("新增直属", _counter("new_direct_members"), Cell.COUNT),
    Column("扫码次数", _counter("scans"), Cell.COUNT),
    Column("链接访问", _counter("visits"), Cell.COUNT),
    Column("首单买家", _counter("buyers"), Cell.COUNT),
    Column("直推销售额（元）", _counter("sales_fen"), Cell.YUAN),
)


@dataclass(frozen=True)
class Export:
    """One export: its name (the file's), its columns and its rows, a batch at a time (read as they are asked
    for; close `rows` when stopping early)."""

    name: str
    columns: Sequence[Column]
    rows: AsyncIterator[list[list[Any]]]


class ExportService:
    def __init__(self, db: AsyncDatabase, sealer: Sealer, batch: int = BATCH):
        self.store = ExportStore(db)
        self.sealer = sealer
        self.batch = batch

    def members(self, promoter_status: str | None = None, frozen: bool | None = None, grade: str | None = None,
                first_day: date | None = None, last_day: date | None = None) -> Export:
        """Members newest first by when they joined (China days `first_day` to `last_day`), filtered as the
        member search filters them."""
        documents = self.store.members(promoter_status, frozen, grade, first_day, last_day, self.batch)
        return Export("members", MEMBER_COLUMNS, self._rows(documents, MEMBER_COLUMNS, self._member_lookups()))

    def orders(self, selected: OrderFilter) -> Export:
        """Orders newest first by when they were created, the ones the orders list shows for `selected`."""
        documents = self.store.orders(selected.status, selected.promoter_id, selected.direct, selected.order_no,
                                      selected.created_from, selected.created_before, self.batch)
        return Export("orders", ORDER_COLUMNS, self._rows(documents, ORDER_COLUMNS, self._named("buyer_id")))

    def commissions(self, status: str | None = None, member_id: str | None = None, order_no: str | None = None,
                    first_day: date | None = None, last_day: date | None = None) -> Export:
        documents = self.store.commissions(status, member_id, order_no, first_day, last_day, self.batch)
        return Export("commissions", COMMISSION_COLUMNS,
                      self._rows(documents, COMMISSION_COLUMNS, self._named("beneficiary_id")))

    def ledger(self, member_id: str | None = None, first_day: date | None = None,
               last_day: date | None = None) -> Export:
        documents = self.store.ledger(member_id, first_day, last_day, self.batch)
        return Export("ledger", LEDGER_COLUMNS, self._rows(documents, LEDGER_COLUMNS, self._named("account_id")))

    def withdrawals(self, status: str | None = None, member_id: str | None = None, first_day: date | None = None,
                    last_day: date | None = None) -> Export:
        documents = self.store.withdrawals(status, member_id, first_day, last_day, self.batch)
        return Export("withdrawals", WITHDRAWAL_COLUMNS,
                      self._rows(documents, WITHDRAWAL_COLUMNS, self._named("member_id")))

    def daily_stats(self, member_id: str | None = None, first_day: date | None = None,
                    last_day: date | None = None) -> Export:
        """Each promoter's counters per China day, newest day first: the last `DEFAULT_STATS_DAYS` days unless
        told (a range as the stats take it: `distribution.stats.day_range`)."""
        days = day_range(first_day, last_day, None, datetime.now(CHINA).date(), DEFAULT_STATS_DAYS)
        documents = self.store.promoter_days(member_id, days.first, days.last, self.batch)
        return Export("daily_stats", DAILY_STATS_COLUMNS,
                      self._rows(documents, DAILY_STATS_COLUMNS, self._named("member_id")))

    @staticmethod
    async def _rows(documents: AsyncIterator[list[dict]], columns: Sequence[Column],
                    look_up: Callable[[list[dict]], Awaitable[None]]) -> AsyncIterator[list[list[Any]]]:
        try:
            async for batch in documents:
                await look_up(batch)
                rows = [[column.value(document) for column in columns] for document in batch]
                batch.clear()  # the documents go once they are rows, not when the next batch replaces them
                yield rows
        finally:
            await documents.aclose()

    def _named(self, member_field: str) -> Callable[[list[dict]], Awaitable[None]]:
        """Adds to each document of a batch the member its `member_field` names."""
        nicknames = self._nicknames()

        async def look_up(batch: list[dict]) -> None:
            named = await nicknames({document.get(member_field) for document in batch} - {None})
            for document in batch:
                document[MEMBER] = {"nickname": named.get(document.get(member_field))}

        return look_up

    def _member_lookups(self) -> Callable[[list[dict]], Awaitable[None]]:
        """Adds to each member of a batch its order totals, its upline's nickname, its balances and its masked
        phone."""
        nicknames = self._nicknames()

        async def look_up(batch: list[dict]) -> None:
            member_ids = {member["_id"] for member in batch}
            uplines = await nicknames({member.get("upline_id") for member in batch} - {None})
            accounts = await self.store.balances(member_ids)
            buyer_totals = await self.store.buyer_totals(member_ids)
            for member in batch:
                member.update(order_totals(member, buyer_totals.get(member["_id"])))
                member[MEMBER] = {"nickname": uplines.get(member.get("upline_id"))}
                member[ACCOUNT] = accounts.get(member["_id"], {})
                member["phone"] = self._masked_phone(member.get("phone_sealed"))

        return look_up

    def _nicknames(self) -> Callable[[set[str]], Awaitable[dict[str, str | None]]]:
        """Nicknames by member id, the latest `NICKNAMES_KEPT` kept for the export's next batches: the same
        promoters come back batch after batch."""
        kept: dict[str, str | None] = {}

        async def nicknames(member_ids: set[str]) -> dict[str, str | None]:
            missing = member_ids - kept.keys()
            if missing:
                found = await self.store.nicknames(missing)
                kept.update((member_id, found.get(member_id)) for member_id in missing)
                for oldest in list(islice(kept, max(len(kept) - NICKNAMES_KEPT, 0))):
                    del kept[oldest]
            return {member_id: kept.get(member_id) for member_id in member_ids}

        return nicknames

    def _masked_phone(self, sealed: str | None) -> str | None:
        if not sealed:
            return None
        try:
            return mask_phone(self.sealer.open(sealed))
        except ValueError:  # sealed under a key this deployment no longer has
            return None
