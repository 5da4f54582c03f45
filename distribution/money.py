"""Money is integer fen (分) and rates integer basis points (100 bp = 1%): no floats anywhere."""

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


def yuan(fen: int) -> str:
    """Fen as the yuan amount a message shows, e.g. 1234 -> "12.34元"."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}元"


def percent(basis_points: int) -> str:
    """Basis points for people: 1250 -> "12.50%"."""
    return f"{basis_points // 100}.{basis_points % 100:02d}%"
