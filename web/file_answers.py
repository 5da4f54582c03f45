"""Answering with an export file (CSV or XLSX), streamed: shared by the console's exports and the merchant API's.

Rows are read a batch at a time (`services.exports.Export`). A CSV batch is written to the client and
flushed before the next is read; an XLSX batch is added to a workbook in a temporary file (in a thread, off
the event loop), which is sent in chunks once complete and then deleted. Memory holds a batch, whether the
export has a thousand rows or a million. The first batch is read before anything is sent, so a bad filter or
a store that cannot be reached still answers with its 4xx or 503; a failure after that cuts the connection,
so that a truncated file never arrives looking complete.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from datetime import datetime
from pathlib import Path

import tornado.web
from tornado.iostream import StreamClosedError

from distribution.calendar import CHINA
from services.export_files import XlsxBook, csv_header, csv_rows
from services.exports import Export

log = logging.getLogger(__name__)

FILE_CHUNK = 256 * 1024
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
FILE_FORMATS = "csv|xlsx"


class FileAnswers(tornado.web.RequestHandler):
    """A handler that answers with export files."""

    async def send_export(self, export: Export, file_format: str,
                          before_sending: Callable[[], Awaitable[None]]) -> None:
        """`export` as `file_format` ("csv" or "xlsx"); `before_sending` runs once its first batch is read (the
        audit log's record of the export)."""
        async with aclosing(export.rows) as rows:
            first = await anext(rows, None)
            await before_sending()
            try:
                if file_format == "csv":
                    await self._send_csv(export, first, rows)
                else:
                    await self._send_xlsx(export, first, rows)
            except StreamClosedError:
                return  # the client went away: nothing left to send to
            except Exception:
                if self._headers_written:
                    # Too late for an error answer: without the end of the chunked body, the client knows the
                    # file is incomplete.
                    log.warning("export %s.%s cut off after it started", export.name, file_format)
                    self.request.connection.close()
                raise

    def _attachment(self, export: Export, file_format: str) -> None:
        stamp = datetime.now(CHINA).strftime("%Y%m%d-%H%M")
        self.set_header("Content-Type", CONTENT_TYPES[file_format])
        self.set_header("Content-Disposition", f'attachment; filename="{export.name}-{stamp}.{file_format}"')

    async def _send_csv(self, export: Export, batch: list | None, rows: AsyncIterator[list]) -> None:
        self._attachment(export, "csv")
        self.write(csv_header(export.columns))
        while batch is not None:
            self.write(csv_rows(export.columns, batch))
            batch = None  # not held while the next one is read
            await self.flush()
            batch = await anext(rows, None)

    async def _send_xlsx(self, export: Export, batch: list | None, rows: AsyncIterator[list]) -> None:
        with tempfile.TemporaryDirectory(prefix="export-") as directory:
            path = Path(directory) / f"{export.name}.xlsx"
            book = await asyncio.to_thread(XlsxBook, path, export.columns)
            while batch is not None:
                await asyncio.to_thread(book.add, batch)
                batch = None  # not held while the next one is read
                batch = await anext(rows, None)
            await asyncio.to_thread(book.close)
            self._attachment(export, "xlsx")
            self.set_header("Content-Length", str(path.stat().st_size))
            with path.open("rb") as file:
                while chunk := await asyncio.to_thread(file.read, FILE_CHUNK):
                    self.write(chunk)
                    await self.flush()
