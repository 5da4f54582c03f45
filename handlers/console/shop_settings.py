"""The console's settings pages (设置): a form for every kind of settings the merchant API serves, validated by
the same records, and the commission rules' preview on the rules being edited, before they are saved."""

from __future__ import annotations

from collections.abc import Mapping

from distribution.money import percent
from distribution.oa_menu import BUTTON_NAME_BYTES, MAX_BUTTONS, MAX_SUB_BUTTONS, SUB_BUTTON_NAME_BYTES, ClickKey
from distribution.preview import CommissionPreview, PreviewOrder, preview_commissions
from distribution.records import InvalidField
from distribution.staff import Permission
from handlers.console.base import CSRF_FIELD, ConsoleHandler
from handlers.console.settings_form import RecordForm, Words
from services.merchant_settings import SETTINGS_KINDS, settings_kind

SETTINGS_PAGE = "/admin/settings"
COMMISSION = "commission"
PREVIEW_EXAMPLE = PreviewOrder(paid_fen=10_000)
SAVED = "saved"
INSTALLED = "installed"
# What the page says after an action that leads back to it: the action's query argument -> the notice.
NOTICES = {SAVED: "已保存", INSTALLED: "已安装到公众号：关注者几分钟内可见新菜单"}

# Each kind's title and what it decides.
KIND_WORDS: dict[str, Words] = {
    "commission": Words("佣金规则", "几级分佣、各级比例、按商品和等级的规则、自购返佣、结算时机与封顶。"),
    "binding": Words("绑定规则", "谁可以成为上级，以及已绑定会员的上级何时可以更换。"),
    "withdrawals": Words("提现规则", "提现门槛、每日次数与金额上限、手续费和免审额度。"),
    "grades": Words("分销员等级", "等级名称与升级条件，由低到高排列；等级只升不降。"),
    "posters": Words("海报设置", "推广海报模板、索取海报的关键词与海报上的二维码类型。"),
    "chat": Words("公众号问答", "分销员在公众号发送哪些词查询佣金、团队、提现和帮助，以及回答中打开的页面。"),
    "oa_menu": Words("公众号菜单", "公众号聊天界面下方的菜单；保存后点“安装到公众号”才会发送到微信。"),
    "settlement": Words("结算周期", "佣金逐笔结算，或按日、周、月汇总为结算单；低于起结金额的顺延，超过复核金额的需人工复核。"),
    "checkout": Words("小程序下单", "未付款订单多久关闭并释放库存、付款后多久自动确认收货，以及微信支付中显示的商品描述前缀。"),
    "content": Words("敏感词", "海报标题和推广员申请理由不得含有这些词（忽略大小写与全角半角）；海报上含有这些词的昵称改印中性称呼。"),
    "chain_move": Words("链动2+1", "代理、老板与“走人”（第 2 位推荐留给上方最近的老板）；开启后按直推奖、团队奖、平级奖分佣，"
                                  "取代分佣层级。"),
}

FIELD_WORDS: dict[str, Words] = {
    # binding
    "upline_eligibility": Words("谁可以成为上级", "指定的分销员在任何规则下都可以成为上级。"),
    "spend_threshold_fen": Words("消费门槛（分）", "“消费达到门槛”时：累计消费达到此金额才能成为上级。"),
    "bind_mode": Words("绑定方式", "已绑定会员的上级何时可以更换。"),
    "new_member_window_seconds": Words("新会员时限（秒）", "“仅新会员可绑定”时：注册后多少秒内仍算新会员；0 表示仅限由该邀请带来的会员。"),
    "bind_expiry_days": Words("绑定有效期（天）", "“到期可改绑”时：绑定满此天数后可被新的邀请替换。"),
    # commission
    "levels": Words("分佣层级", "几级上级参与分佣；超过 3 级需勾选下方的法律风险确认。"),
    "acknowledge_legal_risk": Words("我已知晓超过 3 级分佣可能被认定为传销（团队计酬）的法律风险"),
    "level_rates_bp": Words("各级默认比例（基点）", "一级在前，用逗号分隔，每级一个；1000 基点 = 10%。"),
    "sku_rules": Words("按商品（SKU）的规则（JSON）",
                       '例如 {"tea-gift-box": {"fixed_fen_per_unit": [800, 300]}}；优先于其他所有规则。'),
    "category_rules": Words("按类目的规则（JSON）", '例如 {"drinks": {"rate_bp": [800, 400]}}；在商品规则之后生效。'),
    "grade_rates_bp": Words("按等级的比例（JSON）", '例如 {"gold": [1500, 700]}：该等级的分销员按此比例获得佣金。'),
    "self_purchase": Words("自购返佣", "勾选：分销员自己购买时本人获得一级佣金，其上级获得二级。"),
    "trigger": Words("佣金记账时机", "付款时或确认收货时记为冻结佣金。"),
    "freeze_days": Words("冻结天数", "确认收货后再过多少天佣金结算、可提现。"),
    "cap_bp": Words("单件封顶（基点）", "每件商品各级佣金合计最多占实付金额的比例；3000 基点 = 30%。"),
    # checkout
    "unpaid_close_minutes": Words("未付款关闭（分钟）", "下单后多少分钟未付款即关闭订单（微信支付同时关单）并释放库存。"),
    "auto_confirm_days": Words("自动确认收货（天）", "付款后多少天买家仍未确认收货时自动确认；对此后付款的订单生效。"),
    "description_prefix": Words("支付描述前缀", "显示在微信支付账单中商品名称之前，如店铺名。"),
    # settlement
    "policy": Words("结算方式", "逐笔：冻结期满即结算；按日/周/月：冻结期满的佣金在周期结束后汇总为结算单（北京时间）。"),
    "weekday": Words("每周结算日", "按周时：每个周期从这一天开始，1 为周一，7 为周日。"),
    "day_of_month": Words("每月结算日", "按月时：每个周期从这一天开始（1–28）。"),
    "minimum_fen": Words("起结金额（分）", "结算单金额低于此数时不结算，顺延到下一周期；0 表示不限。"),
    "review_above_fen": Words("复核金额（分）", "结算单金额超过此数时需财务复核通过后才可提现；默认 1000000 分 = 1 万元。"),
    # withdrawals
    "min_fen": Words("最低提现金额（分）", "不能超过每日提现金额上限。"),
    "daily_count_cap": Words("每日提现次数上限"),
    "daily_amount_cap_fen": Words("每日提现金额上限（分）"),
    "fee_bp": Words("手续费（基点）", "打款时从提现金额中扣除；100 基点 = 1%，向下取整到分。"),
    "auto_approve_under_fen": Words("免审额度（分）", "低于此金额的提现自动通过；0 表示全部人工审核。"),
    "min_distinct_paying_buyers": Words("首次提现前的最少付款买家数", "防止自买自卖：带来佣金的付款买家不少于此数。"),
    "confirm_within_hours": Words("零钱到账确认时限（小时）", "分销员未在此时间内于微信中确认收款，则撤销并退回余额。"),
    "real_name_check": Words("实名校验", "每笔微信零钱打款都校验收款人姓名（2000 元起总会校验）。"),
    # grades
    "grades": Words("等级（由低到高）", "每行一个等级；条件为 0 表示不限。清空一行即删除该等级。"),
    "name": Words("等级名称"),
    "min_own_settled_sales_fen": Words("个人已结算销售额（分）"),
    "min_direct_members": Words("直属会员数"),
    "min_team_settled_sales_fen": Words("团队已结算销售额（分）"),
    # posters
    "templates": Words("模板（JSON）", '按模板 ID，例如 {"spring": {"design": "fresh", "version": 1, "headline": "春季大促", '
                                      '"background_id": null}}；背景图在“海报”页上传。'),
    "default_template": Words("默认模板 ID", "分销员未指定模板时使用；必须是上面的模板之一。"),
    "keywords": Words("索取海报的关键词", "用逗号分隔；在公众号发送这些词即可获得海报（忽略大小写与首尾空格）。"),
    "code_type": Words("海报上的码"),
    "permanent_qr": Words("使用永久二维码", "仅公众号二维码：使用永久码（每个公众号最多 10 万个，用完后改用临时码）。"),
    "qr_expire_days": Words("临时二维码有效天数", "最长 30 天；到期前海报会重新生成。"),
    "miniapp_page": Words("小程序码打开的页面", "例如 pages/index/index（不以 / 开头，不带参数）。"),
    # chat
    "commission_keywords": Words("查询佣金的关键词", "用逗号分隔；菜单的 MY_COMMISSION 也会查询。忽略大小写与首尾空格。"),
    "team_keywords": Words("查询团队的关键词", "用逗号分隔；菜单的 MY_TEAM 也会查询。"),
    "withdraw_keywords": Words("查询提现的关键词", "用逗号分隔；菜单的 WITHDRAW 也会查询。"),
    "help_keywords": Words("查看帮助的关键词", "用逗号分隔；菜单的 HELP 也会查看。"),
    "help_intro": Words("帮助开头的话", "可留空；显示在帮助的功能列表之前。"),
    "withdraw_page": Words("小程序的提现页面", "例如 pages/withdraw/index：提现回答会发送打开它的小程序卡片。留空则附下方的网页链接。"),
    "withdraw_link": Words("提现网页链接", "没有小程序提现页面时附在回答中（不支持小程序的旧版微信也打开它）。"),
    "apply_page": Words("小程序的推广员申请页面", "需审核成为推广员时，未成为推广员的会员会收到打开它的链接。"),
    "apply_link": Words("推广员申请网页链接", "没有小程序申请页面时附在回答中。"),
    # oa_menu
    "button": Words("菜单按钮（JSON）",
                    f"1-{MAX_BUTTONS} 个按钮，每个最多 {MAX_SUB_BUTTONS} 个子按钮，字段同微信文档；按钮名最多 "
                    f"{BUTTON_NAME_BYTES} 字节、子按钮名 {SUB_BUTTON_NAME_BYTES} 字节（一个汉字 3 字节）。click 按钮的 "
                    f"key 须是公众号能回答的：{'、'.join(ClickKey)}；miniprogram 按钮需 pagepath 和旧版微信打开的 "
                    f"url，appid 留空即本服务的小程序。"),
    # content
    "sensitive_words": Words("敏感词库", "用逗号分隔；默认是广告法禁止的绝对化用语，如 最高级、第一、国家级。"),
    "neutral_name": Words("中性称呼", "昵称含敏感词时，海报上印此称呼代替昵称。"),
    # the preview's order and chain
    "paid_fen": Words("商品实付金额（分）", "10000 分 = ¥100.00。"),
    "qty": Words("件数", "按件的固定金额乘以件数。"),
    "sku": Words("商品编码（SKU）", "有该商品的规则时按其计算。"),
    "category": Words("商品类目", "可留空；有该类目的规则时按其计算。"),
    "buyer_is_promoter": Words("买家本人是分销员", "开启自购返佣时，买家本人获得一级佣金。"),
    "buyer_grade": Words("买家的等级", "可留空。"),
    "upline_grades": Words("买家的上级链（由近到远）", "每位上级写其等级名，无等级写 -，用逗号分隔；例如 gold, -, - 表示三位上级。"),
}

# Fields that mean something else in one kind than the same name in FIELD_WORDS.
KIND_FIELD_WORDS: dict[str, dict[str, Words]] = {
    "chain_move": {
        "enabled": Words("开启链动2+1", "开启后新加入的会员按代理、老板组队，佣金按下方三种奖励计算；已付款的订单不受影响。"),
        "acknowledge_legal_risk": Words("我已知晓按整个团队的销售给老板计酬可能被认定为传销（团队计酬）的法律风险"),
        "required_directs": Words("升级老板所需直推人数", "代理直接邀请满此人数即成为老板：2 即 2+1，3 即 3+1。"),
        "pass_up_positions": Words("“走人”的推荐位次", "用逗号分隔，由小到大，不超过升级所需人数；代理的这些位次的推荐留给上方最近的老板。"
                                                  "留空表示不走人。"),
        "direct_reward_bp": Words("直推奖（基点）", "买家的推荐人获得每件实付金额的此比例；1000 基点 = 10%。"),
        "team_reward_bp": Words("团队奖（基点）", "买家团队链上最近的老板获得的比例；推荐人本人是老板时可同时获得。"),
        "peer_reward_bp": Words("平级奖（基点）", "获得团队奖的老板之上的下一位老板获得的比例；0 表示不设。"),
        "cap_bp": Words("单件封顶（基点）", "三种奖励合计最多占每件实付金额的比例；3000 基点 = 30%。"),
    },
}

CHOICE_WORDS: dict[str, str] = {
    "everyone": "所有人",
    "reviewed": "审核通过的分销员",
    "spend_threshold": "消费达到门槛的会员",
    "appointed": "仅指定的分销员",
    "first_bind": "首次绑定永久有效",
    "new_members_only": "仅新会员可被绑定",
    "override": "每次有效邀请都改绑",
    "expiring": "绑定到期后可改绑",
    "paid": "付款时",
    "confirmed": "确认收货时",
    "classic": "喜庆红",
    "fresh": "清新蓝",
    "oa_qr": "公众号二维码",
    "miniapp_code": "小程序码",
    "h5_link": "网页链接二维码",
}

FORMS: dict[str, RecordForm] = {
    name: RecordForm(kind, {**FIELD_WORDS, **KIND_FIELD_WORDS.get(name, {})}, CHOICE_WORDS)
    for name, kind in SETTINGS_KINDS.items()
}
PREVIEW_FORM = RecordForm(PreviewOrder, FIELD_WORDS, CHOICE_WORDS)


def words_of(kind_name: str) -> Words:
    return KIND_WORDS.get(kind_name, Words(kind_name))


def beneficiary_words(distance: int) -> str:
    return "买家本人" if distance == 0 else f"第 {distance} 位上级"


class SettingsPage(ConsoleHandler):
    """A kind's form, with the commission rules' preview beside the commission form."""

    permission = Permission.SETTINGS

    def posted(self) -> dict[str, str]:
        return {field: text for field, text in self.form().items() if field != CSRF_FIELD}

    def render_settings(self, name: str, values: Mapping[str, str], refused: InvalidField | None = None,
                        preview: CommissionPreview | None = None, notice: str | None = None) -> None:
        forms = [FORMS[name], *([PREVIEW_FORM] if name == COMMISSION else [])]
        if name == COMMISSION:
            values = {**PREVIEW_FORM.values(PREVIEW_EXAMPLE), **values}
        errors, error_input = {}, None
        if refused is not None:
            errors = {refused.field: refused.problem}
            error_input = next((found for form in forms if (found := form.input_of(refused.field))), None)
        self.render_page("settings_kind.html", status=400 if refused else 200, name=name, words=words_of(name),
                         form=FORMS[name], preview_form=PREVIEW_FORM if name == COMMISSION else None,
                         preview=preview, values=values, errors=errors, error_input=error_input, notice=notice,
                         beneficiary_words=beneficiary_words, percent=percent)


class SettingsListHandler(SettingsPage):
    def get(self) -> None:
        self.render_page("settings.html", kinds=[(name, words_of(name)) for name in SETTINGS_KINDS])


class SettingsFormHandler(SettingsPage):
    """GET shows the stored settings; POST replaces them with what the form says."""

    async def get(self, name: str) -> None:
        kind = settings_kind(name)
        self.render_settings(name, FORMS[name].values(await self.runtime.merchant_settings.get(kind)),
                             notice=next((notice for argument, notice in NOTICES.items()
                                          if self.get_query_argument(argument, None)), None))

    async def post(self, name: str) -> None:
        settings_kind(name)
        posted = self.posted()
        try:
            value = FORMS[name].validated(posted)
            before = await self.runtime.merchant_settings.replace(value)  # refuses a sensitive word in a headline
        except InvalidField as error:
            self.render_settings(name, posted, refused=error)
            return
        await self.audit(f"settings.{name}", "settings", name, before.to_dict(), value.to_dict())
        # Shown by a GET, so that reloading the page does not post the form again.
        self.redirect(f"{SETTINGS_PAGE}/{name}?{SAVED}=1", status=303)


class CommissionPreviewPageHandler(SettingsPage):
    """The commission form's 预览 button: the rules as typed, run on the order and chain typed beside them; nothing
    is saved."""

    async def post(self) -> None:
        posted = self.posted()
        try:
            rules = FORMS[COMMISSION].validated(posted)
            order = PREVIEW_FORM.validated(posted)
        except InvalidField as error:
            self.render_settings(COMMISSION, posted, refused=error)
            return
        self.render_settings(COMMISSION, posted, preview=preview_commissions(rules, order))


ROUTES = [
    (SETTINGS_PAGE, SettingsListHandler),
    (rf"{SETTINGS_PAGE}/{COMMISSION}/preview", CommissionPreviewPageHandler),
    (rf"{SETTINGS_PAGE}/(?P<name>[a-z_]+)", SettingsFormHandler),
]
