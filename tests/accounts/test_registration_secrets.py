"""AU-2 across the link flows: no password, code, token, link or hash in any event, error or repr.

The journeys of registration and reset run with their mistakes (stale links,
wrong and late codes, failed deliveries, weak passwords, too many sends);
everything they produce that a log could hold is then searched for every
secret the user was given or typed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from accounts.link_flows import Flows, token_of
from securepractice import SecurePracticeError
from securepractice.storage.sqlite import SQLiteStorage

PASSWORD = "Bright-Smile-2026"
NEW = "Brand-New-Smile-77"
CELL = "+12025550143"
EMAIL = "dana@smile.example"


class Journey:
    """Runs the flows and keeps every value and error they produce."""

    def __init__(self, flows: Flows) -> None:
        self.flows = flows
        self.produced: list[object] = []
        self.typed: list[str] = []

    def do(self, action: Callable[[], object]) -> None:
        try:
            self.produced.append(action())
        except SecurePracticeError as error:
            self.produced.append(error)

    def run(self) -> None:
        flows = self.flows
        practice = flows.practice()
        self.do(lambda: flows.accounts.invite(practice_id=practice.id, email=EMAIL))
        stale = flows.token(EMAIL)
        flows.clock.advance(minutes=1)
        self.do(lambda: flows.accounts.invite(practice_id=practice.id, email=EMAIL))
        token = flows.token(EMAIL)
        self.do(lambda: flows.accounts.open_invitation(stale))
        self.do(lambda: flows.accounts.accept_terms(token, version="1"))
        self.do(lambda: flows.accounts.add_phones(token, cell="+1 202 555 0143 x12"))
        self.do(lambda: flows.accounts.add_phones(token, cell=CELL))
        option = flows.accounts.delivery_options(token)[0]
        flows.outbox.fail_next("sms")
        self.do(lambda: flows.accounts.send_code(token, option=option))
        self.do(lambda: flows.accounts.resend_code(token))
        self.typed.append("000000")
        self.do(lambda: flows.accounts.verify_code(token, code="000000"))
        code = flows.outbox.last_code(CELL)
        self.do(lambda: flows.accounts.verify_code(token, code=code))
        self.do(lambda: flows.accounts.accept_terms(token, version="1"))
        self.typed += ["short", PASSWORD]
        self.do(lambda: flows.accounts.set_password(token, password="short", confirmation="x"))
        self.do(
            lambda: flows.accounts.set_password(token, password=PASSWORD, confirmation=PASSWORD)
        )
        self.do(lambda: flows.accounts.open_invitation(token))
        self.reset()

    def reset(self) -> None:
        flows = self.flows
        self.do(lambda: flows.accounts.forgot_password(email=EMAIL))
        token = flows.token(EMAIL)
        self.do(lambda: flows.accounts.reset_password(token, password=NEW, confirmation=NEW))
        step = flows.accounts.open_reset_link(token)
        self.produced.append(step)
        for _ in range(6):
            self.do(lambda: flows.accounts.send_code(token, option=step.delivery_options[0]))
        flows.clock.advance(minutes=20)
        self.do(lambda: flows.accounts.send_code(token, option=step.delivery_options[1]))
        self.do(lambda: flows.accounts.verify_code(token, code=flows.outbox.last_code(CELL)))
        self.typed += [NEW, PASSWORD]
        self.do(
            lambda: flows.accounts.reset_password(token, password=PASSWORD, confirmation=PASSWORD)
        )
        self.do(lambda: flows.accounts.reset_password(token, password=NEW, confirmation=NEW))
        self.do(lambda: flows.accounts.reset_password(token, password=NEW, confirmation=NEW))

    def secrets(self) -> set[str]:
        """Every password typed, code and link sent, token, and stored hash."""
        flows = self.flows
        found = set(self.typed) - {"short", "x", "000000"}
        for mail in flows.outbox.emails:
            for link in re.findall(r"https?://\S+", mail.body):
                found |= {link, token_of(link)}
        for message in (*flows.outbox.sms, *flows.outbox.calls):
            digits = re.sub(r"\D", "", message.text.split(" code is ")[1].split(".")[0])
            found.add(digits)
        with flows.store.unit_of_work() as uow:
            user = uow.users.get_by_email(EMAIL)
            assert user is not None
            credential = uow.credentials.get(user.id)
            assert credential is not None
            found |= {credential.password_hash, *credential.history}
        return found


@pytest.fixture
def journey(flows: Flows) -> Journey:
    ran = Journey(flows)
    ran.run()
    return ran


def test_au_2_no_secret_in_events_errors_results_or_message_reprs(journey: Journey) -> None:
    flows = journey.flows
    secrets = journey.secrets()
    assert len(secrets) >= 8  # passwords, hashes, links, tokens and several codes
    errors = [p for p in journey.produced if isinstance(p, SecurePracticeError)]
    assert {type(e).__name__ for e in errors} >= {
        "InvalidToken",
        "InvalidState",
        "InvalidInput",
        "DeliveryFailed",
        "RateLimited",
    }
    texts = [repr(event) for event in flows.events()]
    texts += [f"{e} {e!r} {e.message}" for e in errors]
    texts += [repr(p) for p in journey.produced]
    texts += [repr(m) for m in (*flows.outbox.emails, *flows.outbox.sms, *flows.outbox.calls)]
    texts += [repr(flows.store), repr(flows.context)]
    leaks = {(s, t) for s in secrets for t in texts if s in t}
    assert leaks == set()


def test_au_2_the_database_holds_no_password_code_or_token(journey: Journey) -> None:
    flows = journey.flows
    store = flows.store
    plain = [s for s in journey.secrets() if not s.startswith("$argon2")]
    if isinstance(store, SQLiteStorage):
        files = [p for p in Path(store.path).parent.iterdir() if p.name.startswith("portal.db")]
        data = b"".join(p.read_bytes() for p in files)
    elif repr(store).startswith("PostgresStorage("):
        data = _every_postgres_row(store).encode()
    else:
        # The memory store keeps records as values: their reprs were searched above.
        assert repr(store).startswith("MemoryStorage(")
        return
    assert data
    assert [s for s in plain if s.encode() in data] == []


def _every_postgres_row(store: object) -> str:
    """Every row of every table of a PostgreSQL store, as text."""
    with store._pool.connection() as db:  # type: ignore[attr-defined]
        tables = [
            str(name)
            for (name,) in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        return "\n".join(
            str(row[0])
            for table in tables
            for row in db.execute(f'SELECT t::text FROM "{table}" t')  # noqa: S608 - catalog names
        )


def test_au_1_every_flow_event_names_its_user_and_practice(journey: Journey) -> None:
    flows = journey.flows
    with flows.store.unit_of_work() as uow:
        user = uow.users.get_by_email(EMAIL)
    assert user is not None
    events = flows.events()
    actions = {e.action for e in events}
    assert actions >= {
        "practice.created",
        "invitation.sent",
        "invitation.refused",
        "invitation.accepted",
        "code.sent",
        "code.delivery_failed",
        "code.failed",
        "code.verified",
        "terms.accepted",
        "password.set",
        "password.reset_requested",
        "password.reset",
    }
    about_user = [e for e in events if e.action != "practice.created"]
    assert all(e.subject_id == user.id for e in about_user)
    assert all(e.practice_id == user.practice_id for e in events)
    assert all(e.at.tzinfo is not None for e in events)
    assert len({e.id for e in events}) == len(events)
