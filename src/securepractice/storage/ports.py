"""The storage ports: one small protocol per thing the flows need (ST-1).

A service takes a `Storage`, opens one `UnitOfWork` per user action, and
reaches every repository through it. The unit commits when its ``with``
block ends normally and rolls everything back when it raises (ST-2), so a
step persists completely or not at all.

Every write that must be exact under concurrency is one port method, done
atomically by the adapter, never a read-modify-write in the service:
`SignInFailures.increment` (LK-4), `LinkTokens.consume` and
`Challenges.consume` (RS-5), `Challenges.record_wrong_attempt` (VF-7) and
`CodeSends.record_within_limit` (VF-8).

Writing an adapter needs no inheritance: a class with these methods is one.
Errors are the library's own: `~securepractice.errors.AlreadyExists` for a
duplicate, `~securepractice.errors.NotFound` for an update of a missing
record or a reference to one, and `~securepractice.errors.StorageError` for
anything the store itself could not do. All datetimes are timezone-aware.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol

from typing_extensions import Self

from securepractice.records import (
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
    Session,
    TermsAcceptance,
    TokenPurpose,
    User,
)

__all__ = [
    "AuditLog",
    "Cards",
    "Challenges",
    "CodeSends",
    "Credentials",
    "Entitlements",
    "LinkTokens",
    "Practices",
    "SecureMailBilling",
    "Sessions",
    "SignInFailures",
    "Storage",
    "Subscriptions",
    "TermsAcceptances",
    "UnitOfWork",
    "Users",
]


class Practices(Protocol):
    """Practices and their main account information (ID-2, PF-2)."""

    def add(self, practice: Practice) -> None:
        """Store a new practice; `AlreadyExists` (``practice.exists``) if its id is taken."""
        ...

    def get(self, practice_id: str) -> Practice | None:
        """Return the practice with this id, or None."""
        ...

    def update(self, practice: Practice) -> None:
        """Replace the stored practice of the same id; `NotFound` if there is none."""
        ...


class Users(Protocol):
    """Users: email as the unique username, profile, roles, status and flags (ID-1..ID-3)."""

    def add(self, user: User) -> None:
        """Store a new user.

        Raises `AlreadyExists` with code ``user.email_taken`` when another user
        has the same email, compared case-insensitively (ID-2), ``user.exists``
        when the id is taken, and `NotFound` when its practice does not exist.
        """
        ...

    def get(self, user_id: str) -> User | None:
        """Return the user with this id, or None."""
        ...

    def get_by_email(self, email: str) -> User | None:
        """Return the user whose email equals ``email`` case-insensitively, or None."""
        ...

    def update(self, user: User) -> None:
        """Replace the stored user of the same id.

        `NotFound` if there is none; `AlreadyExists` (``user.email_taken``)
        when the new email is another user's.
        """
        ...

    def list_for_practice(self, practice_id: str) -> Sequence[User]:
        """Return every user of the practice, ordered by email (UM-3)."""
        ...


class Credentials(Protocol):
    """Password hashes, when they were set, and the password history (PW-4, PW-5, PW-7)."""

    def get(self, user_id: str) -> Credential | None:
        """Return the user's credential, or None before a password was ever set."""
        ...

    def put(self, credential: Credential) -> None:
        """Store the user's credential, replacing the previous one."""
        ...


class SignInFailures(Protocol):
    """Consecutive failed sign-ins per user, exact under concurrency (LK-1..LK-4)."""

    def increment(self, user_id: str) -> int:
        """Add one failure atomically and return the new count (LK-4)."""
        ...

    def count(self, user_id: str) -> int:
        """Return the current count; 0 when none was recorded."""
        ...

    def reset(self, user_id: str) -> None:
        """Clear the count (LK-2, LK-3)."""
        ...

    def forgive(self, user_id: str) -> int:
        """Take back one counted attempt that turned out not to be a wrong password (LK-8).

        Atomic like `increment`; the count never goes below zero. Returns the
        new count.
        """
        ...


class Challenges(Protocol):
    """Two-step verifications and their current code hash (VF-4..VF-7, VF-10)."""

    def add(self, challenge: Challenge) -> None:
        """Store a new verification; `AlreadyExists` (``challenge.exists``) if its id is taken."""
        ...

    def get(self, challenge_id: str) -> Challenge | None:
        """Return the verification with this id, or None."""
        ...

    def update(self, challenge: Challenge) -> None:
        """Replace the stored verification (a new code, a new method, void); `NotFound` if none."""
        ...

    def latest(self, user_id: str, purpose: Purpose) -> Challenge | None:
        """Return the user's most recently issued verification for ``purpose``, or None."""
        ...

    def consume(self, challenge_id: str, *, code_hash: bytes, now: datetime) -> bool:
        """Mark the verification verified if ``code_hash`` is its current code's hash.

        Succeeds only while the verification is active and its code has not
        expired at ``now``; then its code stops working. The hashes are
        compared in constant time. Of simultaneous calls, at most one
        returns True (RS-5).
        """
        ...

    def record_wrong_attempt(self, challenge_id: str, *, limit: int) -> int:
        """Count one wrong code atomically and return the new count (VF-7).

        When the count reaches ``limit`` the verification becomes void and
        its code stops working. `NotFound` if there is no such verification.
        """
        ...


class CodeSends(Protocol):
    """When codes were sent to each user, for the send limit (VF-8)."""

    def record(self, user_id: str, at: datetime) -> None:
        """Record that a code was sent to the user at ``at``."""
        ...

    def record_within_limit(
        self, user_id: str, *, at: datetime, since: datetime, limit: int
    ) -> bool:
        """Record a send at ``at`` only if fewer than ``limit`` were sent after ``since``.

        The check and the write are one atomic step; returns whether the
        send was recorded (and so may go ahead).
        """
        ...

    def sends_since(self, user_id: str, since: datetime) -> Sequence[datetime]:
        """Return the send times after ``since``, oldest first.

        A send exactly at ``since`` is not returned: with ``since`` the start
        of the send window, it has just left the window (VF-8).
        """
        ...


class LinkTokens(Protocol):
    """E-mailed link tokens, kept by their hash (RG-1, RG-4, RG-6, RS-1, RS-3)."""

    def add(self, token: LinkToken) -> None:
        """Store a new token; `AlreadyExists` (``link_token.exists``) if its hash is taken."""
        ...

    def get(self, token_hash: bytes) -> LinkToken | None:
        """Return the token with this hash, or None."""
        ...

    def consume(
        self, token_hash: bytes, *, purpose: TokenPurpose, now: datetime
    ) -> LinkToken | None:
        """Use the token up, once (RS-5).

        Succeeds only if the token exists for ``purpose``, is unused, not
        superseded and unexpired at ``now``; returns the used token, or None.
        Of simultaneous calls, exactly one succeeds.
        """
        ...

    def supersede_all(self, user_id: str, purpose: TokenPurpose) -> int:
        """Supersede every unused token of the user for ``purpose``; return how many (RG-4)."""
        ...


class Sessions(Protocol):
    """Signed-in sessions, kept by the hash of their token (LK-6, LK-7)."""

    def add(self, session: Session) -> None:
        """Store a new session; `AlreadyExists` (``session.exists``) if its hash is taken."""
        ...

    def get(self, token_hash: bytes) -> Session | None:
        """Return the session with this token hash, or None."""
        ...

    def update(self, session: Session) -> None:
        """Replace the stored session (activity, revocation); `NotFound` if there is none."""
        ...

    def revoke_all(self, user_id: str, *, except_token_hash: bytes | None = None) -> int:
        """Revoke every live session of the user but the one given; return how many (LK-6)."""
        ...


class AuditLog(Protocol):
    """Security events, append-only: there is no way to change or remove one (AU-1)."""

    def append(self, event: AuditEvent) -> None:
        """Record an event; `AlreadyExists` (``audit.exists``) if its id is taken."""
        ...

    def events(
        self,
        *,
        subject_id: str | None = None,
        practice_id: str | None = None,
        since: datetime | None = None,
    ) -> Sequence[AuditEvent]:
        """Return the events matching every filter given, oldest first."""
        ...


class TermsAcceptances(Protocol):
    """Acceptances of the Terms of Use, with version and time (RG-3)."""

    def add(self, acceptance: TermsAcceptance) -> None:
        """Record an acceptance; accepting a version twice is `AlreadyExists`."""
        ...

    def list_for_user(self, user_id: str) -> Sequence[TermsAcceptance]:
        """Return the user's acceptances, oldest first."""
        ...


class Subscriptions(Protocol):
    """The products each practice subscribes to (SB-1)."""

    def subscribe(self, subscription: PracticeSubscription) -> bool:
        """Record the subscription; return False if the practice already had the product."""
        ...

    def unsubscribe(self, practice_id: str, product: str) -> bool:
        """End the subscription; return whether there was one."""
        ...

    def list_for_practice(self, practice_id: str) -> Sequence[PracticeSubscription]:
        """Return the practice's subscriptions, ordered by product."""
        ...


class Entitlements(Protocol):
    """Practice products granted to individual users (SB-1, SB-2)."""

    def grant(self, entitlement: Entitlement) -> bool:
        """Grant the product; return False if the user already had it."""
        ...

    def revoke(self, user_id: str, product: str) -> bool:
        """Take the product away; return whether the user had it."""
        ...

    def list_for_user(self, user_id: str) -> Sequence[Entitlement]:
        """Return the user's entitlements, ordered by product."""
        ...


class Cards(Protocol):
    """Payment cards on file: the processor's token and last four digits only (UM-6)."""

    def put(self, card: CardOnFile) -> None:
        """Store the user's card, replacing an earlier one."""
        ...

    def get(self, user_id: str) -> CardOnFile | None:
        """Return the user's card, or None."""
        ...

    def remove(self, user_id: str) -> bool:
        """Remove the user's card; return whether there was one."""
        ...


class SecureMailBilling(Protocol):
    """SecureMail purchases, payments and invoices, in integer cents (UM-6, UM-7)."""

    def add_purchase(self, purchase: SecureMailPurchase) -> None:
        """Store a purchase.

        `AlreadyExists` with code ``securemail.already_paid`` when the account
        has an active purchase already (UM-6).
        """
        ...

    def active_purchase(self, account_id: str) -> SecureMailPurchase | None:
        """Return the account's active purchase, or None."""
        ...

    def active_purchases(self) -> Sequence[SecureMailPurchase]:
        """Return every purchase not yet ended, oldest first: what monthly billing charges."""
        ...

    def purchases_paid_by(self, payer_id: str) -> Sequence[SecureMailPurchase]:
        """Return every purchase the user pays or paid for, oldest first."""
        ...

    def end_purchase(self, purchase_id: str, at: datetime) -> bool:
        """End an active purchase at ``at``; return whether one was active."""
        ...

    def add_payment(self, payment: SecureMailPayment) -> None:
        """Record a charge; `AlreadyExists` (``payment.exists``) if its id is taken."""
        ...

    def payments_for(self, account_id: str) -> Sequence[SecureMailPayment]:
        """Return the payments for the account, oldest first (UM-7)."""
        ...

    def add_invoice(self, invoice: Invoice) -> None:
        """Record an invoice; `AlreadyExists` (``invoice.exists``) if its id is taken."""
        ...

    def invoices_for(self, account_id: str) -> Sequence[Invoice]:
        """Return the invoices of the account, oldest first (UM-7)."""
        ...


class UnitOfWork(Protocol):
    """One atomic step of a flow, and the way to every repository (ST-2).

    Use it as a context manager: it commits when the block ends normally and
    rolls back everything when it raises. Repositories work only inside the
    block; a unit is used once, and units do not nest.
    """

    practices: Practices
    users: Users
    credentials: Credentials
    sign_in_failures: SignInFailures
    challenges: Challenges
    code_sends: CodeSends
    link_tokens: LinkTokens
    sessions: Sessions
    audit: AuditLog
    terms: TermsAcceptances
    subscriptions: Subscriptions
    entitlements: Entitlements
    cards: Cards
    securemail: SecureMailBilling

    def __enter__(self) -> Self:
        """Begin the unit; `StorageError` if the store cannot."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Commit if the block ended normally, otherwise roll back; never swallow errors."""
        ...


class Storage(Protocol):
    """A store that services take: it makes units of work."""

    def unit_of_work(self) -> UnitOfWork:
        """Return a new, not yet begun unit of work."""
        ...

    def close(self) -> None:
        """Release the store's resources; later units fail with `StorageError`."""
        ...
