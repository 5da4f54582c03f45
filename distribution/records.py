"""Validated records: frozen pydantic models that cross the JSON boundary.

Merchant settings, order items and request bodies arrive as JSON (an API) or
documents (MongoDB). Each is declared once, as a `Record`, and that one
declaration gives the validation, the error an API answers 400 with, and the
JSON Schema an API document shows (`Kind.model_json_schema()`).

Declaring a record:

    class Example(Record):
        \"\"\"What it is, for the schema's description.\"\"\"

        count: Annotated[Integer, Field(ge=1, le=100)] = Field(1, description="...")
        name: Annotated[Text, Field(max_length=32)] = Field(description="...")  # no default: required
        kind: SomeStrEnum = Field(SomeStrEnum.A, description="...")
        amounts: Annotated[tuple[Fen, ...], Field(max_length=10)] = Field((), description="...")
        code: Annotated[Text, matching(r"^[a-z]+$", "must be lowercase letters")] = Field(description="...")

        @model_validator(mode="after")
        def _rule_between_fields(self) -> Self:
            if ...:
                raise InvalidField("count", "must ...")   # named relative to this record
            return self

- Constraints go in the type (`Annotated[..., Field(ge=..)]`), the default
  and the description in `Field(...)` on the attribute: pydantic applies a
  type's own constraints after the attribute's, so narrowing a bounded type
  (`Days` here, `Fen` and `BasisPoints` in `distribution.money`) there would
  be silently overruled, while `Annotated[Days, Field(ge=1)]` works.
- Integers are `Integer` (refuses booleans, floats, even 5.0, and strings)
  and every one is bounded: MongoDB stores 64-bit integers.
- Booleans are `StrictBool` (refuses 0 and 1); strings are `Text` (not
  blank), or `Text` with its own pattern through `matching`, which also says
  what a mismatch means; enums are matched by value; lists become tuples.
- Unknown fields are refused (`extra="forbid"`), and records are immutable.
- A rule between fields is an "after" model validator raising `InvalidField`
  with the field named relative to the record; a `ValueError` instead blames
  the record as a whole (named by where it sits, or by its class at the top).

Using one:

- `Kind.from_dict(data)` builds from a JSON object or document;
- `Kind(field=value, ...)` builds in code, checked the same way; `Kind()`
  holds the defaults;
- `value.to_dict()` is JSON- and BSON-ready (enums become their values,
  tuples lists; datetimes stay datetimes, as BSON stores them) and
  `Kind.from_dict(value.to_dict()) == value`.

Every problem surfaces as one `InvalidField`: the first problem found, its
`field` a dotted path (`templates.classic.headline`, `level_rates_bp[1]`).
`invalid_field` turns any pydantic `ValidationError` into it, so models that
are not records (a web layer's own) answer with the same error.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, ValidationError
from pydantic_core import ErrorDetails

from distribution.errors import Invalid


class InvalidField(Invalid, ValueError):
    """A field is missing, unknown or out of range; `field` names it (dotted for nested values).

    Also a `ValueError`, which is what pydantic lets a validator raise and reports in its place.
    """

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}", field=field)
        self.problem = problem


# pydantic reports a pattern, not what it means: `matching` records the words to say instead.
_PATTERN_PROBLEMS: dict[str, str] = {}


def matching(pattern: str, problem: str) -> StringConstraints:
    """A string constraint: `pattern` must be found in the value, else `problem` is reported."""
    _PATTERN_PROBLEMS[pattern] = problem
    return StringConstraints(pattern=pattern)


Integer = Annotated[int, Strict()]
Text = Annotated[str, StringConstraints(strict=True), matching(r"\S", "must not be blank")]

MAX_DAYS = 3650  # ten years: any date plus this many days stays a date
Days = Annotated[Integer, Field(ge=0, le=MAX_DAYS)]


class Record(BaseModel):
    """A frozen, strictly validated value; see the module's description."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, /, **fields: Any) -> None:
        try:
            super().__init__(**fields)
        except ValidationError as error:
            raise invalid_field(error) from None

    # Marked as pydantic's own initialiser so that validating a record (`from_dict`, a nested
    # record) does not pass through the one above: only records built in code do.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Build from a JSON object: the first problem found is raised as `InvalidField`."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise invalid_field(error) from None

    def to_dict(self) -> dict[str, Any]:
        """JSON- and BSON-ready: enums become their values, tuples lists; other values stay as they are."""
        return _plain(self.model_dump())


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(each) for each in value]
    if isinstance(value, Mapping):
        return {key: _plain(each) for key, each in value.items()}
    return value


def invalid_field(error: ValidationError) -> InvalidField:
    """The first problem of a pydantic `ValidationError`, as an `InvalidField` naming its dotted path.

    A validator that raised `InvalidField` itself named its field relative to
    the value it checked; the path to that value is put in front. A problem
    with the value as a whole (a non-object body) is named after its type.
    """
    first = error.errors()[0]
    path = _dotted(first["loc"])
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, InvalidField):
        return InvalidField(_joined(path, cause.field), cause.problem)
    return InvalidField(path or error.title, _problem(first))


def _dotted(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        # pydantic marks a refused object key by "[key]" after the key: the key itself names the
        # problem, and an empty key, which cannot, leaves the object named.
        if part in ("[key]", ""):
            continue
        path = _joined(path, f"[{part}]" if isinstance(part, int) else str(part))
    return path


def _joined(path: str, name: str) -> str:
    if not path:
        return name
    return path + name if name.startswith("[") else f"{path}.{name}"


def _problem(error: ErrorDetails) -> str:
    context = error.get("ctx", {})
    match error["type"]:
        case "missing":
            return "is required"
        case "extra_forbidden":
            return "is not a known field"
        case "int_type" | "int_parsing" | "int_from_float":
            return "must be an integer"
        case "bool_type" | "bool_parsing":
            return "must be true or false"
        case "string_type":
            return "must be a string"
        case "string_too_short":
            return f"must be at least {context['min_length']} characters"
        case "string_too_long":
            return f"must be at most {context['max_length']} characters"
        case "string_pattern_mismatch":
            return _PATTERN_PROBLEMS.get(context["pattern"], f"must match the pattern {context['pattern']}")
        case "greater_than_equal":
            return f"must be at least {context['ge']}"
        case "greater_than":
            return f"must be more than {context['gt']}"
        case "less_than_equal":
            return f"must be at most {context['le']}"
        case "less_than":
            return f"must be less than {context['lt']}"
        case "enum" | "literal_error":
            return f"must be one of {context['expected']}"
        case "model_type" | "model_attributes_type" | "dict_type":
            return "must be an object"
        case "tuple_type" | "list_type":
            return "must be a list"
        case "too_short" if context["min_length"] == 1:
            return "must not be empty"
        case "too_short":
            return f"must have at least {context['min_length']} entries"
        case "too_long":
            return f"must have at most {context['max_length']} entries"
        case "value_error" | "assertion_error":
            return str(context["error"])
        case _:
            return error["msg"]
