"""The console's dashboard (概况): today, the last 7 or 30 days or a chosen range, as the merchant API's overview
answers it (`handlers.stats`): the same query, the same service call, the same answer model."""

from __future__ import annotations

import json
from typing import Any

from distribution import stats
from distribution.errors import Invalid
from handlers.console.base import ConsoleHandler
from handlers.console.listing import parsed, query_parameters
from handlers.stats import DEFAULT_DAYS, OverviewQuery
from web.models import StatsOverview

# The range picker's quick choices: days up to today.
QUICK_RANGES = {1: "今日", 7: "近7天", 30: "近30天"}
METRICS = [  # (field of StatsOverview, label, money?)
    ("sales_fen", "推广成交额", True),
    ("commission_fen", "佣金（扣除退款）", True),
    ("frozen_fen", "冻结中佣金", True),
    ("withdrawable_fen", "可提现佣金", True),
    ("paid_out_fen", "已提现", True),
    ("binds", "新绑定", False),
    ("new_promoters", "新增推广员", False),
    ("pending_applications", "待审核申请", False),
    ("pending_withdrawals", "待审核提现", False),
]
# What the page says when a range is refused: by the domain's reason, or by the field it could not read.
REFUSED_RANGES = {
    stats.DAYS_OR_DATES: "请选择快捷范围或自定义日期，不要同时给出",
    stats.DAYS_OUT_OF_RANGE: f"天数须在 1 到 {stats.MAX_RANGE_DAYS} 之间",
    stats.TOO_EARLY: "结束日期太早",
    stats.UPSIDE_DOWN: "开始日期不能晚于结束日期",
    stats.TOO_LONG: f"日期范围最多 {stats.MAX_RANGE_DAYS} 天",
}
UNREADABLE = {"from": "请输入有效的开始日期", "to": "请输入有效的结束日期", "days": "天数须为整数"}
FUNNEL_STAGES = [("scans", "扫码"), ("visits", "链接访问"), ("binds", "绑定"), ("buyers", "首单买家"),
                 ("sales_fen", "成交额")]


def chart_json(option: dict[str, Any]) -> str:
    """An ECharts option for a `<script type="application/json">`: nothing in it can close the element."""
    return json.dumps(option, ensure_ascii=False).replace("<", "\\u003c")


def trend_chart(overview: StatsOverview) -> dict[str, Any]:
    money_axis, count_axis = 0, 1

    def series(name: str, values: list, axis: int) -> dict[str, Any]:
        return {"name": name, "type": "line", "yAxisIndex": axis, "data": values}

    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 8, "right": 8, "top": 56, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": [day.day.strftime("%m-%d") for day in overview.trend]},
        "yAxis": [{"type": "value", "name": "元"}, {"type": "value", "name": "人", "minInterval": 1}],
        "series": [
            series("推广成交额", [day.sales_fen / 100 for day in overview.trend], money_axis),
            series("佣金", [day.commission_fen / 100 for day in overview.trend], money_axis),
            series("绑定", [day.binds for day in overview.trend], count_axis),
            series("新增推广员", [day.new_promoters for day in overview.trend], count_axis),
        ],
    }


def funnel_chart(overview: StatsOverview) -> dict[str, Any]:
    funnel = overview.funnel
    stages = [("扫码+访问", funnel.scans + funnel.visits), ("绑定", funnel.binds), ("首单买家", funnel.buyers)]
    return {
        "tooltip": {"trigger": "item", "formatter": "{b}：{c}"},
        "series": [{"type": "funnel", "sort": "none", "gap": 2, "minSize": "20%", "left": "10%", "width": "80%",
                    "label": {"position": "inside", "formatter": "{b}\n{c}"},
                    "data": [{"name": name, "value": value} for name, value in stages]}],
    }


class DashboardHandler(ConsoleHandler):
    async def get(self) -> None:
        parameters = query_parameters(self)
        query, unreadable = parsed(OverviewQuery, parameters)
        errors = {field: UNREADABLE.get(field, problem) for field, problem in unreadable.items()}
        overview = None
        if query is not None:
            try:
                days = query.day_range(query.days)
            except Invalid as refused:
                errors = {refused.field: REFUSED_RANGES.get(refused.code, refused.message)}
            else:
                overview = StatsOverview.of(await self.runtime.dashboard.overview(days))
        custom = "from" in parameters or "to" in parameters
        # Which quick choice the range is: the one asked for, or the default one when none was.
        chosen = (query.days if query else None) or (None if custom or errors else DEFAULT_DAYS)
        self.render_page(
            "dashboard.html", status=400 if errors else 200, errors=errors, values=parameters, overview=overview,
            quick_ranges=QUICK_RANGES, chosen=chosen, custom=custom,
            metrics=METRICS, funnel_stages=FUNNEL_STAGES,
            trend_chart=chart_json(trend_chart(overview)) if overview else None,
            funnel_chart=chart_json(funnel_chart(overview)) if overview else None,
        )


ROUTES = [(r"/admin", DashboardHandler)]
