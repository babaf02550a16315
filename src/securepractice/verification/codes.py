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
are stored only as a keyed BLAKE2b-256 hash under the settings'
``code_key`` (a keyed hash built for this, faster than HMAC and as strong).
The hash also covers the challenge id, the user and the purpose, so a code
(or a copied hash) works only for the verification it was issued for.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import secrets
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from securepractice.clock import require_utc
from securepractice.errors import InvalidInput, InvalidState, RateLimited
from securepractice.records import (
    Challenge,
    ChallengeState,
    PhoneKind,
    Purpose,
    SendLedger,
    revised,
)
from securepractice.secret import Secret
from securepractice.settings import VerificationRules
from securepractice.verification.phones import DeliveryOption

__all__ = [
    "CodeIssued",
    "VerifyOutcome",
    "VerifyResult",
    "cancel",
    "change_method",
    "code_hash",
    "delivery_failed",
    "entered_digits",
    "issue",
    "new_code",
    "record_send",
    "resend",
    "verify",
]

#: An entry longer than this is not a code, whatever it holds; it is not
#: normalised, so that a huge entry costs nothing.
_MAX_ENTRY_LENGTH = 64
_SEPARATORS = frozenset(" -\u00a0\u2009\u202f")
#: The first bytes hashed: these hashes are codes' only.
_MAC_CONTEXT = "securepractice.verification-code.v2|"
_BLAKE2B_MAX_KEY = 64
#: Each purpose as the netstring the keyed hash takes, written once.
_PURPOSE_FIELD = {purpose: f"{len(purpose.value)}:{purpose.value}," for purpose in Purpose}


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


_CLOSED = {
    ChallengeState.VERIFIED: VerifyOutcome.ALREADY_VERIFIED,
    ChallengeState.VOID: VerifyOutcome.VOID,
}


@attrs.frozen(kw_only=True)
class CodeIssued:
    """A new code: the challenge and the send ledger to save, and the code to send.

    ``code`` is wrapped in `Secret`: reveal it only to write the SMS or the
    voice call's text (VF-4). ``ledger`` is the user's send ledger with this
    send counted (VF-8).
    """

    challenge: Challenge
    ledger: SendLedger
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
    """Return a uniformly random code of ``digits`` decimal digits, zero-padded (VF-4).

    Rejection sampling over just enough random bits from `secrets`: every
    code is equally likely, at half the cost of `secrets.randbelow`.
    """
    limit, size, shift = _draw_shape(digits)
    while True:
        value = int.from_bytes(secrets.token_bytes(size), "big") >> shift
        if value < limit:
            return Secret(str(value).zfill(digits))


@functools.lru_cache(maxsize=8)
def _draw_shape(digits: int) -> tuple[int, int, int]:
    """Return how `new_code` draws ``digits`` digits: the bound, the bytes, the surplus bits."""
    limit = 10**digits
    bits = limit.bit_length()
    size = (bits + 7) // 8
    return limit, size, size * 8 - bits


@functools.lru_cache(maxsize=4)
def _keyed(key: bytes) -> hashlib.blake2b:
    """Return BLAKE2b-256 keyed with ``key``, for copying: the key block is hashed once.

    A key longer than BLAKE2b's 64 bytes is hashed down to 64 first.
    """
    if len(key) > _BLAKE2B_MAX_KEY:
        key = hashlib.blake2b(key).digest()
    return hashlib.blake2b(key=key, digest_size=32)


def code_hash(
    code: Secret[str], *, challenge_id: str, user_id: str, purpose: Purpose, key: Secret[bytes]
) -> bytes:
    """Return the keyed BLAKE2b-256 of ``code`` bound to one challenge, user and purpose."""
    return _keyed_hash(code.reveal(), challenge_id, user_id, purpose, key)


def _keyed_hash(
    text: str, challenge_id: str, user_id: str, purpose: Purpose, key: Secret[bytes]
) -> bytes:
    """Return the hash of `code_hash` for a code in plain text: the hot path of `verify`.

    The four parts are written as netstrings (``length:text,``) after a
    context string, so no two different tuples give the same input.
    """
    mac = _keyed(key.reveal()).copy()
    mac.update(
        f"{_MAC_CONTEXT}{len(challenge_id)}:{challenge_id},{len(user_id)}:{user_id},"
        f"{_PURPOSE_FIELD[purpose]}{len(text)}:{text},".encode()
    )
    return mac.digest()


def record_send(
    ledger: SendLedger | None, *, user_id: str, now: datetime, rules: VerificationRules
) -> SendLedger:
    """Count a new code sent to ``user_id`` at ``now``; refuse it past the send limit (VF-8).

    ``ledger`` is the user's ledger (None before their first send). Sends
    before the window leave the ledger; sends after ``now`` (from a server
    whose clock runs ahead) count. Raises `RateLimited` when ``send_limit``
    codes were sent within the window, with ``retry_after`` the time until
    the oldest counted send leaves it; otherwise returns the ledger to save.
    """
    return _count_send(ledger, user_id, require_utc(now), rules)


def _count_send(
    ledger: SendLedger | None, user_id: str, now: datetime, rules: VerificationRules
) -> SendLedger:
    """Do what `record_send` says, for a ``now`` known to be UTC already."""
    if ledger is None:
        return SendLedger(user_id=user_id, sends=(now,))
    start = now - rules.send_window
    recent = sorted(t for t in ledger.sends if t > start)
    if len(recent) >= rules.send_limit:
        retry_after = recent[len(recent) - rules.send_limit] + rules.send_window - now
        minutes = -(-retry_after // timedelta(minutes=1))
        raise RateLimited(
            f"Too many codes were sent. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            retry_after=retry_after,
            code="verification.rate_limited",
        )
    return revised(ledger, sends=(*recent, now))


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
    ledger: SendLedger | None,
    now: datetime,
    rules: VerificationRules,
) -> CodeIssued:
    """Replace the code of an open verification by a new one (VF-5, VF-6): the next version."""
    counted = _count_send(ledger, challenge.user_id, now, rules)
    code = new_code(rules.code_digits)
    digest = code_hash(
        code,
        challenge_id=challenge.id,
        user_id=challenge.user_id,
        purpose=challenge.purpose,
        key=rules.code_key,
    )
    fresh = revised(
        challenge, code_hash=digest, issued_at=now, expires_at=now + rules.code_lifetime
    )
    return CodeIssued(ledger=counted, challenge=fresh, code=code)


def issue(
    *,
    user_id: str,
    purpose: Purpose,
    option: DeliveryOption,
    offered: Sequence[DeliveryOption],
    ledger: SendLedger | None,
    now: datetime,
    rules: VerificationRules,
    flow_id: str | None = None,
    phone_kind: PhoneKind | None = None,
    challenge_id: str | None = None,
) -> CodeIssued:
    """Start a verification for ``user_id`` and ``purpose`` and issue its first code.

    ``option`` must be one of ``offered`` (from `delivery_options`);
    ``ledger`` is the user's send ledger (VF-8); ``flow_id`` the flow the
    verification is made for (a link's id); ``phone_kind`` the field a new
    number goes into once verified (PF-4). Starting a new verification does
    not end an old one: `cancel` it.
    """
    now = require_utc(now)
    _require_offered(option, offered)
    counted = _count_send(ledger, user_id, now, rules)
    challenge_id = challenge_id or uuid.uuid4().hex
    code = new_code(rules.code_digits)
    started = Challenge(
        id=challenge_id,
        flow_id=flow_id,
        user_id=user_id,
        purpose=purpose,
        method=option.method,
        destination=option.destination,
        code_hash=_keyed_hash(code.reveal(), challenge_id, user_id, purpose, rules.code_key),
        issued_at=now,
        expires_at=now + rules.code_lifetime,
        phone_kind=phone_kind,
    )
    return CodeIssued(challenge=started, ledger=counted, code=code)


def resend(
    challenge: Challenge,
    *,
    ledger: SendLedger | None,
    now: datetime,
    rules: VerificationRules,
) -> CodeIssued:
    """Issue a new code by the method currently chosen; the previous code dies at once (VF-5)."""
    now = require_utc(now)
    _require_active(challenge, "re-send a code")
    return _with_new_code(challenge, ledger=ledger, now=now, rules=rules)


def change_method(
    challenge: Challenge,
    *,
    option: DeliveryOption,
    offered: Sequence[DeliveryOption],
    ledger: SendLedger | None,
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
    return _with_new_code(
        attrs.evolve(challenge, method=option.method, destination=option.destination),
        ledger=ledger,
        now=now,
        rules=rules,
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


def entered_digits(entry: str, length: int) -> str | None:
    """Return ``entry`` as ASCII digits, spaces and dashes removed; None if it cannot be a code.

    Any Unicode decimal digit counts as its value, so a code typed on an
    Arabic or Devanagari keypad works.
    """
    if len(entry) == length and entry.isascii() and entry.isdigit():
        return entry
    if len(entry) > _MAX_ENTRY_LENGTH:
        return None
    kept = [c for c in entry.strip() if c not in _SEPARATORS]
    if len(kept) != length or not all(c.isdecimal() for c in kept):
        return None
    return "".join(str(unicodedata.decimal(c)) for c in kept)


def _comparable_hash(
    challenge: Challenge, user_id: str, purpose: Purpose, now: datetime
) -> bytes | VerifyOutcome:
    """Return the hash an entry is compared with, or why there is none to compare with."""
    if challenge.user_id != user_id:
        return VerifyOutcome.WRONG_USER
    if challenge.purpose is not purpose:
        return VerifyOutcome.WRONG_PURPOSE
    if challenge.state is not ChallengeState.ACTIVE:
        return _CLOSED[challenge.state]
    if now >= challenge.expires_at:
        return VerifyOutcome.EXPIRED
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

    stored = _comparable_hash(challenge, user_id, purpose, now)
    if isinstance(stored, VerifyOutcome):
        return _result(challenge, stored, rules)
    digits = entered_digits(text, rules.code_digits)
    if digits is None:
        return _result(challenge, VerifyOutcome.MALFORMED, rules)
    expected = _keyed_hash(
        digits, challenge.id, challenge.user_id, challenge.purpose, rules.code_key
    )
    if hmac.compare_digest(expected, stored):
        done = _after_entry(challenge, ChallengeState.VERIFIED, challenge.wrong_attempts)
        return VerifyResult(challenge=done, outcome=VerifyOutcome.VERIFIED, attempts_left=0)
    wrong = challenge.wrong_attempts + 1
    if wrong >= rules.max_wrong_codes:
        void = _after_entry(challenge, ChallengeState.VOID, wrong)
        return _result(void, VerifyOutcome.TOO_MANY_WRONG, rules)
    return _result(
        _after_entry(challenge, ChallengeState.ACTIVE, wrong), VerifyOutcome.WRONG_CODE, rules
    )


def _after_entry(challenge: Challenge, state: ChallengeState, wrong_attempts: int) -> Challenge:
    """Return the next version of ``challenge`` after a code was entered on it.

    Built field by field rather than with `attrs.evolve`, which costs twice
    as much on this hot path; a test checks that every other field is kept.
    A challenge that is no longer active keeps no code hash.
    """
    return Challenge(
        id=challenge.id,
        flow_id=challenge.flow_id,
        user_id=challenge.user_id,
        purpose=challenge.purpose,
        method=challenge.method,
        destination=challenge.destination,
        code_hash=challenge.code_hash if state is ChallengeState.ACTIVE else None,
        issued_at=challenge.issued_at,
        expires_at=challenge.expires_at,
        wrong_attempts=wrong_attempts,
        state=state,
        version=challenge.version + 1,
        phone_kind=challenge.phone_kind,
    )


def _result(challenge: Challenge, outcome: VerifyOutcome, rules: VerificationRules) -> VerifyResult:
    """Return ``outcome`` with the challenge to save and the wrong entries it still allows."""
    left = (
        max(rules.max_wrong_codes - challenge.wrong_attempts, 0)
        if challenge.state is ChallengeState.ACTIVE
        else 0
    )
    return VerifyResult(challenge=challenge, outcome=outcome, attempts_left=left)
