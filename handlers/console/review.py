"""What the console's review queues (applications, withdrawals, statements) share. A queue shows one status, or
every one. Each decision is posted from a card's form (`review_decision.html`), which carries back the status the
queue showed; after it the same queue is shown again: by a redirect saying what was done (so that reloading the
page does not decide twice), or on the spot, with the refusal's status, saying why it was refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import BaseModel, Field

from distribution.errors import DomainError
from distribution.records import Record, Text
from handlers.console.base import ConsoleHandler
from handlers.console.listing import list_link, pager, parsed, query_parameters
from web.base import error_status
from web.paging import Page

EVERY_STATUS = "all"
BACK_STATUS = "back_status"  # the decision form's field naming the status its queue showed
DONE_PARAMETER = "done"  # the query parameter naming the decision just taken
FIELD_PROBLEMS = {"reason": "请填写原因（最多 500 字）", "reference": "请填写银行转账流水号（最多 128 字）"}


class Rejection(Record):
    """Why the merchant said no; the person asking is told."""

    reason: Text = Field(max_length=500)


class StatusQuery(Protocol):
    status: str


Q = TypeVar("Q", bound=BaseModel)
# Reads a page of a list: (runtime, member id or None for everyone's, query) -> page.
PageReader = Callable[[Any, str | None, Q], Awaitable[Page[Any]]]


def shown_statuses(kind: type[StrEnum]) -> Any:
    """The statuses a queue may show: one of `kind`'s, or every one."""
    return Literal[(*(each.value for each in kind), EVERY_STATUS)]  # type: ignore[valid-type]


def refusal_message(error: DomainError, refusals: Mapping[str, str]) -> str:
    """What staff read when an action is refused: the form field at fault, else the refusal by its code."""
    return FIELD_PROBLEMS.get(error.field or "") or refusals.get(error.code, error.message)


class ReviewQueue(ConsoleHandler):
    path: ClassVar[str]
    template: ClassVar[str]
    statuses: ClassVar[Mapping[str, str]]  # what each status a queue may show is called
    decided: ClassVar[Mapping[str, str]]  # the notice after each decision
    refusals: ClassVar[Mapping[str, str]]  # what staff read for each refusal, by its code

    async def show_queue(self, parameters: dict[str, str], status: int = 200, notice: str | None = None,
                         error: str | None = None) -> None:
        raise NotImplementedError

    async def asked_page(self, model: type[Q], parameters: Mapping[str, str],
                         read: PageReader[Q]) -> tuple[Q | None, dict[str, str], Page[Any]]:
        """The query the parameters make (or what is wrong with them), and the page of everyone's it asks for,
        read by `read`, its status `all` reading every status; an empty page while the query is wrong."""
        query, errors = parsed(model, parameters)
        if query is None:
            return None, errors, Page[Any](items=[], next_cursor=None)
        listed = query.model_copy(update={"status": None}) if query.status == EVERY_STATUS else query
        return query, errors, await read(self.runtime, None, listed)

    def render_queue(self, parameters: Mapping[str, str], query: StatusQuery | None, errors: dict[str, str],
                     next_cursor: str | None, status: int, **namespace: Any) -> None:
        self.render_page(
            self.template, status=400 if errors else status, errors=errors,
            shown_status=query.status if query is not None else parameters.get("status", ""),
            pager=pager(self.path, parameters, next_cursor), queue_path=self.path, statuses=self.statuses,
            every_status=EVERY_STATUS, **namespace)

    async def show_asked(self) -> None:
        """The queue the query string asks for, saying what the decision just taken did."""
        parameters = query_parameters(self)
        done = self.decided.get(parameters.pop(DONE_PARAMETER, ""))
        await self.show_queue(parameters, notice=done)

    async def decide(self, decision: str, act: Callable[[dict[str, str]], Awaitable[None]]) -> None:
        """Takes the decision the posted form asks for (`act` with the form), then shows the queue it came from."""
        form = self.form()
        back = {"status": form[BACK_STATUS]} if form.get(BACK_STATUS) in (*self.statuses, EVERY_STATUS) else {}
        try:
            await act(form)
        except DomainError as error:
            await self.show_refusal(back, error)
            return
        self.redirect(list_link(self.path, {**back, DONE_PARAMETER: decision}), status=303)

    async def show_refusal(self, back: dict[str, str], error: DomainError) -> None:
        """The queue the action was taken from, saying why it was refused."""
        await self.show_queue(back, status=error_status(error) or 400, error=refusal_message(error, self.refusals))
