"""Forms generated from the records the merchant API validates with, so that a form is never validated twice.

Each field of a record gets an input from its type: a checkbox for a boolean, a
select for an enum, a text input for a number or a string (the record, not the
browser, says what is wrong with it), a comma list for a list of numbers or
strings, a table for a list of flat records (promoter grades), and a JSON
textarea for anything nested further. A posted form becomes the dict the record
takes; a blank input is left out and so takes the record's default, as the
API's PUT documents. The record's `InvalidField` then names an input: its field
path is the input's name, or starts with it.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any, Generic, TypeVar

from distribution.records import InvalidField, Record
from web.base import MAX_JSON_DEPTH, json_depth

R = TypeVar("R", bound=Record)

NONE_ENTRY = "-"  # a list entry with no value, such as an upline without a grade
SPARE_ROWS = 2  # blank rows below a table's entries, to add some
_LIST_SEPARATORS = re.compile(r"[,，\n]")
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
_ROW_CELL = re.compile(r"^(\w+)\[(\d+)\]\.(\w+)$")
_ROW_PATH = re.compile(r"^(\w+)\[(\d+)\]")
_ROOT = re.compile(r"^\w+")


class Widget(StrEnum):
    CHECKBOX = "checkbox"
    SELECT = "select"
    NUMBER = "number"
    TEXT = "text"
    LIST = "list"  # entries separated by commas or lines
    ROWS = "rows"  # a table, one row per record
    JSON = "json"


@dataclass(frozen=True)
class Words:
    """What a person reads about a field: its label and a hint."""

    label: str
    hint: str = ""


@dataclass(frozen=True)
class FormField:
    name: str
    widget: Widget
    words: Words
    choices: tuple[tuple[str, str], ...] = ()  # SELECT: (value, label)
    entry_widget: Widget | None = None  # LIST: NUMBER or TEXT
    entries_optional: bool = False  # LIST: NONE_ENTRY stands for null
    columns: tuple[FormField, ...] = ()  # ROWS: the fields of one row

    @property
    def label(self) -> str:
        return self.words.label

    @property
    def hint(self) -> str:
        return self.words.hint

    def cell(self, index: int, column: FormField) -> str:
        return f"{self.name}[{index}].{column.name}"

    def parsed(self, text: str) -> Any:
        """A non-blank input's value as the record takes it; what does not parse goes as typed, for the record to
        refuse in its own words."""
        if self.widget is Widget.LIST:
            entries = [entry.strip() for entry in _LIST_SEPARATORS.split(text) if entry.strip()]
            return [None if self.entries_optional and entry == NONE_ENTRY else _scalar(self.entry_widget, entry)
                    for entry in entries]
        if self.widget is Widget.JSON:
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError) as error:
                raise InvalidField(self.name, f"不是有效的 JSON：{error}") from None
            if json_depth(text) > MAX_JSON_DEPTH:
                raise InvalidField(self.name, f"JSON 的嵌套不能超过 {MAX_JSON_DEPTH} 层")
            return parsed
        return _scalar(self.widget, text)

    def shown(self, value: Any) -> str:
        """A stored value as the input shows it."""
        if value is None:
            return ""
        if self.widget is Widget.LIST:
            return ", ".join(NONE_ENTRY if entry is None else str(entry) for entry in value)
        if self.widget is Widget.JSON:
            return json.dumps(value, ensure_ascii=False, indent=2)
        return str(value)


class RecordForm(Generic[R]):
    """The form of one record: its fields, the record built from a posted form, and a stored value's inputs."""

    def __init__(self, record: type[R], words: Mapping[str, Words], choice_labels: Mapping[str, str]):
        self.record = record
        self.fields = [_form_field(name, info.annotation, words, choice_labels)
                       for name, info in record.model_fields.items()]
        self._names = {field.name for field in self.fields}

    def validated(self, posted: Mapping[str, str]) -> R:
        """The record the posted form describes; InvalidField naming the input's path when it describes none."""
        data, positions = self._data(posted)
        try:
            return self.record.from_dict(data)
        except InvalidField as error:
            raise InvalidField(_posted_path(error.field, positions), error.problem) from None

    def values(self, value: R) -> dict[str, str]:
        """The inputs' text showing `value`; a checked checkbox is present, an unchecked one absent."""
        stored = value.to_dict()
        shown: dict[str, str] = {}
        for field in self.fields:
            if field.widget is Widget.CHECKBOX:
                if stored[field.name]:
                    shown[field.name] = "on"
            elif field.widget is Widget.ROWS:
                for index, row in enumerate(stored[field.name]):
                    shown.update({field.cell(index, column): column.shown(row[column.name])
                                  for column in field.columns})
            else:
                shown[field.name] = field.shown(stored[field.name])
        return shown

    def row_count(self, field: FormField, values: Mapping[str, str]) -> int:
        """The rows a table shows: those the values fill, and some blank ones."""
        indexes = [int(match[2]) for key in values if (match := _ROW_CELL.match(key)) and match[1] == field.name]
        return max(indexes, default=-1) + 1 + SPARE_ROWS

    def input_of(self, path: str) -> str | None:
        """The input an error's field path belongs to: a table's cell, else the top-level field; None when the
        error is about the record as a whole."""
        cell = _ROW_CELL.match(path)
        if cell and cell[1] in self._names:
            return path
        root = _ROOT.match(path)
        return root[0] if root and root[0] in self._names else None

    def _data(self, posted: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, list[int]]]:
        data: dict[str, Any] = {}
        positions: dict[str, list[int]] = {}
        for field in self.fields:
            text = posted.get(field.name, "")
            if field.widget is Widget.CHECKBOX:
                data[field.name] = field.name in posted
            elif field.widget is Widget.ROWS:
                data[field.name], positions[field.name] = _rows(field, posted)
            elif field.widget is Widget.LIST:
                data[field.name] = field.parsed(text)  # cleared: no entries
            elif text.strip():
                data[field.name] = field.parsed(text)
        return data, positions


def _scalar(widget: Widget | None, text: str) -> Any:
    return int(text) if widget is Widget.NUMBER and _INTEGER.match(text) else text


def _rows(field: FormField, posted: Mapping[str, str]) -> tuple[list[dict[str, Any]], list[int]]:
    """A table's rows that hold anything, and where each was in the form (blank rows are skipped)."""
    cells: dict[int, dict[str, str]] = {}
    for key, text in posted.items():
        match = _ROW_CELL.match(key)
        if match and match[1] == field.name:
            cells.setdefault(int(match[2]), {})[match[3]] = text
    rows, positions = [], []
    for index in sorted(cells):
        row = cells[index]
        if any(text.strip() for text in row.values()):
            rows.append({column.name: column.parsed(row[column.name])
                         for column in field.columns if row.get(column.name, "").strip()})
            positions.append(index)
    return rows, positions


def _posted_path(path: str, positions: Mapping[str, list[int]]) -> str:
    """An error's path with a table entry's index turned into the row it was posted in."""
    match = _ROW_PATH.match(path)
    if match and match[1] in positions and int(match[2]) < len(positions[match[1]]):
        return f"{match[1]}[{positions[match[1]][int(match[2])]}]{path[match.end():]}"
    return path


def _form_field(name: str, annotation: Any, words: Mapping[str, Words], choice_labels: Mapping[str, str]) -> FormField:
    said = words.get(name, Words(name))
    kind, _ = _unwrapped(annotation)
    if kind is bool:
        return FormField(name, Widget.CHECKBOX, said)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return FormField(name, Widget.SELECT, said,
                         choices=tuple((each.value, choice_labels.get(each.value, each.value)) for each in kind))
    if kind is int:
        return FormField(name, Widget.NUMBER, said)
    if kind is str:
        return FormField(name, Widget.TEXT, said)
    if typing.get_origin(kind) is tuple:
        entry, optional = _unwrapped(typing.get_args(kind)[0])
        if entry in (int, str):
            return FormField(name, Widget.LIST, said, entry_widget=Widget.NUMBER if entry is int else Widget.TEXT,
                             entries_optional=optional)
        if isinstance(entry, type) and issubclass(entry, Record):
            columns = tuple(_form_field(column, info.annotation, words, choice_labels)
                            for column, info in entry.model_fields.items())
            if all(column.widget in (Widget.NUMBER, Widget.TEXT, Widget.SELECT) for column in columns):
                return FormField(name, Widget.ROWS, said, columns=columns)
    return FormField(name, Widget.JSON, said)


def _unwrapped(annotation: Any) -> tuple[Any, bool]:
    """The type under `Annotated[...]` and `... | None`, and whether None is allowed."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            arguments = [each for each in typing.get_args(annotation) if each is not type(None)]
            optional = optional or len(arguments) < len(typing.get_args(annotation))
            if len(arguments) != 1:
                return annotation, optional
            annotation = arguments[0]
        else:
            return annotation, optional
