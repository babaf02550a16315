"""The Portal entry point wires every service to one store, messaging and clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SECRET
from securepractice import (
    Dependencies,
    FakeClock,
    InMemoryPaymentProcessor,
    LinkRules,
    Messaging,
    Outbox,
    Portal,
    Settings,
    SettingsError,
    StorageError,
)

SETTINGS = Settings(links=LinkRules(base_url="https://portal.example"), secret=SECRET)


def test_sqlite_portal_keeps_what_it_is_told_across_reopening(tmp_path: Path) -> None:
    """ST-1: the one-line entry point stores in SQLite; reopening the file finds the user."""
    outbox = Outbox()
    path = tmp_path / "portal.db"
    with Portal.sqlite(path, messaging=Messaging.using(outbox), settings=SETTINGS) as portal:
        practice = portal.accounts.create_practice(name="Smile Dental")
        portal.accounts.invite(practice_id=practice.id, email="Dr.Smith@Example.com")
    assert outbox.last_link("dr.smith@example.com").startswith("https://portal.example/register?")
    with (
        Portal.sqlite(path, messaging=Messaging.using(outbox), settings=SETTINGS) as portal,
        portal.deps.storage.unit_of_work() as uow,
    ):
        user = uow.users.get_by_email("dr.smith@example.com")
    assert user is not None
    assert user.practice_id == practice.id


def test_a_closed_portal_stores_nothing_more() -> None:
    portal = Portal.in_memory(messaging=Messaging.using(Outbox()), settings=SETTINGS)
    portal.close()
    with pytest.raises(StorageError):
        portal.accounts.create_practice(name="Smile Dental")


def test_options_reach_every_service() -> None:
    """The clock, the Terms of Use version and the portal's name are the portal's own."""
    clock = FakeClock()
    outbox = Outbox()
    portal = Portal.in_memory(
        messaging=Messaging.using(outbox),
        settings=SETTINGS,
        clock=clock,
        terms_version="2026-11",
        portal_name="MySecurePractice",
        payment_processor=InMemoryPaymentProcessor(),
    )
    practice = portal.accounts.create_practice(name="Smile Dental")
    portal.accounts.invite(practice_id=practice.id, email="dr@example.com")
    assert "MySecurePractice" in outbox.last_email("dr@example.com").subject
    assert practice.created_at == clock.now()
    assert portal.deps.terms_version == "2026-11"
    assert portal.billing.deps is portal.practice.deps is portal.accounts.deps is portal.deps


def test_billing_needs_a_payment_processor() -> None:
    """UM-6: without a processor nothing can be charged, and the portal says so."""
    portal = Portal.in_memory(messaging=Messaging.using(Outbox()))
    with pytest.raises(SettingsError) as caught:
        _ = portal.billing
    assert caught.value.field == "payment_processor"


@pytest.mark.parametrize(
    ("field", "options"),
    [
        ("messaging", {"messaging": None}),
        ("messaging", {"messaging": Outbox()}),
        ("settings", {"messaging": Messaging.using(Outbox()), "settings": {"secret": None}}),
    ],
)
def test_a_portal_refuses_a_wrong_collaborator_when_built(
    field: str, options: dict[str, object]
) -> None:
    """A missing or wrong collaborator is a clear settings error at once, not a later crash."""
    with pytest.raises(SettingsError) as refused:
        Portal.in_memory(**options)  # type: ignore[arg-type]
    assert refused.value.field == field


def test_dependencies_refuse_what_is_not_a_store() -> None:
    with pytest.raises(SettingsError) as refused:
        Dependencies(storage="portal.db", messaging=Messaging.using(Outbox()))  # type: ignore[arg-type]
    assert refused.value.field == "storage"
