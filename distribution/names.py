"""How a member's name is shown to other members: enough for an upline to recognise a teammate, not enough for a
stranger to identify them."""

from __future__ import annotations


def mask_name(name: str | None) -> str:
    """张** / a***: the first character, then one star per further character, three at most."""
    if not name:
        return "*"
    return name[0] + "*" * min(max(len(name) - 1, 1), 3)
