"""The domain records: what the portal remembers, as frozen values.

Every record is an ``attrs`` frozen, keyword-only class. Changes make new
values with `attrs.evolve`. Records hold hashes, never secrets: a code, a
link token or a session token exists in plain form only in the message to
its owner. All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from datetime import datetime
from typing import Any, Protocol, TypeVar

import attrs

from securepractice.errors import InvalidInput

__all__ = [
    "AttemptOutcome",
    "AuditEvent",
    "Authenticator",
    "CardOnFile",
    "Challenge",
    "ChallengeState",
    "Credential",
    "DeliveryMethod",
    "Entitlement",
    "Invoice",
    "LinkToken",
    "Phone",
    "PhoneKind",
    "Practice",
    "PracticeSubscription",
    "Purpose",
    "RegistrationStatus",
    "Role",
    "SecureMailPayment",
    "SecureMailPurchase",
    "SendLedger",
    "Session",
    "TermsAcceptance",
    "TokenPurpose",
    "User",
    "Versioned",
    "revised",
]


#: The first bytes hashed into a session's public id: these hashes are session ids only.
_SESSION_ID_CONTEXT = b"securepractice.session-id|"


class Role(enum.Enum):
    """What a user may do (UM-1). ``USER_MANAGER`` is a capability added to a practice user."""

    USER = "user"
    USER_MANAGER = "user_manager"
    SUPPORT = "support"


class RegistrationStatus(enum.Enum):
    """How far a user got through registration (ID-3)."""

    INVITED = "invited"
    REGISTERED_UNVERIFIED = "registered_unverified"
    REGISTERED = "registered"


class PhoneKind(enum.Enum):
    """Which field of the form a number was given in: "Phone" or "Cell Phone"."""

    PHONE = "phone"
    CELL = "cell"


class DeliveryMethod(enum.Enum):
    """How a verification code reaches the user (VF-2)."""

    VOICE = "voice"
    SMS = "sms"


class AttemptOutcome(enum.Enum):
    """How a sign-in attempt ended, for the failure count (LK-1, LK-3, LK-8)."""

    WRONG = "wrong"
    RIGHT = "right"
    NOT_COUNTED = "not_counted"


class Purpose(enum.Enum):
    """What a verification code is for (VF-7): a code works only for its purpose."""

    REGISTRATION = "registration"
    PASSWORD_RESET = "password_reset"
    NEW_PHONE = "new_phone"
    TWO_STEP_OFF = "two_step_off"
    SIGN_IN = "sign_in"


class TokenPurpose(enum.Enum):
    """What a token is for: an e-mailed link (RG-1, RS-1, RC-1), or one the browser keeps.

    ``SIGN_IN`` is a pending sign-in, a right password waiting for its
    second factor (MF-1); ``TRUSTED_DEVICE`` a device the user trusted
    (MF-5). Both are handed to the browser, never e-mailed.
    """

    INVITATION = "invitation"
    PASSWORD_RESET = "password_reset"
    EMAIL_CHANGE = "email_change"
    SIGN_IN = "sign_in"
    TRUSTED_DEVICE = "trusted_device"


class ChallengeState(enum.Enum):
    """Where a verification stands: waiting for a code, done, or void (VF-7, VF-10)."""

    ACTIVE = "active"
    VERIFIED = "verified"
    VOID = "void"


@attrs.frozen(kw_only=True)
class Phone:
    """A phone number in E.164 form and the field it was given in.

    The number is left out of ``repr``, so logs of a record do not carry it.
    """

    number: str = attrs.field(repr=False)
    kind: PhoneKind


@attrs.frozen(kw_only=True)
class Practice:
    """A practice's main account information (ID-2), changed only by support staff (PF-2)."""

    id: str
    name: str
    address: str = ""
    phone: str = ""
    created_at: datetime
    version: int = 0


@attrs.frozen(kw_only=True)
class User:
    """A portal user. ``email`` is the normalised username (ID-1).

    ``practice_id`` is None only for support staff (UM-1). ``locked`` and
    ``deactivated`` are flags beside the registration status (ID-3).
    Under temporary lockout (MF-7) ``locked_until`` is when a temporary lock
    ends, and ``temporary_locks`` how many there were in the current run of
    failures; `securepractice.policy.lockout` decides all three.
    ``pending_email`` is an address the user asked to change to, normalised,
    not in use until they confirm it from the link sent there (RC-1). The
    emails, names and phones are left out of ``repr``: a logged record names
    the user by id only.
    """

    id: str
    practice_id: str | None
    email: str = attrs.field(repr=False)
    pending_email: str | None = attrs.field(default=None, repr=False)
    first_name: str = attrs.field(default="", repr=False)
    last_name: str = attrs.field(default="", repr=False)
    phones: tuple[Phone, ...] = attrs.field(default=(), repr=False)
    time_zone: str | None = None
    ada_number: str | None = None
    specialties: tuple[str, ...] = ()
    roles: frozenset[Role] = frozenset({Role.USER})
    status: RegistrationStatus = RegistrationStatus.INVITED
    two_step_enabled: bool = True
    locked: bool = False
    locked_until: datetime | None = None
    temporary_locks: int = 0
    deactivated: bool = False
    created_at: datetime
    version: int = 0


@attrs.frozen(kw_only=True)
class Authenticator:
    """A user's authenticator app (MF-3): its seed, sealed (MF-10), and the last step used.

    Active only once ``confirmed`` by a first right code; ``last_step`` is
    the latest 30-second step whose code was accepted, so that none is
    accepted twice.
    """

    sealed_seed: bytes = attrs.field(repr=False)
    added_at: datetime
    confirmed: bool = False
    last_step: int | None = None


@attrs.frozen(kw_only=True)
class Credential:
    """A user's password hash and when it was set (PW-5, PW-7), and their second factors.

    ``history`` holds the hashes of earlier passwords, newest first; the
    current ``password_hash`` is not repeated in it. ``compromised_hash``
    is the hash of the password marked compromised (RC-4): the mark names
    the password it was made on, so any new password clears it, and a
    rehash of the same password carries it over. ``authenticator`` is the
    user's authenticator app, if any (MF-3); ``recovery_codes`` the salted
    hashes of their recovery codes, None where one was used (MF-4).
    """

    user_id: str
    password_hash: str = attrs.field(repr=False)
    set_at: datetime
    history: tuple[str, ...] = attrs.field(default=(), repr=False)
    compromised_hash: str | None = attrs.field(default=None, repr=False)
    authenticator: Authenticator | None = None
    recovery_codes: tuple[bytes | None, ...] = attrs.field(default=(), repr=False)
    version: int = 0

    @property
    def compromised(self) -> bool:
        """Whether the current password is marked compromised (RC-4)."""
        return self.compromised_hash is not None and hmac.compare_digest(
            self.compromised_hash.encode(), self.password_hash.encode()
        )


@attrs.frozen(kw_only=True, slots=False)
class Challenge:
    """One two-step verification: the code currently valid, where it went, how it went.

    ``code_hash`` is the HMAC-SHA256 of the current code under the server key,
    or None when no code is valid. ``wrong_attempts`` counts from the first
    code until success and is never reset by a re-send (VF-7). ``version``
    grows by one with every change, so that storage can save a change only
    over the value it was computed from (compare-and-set): two simultaneous
    entries then count two wrong attempts, and one code verifies once.
    ``phone_kind`` is set only for a new-phone verification (PF-4): the field
    ("phone" or "cell") the verified number goes into. ``flow_id`` is the id
    of the flow the verification was made for (the link of an invitation or
    a reset): a verification counts for that flow only, whatever the clock
    says.

    Unlike the other records it has no slots: every code entry makes a new
    version, and a frozen class without slots is built in two thirds of the
    time, which the code round trip measures (P5).
    """

    id: str
    flow_id: str | None = None
    user_id: str
    purpose: Purpose
    method: DeliveryMethod
    destination: str
    code_hash: bytes | None = attrs.field(repr=False)
    issued_at: datetime
    expires_at: datetime
    wrong_attempts: int = 0
    state: ChallengeState = ChallengeState.ACTIVE
    version: int = 0
    phone_kind: PhoneKind | None = None


@attrs.frozen(kw_only=True)
class LinkToken:
    """A token handed to a user, kept only as its hash (RG-1): an e-mailed link's, or the browser's.

    A token is usable while it is not used, not superseded and not expired
    (`securepractice.verification.tokens` decides). ``id`` names the flow the
    link opens: a verification made on this link carries it as its
    ``flow_id``. ``wrong_codes`` counts the wrong authenticator-app and
    recovery codes entered on a pending sign-in (VF-7, MF-1).
    """

    id: str
    token_hash: bytes = attrs.field(repr=False)
    user_id: str
    purpose: TokenPurpose
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    superseded: bool = False
    wrong_codes: int = 0
    version: int = 0


@attrs.frozen(kw_only=True)
class Session:
    """A signed-in session, kept only as the hash of its token (LK-6, LK-7)."""

    token_hash: bytes = attrs.field(repr=False)
    user_id: str
    created_at: datetime
    last_active_at: datetime
    revoked: bool = False
    version: int = 0

    @property
    def id(self) -> str:
        """The session's public name, to list and end it by (RC-5): never its token or hash.

        A second hash of the stored hash, so it leads back to neither, and
        every session has one, those stored before it existed included.
        """
        return hashlib.sha256(_SESSION_ID_CONTEXT + self.token_hash).hexdigest()[:32]


@attrs.frozen(kw_only=True)
class TermsAcceptance:
    """A user's acceptance of one version of the Terms of Use (RG-3)."""

    user_id: str
    version: str
    accepted_at: datetime


@attrs.frozen(kw_only=True)
class Entitlement:
    """A practice product granted to one user of that practice (SB-1)."""

    user_id: str
    product: str
    granted_at: datetime


@attrs.frozen(kw_only=True)
class AuditEvent:
    """One security-relevant event, append-only (AU-1); never holds a secret (AU-2).

    ``action`` is a stable dotted name such as ``sign_in`` or ``code.sent``;
    ``outcome`` is ``ok`` or the reason it failed; ``detail`` holds further
    non-secret facts as text. ``client_address``, ``user_agent`` and
    ``request_id`` are those of the request that caused it, when the
    application gave them (`~securepractice.context.RequestContext`, CX-1).
    """

    id: str
    at: datetime
    action: str
    outcome: str
    actor_id: str | None = None
    subject_id: str | None = None
    practice_id: str | None = None
    detail: tuple[tuple[str, str], ...] = ()
    client_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


def _cents(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse money that is not a whole, non-negative number of cents (UM-6)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(
            f"{attribute.name} must be a whole, non-negative number of cents",
            field=attribute.name,
            code="money.not_cents",
        )


_LAST_FOUR = 4


def _last_four(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse anything but the last four digits of a card number."""
    if not (
        isinstance(value, str) and len(value) == _LAST_FOUR and value.isascii() and value.isdigit()
    ):
        raise InvalidInput(
            "last_four must be exactly the last four digits of the card",
            field=attribute.name,
            code="card.last_four_invalid",
        )


@attrs.frozen(kw_only=True)
class PracticeSubscription:
    """A product a practice subscribes to (SB-1): an open set of names such as ``securemail``."""

    practice_id: str
    product: str
    subscribed_at: datetime


@attrs.frozen(kw_only=True)
class CardOnFile:
    """A user's payment card as the processor knows it (UM-6).

    Only the processor's token and the last four digits are kept; never the
    card number. The token is a credential at the processor, so it stays out
    of ``repr``.
    """

    user_id: str
    processor_token: str = attrs.field(repr=False)
    last_four: str = attrs.field(validator=_last_four)
    added_at: datetime


@attrs.frozen(kw_only=True)
class SecureMailPurchase:
    """SecureMail bought by a User Manager (``payer_id``) for a user (``account_id``) (UM-6).

    A purchase is *pending* from the moment it is decided until its first
    month's payment is recorded, then active until it ends. At most one
    purchase per account has not ended (``ended_at`` is None), pending or
    active; the payer may be the account itself.

    ``first_month_card`` is what makes a purchase pending: the processor's
    token of the card its first month is charged to, kept until that month
    is recorded so that a retry after a crash repeats the very same charge
    (ST-2). Like a card on file's token, it stays out of ``repr``.
    """

    id: str
    practice_id: str
    payer_id: str
    account_id: str
    monthly_cents: int = attrs.field(validator=_cents)
    purchased_at: datetime
    ended_at: datetime | None = None
    first_month_card: str | None = attrs.field(default=None, repr=False)
    version: int = 0

    @property
    def pending(self) -> bool:
        """Whether the first month's payment is not recorded yet (see the class)."""
        return self.first_month_card is not None


@attrs.frozen(kw_only=True)
class SecureMailPayment:
    """One charge to the payer's card for a SecureMail purchase (UM-6, UM-7)."""

    id: str
    purchase_id: str
    payer_id: str
    account_id: str
    amount_cents: int = attrs.field(validator=_cents)
    paid_at: datetime
    processor_reference: str = ""


@attrs.frozen(kw_only=True)
class Invoice:
    """The invoice of one SecureMail payment, for one account and period (UM-7)."""

    id: str
    payment_id: str
    payer_id: str
    account_id: str
    amount_cents: int = attrs.field(validator=_cents)
    period_start: datetime
    period_end: datetime
    issued_at: datetime


@attrs.frozen(kw_only=True)
class SendLedger:
    """One user's one-time codes across verifications: sends (VF-8) and wrong entries (MF-8).

    ``sends`` holds the send times still inside the window, oldest first;
    `securepractice.verification.codes.record_send` decides what it keeps.
    ``wrong_codes`` counts the wrong codes of every kind entered in a row,
    and ``paused_until`` is when codes are accepted again after a run of
    them; `securepractice.verification.guesses` decides both.
    """

    user_id: str
    sends: tuple[datetime, ...] = ()
    wrong_codes: int = 0
    paused_until: datetime | None = None
    version: int = 0


class Versioned(Protocol):
    """A record that storage saves only over the version it was computed from."""

    @property
    def version(self) -> int:
        """Grows by one with every change of the record."""
        ...


_R = TypeVar("_R", bound=Versioned)


def revised(record: _R, **changes: Any) -> _R:  # noqa: ANN401 - any field of any record
    """Return ``record`` with ``changes`` and the next version: what a transition returns.

    Storage saves it with ``expected_version=record.version`` (the version it
    was computed from), and refuses with `~securepractice.errors.Conflict`
    when another unit saved first.
    """
    return attrs.evolve(record, version=record.version + 1, **changes)  # type: ignore[misc]
