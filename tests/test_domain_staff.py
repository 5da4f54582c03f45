import pytest

from distribution.errors import Forbidden, Invalid
from distribution.staff import (
    MAX_PASSWORD_CHARACTERS,
    MIN_PASSWORD_CHARACTERS,
    ROLE_PERMISSIONS,
    Permission,
    Role,
    can,
    check_password,
    check_username,
    require,
)

MONEY_AND_BOOKS = {Permission.MONEY, Permission.LEDGER, Permission.EXPORTS}
RUNNING_THE_SHOP = {Permission.MEMBERS, Permission.APPLICATIONS, Permission.POSTERS, Permission.ORDERS,
                    Permission.CATALOGUE}
OWNERS_ONLY = {Permission.SETTINGS, Permission.AUDIT}


def test_every_role_has_permissions_and_owners_hold_all_of_them():
    assert set(ROLE_PERMISSIONS) == set(Role)
    assert all(can(Role.OWNER, permission) for permission in Permission)


def test_finance_moves_money_and_reads_the_books_but_runs_nothing_else():
    assert {permission for permission in Permission if can(Role.FINANCE, permission)} == {Permission.VIEW,
                                                                                         *MONEY_AND_BOOKS}


def test_operators_run_members_applications_posters_and_orders_but_never_touch_money():
    assert {permission for permission in Permission if can(Role.OPERATOR, permission)} == {Permission.VIEW,
                                                                                          *RUNNING_THE_SHOP}
    assert not any(can(Role.OPERATOR, permission) for permission in MONEY_AND_BOOKS)


@pytest.mark.parametrize("permission", sorted(OWNERS_ONLY))
def test_settings_and_the_audit_log_are_for_owners_alone(permission):
    assert [role for role in Role if can(role, permission)] == [Role.OWNER]


def test_roles_are_accepted_as_stored_strings_and_an_unknown_role_grants_nothing():
    assert can("finance", Permission.MONEY) and not can("operator", Permission.MONEY)
    assert not any(can("superuser", permission) for permission in Permission)
    assert not can("", Permission.VIEW)


def test_require_passes_quietly_or_refuses_naming_the_role_and_permission():
    require(Role.OWNER, Permission.AUDIT)
    require("operator", Permission.MEMBERS)
    with pytest.raises(Forbidden) as refused:
        require(Role.OPERATOR, Permission.MONEY)
    assert refused.value.code == "forbidden_role"
    assert "operator" in refused.value.message and "money" in refused.value.message
    with pytest.raises(Forbidden):
        require("ghost", Permission.VIEW)


@pytest.mark.parametrize("username", ["admin", "li.na", "ops_2", "a1", "z" + "x" * 31])
def test_good_user_names_pass_unchanged(username):
    assert check_username(username) == username


@pytest.mark.parametrize("username", ["", "a", "Admin", "1admin", "_admin", "li na", "王五", "a" * 33, "admin\n",
                                      "admin;drop", "-x"])
def test_bad_user_names_are_refused_naming_the_field(username):
    with pytest.raises(Invalid) as refused:
        check_username(username)
    assert refused.value.field == "username"


def test_a_good_password_passes_unchanged():
    password = "correct horse battery staple"
    assert check_password(password) == password
    assert check_password("密码很长而且足够复杂的句子") == "密码很长而且足够复杂的句子"


@pytest.mark.parametrize("password,why", [
    ("short1!", "at least"),
    ("x" * (MIN_PASSWORD_CHARACTERS - 1), "at least"),
    ("x" * (MAX_PASSWORD_CHARACTERS + 1), "at most"),
    ("aaaaaaaaaaaaaaaa", "different characters"),
    ("ababababcdcdcdcd", "different characters"),
])
def test_weak_or_absurd_passwords_are_refused_naming_the_field(password, why):
    with pytest.raises(Invalid) as refused:
        check_password(password)
    assert refused.value.field == "password" and why in refused.value.message


def test_the_length_bounds_are_inclusive():
    assert check_password("abcdef" * 2)  # exactly the minimum, six different characters
    assert check_password(("abcdef" * 43)[:MAX_PASSWORD_CHARACTERS])
