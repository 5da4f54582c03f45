"""Export files: rows of cells as CSV text or an XLSX workbook, written a batch at a time.

One convention for both: a single header row in Chinese, whose money columns say "(元)"; money is yuan with
two decimals (a number formatted `0.00` in XLSX, the text "12.34" in CSV); times are China's (UTC+8), a date
and time cell in XLSX and "2026-05-01 12:00:00" in CSV. CSV is UTF-8 with a byte-order mark, which is how
Excel knows to read Chinese from it.

Text a person typed (a nickname, a note) may start like a formula; a spreadsheet must show it, never run it:
XLSX cells are written as strings, and such CSV cells get a leading apostrophe (as OWASP advises).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import xlsxwriter

from distribution.calendar import CHINA
from distribution.money import yuan_digits

BOM = "\ufeff"
# XLSX's own limit of rows in a sheet: an export longer than that goes on in a next sheet, under its header.
XLSX_ROWS_PER_SHEET = 1_048_576
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Cell(Enum):
    TEXT = "text"
    COUNT = "count"
    YUAN = "yuan"  # the value is in fen
    TIME = "time"  # an aware datetime


@dataclass(frozen=True)
class Column:
    title: str
    value: Callable[[dict], Any]
    cell: Cell = Cell.TEXT


def china_time(at: datetime) -> datetime:
    """`at` on China's clock, without a zone (as spreadsheets keep times)."""
    return at.astimezone(CHINA).replace(tzinfo=None)


def _csv_cell(value: Any, cell: Cell) -> Any:
    if value is None:
        return ""
    if cell is Cell.YUAN:
        return yuan_digits(value)
    if cell is Cell.TIME:
        return china_time(value).strftime("%Y-%m-%d %H:%M:%S")
    if cell is Cell.TEXT and isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_text(rows: Iterable[Sequence[Any]]) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    return text.getvalue()


def csv_header(columns: Sequence[Column]) -> bytes:
    return (BOM + _csv_text([[column.title for column in columns]])).encode()


def csv_rows(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> bytes:
    cells = [column.cell for column in columns]
    return _csv_text([_csv_cell(value, cell) for value, cell in zip(row, cells)] for row in rows).encode()


class XlsxBook:
    """A workbook written to `path` row by row in XlsxWriter's constant-memory mode: each row goes to a
    temporary file (in `path`'s directory) as it is added, so memory holds a row, not the sheet. Blocking:
    callers on an event loop run `add` and `close` in a thread."""

    def __init__(self, path: Path, columns: Sequence[Column]):
        self.columns = columns
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": str(path.parent)})
        money = self.book.add_format({"num_format": "0.00"})
        moment = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.header = self.book.add_format({"bold": True})
        # Per column: the sheet's method that writes its kind of cell, the cell's format, and the value's conversion.
        self.writers: list[tuple[str, Any, Callable[[Any], Any]]] = []
        for column in columns:
            if column.cell is Cell.YUAN:
                self.writers.append(("write_number", money, lambda fen: fen / 100))
            elif column.cell is Cell.TIME:
                self.writers.append(("write_datetime", moment, china_time))
            elif column.cell is Cell.COUNT:
                self.writers.append(("write_number", None, int))
            else:
                self.writers.append(("write_string", None, str))
        self.cells: list[tuple[int, Callable[..., Any], Any, Callable[[Any], Any]]] = []
        self.row = XLSX_ROWS_PER_SHEET

    def _next_sheet(self) -> None:
        sheet = self.book.add_worksheet()
        sheet.freeze_panes(1, 0)
        for index, column in enumerate(self.columns):
            sheet.write_string(0, index, column.title, self.header)
            sheet.set_column(index, index, max(10, 2 * len(column.title) + 2))
        self.cells = [(index, getattr(sheet, method), style, convert)
                      for index, (method, style, convert) in enumerate(self.writers)]
        self.row = 1

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        for values in rows:
            if self.row == XLSX_ROWS_PER_SHEET:
                self._next_sheet()
            row = self.row
            for (index, write, style, convert), value in zip(self.cells, values):
                if value is not None and value != "":
                    write(row, index, convert(value), style)
            self.row += 1

    def close(self) -> None:
        if not self.cells:
            self._next_sheet()  # an export of nothing is still a sheet with its header
        self.book.close()
