"""One two-step verification as a pure state machine over `Challenge` records.

Rules VF-4 to VF-8 and VF-10 of SPEC.md. Every operation takes the current
`Challenge` (and ``now``) and returns the next one together with what
happened; nothing here stores, sends or reads a clock. The caller saves the
returned challenge (compare-and-set on ``version``), sends the code of a
`CodeIssued` and audits the outcome.

A challenge's life::

    issue ──> ACTIVE ──verify right──> VERIFIED
              │  ^ │
              │  │ └─ wrong entry number max_wrong_codes ──> VOID
              │  └── resend / change_method (new code, old one dead)
              └── delivery_failed: no code until resend / change_method

While ACTIVE, at most one code works: the latest one issued, until it
expires or its delivery fails. Wrong entries count from the first code of
the challenge until success; neither re-sending nor changing the method
resets them (VF-7).

Codes are ``code_digits`` decimal digits drawn uniformly with `secrets`, and
are stored only as HMAC-SHA256 under the settings' ``code_key``. The MAC
also covers the challenge id, the user and the purpose, so a code (or a
copied hash) works only for the verification it was issued for.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import attrs

from securepractice.clock import require_utc
from securepractice.errors import InvalidInput, InvalidState, RateLimited
from securepractice.records import Challenge, ChallengeState, Purpose
from securepractice.secret import Secret
from securepractice.settings import VerificationRules
from securepractice.verification.phones import DeliveryOption

__all__ = [
    "CodeIssued",
    "VerifyOutcome",
    "VerifyResult",
    "cancel",
    "change_method",
    "check_send_rate",
    "code_hash",
    "delivery_failed",
    "issue",
    "new_code",
    "resend",
    "send_window_start",
    "verify",
]

#: An entry longer than this is not a code, whatever it holds; it is not
#: normalised, so that a huge entry costs nothing.
_MAX_ENTRY_LENGTH = 64
_SEPARATORS = frozenset(" -\u00a0\u2009\u202f")
_MAC_CONTEXT = b"securepractice.verification-code.v1"


class VerifyOutcome(enum.Enum):
    """What entering a code did (VF-7). Only ``VERIFIED`` is a success.

    ``WRONG_CODE`` and ``TOO_MANY_WRONG`` counted a wrong entry; the latter
    made the challenge void. The others changed nothing: ``EXPIRED`` (the
    code is too old: re-send), ``NO_ACTIVE_CODE`` (its delivery failed:
    re-send or change method), ``MALFORMED`` (not ``code_digits`` digits:
    it cannot be the code, so it is not counted), ``ALREADY_VERIFIED``,
    ``VOID``, ``WRONG_USER`` and ``WRONG_PURPOSE`` (the challenge is not the
    one of this user and purpose).
    """

    VERIFIED = "verified"
    WRONG_CODE = "wrong_code"
    TOO_MANY_WRONG = "too_many_wrong"
    EXPIRED = "expired"
    NO_ACTIVE_CODE = "no_active_code"
    MALFORMED = "malformed"
    ALREADY_VERIFIED = "already_verified"
    VOID = "void"
    WRONG_USER = "wrong_user"
    WRONG_PURPOSE = "wrong_purpose"


@attrs.frozen(kw_only=True)
class CodeIssued:
    """A new code: the challenge to save, and the code to put in the message.

    ``code`` is wrapped in `Secret`: reveal it only to write the SMS or the
    voice call's text (VF-4).
    """

    challenge: Challenge
    code: Secret[str]


@attrs.frozen(kw_only=True)
class VerifyResult:
    """The outcome of entering a code, and the challenge to save after it."""

    challenge: Challenge
    outcome: VerifyOutcome
    attempts_left: int

    @property
    def verified(self) -> bool:
        """Whether the code was right."""
        return self.outcome is VerifyOutcome.VERIFIED


def new_code(digits: int) -> Secret[str]:
    """Return a uniformly random code of ``digits`` decimal digits, zero-padded (VF-4)."""
    return Secret(str(secrets.randbelow(10**digits)).zfill(digits))


def _field(value: str) -> bytes:
    data = value.encode()
    return len(data).to_bytes(4, "big") + data


def code_hash(
    code: Secret[str], *, challenge_id: str, user_id: str, purpose: Purpose, key: Secret[bytes]
) -> bytes:
    """Return the HMAC-SHA256 of ``code`` bound to one challenge, user and purpose."""
    message = _MAC_CONTEXT + b"".join(
        _field(part) for part in (challenge_id, user_id, purpose.value, code.reveal())
    )
    return hmac.new(key.reveal(), message, hashlib.sha256).digest()


def send_window_start(*, now: datetime, rules: VerificationRules) -> datetime:
    """Return the earliest send time that still counts toward the limit at ``now`` (VF-8).

    Ask storage for the user's sends since this time and pass them to
    `check_send_rate`.
    """
    return require_utc(now) - rules.send_window


def check_send_rate(sends: Iterable[datetime], *, now: datetime, rules: VerificationRules) -> None:
    """Refuse a new code for a user who was sent ``send_limit`` codes within the window (VF-8).

    ``sends`` are the times this user was sent a code, across all their
    verifications; times before the window are ignored (times after ``now``,
    from a server whose clock runs ahead, count). Raises `RateLimited` whose
    ``retry_after`` is the time until the oldest counted send leaves the
    window.
    """
    now = require_utc(now)
    start = now - rules.send_window
    recent = sorted(t for t in sends if t > start)
    if len(recent) < rules.send_limit:
        return
    frees_at = recent[len(recent) - rules.send_limit] + rules.send_window
    retry_after = frees_at - now
    minutes = -(-retry_after // timedelta(minutes=1))
    raise RateLimited(
        f"Too many codes were sent. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        retry_after=retry_after,
        code="verification.rate_limited",
    )


def _require_offered(option: DeliveryOption, offered: Sequence[DeliveryOption]) -> None:
    if option not in offered:
        raise InvalidInput(
            "this delivery option is not one the user's phone numbers allow",
            field="method",
            code="verification.option_not_offered",
        )


def _require_active(challenge: Challenge, action: str) -> None:
    if challenge.state is not ChallengeState.ACTIVE:
        raise InvalidState(
            f"cannot {action}: this verification is {challenge.state.value}; "
            "start a new verification",
            code="verification.not_active",
        )


def _with_new_code(
    challenge: Challenge,
    *,
    now: datetime,
    rules: VerificationRules,
    version: int,
) -> CodeIssued:
    code = new_code(rules.code_digits)
    return CodeIssued(
        challenge=attrs.evolve(
            challenge,
            code_hash=code_hash(
                code,
                challenge_id=challenge.id,
                user_id=challenge.user_id,
                purpose=challenge.purpose,
                key=rules.code_key,
            ),
            issued_at=now,
            expires_at=now + rules.code_lifetime,
            version=version,
        ),
        code=code,
    )


def issue(
    *,
    user_id: str,
    purpose: Purpose,
    option: DeliveryOption,
    offered: Sequence[DeliveryOption],
    recent_sends: Iterable[datetime],
    now: datetime,
    rules: VerificationRules,
    challenge_id: str | None = None,
) -> CodeIssued:
    """Start a verification for ``user_id`` and ``purpose`` and issue its first code.

    ``option`` must be one of ``offered`` (from `delivery_options`);
    ``recent_sends`` are the user's send times since `send_window_start`
    (VF-8). Starting a new verification does not end an old one: `cancel`
    it.
    """
    now = require_utc(now)
    _require_offered(option, offered)
    check_send_rate(recent_sends, now=now, rules=rules)
    started = Challenge(
        id=challenge_id or uuid.uuid4().hex,
        user_id=user_id,
        purpose=purpose,
        method=option.method,
        destination=option.destination,
        code_hash=None,
        issued_at=now,
        expires_at=now,
    )
    return _with_new_code(started, now=now, rules=rules, version=0)


def resend(
    challenge: Challenge,
    *,
    recent_sends: Iterable[datetime],
    now: datetime,
    rules: VerificationRules,
) -> CodeIssued:
    """Issue a new code by the method currently chosen; the previous code dies at once (VF-5)."""
    now = require_utc(now)
    _require_active(challenge, "re-send a code")
    check_send_rate(recent_sends, now=now, rules=rules)
    return _with_new_code(challenge, now=now, rules=rules, version=challenge.version + 1)


def change_method(
    challenge: Challenge,
    *,
    option: DeliveryOption,
    offered: Sequence[DeliveryOption],
    recent_sends: Iterable[datetime],
    now: datetime,
    rules: VerificationRules,
) -> CodeIssued:
    """Switch to another offered option and issue a new code there; the old one dies (VF-6).

    The option must differ from the current one in method or destination;
    to get a new code the same way, `resend`.
    """
    now = require_utc(now)
    _require_active(challenge, "change the delivery method")
    _require_offered(option, offered)
    if (option.method, option.destination) == (challenge.method, challenge.destination):
        raise InvalidInput(
            "this is the delivery option already chosen: re-send the code instead",
            field="method",
            code="verification.same_option",
        )
    check_send_rate(recent_sends, now=now, rules=rules)
    return _with_new_code(
        attrs.evolve(challenge, method=option.method, destination=option.destination),
        now=now,
        rules=rules,
        version=challenge.version + 1,
    )


def delivery_failed(challenge: Challenge) -> Challenge:
    """Void the code just issued because its SMS or call failed (VF-10).

    The verification stays open with no working code: the user may re-send
    or change method. Earlier codes were void already and stay so.
    """
    _require_active(challenge, "mark a delivery failed")
    return attrs.evolve(challenge, code_hash=None, version=challenge.version + 1)


def cancel(challenge: Challenge) -> Challenge:
    """End an open verification (the user started a new one); its code stops working."""
    if challenge.state is ChallengeState.VOID:
        return challenge
    _require_active(challenge, "cancel")
    return attrs.evolve(
        challenge, state=ChallengeState.VOID, code_hash=None, version=challenge.version + 1
    )


def _digits(entry: str, length: int) -> str | None:
    """Return ``entry`` as ASCII digits, spaces and dashes removed; None if it cannot be a code.

    Any Unicode decimal digit counts as its value, so a code typed on an
    Arabic or Devanagari keypad works.
    """
    if len(entry) > _MAX_ENTRY_LENGTH:
        return None
    kept = [c for c in entry.strip() if c not in _SEPARATORS]
    if len(kept) != length or not all(c.isdecimal() for c in kept):
        return None
    return "".join(str(unicodedata.decimal(c)) for c in kept)


def _comparable_hash(
    challenge: Challenge, *, user_id: str, purpose: Purpose, now: datetime
) -> bytes | VerifyOutcome:
    """Return the hash an entry is compared with, or why there is none to compare with."""
    checks = (
        (challenge.user_id != user_id, VerifyOutcome.WRONG_USER),
        (challenge.purpose is not purpose, VerifyOutcome.WRONG_PURPOSE),
        (challenge.state is ChallengeState.VERIFIED, VerifyOutcome.ALREADY_VERIFIED),
        (challenge.state is ChallengeState.VOID, VerifyOutcome.VOID),
        (now >= challenge.expires_at, VerifyOutcome.EXPIRED),
    )
    refused = next((outcome for failed, outcome in checks if failed), None)
    if refused is not None:
        return refused
    return VerifyOutcome.NO_ACTIVE_CODE if challenge.code_hash is None else challenge.code_hash


def verify(
    challenge: Challenge,
    entry: str | Secret[str],
    *,
    user_id: str,
    purpose: Purpose,
    now: datetime,
    rules: VerificationRules,
) -> VerifyResult:
    """Check a code the user entered, in constant time; return the outcome and the next challenge.

    A right code verifies once (VF-7): the challenge becomes VERIFIED and no
    code works on it again. A wrong one counts; at ``max_wrong_codes`` the
    challenge becomes VOID. An expired code is never compared (VF-4).
    """
    now = require_utc(now)
    text = entry.reveal() if isinstance(entry, Secret) else entry
    if not isinstance(text, str):
        raise InvalidInput(
            f"a code must be text, not {type(text).__name__}", field="code", code="code.not_text"
        )

    def result(outcome: VerifyOutcome, updated: Challenge = challenge) -> VerifyResult:
        left = max(rules.max_wrong_codes - updated.wrong_attempts, 0)
        if updated.state is not ChallengeState.ACTIVE:
            left = 0
        return VerifyResult(challenge=updated, outcome=outcome, attempts_left=left)

    stored = _comparable_hash(challenge, user_id=user_id, purpose=purpose, now=now)
    if isinstance(stored, VerifyOutcome):
        return result(stored)
    digits = _digits(text, rules.code_digits)
    if digits is None:
        return result(VerifyOutcome.MALFORMED)
    expected = code_hash(
        Secret(digits),
        challenge_id=challenge.id,
        user_id=challenge.user_id,
        purpose=challenge.purpose,
        key=rules.code_key,
    )
    version = challenge.version + 1
    if hmac.compare_digest(expected, stored):
        done = attrs.evolve(
            challenge, state=ChallengeState.VERIFIED, code_hash=None, version=version
        )
        return result(VerifyOutcome.VERIFIED, done)
    wrong = challenge.wrong_attempts + 1
    if wrong >= rules.max_wrong_codes:
        void = attrs.evolve(
            challenge,
            state=ChallengeState.VOID,
            code_hash=None,
            wrong_attempts=wrong,
            version=version,
        )
        return result(VerifyOutcome.TOO_MANY_WRONG, void)
    return result(
        VerifyOutcome.WRONG_CODE, attrs.evolve(challenge, wrong_attempts=wrong, version=version)
    )
