"""Validated records: frozen dataclasses that cross the JSON boundary.

Merchant settings and order items arrive as JSON (merchant API) or documents
(MongoDB). Each field declares its check beside its default; the check both
validates and normalises (a string becomes its enum, a list a tuple), so a
record built from a request body and one built in code are the same value.
Every error is an `InvalidField` naming the field, so an API can answer 400
with it verbatim.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Self

Check = Callable[[str, Any], Any]


class InvalidField(ValueError):
    """A field is missing, unknown or out of range; `field` names it (dotted for nested values)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def checked(check: Check, default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field whose value `Record` passes through `check`."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"check": check})


class Record:
    """Mixin for frozen dataclasses whose every field is declared with `checked`."""

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            normalised = spec.metadata["check"](spec.name, getattr(self, spec.name))
            # Frozen dataclasses forbid assignment; normalising at construction keeps them immutable after.
            object.__setattr__(self, spec.name, normalised)
        self.check_together()

    def check_together(self) -> None:
        """Rules that tie fields together; records that have some override this."""

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Build from a JSON object: unknown and missing required fields are refused by name."""
        if not isinstance(data, Mapping):
            raise InvalidField(cls.__name__, "must be an object")
        specs = dataclasses.fields(cls)
        known = {spec.name for spec in specs}
        for name in data:
            if name not in known:
                raise InvalidField(str(name), "is not a known field")
        for spec in specs:
            required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
            if required and spec.name not in data:
                raise InvalidField(spec.name, "is required")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON- and BSON-ready: enums become their values, tuples lists."""
        return {spec.name: plain(getattr(self, spec.name)) for spec in dataclasses.fields(self)}


def plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [plain(each) for each in value]
    if isinstance(value, Mapping):
        return {key: plain(each) for key, each in value.items()}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def integer(minimum: int = 0, maximum: int | None = None) -> Check:
    def check(field: str, value: Any) -> int:
        # bool is an int in Python, but `true` is never a meaningful amount.
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidField(field, "must be an integer")
        if value < minimum:
            raise InvalidField(field, f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise InvalidField(field, f"must be at most {maximum}")
        return value

    return check


def integers(minimum: int = 0, maximum: int | None = None) -> Check:
    """A list of integers, returned as a tuple; its length is the record's business."""
    each = integer(minimum, maximum)

    def check(field: str, value: Any) -> tuple[int, ...]:
        if not isinstance(value, (list, tuple)):
            raise InvalidField(field, "must be a list of integers")
        return tuple(each(f"{field}[{index}]", item) for index, item in enumerate(value))

    return check


def boolean() -> Check:
    def check(field: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise InvalidField(field, "must be true or false")
        return value

    return check


def text(max_length: int | None = None) -> Check:
    def check(field: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InvalidField(field, "must be a non-empty string")
        if max_length is not None and len(value) > max_length:
            raise InvalidField(field, f"must be at most {max_length} characters")
        return value

    return check


def choice(options: type[Enum]) -> Check:
    def check(field: str, value: Any) -> Enum:
        try:
            return options(value)
        except ValueError:
            allowed = ", ".join(str(option.value) for option in options)
            raise InvalidField(field, f"must be one of {allowed}") from None

    return check


def optional(inner: Check) -> Check:
    def check(field: str, value: Any) -> Any:
        return None if value is None else inner(field, value)

    return check


def nested(record: type[Record]) -> Check:
    """An object validated as `record`; its errors are named under this field (`profile.nickname`)."""

    def check(field: str, value: Any) -> Record:
        if isinstance(value, record):
            return value
        if not isinstance(value, Mapping):
            raise InvalidField(field, "must be an object")
        try:
            return record.from_dict(value)
        except InvalidField as invalid:
            raise InvalidField(f"{field}.{invalid.field}", invalid.problem) from None

    return check


def keyed_by_text(inner: Check) -> Check:
    """An object keyed by non-empty strings (sku, category, grade), each value checked by `inner`."""

    def check(field: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise InvalidField(field, "must be an object")
        for key in value:
            if not isinstance(key, str) or not key:
                raise InvalidField(field, "keys must be non-empty strings")
        return {key: inner(f"{field}.{key}", item) for key, item in value.items()}

    return check
