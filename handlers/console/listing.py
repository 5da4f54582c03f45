"""What the console's lists share: the parameters a list was asked for, their refusals by field, and the links
to the newest page and to the next one (the same filters, the page's cursor)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError

from distribution.records import invalid_field
from web.base import BaseHandler

Q = TypeVar("Q", bound=BaseModel)
CURSOR = "cursor"


def query_parameters(handler: BaseHandler) -> dict[str, str]:
    """The query string's parameters given a value (one left empty counts as left out, as the API has it)."""
    return {name: values[-1].decode("utf-8", "replace") for name, values in handler.request.query_arguments.items()
            if values[-1]}


def parsed(model: type[Q], parameters: Mapping[str, str]) -> tuple[Q | None, dict[str, str]]:
    """The parameters as `model`, or None and what is wrong with them by field, for the form to show."""
    try:
        return model.model_validate(dict(parameters)), {}
    except ValidationError as error:
        invalid = invalid_field(error)
        return None, {invalid.field: invalid.problem}


def filters_of(parameters: Mapping[str, str]) -> dict[str, str]:
    """What a list is filtered by: its parameters, the cursor aside."""
    return {name: value for name, value in parameters.items() if name != CURSOR}


def list_link(path: str, parameters: Mapping[str, str]) -> str:
    return f"{path}?{urlencode(parameters)}" if parameters else path


@dataclass(frozen=True)
class Pager:
    """The links under a list (`pager.html`)."""

    first: str | None  # back to the newest, from a later page
    next: str | None


def pager(path: str, parameters: Mapping[str, str], next_cursor: str | None) -> Pager:
    filters = filters_of(parameters)
    return Pager(first=list_link(path, filters) if CURSOR in parameters else None,
                 next=list_link(path, {**filters, CURSOR: next_cursor}) if next_cursor else None)
