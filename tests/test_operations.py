"""Housekeeping and the audit export on every store (OP-2, OP-3).

The records are written straight into the store, in every state a flow
leaves them in, and the clock is moved on; `prune` must remove exactly the
ones no flow can use and keep every other, the audit log whole.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import attrs
import pytest

from securepractice import FakeClock
from securepractice.dependencies import Dependencies
from securepractice.errors import InvalidInput
from securepractice.operations import (
    PruneProgress,
    PruneReport,
    audit_json,
    challenge_past_use,
    export_audit,
    prune,
    trimmed_ledger,
)
from securepractice.records import (
    AuditEvent,
    Challenge,
    ChallengeState,
    DeliveryMethod,
    LinkToken,
    Practice,
    Purpose,
    SendLedger,
    Session,
    TokenPurpose,
    User,
)
from securepractice.settings import LinkRules, VerificationRules


@attrs.frozen
class Operator:
    """What the portal's operations facade will be: something holding the dependencies."""

    deps: Dependencies


@pytest.fixture
def operator(context: Dependencies) -> Operator:
    return Operator(context)


def _users(context: Dependencies, now: datetime, count: int) -> None:
    with context.storage.unit_of_work() as uow:
        uow.practices.add(Practice(id="p1", name="Smile Dental", created_at=now))
        for n in range(count):
            uow.users.add(
                User(id=f"u{n}", practice_id="p1", email=f"u{n}@example.com", created_at=now)
            )


def _session(n: int, created: datetime, active: datetime, *, revoked: bool = False) -> Session:
    return Session(
        token_hash=bytes([n]) * 32,
        user_id="u0",
        created_at=created,
        last_active_at=active,
        revoked=revoked,
    )


def _link(n: int, created: datetime, **changes: object) -> LinkToken:
    fields: dict[str, object] = {
        "id": f"l{n}",
        "token_hash": bytes([n]) * 32,
        "user_id": "u0",
        "purpose": TokenPurpose.PASSWORD_RESET,
        "created_at": created,
        "expires_at": created + timedelta(hours=1),
    }
    fields.update(changes)
    return LinkToken(**fields)  # type: ignore[arg-type]


def _challenge(n: int, issued: datetime, **changes: object) -> Challenge:
    fields: dict[str, object] = {
        "id": f"c{n}",
        "user_id": "u0",
        "purpose": Purpose.NEW_PHONE,
        "method": DeliveryMethod.SMS,
        "destination": "+12025550143",
        "code_hash": None,
        "issued_at": issued,
        "expires_at": issued + timedelta(minutes=10),
    }
    fields.update(changes)
    return Challenge(**fields)  # type: ignore[arg-type]


def test_op_2_prune_removes_what_is_past_use_and_keeps_every_other(
    operator: Operator, context: Dependencies, clock: FakeClock
) -> None:
    """OP-2: one call removes ended sessions, dead links, finished verifications, old sends.

    What a flow may still use stays: a live session, a live link, an open
    code, a verification whose link may still be open, a count of wrong
    codes, a pause in force. The audit log loses nothing.
    """
    start = clock.now()
    _users(context, start, 6)
    day = timedelta(days=1)
    now = start + day
    sessions = {
        "live": _session(1, now - timedelta(hours=1), now - timedelta(minutes=5)),
        "revoked": _session(2, now - timedelta(hours=1), now, revoked=True),
        "idle": _session(3, now - timedelta(hours=1), now - timedelta(minutes=30)),
        "too_old": _session(4, now - timedelta(hours=12), now),
    }
    links = {
        "live": _link(1, now - timedelta(minutes=59)),
        "used": _link(2, now - timedelta(minutes=5), used_at=now - timedelta(minutes=1)),
        "superseded": _link(3, now - timedelta(minutes=5), superseded=True),
        "expired": _link(4, now - timedelta(hours=1)),
    }
    challenges = {
        "open": _challenge(1, now - timedelta(minutes=9)),
        "expired_no_flow": _challenge(2, now - timedelta(minutes=10)),
        "verified_no_flow": _challenge(3, now, state=ChallengeState.VERIFIED),
        "verified_link_may_live": _challenge(
            4, now - timedelta(days=13), flow_id="l9", purpose=Purpose.REGISTRATION,
            state=ChallengeState.VERIFIED,
        ),
        "expired_link_may_live": _challenge(
            5, now - timedelta(days=13), flow_id="l9", purpose=Purpose.REGISTRATION
        ),
        "verified_link_gone": _challenge(
            6, now - timedelta(days=14), flow_id="l8", purpose=Purpose.REGISTRATION,
            state=ChallengeState.VOID,
        ),
    }  # fmt: skip
    window = context.settings.verification.send_window
    ledgers = {
        "old_only": SendLedger(user_id="u0", sends=(now - window,)),
        "mixed": SendLedger(user_id="u1", sends=(now - window - day, now - window + timedelta(1))),
        "counted": SendLedger(user_id="u2", sends=(now - day,), wrong_codes=3),
        "paused": SendLedger(user_id="u3", wrong_codes=12, paused_until=now + timedelta(1)),
        "recent": SendLedger(user_id="u4", sends=(now,)),
    }
    throttle = context.settings.sign_in.throttle_window
    with context.storage.unit_of_work() as uow:
        for session in sessions.values():
            uow.sessions.add(session)
        for link in links.values():
            uow.link_tokens.add(link)
        for challenge in challenges.values():
            uow.challenges.add(challenge)
        for ledger in ledgers.values():
            uow.code_sends.add(ledger)
        for at in (now - throttle - timedelta(seconds=1), now - throttle, now):
            uow.client_failures.record("client:a", at)
        uow.audit.append(AuditEvent(id="old", at=start - 400 * day, action="x", outcome="ok"))
    clock.set(now)

    seen: list[PruneProgress] = []
    report = prune(operator, progress=seen.append)

    assert report == PruneReport(
        sessions=3, links=3, challenges=3, send_times=3, send_ledgers=1, client_failures=1
    )
    assert report.total == 14
    with context.storage.unit_of_work() as uow:
        kept_sessions = {k for k, s in sessions.items() if uow.sessions.get(s.token_hash)}
        kept_links = {k for k, t in links.items() if uow.link_tokens.get(t.token_hash)}
        kept_challenges = {k for k, c in challenges.items() if uow.challenges.get(c.id)}
        kept_ledgers = {k: uow.code_sends.get(g.user_id) for k, g in ledgers.items()}
        failures = uow.client_failures.count_since("client:a", now - 2 * throttle)
        events = list(uow.audit.events())
    assert kept_sessions == {"live"}
    assert kept_links == {"live"}
    assert kept_challenges == {"open", "verified_link_may_live", "expired_link_may_live"}
    assert kept_ledgers["old_only"] is None
    mixed = kept_ledgers["mixed"]
    assert mixed is not None
    assert mixed.sends == (now - window + timedelta(1),)
    assert mixed.version == ledgers["mixed"].version + 1
    counted = kept_ledgers["counted"]
    assert counted is not None
    assert (counted.sends, counted.wrong_codes) == ((), 3)
    assert kept_ledgers["paused"] == ledgers["paused"]
    assert kept_ledgers["recent"] == ledgers["recent"]
    assert failures == 2
    assert [e.id for e in events[:1]] == ["old"]
    assert [(e.action, dict(e.detail)) for e in events[1:]] == [
        (
            "housekeeping.pruned",
            {"sessions": "3", "links": "3", "challenges": "3", "send_times": "3",
             "send_ledgers": "1", "client_failures": "1"},
        )
    ]  # fmt: skip
    assert {p.kind for p in seen} == {
        "sessions", "links", "challenges", "send_times", "client_failures",
    }  # fmt: skip
    assert PruneProgress(kind="sessions", examined=4, removed=3) in seen
    assert prune(operator) == PruneReport()


def test_op_2_prune_goes_a_page_per_unit_and_reports_each_page(
    operator: Operator, context: Dependencies, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OP-2: seven revoked sessions in pages of three: three units, progress after each."""
    monkeypatch.setattr("securepractice.operations.BATCH", 3)
    now = clock.now()
    _users(context, now, 1)
    with context.storage.unit_of_work() as uow:
        for n in range(7):
            uow.sessions.add(_session(n + 1, now, now, revoked=n != 3))
    seen: list[PruneProgress] = []
    report = prune(operator, progress=seen.append)
    assert report.sessions == 6
    assert [(p.examined, p.removed) for p in seen if p.kind == "sessions"] == [
        (3, 3),
        (6, 5),
        (7, 6),
    ]
    with context.storage.unit_of_work() as uow:
        assert [s.token_hash for s in uow.sessions.page(limit=10)] == [bytes([4]) * 32]


def test_op_2_a_verification_stays_while_a_link_of_its_flow_may_still_be_open() -> None:
    """OP-2, RG-2: a verified code lets a registration go on while its link lives: kept so long."""
    rules = LinkRules()
    issued = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
    verified = _challenge(1, issued, flow_id="l1", state=ChallengeState.VERIFIED)
    longest = rules.invitation_lifetime
    assert not challenge_past_use(verified, now=issued + longest - timedelta(1), rules=rules)
    assert challenge_past_use(verified, now=issued + longest, rules=rules)
    shorter = LinkRules(invitation_lifetime=timedelta(days=2))
    assert challenge_past_use(verified, now=issued + timedelta(days=2), rules=shorter)
    open_code = _challenge(2, issued)
    assert not challenge_past_use(open_code, now=issued + timedelta(minutes=9), rules=rules)
    assert challenge_past_use(open_code, now=issued + timedelta(minutes=10), rules=rules)


def test_op_2_mf_8_trimming_never_drops_a_count_or_a_pause_in_force() -> None:
    """OP-2, VF-8, MF-8: old send times go; the wrong-code count and a live pause stay."""
    rules = VerificationRules()
    now = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
    old = now - rules.send_window
    assert trimmed_ledger(SendLedger(user_id="u", sends=(old,)), now=now, rules=rules) is None
    paused = SendLedger(user_id="u", sends=(old,), wrong_codes=0, paused_until=now + timedelta(1))
    assert trimmed_ledger(paused, now=now, rules=rules) == attrs.evolve(paused, sends=(), version=1)
    ended = SendLedger(user_id="u", wrong_codes=0, paused_until=now)
    assert trimmed_ledger(ended, now=now, rules=rules) is None
    ahead = SendLedger(user_id="u", sends=(now + timedelta(minutes=1),))
    assert trimmed_ledger(ahead, now=now, rules=rules) is ahead


# --- the audit export (OP-3) -------------------------------------------------------------------


def _log(context: Dependencies, now: datetime) -> list[AuditEvent]:
    events = [
        AuditEvent(id="a", at=now, action="sign_in", outcome="ok", actor_id="u1",
                   subject_id="u1", practice_id="p1", detail=(("method", "sms"),),
                   client_address="203.0.113.9", request_id="r-1"),
        AuditEvent(id="b", at=now + timedelta(hours=1), action="sign_in",
                   outcome="wrong_password", practice_id="p2"),
        AuditEvent(id="c", at=now + timedelta(hours=2), action="code.sent", outcome="ok",
                   practice_id="p1", detail=(("note", "caf\u00e9 \u202e\n"),)),
    ]  # fmt: skip
    with context.storage.unit_of_work() as uow:
        for event in reversed(events):
            uow.audit.append(event)
    return events


def test_op_3_the_audit_log_is_exported_as_json_lines(
    operator: Operator, context: Dependencies, clock: FakeClock
) -> None:
    """OP-3: one object per line, oldest first, stable keys, ``at`` in UTC, detail an object."""
    now = clock.now()
    _log(context, now)
    out = io.StringIO()
    assert export_audit(operator, out) == 3
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0] == (
        '{"id":"a","at":"' + now.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + '","action":"sign_in",'
        '"outcome":"ok","actor_id":"u1","subject_id":"u1","practice_id":"p1",'
        '"detail":{"method":"sms"},"client_address":"203.0.113.9","user_agent":null,'
        '"request_id":"r-1"}'
    )
    objects = [json.loads(line) for line in lines]
    assert [o["id"] for o in objects] == ["a", "b", "c"]
    assert objects[2]["detail"] == {"note": "caf\u00e9 \u202e\n"}
    assert lines[2].isascii()
    assert "\u202e" not in out.getvalue()
    with context.storage.unit_of_work() as uow:
        (exported,) = [e for e in uow.audit.events() if e.action == "audit.exported"]
    assert dict(exported.detail) == {"events": "3", "since": "", "until": ""}


def test_op_3_export_by_time_range_and_practice(
    operator: Operator, context: Dependencies, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OP-3: ``since`` inclusive, ``until`` exclusive, one practice; read in pages."""
    monkeypatch.setattr("securepractice.operations.BATCH", 1)
    now = clock.now()
    events = _log(context, now)

    def ids(**options: object) -> list[str]:
        out = io.StringIO()
        count = export_audit(operator, out, **options)  # type: ignore[arg-type]
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert count == len(lines)
        # Each export is audited in its turn; those of the calls before are not the point here.
        return [line["id"] for line in lines if line["action"] != "audit.exported"]

    assert ids(practice_id="p1") == ["a", "c"]
    assert ids(since=events[1].at) == ["b", "c"]
    assert ids(until=events[1].at) == ["a"]
    assert ids(since=events[1].at, until=events[1].at) == []
    assert ids(practice_id="p1", since=events[0].at, until=events[2].at) == ["a"]
    assert ids(practice_id="nobody") == []
    assert ids(since=events[0].at.astimezone(timezone(timedelta(hours=-5)))) == ["a", "b", "c"]


def test_op_3_a_bad_range_is_refused_and_writes_nothing(
    operator: Operator, context: Dependencies, clock: FakeClock
) -> None:
    """OP-3: an end before the start, or a time without a zone, is refused before any output."""
    now = clock.now()
    _log(context, now)
    out = io.StringIO()
    with pytest.raises(InvalidInput) as reversed_range:
        export_audit(operator, out, since=now, until=now - timedelta(seconds=1))
    assert (reversed_range.value.code, reversed_range.value.field) == (
        "time.reversed_range",
        "until",
    )
    for options in ({"since": now.replace(tzinfo=None)}, {"until": now.replace(tzinfo=None)}):
        with pytest.raises(InvalidInput) as naive:
            export_audit(operator, out, **options)  # type: ignore[arg-type]
        assert naive.value.code == "time.naive"
    with pytest.raises(InvalidInput):
        export_audit(operator, out, practice_id=7)  # type: ignore[arg-type]
    assert out.getvalue() == ""
    with context.storage.unit_of_work() as uow:
        assert "audit.exported" not in {e.action for e in uow.audit.events()}


def test_op_3_au_2_a_line_is_the_record_and_nothing_else() -> None:
    """OP-3, AU-2: the line holds the event's fields only; a field added later appears too."""
    event = AuditEvent(id="e", at=datetime(2026, 1, 5, 9, tzinfo=timezone.utc), action="x",
                       outcome="ok")  # fmt: skip
    assert list(json.loads(audit_json(event))) == [f.name for f in attrs.fields(AuditEvent)]
