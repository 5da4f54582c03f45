"""Cursor paging shared by every list endpoint: opaque cursors, bounded limits, one page model."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema

from web.models import Answer

T = TypeVar("T")

MAX_PAGE = 100
CURSOR_SCHEMA = {"type": "string", "maxLength": 512, "description": "next_cursor of the previous page"}


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode()


def decode_cursor(raw: str, parts: int) -> list[str]:
    """ValueError unless `raw` is a cursor of `parts` parts that this API gave out."""
    try:
        # The last part may hold "|" itself (a commission's sort key does).
        decoded = base64.b64decode(raw.encode(), altchars=b"-_", validate=True).decode().split("|", parts - 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = []
    if len(decoded) != parts or not all(decoded):
        raise ValueError("cursor is not one this API gave out")
    return decoded


def _after_key(raw: str) -> str:
    return decode_cursor(raw, 1)[0]


def _after_time(raw: str) -> tuple[datetime, str]:
    at, last_id = decode_cursor(raw, 2)
    try:
        return datetime.fromisoformat(at), last_id
    except ValueError:
        raise ValueError("cursor is not one this API gave out") from None


Limit = Annotated[int, Field(ge=1, le=MAX_PAGE, description="how many items at most")]
# For lists in key order (ids, sort keys): the key of the last item seen.
AfterKey = Annotated[str, PlainValidator(_after_key), WithJsonSchema(CURSOR_SCHEMA)]
# For lists in time order: the (time, id) of the last item seen.
AfterTime = Annotated[tuple[datetime, str], PlainValidator(_after_time), WithJsonSchema(CURSOR_SCHEMA)]


class Query(BaseModel):
    """Query parameters: text trimmed; parameters a model does not name are ignored, as the web does."""

    model_config = ConfigDict(str_strip_whitespace=True)


class PageQuery(Query):
    limit: Limit = 20
    cursor: AfterKey | None = None


class TimePageQuery(Query):
    limit: Limit = 20
    cursor: AfterTime | None = None


def key_cursor(key: str = "_id") -> Callable[[dict], str]:
    return lambda document: encode_cursor(document[key])


def time_cursor(time_field: str) -> Callable[[dict], str]:
    return lambda document: encode_cursor(document[time_field].astimezone(timezone.utc).isoformat(), document["_id"])


class Page(Answer, Generic[T]):
    """One page of a list; ask for the next with `?cursor=<next_cursor>`."""

    items: list[T]
    next_cursor: str | None = Field(description="null on the last page")

    @classmethod
    def of(cls, documents: list[dict], limit: int, show: Callable[[dict], T],
           next_cursor: Callable[[dict], str]) -> Self:
        """The page of `documents` (at most `limit` of them), shown by `show`; a full page has a next one."""
        return cls(items=[show(document) for document in documents],
                   next_cursor=next_cursor(documents[-1]) if documents and len(documents) == limit else None)
