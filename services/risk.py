"""Risk signals, computed when their event happens and recorded as flags with their evidence.

The rules and their decisions are the domain's (`distribution.risk`); this module gathers the evidence with
few reads and plans the flags and what their actions do into the step's own `WriteSet`:

- a payment's commissions (`on_commissions`, from the order service when it posts them): self-referral and
  commission spikes, read with one `$in` on the buyer and the beneficiaries and one on their daily stats (none
  when no rule that needs them is on); a hold marks the commissions `held_by` the flag, a reject leaves them
  unposted;
- a refund (`on_refund`): the direct promoter's refund rate over the window;
- a bind (`on_bind`): binds to one promoter from one device or address, one Redis round trip;
- a withdrawal request (`withdrawal_holds`): the caps, the unlinked-buyer minimum, open holds on the
  promoter, and on a first withdrawal WeChat's risk rank.

A flag is unique per rule and subject: an event seen again adds its commissions to the flag raised before
rather than raising another. Each new flag alerts the merchant's admins (`fraud_flag`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from distribution.calendar import china_day, china_time
from distribution.commission import CommissionLine
from distribution.risk import (
    RULE_NAMES,
    Action,
    BindVelocity,
    Identity,
    RiskSettings,
    Rule,
    Signal,
    WithdrawalEvidence,
    at_most_hold,
    bind_velocity,
    commission_spike,
    refund_rate,
    self_referral,
    wechat_risk_rank,
    withdrawal_holds,
)
from services.merchant_settings import MerchantSettings
from services.notifications import NotificationService
from services.sealing import Sealer
from stores.notifications import NOTIFICATIONS
from stores.orders import COMMISSIONS, commission_id
from stores.risk import RISK_FLAGS, RiskStore, add_to_flag, flag_document, hold_commissions
from stores.writes import WriteSet
from wechat import RiskScene, WeChatClient

log = logging.getLogger(__name__)

FRAUD_FLAG = "fraud_flag"
RISK_REFUSAL = "risk:"

# The user's openid in the mini-program and the address they act from -> WeChat's rank, or None (no signal).
RiskRank = Callable[[str, str], Awaitable[int | None]]


@dataclass(frozen=True)
class Origin:
    """Where an action comes from, as the client tells: its device id (the mini-program may send one) and its
    address."""

    device_id: str | None = None
    ip: str | None = None


def ranked_by_wechat(miniapp: WeChatClient) -> RiskRank:
    """WeChat's rank of a mini-program user for marketing fraud (营销作弊); None when it gives none in time."""
    async def rank(openid: str, ip: str) -> int | None:
        answer = await miniapp.risk.user_risk_rank(openid, RiskScene.MARKETING_FRAUD, ip)
        return answer.rank if answer is not None else None
    return rank


def refusal_reason(rule: Rule) -> str:
    return f"{RISK_REFUSAL}{rule.value}"


class RiskService:
    def __init__(self, store: RiskStore, merchant_settings: MerchantSettings, notifications: NotificationService,
                 sealer: Sealer, fingerprint_key: bytes, risk_rank: RiskRank | None = None):
        self.store = store
        self.merchant_settings = merchant_settings
        self.notifications = notifications
        self.sealer = sealer
        self._key = hashlib.sha256(b"risk-fingerprint:" + fingerprint_key).digest()
        self.risk_rank = risk_rank  # None: WeChat's rank is not asked

    def fingerprint(self, value: str) -> str:
        """A keyed hash: equal for equal values, and tells nothing of the value without the key."""
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:32]

    # --- logins ------------------------------------------------------------------------------------------------

    async def note_login(self, member: dict, device_id: str | None, ip: str | None) -> None:
        """Keep the device and address of the member's login, hashed; written only when they changed."""
        fields = {name: self.fingerprint(value) for name, value in (("device_hash", device_id),
                                                                    ("login_ip_hash", ip)) if value}
        if any(member.get(name) != value for name, value in fields.items()):
            await self.store.note_login(member["_id"], fields)

    # --- binds -------------------------------------------------------------------------------------------------

    async def on_bind(self, upline_id: str, member: dict, origin: Origin, now: datetime) -> str | None:
        """Check a bind of `member` to `upline_id` before it is decided: the binds from its device (else its
        address) to that promoter, one Redis round trip; for a member not bound yet who came through the
        mini-program, WeChat's rank of them. A firing rule is flagged; the refusal reason when it rejects."""
        settings = await self.merchant_settings.get(RiskSettings)
        signal = await self._velocity(settings.bind_velocity, upline_id, origin, now)
        if signal is None and not member.get("upline_id"):
            signal = await self._rank(settings, member, upline_id, f"bind:{member['_id']}:{upline_id}", origin.ip)
        if signal is None:
            return None
        await self.raise_flag(signal, now)
        return refusal_reason(signal.rule) if signal.rejects else None

    async def _velocity(self, settings: BindVelocity, upline_id: str, origin: Origin, now: datetime) -> Signal | None:
        where = origin.device_id or origin.ip
        if settings.action is Action.ALLOW or not where:
            return None
        where_hash = self.fingerprint(where)
        count = await self.store.count_bind(upline_id, where_hash, settings.window_seconds)
        window = int(now.timestamp()) // settings.window_seconds * settings.window_seconds
        return bind_velocity(settings, upline_id, where_hash, count, window)

    async def raise_flag(self, signal: Signal, now: datetime, **fields) -> str | None:
        """Record a flag outside any step (once per key) and alert the admins; its id when it is new."""
        document = flag_document(signal, now, **fields)
        if not await self.store.insert_once(document):
            return None
        await self.notifications.notify_admins(FRAUD_FLAG, f"{FRAUD_FLAG}:{document['_id']}",
                                               self._alert(signal, now), now)
        return document["_id"]

    # --- payments ----------------------------------------------------------------------------------------------

    async def on_commissions(self, order: dict, lines: Sequence[CommissionLine], at: datetime, now: datetime,
                             writes: WriteSet) -> list[CommissionLine]:
        """The commissions of `lines` the rules let be posted; flags and holds planned into `writes` (the step
        that posts them)."""
        settings = await self.merchant_settings.get(RiskSettings)
        beneficiaries = sorted({line.beneficiary_id for line in lines})
        if not beneficiaries:
            return list(lines)
        signals: list[Signal] = []
        if settings.self_referral.action is not Action.ALLOW and order.get("buyer_id"):
            signals += await self._self_referrals(settings, order, beneficiaries)
        if settings.commission_spike.action is not Action.ALLOW:
            signals += await self._spikes(settings, lines, at)
        if not signals:
            return list(lines)
        return await self._plan_commission_signals(order, lines, signals, now, writes)

    async def _self_referrals(self, settings: RiskSettings, order: dict, beneficiaries: list[str]) -> list[Signal]:
        buyer_id = order["buyer_id"]
        found = await self.store.identities([buyer_id, *beneficiaries])
        if buyer_id not in found:
            return []
        buyer = self._identity(found[buyer_id])
        payer = (order.get("checkout") or {}).get("payer_openid")
        return [signal for member_id in beneficiaries if member_id in found
                if (signal := self_referral(settings.self_referral, order["_id"], buyer,
                                            self._identity(found[member_id]), payer)) is not None]

    def _identity(self, member: dict) -> Identity:
        phone = None
        if member.get("phone_sealed"):
            try:
                phone = self.fingerprint(self.sealer.open(member["phone_sealed"]))
            except ValueError:
                log.warning("member %s: a phone sealed with another key", member["_id"])
        return Identity(member_id=member["_id"], upline_id=member.get("upline_id"), unionid=member.get("unionid"),
                        phone_hash=phone, device_hash=member.get("device_hash"),
                        login_ip_hash=member.get("login_ip_hash"),
                        openids=frozenset(filter(None, (member.get("oa_openid"), member.get("miniapp_openid")))))

    async def _spikes(self, settings: RiskSettings, lines: Sequence[CommissionLine], at: datetime) -> list[Signal]:
        spike = settings.commission_spike
        today = china_day(at)
        first = china_day(at - timedelta(days=spike.baseline_days))
        earned: dict[str, int] = {}
        for line in lines:
            earned[line.beneficiary_id] = earned.get(line.beneficiary_id, 0) + line.amount_fen
        days = await self.store.daily(sorted(earned), first, today)
        signals = []
        for member_id, fen in earned.items():
            counters = days.get(member_id, {})
            today_fen = counters.get(today, {}).get("commission_fen", 0) + fen
            baseline = [day.get("commission_fen", 0) for name, day in counters.items() if name != today]
            if (signal := commission_spike(spike, member_id, today, today_fen, baseline)) is not None:
                signals.append(signal)
        return signals

    async def _plan_commission_signals(self, order: dict, lines: Sequence[CommissionLine], signals: list[Signal],
                                       now: datetime, writes: WriteSet) -> list[CommissionLine]:
        existing = await self.store.existing_keys([signal.key for signal in signals])
        rejected_members = {signal.member_id for signal in signals if signal.rejects}
        for signal in signals:
            mine = [line for line in lines if line.beneficiary_id == signal.member_id]
            ids = [commission_id(order["_id"], line.item_index, line.level) for line in mine]
            rejected = [{"beneficiary_id": line.beneficiary_id, "item_index": line.item_index, "level": line.level,
                         "amount_fen": line.amount_fen} for line in mine] if signal.rejects else []
            held = ids if signal.holds and signal.member_id not in rejected_members else []
            flag_id = existing.get(signal.key)
            if flag_id is None:
                flag_id = self._plan_flag(signal, now, writes, held_commission_ids=held, rejected_commissions=rejected)
            else:
                writes.update(RISK_FLAGS, add_to_flag(signal.key, held, rejected, now))
            if held:
                writes.update(COMMISSIONS, hold_commissions([flag_id], held))
        return [line for line in lines if line.beneficiary_id not in rejected_members]

    def _plan_flag(self, signal: Signal, now: datetime, writes: WriteSet, **fields) -> str:
        document = flag_document(signal, now, **fields)
        writes.insert(RISK_FLAGS, [document])
        writes.insert(NOTIFICATIONS, self.notifications.admin_records(
            FRAUD_FLAG, f"{FRAUD_FLAG}:{document['_id']}", self._alert(signal, now), now))
        return document["_id"]

    @staticmethod
    def _alert(signal: Signal, now: datetime) -> dict[str, str]:
        return {"rule": RULE_NAMES[signal.rule], "member": signal.member_id[-12:], "action": signal.action.value,
                "time": china_time(now)}

    # --- refunds -----------------------------------------------------------------------------------------------

    async def on_refund(self, order: dict, refunded_fen: int, at: datetime, now: datetime, writes: WriteSet) -> None:
        """After a refund of `refunded_fen`: the direct promoter's refunded share over the window."""
        settings = (await self.merchant_settings.get(RiskSettings)).refund_rate
        if settings.action is Action.ALLOW or not order.get("upline_chain") or refunded_fen <= 0:
            return
        promoter_id, today = order["upline_chain"][0], china_day(at)
        days = (await self.store.daily([promoter_id], china_day(at - timedelta(days=settings.window_days - 1)),
                                       today)).get(promoter_id, {})
        paid = sum(day.get("paid_fen", 0) for day in days.values())
        refunded = sum(day.get("refunded_fen", 0) for day in days.values()) + refunded_fen
        signal = at_most_hold(refund_rate(settings, promoter_id, today, paid, refunded))
        if signal is not None and not await self.store.existing_keys([signal.key]):
            self._plan_flag(signal, now, writes)

    # --- withdrawals -------------------------------------------------------------------------------------------

    async def withdrawal_holds(self, member: dict, withdrawal_id: str, is_first: bool, paying_buyers: Sequence[str],
                               min_distinct_paying_buyers: int, withdrawals_today: int, ip: str | None,
                               now: datetime, writes: WriteSet) -> list[str]:
        """The flags that hold a withdrawal being requested, planned into its step: the caps and the buyer
        minimum it is past, the promoter's open holds, and on a first one WeChat's rank of the promoter. Their
        ids, for the withdrawal's `held_by`."""
        settings = await self.merchant_settings.get(RiskSettings)
        member_id = member["_id"]
        linked = await self.store.linked_buyers(member_id) if is_first else set()
        commission_today = 0
        if settings.daily_commission_cap_fen is not None:
            today = china_day(now)
            commission_today = (await self.store.daily([member_id], today, today)).get(member_id, {}).get(
                today, {}).get("commission_fen", 0)
        signals = withdrawal_holds(settings, WithdrawalEvidence(
            withdrawal_id=withdrawal_id, member_id=member_id, is_first=is_first, paying_buyers=len(paying_buyers),
            linked_buyers=len(linked & set(paying_buyers)), min_distinct_paying_buyers=min_distinct_paying_buyers,
            commission_today_fen=commission_today, withdrawals_today=withdrawals_today))
        if is_first and (rank := at_most_hold(await self._rank(settings, member, member_id, withdrawal_id,
                                                                ip))) is not None:
            signals.append(rank)
        flag_ids = [self._plan_flag(signal, now, writes, withdrawal_id=withdrawal_id) for signal in signals
                    if signal.action is not Action.ALLOW]
        held = [flag_id for flag_id, signal in zip(flag_ids, signals) if signal.holds]
        if flag_ids:
            records = [record["_id"] for record in writes.inserts.get(NOTIFICATIONS, [])]
            writes.then(lambda: self.notifications.enqueue(records))
        return held + await self.store.open_holds(member_id)

    async def _rank(self, settings: RiskSettings, member: dict, promoter_id: str, subject: str,
                    ip: str | None) -> Signal | None:
        """WeChat's rank of the member, as a signal about `promoter_id`; none without a mini-program openid and
        an address, with the rule off, or when WeChat gives no rank in time."""
        rule = settings.wechat_risk_rank
        if self.risk_rank is None or rule.action is Action.ALLOW or not member.get("miniapp_openid") or not ip:
            return None
        return wechat_risk_rank(rule, promoter_id, subject, await self.risk_rank(member["miniapp_openid"], ip))
