"""Money is integer fen (分) and rates integer basis points (100 bp = 1%): no floats anywhere."""

import re
from typing import Annotated

from pydantic import Field

from distribution.records import Integer

BASIS_POINTS = 10_000
# A billion yuan: the most any one amount or setting holds. Times a rate or a quantity it stays far
# inside the 64-bit integers MongoDB stores.
MAX_FEN = 100_000_000_000

Fen = Annotated[Integer, Field(ge=0, le=MAX_FEN)]
BasisPoints = Annotated[Integer, Field(ge=0, le=BASIS_POINTS)]


def share_fen(amount_fen: int, rate_bp: int) -> int:
    """`rate_bp` of `amount_fen`, rounded down to the fen."""
    return amount_fen * rate_bp // BASIS_POINTS


_YUAN = re.compile(r"\s*([0-9]{1,9})(?:\.([0-9]{1,2}))?\s*")


def fen_of_yuan(text: str) -> int:
    """Yuan as people type them, exactly, in fen: "99" -> 9900, "12.5" -> 1250; ValueError unless it is a
    non-negative amount of at most two decimals (and under a billion yuan)."""
    matched = _YUAN.fullmatch(text)
    if matched is None:
        raise ValueError("must be an amount in yuan with at most two decimals, e.g. 99.00")
    whole, cents = matched.groups()
    return int(whole) * 100 + int((cents or "").ljust(2, "0"))


def yuan_digits(fen: int, grouped: bool = False) -> str:
    """Fen as yuan digits, exactly: -123456 -> "-1234.56" ("-1,234.56" grouped in thousands)."""
    whole = f"{abs(fen) // 100:,}" if grouped else str(abs(fen) // 100)
    return f"{'-' if fen < 0 else ''}{whole}.{abs(fen) % 100:02d}"


def yuan(fen: int) -> str:
    """Fen as the yuan amount a message shows, e.g. 1234 -> "12.34元"."""
    return f"{yuan_digits(fen)}元"


def percent(basis_points: int) -> str:
    """Basis points for people: 1250 -> "12.50%"."""
    return f"{basis_points // 100}.{basis_points % 100:02d}%"
