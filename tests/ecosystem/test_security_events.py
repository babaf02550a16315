"""Security events: logged by the module that wrote them, and given to typed hooks (OP-5)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from securepractice import SettingsError
from securepractice.accounts._shared import audit
from securepractice.context import RequestContext, request
from securepractice.dependencies import Dependencies
from securepractice.events import (
    AccountLocked,
    PasswordChanged,
    RoleGranted,
    SecurityEvent,
    SignedIn,
    SignInRefused,
)
from securepractice.portal import Accounts, PracticeAdministration
from securepractice.records import AuditEvent, Role
from securepractice.testing import PASSWORD, World

EMAIL = "dr.smith@example.com"
WRONG = "Not the password 1!"
NEW_PASSWORD = "An entirely new one 7?"


@pytest.fixture
def world(context: Dependencies) -> World:
    world = World(context)
    world.user(EMAIL, practice=world.practice())
    return world


def lock(context: Dependencies) -> None:
    for _ in range(context.settings.sign_in.max_failed_sign_ins):
        Accounts(context).sign_in(email=EMAIL, password=WRONG)


@pytest.mark.usefixtures("world")
def test_each_kind_reaches_only_its_own_handlers(context: Dependencies) -> None:  # OP-5
    seen: dict[str, list[SecurityEvent]] = {"signed": [], "refused": [], "locked": []}
    context.events.subscribe(SignedIn, seen["signed"].append)
    context.events.subscribe(SignInRefused, seen["refused"].append)
    context.events.subscribe(AccountLocked, seen["locked"].append)
    accounts = Accounts(context)
    signed = accounts.sign_in(email=EMAIL, password=PASSWORD)
    lock(context)
    assert [e.user_id for e in seen["signed"]] == [signed.user_id]
    assert [e.audit.outcome for e in seen["refused"]] == ["wrong_password"] * (
        context.settings.sign_in.max_failed_sign_ins
    )
    assert [(e.audit.action, e.user_id) for e in seen["locked"]] == [
        ("account.locked", signed.user_id)
    ]
    assert all(isinstance(e, AccountLocked) for e in seen["locked"])


def test_password_changes_and_role_grants_are_published(
    context: Dependencies, world: World
) -> None:  # OP-5
    changed: list[PasswordChanged] = []
    granted: list[RoleGranted] = []
    context.events.subscribe(PasswordChanged, changed.append)
    context.events.subscribe(RoleGranted, granted.append)
    user = world.user("pat@example.com", practice=world.practice("Other"))
    support = world.user("help@example.com", roles=(Role.SUPPORT,))
    del support
    token = world.sign_in("pat@example.com")
    Accounts(context).change_password(
        token, current_password=PASSWORD, new_password=NEW_PASSWORD, confirmation=NEW_PASSWORD
    )
    PracticeAdministration(context).grant_user_manager(
        world.sign_in("help@example.com"), user_id=user.id
    )
    assert [(e.audit.action, e.user_id) for e in changed] == [("password.changed", user.id)]
    assert [(e.user_id, dict(e.audit.detail)["role"]) for e in granted] == [
        (user.id, Role.USER_MANAGER.value)
    ]


@pytest.mark.usefixtures("world")
def test_a_handler_that_raises_never_fails_the_action(
    context: Dependencies, caplog: pytest.LogCaptureFixture
) -> None:  # OP-5
    def broken(_event: SignedIn) -> None:
        raise RuntimeError("the pager is down")

    context.events.subscribe(SignedIn, broken)
    with caplog.at_level(logging.ERROR, logger="securepractice"):
        assert Accounts(context).sign_in(email=EMAIL, password=PASSWORD).ok
    assert any("event hook raised" in r.getMessage() for r in caplog.records)


@pytest.mark.usefixtures("world")
def test_an_unsubscribed_handler_hears_nothing_more(context: Dependencies) -> None:  # OP-5
    heard: list[SignedIn] = []
    every: list[AuditEvent] = []
    stop = context.events.subscribe(SignedIn, heard.append)
    stop_every = context.events.subscribe_all(every.append)
    Accounts(context).sign_in(email=EMAIL, password=PASSWORD)
    stop()
    stop_every()
    Accounts(context).sign_in(email=EMAIL, password=PASSWORD)
    assert len(heard) == 1
    assert [e.action for e in every] == ["sign_in"]


@pytest.mark.usefixtures("world")
def test_a_handler_may_subscribe_another_while_events_are_published(
    context: Dependencies,
) -> None:  # OP-5
    locked: list[AccountLocked] = []

    def subscribe_more(_event: SignedIn) -> None:
        context.events.subscribe(AccountLocked, locked.append)

    context.events.subscribe(SignedIn, subscribe_more)
    assert Accounts(context).sign_in(email=EMAIL, password=PASSWORD).ok
    lock(context)
    assert len(locked) == 1


def test_only_the_event_kinds_are_taken(context: Dependencies) -> None:  # OP-5
    with pytest.raises(SettingsError) as refused:
        context.events.subscribe(AuditEvent, print)  # type: ignore[type-var]
    assert refused.value.field == "kind"


@pytest.mark.usefixtures("world")
def test_events_are_logged_by_their_module_at_their_level_without_secrets(
    context: Dependencies, caplog: pytest.LogCaptureFixture
) -> None:  # OP-5
    with (
        caplog.at_level(logging.INFO, logger="securepractice"),
        request(RequestContext(client_address="203.0.113.7", request_id="req-1")),
    ):
        signed = Accounts(context).sign_in(email=EMAIL, password=PASSWORD)
        lock(context)
    by_action = {r.getMessage().split()[0]: r for r in caplog.records}
    assert by_action["sign_in"].name == "securepractice.accounts.signin"
    assert by_action["sign_in"].levelno == logging.INFO
    assert by_action["account.locked"].levelno == logging.WARNING
    assert "client=203.0.113.7" in by_action["sign_in"].getMessage()
    assert "request=req-1" in by_action["sign_in"].getMessage()
    token = signed.session_token
    assert token is not None
    for record in caplog.records:
        text = record.getMessage()
        for secret in (PASSWORD, WRONG, token.reveal(), EMAIL):
            assert secret not in text


def _write_then_fail(context: Dependencies) -> None:
    with context.unit() as uow:
        audit(uow, "practice.created", at=context.now())
        raise RuntimeError("the action failed after writing its event")


def test_a_rolled_back_unit_logs_and_publishes_nothing(
    context: Dependencies, caplog: pytest.LogCaptureFixture
) -> None:  # OP-5
    every: list[AuditEvent] = []
    context.events.subscribe_all(every.append)
    with caplog.at_level(logging.INFO):
        with pytest.raises(RuntimeError):
            _write_then_fail(context)
        with context.unit() as uow:
            audit(uow, "practice.edited", at=context.now())
    assert [e.action for e in every] == ["practice.edited"]
    assert [r.getMessage().split()[0] for r in caplog.records] == ["practice.edited"]
    assert caplog.records[0].name == __name__


def test_the_library_is_silent_unless_the_application_asks(
    context: Dependencies, world: World, caplog: pytest.LogCaptureFixture
) -> None:  # OP-5
    del world
    caplog.set_level(logging.WARNING)
    Accounts(context).sign_in(email=EMAIL, password=PASSWORD)
    assert [r for r in caplog.records if r.name.startswith("securepractice")] == []


def test_security_events_hold_the_audit_event_they_came_from() -> None:  # OP-5
    from datetime import datetime, timezone  # noqa: PLC0415

    event = AuditEvent(
        id="e1", at=datetime(2026, 1, 1, tzinfo=timezone.utc), action="role.granted",
        outcome="ok", actor_id="support", subject_id="u1",
    )  # fmt: skip
    assert RoleGranted.matches(event)
    assert not SignedIn.matches(event)
    assert RoleGranted(event).user_id == "u1"
    assert attrs.evolve(RoleGranted(event), audit=attrs.evolve(event, subject_id=None)).user_id == (
        "support"
    )


def test_an_application_that_configures_no_logging_sees_no_line(
    tmp_path: Path,
) -> None:  # OP-5
    """Logging's last resort prints WARNING lines to standard error unless the library's
    loggers have a handler: a lock must not print anything in a process that set nothing up."""
    script = tmp_path / "lock.py"
    script.write_text(
        "from securepractice import Messaging, Outbox, Portal\n"
        "from securepractice.testing import World\n"
        "portal = Portal.in_memory(messaging=Messaging.using(Outbox()))\n"
        "world = World(portal.deps)\n"
        "world.user('dr.smith@example.com', practice=world.practice())\n"
        "for _ in range(5):\n"
        "    portal.accounts.sign_in(email='dr.smith@example.com', password='Wrong one 1!')\n"
        "print('locked' if portal.accounts.sign_in(email='dr.smith@example.com',"
        " password='Wrong one 1!').reason.value == 'locked' else 'open')\n",
        encoding="utf-8",
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, a script the test wrote
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert (done.stdout, done.stderr) == ("locked\n", "")
