"""The storage ports: one small protocol per kind of record the flows keep (ST-1).

A service takes a `Storage`, opens one `UnitOfWork` per user action, and
reaches every repository through it. The unit commits when its ``with``
block ends normally and rolls everything back when it raises (ST-2), so a
step persists completely or not at all.

The store remembers; it never decides. A record with a life cycle is read
with ``get``, changed by a pure transition of the core (which returns it
with the next ``version``), and written back with
``save(record, expected_version=...)``: the store writes it only if the
stored version is still the one the change was computed from, and raises
`~securepractice.errors.Conflict` otherwise. That is exact under any
concurrency on any engine, without assuming units run one at a time. The one
other primitive is the atomic sign-in counter (`SignInFailures.start` before
argon2 runs, `finish` after, LK-4).

Housekeeping (OP-2) goes through the records with a life cycle a page at a
time (``page``, in order of key) and asks the core which are past use; the
store then removes those (``delete``), each only if its version is still
the one read, so a record that changed meanwhile stays for the next run.
No expiry test is in the store.

Writing an adapter needs no inheritance: a class with these methods is one,
and ``securepractice.testing`` holds the contract suite that proves it.
Errors are the library's own: `~securepractice.errors.AlreadyExists` for a
duplicate, `~securepractice.errors.NotFound` for a save of a missing record
or a reference to one, `~securepractice.errors.Conflict` for a save over a
moved version, and `~securepractice.errors.StorageError` for anything the
store itself could not do. All datetimes are timezone-aware.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol

from typing_extensions import Self

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
)

__all__ = [
    "AccountRecords",
    "AuditLog",
    "AuditSinks",
    "Cards",
    "Challenges",
    "ClientFailures",
    "CodeSends",
    "Credentials",
    "Entitlements",
    "LinkTokens",
    "Practices",
    "ProductRecords",
    "SecureMailBilling",
    "Sessions",
    "SignInFailures",
    "Storage",
    "Subscriptions",
    "TermsAcceptances",
    "UnitOfWork",
    "Users",
    "VerificationRecords",
]


class Practices(Protocol):
    """Practices and their main account information (ID-2, PF-2)."""

    def add(self, practice: Practice) -> None:
        """Store a new practice; `AlreadyExists` (``practice.exists``) if its id is taken."""
        ...

    def get(self, practice_id: str) -> Practice | None:
        """Return the practice with this id, or None."""
        ...

    def save(self, practice: Practice, *, expected_version: int) -> None:
        """Replace the stored practice if its version is ``expected_version``.

        `NotFound` if there is none, `Conflict` if its version moved.
        """
        ...


class Users(Protocol):
    """Users: email as the unique username, profile, roles, status and flags (ID-1..ID-3).

    A user's ``email`` is what `~securepractice.policy.identity.normalize_email`
    returns, and the store keys on it exactly, with no folding of its own:
    two emails are one user exactly when the core says they are equal (ID-2).
    """

    def add(self, user: User) -> None:
        """Store a new user.

        Raises `AlreadyExists` with code ``user.email_taken`` when another user
        has the same email, ``user.exists`` when the id is taken, and
        `NotFound` when its practice does not exist.
        """
        ...

    def get(self, user_id: str) -> User | None:
        """Return the user with this id, or None."""
        ...

    def get_by_email(self, email: str) -> User | None:
        """Return the user whose email is exactly ``email`` (a normalised email), or None."""
        ...

    def save(self, user: User, *, expected_version: int) -> None:
        """Replace the stored user if its version is ``expected_version``.

        `NotFound` if there is none, `Conflict` if its version moved, and
        `AlreadyExists` (``user.email_taken``) when the new email is another user's.
        """
        ...

    def list_for_practice(self, practice_id: str) -> Sequence[User]:
        """Return every user of the practice, ordered by email (UM-3)."""
        ...

    def list_staff(self) -> Sequence[User]:
        """Return every user of no practice (the support staff), ordered by email (OP-1)."""
        ...


class Credentials(Protocol):
    """Password hashes, when they were set, and the password history (PW-4, PW-5, PW-7)."""

    def get(self, user_id: str) -> Credential | None:
        """Return the user's credential, or None before a password was ever set."""
        ...

    def add(self, credential: Credential) -> None:
        """Store the user's first credential; `AlreadyExists` (``credential.exists``) if one is."""
        ...

    def save(self, credential: Credential, *, expected_version: int) -> None:
        """Replace the user's credential if its version is ``expected_version``.

        `NotFound` if there is none, `Conflict` if its version moved.
        """
        ...


class SignInFailures(Protocol):
    """Consecutive failed sign-ins per counter key, and the attempts in flight (LK-1..LK-4, IN-4).

    A key is a user's id, or for an email address that no account has,
    the email's key: ``"email:"`` and a keyed hash of the normalised
    address under the portal secret
    (`~securepractice.policy.lockout.email_lookup`), so that the store
    never holds the address. Every sign-in counts, an unknown email
    included, so that it makes the same writes (IN-4). A store takes any
    key, naming a user or not, and makes its counter at the first start
    or finish.

    Not a versioned record: an attempt is counted before the password is
    checked, so the count is an atomic counter. Each attempt is started
    (`start`, before argon2 runs) and finished with its outcome (`finish`,
    after). An attempt that never finishes, because storage failed in
    between, stops counting once it started before ``abandoned_before``:
    it was neither a wrong nor a right password as far as the count knows
    (DP-5, LK-8).
    """

    def start(self, key: str, *, now: datetime, abandoned_before: datetime) -> int:
        """Count one attempt in flight on ``key``, started at ``now``, atomically (LK-4).

        Attempts in flight that started before ``abandoned_before`` are
        dropped first. Returns the recorded failures plus the attempts in
        flight, this one included: N simultaneous calls return N different
        numbers.
        """
        ...

    def finish(self, key: str, *, started: datetime, outcome: AttemptOutcome) -> int:
        """Close the attempt started at ``started`` with its outcome, atomically; return failures.

        ``WRONG`` adds one failure, ``RIGHT`` clears the failures (LK-3),
        ``NOT_COUNTED`` leaves them (LK-8). An attempt no longer in flight
        (it was dropped as abandoned) still records its outcome.
        """
        ...

    def count(self, key: str) -> int:
        """Return the recorded failures of ``key``; 0 when none was recorded."""
        ...

    def reset(self, key: str) -> None:
        """Clear the recorded failures of ``key`` (LK-2)."""
        ...


class Challenges(Protocol):
    """Two-step verifications and their current code hash (VF-4..VF-7, VF-10).

    `securepractice.verification.codes` decides every change; the store
    keeps what it returns.
    """

    def add(self, challenge: Challenge) -> None:
        """Store a new verification; `AlreadyExists` (``challenge.exists``) if its id is taken."""
        ...

    def get(self, challenge_id: str) -> Challenge | None:
        """Return the verification with this id, or None."""
        ...

    def save(self, challenge: Challenge, *, expected_version: int) -> None:
        """Replace the stored verification if its version is ``expected_version``.

        `NotFound` if there is none, `Conflict` if its version moved: of
        simultaneous entries of one code, exactly one is saved (RS-5, VF-7).
        """
        ...

    def latest(self, user_id: str, purpose: Purpose) -> Challenge | None:
        """Return the verification of the user and ``purpose`` added last, or None."""
        ...

    def page(self, *, after: str | None = None, limit: int) -> Sequence[Challenge]:
        """Return up to ``limit`` verifications in order of id, those after id ``after`` (OP-2)."""
        ...

    def delete(self, challenges: Sequence[Challenge]) -> int:
        """Remove each verification still at the version given; return how many went (OP-2)."""
        ...


class CodeSends(Protocol):
    """Each user's ledger of recent code sends, for the send limit (VF-8)."""

    def get(self, user_id: str) -> SendLedger | None:
        """Return the user's ledger, or None before their first send."""
        ...

    def add(self, ledger: SendLedger) -> None:
        """Store a user's first ledger; `AlreadyExists` (``send_ledger.exists``) if one is."""
        ...

    def save(self, ledger: SendLedger, *, expected_version: int) -> None:
        """Replace the user's ledger if its version is ``expected_version``.

        `NotFound` if there is none, `Conflict` if its version moved: two
        simultaneous sends cannot both take the last place under the limit.
        """
        ...

    def page(self, *, after: str | None = None, limit: int) -> Sequence[SendLedger]:
        """Return up to ``limit`` ledgers in order of user id, those after ``after`` (OP-2)."""
        ...

    def delete(self, ledgers: Sequence[SendLedger]) -> int:
        """Remove each ledger still at the version given; return how many went (OP-2)."""
        ...


class LinkTokens(Protocol):
    """E-mailed link tokens, kept by their hash (RG-1, RG-4, RG-6, RS-1, RS-3).

    `securepractice.verification.tokens` decides whether a token is usable,
    uses it up and supersedes it; the store keeps what it returns. A token's
    ``user_id`` is a key that need not name a stored user: "Forgot password"
    keeps a link for an address without an account under the address's key,
    so that it writes what a known address writes (IN-4).
    """

    def add(self, token: LinkToken) -> None:
        """Store a new token; `AlreadyExists` (``link_token.exists``) if its hash or id is taken."""
        ...

    def get(self, token_hash: bytes) -> LinkToken | None:
        """Return the token with this hash, or None."""
        ...

    def save(self, token: LinkToken, *, expected_version: int) -> None:
        """Replace the stored token if its version is ``expected_version``.

        `NotFound` if there is none, `Conflict` if its version moved: of
        simultaneous uses of one link, exactly one is saved (RS-5).
        """
        ...

    def list_for_user(self, user_id: str, purpose: TokenPurpose) -> Sequence[LinkToken]:
        """Return every token of the user for ``purpose``, oldest first."""
        ...

    def page(self, *, after: bytes | None = None, limit: int) -> Sequence[LinkToken]:
        """Return up to ``limit`` tokens in order of hash, those after hash ``after`` (OP-2)."""
        ...

    def delete(self, tokens: Sequence[LinkToken]) -> int:
        """Remove each token still at the version given; return how many went (OP-2)."""
        ...


class Sessions(Protocol):
    """Signed-in sessions, kept by the hash of their token (LK-6, LK-7)."""

    def add(self, session: Session) -> None:
        """Store a new session; `AlreadyExists` (``session.exists``) if its hash is taken."""
        ...

    def get(self, token_hash: bytes) -> Session | None:
        """Return the session with this token hash, or None."""
        ...

    def save(self, session: Session, *, expected_version: int) -> None:
        """Replace the stored session if its version is ``expected_version``.

        `NotFound` if there is none, `Conflict` if its version moved.
        """
        ...

    def list_for_user(self, user_id: str) -> Sequence[Session]:
        """Return every session of the user, oldest first."""
        ...

    def page(self, *, after: bytes | None = None, limit: int) -> Sequence[Session]:
        """Return up to ``limit`` sessions in order of token hash, those after ``after`` (OP-2)."""
        ...

    def delete(self, sessions: Sequence[Session]) -> int:
        """Remove each session still at the version given; return how many went (OP-2)."""
        ...


class AuditLog(Protocol):
    """Security events, append-only: there is no way to change or remove one (AU-1).

    Two reads: `events`, by time, for people and exports (OP-3); and `feed`,
    in the order events were committed, for forwarding them (CX-2).
    """

    def append(self, event: AuditEvent) -> None:
        """Record an event; `AlreadyExists` (``audit.exists``) if its id is taken."""
        ...

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
        """Return the events matching every filter given, oldest first.

        ``since`` is inclusive and ``until`` exclusive, so that ranges that
        meet do not overlap. Events of one instant come in the order they
        were appended. For pages: ``after`` is the id of the last event of
        the page before (the events after it in this order come), and
        ``limit`` the most to return; an ``after`` that names no event gives
        none.
        """
        ...

    def feed(self, *, after: str | None = None, limit: int) -> Sequence[tuple[str, AuditEvent]]:
        """Return up to ``limit`` committed events after position ``after``, in a fixed order.

        Each event comes with its position, an opaque text; None starts at
        the first event. An event that commits later always comes after
        every position returned before it, so a reader that resumes from the
        last position it was given misses none (CX-2). The order is commit
        order where writers take turns (SQLite, memory), and the order of
        the units' transaction ids on PostgreSQL, which reads only what no
        running unit can still precede. `InvalidInput` (``audit.bad_position``)
        for a position that is not one of the store's.
        """
        ...


class AuditSinks(Protocol):
    """Where each forwarder of the audit log stands, by its sink's name (CX-2).

    A sink's position is the `AuditLog.feed` position of the last event it
    has taken, and ``failing`` whether it is in an outage; a sink never seen
    has no position and is not failing.
    """

    def position(self, sink: str) -> str | None:
        """Return the position of the last event the sink took, or None."""
        ...

    def advance(self, sink: str, *, expected: str | None, position: str) -> None:
        """Move the sink to ``position`` if it is still at ``expected``; `Conflict` otherwise."""
        ...

    def set_failing(self, sink: str, *, failing: bool) -> bool:
        """Record whether the sink is in an outage; return whether that changed, atomically.

        Of simultaneous calls with one value, exactly one returns True: the
        one forwarder that audits the change.
        """
        ...


class ClientFailures(Protocol):
    """Failed sign-ins by client, for the sign-in throttle (CX-3).

    A key is opaque to the store (a keyed hash of a client's address). Each
    failure is its own row, so simultaneous records are all counted.
    """

    def record(self, key: str, at: datetime) -> None:
        """Count one failure of ``key`` at ``at``."""
        ...

    def count_since(self, key: str, since: datetime) -> int:
        """Return how many failures of ``key`` are at or after ``since``."""
        ...

    def delete_before(self, before: datetime, *, limit: int) -> int:
        """Remove up to ``limit`` failures of any key before ``before``; return how many (OP-2)."""
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


class SecureMailBilling(Protocol):
    """SecureMail purchases, payments and invoices, in integer cents (UM-6, UM-7)."""

    def add_purchase(self, purchase: SecureMailPurchase) -> None:
        """Store a purchase.

        `AlreadyExists` with code ``securemail.already_paid`` when the account
        has an active purchase already (UM-6).
        """
        ...

    def active_purchase(self, account_id: str) -> SecureMailPurchase | None:
        """Return the account's purchase whose ``ended_at`` is None, or None."""
        ...

    def active_purchases(self) -> Sequence[SecureMailPurchase]:
        """Return every purchase not yet ended, oldest first: what monthly billing charges."""
        ...

    def purchases_paid_by(self, payer_id: str) -> Sequence[SecureMailPurchase]:
        """Return every purchase the user pays or paid for, oldest first."""
        ...

    def save_purchase(self, purchase: SecureMailPurchase, *, expected_version: int) -> None:
        """Replace the stored purchase if its version is ``expected_version``.

        `NotFound` if there is none, `Conflict` if its version moved.
        """
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


class AccountRecords(Protocol):
    """What the account flows keep: who a user is and how they sign in (ID, PW, LK, RG, CX-3)."""

    practices: Practices
    users: Users
    credentials: Credentials
    sign_in_failures: SignInFailures
    client_failures: ClientFailures
    sessions: Sessions
    terms: TermsAcceptances


class VerificationRecords(Protocol):
    """What proving an identity keeps: codes, the send limit, e-mailed links (VF, RS, RG-4)."""

    challenges: Challenges
    code_sends: CodeSends
    link_tokens: LinkTokens


class ProductRecords(Protocol):
    """What a practice buys and who may use it: products, cards, SecureMail (SB, UM-6, UM-7)."""

    subscriptions: Subscriptions
    entitlements: Entitlements
    cards: Cards
    securemail: SecureMailBilling


class UnitOfWork(AccountRecords, VerificationRecords, ProductRecords, Protocol):
    """One atomic step of a flow, and the way to every repository (ST-2).

    The repositories come in three groups, by the flows that use them, and
    the audit log that every flow writes to, with the positions of its
    forwarders (``audit_sinks``, CX-2). Use the unit as a context
    manager: it commits when the block ends normally and rolls back
    everything when it raises. Repositories work only inside the block; a
    unit is used once, and units do not nest.
    """

    audit: AuditLog
    audit_sinks: AuditSinks

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
    """A store that services take: it makes units of work.

    ``persistent`` says whether what it keeps outlives the process: a
    persistent store shared by several processes needs the portal secret
    (DP-2), which it remembers by fingerprint only.
    """

    @property
    def persistent(self) -> bool:
        """Whether records outlive the process (a file or a server, not memory)."""
        ...

    def remember_secret(self, fingerprint: str, *, replacing: str | None = None) -> None:
        """Keep the portal secret's fingerprint; refuse another one (DP-2).

        The first call stores ``fingerprint``. Later calls with the same one
        do nothing; with another one they raise
        `~securepractice.errors.SettingsError` (``settings.secret_mismatch``),
        unless ``replacing`` is the fingerprint stored: then the new one
        takes its place (key rotation).
        """
        ...

    def unit_of_work(self, *, durable: bool = True) -> UnitOfWork:
        """Return a new, not yet begun unit of work.

        A unit that is not ``durable`` commits as any other, visible to every
        unit after it, but need not survive a power cut: the store may skip
        flushing it to disk (SQLite's ``synchronous=NORMAL``, PostgreSQL's
        ``synchronous_commit=off``). Sign-in starts its attempts so (LK-4):
        an attempt in flight means nothing once its process is gone, and the
        durable unit that finishes it flushes the start with it (DP-5).
        """
        ...

    def close(self) -> None:
        """Release the store's resources; later units fail with `StorageError`."""
        ...
