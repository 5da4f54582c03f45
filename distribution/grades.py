"""Promoter grades (分销员等级): the merchant's named grades, their upgrade conditions, and the decision.

Grades are listed lowest first. A promoter reaches a grade when every one of
its conditions holds (a condition of 0 always holds); the highest grade
reached wins. Grades only go up: a promoter who no longer meets the
conditions of their grade keeps it.

A grade's commission rates are `grade_rates_bp.<grade name>` in the
commission rules (`distribution.commission_rules`), where they are checked
against the levels and the cap together with every other rate; a grade
without rates there earns the default level rates.

The metrics, as the services keep them:

- `own_settled_sales_fen`: the paid amount, net of refunds, of items on
  which the promoter earned a level-1 commission that has settled;
- `team_settled_sales_fen`: the same at any level (own sales included), i.e.
  the sales of the promoter's team within the commission levels;
- `direct_members`: members bound directly under the promoter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from distribution.records import Check, InvalidField, Record, checked, integer, text

MAX_GRADES = 20
MAX_GRADE_NAME_LENGTH = 32


def grade_name() -> Check:
    check_text = text()

    def check(field: str, value: Any) -> str:
        value = check_text(field, value)
        if len(value) > MAX_GRADE_NAME_LENGTH:
            raise InvalidField(field, f"must be at most {MAX_GRADE_NAME_LENGTH} characters")
        return value

    return check


# Bounds that keep every threshold a 64-bit integer, as MongoDB stores it.
MAX_SALES_FEN = 10**15
MAX_MEMBERS = 10**9


@dataclass(frozen=True)
class Grade(Record):
    name: str = checked(grade_name())
    min_own_settled_sales_fen: int = checked(integer(0, MAX_SALES_FEN), 0)
    min_direct_members: int = checked(integer(0, MAX_MEMBERS), 0)
    min_team_settled_sales_fen: int = checked(integer(0, MAX_SALES_FEN), 0)


def grade_list() -> Check:
    """A list of grades, lowest first, each given as an object (or a `Grade` built in code)."""

    def check(field: str, value: Any) -> tuple[Grade, ...]:
        if not isinstance(value, (list, tuple)):
            raise InvalidField(field, "must be a list of grades")
        if len(value) > MAX_GRADES:
            raise InvalidField(field, f"must have at most {MAX_GRADES} grades")
        grades = []
        for index, each in enumerate(value):
            if isinstance(each, Grade):
                grades.append(each)
                continue
            try:
                grades.append(Grade.from_dict(each))
            except InvalidField as invalid:
                name = invalid.field if invalid.field != Grade.__name__ else ""
                raise InvalidField(f"{field}[{index}]{'.' + name if name else ''}", str(invalid).split(": ", 1)[-1])
        return tuple(grades)

    return check


@dataclass(frozen=True)
class GradeSettings(Record):
    """The merchant's grades, lowest first; `from_dict`/`to_dict` for the merchant API."""

    grades: tuple[Grade, ...] = checked(grade_list(), ())

    def check_together(self) -> None:
        seen: set[str] = set()
        for index, grade in enumerate(self.grades):
            if grade.name in seen:
                raise InvalidField(f"grades[{index}].name", f"{grade.name!r} is named twice")
            seen.add(grade.name)

    def rank(self, name: str | None) -> int:
        """0 for the lowest grade, -1 for none (or a grade the merchant has since removed)."""
        for index, grade in enumerate(self.grades):
            if grade.name == name:
                return index
        return -1


@dataclass(frozen=True)
class PromoterMetrics:
    own_settled_sales_fen: int = 0
    direct_members: int = 0
    team_settled_sales_fen: int = 0

    @classmethod
    def from_mapping(cls, totals: Mapping[str, Any], direct_members: int) -> "PromoterMetrics":
        return cls(
            own_settled_sales_fen=int(totals.get("own_settled_sales_fen", 0)),
            direct_members=direct_members,
            team_settled_sales_fen=int(totals.get("team_settled_sales_fen", 0)),
        )


def qualifies(grade: Grade, metrics: PromoterMetrics) -> bool:
    return (
        metrics.own_settled_sales_fen >= grade.min_own_settled_sales_fen
        and metrics.direct_members >= grade.min_direct_members
        and metrics.team_settled_sales_fen >= grade.min_team_settled_sales_fen
    )


def upgrade(current: str | None, metrics: PromoterMetrics, settings: GradeSettings) -> str | None:
    """The grade to move the promoter up to, or None when they stay where they are.

    The highest grade whose conditions all hold, if it ranks above the
    current one. A current grade the merchant has removed ranks below every
    grade, so the promoter moves to whichever grade they now qualify for.
    """
    current_rank = settings.rank(current)
    for rank in range(len(settings.grades) - 1, current_rank, -1):
        if qualifies(settings.grades[rank], metrics):
            return settings.grades[rank].name
    return None
