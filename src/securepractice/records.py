"""The domain records: what the portal remembers, as frozen values.

Every record is an ``attrs`` frozen, keyword-only class. Changes make new
values with `attrs.evolve`. Records hold hashes, never secrets: a code, a
link token or a session token exists in plain form only in the message to
its owner. All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Protocol, TypeVar

import attrs

from securepractice.errors import InvalidInput

__all__ = [
    "AttemptOutcome",
    "AuditEvent",
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


class TokenPurpose(enum.Enum):
    """What an e-mailed link is for (RG-1, RS-1)."""

    INVITATION = "invitation"
    PASSWORD_RESET = "password_reset"


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
    ``deactivated`` are flags beside the registration status (ID-3). The
    email, names and phones are left out of ``repr``: a logged record names
    the user by id only.
    """

    id: str
    practice_id: str | None
    email: str = attrs.field(repr=False)
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
    deactivated: bool = False
    created_at: datetime
    version: int = 0


@attrs.frozen(kw_only=True)
class Credential:
    """A user's password hash and when it was set (PW-5, PW-7).

    ``history`` holds the hashes of earlier passwords, newest first; the
    current ``password_hash`` is not repeated in it.
    """

    user_id: str
    password_hash: str = attrs.field(repr=False)
    set_at: datetime
    history: tuple[str, ...] = attrs.field(default=(), repr=False)
    version: int = 0


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
    """An e-mailed link's token, kept only as its hash (RG-1).

    A token is usable while it is not used, not superseded and not expired
    (`securepractice.verification.tokens` decides). ``id`` names the flow the
    link opens: a verification made on this link carries it as its
    ``flow_id``.
    """

    id: str
    token_hash: bytes = attrs.field(repr=False)
    user_id: str
    purpose: TokenPurpose
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    superseded: bool = False
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
    non-secret facts as text.
    """

    id: str
    at: datetime
    action: str
    outcome: str
    actor_id: str | None = None
    subject_id: str | None = None
    practice_id: str | None = None
    detail: tuple[tuple[str, str], ...] = ()


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
    """When codes were last sent to one user, for the send limit (VF-8).

    ``sends`` holds the send times still inside the window, oldest first;
    `securepractice.verification.codes.record_send` decides what it keeps.
    """

    user_id: str
    sends: tuple[datetime, ...] = ()
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
