"""Every port method, against every adapter (ST-1)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securepractice.errors import AlreadyExists, InvalidInput, NotFound
from securepractice.records import (
    AuditEvent,
    CardOnFile,
    Challenge,
    ChallengeState,
    Credential,
    DeliveryMethod,
    Entitlement,
    Invoice,
    LinkToken,
    Phone,
    PhoneKind,
    Practice,
    PracticeSubscription,
    Purpose,
    RegistrationStatus,
    Role,
    SecureMailPayment,
    SecureMailPurchase,
    Session,
    TermsAcceptance,
    TokenPurpose,
    User,
)
from securepractice.storage.ports import Storage

MakeChallenge = Callable[..., Challenge]
MakeToken = Callable[..., LinkToken]
TEXT = st.text(st.characters(codec="utf-8"), max_size=20)


# --- practices -------------------------------------------------------------------------------


def test_practice_is_added_read_and_updated(store: Storage, practice: Practice) -> None:
    """ID-2, PF-2: the main account information is kept and can be replaced."""
    changed = attrs.evolve(practice, name="Smile Dental Group", phone="+12025550143")
    with store.unit_of_work() as uow:
        assert uow.practices.get("p1") == practice
        uow.practices.update(changed)
    with store.unit_of_work() as uow:
        assert uow.practices.get("p1") == changed
        assert uow.practices.get("nope") is None


def test_practice_id_is_unique_and_update_needs_one(store: Storage, practice: Practice) -> None:
    with store.unit_of_work() as uow:
        with pytest.raises(AlreadyExists) as duplicate:
            uow.practices.add(attrs.evolve(practice, name="Other"))
        with pytest.raises(NotFound) as missing:
            uow.practices.update(attrs.evolve(practice, id="p9"))
    assert duplicate.value.code == "practice.exists"
    assert missing.value.code == "practice.not_found"
    with store.unit_of_work() as uow:
        assert uow.practices.get("p1") == practice


# --- users -----------------------------------------------------------------------------------


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(
    first=TEXT,
    last=TEXT,
    specialties=st.lists(TEXT, max_size=3).map(tuple),
    roles=st.frozensets(st.sampled_from(Role), min_size=1),
    status=st.sampled_from(RegistrationStatus),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    ada=st.none() | TEXT,
    zone=st.none() | st.sampled_from(["America/New_York", "Europe/Paris"]),
    created=st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis adds the zone
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-5))]),
    ),
)
def test_every_user_field_round_trips(
    store: Storage,
    practice: Practice,
    *,
    first: str,
    last: str,
    specialties: tuple[str, ...],
    roles: frozenset[Role],
    status: RegistrationStatus,
    flags: tuple[bool, bool, bool],
    ada: str | None,
    zone: str | None,
    created: datetime,
) -> None:
    """ID-1, ID-3: what is stored is what comes back, field for field."""
    user_id = uuid.uuid4().hex
    record = User(
        id=user_id,
        practice_id=practice.id,
        email=f"{user_id}@example.com",
        first_name=first,
        last_name=last,
        phones=(
            Phone(number="+12025550143", kind=PhoneKind.PHONE),
            Phone(number="+12025550199", kind=PhoneKind.CELL),
        ),
        time_zone=zone,
        ada_number=ada,
        specialties=specialties,
        roles=roles,
        status=status,
        two_step_enabled=flags[0],
        locked=flags[1],
        deactivated=flags[2],
        created_at=created,
    )
    with store.unit_of_work() as uow:
        uow.users.add(record)
    with store.unit_of_work() as uow:
        back = uow.users.get(user_id)
    assert back == record
    assert back is not None
    assert back.created_at.utcoffset() == timedelta(0)


def test_email_is_unique_regardless_of_case(store: Storage, user: User, now: datetime) -> None:
    """ID-1, ID-2: an email is one user across the portal; a second is refused, nothing changes."""
    other = Practice(id="p2", name="Other", created_at=now)
    with store.unit_of_work() as uow:
        uow.practices.add(other)
    intruder = User(id="u9", practice_id="p2", email="ADA@Example.COM", created_at=now)
    with pytest.raises(AlreadyExists) as refused, store.unit_of_work() as uow:
        uow.users.add(intruder)
    assert refused.value.code == "user.email_taken"
    with store.unit_of_work() as uow:
        assert uow.users.get("u9") is None
        assert uow.users.get_by_email("Ada@EXAMPLE.com") == user
        assert uow.users.get_by_email("nobody@example.com") is None


def test_user_id_is_unique_and_practice_must_exist(
    store: Storage, user: User, now: datetime
) -> None:
    with store.unit_of_work() as uow:
        with pytest.raises(AlreadyExists) as duplicate:
            uow.users.add(attrs.evolve(user, email="new@example.com"))
        with pytest.raises(NotFound) as orphan:
            uow.users.add(User(id="u8", practice_id="p404", email="x@example.com", created_at=now))
    assert duplicate.value.code == "user.exists"
    assert orphan.value.code == "storage.reference_missing"


def test_user_update_keeps_email_unique(store: Storage, user: User, other_user: User) -> None:
    """PF-1, UM-4: changing an email to another user's is refused; to a new one works."""
    with store.unit_of_work() as uow:
        assert uow.users.get(user.id) == user
        with pytest.raises(AlreadyExists) as taken:
            uow.users.update(attrs.evolve(other_user, email="ADA@example.com"))
        with pytest.raises(NotFound) as missing:
            uow.users.update(attrs.evolve(other_user, id="u404"))
        uow.users.update(attrs.evolve(other_user, email="g.hopper@example.com", locked=True))
    assert taken.value.code == "user.email_taken"
    assert missing.value.code == "user.not_found"
    with store.unit_of_work() as uow:
        changed = uow.users.get("u2")
        assert uow.users.get_by_email("grace@example.com") is None
    assert changed == attrs.evolve(other_user, email="g.hopper@example.com", locked=True)


def test_users_are_listed_per_practice_by_email(
    store: Storage, user: User, other_user: User, now: datetime
) -> None:
    """UM-3: Manage Users lists the practice's users and only them; support has no practice."""
    support = User(id="s1", practice_id=None, email="aaron@support.example", created_at=now)
    with store.unit_of_work() as uow:
        uow.users.add(support)
    with store.unit_of_work() as uow:
        assert list(uow.users.list_for_practice("p1")) == [user, other_user]
        assert list(uow.users.list_for_practice("p404")) == []
        assert uow.users.get("s1") == support


# --- credentials and failures ----------------------------------------------------------------


def test_credential_and_history_are_replaced_whole(
    store: Storage, user: User, now: datetime
) -> None:
    """PW-4, PW-5, PW-7: the hash, its set time and the history come back as stored."""
    first = Credential(user_id=user.id, password_hash="$argon2id$one", set_at=now)
    second = Credential(
        user_id=user.id,
        password_hash="$argon2id$two",
        set_at=now + timedelta(days=1),
        history=("$argon2id$one",),
    )
    with store.unit_of_work() as uow:
        assert uow.credentials.get(user.id) is None
        uow.credentials.put(first)
        assert uow.credentials.get(user.id) == first
        uow.credentials.put(second)
    with store.unit_of_work() as uow:
        assert uow.credentials.get(user.id) == second
        with pytest.raises(NotFound):
            uow.credentials.put(attrs.evolve(first, user_id="u404"))


def test_failure_counter_increments_and_resets(store: Storage, user: User) -> None:
    """LK-1, LK-2, LK-3: the count goes up by one per failure and back to zero on reset."""
    with store.unit_of_work() as uow:
        assert uow.sign_in_failures.count(user.id) == 0
        assert [uow.sign_in_failures.increment(user.id) for _ in range(3)] == [1, 2, 3]
    with store.unit_of_work() as uow:
        assert uow.sign_in_failures.count(user.id) == 3
        uow.sign_in_failures.reset(user.id)
        uow.sign_in_failures.reset(user.id)
        assert uow.sign_in_failures.count(user.id) == 0
        assert uow.sign_in_failures.increment(user.id) == 1
        assert uow.sign_in_failures.increment(user.id) == 2
        assert uow.sign_in_failures.forgive(user.id) == 1  # LK-8: not a wrong password
        assert uow.sign_in_failures.forgive(user.id) == 0
        assert uow.sign_in_failures.forgive(user.id) == 0
        assert uow.sign_in_failures.count(user.id) == 0
        with pytest.raises(NotFound):
            uow.sign_in_failures.increment("u404")


# --- challenges ------------------------------------------------------------------------------


def test_challenge_is_added_updated_and_latest_found(
    store: Storage, make_challenge: MakeChallenge, now: datetime
) -> None:
    """VF-5, VF-6: a re-send or a change of method replaces the stored code and method."""
    first = make_challenge()
    later = make_challenge(id="c2", issued_at=now + timedelta(minutes=1))
    other = make_challenge(id="c3", purpose=Purpose.PASSWORD_RESET)
    with store.unit_of_work() as uow:
        assert uow.challenges.latest("u1", Purpose.REGISTRATION) is None
        for challenge in (first, later, other):
            uow.challenges.add(challenge)
        with pytest.raises(AlreadyExists) as duplicate:
            uow.challenges.add(first)
        resent = attrs.evolve(later, method=DeliveryMethod.VOICE, code_hash=b"n" * 32)
        uow.challenges.update(resent)
        with pytest.raises(NotFound):
            uow.challenges.update(make_challenge(id="c404"))
    assert duplicate.value.code == "challenge.exists"
    with store.unit_of_work() as uow:
        assert uow.challenges.get("c1") == first
        assert uow.challenges.get("c404") is None
        assert uow.challenges.latest("u1", Purpose.REGISTRATION) == resent
        assert uow.challenges.latest("u1", Purpose.PASSWORD_RESET) == other
        assert uow.challenges.latest("u1", Purpose.NEW_PHONE) is None


def test_code_is_consumed_once_only_with_its_hash(
    store: Storage, make_challenge: MakeChallenge, now: datetime
) -> None:
    """VF-4, VF-7, RS-5: the right code works once; a wrong one, or a second use, does not."""
    with store.unit_of_work() as uow:
        uow.challenges.add(make_challenge())
    with store.unit_of_work() as uow:
        assert not uow.challenges.consume("c1", code_hash=b"x" * 32, now=now)
        assert not uow.challenges.consume("c404", code_hash=b"h" * 32, now=now)
        assert uow.challenges.consume("c1", code_hash=b"h" * 32, now=now)
        assert not uow.challenges.consume("c1", code_hash=b"h" * 32, now=now)
    with store.unit_of_work() as uow:
        done = uow.challenges.get("c1")
    assert done is not None
    assert done.state is ChallengeState.VERIFIED
    assert done.code_hash is None


@pytest.mark.parametrize(
    ("changes", "after"),
    [
        ({}, timedelta(minutes=10)),  # VF-4: expired at exactly its expiry
        ({"state": ChallengeState.VOID}, timedelta(0)),
        ({"state": ChallengeState.VERIFIED}, timedelta(0)),
        ({"code_hash": None}, timedelta(0)),
    ],
)
def test_expired_void_or_codeless_challenge_is_not_consumed(
    store: Storage,
    make_challenge: MakeChallenge,
    now: datetime,
    changes: dict[str, object],
    after: timedelta,
) -> None:
    """VF-4, VF-7, VF-10: only an active, unexpired code works."""
    with store.unit_of_work() as uow:
        uow.challenges.add(make_challenge(**changes))
    with store.unit_of_work() as uow:
        assert not uow.challenges.consume("c1", code_hash=b"h" * 32, now=now + after)
        assert uow.challenges.get("c1") == make_challenge(**changes)


def test_wrong_attempts_count_and_void_at_the_limit(
    store: Storage, make_challenge: MakeChallenge, now: datetime
) -> None:
    """VF-7: wrong entries are counted; at the limit the code stops working."""
    with store.unit_of_work() as uow:
        uow.challenges.add(make_challenge())
        counts = [uow.challenges.record_wrong_attempt("c1", limit=5) for _ in range(4)]
        assert counts == [1, 2, 3, 4]
        active = uow.challenges.get("c1")
        assert active is not None
        assert active.state is ChallengeState.ACTIVE
        assert uow.challenges.record_wrong_attempt("c1", limit=5) == 5
        assert uow.challenges.record_wrong_attempt("c1", limit=5) == 6
        with pytest.raises(NotFound):
            uow.challenges.record_wrong_attempt("c404", limit=5)
    with store.unit_of_work() as uow:
        void = uow.challenges.get("c1")
        assert not uow.challenges.consume("c1", code_hash=b"h" * 32, now=now)
    assert void is not None
    assert (void.state, void.code_hash, void.wrong_attempts) == (ChallengeState.VOID, None, 6)


def test_a_verified_challenge_stays_verified_after_wrong_attempts(
    store: Storage, make_challenge: MakeChallenge
) -> None:
    with store.unit_of_work() as uow:
        uow.challenges.add(make_challenge(state=ChallengeState.VERIFIED, code_hash=None))
        assert uow.challenges.record_wrong_attempt("c1", limit=1) == 1
        after = uow.challenges.get("c1")
    assert after is not None
    assert after.state is ChallengeState.VERIFIED


# --- code sends ------------------------------------------------------------------------------


def test_send_times_are_kept_and_counted_in_a_window(
    store: Storage, user: User, now: datetime
) -> None:
    """VF-8: sends are counted per user after ``since``; one exactly at ``since`` has left."""
    times = [now + timedelta(minutes=m) for m in (0, 5, 10)]
    with store.unit_of_work() as uow:
        for at in reversed(times):
            uow.code_sends.record(user.id, at)
    with store.unit_of_work() as uow:
        assert list(uow.code_sends.sends_since(user.id, now - timedelta(microseconds=1))) == times
        assert list(uow.code_sends.sends_since(user.id, now)) == times[1:]
        assert list(uow.code_sends.sends_since("u2", now)) == []
        with pytest.raises(NotFound):
            uow.code_sends.record("u404", now)


def test_send_is_recorded_only_below_the_limit(store: Storage, user: User, now: datetime) -> None:
    """VF-8: at most ``limit`` sends per window; the check and the write are one step."""
    window = timedelta(minutes=15)
    with store.unit_of_work() as uow:
        allowed = [
            uow.code_sends.record_within_limit(
                user.id, at=now + timedelta(minutes=i), since=now + timedelta(minutes=i) - window,
                limit=5,
            )
            for i in range(7)
        ]  # fmt: skip
        later = now + window  # the first send, at ``now``, has just left the window
        assert uow.code_sends.record_within_limit(user.id, at=later, since=later - window, limit=5)
    assert allowed == [True] * 5 + [False] * 2
    with store.unit_of_work() as uow:
        assert len(uow.code_sends.sends_since(user.id, now - timedelta(microseconds=1))) == 6


def test_naive_times_are_refused(store: Storage, user: User, now: datetime) -> None:
    naive = now.replace(tzinfo=None)
    with store.unit_of_work() as uow:
        with pytest.raises(InvalidInput) as refused:
            uow.code_sends.record(user.id, naive)
        with pytest.raises(InvalidInput):
            uow.practices.add(Practice(id="p7", name="N", created_at=naive))
    assert refused.value.code == "time.naive"


# --- link tokens -----------------------------------------------------------------------------


def test_link_token_is_used_once(store: Storage, make_token: MakeToken, now: datetime) -> None:
    """RG-1, RS-5: completing a link's flow uses it up; a second use is refused."""
    token = make_token()
    with store.unit_of_work() as uow:
        uow.link_tokens.add(token)
        with pytest.raises(AlreadyExists) as duplicate:
            uow.link_tokens.add(token)
        assert uow.link_tokens.get(token.token_hash) == token
        used = uow.link_tokens.consume(token.token_hash, purpose=TokenPurpose.INVITATION, now=now)
        again = uow.link_tokens.consume(token.token_hash, purpose=TokenPurpose.INVITATION, now=now)
    assert duplicate.value.code == "link_token.exists"
    assert used == attrs.evolve(token, used_at=now)
    assert again is None
    with store.unit_of_work() as uow:
        assert uow.link_tokens.get(token.token_hash) == used
        assert uow.link_tokens.get(b"u" * 32) is None


@pytest.mark.parametrize(
    ("changes", "purpose", "after"),
    [
        ({}, TokenPurpose.PASSWORD_RESET, timedelta(0)),
        ({}, TokenPurpose.INVITATION, timedelta(days=14)),
        ({"superseded": True}, TokenPurpose.INVITATION, timedelta(0)),
        ({"used_at": datetime(2026, 1, 1, tzinfo=timezone.utc)}, TokenPurpose.INVITATION,
         timedelta(0)),
    ],
)  # fmt: skip
def test_wrong_purpose_expired_superseded_or_used_token_is_refused(
    store: Storage,
    make_token: MakeToken,
    now: datetime,
    *,
    changes: dict[str, object],
    purpose: TokenPurpose,
    after: timedelta,
) -> None:
    """RG-1, RG-6: a link is refused when expired, used, superseded, or for another purpose."""
    token = make_token(**changes)
    with store.unit_of_work() as uow:
        uow.link_tokens.add(token)
        assert uow.link_tokens.consume(token.token_hash, purpose=purpose, now=now + after) is None
        assert uow.link_tokens.get(token.token_hash) == token


def test_reinvite_supersedes_only_live_tokens_of_that_purpose(
    store: Storage, make_token: MakeToken, other_user: User, now: datetime
) -> None:
    """RG-4, RS-3: every earlier link of the user for the purpose stops working."""
    tokens = [
        make_token(token_hash=b"a" * 32),
        make_token(token_hash=b"b" * 32),
        make_token(token_hash=b"c" * 32, used_at=now),
        make_token(token_hash=b"d" * 32, purpose=TokenPurpose.PASSWORD_RESET),
        make_token(token_hash=b"e" * 32, user_id=other_user.id),
    ]
    with store.unit_of_work() as uow:
        for token in tokens:
            uow.link_tokens.add(token)
        assert uow.link_tokens.supersede_all("u1", TokenPurpose.INVITATION) == 2
        assert uow.link_tokens.supersede_all("u1", TokenPurpose.INVITATION) == 0
    with store.unit_of_work() as uow:
        flags = [uow.link_tokens.get(t.token_hash) for t in tokens]
    assert [f.superseded if f else None for f in flags] == [True, True, False, False, False]


# --- sessions --------------------------------------------------------------------------------


def test_sessions_are_kept_updated_and_revoked(
    store: Storage, user: User, other_user: User, now: datetime
) -> None:
    """LK-6: a password change revokes every other session; a reset revokes all."""
    sessions = [
        Session(token_hash=bytes([n]) * 32, user_id=user.id, created_at=now, last_active_at=now)
        for n in range(3)
    ]
    theirs = Session(token_hash=b"z" * 32, user_id=other_user.id, created_at=now,
                     last_active_at=now)  # fmt: skip
    with store.unit_of_work() as uow:
        for session in [*sessions, theirs]:
            uow.sessions.add(session)
        with pytest.raises(AlreadyExists) as duplicate:
            uow.sessions.add(theirs)
        touched = attrs.evolve(sessions[0], last_active_at=now + timedelta(minutes=5))
        uow.sessions.update(touched)
        with pytest.raises(NotFound):
            uow.sessions.update(attrs.evolve(theirs, token_hash=b"y" * 32))
        kept = sessions[1].token_hash
        assert uow.sessions.revoke_all(user.id, except_token_hash=kept) == 2
        assert uow.sessions.revoke_all(user.id, except_token_hash=kept) == 0
    assert duplicate.value.code == "session.exists"
    with store.unit_of_work() as uow:
        assert uow.sessions.get(sessions[0].token_hash) == attrs.evolve(touched, revoked=True)
        assert uow.sessions.get(kept) == sessions[1]
        assert uow.sessions.get(b"y" * 32) is None
        assert uow.sessions.revoke_all(user.id) == 1
        assert uow.sessions.get(theirs.token_hash) == theirs


# --- audit -----------------------------------------------------------------------------------


def test_audit_log_appends_and_filters_in_time_order(store: Storage, now: datetime) -> None:
    """AU-1: events are kept with who, whom, which practice, what, when and outcome."""
    events = [
        AuditEvent(id="e2", at=now + timedelta(seconds=2), action="sign_in", outcome="ok",
                   actor_id="u1", subject_id="u1", practice_id="p1"),
        AuditEvent(id="e1", at=now, action="code.sent", outcome="ok", subject_id="u2",
                   practice_id="p1", detail=(("method", "sms"), ("to", "+1202***0143"))),
        AuditEvent(id="e3", at=now + timedelta(seconds=3), action="sign_in",
                   outcome="unknown_user"),
    ]  # fmt: skip
    with store.unit_of_work() as uow:
        for event in events:
            uow.audit.append(event)
        with pytest.raises(AlreadyExists) as duplicate:
            uow.audit.append(events[0])
    assert duplicate.value.code == "audit.exists"
    with store.unit_of_work() as uow:
        assert list(uow.audit.events()) == [events[1], events[0], events[2]]
        assert list(uow.audit.events(subject_id="u1")) == [events[0]]
        assert list(uow.audit.events(practice_id="p1")) == [events[1], events[0]]
        assert list(uow.audit.events(since=now + timedelta(seconds=2))) == [events[0], events[2]]


def test_audit_log_has_no_way_to_change_or_remove(store: Storage) -> None:
    """AU-1: the audit port and every adapter's audit log offer only append and read."""
    with store.unit_of_work() as uow:
        public = {name for name in dir(uow.audit) if not name.startswith("_")}
    assert public == {"append", "events"}


# --- terms, subscriptions, entitlements, cards ----------------------------------------------


def test_terms_acceptances_are_recorded_once_per_version(
    store: Storage, user: User, now: datetime
) -> None:
    """RG-3: acceptance is kept with the terms' version and time."""
    first = TermsAcceptance(user_id=user.id, version="2024-01", accepted_at=now)
    second = TermsAcceptance(user_id=user.id, version="2026-01", accepted_at=now + timedelta(1))
    with store.unit_of_work() as uow:
        uow.terms.add(second)
        uow.terms.add(first)
        with pytest.raises(AlreadyExists) as again:
            uow.terms.add(first)
        with pytest.raises(NotFound):
            uow.terms.add(attrs.evolve(first, user_id="u404"))
    assert again.value.code == "terms.already_accepted"
    with store.unit_of_work() as uow:
        assert list(uow.terms.list_for_user(user.id)) == [first, second]


def test_practice_subscriptions(store: Storage, practice: Practice, now: datetime) -> None:
    """SB-1: a practice subscribes to an open set of products."""
    mail = PracticeSubscription(practice_id=practice.id, product="securemail", subscribed_at=now)
    tv = PracticeSubscription(practice_id=practice.id, product="ada_tv", subscribed_at=now)
    with store.unit_of_work() as uow:
        assert uow.subscriptions.subscribe(mail)
        assert uow.subscriptions.subscribe(tv)
        assert not uow.subscriptions.subscribe(attrs.evolve(tv, subscribed_at=now + timedelta(1)))
        with pytest.raises(NotFound):
            uow.subscriptions.subscribe(attrs.evolve(tv, practice_id="p404"))
    with store.unit_of_work() as uow:
        assert list(uow.subscriptions.list_for_practice(practice.id)) == [tv, mail]
        assert uow.subscriptions.unsubscribe(practice.id, "ada_tv")
        assert not uow.subscriptions.unsubscribe(practice.id, "ada_tv")
        assert list(uow.subscriptions.list_for_practice(practice.id)) == [mail]


def test_entitlements_are_granted_and_revoked_per_user(
    store: Storage, user: User, other_user: User, now: datetime
) -> None:
    """SB-1, SB-2: a user's dashboard lists only their own products."""
    mail = Entitlement(user_id=user.id, product="securemail", granted_at=now)
    launch = Entitlement(user_id=user.id, product="launch_services", granted_at=now)
    with store.unit_of_work() as uow:
        assert uow.entitlements.grant(mail)
        assert uow.entitlements.grant(launch)
        assert not uow.entitlements.grant(mail)
        with pytest.raises(NotFound):
            uow.entitlements.grant(attrs.evolve(mail, user_id="u404"))
    with store.unit_of_work() as uow:
        assert list(uow.entitlements.list_for_user(user.id)) == [launch, mail]
        assert list(uow.entitlements.list_for_user(other_user.id)) == []
        assert uow.entitlements.revoke(user.id, "securemail")
        assert not uow.entitlements.revoke(user.id, "securemail")
        assert list(uow.entitlements.list_for_user(user.id)) == [launch]


def test_card_on_file_is_replaced_and_removed(store: Storage, user: User, now: datetime) -> None:
    """UM-6: the processor's token and last four digits, and nothing else, are kept."""
    card = CardOnFile(user_id=user.id, processor_token="tok_abc", last_four="4242", added_at=now)
    newer = attrs.evolve(card, processor_token="tok_def", last_four="0005")
    with store.unit_of_work() as uow:
        assert uow.cards.get(user.id) is None
        uow.cards.put(card)
        uow.cards.put(newer)
        with pytest.raises(NotFound):
            uow.cards.put(attrs.evolve(card, user_id="u404"))
    with store.unit_of_work() as uow:
        assert uow.cards.get(user.id) == newer
        assert uow.cards.remove(user.id)
        assert not uow.cards.remove(user.id)
        assert uow.cards.get(user.id) is None


# --- SecureMail billing ----------------------------------------------------------------------


def test_securemail_account_is_paid_for_once_at_a_time(
    store: Storage, user: User, other_user: User, now: datetime
) -> None:
    """UM-6: a purchase for an account already paid for is refused; after it ends, allowed."""
    purchase = SecureMailPurchase(
        id="sm1",
        practice_id="p1",
        payer_id=user.id,
        account_id=other_user.id,
        monthly_cents=1000,
        purchased_at=now,
    )
    own = attrs.evolve(purchase, id="sm2", account_id=user.id)
    again = attrs.evolve(purchase, id="sm3", payer_id=other_user.id)
    with store.unit_of_work() as uow:
        uow.securemail.add_purchase(purchase)
        uow.securemail.add_purchase(own)
        with pytest.raises(AlreadyExists) as paid:
            uow.securemail.add_purchase(again)
        with pytest.raises(AlreadyExists) as duplicate:
            uow.securemail.add_purchase(attrs.evolve(own, account_id="u1", ended_at=now))
        with pytest.raises(NotFound):
            uow.securemail.add_purchase(attrs.evolve(again, id="sm4", account_id="u404"))
    assert paid.value.code == "securemail.already_paid"
    assert duplicate.value.code == "purchase.exists"
    later = now + timedelta(days=30)
    with store.unit_of_work() as uow:
        assert uow.securemail.active_purchase(other_user.id) == purchase
        assert list(uow.securemail.purchases_paid_by(user.id)) == [purchase, own]
        assert list(uow.securemail.active_purchases()) == [purchase, own]
        assert uow.securemail.end_purchase("sm1", later)
        assert not uow.securemail.end_purchase("sm1", later)
        assert not uow.securemail.end_purchase("sm404", later)
        assert uow.securemail.active_purchase(other_user.id) is None
        uow.securemail.add_purchase(again)
    with store.unit_of_work() as uow:
        assert uow.securemail.active_purchase(other_user.id) == again
        assert list(uow.securemail.purchases_paid_by(other_user.id)) == [again]
        assert list(uow.securemail.active_purchases()) == [own, again]
        ended = uow.securemail.purchases_paid_by(user.id)[0]
    assert ended == attrs.evolve(purchase, ended_at=later)


def test_payments_and_invoices_are_listed_per_account(
    store: Storage, user: User, other_user: User, now: datetime
) -> None:
    """UM-7: payments and invoices in integer cents, listed for the account they are for."""
    purchase = SecureMailPurchase(
        id="sm1",
        practice_id="p1",
        payer_id=user.id,
        account_id=other_user.id,
        monthly_cents=1000,
        purchased_at=now,
    )
    payments = [
        SecureMailPayment(id=f"pay{n}", purchase_id="sm1", payer_id=user.id,
                          account_id=other_user.id, amount_cents=1000,
                          paid_at=now + timedelta(days=30 * n), processor_reference=f"ch_{n}")
        for n in (1, 0)
    ]  # fmt: skip
    invoice = Invoice(id="inv0", payment_id="pay0", payer_id=user.id, account_id=other_user.id,
                      amount_cents=1000, period_start=now, period_end=now + timedelta(days=30),
                      issued_at=now)  # fmt: skip
    with store.unit_of_work() as uow:
        uow.securemail.add_purchase(purchase)
        for payment in payments:
            uow.securemail.add_payment(payment)
        uow.securemail.add_invoice(invoice)
        with pytest.raises(AlreadyExists) as paid_twice:
            uow.securemail.add_payment(payments[0])
        with pytest.raises(AlreadyExists) as invoiced_twice:
            uow.securemail.add_invoice(invoice)
        with pytest.raises(NotFound):
            uow.securemail.add_payment(attrs.evolve(payments[0], id="pay9", purchase_id="x"))
        with pytest.raises(NotFound):
            uow.securemail.add_invoice(attrs.evolve(invoice, id="inv9", payment_id="x"))
    assert (paid_twice.value.code, invoiced_twice.value.code) == ("payment.exists",
                                                                  "invoice.exists")  # fmt: skip
    with store.unit_of_work() as uow:
        assert list(uow.securemail.payments_for(other_user.id)) == payments[::-1]
        assert list(uow.securemail.invoices_for(other_user.id)) == [invoice]
        assert list(uow.securemail.payments_for(user.id)) == []
        assert list(uow.securemail.invoices_for(user.id)) == []
