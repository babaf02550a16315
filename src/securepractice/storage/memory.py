"""The in-memory store: thread-safe, transactional, and public for testing.

`MemoryStorage` keeps every record in dictionaries. A unit of work holds the
store's one lock from start to end, so units run one at a time and every
port method is atomic. Writes go to copies of the tables the unit touched;
only a unit that ends normally swaps its copies in, so a rolled-back unit
leaves no trace (ST-2). It keeps the same rules as the SQLite store (unique
emails regardless of case, references that must exist, append-only audit),
so tests of the flows mean the same thing with either.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs

from securepractice.clock import require_utc
from securepractice.errors import AlreadyExists, NotFound, StorageError
from securepractice.records import (
    AuditEvent,
    CardOnFile,
    Challenge,
    ChallengeState,
    Credential,
    Entitlement,
    Invoice,
    LinkToken,
    Practice,
    PracticeSubscription,
    Purpose,
    SecureMailPayment,
    SecureMailPurchase,
    Session,
    TermsAcceptance,
    TokenPurpose,
    User,
)
from securepractice.storage import ports
from securepractice.storage._unit import TransactionalUnit

__all__ = ["MemoryStorage", "MemoryUnitOfWork"]

R = TypeVar("R", bound=attrs.AttrsInstance)

_TABLES = (
    "practices",
    "users",
    "credentials",
    "sign_in_failures",
    "challenges",
    "code_sends",
    "link_tokens",
    "sessions",
    "terms",
    "subscriptions",
    "entitlements",
    "cards",
    "purchases",
    "payments",
    "invoices",
)


def _email_key(email: str) -> str:
    return email.casefold()


def _checked(record: R) -> R:
    """Return ``record`` with its datetimes in UTC; refuse a naive one, as SQLite does."""
    times = {
        field.name: require_utc(value, field=field.name)
        for field in attrs.fields(type(record))
        if isinstance(value := getattr(record, field.name), datetime)
    }
    return attrs.evolve(record, **times)  # type: ignore[misc]


def _missing_reference() -> NotFound:
    return NotFound(
        "the record refers to another record that does not exist",
        code="storage.reference_missing",
    )


class _State:
    """The committed data of one store, and the lock that serialises its units."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: int | None = None
        self.closed = False
        self.tables: dict[str, dict[Hashable, Any]] = {name: {} for name in _TABLES}
        self.audit: list[AuditEvent] = []


class MemoryStorage:
    """A store in this process's memory; each instance starts empty."""

    def __init__(self) -> None:
        self._state = _State()

    def unit_of_work(self) -> MemoryUnitOfWork:
        """Return a new unit of work on this store."""
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
        self.challenges: ports.Challenges = _Challenges(transaction)
        self.code_sends: ports.CodeSends = _CodeSends(transaction)
        self.link_tokens: ports.LinkTokens = _LinkTokens(transaction)
        self.sessions: ports.Sessions = _Sessions(transaction)
        self.audit: ports.AuditLog = _AuditLog(transaction)
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

    def _replace(self, table: str, key: Hashable, record: attrs.AttrsInstance, thing: str) -> None:
        rows = self._tx.write(table)
        if key not in rows:
            raise NotFound(f"no such {thing}", code=f"{thing}.not_found")
        rows[key] = _checked(record)

    def _select(
        self, table: str, where: Callable[[Any], bool], order: Callable[[Any], Any] | None = None
    ) -> list[Any]:
        found = [row for row in self._tx.read(table).values() if where(row)]
        return found if order is None else sorted(found, key=order)

    def _evolve_all(
        self, table: str, records: Iterable[Any], key: Callable[[Any], Hashable], **changes: object
    ) -> int:
        rows = self._tx.write(table)
        count = 0
        for record in records:
            rows[key(record)] = attrs.evolve(record, **changes)
            count += 1
        return count


class _Practices(_Repository):
    def add(self, practice: Practice) -> None:
        self._insert("practices", practice.id, practice, "practice.exists")

    def get(self, practice_id: str) -> Practice | None:
        practice: Practice | None = self._tx.read("practices").get(practice_id)
        return practice

    def update(self, practice: Practice) -> None:
        self._replace("practices", practice.id, practice, "practice")


class _Users(_Repository):
    def _check_email(self, user: User) -> None:
        key = _email_key(user.email)
        for other in self._tx.read("users").values():
            if other.id != user.id and _email_key(other.email) == key:
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
        key = _email_key(email)
        found = self._select("users", lambda u: _email_key(u.email) == key)
        return found[0] if found else None

    def update(self, user: User) -> None:
        if user.id in self._tx.read("users"):
            self._check_email(user)
            self._tx.require("practices", user.practice_id)
        self._replace("users", user.id, user, "user")

    def list_for_practice(self, practice_id: str) -> Sequence[User]:
        return self._select(
            "users", lambda u: u.practice_id == practice_id, lambda u: (u.email, u.id)
        )


class _Credentials(_Repository):
    def get(self, user_id: str) -> Credential | None:
        credential: Credential | None = self._tx.read("credentials").get(user_id)
        return credential

    def put(self, credential: Credential) -> None:
        self._tx.require("users", credential.user_id)
        self._tx.write("credentials")[credential.user_id] = _checked(credential)


class _SignInFailures(_Repository):
    def increment(self, user_id: str) -> int:
        self._tx.require("users", user_id)
        counts = self._tx.write("sign_in_failures")
        counts[user_id] = new = counts.get(user_id, 0) + 1
        return int(new)

    def count(self, user_id: str) -> int:
        return int(self._tx.read("sign_in_failures").get(user_id, 0))

    def reset(self, user_id: str) -> None:
        if user_id in self._tx.read("sign_in_failures"):
            del self._tx.write("sign_in_failures")[user_id]

    def forgive(self, user_id: str) -> int:
        if not self._tx.read("sign_in_failures").get(user_id):
            return 0
        counts = self._tx.write("sign_in_failures")
        counts[user_id] = new = counts[user_id] - 1
        return int(new)


class _Challenges(_Repository):
    def add(self, challenge: Challenge) -> None:
        self._tx.require("users", challenge.user_id)
        self._insert("challenges", challenge.id, challenge, "challenge.exists")

    def get(self, challenge_id: str) -> Challenge | None:
        challenge: Challenge | None = self._tx.read("challenges").get(challenge_id)
        return challenge

    def update(self, challenge: Challenge) -> None:
        self._replace("challenges", challenge.id, challenge, "challenge")

    def latest(self, user_id: str, purpose: Purpose) -> Challenge | None:
        found = self._select("challenges", lambda c: c.user_id == user_id and c.purpose is purpose)
        return max(reversed(found), key=lambda c: c.issued_at, default=None)

    def consume(self, challenge_id: str, *, code_hash: bytes, now: datetime) -> bool:
        now = require_utc(now)
        challenge = self.get(challenge_id)
        if (
            challenge is None
            or challenge.state is not ChallengeState.ACTIVE
            or challenge.code_hash is None
            or challenge.expires_at <= now
            or not hmac.compare_digest(challenge.code_hash, code_hash)
        ):
            return False
        self._tx.write("challenges")[challenge_id] = attrs.evolve(
            challenge, state=ChallengeState.VERIFIED, code_hash=None
        )
        return True

    def record_wrong_attempt(self, challenge_id: str, *, limit: int) -> int:
        challenge = self.get(challenge_id)
        if challenge is None:
            raise NotFound("no such challenge", code="challenge.not_found")
        attempts = challenge.wrong_attempts + 1
        changed = attrs.evolve(challenge, wrong_attempts=attempts)
        if attempts >= limit and challenge.state is ChallengeState.ACTIVE:
            changed = attrs.evolve(changed, state=ChallengeState.VOID, code_hash=None)
        self._tx.write("challenges")[challenge_id] = changed
        return attempts


class _CodeSends(_Repository):
    def record(self, user_id: str, at: datetime) -> None:
        at = require_utc(at, field="at")
        self._tx.require("users", user_id)
        sends = self._tx.write("code_sends")
        sends[user_id] = (*sends.get(user_id, ()), at)

    def record_within_limit(
        self, user_id: str, *, at: datetime, since: datetime, limit: int
    ) -> bool:
        if len(self.sends_since(user_id, since)) >= limit:
            return False
        self.record(user_id, at)
        return True

    def sends_since(self, user_id: str, since: datetime) -> Sequence[datetime]:
        since = require_utc(since, field="since")
        return sorted(t for t in self._tx.read("code_sends").get(user_id, ()) if t > since)


class _LinkTokens(_Repository):
    def add(self, token: LinkToken) -> None:
        self._tx.require("users", token.user_id)
        self._insert("link_tokens", token.token_hash, token, "link_token.exists")

    def get(self, token_hash: bytes) -> LinkToken | None:
        token: LinkToken | None = self._tx.read("link_tokens").get(token_hash)
        return token

    def consume(
        self, token_hash: bytes, *, purpose: TokenPurpose, now: datetime
    ) -> LinkToken | None:
        now = require_utc(now)
        token = self.get(token_hash)
        if (
            token is None
            or token.purpose is not purpose
            or token.used_at is not None
            or token.superseded
            or token.expires_at <= now
        ):
            return None
        used = attrs.evolve(token, used_at=now)
        self._tx.write("link_tokens")[token_hash] = used
        return used

    def supersede_all(self, user_id: str, purpose: TokenPurpose) -> int:
        live = self._select(
            "link_tokens",
            lambda t: (
                t.user_id == user_id and t.purpose is purpose and t.used_at is None
                and not t.superseded
            ),
        )  # fmt: skip
        return self._evolve_all("link_tokens", live, lambda t: t.token_hash, superseded=True)


class _Sessions(_Repository):
    def add(self, session: Session) -> None:
        self._tx.require("users", session.user_id)
        self._insert("sessions", session.token_hash, session, "session.exists")

    def get(self, token_hash: bytes) -> Session | None:
        session: Session | None = self._tx.read("sessions").get(token_hash)
        return session

    def update(self, session: Session) -> None:
        self._replace("sessions", session.token_hash, session, "session")

    def revoke_all(self, user_id: str, *, except_token_hash: bytes | None = None) -> int:
        live = self._select(
            "sessions",
            lambda s: s.user_id == user_id and not s.revoked and s.token_hash != except_token_hash,
        )
        return self._evolve_all("sessions", live, lambda s: s.token_hash, revoked=True)


class _AuditLog(_Repository):
    def append(self, event: AuditEvent) -> None:
        self._tx.append_event(_checked(event))

    def events(
        self,
        *,
        subject_id: str | None = None,
        practice_id: str | None = None,
        since: datetime | None = None,
    ) -> Sequence[AuditEvent]:
        after = None if since is None else require_utc(since, field="since")
        return sorted(
            (
                e
                for e in self._tx.audit_events()
                if (subject_id is None or e.subject_id == subject_id)
                and (practice_id is None or e.practice_id == practice_id)
                and (after is None or e.at >= after)
            ),
            key=lambda e: e.at,
        )


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

    def unsubscribe(self, practice_id: str, product: str) -> bool:
        return _discard(self._tx, "subscriptions", (practice_id, product))

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
        return _discard(self._tx, "entitlements", (user_id, product))

    def list_for_user(self, user_id: str) -> Sequence[Entitlement]:
        return self._select("entitlements", lambda e: e.user_id == user_id, lambda e: e.product)


class _Cards(_Repository):
    def put(self, card: CardOnFile) -> None:
        self._tx.require("users", card.user_id)
        self._tx.write("cards")[card.user_id] = _checked(card)

    def get(self, user_id: str) -> CardOnFile | None:
        card: CardOnFile | None = self._tx.read("cards").get(user_id)
        return card

    def remove(self, user_id: str) -> bool:
        return _discard(self._tx, "cards", user_id)


class _SecureMailBilling(_Repository):
    def add_purchase(self, purchase: SecureMailPurchase) -> None:
        self._tx.require("practices", purchase.practice_id)
        self._tx.require("users", purchase.payer_id)
        self._tx.require("users", purchase.account_id)
        if purchase.ended_at is None and self.active_purchase(purchase.account_id) is not None:
            raise AlreadyExists(
                "SecureMail for this account is paid for already", code="securemail.already_paid"
            )
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

    def end_purchase(self, purchase_id: str, at: datetime) -> bool:
        at = require_utc(at, field="at")
        purchase = self._tx.read("purchases").get(purchase_id)
        if purchase is None or purchase.ended_at is not None:
            return False
        self._tx.write("purchases")[purchase_id] = attrs.evolve(purchase, ended_at=at)
        return True

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


def _discard(transaction: _Transaction, table: str, key: Hashable) -> bool:
    if key not in transaction.read(table):
        return False
    del transaction.write(table)[key]
    return True
