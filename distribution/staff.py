"""The merchant's staff: roles, what each may do, and the rules of their accounts.

A role is a set of permissions; a console page or action names the one permission it needs, and
`can` is the only check. Owners hold every permission; finance moves money and reads the books;
operators run members, applications, posters, the catalogue and orders but never move money.
"""

from __future__ import annotations

import re
from enum import StrEnum

from distribution.errors import Forbidden, Invalid


class Role(StrEnum):
    OWNER = "owner"
    FINANCE = "finance"
    OPERATOR = "operator"


class Permission(StrEnum):
    VIEW = "view"  # the dashboard, lists and detail pages
    MEMBERS = "members"  # re-bind, freeze, change grade
    APPLICATIONS = "applications"  # approve or reject promoter applications
    POSTERS = "posters"  # poster templates and backgrounds
    CATALOGUE = "catalogue"  # products, their SKUs, stock and pictures
    ORDERS = "orders"  # orders and their events
    MONEY = "money"  # approve, reject, retry and mark paid withdrawals
    LEDGER = "ledger"  # the ledger and commission books
    EXPORTS = "exports"  # CSV and XLSX downloads
    SETTINGS = "settings"  # commission, withdrawal, grade, poster and other settings
    AUDIT = "audit"  # read the audit log


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.FINANCE: frozenset({Permission.VIEW, Permission.MONEY, Permission.LEDGER, Permission.EXPORTS}),
    Role.OPERATOR: frozenset({Permission.VIEW, Permission.MEMBERS, Permission.APPLICATIONS, Permission.POSTERS,
                              Permission.ORDERS, Permission.CATALOGUE}),
}

# Failed logins before a user name or an address is locked, and for how long.
MAX_FAILED_LOGINS = 5
LOCKOUT_SECONDS = 15 * 60
MIN_PASSWORD_CHARACTERS = 12
MAX_PASSWORD_CHARACTERS = 256  # argon2 hashes any length; this bounds the work one request can ask for
USERNAME = re.compile(r"[a-z][a-z0-9_.-]{1,31}")


def can(role: Role | str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False  # a role this version does not know grants nothing


def require(role: Role | str, permission: Permission) -> None:
    if not can(role, permission):
        raise Forbidden(f"the {role} role may not do this ({permission})", code="forbidden_role")


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):  # `$` would let a trailing newline through
        raise Invalid("a user name is 2-32 lowercase letters, digits, '_', '.' or '-', starting with a letter",
                      field="username")
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARACTERS:
        raise Invalid(f"a password has at least {MIN_PASSWORD_CHARACTERS} characters", field="password")
    if len(password) > MAX_PASSWORD_CHARACTERS:
        raise Invalid(f"a password has at most {MAX_PASSWORD_CHARACTERS} characters", field="password")
    if len(set(password)) < 6:
        raise Invalid("a password uses at least 6 different characters", field="password")
    return password
