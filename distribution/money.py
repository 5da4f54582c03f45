"""Money is integer fen (分) and rates integer basis points (100 bp = 1%): no floats anywhere."""

BASIS_POINTS = 10_000


def share_fen(amount_fen: int, rate_bp: int) -> int:
    """`rate_bp` of `amount_fen`, rounded down to the fen."""
    return amount_fen * rate_bp // BASIS_POINTS
