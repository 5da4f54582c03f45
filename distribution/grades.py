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
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, model_validator

from distribution.records import Integer, InvalidField, Record, Text

MAX_GRADES = 20
MAX_GRADE_NAME_LENGTH = 32
# Bounds that keep every threshold a 64-bit integer, as MongoDB stores it.
MAX_SALES_FEN = 10**15
MAX_MEMBERS = 10**9

GradeName = Annotated[Text, Field(max_length=MAX_GRADE_NAME_LENGTH)]
SalesFen = Annotated[Integer, Field(ge=0, le=MAX_SALES_FEN)]


class Grade(Record):
    """A grade and what a promoter needs to reach it: every condition must hold (0 always holds)."""

    name: GradeName = Field(description="The grade's name, as promoters see it and commission rules refer to it.")
    min_own_settled_sales_fen: SalesFen = Field(
        0, description="Settled sales, in fen, on which the promoter earned as level 1 (their own customers).")
    min_direct_members: Annotated[Integer, Field(ge=0, le=MAX_MEMBERS)] = Field(
        0, description="Members bound directly under the promoter.")
    min_team_settled_sales_fen: SalesFen = Field(
        0, description="Settled sales, in fen, on which the promoter earned at any level (their team's sales).")


class GradeSettings(Record):
    """The merchant's promoter grades, lowest first; grades only go up."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"grades": [
        {"name": "silver", "min_own_settled_sales_fen": 0, "min_direct_members": 2, "min_team_settled_sales_fen": 0},
        {"name": "gold", "min_own_settled_sales_fen": 100_000, "min_direct_members": 5,
         "min_team_settled_sales_fen": 0},
    ]}]})

    grades: Annotated[tuple[Grade, ...], Field(max_length=MAX_GRADES)] = Field(
        (), description="The grades, lowest first, each named once. A promoter reaches the highest grade whose "
                        "conditions all hold.")

    @model_validator(mode="after")
    def _names_are_unique(self) -> Self:
        seen: set[str] = set()
        for index, grade in enumerate(self.grades):
            if grade.name in seen:
                raise InvalidField(f"grades[{index}].name", f"{grade.name!r} is named twice")
            seen.add(grade.name)
        return self

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
