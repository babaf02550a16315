"""The storage contract: the tests every adapter of the storage ports must pass (ST-1).

Write your own store as a class with the methods of
`securepractice.storage.ports`, then subclass `StorageContract` in a test
module under a name pytest collects, and override its `storage` fixture to
give a new, empty store of yours::

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path: Path) -> Iterator[Storage]:
            store = MyStorage(tmp_path / "portal.db")
            yield store
            store.close()

Every test of the class then runs on your store: each port method, saves
over the version read (`~securepractice.errors.Conflict` when it moved,
`~securepractice.errors.NotFound` when the record is missing), units of
work that commit everything or nothing (ST-2), 50 threads racing for one
link or one code (RS-5, VF-7), the send limit (VF-8), the exact sign-in
counter with its attempts in flight, on any key (LK-4, LK-8, DP-5, IN-4), the portal secret's
fingerprint (DP-2), a failure injected at every operation, housekeeping's pages and
removals (OP-2), the audit log's pages (OP-3), its feed and its forwarders'
positions, with writers and a forwarder at once (CX-2), and the client-failure
counter (CX-3). Rules are the
core's: where a test needs a decision it asks the core, as a service does,
and proves that the store keeps exactly what the core returned.

This module needs pytest and hypothesis, the test dependencies; nothing in
the library imports it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from securepractice.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    InvalidToken,
    NotFound,
    RateLimited,
    SettingsError,
    StorageError,
)
from securepractice.forwarding import AuditForwarder
from securepractice.keys import fingerprint
from securepractice.policy.identity import normalize_email
from securepractice.policy.sessions import revoke_all
from securepractice.records import (
    AttemptOutcome,
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
    SendLedger,
    Session,
    TermsAcceptance,
    TokenPurpose,
    User,
    revised,
)
from securepractice.secret import Secret
from securepractice.settings import VerificationRules
from securepractice.storage.faults import FaultyStorage
from securepractice.storage.ports import SignInFailures, Storage, UnitOfWork
from securepractice.verification.codes import VerifyOutcome, code_hash, record_send, verify
from securepractice.verification.tokens import hash_token, supersede, use_token

__all__ = ["StorageContract"]

MakeChallenge = Callable[..., Challenge]
MakeToken = Callable[..., LinkToken]

#: The moment every test starts at.
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
#: The code and the link token the tests enter, and the rules that hash the code.
CODE = "123456"
TOKEN = "a-link-token-of-the-contract-suite"
RULES = VerificationRules(code_key=Secret(b"the storage contract suite's code key"))
#: Each adapter's class runs the same property tests, each on a store of its own.
_SHARED_BY_ADAPTERS = [HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]
#: How many threads race in the concurrency tests.
RACERS = 50
#: How long an unfinished sign-in attempt counts as in flight, in these tests.
IN_FLIGHT = timedelta(minutes=5)
WRONG, RIGHT, NOT_COUNTED = AttemptOutcome.WRONG, AttemptOutcome.RIGHT, AttemptOutcome.NOT_COUNTED
#: Fingerprints of three portal secrets (DP-2).
SECRET_A, SECRET_B, SECRET_C = (fingerprint(Secret(bytes([n]) * 32)) for n in (1, 2, 3))

_TEXT = st.text(st.characters(codec="utf-8"), max_size=20)
#: Characters that case folding, NFKC or lower-casing treat differently: ß, ẞ, the Kelvin sign, ﬀ.
_LOCAL_PARTS = st.text("sSßẞkK\u212affF\ufb00", min_size=1, max_size=3)
_DOMAINS = st.sampled_from(["example.com", "EXAMPLE.com", "straße.de", "strasse.de", "STRASSE.DE"])
_EMAILS = st.builds(
    lambda local, domain, pad: f"{pad}{local}@{domain}{pad}",
    _LOCAL_PARTS,
    _DOMAINS,
    st.sampled_from(["", " "]),
)


@attrs.frozen
class _Kind:
    """How the save tests reach one kind of versioned record of the ports."""

    make: Callable[[datetime], Any]
    add: Callable[[UnitOfWork, Any], None]
    get: Callable[[UnitOfWork, Any], Any]
    save: Callable[[UnitOfWork, Any, int], None]
    change: dict[str, object]
    missing: dict[str, object]


_KINDS = {
    "practice": _Kind(
        make=lambda now: Practice(id="p2", name="Bright Smiles", created_at=now),
        add=lambda uow, r: uow.practices.add(r),
        get=lambda uow, r: uow.practices.get(r.id),
        save=lambda uow, r, v: uow.practices.save(r, expected_version=v),
        change={"name": "Brighter Smiles"},
        missing={"id": "p404"},
    ),
    "user": _Kind(
        make=lambda now: User(id="u9", practice_id="p1", email="eve@example.com", created_at=now),
        add=lambda uow, r: uow.users.add(r),
        get=lambda uow, r: uow.users.get(r.id),
        save=lambda uow, r, v: uow.users.save(r, expected_version=v),
        change={"locked": True, "email": "eve.new@example.com"},
        missing={"id": "u404", "email": "nobody@example.com"},
    ),
    "credential": _Kind(
        make=lambda now: Credential(user_id="u1", password_hash="$argon2id$one", set_at=now),
        add=lambda uow, r: uow.credentials.add(r),
        get=lambda uow, r: uow.credentials.get(r.user_id),
        save=lambda uow, r, v: uow.credentials.save(r, expected_version=v),
        change={"password_hash": "$argon2id$two", "history": ("$argon2id$one",)},
        missing={"user_id": "u404"},
    ),
    "challenge": _Kind(
        make=lambda now: Challenge(
            id="c9",
            user_id="u1",
            purpose=Purpose.REGISTRATION,
            method=DeliveryMethod.SMS,
            destination="+12025550143",
            code_hash=b"h" * 32,
            issued_at=now,
            expires_at=now + timedelta(minutes=10),
        ),
        add=lambda uow, r: uow.challenges.add(r),
        get=lambda uow, r: uow.challenges.get(r.id),
        save=lambda uow, r, v: uow.challenges.save(r, expected_version=v),
        change={"wrong_attempts": 1},
        missing={"id": "c404"},
    ),
    "link_token": _Kind(
        make=lambda now: LinkToken(
            id="l9",
            token_hash=b"t" * 32,
            user_id="u1",
            purpose=TokenPurpose.INVITATION,
            created_at=now,
            expires_at=now + timedelta(days=14),
        ),
        add=lambda uow, r: uow.link_tokens.add(r),
        get=lambda uow, r: uow.link_tokens.get(r.token_hash),
        save=lambda uow, r, v: uow.link_tokens.save(r, expected_version=v),
        change={"superseded": True},
        missing={"id": "l404", "token_hash": b"m" * 32},
    ),
    "session": _Kind(
        make=lambda now: Session(
            token_hash=b"s" * 32, user_id="u1", created_at=now, last_active_at=now
        ),
        add=lambda uow, r: uow.sessions.add(r),
        get=lambda uow, r: uow.sessions.get(r.token_hash),
        save=lambda uow, r, v: uow.sessions.save(r, expected_version=v),
        change={"revoked": True},
        missing={"token_hash": b"m" * 32},
    ),
    "send_ledger": _Kind(
        make=lambda now: SendLedger(user_id="u1", sends=(now,)),
        add=lambda uow, r: uow.code_sends.add(r),
        get=lambda uow, r: uow.code_sends.get(r.user_id),
        save=lambda uow, r, v: uow.code_sends.save(r, expected_version=v),
        change={"sends": (NOW, NOW + timedelta(minutes=1))},
        missing={"user_id": "u404"},
    ),
    "purchase": _Kind(
        make=lambda now: SecureMailPurchase(
            id="sm9",
            practice_id="p1",
            payer_id="u1",
            account_id="u1",
            monthly_cents=1000,
            purchased_at=now,
        ),
        add=lambda uow, r: uow.securemail.add_purchase(r),
        get=lambda uow, r: next(p for p in uow.securemail.purchases_paid_by("u1") if p.id == r.id),
        save=lambda uow, r, v: uow.securemail.save_purchase(r, expected_version=v),
        change={"ended_at": NOW + timedelta(days=30)},
        missing={"id": "sm404"},
    ),
}


def _event(number: int, at: datetime, **fields: Any) -> AuditEvent:  # noqa: ANN401
    """Make the audit event ``e<number>`` at ``at``."""
    return AuditEvent(id=f"e{number:04d}", at=at, action="sign_in", outcome="ok", **fields)


@attrs.frozen
class _Pruned:
    """How the housekeeping tests reach one kind of record: make the n-th, add, get, reach."""

    make: Callable[[int, datetime], Any]
    add: Callable[[UnitOfWork, Any], None]
    get: Callable[[UnitOfWork, Any], Any]
    repository: Callable[[UnitOfWork], Any]
    key: Callable[[Any], Any]
    change: dict[str, object]


def _users(storage: Storage, count: int, now: datetime) -> None:
    """Store ``count`` more users of practice ``p1``, ``v0000`` up."""
    with storage.unit_of_work() as uow:
        for n in range(count):
            uow.users.add(User(id=f"v{n:04d}", practice_id="p1", email=f"v{n}@example.com",
                               created_at=now))  # fmt: skip


_PRUNED = {
    "session": _Pruned(
        make=lambda n, now: Session(
            token_hash=n.to_bytes(2, "big") * 16, user_id="u1", created_at=now, last_active_at=now
        ),
        add=lambda uow, r: uow.sessions.add(r),
        get=lambda uow, r: uow.sessions.get(r.token_hash),
        repository=lambda uow: uow.sessions,
        key=lambda r: r.token_hash,
        change={"revoked": True},
    ),
    "link_token": _Pruned(
        make=lambda n, now: LinkToken(
            id=f"l{n:04d}",
            token_hash=n.to_bytes(2, "big") * 16,
            user_id="u1",
            purpose=TokenPurpose.INVITATION,
            created_at=now,
            expires_at=now + timedelta(days=1),
        ),
        add=lambda uow, r: uow.link_tokens.add(r),
        get=lambda uow, r: uow.link_tokens.get(r.token_hash),
        repository=lambda uow: uow.link_tokens,
        key=lambda r: r.token_hash,
        change={"superseded": True},
    ),
    "challenge": _Pruned(
        make=lambda n, now: Challenge(
            id=f"c{n:04d}",
            user_id="u1",
            purpose=Purpose.NEW_PHONE,
            method=DeliveryMethod.SMS,
            destination="+12025550143",
            code_hash=None,
            issued_at=now,
            expires_at=now + timedelta(minutes=10),
        ),
        add=lambda uow, r: uow.challenges.add(r),
        get=lambda uow, r: uow.challenges.get(r.id),
        repository=lambda uow: uow.challenges,
        key=lambda r: r.id,
        change={"state": ChallengeState.VOID},
    ),
    "send_ledger": _Pruned(
        make=lambda n, now: SendLedger(user_id=f"v{n:04d}", sends=(now,)),
        add=lambda uow, r: uow.code_sends.add(r),
        get=lambda uow, r: uow.code_sends.get(r.user_id),
        repository=lambda uow: uow.code_sends,
        key=lambda r: r.user_id,
        change={"wrong_codes": 3},
    ),
}


class _Collected:
    """A sink that keeps what it is given, and can fail on the next deliveries."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.failures = 0

    def deliver(self, events: Any) -> None:  # noqa: ANN401 - a sequence of events
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("the collector is down")
        self.events.extend(events)


def _save_any(uow: UnitOfWork, record: Any, expected_version: int) -> None:  # noqa: ANN401
    """Save a session, link token, challenge or send ledger over ``expected_version``."""
    repository = {
        Session: uow.sessions,
        LinkToken: uow.link_tokens,
        Challenge: uow.challenges,
        SendLedger: uow.code_sends,
    }[type(record)]
    repository.save(record, expected_version=expected_version)  # type: ignore[attr-defined]


def _run_together(count: int, work: Callable[[], object]) -> list[object]:
    """Run ``work`` in ``count`` threads released at once; return results (or exceptions)."""
    barrier = threading.Barrier(count)
    results: list[object] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            outcome = work()
        except Exception as error:  # noqa: BLE001 - reported to the test as a value
            outcome = error
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _start(failures: SignInFailures, key: str, at: datetime) -> int:
    """Start an attempt at ``at``, as sign-in does: those older than `IN_FLIGHT` are abandoned."""
    return failures.start(key, now=at, abandoned_before=at - IN_FLIGHT)


def _attempt(storage: Storage, key: str, at: datetime, outcome: AttemptOutcome) -> int:
    """One whole attempt as sign-in makes it: start in one unit, finish in the next."""
    with storage.unit_of_work() as uow:
        number = _start(uow.sign_in_failures, key, at)
    with storage.unit_of_work() as uow:
        uow.sign_in_failures.finish(key, started=at, outcome=outcome)
    return number


@attrs.define
class _AttemptsModel:
    """What `SignInFailures` keeps for one key, in plain Python, to check a store against."""

    failures: int = 0
    in_flight: list[datetime] = attrs.Factory(list)

    def start(self, at: datetime) -> int:
        self.in_flight = [*(t for t in self.in_flight if t >= at - IN_FLIGHT), at]
        return self.failures + len(self.in_flight)

    def finish(self, started: datetime, outcome: AttemptOutcome) -> int:
        if started in self.in_flight:
            self.in_flight.remove(started)
        self.failures = {WRONG: self.failures + 1, RIGHT: 0, NOT_COUNTED: self.failures}[outcome]
        return self.failures

    def reset(self) -> None:
        self.failures = 0


_MINUTES = st.integers(min_value=0, max_value=12).map(lambda m: NOW + timedelta(minutes=m))
_ATTEMPT_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("start"), _MINUTES),
        st.tuples(st.just("finish"), _MINUTES, st.sampled_from(AttemptOutcome)),
        st.tuples(st.just("reset")),
    ),
    max_size=14,
)


def _codes(results: list[object]) -> list[str]:
    """Return the ``code`` of every error among ``results``, sorted."""
    return sorted(getattr(r, "code", type(r).__name__) for r in results if isinstance(r, Exception))


def _write_registration(uow: UnitOfWork, now: datetime) -> None:
    """Five writes to five tables, as one step of a flow does."""
    uow.practices.add(Practice(id="p2", name="Bright Smiles", created_at=now))
    uow.users.add(User(id="u5", practice_id="p2", email="eve@example.com", created_at=now))
    uow.credentials.add(Credential(user_id="u5", password_hash="$argon2id$x", set_at=now))
    uow.sign_in_failures.finish("u5", started=now, outcome=WRONG)
    uow.audit.append(AuditEvent(id="e5", at=now, action="invitation.accepted", outcome="ok"))


#: What `_write_registration` does: begin, five writes, commit.
_OPERATIONS = 7


def _registration_state(storage: Storage) -> tuple[object, ...]:
    with storage.unit_of_work() as uow:
        return (
            uow.practices.get("p2"),
            uow.users.get("u5"),
            uow.credentials.get("u5"),
            uow.sign_in_failures.count("u5"),
            tuple(uow.audit.events()),
        )


def _send_code(storage: Storage, user_id: str, now: datetime) -> bool:
    """Count one code send as a service does; False when another unit saved first."""
    try:
        with storage.unit_of_work() as uow:
            ledger = uow.code_sends.get(user_id)
            new = record_send(ledger, user_id=user_id, now=now, rules=RULES)
            if ledger is None:
                uow.code_sends.add(new)
            else:
                uow.code_sends.save(new, expected_version=ledger.version)
    except Conflict:
        return False
    except AlreadyExists as error:
        if error.code != "send_ledger.exists":
            raise
        return False
    return True


class StorageContract:
    """The contract of the storage ports, as tests; subclass it and override `storage`."""

    # --- fixtures ----------------------------------------------------------------------------

    @pytest.fixture
    def storage(self) -> Iterator[Storage]:
        """Give a new, empty store of the adapter under test and close it after: override this."""
        raise NotImplementedError(
            f"{type(self).__name__} must override the storage fixture to give its store"
        )

    @pytest.fixture
    def now(self) -> datetime:
        """Give the moment the test happens at."""
        return NOW

    @pytest.fixture
    def practice(self, storage: Storage, now: datetime) -> Practice:
        """Store a practice, ``p1``."""
        record = Practice(id="p1", name="Smile Dental", address="1 Main St", created_at=now)
        with storage.unit_of_work() as uow:
            uow.practices.add(record)
        return record

    @pytest.fixture
    def user(self, storage: Storage, practice: Practice, now: datetime) -> User:
        """Store a User Manager of ``practice``, ``u1``."""
        record = User(
            id="u1",
            practice_id=practice.id,
            email="ada@example.com",
            roles=frozenset({Role.USER, Role.USER_MANAGER}),
            created_at=now,
        )
        with storage.unit_of_work() as uow:
            uow.users.add(record)
        return record

    @pytest.fixture
    def other_user(self, storage: Storage, user: User, now: datetime) -> User:
        """Store a second user of the same practice, ``u2``."""
        record = User(
            id="u2", practice_id=user.practice_id, email="grace@example.com", created_at=now
        )
        with storage.unit_of_work() as uow:
            uow.users.add(record)
        return record

    @pytest.fixture
    def make_challenge(self, user: User, now: datetime) -> MakeChallenge:
        """Build (not store) a challenge of ``user`` whose code is `CODE`; arguments override."""

        def make(**changes: object) -> Challenge:
            challenge_id = str(changes.get("id", "c1"))
            fields: dict[str, object] = {
                "id": challenge_id,
                "user_id": user.id,
                "purpose": Purpose.REGISTRATION,
                "method": DeliveryMethod.SMS,
                "destination": "+12025550143",
                "code_hash": code_hash(
                    Secret(CODE),
                    challenge_id=challenge_id,
                    user_id=user.id,
                    purpose=Purpose.REGISTRATION,
                    key=RULES.code_key,
                ),
                "issued_at": now,
                "expires_at": now + timedelta(minutes=10),
            }
            fields.update(changes)
            return Challenge(**fields)  # type: ignore[arg-type]

        return make

    @pytest.fixture
    def make_token(self, user: User, now: datetime) -> MakeToken:
        """Build (not store) a link token of ``user`` for `TOKEN`; arguments override."""

        def make(**changes: object) -> LinkToken:
            fields: dict[str, object] = {
                "id": uuid.uuid4().hex,
                "token_hash": hash_token(TOKEN),
                "user_id": user.id,
                "purpose": TokenPurpose.INVITATION,
                "created_at": now,
                "expires_at": now + timedelta(days=14),
            }
            fields.update(changes)
            return LinkToken(**fields)  # type: ignore[arg-type]

        return make

    # --- saves over the version read ---------------------------------------------------------

    @pytest.mark.usefixtures("user")
    @pytest.mark.parametrize("kind", sorted(_KINDS))
    def test_save_replaces_the_record_read(
        self, storage: Storage, now: datetime, kind: str
    ) -> None:
        """ST-1: a save over the stored version replaces the record, its new version included."""
        spec = _KINDS[kind]
        record = spec.make(now)
        with storage.unit_of_work() as uow:
            spec.add(uow, record)
        changed = revised(record, **spec.change)
        with storage.unit_of_work() as uow:
            assert spec.get(uow, record) == record
            spec.save(uow, changed, record.version)
        with storage.unit_of_work() as uow:
            assert spec.get(uow, record) == changed
        assert changed.version == record.version + 1

    @pytest.mark.usefixtures("user")
    @pytest.mark.parametrize("kind", sorted(_KINDS))
    def test_save_over_a_moved_version_is_a_conflict_and_changes_nothing(
        self, storage: Storage, now: datetime, kind: str
    ) -> None:
        """RS-5, VF-7: of two changes computed from one read, the second is refused, unwritten."""
        spec = _KINDS[kind]
        record = spec.make(now)
        with storage.unit_of_work() as uow:
            spec.add(uow, record)
        first = revised(record, **spec.change)
        second = revised(record)
        with storage.unit_of_work() as uow:
            spec.save(uow, first, record.version)
            with pytest.raises(Conflict) as moved:
                spec.save(uow, second, record.version)
            with pytest.raises(Conflict) as ahead:
                spec.save(uow, second, record.version + 5)
            assert spec.get(uow, record) == first
        with pytest.raises(Conflict), storage.unit_of_work() as uow:
            spec.save(uow, second, record.version)
        assert (moved.value.code, ahead.value.code) == ("storage.conflict", "storage.conflict")
        assert isinstance(moved.value, StorageError)
        with storage.unit_of_work() as uow:
            assert spec.get(uow, record) == first

    @pytest.mark.usefixtures("user")
    @pytest.mark.parametrize("kind", sorted(_KINDS))
    def test_save_of_a_missing_record_is_not_found(
        self, storage: Storage, now: datetime, kind: str
    ) -> None:
        """ST-1: a save never creates a record; a missing one is NotFound, named for its kind."""
        spec = _KINDS[kind]
        missing = attrs.evolve(spec.make(now), **spec.missing)
        with storage.unit_of_work() as uow, pytest.raises(NotFound) as absent:
            spec.save(uow, revised(missing), missing.version)
        assert absent.value.code == f"{kind}.not_found"
        with storage.unit_of_work() as uow:
            spec.add(uow, spec.make(now))
        with storage.unit_of_work() as uow, pytest.raises(NotFound):
            spec.save(uow, revised(missing), missing.version)

    # --- practices ---------------------------------------------------------------------------

    def test_practice_is_added_read_and_saved(self, storage: Storage, practice: Practice) -> None:
        """ID-2, PF-2: the main account information is kept and can be replaced."""
        changed = revised(practice, name="Smile Dental Group", phone="+12025550143")
        with storage.unit_of_work() as uow:
            assert uow.practices.get("p1") == practice
            uow.practices.save(changed, expected_version=practice.version)
        with storage.unit_of_work() as uow:
            assert uow.practices.get("p1") == changed
            assert uow.practices.get("nope") is None

    def test_practice_id_is_unique(self, storage: Storage, practice: Practice) -> None:
        """ST-1: a second practice under a taken id is refused, and nothing changes."""
        with storage.unit_of_work() as uow, pytest.raises(AlreadyExists) as duplicate:
            uow.practices.add(attrs.evolve(practice, name="Other"))
        assert duplicate.value.code == "practice.exists"
        with storage.unit_of_work() as uow:
            assert uow.practices.get("p1") == practice

    # --- users -------------------------------------------------------------------------------

    @settings(
        suppress_health_check=_SHARED_BY_ADAPTERS,
        max_examples=40,
        deadline=None,
    )
    @given(
        first=_TEXT,
        last=_TEXT,
        specialties=st.lists(_TEXT, max_size=3).map(tuple),
        roles=st.frozensets(st.sampled_from(Role), min_size=1),
        status=st.sampled_from(RegistrationStatus),
        flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
        ada=st.none() | _TEXT,
        zone=st.none() | st.sampled_from(["America/New_York", "Europe/Paris"]),
        created=st.datetimes(
            min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis adds the zone
            max_value=datetime(2100, 1, 1),  # noqa: DTZ001
            timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-5))]),
        ),
        version=st.integers(min_value=0, max_value=2**62),
    )
    def test_every_user_field_round_trips(
        self,
        storage: Storage,
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
        version: int,
    ) -> None:
        """ID-1, ID-3: what is stored is what comes back, field for field, in UTC."""
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
            version=version,
        )
        with storage.unit_of_work() as uow:
            uow.users.add(record)
        with storage.unit_of_work() as uow:
            back = uow.users.get(user_id)
        assert back == record
        assert back is not None
        assert back.created_at.utcoffset() == timedelta(0)

    def test_email_is_unique_in_its_normal_form(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """ID-1, ID-2: an email is one user across the portal; a second is refused."""
        other = Practice(id="p2", name="Other", created_at=now)
        with storage.unit_of_work() as uow:
            uow.practices.add(other)
        intruder = User(
            id="u9", practice_id="p2", email=normalize_email("ADA@Example.COM"), created_at=now
        )
        with pytest.raises(AlreadyExists) as refused, storage.unit_of_work() as uow:
            uow.users.add(intruder)
        assert refused.value.code == "user.email_taken"
        with storage.unit_of_work() as uow:
            assert uow.users.get("u9") is None
            assert uow.users.get_by_email(normalize_email(" Ada@EXAMPLE.com")) == user
            assert uow.users.get_by_email(normalize_email("nobody@example.com")) is None

    @settings(
        suppress_health_check=_SHARED_BY_ADAPTERS,
        max_examples=60,
        deadline=None,
    )
    @given(a=_EMAILS, b=_EMAILS)
    @example(a="straße@example.com", b="strasse@example.com")
    @example(a="STRASSE@example.com", b="strasse@example.com")
    @example(a="ẞ@straße.de", b="ß@STRASSE.DE")
    @example(a="\u212a@example.com", b="k@example.com")
    @example(a=" ADA@Example.COM", b="ada@example.com ")
    def test_id_2_two_emails_are_one_user_exactly_when_normalize_email_says_so(
        self, storage: Storage, practice: Practice, now: datetime, a: str, b: str
    ) -> None:
        """ID-2: the store keys on the normal form exactly, with no case folding of its own."""
        tag = uuid.uuid4().hex
        local_a, domain_a = a.rsplit("@", 1)
        local_b, domain_b = b.rsplit("@", 1)
        email_a = normalize_email(f"{local_a}@{tag}.{domain_a}")
        email_b = normalize_email(f"{local_b}@{tag}.{domain_b}")
        same = email_a == email_b
        first = User(id=f"{tag}a", practice_id=practice.id, email=email_a, created_at=now)
        second = User(id=f"{tag}b", practice_id=practice.id, email=email_b, created_at=now)
        with storage.unit_of_work() as uow:
            uow.users.add(first)
        with storage.unit_of_work() as uow:
            assert uow.users.get_by_email(email_b) == (first if same else None)
        if same:
            with pytest.raises(AlreadyExists) as taken, storage.unit_of_work() as uow:
                uow.users.add(second)
            assert taken.value.code == "user.email_taken"
        else:
            with storage.unit_of_work() as uow:
                uow.users.add(second)
                assert uow.users.get_by_email(email_b) == second
                assert uow.users.get_by_email(email_a) == first

    def test_user_id_is_unique_and_practice_must_exist(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """ST-1: a taken id is refused, and a user's practice must be stored."""
        with storage.unit_of_work() as uow:
            with pytest.raises(AlreadyExists) as duplicate:
                uow.users.add(attrs.evolve(user, email="new@example.com"))
            with pytest.raises(NotFound) as orphan:
                uow.users.add(
                    User(id="u8", practice_id="p404", email="x@example.com", created_at=now)
                )
        assert duplicate.value.code == "user.exists"
        assert orphan.value.code == "storage.reference_missing"

    def test_user_save_keeps_email_unique(
        self, storage: Storage, user: User, other_user: User
    ) -> None:
        """PF-1, UM-4: changing an email to another user's is refused; to a new one works."""
        version = other_user.version
        with storage.unit_of_work() as uow:
            with pytest.raises(AlreadyExists) as taken:
                uow.users.save(revised(other_user, email=user.email), expected_version=version)
            with pytest.raises(NotFound) as orphan:
                uow.users.save(revised(other_user, practice_id="p404"), expected_version=version)
            assert uow.users.get(other_user.id) == other_user
            changed = revised(other_user, email="g.hopper@example.com", locked=True)
            uow.users.save(changed, expected_version=version)
        assert taken.value.code == "user.email_taken"
        assert orphan.value.code == "storage.reference_missing"
        with storage.unit_of_work() as uow:
            assert uow.users.get("u2") == changed
            assert uow.users.get_by_email("g.hopper@example.com") == changed
            assert uow.users.get_by_email("grace@example.com") is None

    def test_users_are_listed_per_practice_by_email(
        self, storage: Storage, user: User, other_user: User, now: datetime
    ) -> None:
        """UM-3: Manage Users lists the practice's users and only them; support has no practice."""
        support = User(id="s1", practice_id=None, email="aaron@support.example", created_at=now)
        with storage.unit_of_work() as uow:
            uow.users.add(support)
        with storage.unit_of_work() as uow:
            assert list(uow.users.list_for_practice("p1")) == [user, other_user]
            assert list(uow.users.list_for_practice("p404")) == []
            assert uow.users.get("s1") == support

    def test_support_staff_are_listed_by_email_without_practice_users(
        self, storage: Storage, user: User, other_user: User, now: datetime
    ) -> None:
        """OP-1: the staff list holds every user without a practice, by email, and no one else."""
        staff = [
            User(id="s2", practice_id=None, email="zoe@support.example", created_at=now),
            User(id="s1", practice_id=None, email="aaron@support.example", created_at=now),
        ]
        with storage.unit_of_work() as uow:
            for member in staff:
                uow.users.add(member)
        with storage.unit_of_work() as uow:
            listed = list(uow.users.list_staff())
        assert [u.id for u in listed] == ["s1", "s2"]
        assert {user.id, other_user.id}.isdisjoint(u.id for u in listed)

    # --- credentials and failures ------------------------------------------------------------

    def test_credential_is_added_once_then_saved_whole(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """PW-4, PW-5, PW-7: the hash, its set time and the history come back as stored."""
        first = Credential(user_id=user.id, password_hash="$argon2id$one", set_at=now)
        second = revised(
            first,
            password_hash="$argon2id$two",
            set_at=now + timedelta(days=1),
            history=("$argon2id$one",),
        )
        with storage.unit_of_work() as uow:
            assert uow.credentials.get(user.id) is None
            uow.credentials.add(first)
            assert uow.credentials.get(user.id) == first
            with pytest.raises(AlreadyExists) as again:
                uow.credentials.add(second)
            with pytest.raises(NotFound) as orphan:
                uow.credentials.add(attrs.evolve(first, user_id="u404"))
            uow.credentials.save(second, expected_version=first.version)
        assert again.value.code == "credential.exists"
        assert orphan.value.code == "storage.reference_missing"
        with storage.unit_of_work() as uow:
            assert uow.credentials.get(user.id) == second

    # --- sign-in failures and attempts in flight --------------------------------------------

    def test_lk_4_each_start_counts_failures_and_attempts_in_flight(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """LK-4: a start counts before the password is checked; a WRONG finish makes a failure."""
        with storage.unit_of_work() as uow:
            failures = uow.sign_in_failures
            assert failures.count(user.id) == 0
            assert [_start(failures, user.id, now) for _ in range(3)] == [1, 2, 3]
            assert failures.count(user.id) == 0
        with storage.unit_of_work() as uow:
            failures = uow.sign_in_failures
            assert _start(failures, user.id, now) == 4
            outcomes = [failures.finish(user.id, started=now, outcome=WRONG) for _ in range(4)]
            assert outcomes == [1, 2, 3, 4]
        with storage.unit_of_work() as uow:
            assert uow.sign_in_failures.count(user.id) == 4
            assert _start(uow.sign_in_failures, user.id, now) == 5

    def test_lk_3_lk_8_right_clears_the_failures_and_not_counted_leaves_them(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """LK-3: a right password clears the count; LK-8: a failure of another kind leaves it."""
        assert [_attempt(storage, user.id, now, WRONG) for _ in range(2)] == [1, 2]
        with storage.unit_of_work() as uow:
            failures = uow.sign_in_failures
            assert _start(failures, user.id, now) == 3
            assert failures.finish(user.id, started=now, outcome=NOT_COUNTED) == 2
            assert failures.count(user.id) == 2
            assert _start(failures, user.id, now) == 3
            assert failures.finish(user.id, started=now, outcome=RIGHT) == 0
            assert failures.count(user.id) == 0
            assert _start(failures, user.id, now) == 1

    def test_lk_4_finish_takes_out_only_the_attempt_it_started(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """LK-4: a finish closes one attempt of its start time, never another one in flight."""
        later = now + timedelta(seconds=1)
        with storage.unit_of_work() as uow:
            failures = uow.sign_in_failures
            assert [_start(failures, user.id, at) for at in (now, now, later)] == [1, 2, 3]
            assert failures.finish(user.id, started=now, outcome=NOT_COUNTED) == 0
            assert _start(failures, user.id, later) == 3  # one at now, two at later
            never = now + timedelta(hours=1)
            assert failures.finish(user.id, started=never, outcome=NOT_COUNTED) == 0
            assert _start(failures, user.id, later) == 4
            assert failures.finish(user.id, started=later, outcome=WRONG) == 1
            assert _start(failures, user.id, later) == 5  # 1 failure, 4 in flight

    def test_dp_5_abandoned_attempts_stop_counting(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """DP-5: an unfinished attempt stops counting once it started before abandoned_before."""
        with storage.unit_of_work() as uow:
            failures = uow.sign_in_failures
            assert _start(failures, user.id, now) == 1
            assert _start(failures, user.id, now) == 2
            # Started exactly at abandoned_before: still in flight.
            assert _start(failures, user.id, now + IN_FLIGHT) == 3
        tick = timedelta(microseconds=1)
        with storage.unit_of_work() as uow:
            assert _start(uow.sign_in_failures, user.id, now + IN_FLIGHT + tick) == 2
            assert uow.sign_in_failures.count(user.id) == 0
        with storage.unit_of_work() as uow:
            assert _start(uow.sign_in_failures, user.id, now + 3 * IN_FLIGHT) == 1

    def test_dp_5_finish_of_an_abandoned_attempt_still_records_its_outcome(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """DP-5, LK-3: a slow attempt that lapsed still counts as wrong, or clears when right."""
        later = now + 2 * IN_FLIGHT
        with storage.unit_of_work() as uow:
            failures = uow.sign_in_failures
            assert _start(failures, user.id, now) == 1
            assert _start(failures, user.id, later) == 1  # the first was abandoned
        with storage.unit_of_work() as uow:
            failures = uow.sign_in_failures
            assert failures.finish(user.id, started=now, outcome=WRONG) == 1
            assert failures.count(user.id) == 1
            assert _start(failures, user.id, later) == 3  # 1 failure, the later attempt and this
            assert failures.finish(user.id, started=now, outcome=RIGHT) == 0
            assert _start(failures, user.id, later) == 3  # 0 failures, 3 in flight

    def test_lk_2_reset_clears_the_recorded_failures(
        self, storage: Storage, user: User, other_user: User, now: datetime
    ) -> None:
        """LK-2: reset clears the failures, not the attempts in flight, of its key alone.

        Attempts in flight still race for the password check (LK-4) after an unlock.
        """
        for _ in range(3):
            _attempt(storage, user.id, now, WRONG)
        _attempt(storage, other_user.id, now, WRONG)
        with storage.unit_of_work() as uow:
            failures = uow.sign_in_failures
            assert _start(failures, user.id, now) == 4
            failures.reset(user.id)
            failures.reset(user.id)
            failures.reset("u404")
            assert failures.count(user.id) == 0
            assert failures.count(other_user.id) == 1
            assert failures.count("u404") == 0
            assert _start(failures, user.id, now) == 2  # the attempt before the reset is in flight

    def test_in_4_a_key_that_names_no_user_counts_like_a_user_s_id(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """IN-4: an email's counter key counts as a user's id does, apart from every other key.

        Sign-in counts an email that no account has under such a key, so that
        it makes the same writes as a known one; the store never needs a user.
        """
        key, other = "email:" + "0f" * 32, "email:" + "e1" * 32
        assert [_attempt(storage, key, now, WRONG) for _ in range(3)] == [1, 2, 3]
        _attempt(storage, user.id, now, WRONG)
        with storage.unit_of_work() as uow:
            failures = uow.sign_in_failures
            assert (failures.count(key), failures.count(user.id), failures.count(other)) == (
                3,
                1,
                0,
            )
            assert _start(failures, key, now) == 4
            assert failures.finish(key, started=now, outcome=NOT_COUNTED) == 3
            assert failures.finish(other, started=now, outcome=WRONG) == 1  # no start: a new row
            failures.reset(key)
            assert (failures.count(key), failures.count(user.id), failures.count(other)) == (
                0,
                1,
                1,
            )
            assert uow.users.get(key) is None

    @settings(suppress_health_check=_SHARED_BY_ADAPTERS, max_examples=40, deadline=None)
    @given(steps=_ATTEMPT_STEPS)
    def test_lk_4_dp_5_any_sequence_of_starts_and_finishes_counts_exactly(
        self, storage: Storage, practice: Practice, now: datetime, steps: list[tuple[Any, ...]]
    ) -> None:
        """LK-4, DP-5: every start, finish and reset returns what the port says, in any order."""
        user = User(
            id=uuid.uuid4().hex,
            practice_id=practice.id,
            email=f"{uuid.uuid4().hex}@example.com",
            created_at=now,
        )
        with storage.unit_of_work() as uow:
            uow.users.add(user)
        model = _AttemptsModel()
        for name, *arguments in steps:
            with storage.unit_of_work() as uow:
                failures = uow.sign_in_failures
                if name == "start":
                    assert _start(failures, user.id, arguments[0]) == model.start(arguments[0])
                elif name == "finish":
                    at, outcome = arguments
                    kept = failures.finish(user.id, started=at, outcome=outcome)
                    assert kept == model.finish(at, outcome)
                else:
                    failures.reset(user.id)
                    model.reset()
                assert failures.count(user.id) == model.failures

    # --- challenges --------------------------------------------------------------------------

    def test_challenge_is_added_saved_and_latest_found(
        self, storage: Storage, make_challenge: MakeChallenge, now: datetime
    ) -> None:
        """VF-5, VF-6: a re-send or a change of method replaces the stored code and method."""
        first = make_challenge(flow_id="link-1")
        later = make_challenge(id="c2", issued_at=now + timedelta(minutes=1))
        other = make_challenge(
            id="c3", purpose=Purpose.NEW_PHONE, phone_kind=PhoneKind.CELL, flow_id=None
        )
        with storage.unit_of_work() as uow:
            assert uow.challenges.latest("u1", Purpose.REGISTRATION) is None
            for challenge in (first, later, other):
                uow.challenges.add(challenge)
            with pytest.raises(AlreadyExists) as duplicate:
                uow.challenges.add(first)
            with pytest.raises(NotFound) as orphan:
                uow.challenges.add(make_challenge(id="c8", user_id="u404"))
            resent = revised(later, method=DeliveryMethod.VOICE, code_hash=b"n" * 32)
            uow.challenges.save(resent, expected_version=later.version)
        assert duplicate.value.code == "challenge.exists"
        assert orphan.value.code == "storage.reference_missing"
        with storage.unit_of_work() as uow:
            assert uow.challenges.get("c1") == first
            assert uow.challenges.get("c404") is None
            assert uow.challenges.latest("u1", Purpose.REGISTRATION) == resent
            assert uow.challenges.latest("u1", Purpose.NEW_PHONE) == other
            assert uow.challenges.latest("u1", Purpose.PASSWORD_RESET) is None
            assert uow.challenges.latest("u2", Purpose.REGISTRATION) is None

    def test_latest_challenge_is_the_one_added_last_even_in_the_same_instant(
        self, storage: Storage, make_challenge: MakeChallenge
    ) -> None:
        """VF-5, RS-5: two verifications made in one instant are told apart by order, not time."""
        with storage.unit_of_work() as uow:
            for n in range(1, 4):
                uow.challenges.add(make_challenge(id=f"c{n}", flow_id=f"link-{n}"))
        with storage.unit_of_work() as uow:
            latest = uow.challenges.latest("u1", Purpose.REGISTRATION)
            assert latest is not None
            uow.challenges.save(revised(latest, wrong_attempts=1), expected_version=latest.version)
        with storage.unit_of_work() as uow:
            latest = uow.challenges.latest("u1", Purpose.REGISTRATION)
        assert latest is not None
        assert (latest.id, latest.flow_id, latest.wrong_attempts) == ("c3", "link-3", 1)

    def test_right_code_verifies_once_and_wrong_ones_count(
        self, storage: Storage, make_challenge: MakeChallenge, now: datetime
    ) -> None:
        """VF-4, VF-7, RS-5: what the core decides is kept, so the right code works only once."""
        with storage.unit_of_work() as uow:
            uow.challenges.add(make_challenge())
        outcomes = []
        for entry in ("000000", CODE, CODE):
            with storage.unit_of_work() as uow:
                read = uow.challenges.get("c1")
                assert read is not None
                result = verify(read, entry, user_id="u1", purpose=read.purpose, now=now,
                                rules=RULES)  # fmt: skip
                if result.challenge != read:
                    uow.challenges.save(result.challenge, expected_version=read.version)
            outcomes.append(result.outcome)
        assert outcomes == [
            VerifyOutcome.WRONG_CODE,
            VerifyOutcome.VERIFIED,
            VerifyOutcome.ALREADY_VERIFIED,
        ]
        with storage.unit_of_work() as uow:
            done = uow.challenges.get("c1")
        assert done is not None
        assert (done.state, done.code_hash, done.wrong_attempts, done.version) == (
            ChallengeState.VERIFIED,
            None,
            1,
            2,
        )

    @pytest.mark.parametrize(
        ("changes", "after", "outcome"),
        [
            ({}, timedelta(minutes=10), VerifyOutcome.EXPIRED),  # VF-4: at exactly its expiry
            ({"state": ChallengeState.VOID}, timedelta(0), VerifyOutcome.VOID),
            ({"state": ChallengeState.VERIFIED}, timedelta(0), VerifyOutcome.ALREADY_VERIFIED),
            ({"code_hash": None}, timedelta(0), VerifyOutcome.NO_ACTIVE_CODE),  # VF-10
        ],
    )
    def test_expired_void_or_codeless_challenge_read_back_does_not_verify(
        self,
        storage: Storage,
        make_challenge: MakeChallenge,
        now: datetime,
        *,
        changes: dict[str, object],
        after: timedelta,
        outcome: VerifyOutcome,
    ) -> None:
        """VF-4, VF-7, VF-10: the store keeps every field the rule reads, to the microsecond."""
        stored = make_challenge(**changes)
        with storage.unit_of_work() as uow:
            uow.challenges.add(stored)
        with storage.unit_of_work() as uow:
            read = uow.challenges.get("c1")
        assert read == stored
        result = verify(read, CODE, user_id="u1", purpose=read.purpose, now=now + after,
                        rules=RULES)  # fmt: skip
        assert (result.outcome, result.challenge) == (outcome, stored)
        earlier = verify(read, CODE, user_id="u1", purpose=read.purpose,
                         now=now + after - timedelta(microseconds=1), rules=RULES)  # fmt: skip
        assert (earlier.outcome is VerifyOutcome.VERIFIED) == (not changes)

    def test_wrong_codes_void_the_challenge_at_the_limit(
        self, storage: Storage, make_challenge: MakeChallenge, now: datetime
    ) -> None:
        """VF-7: wrong entries are counted, each in its own unit; at the limit no code works."""
        with storage.unit_of_work() as uow:
            uow.challenges.add(make_challenge())
        seen = []
        for _ in range(RULES.max_wrong_codes):
            with storage.unit_of_work() as uow:
                read = uow.challenges.get("c1")
                assert read is not None
                result = verify(read, "000000", user_id="u1", purpose=read.purpose, now=now,
                                rules=RULES)  # fmt: skip
                uow.challenges.save(result.challenge, expected_version=read.version)
            seen.append((result.challenge.wrong_attempts, result.challenge.state))
        assert seen == [(n, ChallengeState.ACTIVE) for n in range(1, RULES.max_wrong_codes)] + [
            (RULES.max_wrong_codes, ChallengeState.VOID)
        ]
        with storage.unit_of_work() as uow:
            void = uow.challenges.get("c1")
        assert void is not None
        assert void.code_hash is None
        right = verify(void, CODE, user_id="u1", purpose=void.purpose, now=now, rules=RULES)
        assert (right.outcome, right.challenge) == (VerifyOutcome.VOID, void)

    # --- code sends --------------------------------------------------------------------------

    def test_send_ledger_is_added_once_then_saved(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """VF-8: a user's ledger of send times comes back as stored, in UTC, oldest first."""
        eastern = timezone(timedelta(hours=-5))
        ledger = SendLedger(
            user_id=user.id,
            sends=(now.astimezone(eastern), now + timedelta(minutes=1)),
        )
        with storage.unit_of_work() as uow:
            assert uow.code_sends.get(user.id) is None
            uow.code_sends.add(ledger)
            with pytest.raises(AlreadyExists) as again:
                uow.code_sends.add(ledger)
            with pytest.raises(NotFound) as orphan:
                uow.code_sends.add(attrs.evolve(ledger, user_id="u404"))
        assert again.value.code == "send_ledger.exists"
        assert orphan.value.code == "storage.reference_missing"
        with storage.unit_of_work() as uow:
            back = uow.code_sends.get(user.id)
            assert back == ledger
            assert back is not None
            assert [t.utcoffset() for t in back.sends] == [timedelta(0)] * 2
            longer = revised(back, sends=(*back.sends, now + timedelta(minutes=2)))
            uow.code_sends.save(longer, expected_version=back.version)
            assert uow.code_sends.get("u2") is None
        with storage.unit_of_work() as uow:
            assert uow.code_sends.get(user.id) == longer

    def test_sends_go_ahead_only_below_the_limit(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """VF-8: at most ``send_limit`` sends per window; one exactly at its start has left."""

        def send(at: datetime) -> bool:
            try:
                return _send_code(storage, user.id, at)
            except RateLimited:
                return False

        allowed = [send(now + timedelta(minutes=minute)) for minute in range(7)]
        later = now + RULES.send_window  # the first send, at ``now``, has just left the window
        assert _send_code(storage, user.id, later)
        assert allowed == [True] * 5 + [False] * 2
        with storage.unit_of_work() as uow:
            ledger = uow.code_sends.get(user.id)
        assert ledger is not None
        assert ledger.sends == (*(now + timedelta(minutes=m) for m in range(1, 5)), later)

    def test_naive_times_are_refused(self, storage: Storage, user: User, now: datetime) -> None:
        """ST-1: a datetime without a zone has no defined instant; no store accepts one."""
        naive = now.replace(tzinfo=None)
        with storage.unit_of_work() as uow:
            with pytest.raises(InvalidInput) as refused:
                uow.code_sends.add(SendLedger(user_id=user.id, sends=(now, naive)))
            with pytest.raises(InvalidInput):
                uow.practices.add(Practice(id="p7", name="N", created_at=naive))
            with pytest.raises(InvalidInput):
                uow.sign_in_failures.start(user.id, now=naive, abandoned_before=now)
            with pytest.raises(InvalidInput):
                uow.sign_in_failures.start(user.id, now=now, abandoned_before=naive)
            with pytest.raises(InvalidInput):
                uow.sign_in_failures.finish(user.id, started=naive, outcome=WRONG)
            assert uow.code_sends.get(user.id) is None
            assert _start(uow.sign_in_failures, user.id, now) == 1
        assert refused.value.code == "time.naive"

    # --- link tokens -------------------------------------------------------------------------

    def test_a_unit_that_need_not_be_durable_commits_as_any_other(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """LK-4, DP-5: an attempt started in a unit that is not durable counts for every unit."""
        with storage.unit_of_work(durable=False) as uow:
            assert uow.sign_in_failures.start(user.id, now=now, abandoned_before=now) == 1
        with storage.unit_of_work() as uow:
            assert uow.sign_in_failures.start(user.id, now=now, abandoned_before=now) == 2
            finished = uow.sign_in_failures.finish(
                user.id, started=now, outcome=AttemptOutcome.WRONG
            )
        assert finished == 1
        with storage.unit_of_work(durable=False) as uow:
            assert uow.sign_in_failures.count(user.id) == 1

    def test_link_token_may_be_kept_under_a_key_that_names_no_user(
        self, storage: Storage, make_token: MakeToken, now: datetime
    ) -> None:
        """IN-4: "Forgot password" keeps a link for an unknown email under the email's key."""
        key = "email:" + "cd" * 32
        first = make_token(user_id=key, purpose=TokenPurpose.PASSWORD_RESET)
        later = make_token(
            user_id=key,
            purpose=TokenPurpose.PASSWORD_RESET,
            token_hash=b"k" * 32,
            created_at=now + timedelta(minutes=1),
        )
        with storage.unit_of_work() as uow:
            uow.link_tokens.add(first)
            uow.link_tokens.add(later)
            uow.link_tokens.save(revised(first, superseded=True), expected_version=first.version)
        with storage.unit_of_work() as uow:
            kept = uow.link_tokens.list_for_user(key, TokenPurpose.PASSWORD_RESET)
            assert kept == [revised(first, superseded=True), later]
            assert uow.users.get(key) is None

    def test_link_token_is_used_once(
        self, storage: Storage, make_token: MakeToken, now: datetime
    ) -> None:
        """RG-1, RS-5: completing a link's flow uses it up; a second use is refused."""
        token = make_token()
        with storage.unit_of_work() as uow:
            uow.link_tokens.add(token)
            with pytest.raises(AlreadyExists) as same_hash:
                uow.link_tokens.add(attrs.evolve(token, id="another-flow"))
            with pytest.raises(AlreadyExists) as same_id:
                uow.link_tokens.add(attrs.evolve(token, token_hash=b"u" * 32))
            assert uow.link_tokens.get(token.token_hash) == token
        assert (same_hash.value.code, same_id.value.code) == ("link_token.exists",) * 2
        with storage.unit_of_work() as uow:
            read = uow.link_tokens.get(token.token_hash)
            used = use_token(TOKEN, read, purpose=TokenPurpose.INVITATION, now=now)
            uow.link_tokens.save(used, expected_version=token.version)
        assert used == revised(token, used_at=now)
        with storage.unit_of_work() as uow:
            again = uow.link_tokens.get(token.token_hash)
            assert again == used
            with pytest.raises(InvalidToken):
                use_token(TOKEN, again, purpose=TokenPurpose.INVITATION, now=now)
            with pytest.raises(Conflict):
                uow.link_tokens.save(used, expected_version=token.version)
            assert uow.link_tokens.get(b"u" * 32) is None

    @pytest.mark.parametrize(
        ("changes", "purpose", "after"),
        [
            ({}, TokenPurpose.PASSWORD_RESET, timedelta(0)),
            ({}, TokenPurpose.INVITATION, timedelta(days=14)),
            ({"superseded": True}, TokenPurpose.INVITATION, timedelta(0)),
            ({"used_at": NOW - timedelta(days=1)}, TokenPurpose.INVITATION, timedelta(0)),
        ],
    )
    def test_wrong_purpose_expired_superseded_or_used_token_read_back_is_refused(
        self,
        storage: Storage,
        make_token: MakeToken,
        now: datetime,
        *,
        changes: dict[str, object],
        purpose: TokenPurpose,
        after: timedelta,
    ) -> None:
        """RG-1, RG-6: the store keeps every field that makes a link refused, to the microsecond."""
        token = make_token(**changes)
        with storage.unit_of_work() as uow:
            uow.link_tokens.add(token)
        with storage.unit_of_work() as uow:
            read = uow.link_tokens.get(token.token_hash)
        assert read == token
        with pytest.raises(InvalidToken):
            use_token(TOKEN, read, purpose=purpose, now=now + after)
        if not changes and purpose is TokenPurpose.INVITATION:
            earlier = now + after - timedelta(microseconds=1)
            assert use_token(TOKEN, read, purpose=purpose, now=earlier).used_at == earlier

    def test_reinvite_supersedes_only_live_tokens_of_that_purpose(
        self, storage: Storage, make_token: MakeToken, other_user: User, now: datetime
    ) -> None:
        """RG-4, RS-3: every earlier link of the user for the purpose stops working."""
        tokens = [
            make_token(token_hash=b"a" * 32, created_at=now + timedelta(seconds=2)),
            make_token(token_hash=b"b" * 32, created_at=now + timedelta(seconds=1)),
            make_token(token_hash=b"c" * 32, used_at=now, created_at=now + timedelta(seconds=3)),
            make_token(token_hash=b"d" * 32, purpose=TokenPurpose.PASSWORD_RESET),
            make_token(token_hash=b"e" * 32, user_id=other_user.id),
        ]
        with storage.unit_of_work() as uow:
            for token in tokens:
                uow.link_tokens.add(token)
        for expected in (2, 0):
            with storage.unit_of_work() as uow:
                listed = uow.link_tokens.list_for_user("u1", TokenPurpose.INVITATION)
                versions = {t.token_hash: t.version for t in listed}
                changed = supersede(listed, user_id="u1", purpose=TokenPurpose.INVITATION)
                for token in changed:
                    uow.link_tokens.save(token, expected_version=versions[token.token_hash])
            assert len(changed) == expected
        assert [t.token_hash for t in listed] == [b"b" * 32, b"a" * 32, b"c" * 32]
        with storage.unit_of_work() as uow:
            flags = [uow.link_tokens.get(t.token_hash) for t in tokens]
            assert list(uow.link_tokens.list_for_user("u2", TokenPurpose.PASSWORD_RESET)) == []
        assert [f.superseded if f else None for f in flags] == [True, True, False, False, False]

    # --- sessions ----------------------------------------------------------------------------

    def test_sessions_are_kept_saved_and_revoked(
        self, storage: Storage, user: User, other_user: User, now: datetime
    ) -> None:
        """LK-6: a password change revokes every other session; a reset revokes all."""
        sessions = [
            Session(token_hash=bytes([n]) * 32, user_id=user.id,
                    created_at=now + timedelta(seconds=3 - n), last_active_at=now)
            for n in range(3)
        ]  # fmt: skip
        theirs = Session(token_hash=b"z" * 32, user_id=other_user.id, created_at=now,
                         last_active_at=now)  # fmt: skip
        with storage.unit_of_work() as uow:
            for session in [*sessions, theirs]:
                uow.sessions.add(session)
            with pytest.raises(AlreadyExists) as duplicate:
                uow.sessions.add(theirs)
            touched = revised(sessions[0], last_active_at=now + timedelta(minutes=5))
            uow.sessions.save(touched, expected_version=sessions[0].version)
        assert duplicate.value.code == "session.exists"
        kept = sessions[1].token_hash
        for expected in (2, 0):
            with storage.unit_of_work() as uow:
                listed = uow.sessions.list_for_user(user.id)
                versions = {s.token_hash: s.version for s in listed}
                ended = revoke_all(listed, keep=kept)
                for session in ended:
                    uow.sessions.save(session, expected_version=versions[session.token_hash])
            assert len(ended) == expected
        assert [s.token_hash for s in listed] == [s.token_hash for s in reversed(sessions)]
        with storage.unit_of_work() as uow:
            assert uow.sessions.get(sessions[0].token_hash) == revised(touched, revoked=True)
            assert uow.sessions.get(kept) == sessions[1]
            assert uow.sessions.get(theirs.token_hash) == theirs
            assert list(uow.sessions.list_for_user(other_user.id)) == [theirs]
            assert uow.sessions.get(b"y" * 32) is None

    # --- audit -------------------------------------------------------------------------------

    def test_audit_log_appends_and_filters_in_time_order(
        self, storage: Storage, now: datetime
    ) -> None:
        """AU-1: events are kept with who, whom, which practice, what, when and outcome."""
        events = [
            AuditEvent(id="e2", at=now + timedelta(seconds=2), action="sign_in", outcome="ok",
                       actor_id="u1", subject_id="u1", practice_id="p1"),
            AuditEvent(id="e1", at=now, action="code.sent", outcome="ok", subject_id="u2",
                       practice_id="p1", detail=(("method", "sms"), ("to", "+1202***0143"))),
            AuditEvent(id="e3", at=now + timedelta(seconds=3), action="sign_in",
                       outcome="unknown_user"),
        ]  # fmt: skip
        with storage.unit_of_work() as uow:
            for event in events:
                uow.audit.append(event)
            with pytest.raises(AlreadyExists) as duplicate:
                uow.audit.append(events[0])
        assert duplicate.value.code == "audit.exists"
        with storage.unit_of_work() as uow:
            assert list(uow.audit.events()) == [events[1], events[0], events[2]]
            assert list(uow.audit.events(subject_id="u1")) == [events[0]]
            assert list(uow.audit.events(practice_id="p1")) == [events[1], events[0]]
            assert list(uow.audit.events(since=now + timedelta(seconds=2))) == [
                events[0],
                events[2],
            ]

    def test_audit_log_has_no_way_to_change_or_remove(self, storage: Storage) -> None:
        """AU-1: the audit port and every adapter's audit log offer only append and read."""
        with storage.unit_of_work() as uow:
            public = {name for name in dir(uow.audit) if not name.startswith("_")}
        assert public == {"append", "events", "feed"}

    # --- terms, subscriptions, entitlements, cards -------------------------------------------

    def test_terms_acceptances_are_recorded_once_per_version(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """RG-3: acceptance is kept with the terms' version and time."""
        first = TermsAcceptance(user_id=user.id, version="2024-01", accepted_at=now)
        second = TermsAcceptance(user_id=user.id, version="2026-01", accepted_at=now + timedelta(1))
        with storage.unit_of_work() as uow:
            uow.terms.add(second)
            uow.terms.add(first)
            with pytest.raises(AlreadyExists) as again:
                uow.terms.add(first)
            with pytest.raises(NotFound):
                uow.terms.add(attrs.evolve(first, user_id="u404"))
        assert again.value.code == "terms.already_accepted"
        with storage.unit_of_work() as uow:
            assert list(uow.terms.list_for_user(user.id)) == [first, second]

    def test_practice_subscriptions(
        self, storage: Storage, practice: Practice, now: datetime
    ) -> None:
        """SB-1: a practice subscribes to an open set of products."""
        mail = PracticeSubscription(
            practice_id=practice.id, product="securemail", subscribed_at=now
        )
        tv = PracticeSubscription(practice_id=practice.id, product="ada_tv", subscribed_at=now)
        with storage.unit_of_work() as uow:
            assert uow.subscriptions.subscribe(mail)
            assert uow.subscriptions.subscribe(tv)
            later = attrs.evolve(tv, subscribed_at=now + timedelta(1))
            assert not uow.subscriptions.subscribe(later)
            with pytest.raises(NotFound):
                uow.subscriptions.subscribe(attrs.evolve(tv, practice_id="p404"))
        with storage.unit_of_work() as uow:
            assert list(uow.subscriptions.list_for_practice(practice.id)) == [tv, mail]
            assert list(uow.subscriptions.list_for_practice("p404")) == []

    def test_entitlements_are_granted_and_revoked_per_user(
        self, storage: Storage, user: User, other_user: User, now: datetime
    ) -> None:
        """SB-1, SB-2: a user's dashboard lists only their own products."""
        mail = Entitlement(user_id=user.id, product="securemail", granted_at=now)
        launch = Entitlement(user_id=user.id, product="launch_services", granted_at=now)
        with storage.unit_of_work() as uow:
            assert uow.entitlements.grant(mail)
            assert uow.entitlements.grant(launch)
            assert not uow.entitlements.grant(mail)
            with pytest.raises(NotFound):
                uow.entitlements.grant(attrs.evolve(mail, user_id="u404"))
        with storage.unit_of_work() as uow:
            assert list(uow.entitlements.list_for_user(user.id)) == [launch, mail]
            assert list(uow.entitlements.list_for_user(other_user.id)) == []
            assert uow.entitlements.revoke(user.id, "securemail")
            assert not uow.entitlements.revoke(user.id, "securemail")
            assert list(uow.entitlements.list_for_user(user.id)) == [launch]

    def test_card_on_file_is_replaced(self, storage: Storage, user: User, now: datetime) -> None:
        """UM-6: the processor's token and last four digits, and nothing else, are kept."""
        card = CardOnFile(
            user_id=user.id, processor_token="tok_abc", last_four="4242", added_at=now
        )
        newer = attrs.evolve(card, processor_token="tok_def", last_four="0005")
        with storage.unit_of_work() as uow:
            assert uow.cards.get(user.id) is None
            uow.cards.put(card)
            uow.cards.put(newer)
            with pytest.raises(NotFound):
                uow.cards.put(attrs.evolve(card, user_id="u404"))
        with storage.unit_of_work() as uow:
            assert uow.cards.get(user.id) == newer

    # --- SecureMail billing ------------------------------------------------------------------

    def test_securemail_account_is_paid_for_once_at_a_time(
        self, storage: Storage, user: User, other_user: User, now: datetime
    ) -> None:
        """UM-6: a purchase for an account already paid for is refused; after it ends, allowed."""
        purchase = SecureMailPurchase(id="sm1", practice_id="p1", payer_id=user.id,
                                      account_id=other_user.id, monthly_cents=1000,
                                      purchased_at=now)  # fmt: skip
        own = attrs.evolve(purchase, id="sm2", account_id=user.id)
        again = attrs.evolve(purchase, id="sm3", payer_id=other_user.id)
        with storage.unit_of_work() as uow:
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
        ended = revised(purchase, ended_at=now + timedelta(days=30))
        with storage.unit_of_work() as uow:
            assert uow.securemail.active_purchase(other_user.id) == purchase
            assert list(uow.securemail.purchases_paid_by(user.id)) == [purchase, own]
            assert list(uow.securemail.active_purchases()) == [purchase, own]
            uow.securemail.save_purchase(ended, expected_version=purchase.version)
            assert uow.securemail.active_purchase(other_user.id) is None
            uow.securemail.add_purchase(again)
            with pytest.raises(AlreadyExists) as reopened:
                uow.securemail.save_purchase(revised(ended, ended_at=None),
                                             expected_version=ended.version)  # fmt: skip
        assert reopened.value.code == "securemail.already_paid"
        with storage.unit_of_work() as uow:
            assert uow.securemail.active_purchase(other_user.id) == again
            assert list(uow.securemail.purchases_paid_by(other_user.id)) == [again]
            assert list(uow.securemail.active_purchases()) == [own, again]
            assert uow.securemail.purchases_paid_by(user.id)[0] == ended

    def test_payments_and_invoices_are_listed_per_account(
        self, storage: Storage, user: User, other_user: User, now: datetime
    ) -> None:
        """UM-7: payments and invoices in integer cents, listed for the account they are for."""
        purchase = SecureMailPurchase(id="sm1", practice_id="p1", payer_id=user.id,
                                      account_id=other_user.id, monthly_cents=1000,
                                      purchased_at=now)  # fmt: skip
        payments = [
            SecureMailPayment(id=f"pay{n}", purchase_id="sm1", payer_id=user.id,
                              account_id=other_user.id, amount_cents=1000,
                              paid_at=now + timedelta(days=30 * n), processor_reference=f"ch_{n}")
            for n in (1, 0)
        ]  # fmt: skip
        invoice = Invoice(id="inv0", payment_id="pay0", payer_id=user.id,
                          account_id=other_user.id, amount_cents=1000, period_start=now,
                          period_end=now + timedelta(days=30), issued_at=now)  # fmt: skip
        with storage.unit_of_work() as uow:
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
        assert (paid_twice.value.code, invoiced_twice.value.code) == (
            "payment.exists",
            "invoice.exists",
        )
        with storage.unit_of_work() as uow:
            assert list(uow.securemail.payments_for(other_user.id)) == payments[::-1]
            assert list(uow.securemail.invoices_for(other_user.id)) == [invoice]
            assert list(uow.securemail.payments_for(user.id)) == []
            assert list(uow.securemail.invoices_for(user.id)) == []

    # --- units of work -----------------------------------------------------------------------

    def test_unit_commits_everything_on_success(self, storage: Storage, now: datetime) -> None:
        """ST-2: a unit that ends normally keeps every write."""
        with storage.unit_of_work() as uow:
            _write_registration(uow, now)
        practice, user, credential, failures, events = _registration_state(storage)
        assert practice is not None
        assert user is not None
        assert credential is not None
        assert failures == 1
        assert len(events) == 1  # type: ignore[arg-type]

    def test_unit_rolls_everything_back_on_an_exception(
        self, storage: Storage, now: datetime
    ) -> None:
        """ST-2: a unit that raises leaves no trace, and the caller's exception comes through."""

        class Boom(Exception):
            """An error of the caller's own, raised inside a unit of work."""

        with pytest.raises(Boom), storage.unit_of_work() as uow:  # noqa: PT012 - raised inside
            _write_registration(uow, now)
            assert uow.users.get("u5") is not None
            raise Boom
        assert _registration_state(storage) == (None, None, None, 0, ())

    def test_a_conflict_rolls_the_unit_back(self, storage: Storage, user: User) -> None:
        """ST-2, RS-5: a unit whose save lost the race keeps none of its other writes."""
        changed = revised(user, locked=True)
        with storage.unit_of_work() as uow:
            uow.users.save(changed, expected_version=user.version)
        with pytest.raises(Conflict), storage.unit_of_work() as uow:  # noqa: PT012 - in the unit
            _start(uow.sign_in_failures, user.id, NOW)
            uow.sign_in_failures.finish(user.id, started=NOW, outcome=WRONG)
            uow.users.save(revised(user, first_name="Ada"), expected_version=user.version)
        with storage.unit_of_work() as uow:
            assert uow.sign_in_failures.count(user.id) == 0
            assert _start(uow.sign_in_failures, user.id, NOW) == 1
            assert uow.users.get(user.id) == changed

    def test_repositories_work_only_inside_an_active_unit(
        self, storage: Storage, user: User
    ) -> None:
        """ST-2: nothing is read or written outside a unit, where it could not be rolled back."""
        uow = storage.unit_of_work()
        with pytest.raises(StorageError) as before:
            uow.users.get(user.id)
        with uow:
            assert uow.users.get(user.id) == user
        with pytest.raises(StorageError) as after:
            _start(uow.sign_in_failures, user.id, NOW)
        with pytest.raises(StorageError) as reused, uow:
            pass
        assert {before.value.code, after.value.code} == {"storage.no_unit"}
        assert reused.value.code == "storage.unit_reused"
        with storage.unit_of_work() as check:
            assert _start(check.sign_in_failures, user.id, NOW) == 1

    def test_units_do_not_nest_in_one_thread(self, storage: Storage, user: User) -> None:
        """ST-2: a nested unit would commit apart from its outer one, so it is refused."""
        with storage.unit_of_work() as outer:
            outer.sign_in_failures.finish(user.id, started=NOW, outcome=WRONG)
            with pytest.raises(StorageError) as nested, storage.unit_of_work():
                pass
            assert outer.sign_in_failures.count(user.id) == 1
        assert nested.value.code == "storage.nested_unit"

    def test_a_closed_store_refuses_units(self, storage: Storage) -> None:
        """ST-2: after ``close`` a store gives no unit that could half-work."""
        storage.close()
        with pytest.raises(StorageError) as closed, storage.unit_of_work():
            pass
        assert closed.value.code == "storage.closed"

    # --- concurrency -------------------------------------------------------------------------

    @pytest.mark.parametrize("whose", ["user", "email"])
    def test_lk_4_simultaneous_starts_return_distinct_numbers(
        self, storage: Storage, user: User, now: datetime, whose: str
    ) -> None:
        """LK-4, IN-4: 50 attempts started at once get 1..50; 50 wrong finishes count exactly 50.

        On a user's counter, and on an email's key (IN-4) whose row the first start makes.
        """
        key = user.id if whose == "user" else "email:" + "5a" * 32

        def start() -> int:
            with storage.unit_of_work() as uow:
                return _start(uow.sign_in_failures, key, now)

        def finish() -> int:
            with storage.unit_of_work() as uow:
                return uow.sign_in_failures.finish(key, started=now, outcome=WRONG)

        everyone = list(range(1, RACERS + 1))
        started = _run_together(RACERS, start)
        assert sorted(n for n in started if isinstance(n, int)) == everyone
        with storage.unit_of_work() as uow:
            assert uow.sign_in_failures.count(key) == 0
        finished = _run_together(RACERS, finish)
        assert sorted(n for n in finished if isinstance(n, int)) == everyone
        with storage.unit_of_work() as uow:
            assert uow.sign_in_failures.count(key) == RACERS
            assert _start(uow.sign_in_failures, key, now) == RACERS + 1  # none left in flight

    def test_lk_4_simultaneous_wrong_attempts_all_count(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """LK-4: 8 threads x 50 wrong attempts (start, then finish) get 1..400 and count 400."""

        def fifty() -> list[int]:
            return [_attempt(storage, user.id, now, WRONG) for _ in range(50)]

        results = _run_together(8, fifty)
        numbers = sorted(n for seen in results for n in seen)  # type: ignore[attr-defined]
        assert numbers == list(range(1, 401))
        with storage.unit_of_work() as uow:
            assert uow.sign_in_failures.count(user.id) == 400
            assert _start(uow.sign_in_failures, user.id, now) == 401

    def test_simultaneous_uses_of_one_link_read_at_once_exactly_one_is_saved(
        self, storage: Storage, make_token: MakeToken, now: datetime
    ) -> None:
        """RS-5: 50 threads read one link, then each uses it and saves: one wins, 49 conflict."""
        token = make_token()
        with storage.unit_of_work() as uow:
            uow.link_tokens.add(token)
        everyone_read = threading.Barrier(RACERS, timeout=60)

        def use() -> LinkToken:
            with storage.unit_of_work() as uow:
                read = uow.link_tokens.get(token.token_hash)
            everyone_read.wait()
            used = use_token(TOKEN, read, purpose=TokenPurpose.INVITATION, now=now)
            with storage.unit_of_work() as uow:
                uow.link_tokens.save(used, expected_version=token.version)
            return used

        results = _run_together(RACERS, use)
        assert results.count(revised(token, used_at=now)) == 1
        assert _codes(results) == ["storage.conflict"] * (RACERS - 1)
        with storage.unit_of_work() as uow:
            assert uow.link_tokens.get(token.token_hash) == revised(token, used_at=now)

    def test_simultaneous_uses_of_one_link_exactly_one_succeeds(
        self, storage: Storage, make_token: MakeToken, now: datetime
    ) -> None:
        """RS-5: 50 threads each read, use and save one link in a unit: exactly one succeeds."""
        token = make_token()
        with storage.unit_of_work() as uow:
            uow.link_tokens.add(token)

        def use() -> LinkToken:
            with storage.unit_of_work() as uow:
                read = uow.link_tokens.get(token.token_hash)
                used = use_token(TOKEN, read, purpose=TokenPurpose.INVITATION, now=now)
                assert read is not None
                uow.link_tokens.save(used, expected_version=read.version)
            return used

        results = _run_together(RACERS, use)
        assert sum(isinstance(r, LinkToken) for r in results) == 1
        refused = [r for r in results if not isinstance(r, LinkToken)]
        assert all(isinstance(r, (InvalidToken, Conflict)) for r in refused)
        assert len(refused) == RACERS - 1

    def test_simultaneous_uses_of_one_code_exactly_one_is_saved(
        self, storage: Storage, make_challenge: MakeChallenge, now: datetime
    ) -> None:
        """RS-5, VF-7: 50 threads enter the right code read at once; exactly one is accepted."""
        challenge = make_challenge()
        with storage.unit_of_work() as uow:
            uow.challenges.add(challenge)
        everyone_read = threading.Barrier(RACERS, timeout=60)

        def enter() -> VerifyOutcome:
            with storage.unit_of_work() as uow:
                read = uow.challenges.get(challenge.id)
            everyone_read.wait()
            assert read is not None
            result = verify(read, CODE, user_id="u1", purpose=read.purpose, now=now, rules=RULES)
            with storage.unit_of_work() as uow:
                uow.challenges.save(result.challenge, expected_version=read.version)
            return result.outcome

        results = _run_together(RACERS, enter)
        assert results.count(VerifyOutcome.VERIFIED) == 1
        assert _codes(results) == ["storage.conflict"] * (RACERS - 1)
        with storage.unit_of_work() as uow:
            done = uow.challenges.get(challenge.id)
        assert done is not None
        assert (done.state, done.version) == (ChallengeState.VERIFIED, challenge.version + 1)

    def test_simultaneous_sends_respect_the_limit(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """VF-8: 20 simultaneous sends under a limit of 5: exactly 5 go ahead, 15 are refused."""

        def send() -> bool:
            # A send that lost the race to save reads the ledger again and asks the core again.
            return any(_send_code(storage, user.id, now) for _ in range(20))

        results = _run_together(20, send)
        assert results.count(True) == RULES.send_limit
        assert _codes(results) == ["verification.rate_limited"] * (20 - RULES.send_limit)
        with storage.unit_of_work() as uow:
            ledger = uow.code_sends.get(user.id)
        assert ledger is not None
        assert ledger.sends == (now,) * RULES.send_limit

    # --- housekeeping (OP-2) -----------------------------------------------------------------

    @pytest.mark.usefixtures("user")
    @pytest.mark.parametrize("kind", sorted(_PRUNED))
    def test_op_2_pages_go_through_every_record_in_order_of_key(
        self, storage: Storage, now: datetime, kind: str
    ) -> None:
        """OP-2: pages of 2 give each record once, in key order, whatever order they came in."""
        reach = _PRUNED[kind]
        _users(storage, 5, now)
        records = [reach.make(n, now) for n in (3, 0, 4, 1, 2)]
        with storage.unit_of_work() as uow:
            for record in records:
                reach.add(uow, record)
        seen: list[Any] = []
        after = None
        with storage.unit_of_work() as uow:
            assert list(reach.repository(uow).page(limit=0)) == []
            while True:
                page = list(reach.repository(uow).page(after=after, limit=2))
                seen.extend(page)
                if len(page) < 2:
                    break
                after = reach.key(page[-1])
        assert seen == sorted(records, key=reach.key)
        assert [reach.key(r) for r in seen] == sorted(reach.key(r) for r in records)

    @pytest.mark.usefixtures("user")
    @pytest.mark.parametrize("kind", sorted(_PRUNED))
    def test_op_2_delete_removes_only_records_still_at_the_version_given(
        self, storage: Storage, now: datetime, kind: str
    ) -> None:
        """OP-2: a record saved since it was read is kept; a missing one counts nothing."""
        reach = _PRUNED[kind]
        _users(storage, 3, now)
        first, second, third = (reach.make(n, now) for n in range(3))
        with storage.unit_of_work() as uow:
            for record in (first, second):
                reach.add(uow, record)
        changed = revised(second, **reach.change)
        with storage.unit_of_work() as uow:
            repository = reach.repository(uow)
            _save_any(uow, changed, second.version)
            assert repository.delete([]) == 0
            assert repository.delete([first, second, third]) == 1
        with storage.unit_of_work() as uow:
            assert reach.get(uow, first) is None
            assert reach.get(uow, second) == changed
            assert reach.repository(uow).delete([first]) == 0
            assert list(reach.repository(uow).page(limit=10)) == [changed]

    def test_op_2_a_deletion_rolled_back_with_its_unit_leaves_the_record(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """OP-2, ST-2: housekeeping's removals commit with their unit or not at all."""
        session = _PRUNED["session"].make(1, now)
        with storage.unit_of_work() as uow:
            uow.sessions.add(session)
        with pytest.raises(RuntimeError), storage.unit_of_work() as uow:  # noqa: PT012
            assert uow.sessions.delete([session]) == 1
            raise RuntimeError
        with storage.unit_of_work() as uow:
            assert uow.sessions.get(session.token_hash) == session
        assert user.id == session.user_id

    # --- client failures (CX-3) --------------------------------------------------------------

    def test_cx_3_client_failures_are_counted_per_key_since_a_time(
        self, storage: Storage, now: datetime
    ) -> None:
        """CX-3: each failure counts once, under its own key, from the time asked."""
        with storage.unit_of_work() as uow:
            assert uow.client_failures.count_since("client:a", now) == 0
            for minutes in (0, 10, 20, 20):
                uow.client_failures.record("client:a", now + timedelta(minutes=minutes))
            uow.client_failures.record("client:b", now)
        with storage.unit_of_work() as uow:
            failures = uow.client_failures
            assert failures.count_since("client:a", now) == 4
            assert failures.count_since("client:a", now + timedelta(minutes=10)) == 3
            assert failures.count_since("client:a", now + timedelta(minutes=21)) == 0
            assert failures.count_since("client:b", now) == 1
            assert failures.count_since("client:c", now - timedelta(days=1)) == 0
            with pytest.raises(InvalidInput) as naive:
                failures.record("client:a", now.replace(tzinfo=None))
        assert naive.value.code == "time.naive"

    def test_op_2_old_client_failures_go_in_pages_and_recent_ones_stay(
        self, storage: Storage, now: datetime
    ) -> None:
        """OP-2, CX-3: failures before the cut go, at most ``limit`` at a time; later ones stay."""
        with storage.unit_of_work() as uow:
            for n in range(5):
                uow.client_failures.record(f"client:{n % 2}", now - timedelta(hours=2, minutes=n))
            uow.client_failures.record("client:0", now)
        with storage.unit_of_work() as uow:
            assert uow.client_failures.delete_before(now - timedelta(hours=1), limit=3) == 3
        with storage.unit_of_work() as uow:
            assert uow.client_failures.delete_before(now - timedelta(hours=1), limit=3) == 2
            assert uow.client_failures.delete_before(now - timedelta(hours=1), limit=3) == 0
        with storage.unit_of_work() as uow:
            assert uow.client_failures.count_since("client:0", now - timedelta(days=1)) == 1
            assert uow.client_failures.count_since("client:1", now - timedelta(days=1)) == 0

    def test_cx_3_simultaneous_failures_of_one_client_all_count(
        self, storage: Storage, now: datetime
    ) -> None:
        """CX-3: 50 threads record a failure of one client at the same instant; 50 are counted."""

        def record() -> None:
            with storage.unit_of_work(durable=False) as uow:
                uow.client_failures.record("client:x", now)

        results = _run_together(RACERS, record)
        assert results == [None] * RACERS
        with storage.unit_of_work() as uow:
            assert uow.client_failures.count_since("client:x", now) == RACERS

    # --- audit pages (OP-3) ------------------------------------------------------------------

    def test_op_3_audit_events_come_by_time_range_and_in_pages(
        self, storage: Storage, now: datetime
    ) -> None:
        """OP-3: ``since`` inclusive, ``until`` exclusive; pages miss and repeat nothing."""
        events = [
            _event(n, now + timedelta(minutes=n // 2), practice_id="p1" if n % 3 else "p2")
            for n in (5, 4, 3, 2, 1, 0)
        ]
        with storage.unit_of_work() as uow:
            for event in events:
                uow.audit.append(event)
        in_order = sorted(events, key=lambda e: (e.at, -int(e.id[1:])))
        with storage.unit_of_work() as uow:
            log = uow.audit
            assert list(log.events()) == in_order
            assert list(log.events(since=now + timedelta(minutes=1),
                                   until=now + timedelta(minutes=2))) == in_order[2:4]  # fmt: skip
            assert list(log.events(until=now)) == []
            pages: list[AuditEvent] = []
            after = None
            while True:
                page = list(log.events(practice_id="p1", after=after, limit=2))
                pages.extend(page)
                if len(page) < 2:
                    break
                after = page[-1].id
            assert pages == [e for e in in_order if e.practice_id == "p1"]
            assert list(log.events(after="no-such-event")) == []
            assert list(log.events(limit=0)) == []
            with pytest.raises(InvalidInput) as naive:
                log.events(until=now.replace(tzinfo=None))
        assert naive.value.code == "time.naive"

    # --- audit feed and forwarding (CX-2) ----------------------------------------------------

    def test_cx_2_the_feed_gives_committed_events_in_order_from_any_position(
        self, storage: Storage, now: datetime
    ) -> None:
        """CX-2: each position resumes after its event; nothing comes twice, nothing is missed."""
        with storage.unit_of_work() as uow:
            assert list(uow.audit.feed(limit=10)) == []
        for unit in range(3):
            with storage.unit_of_work() as uow:
                for n in range(3):
                    # Times run backwards: the feed's order is the log's, not the clock's.
                    uow.audit.append(_event(unit * 3 + n, now - timedelta(minutes=unit * 3 + n)))
        with storage.unit_of_work() as uow:
            whole = list(uow.audit.feed(limit=100))
            assert [e.id for _, e in whole] == [f"e{n:04d}" for n in range(9)]
            assert len({position for position, _ in whole}) == 9
            for index, (position, _event_at) in enumerate(whole):
                assert list(uow.audit.feed(after=position, limit=100)) == whole[index + 1 :]
            assert list(uow.audit.feed(after=whole[1][0], limit=2)) == whole[2:4]
            assert list(uow.audit.feed(limit=0)) == []
            for bad in ("", "x", "1; DROP TABLE audit_events", "-1", "1:2:3"):
                with pytest.raises(InvalidInput) as refused:
                    uow.audit.feed(after=bad, limit=1)
                assert refused.value.code == "audit.bad_position"

    def test_cx_2_a_sink_position_moves_only_from_where_it_was_read(self, storage: Storage) -> None:
        """CX-2: advancing is compare-and-set; sinks stand apart; an outage is noted once."""
        with storage.unit_of_work() as uow:
            sinks = uow.audit_sinks
            assert sinks.position("siem") is None
            sinks.advance("siem", expected=None, position="p1")
            with pytest.raises(Conflict):
                sinks.advance("siem", expected=None, position="p2")
            with pytest.raises(Conflict):
                sinks.advance("siem", expected="p0", position="p2")
            sinks.advance("siem", expected="p1", position="p2")
            assert sinks.set_failing("siem", failing=False) is False
            assert sinks.set_failing("siem", failing=True) is True
            assert sinks.set_failing("siem", failing=True) is False
            assert sinks.set_failing("syslog", failing=True) is True
        with storage.unit_of_work() as uow:
            sinks = uow.audit_sinks
            assert (sinks.position("siem"), sinks.position("syslog")) == ("p2", None)
            sinks.advance("syslog", expected=None, position="p9")
            assert sinks.set_failing("siem", failing=False) is True
            assert sinks.set_failing("siem", failing=False) is False
            assert sinks.set_failing("syslog", failing=False) is True
            assert sinks.position("syslog") == "p9"

    def test_cx_2_of_simultaneous_outage_notes_exactly_one_changes_the_state(
        self, storage: Storage
    ) -> None:
        """CX-2: 50 forwarders that see one outage at once: exactly one audits it."""

        def note() -> bool:
            with storage.unit_of_work() as uow:
                return uow.audit_sinks.set_failing("siem", failing=True)

        results = _run_together(RACERS, note)
        assert results.count(True) == 1
        assert results.count(False) == RACERS - 1

    def test_cx_2_writers_and_a_forwarder_at_once_deliver_every_event_once_in_order(
        self, storage: Storage, now: datetime
    ) -> None:
        """CX-2: 8 writers append while a forwarder runs; every event arrives once, none lost.

        Each writer's events arrive in the order it committed them, and the
        positions never let a slower unit's event fall behind.
        """
        sink = _Collected()
        forwarder = AuditForwarder(storage, sink, name="siem", batch=7)
        writers, units = 8, 15
        done = threading.Event()

        def write(writer: int) -> None:
            for unit in range(units):
                with storage.unit_of_work() as uow:
                    for n in range(2):
                        uow.audit.append(AuditEvent(id=f"w{writer}-{unit}-{n}", at=now,
                                                    action="sign_in", outcome="ok"))  # fmt: skip

        def forward() -> None:
            while not done.is_set():
                forwarder.forward_pending()

        reader = threading.Thread(target=forward)
        reader.start()
        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        reader.join()
        forwarder.forward_pending()
        delivered = [event.id for event in sink.events]
        assert len(delivered) == writers * units * 2
        assert len(set(delivered)) == len(delivered)
        for writer in range(writers):
            mine = [i for i in delivered if i.startswith(f"w{writer}-")]
            assert mine == [f"w{writer}-{u}-{n}" for u in range(units) for n in range(2)]
        assert forwarder.forward_pending() == 0

    def test_cx_2_an_outage_is_audited_once_and_nothing_is_skipped(
        self, storage: Storage, now: datetime
    ) -> None:
        """CX-2: three failed runs make one ``forwarding_failed``; the next run delivers all."""
        with storage.unit_of_work() as uow:
            for n in range(3):
                uow.audit.append(_event(n, now))
        sink = _Collected()
        sink.failures = 3
        forwarder = AuditForwarder(storage, sink, name="siem", batch=2)
        assert [forwarder.forward_pending() for _ in range(3)] == [0, 0, 0]
        with storage.unit_of_work() as uow:
            failed = [e for e in uow.audit.events() if e.action.startswith("audit.forwarding")]
        assert [(e.action, dict(e.detail)) for e in failed] == [
            ("audit.forwarding_failed", {"sink": "siem", "error": "ConnectionRefusedError"})
        ]
        assert forwarder.forward_pending() == 5
        assert [e.id for e in sink.events[:3]] == ["e0000", "e0001", "e0002"]
        assert [e.action for e in sink.events[3:]] == [
            "audit.forwarding_failed",
            "audit.forwarding_resumed",
        ]
        assert "collector" not in str(sink.events[3])

    # --- injected failures (ST-2, LK-8) ------------------------------------------------------

    @pytest.mark.parametrize("k", range(1, _OPERATIONS + 1))
    def test_failure_at_any_operation_leaves_nothing(
        self, storage: Storage, now: datetime, k: int
    ) -> None:
        """ST-2: whichever operation of a multi-write unit fails, no partial state remains."""
        faulty = FaultyStorage(storage, fail_at=k)
        with pytest.raises(StorageError) as failed, faulty.unit_of_work() as uow:
            _write_registration(uow, now)
        assert failed.value.code == "storage.unavailable"
        assert f"operation {k} " in failed.value.message
        assert faulty.calls == k
        assert _registration_state(storage) == (None, None, None, 0, ())

    def test_without_a_failure_the_same_unit_keeps_everything(
        self, storage: Storage, now: datetime
    ) -> None:
        """ST-2: the unit of the test above, failing nowhere, commits all it wrote."""
        faulty = FaultyStorage(storage, fail_at=_OPERATIONS + 1)
        with faulty.unit_of_work() as uow:
            _write_registration(uow, now)
        assert faulty.calls == _OPERATIONS
        assert _registration_state(storage)[3] == 1

    def test_lk_8_outage_fails_closed_and_loses_no_count(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """LK-8: while storage is unreachable every attempt fails closed; no count is lost."""
        faulty = FaultyStorage(storage)
        assert [_attempt(faulty, user.id, now, WRONG) for _ in range(2)] == [1, 2]
        faulty.start_outage()
        for _ in range(3):
            with pytest.raises(StorageError), faulty.unit_of_work() as uow:
                _start(uow.sign_in_failures, user.id, now)
        faulty.end_outage()
        faulty.fail_at(2)
        with pytest.raises(StorageError), faulty.unit_of_work() as uow:
            _start(uow.sign_in_failures, user.id, now)
        faulty.fail_at(None)
        with faulty.unit_of_work() as uow:
            assert uow.sign_in_failures.count(user.id) == 2
            assert _start(uow.sign_in_failures, user.id, now) == 3
        faulty.close()
        with pytest.raises(StorageError), storage.unit_of_work():
            pass

    def test_dp_5_right_attempts_whose_finish_failed_lapse_without_counting(
        self, storage: Storage, user: User, now: datetime
    ) -> None:
        """DP-5, LK-8: six right passwords whose outcome storage failed to record count nothing.

        While in flight they still count toward the gate (LK-4); once abandoned
        they are gone, and the failures recorded before them are intact.
        """
        _attempt(storage, user.id, now, WRONG)
        faulty = FaultyStorage(storage)
        for attempt in range(6):
            with faulty.unit_of_work() as uow:
                assert _start(uow.sign_in_failures, user.id, now) == attempt + 2
            faulty.fail_at(2)  # begin, then the finish fails
            with pytest.raises(StorageError), faulty.unit_of_work() as uow:
                uow.sign_in_failures.finish(user.id, started=now, outcome=RIGHT)
        with faulty.unit_of_work() as uow:
            assert uow.sign_in_failures.count(user.id) == 1
            assert _start(uow.sign_in_failures, user.id, now + 2 * IN_FLIGHT) == 2

    # --- the portal secret (DP-2) ------------------------------------------------------------

    def test_dp_2_persistent_is_a_bool(self, storage: Storage) -> None:
        """DP-2: a store says whether it outlives the process: then a portal needs a secret."""
        assert isinstance(storage.persistent, bool)
        assert FaultyStorage(storage).persistent is storage.persistent

    def test_dp_2_the_first_secret_is_remembered_and_another_refused(
        self, storage: Storage
    ) -> None:
        """DP-2: a store used with one secret refuses another: a clear error, not wrong codes."""
        storage.remember_secret(SECRET_A)
        storage.remember_secret(SECRET_A)
        with pytest.raises(SettingsError) as refused:
            storage.remember_secret(SECRET_B)
        error = refused.value
        assert (error.code, error.field) == ("settings.secret_mismatch", "secret")
        assert "another portal secret" in error.message
        assert "previous_secret" in error.message
        assert SECRET_A not in str(error)
        assert SECRET_B not in str(error)
        storage.remember_secret(SECRET_A)

    def test_dp_2_replacing_the_remembered_secret_rotates_it(self, storage: Storage) -> None:
        """DP-2: the new secret with the old one as previous_secret replaces it for good."""
        storage.remember_secret(SECRET_A)
        storage.remember_secret(SECRET_B, replacing=SECRET_A)
        storage.remember_secret(SECRET_B)
        storage.remember_secret(SECRET_B, replacing=SECRET_A)  # restarted, rotation not yet removed
        with pytest.raises(SettingsError) as old:
            storage.remember_secret(SECRET_A)
        assert old.value.code == "settings.secret_mismatch"

    def test_dp_2_a_wrong_replacing_is_refused(self, storage: Storage) -> None:
        """DP-2: a rotation from a secret the store never had changes nothing."""
        storage.remember_secret(SECRET_A)
        with pytest.raises(SettingsError) as refused:
            storage.remember_secret(SECRET_B, replacing=SECRET_C)
        assert refused.value.code == "settings.secret_mismatch"
        assert "previous_secret" in refused.value.message
        storage.remember_secret(SECRET_A)
        with pytest.raises(SettingsError):
            storage.remember_secret(SECRET_B)

    def test_dp_2_a_new_store_takes_the_secret_it_is_first_given(self, storage: Storage) -> None:
        """DP-2: with nothing remembered, the secret given is kept, rotation or not."""
        storage.remember_secret(SECRET_B, replacing=SECRET_A)
        storage.remember_secret(SECRET_B)
        with pytest.raises(SettingsError):
            storage.remember_secret(SECRET_A)

    def test_dp_2_the_faulty_store_passes_the_secret_through_uncounted(
        self, storage: Storage
    ) -> None:
        """DP-2: remembering the secret is not a unit operation; injected faults do not reach it."""
        faulty = FaultyStorage(storage, fail_at=1)
        faulty.remember_secret(SECRET_A)
        faulty.remember_secret(SECRET_B, replacing=SECRET_A)
        assert faulty.calls == 0
        with pytest.raises(SettingsError):
            storage.remember_secret(SECRET_A)
