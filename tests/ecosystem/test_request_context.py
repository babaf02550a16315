"""The request context of every service call, kept by its audit events; refusals audited (CX-1)."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.link_flows import Flows
from securepractice import (
    FakeClock,
    InvalidInput,
    InvalidState,
    InvalidToken,
    PermissionDenied,
    RateLimited,
)
from securepractice.context import RequestContext, current_request, request
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts, Portal, PracticeAdministration
from securepractice.records import AuditEvent
from securepractice.testing import PASSWORD, Outbox, World

EMAIL = "dr.smith@example.com"
CLIENT = RequestContext(
    client_address="203.0.113.7", user_agent="Mozilla/5.0 (Test)", request_id="req-42"
)


def events(context: Dependencies) -> list[AuditEvent]:
    with context.storage.unit_of_work() as uow:
        return list(uow.audit.events())


@pytest.fixture
def registered(context: Dependencies) -> World:
    world = World(context)
    world.user(EMAIL, practice=world.practice())
    return world


@pytest.mark.usefixtures("registered")
def test_the_events_of_a_call_keep_its_request_context_on_every_store(
    context: Dependencies,
) -> None:  # CX-1
    with request(CLIENT):
        assert Accounts(context).sign_in(email=EMAIL, password=PASSWORD).ok
    (signed,) = [e for e in events(context) if e.action == "sign_in"]
    assert (signed.client_address, signed.user_agent, signed.request_id) == (
        "203.0.113.7",
        "Mozilla/5.0 (Test)",
        "req-42",
    )


@pytest.mark.usefixtures("registered")
def test_a_call_outside_any_request_keeps_no_context(context: Dependencies) -> None:  # CX-1
    Accounts(context).sign_in(email=EMAIL, password="wrong password 1!")
    (event,) = [e for e in events(context) if e.action == "sign_in"]
    assert (event.client_address, event.user_agent, event.request_id) == (None, None, None)
    assert current_request() is None


def test_blocks_nest_and_the_outer_context_comes_back() -> None:  # CX-1
    inner = RequestContext(client_address="198.51.100.1")
    with request(CLIENT):
        with request(inner):
            assert current_request() == inner
        assert current_request() == CLIENT
        with request(None):
            assert current_request() is None
    assert current_request() is None


def test_each_thread_sees_only_its_own_context() -> None:  # CX-1
    seen: dict[str, RequestContext | None] = {}
    ready = threading.Barrier(2, timeout=10)

    def serve(address: str) -> None:
        with request(RequestContext(client_address=address)):
            ready.wait()
            seen[address] = current_request()

    threads = [threading.Thread(target=serve, args=(a,)) for a in ("192.0.2.1", "192.0.2.2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert {a: c.client_address if c else None for a, c in seen.items()} == {
        "192.0.2.1": "192.0.2.1",
        "192.0.2.2": "192.0.2.2",
    }


def _refusals(context: Dependencies) -> list[AuditEvent]:
    return [e for e in events(context) if e.action == "request.refused"]


def test_an_invalid_session_is_audited_with_the_request(context: Dependencies) -> None:  # CX-1
    with request(CLIENT), pytest.raises(InvalidToken) as refused:
        Accounts(context).touch_session("not-a-session-token")
    (event,) = _refusals(context)
    assert event.outcome == refused.value.code
    assert dict(event.detail) == {"call": "touch_session"}
    assert event.client_address == "203.0.113.7"
    assert event.request_id == "req-42"


def test_a_permission_refusal_is_audited(context: Dependencies) -> None:  # CX-1
    member = World(context).member("pat@example.com")
    with request(CLIENT), pytest.raises(PermissionDenied) as refused:
        PracticeAdministration(context).list_users(member.token)
    assert _refusals(context) == []  # the practice action audited it, with its actor
    (event,) = [e for e in events(context) if e.outcome == refused.value.code]
    assert (event.actor_id, event.client_address) == (member.id, "203.0.113.7")


def test_a_rate_limited_send_is_audited(
    context: Dependencies, outbox: Outbox, clock: FakeClock
) -> None:  # CX-1
    flows = Flows(context=context, outbox=outbox, clock=clock, accounts=Accounts(context))
    practice = flows.practice()
    flows.accounts.invite(practice_id=practice.id, email=EMAIL, cell="+12025550143")
    token = flows.token(EMAIL)
    flows.accounts.send_code(token, option=flows.accounts.delivery_options(token)[0])
    for _ in range(4):
        clock.advance(minutes=1)
        flows.accounts.resend_code(token)
    with request(CLIENT), pytest.raises(RateLimited) as refused:
        flows.accounts.resend_code(token)
    (event,) = _refusals(context)
    assert (event.outcome, dict(event.detail)) == (refused.value.code, {"call": "resend_code"})
    assert event.user_agent == "Mozilla/5.0 (Test)"


def test_a_step_out_of_order_is_audited(
    context: Dependencies, outbox: Outbox, clock: FakeClock
) -> None:  # CX-1
    flows = Flows(context=context, outbox=outbox, clock=clock, accounts=Accounts(context))
    user = flows.accounts.invite(practice_id=flows.practice().id, email=EMAIL, cell="+12025550143")
    with pytest.raises(InvalidState) as refused:
        flows.accounts.resend_code(flows.token(EMAIL))
    (event,) = _refusals(context)
    assert (event.outcome, dict(event.detail)) == (refused.value.code, {"call": "resend_code"})
    assert (event.subject_id, event.practice_id) == (user.id, user.practice_id)  # AU-1


def test_bad_input_is_not_an_audited_refusal(context: Dependencies) -> None:  # CX-1
    with pytest.raises(InvalidInput):
        Accounts(context).sign_in(email=EMAIL, password=123)  # type: ignore[arg-type]
    assert _refusals(context) == []


@given(st.ip_addresses())
def test_any_ip_address_is_kept_in_its_normal_form(address: object) -> None:  # CX-1
    context = RequestContext(client_address=str(address))
    assert context.client_address == str(ipaddress.ip_address(str(address)))


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("client_address", "testclient", "context.bad_address"),
        ("client_address", "203.0.113.7, 10.0.0.1", "context.bad_address"),
        ("client_address", "", "context.bad_address"),
        ("client_address", 3232235777, "context.bad_address"),
        ("user_agent", b"curl", "context.bad_user_agent"),
        ("request_id", "", "context.bad_request_id"),
        ("request_id", "a" * 129, "context.bad_request_id"),
        ("request_id", "two words", "context.bad_request_id"),
        ("request_id", "req\n42", "context.bad_request_id"),
        ("request_id", "r\u00e9q", "context.bad_request_id"),
    ],
)
def test_a_bad_context_is_refused_with_its_field_named(
    field: str, value: object, code: str
) -> None:  # CX-1
    with pytest.raises(InvalidInput) as refused:
        RequestContext(**{field: value})
    assert (refused.value.code, refused.value.field) == (code, field)
    assert str(value) not in str(refused.value) or not str(value)


def test_a_user_agent_loses_its_control_characters_and_is_cut() -> None:  # CX-1
    context = RequestContext(user_agent="evil\r\nsign_in ok actor=admin\x1b[2J" + "x" * 400)
    assert context.user_agent is not None
    assert context.user_agent.isprintable()
    assert len(context.user_agent) == 256
    assert RequestContext(user_agent="\n\t ").user_agent is None


def test_only_a_request_context_is_taken() -> None:  # CX-1
    with pytest.raises(InvalidInput) as refused, request({"client_address": "192.0.2.1"}):  # type: ignore[arg-type]
        pass
    assert refused.value.code == "context.not_context"


@pytest.fixture
def portal(outbox: Outbox) -> Iterator[Portal]:
    from securepractice import Messaging  # noqa: PLC0415

    with Portal.in_memory(messaging=Messaging.using(outbox)) as opened:
        yield opened


def test_the_portal_gives_the_context_to_its_calls(portal: Portal) -> None:  # CX-1
    with portal.request(CLIENT):
        portal.accounts.create_practice(name="Smile Dental")
    (created,) = [e for e in events(portal.deps) if e.action == "practice.created"]
    assert created.client_address == "203.0.113.7"
