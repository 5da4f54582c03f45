"""Posters as JPEG: the whole canvas, or only the rows of blocks a poster changed.

Encoded with a restart marker after every row of blocks (MCUs), each row's
data stands on its own: a poster's JPEG is then its template's, with the rows
its promoter's parts touch re-encoded and swapped in. Same pixels as encoding
the whole poster, in about half the time.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image

from posters.templates import Box

JPEG_QUALITY = 85
SUBSAMPLING = "4:2:0"
BLOCK_ROW_PX = 16  # the height of a row of MCUs with 4:2:0 subsampling
START_OF_SCAN = 0xDA
END_OF_IMAGE = b"\xff\xd9"
RESTART_MARKERS = tuple(bytes((0xFF, 0xD0 + number)) for number in range(8))
# Inside entropy-coded data every 0xFF byte is followed by a stuffed 0x00, so
# 0xFF 0xD0-0xD7 there can only be a restart marker.
_RESTART_MARKER = re.compile(rb"\xff[\xd0-\xd7]")

BlockRows = tuple[int, int]  # first row of blocks, and the one after the last


def encode_jpeg(image: Image.Image) -> bytes:
    return _encoded(image)


@dataclass(frozen=True)
class JpegRows:
    header: bytes  # from the start of the image to the end of the scan header
    rows: tuple[bytes, ...]  # entropy-coded data of each row of blocks, top to bottom

    @classmethod
    def encode(cls, image: Image.Image) -> JpegRows:
        data = _encoded(image, restart_marker_rows=1)
        scan_start = _scan_data_start(data)
        rows = tuple(_RESTART_MARKER.split(data[scan_start : -len(END_OF_IMAGE)]))
        if len(rows) != -(-image.height // BLOCK_ROW_PX):
            raise RuntimeError(f"the JPEG encoder did not put a restart marker after each {BLOCK_ROW_PX} px row")
        return cls(data[:scan_start], rows)

    def with_rows_from(self, image: Image.Image, changed: tuple[BlockRows, ...]) -> bytes:
        """The JPEG of `image` (the size of the one encoded here), given that
        it differs only within the `changed` rows of blocks."""
        rows = list(self.rows)
        for first, end in changed:
            band = image.crop((0, first * BLOCK_ROW_PX, image.width, min(end * BLOCK_ROW_PX, image.height)))
            rows[first:end] = JpegRows.encode(band).rows
        # A restart marker goes between rows, numbered 0-7 over and over.
        marked = [row + RESTART_MARKERS[number % 8] for number, row in enumerate(rows[:-1])]
        return self.header + b"".join(marked) + rows[-1] + END_OF_IMAGE


def block_rows(regions: tuple[Box, ...]) -> tuple[BlockRows, ...]:
    """The rows of blocks that the regions touch, as few ranges as possible."""
    spans = sorted((region.top // BLOCK_ROW_PX, -(-region.bottom // BLOCK_ROW_PX)) for region in regions)
    merged: list[BlockRows] = []
    for first, end in spans:
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((first, end))
    return tuple(merged)


def _encoded(image: Image.Image, **options: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, subsampling=SUBSAMPLING, **options)
    return out.getvalue()


def _scan_data_start(data: bytes) -> int:
    position = 2  # after the start-of-image marker
    while True:
        marker = data[position + 1]
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == START_OF_SCAN:
            return position
