"""PW-9: support staff have no way to set, see or reset a user's password.

The public API is walked with `inspect`: every public method of every class
`securepractice` exports and of every service facade. Then the password
flows are tried by a support member against a user.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

import pytest

import securepractice
from practice.office import Office
from securepractice.portal import Accounts, Billing, PracticeAdministration
from securepractice.practice import support
from securepractice.testing import PASSWORD

SERVICES: tuple[type, ...] = (PracticeAdministration, Billing, Accounts)
#: Parameters through which a method could address a user other than the caller.
OTHER_USER = {"user_id", "account_id", "subject", "target"}
SECRET_WORDS = ("password", "credential", "hash")
#: The one support action about a password: it marks it compromised (RC-4), so that its
#: user must choose a new one. It takes no password, changes no hash and returns a User.
MARK = "mark_password_compromised"


def public_methods(cls: type) -> Iterator[tuple[str, Callable[..., object]]]:
    for name, member in inspect.getmembers(cls, callable):
        if not name.startswith("_") and not inspect.isclass(member):
            yield name, member


def exported_classes() -> list[type]:
    return [
        member
        for name in securepractice.__all__
        if inspect.isclass(member := getattr(securepractice, name))
    ]


def parameters(method: Callable[..., object]) -> list[str]:
    try:
        return list(inspect.signature(method).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        return []


def test_pw9_support_actions_have_no_password_method() -> None:
    """PW-9: the support actions have no method about passwords; none takes a password or hash.

    The practice facade inherits nothing: signing in is the account facade's alone.
    """
    own = {
        name: m
        for name, m in public_methods(PracticeAdministration)
        if m.__module__ == support.__name__
    }
    assert {"unlock", "deactivate", "grant_user_manager", "edit_practice"} <= set(own)
    for name, method in own.items():
        assert name == MARK or not any(word in name for word in SECRET_WORDS), name
        for parameter in parameters(method):
            assert not any(word in parameter for word in SECRET_WORDS), (name, parameter)
    password_named = [n for n, _ in public_methods(PracticeAdministration) if "password" in n]
    assert password_named == [MARK]
    assert not hasattr(PracticeAdministration, "sign_in")
    assert not hasattr(Billing, "sign_in")


@pytest.mark.parametrize("cls", [*SERVICES, *exported_classes()], ids=lambda c: c.__name__)
def test_pw9_no_method_sets_a_password_for_someone_else(cls: type) -> None:
    """PW-9: a method that takes a password never also names another user to act on.

    The password flows act for whoever holds the session or the e-mailed link.
    """
    for name, method in public_methods(cls):
        names = parameters(method)
        if any("password" in p for p in names) or ("password" in name and name != MARK):
            assert not OTHER_USER & set(names), (cls.__name__, name, names)


@pytest.mark.parametrize("cls", SERVICES, ids=lambda c: c.__name__)
def test_pw9_no_service_hands_out_a_credential(cls: type) -> None:
    """PW-9: no service method returns a password, a hash or a credential record."""
    for name, method in public_methods(cls):
        returned = str(inspect.signature(method).return_annotation)
        assert "Credential" not in returned, (cls.__name__, name)
        assert "hash" not in returned.lower(), (cls.__name__, name)


def test_pw9_support_changing_a_password_changes_only_their_own(office: Office) -> None:
    """PW-9: the change-password flow acts on the session's own user, so never on another's."""
    with office.context.storage.unit_of_work() as uow:
        before = uow.credentials.get(office.user_a.id)
    result = office.accounts.change_password(
        office.support.token,
        current_password=PASSWORD,
        new_password="Another-Secret-9",
        confirmation="Another-Secret-9",
    )
    assert result.ok
    with office.context.storage.unit_of_work() as uow:
        assert uow.credentials.get(office.user_a.id) == before
    assert office.accounts.sign_in(email="user@alpha.example", password=PASSWORD).ok
    assert office.accounts.sign_in(email="help@portal.example", password="Another-Secret-9").ok


def test_pw9_a_reset_asked_by_support_reaches_only_the_user(office: Office) -> None:
    """PW-9, RS-1: anyone may ask for a reset, but the link goes only to the user's inbox."""
    office.outbox.clear()
    office.accounts.forgot_password(email="user@alpha.example")
    assert inspect.signature(Accounts.forgot_password).return_annotation == "None"
    assert [email.to for email in office.outbox.emails] == ["user@alpha.example"]
    assert office.outbox.last_link("user@alpha.example").startswith("https://portal.example")
