"""The in-memory store: thread-safe, transactional, and public for testing.

`MemoryStorage` keeps every record in dictionaries. A unit of work holds the
store's one lock from start to end, so units run one at a time. Writes go to
copies of the tables the unit touched; only a unit that ends normally swaps
its copies in, so a rolled-back unit leaves no trace (ST-2). It keeps the
same constraints as the SQLite store (unique keys and emails, references
that must exist, versions that must match on save, an append-only audit log)
and no rule of the portal, so tests of the flows mean the same thing with
either.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs

from securepractice.clock import require_utc
from securepractice.errors import AlreadyExists, Conflict, NotFound, StorageError
from securepractice.records import (
    AttemptOutcome,
    AuditEvent,
    CardOnFile,
    Challenge,
    Credential,
    Entitlement,
    Invoice,
    LinkToken,
    Practice,
    PracticeSubscription,
    Purpose,
    SecureMailPayment,
    SecureMailPurchase,
    SendLedger,
    Session,
    TermsAcceptance,
    TokenPurpose,
    User,
    Versioned,
)
from securepractice.storage import ports
from securepractice.storage._secret import fingerprint_to_store
from securepractice.storage._unit import ClosesOnExit, TransactionalUnit, bad_position

__all__ = ["MemoryStorage", "MemoryUnitOfWork"]

R = TypeVar("R", bound=attrs.AttrsInstance)

_TABLES = (
    "practices",
    "users",
    "credentials",
    "sign_in_failures",
    "challenges",
    "send_ledgers",
    "link_tokens",
    "sessions",
    "terms",
    "subscriptions",
    "entitlements",
    "cards",
    "purchases",
    "payments",
    "invoices",
    "client_failures",
    "audit_sinks",
)

#: A position in the audit feed: how many committed events come before and at it.
_POSITION = re.compile(r"[0-9]{1,19}")


def _utc(value: object, field: str) -> object:
    """Return ``value`` with every datetime in it in UTC; refuse a naive one, as SQLite does."""
    if isinstance(value, datetime):
        return require_utc(value, field=field)
    if isinstance(value, tuple):
        return tuple(_utc(item, field) for item in value)
    return value


def _checked(record: R) -> R:
    """Return ``record`` with its datetimes, also those in tuples, in UTC."""
    times = {
        field.name: _utc(value, field.name)
        for field in attrs.fields(type(record))
        if isinstance(value := getattr(record, field.name), (datetime, tuple))
    }
    return attrs.evolve(record, **times)  # type: ignore[misc]


def _missing_reference() -> NotFound:
    return NotFound(
        "the record refers to another record that does not exist",
        code="storage.reference_missing",
    )


@attrs.frozen
class _Attempts:
    """One counter's recorded sign-in failures and the start times of attempts in flight."""

    failures: int = 0
    in_flight: tuple[datetime, ...] = ()


class _State:
    """The committed data of one store, and the lock that serialises its units."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: int | None = None
        self.closed = False
        self.tables: dict[str, dict[Hashable, Any]] = {name: {} for name in _TABLES}
        self.audit: list[AuditEvent] = []
        self.secret_lock = threading.Lock()
        self.fingerprint: str | None = None


class MemoryStorage(ClosesOnExit):
    """A store in this process's memory; each instance starts empty.

    It is not `persistent`: what it keeps, the portal secret's fingerprint
    included, ends with the instance.
    """

    def __init__(self) -> None:
        self._state = _State()

    @property
    def persistent(self) -> bool:
        """False: records live only as long as this instance."""
        return False

    def remember_secret(self, fingerprint: str, *, replacing: str | None = None) -> None:
        """Keep the portal secret's fingerprint in this instance; refuse another one (DP-2)."""
        state = self._state
        if state.closed:
            raise StorageError("the store is closed", code="storage.closed")
        with state.secret_lock:
            if fingerprint_to_store(state.fingerprint, fingerprint, replacing):
                state.fingerprint = fingerprint

    def unit_of_work(self, *, durable: bool = True) -> MemoryUnitOfWork:  # noqa: ARG002
        """Return a new unit of work on this store; in memory, none survives a power cut."""
        return MemoryUnitOfWork(_Transaction(self._state))

    def close(self) -> None:
        """Refuse further units of work."""
        self._state.closed = True

    def __repr__(self) -> str:
        state = self._state
        return f"MemoryStorage(users={len(state.tables['users'])}, events={len(state.audit)})"


class _Transaction:
    """The copies a unit of work writes to, swapped in only when it commits."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.stage = "new"
        self.copies: dict[str, dict[Hashable, Any]] = {}
        self.appended: list[AuditEvent] = []

    def begin(self) -> None:
        state = self.state
        if self.stage != "new":
            raise StorageError("a unit of work can be used only once", code="storage.unit_reused")
        if state.closed:
            raise StorageError("the store is closed", code="storage.closed")
        if state.owner == threading.get_ident():
            raise StorageError("units of work do not nest", code="storage.nested_unit")
        state.lock.acquire()
        state.owner = threading.get_ident()
        self.stage = "active"

    def end(self, *, commit: bool) -> None:
        state = self.state
        try:
            if commit:
                state.tables.update(self.copies)
                state.audit.extend(self.appended)
        finally:
            self.copies = {}
            self.appended = []
            self.stage = "done"
            state.owner = None
            state.lock.release()

    def active(self) -> None:
        if self.stage != "active":
            raise StorageError(
                "storage is reached only inside an active unit of work", code="storage.no_unit"
            )

    def read(self, table: str) -> dict[Hashable, Any]:
        self.active()
        if table in self.copies:
            return self.copies[table]
        return self.state.tables[table]

    def write(self, table: str) -> dict[Hashable, Any]:
        current = self.read(table)
        if table not in self.copies:
            current = self.copies[table] = dict(current)
        return current

    def require(self, table: str, key: Hashable | None) -> None:
        """Raise `NotFound` unless ``key`` is None or names a record of ``table``."""
        if key is not None and key not in self.read(table):
            raise _missing_reference()

    def audit_events(self) -> list[AuditEvent]:
        self.active()
        return [*self.state.audit, *self.appended]

    def committed_events(self) -> list[AuditEvent]:
        """Return the events of units that committed, in commit order: units take turns."""
        self.active()
        return list(self.state.audit)

    def append_event(self, event: AuditEvent) -> None:
        if any(e.id == event.id for e in self.audit_events()):
            raise AlreadyExists("an audit event with this id exists", code="audit.exists")
        self.appended.append(event)


class MemoryUnitOfWork(TransactionalUnit):
    """One unit of work on a `MemoryStorage`; see `securepractice.storage.ports.UnitOfWork`."""

    def __init__(self, transaction: _Transaction) -> None:
        self._tx = transaction
        self.practices: ports.Practices = _Practices(transaction)
        self.users: ports.Users = _Users(transaction)
        self.credentials: ports.Credentials = _Credentials(transaction)
        self.sign_in_failures: ports.SignInFailures = _SignInFailures(transaction)
        self.client_failures: ports.ClientFailures = _ClientFailures(transaction)
        self.challenges: ports.Challenges = _Challenges(transaction)
        self.code_sends: ports.CodeSends = _CodeSends(transaction)
        self.link_tokens: ports.LinkTokens = _LinkTokens(transaction)
        self.sessions: ports.Sessions = _Sessions(transaction)
        self.audit: ports.AuditLog = _AuditLog(transaction)
        self.audit_sinks: ports.AuditSinks = _AuditSinks(transaction)
        self.terms: ports.TermsAcceptances = _TermsAcceptances(transaction)
        self.subscriptions: ports.Subscriptions = _Subscriptions(transaction)
        self.entitlements: ports.Entitlements = _Entitlements(transaction)
        self.cards: ports.Cards = _Cards(transaction)
        self.securemail: ports.SecureMailBilling = _SecureMailBilling(transaction)


class _Repository:
    def __init__(self, transaction: _Transaction) -> None:
        self._tx = transaction

    def _insert(self, table: str, key: Hashable, record: attrs.AttrsInstance, code: str) -> None:
        rows = self._tx.write(table)
        if key in rows:
            raise AlreadyExists("a record with this key exists already", code=code)
        rows[key] = _checked(record)

    def _expect(self, table: str, key: Hashable, expected_version: int, thing: str) -> None:
        """Raise `NotFound` if ``key`` is not stored, `Conflict` if its version is not expected."""
        stored: Versioned | None = self._tx.read(table).get(key)
        if stored is None:
            raise NotFound(f"no such {thing}", code=f"{thing}.not_found")
        if stored.version != expected_version:
            raise Conflict(f"the {thing} changed since it was read; nothing was saved")

    def _save(
        self,
        table: str,
        key: Hashable,
        record: attrs.AttrsInstance,
        expected_version: int,
        thing: str,
    ) -> None:
        self._expect(table, key, expected_version, thing)
        self._tx.write(table)[key] = _checked(record)

    def _select(
        self, table: str, where: Callable[[Any], bool], order: Callable[[Any], Any] | None = None
    ) -> list[Any]:
        found = [row for row in self._tx.read(table).values() if where(row)]
        return found if order is None else sorted(found, key=order)

    def _page(self, table: str, after: Any, limit: int) -> list[Any]:  # noqa: ANN401 - any key
        """Return up to ``limit`` records of ``table`` in order of key, those after ``after``."""
        rows: dict[Any, Any] = self._tx.read(table)
        keys = sorted(key for key in rows if after is None or key > after)
        return [rows[key] for key in keys[: max(limit, 0)]]

    def _delete(self, table: str, keyed: Sequence[tuple[Hashable, int]]) -> int:
        """Remove each record of ``table`` whose key is given with its stored version."""
        rows = self._tx.read(table)
        gone = [key for key, version in keyed if key in rows and rows[key].version == version]
        if gone:
            written = self._tx.write(table)
            for key in gone:
                del written[key]
        return len(gone)


class _Practices(_Repository):
    def add(self, practice: Practice) -> None:
        self._insert("practices", practice.id, practice, "practice.exists")

    def get(self, practice_id: str) -> Practice | None:
        practice: Practice | None = self._tx.read("practices").get(practice_id)
        return practice

    def save(self, practice: Practice, *, expected_version: int) -> None:
        self._save("practices", practice.id, practice, expected_version, "practice")


class _Users(_Repository):
    def _check_email(self, user: User) -> None:
        for other in self._tx.read("users").values():
            if other.id != user.id and other.email == user.email:
                raise AlreadyExists(
                    "this email address belongs to another user", code="user.email_taken"
                )

    def add(self, user: User) -> None:
        if user.id in self._tx.read("users"):
            raise AlreadyExists("a user with this id exists already", code="user.exists")
        self._check_email(user)
        self._tx.require("practices", user.practice_id)
        self._insert("users", user.id, user, "user.exists")

    def get(self, user_id: str) -> User | None:
        user: User | None = self._tx.read("users").get(user_id)
        return user

    def get_by_email(self, email: str) -> User | None:
        found = self._select("users", lambda u: u.email == email)
        return found[0] if found else None

    def save(self, user: User, *, expected_version: int) -> None:
        self._expect("users", user.id, expected_version, "user")
        self._check_email(user)
        self._tx.require("practices", user.practice_id)
        self._tx.write("users")[user.id] = _checked(user)

    def list_for_practice(self, practice_id: str) -> Sequence[User]:
        return self._select(
            "users", lambda u: u.practice_id == practice_id, lambda u: (u.email, u.id)
        )

    def list_staff(self) -> Sequence[User]:
        return self._select("users", lambda u: u.practice_id is None, lambda u: (u.email, u.id))


class _Credentials(_Repository):
    def get(self, user_id: str) -> Credential | None:
        credential: Credential | None = self._tx.read("credentials").get(user_id)
        return credential

    def add(self, credential: Credential) -> None:
        self._tx.require("users", credential.user_id)
        self._insert("credentials", credential.user_id, credential, "credential.exists")

    def save(self, credential: Credential, *, expected_version: int) -> None:
        self._save("credentials", credential.user_id, credential, expected_version, "credential")


#: What each outcome makes of the recorded failures.
_RECORDED: dict[AttemptOutcome, Callable[[int], int]] = {
    AttemptOutcome.WRONG: lambda failures: failures + 1,
    AttemptOutcome.RIGHT: lambda _failures: 0,
    AttemptOutcome.NOT_COUNTED: lambda failures: failures,
}


class _SignInFailures(_Repository):
    def _attempts(self, key: str) -> _Attempts:
        attempts: _Attempts = self._tx.read("sign_in_failures").get(key, _Attempts())
        return attempts

    def _keep(self, key: str, attempts: _Attempts) -> None:
        rows = self._tx.write("sign_in_failures")
        if attempts == _Attempts():
            rows.pop(key, None)
        else:
            rows[key] = attempts

    def start(self, key: str, *, now: datetime, abandoned_before: datetime) -> int:
        started = require_utc(now, field="now")
        cutoff = require_utc(abandoned_before, field="abandoned_before")
        old = self._attempts(key)
        live = tuple(at for at in old.in_flight if at >= cutoff)
        new = _Attempts(old.failures, (*live, started))
        self._keep(key, new)
        return new.failures + len(new.in_flight)

    def finish(self, key: str, *, started: datetime, outcome: AttemptOutcome) -> int:
        at = require_utc(started, field="started")
        old = self._attempts(key)
        in_flight = list(old.in_flight)
        if at in in_flight:
            in_flight.remove(at)
        new = _Attempts(_RECORDED[outcome](old.failures), tuple(in_flight))
        self._keep(key, new)
        return new.failures

    def count(self, key: str) -> int:
        return self._attempts(key).failures

    def reset(self, key: str) -> None:
        old = self._attempts(key)
        if old.failures:
            self._keep(key, attrs.evolve(old, failures=0))


class _Challenges(_Repository):
    def add(self, challenge: Challenge) -> None:
        self._tx.require("users", challenge.user_id)
        self._insert("challenges", challenge.id, challenge, "challenge.exists")

    def get(self, challenge_id: str) -> Challenge | None:
        challenge: Challenge | None = self._tx.read("challenges").get(challenge_id)
        return challenge

    def save(self, challenge: Challenge, *, expected_version: int) -> None:
        self._save("challenges", challenge.id, challenge, expected_version, "challenge")

    def latest(self, user_id: str, purpose: Purpose) -> Challenge | None:
        # A table keeps its insertion order, saves included: the last match was added last.
        found = self._select("challenges", lambda c: c.user_id == user_id and c.purpose is purpose)
        return found[-1] if found else None

    def page(self, *, after: str | None = None, limit: int) -> Sequence[Challenge]:
        return self._page("challenges", after, limit)

    def delete(self, challenges: Sequence[Challenge]) -> int:
        return self._delete("challenges", [(c.id, c.version) for c in challenges])


class _CodeSends(_Repository):
    def get(self, user_id: str) -> SendLedger | None:
        ledger: SendLedger | None = self._tx.read("send_ledgers").get(user_id)
        return ledger

    def add(self, ledger: SendLedger) -> None:
        self._tx.require("users", ledger.user_id)
        self._insert("send_ledgers", ledger.user_id, ledger, "send_ledger.exists")

    def save(self, ledger: SendLedger, *, expected_version: int) -> None:
        self._save("send_ledgers", ledger.user_id, ledger, expected_version, "send_ledger")

    def page(self, *, after: str | None = None, limit: int) -> Sequence[SendLedger]:
        return self._page("send_ledgers", after, limit)

    def delete(self, ledgers: Sequence[SendLedger]) -> int:
        return self._delete("send_ledgers", [(g.user_id, g.version) for g in ledgers])


class _LinkTokens(_Repository):
    def _check_id(self, token: LinkToken) -> None:
        for other in self._tx.read("link_tokens").values():
            if other.id == token.id and other.token_hash != token.token_hash:
                raise AlreadyExists("a link token with this id exists", code="link_token.exists")

    def add(self, token: LinkToken) -> None:
        self._check_id(token)
        self._insert("link_tokens", token.token_hash, token, "link_token.exists")

    def get(self, token_hash: bytes) -> LinkToken | None:
        token: LinkToken | None = self._tx.read("link_tokens").get(token_hash)
        return token

    def save(self, token: LinkToken, *, expected_version: int) -> None:
        self._expect("link_tokens", token.token_hash, expected_version, "link_token")
        self._check_id(token)
        self._tx.write("link_tokens")[token.token_hash] = _checked(token)

    def list_for_user(self, user_id: str, purpose: TokenPurpose) -> Sequence[LinkToken]:
        return self._select(
            "link_tokens",
            lambda t: t.user_id == user_id and t.purpose is purpose,
            lambda t: t.created_at,
        )

    def page(self, *, after: bytes | None = None, limit: int) -> Sequence[LinkToken]:
        return self._page("link_tokens", after, limit)

    def delete(self, tokens: Sequence[LinkToken]) -> int:
        return self._delete("link_tokens", [(t.token_hash, t.version) for t in tokens])


class _Sessions(_Repository):
    def add(self, session: Session) -> None:
        self._tx.require("users", session.user_id)
        self._insert("sessions", session.token_hash, session, "session.exists")

    def get(self, token_hash: bytes) -> Session | None:
        session: Session | None = self._tx.read("sessions").get(token_hash)
        return session

    def save(self, session: Session, *, expected_version: int) -> None:
        self._save("sessions", session.token_hash, session, expected_version, "session")

    def list_for_user(self, user_id: str) -> Sequence[Session]:
        return self._select("sessions", lambda s: s.user_id == user_id, lambda s: s.created_at)

    def page(self, *, after: bytes | None = None, limit: int) -> Sequence[Session]:
        return self._page("sessions", after, limit)

    def delete(self, sessions: Sequence[Session]) -> int:
        return self._delete("sessions", [(s.token_hash, s.version) for s in sessions])


class _AuditLog(_Repository):
    def append(self, event: AuditEvent) -> None:
        self._tx.append_event(_checked(event))

    def events(
        self,
        *,
        subject_id: str | None = None,
        practice_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[AuditEvent]:
        start = None if since is None else require_utc(since, field="since")
        end = None if until is None else require_utc(until, field="until")
        # In time order, and in the order appended within one instant (SQL's "at, seq").
        ordered = sorted(((e.at, index), e) for index, e in enumerate(self._tx.audit_events()))
        if after is not None:
            marks = [place for place, e in ordered if e.id == after]
            if not marks:
                return []
            ordered = [(place, e) for place, e in ordered if place > marks[0]]
        found = [
            e
            for _place, e in ordered
            if (subject_id is None or e.subject_id == subject_id)
            and (practice_id is None or e.practice_id == practice_id)
            and (start is None or e.at >= start)
            and (end is None or e.at < end)
        ]
        return found if limit is None else found[: max(limit, 0)]

    def feed(self, *, after: str | None = None, limit: int) -> Sequence[tuple[str, AuditEvent]]:
        if after is not None and not _POSITION.fullmatch(after):
            raise bad_position()
        start = 0 if after is None else int(after)
        events = self._tx.committed_events()[start : start + max(limit, 0)]
        return [(str(start + n), event) for n, event in enumerate(events, start=1)]


class _AuditSinks(_Repository):
    """Each sink's row: its position (None before its first event) and whether it is failing."""

    def _row(self, sink: str) -> tuple[str | None, bool]:
        row: tuple[str | None, bool] = self._tx.read("audit_sinks").get(sink, (None, False))
        return row

    def position(self, sink: str) -> str | None:
        return self._row(sink)[0]

    def advance(self, sink: str, *, expected: str | None, position: str) -> None:
        stored, failing = self._row(sink)
        if stored != expected:
            raise Conflict("the sink's position moved since it was read; nothing was saved")
        self._tx.write("audit_sinks")[sink] = (position, failing)

    def set_failing(self, sink: str, *, failing: bool) -> bool:
        stored, was = self._row(sink)
        if was == failing:
            return False
        self._tx.write("audit_sinks")[sink] = (stored, failing)
        return True


class _ClientFailures(_Repository):
    """Each key's failure times; every record adds one, so none is lost."""

    def record(self, key: str, at: datetime) -> None:
        moment = require_utc(at, field="at")
        rows = self._tx.write("client_failures")
        rows[key] = (*rows.get(key, ()), moment)

    def count_since(self, key: str, since: datetime) -> int:
        start = require_utc(since, field="since")
        times: tuple[datetime, ...] = self._tx.read("client_failures").get(key, ())
        return sum(1 for at in times if at >= start)

    def delete_before(self, before: datetime, *, limit: int) -> int:
        end = require_utc(before, field="before")
        left = max(limit, 0)
        rows = self._tx.read("client_failures")
        changed: dict[Hashable, tuple[datetime, ...]] = {}
        for key, times in rows.items():
            if not left:
                break
            old = [at for at in times if at < end][:left]
            if old:
                remaining = list(times)
                for at in old:
                    remaining.remove(at)
                changed[key] = tuple(remaining)
                left -= len(old)
        if changed:
            written = self._tx.write("client_failures")
            for key, kept in changed.items():
                if kept:
                    written[key] = kept
                else:
                    del written[key]
        return max(limit, 0) - left


class _TermsAcceptances(_Repository):
    def add(self, acceptance: TermsAcceptance) -> None:
        self._tx.require("users", acceptance.user_id)
        key = (acceptance.user_id, acceptance.version)
        self._insert("terms", key, acceptance, "terms.already_accepted")

    def list_for_user(self, user_id: str) -> Sequence[TermsAcceptance]:
        return self._select("terms", lambda a: a.user_id == user_id, lambda a: a.accepted_at)


class _Subscriptions(_Repository):
    def subscribe(self, subscription: PracticeSubscription) -> bool:
        self._tx.require("practices", subscription.practice_id)
        key = (subscription.practice_id, subscription.product)
        if key in self._tx.read("subscriptions"):
            return False
        self._tx.write("subscriptions")[key] = _checked(subscription)
        return True

    def list_for_practice(self, practice_id: str) -> Sequence[PracticeSubscription]:
        return self._select(
            "subscriptions", lambda s: s.practice_id == practice_id, lambda s: s.product
        )


class _Entitlements(_Repository):
    def grant(self, entitlement: Entitlement) -> bool:
        self._tx.require("users", entitlement.user_id)
        key = (entitlement.user_id, entitlement.product)
        if key in self._tx.read("entitlements"):
            return False
        self._tx.write("entitlements")[key] = _checked(entitlement)
        return True

    def revoke(self, user_id: str, product: str) -> bool:
        key = (user_id, product)
        if key not in self._tx.read("entitlements"):
            return False
        del self._tx.write("entitlements")[key]
        return True

    def list_for_user(self, user_id: str) -> Sequence[Entitlement]:
        return self._select("entitlements", lambda e: e.user_id == user_id, lambda e: e.product)


class _Cards(_Repository):
    def put(self, card: CardOnFile) -> None:
        self._tx.require("users", card.user_id)
        self._tx.write("cards")[card.user_id] = _checked(card)

    def get(self, user_id: str) -> CardOnFile | None:
        card: CardOnFile | None = self._tx.read("cards").get(user_id)
        return card


class _SecureMailBilling(_Repository):
    def _check_one_active(self, purchase: SecureMailPurchase) -> None:
        """Refuse a second purchase not yet ended for one account (UM-6): a unique key."""
        active = self.active_purchase(purchase.account_id)
        if purchase.ended_at is None and active is not None and active.id != purchase.id:
            raise AlreadyExists(
                "SecureMail for this account is paid for already", code="securemail.already_paid"
            )

    def _check_references(self, purchase: SecureMailPurchase) -> None:
        self._tx.require("practices", purchase.practice_id)
        self._tx.require("users", purchase.payer_id)
        self._tx.require("users", purchase.account_id)

    def add_purchase(self, purchase: SecureMailPurchase) -> None:
        self._check_references(purchase)
        self._check_one_active(purchase)
        self._insert("purchases", purchase.id, purchase, "purchase.exists")

    def active_purchase(self, account_id: str) -> SecureMailPurchase | None:
        found = self._select(
            "purchases", lambda p: p.account_id == account_id and p.ended_at is None
        )
        return found[0] if found else None

    def active_purchases(self) -> Sequence[SecureMailPurchase]:
        return self._select("purchases", lambda p: p.ended_at is None, lambda p: p.purchased_at)

    def purchases_paid_by(self, payer_id: str) -> Sequence[SecureMailPurchase]:
        return self._select("purchases", lambda p: p.payer_id == payer_id, lambda p: p.purchased_at)

    def save_purchase(self, purchase: SecureMailPurchase, *, expected_version: int) -> None:
        self._expect("purchases", purchase.id, expected_version, "purchase")
        self._check_references(purchase)
        self._check_one_active(purchase)
        self._tx.write("purchases")[purchase.id] = _checked(purchase)

    def add_payment(self, payment: SecureMailPayment) -> None:
        self._tx.require("purchases", payment.purchase_id)
        self._insert("payments", payment.id, payment, "payment.exists")

    def payments_for(self, account_id: str) -> Sequence[SecureMailPayment]:
        return self._select("payments", lambda p: p.account_id == account_id, lambda p: p.paid_at)

    def add_invoice(self, invoice: Invoice) -> None:
        self._tx.require("payments", invoice.payment_id)
        self._insert("invoices", invoice.id, invoice, "invoice.exists")

    def invoices_for(self, account_id: str) -> Sequence[Invoice]:
        return self._select("invoices", lambda i: i.account_id == account_id, lambda i: i.issued_at)
