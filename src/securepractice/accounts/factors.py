"""Stronger second factors: authenticator apps and recovery codes (MF-3, MF-4, MF-8..MF-10).

A signed-in user adds an authenticator app in two steps: `start_authenticator`
makes a seed and returns what the app needs (an ``otpauth://`` URI for a QR
code, and the same seed as text to type in), and `confirm_authenticator`
makes it active once the app shows a right code. `remove_authenticator`
takes it away, after the current password. `make_recovery_codes` gives a
new set of single-use codes, shown once, after the current password; a new
set voids the old one. `phone_code_notice` is the notice on the risks of
texts and calls (MF-9) for the screen where a user picks one.

Sign-in checks these factors with `enter_authenticator_code` and
`enter_recovery_code`, inside its own unit of work, and emails what they
call for with `send_factor_notices` once the unit has committed.

Seeds are kept sealed (AES-256-GCM) under a key derived from the portal
secret (MF-10, `seed_keys`); a seed sealed under the previous secret is
sealed again under the current one the next time it is used. Recovery
codes are kept only as salted hashes. Every wrong code counts toward the
user's cap across verifications (MF-8).
"""

from __future__ import annotations

import base64
import importlib.util
from datetime import datetime
from string import Template

import attrs

from securepractice.accounts import _recheck
from securepractice.accounts._shared import (
    audit,
    codes_blocked,
    count_code_guess,
    end_sessions,
    retry_on_conflict,
    send_notices,
)
from securepractice.accounts.signin import signed_in
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import InvalidInput, InvalidState, SecurePracticeError
from securepractice.keys import derive_key
from securepractice.policy import text
from securepractice.policy.password import require_password_text
from securepractice.records import Authenticator, Credential, SendLedger, User, revised
from securepractice.secret import Secret
from securepractice.settings import Settings
from securepractice.storage.ports import UnitOfWork
from securepractice.verification import guesses, recovery, sealed, totp
from securepractice.verification.codes import entered_digits

__all__ = [
    "SEED_KEY_PURPOSE",
    "FactorEntry",
    "NewAuthenticator",
    "confirm_authenticator",
    "enter_authenticator_code",
    "enter_recovery_code",
    "make_recovery_codes",
    "phone_code_notice",
    "recovery_codes_left",
    "remove_authenticator",
    "seed_keys",
    "send_factor_notices",
    "start_authenticator",
]

#: The purpose of the key, derived from the portal secret, that seals authenticator seeds.
SEED_KEY_PURPOSE = "authenticator-seed"

#: Longer input is no code: refused before it is looked at.
_MAX_ENTRY_LENGTH = 64
#: The setup key is shown in groups of this many characters, as apps show theirs.
_KEY_GROUP = 4

_ALREADY_ACTIVE = (
    "An authenticator app is set up already. To use another one, remove it first "
    "(with your password), then add the new one."
)


@attrs.frozen
class FactorEntry:
    """What entering an authenticator or recovery code did, inside the caller's unit of work.

    ``accepted`` is True only for a right code, which is now used.
    ``reason`` says why not otherwise: ``ok``, ``wrong`` (counted, MF-8),
    ``paused`` or ``stopped`` (refused unchecked, not counted, MF-8),
    ``not_enrolled`` (the user has no such factor) or ``replayed`` (an
    authenticator code of a step used already, not counted). ``notices``
    names the emails to send once the unit has committed
    (`send_factor_notices`).
    """

    accepted: bool
    reason: str
    notices: tuple[str, ...]


@attrs.frozen(kw_only=True)
class NewAuthenticator:
    """What the user needs to add the portal to their authenticator app, shown once (MF-3).

    ``uri`` is the ``otpauth://`` URI, for a QR code the app scans;
    ``setup_key`` the same seed in base32 for typing into the app, in
    groups of four. Both hold the seed, so both are `Secret`.
    """

    uri: Secret[str]
    setup_key: Secret[str]


def seed_keys(settings: Settings) -> tuple[Secret[bytes], ...]:
    """Return the keys that open authenticator seeds, the one that seals them first (MF-10).

    Each is derived for `SEED_KEY_PURPOSE`: from `Settings.root_key` (the
    portal secret, when there is one), then from the previous secret, for
    opening only, during a rotation.
    """
    keys = [derive_key(settings.root_key, SEED_KEY_PURPOSE)]
    if settings.previous_secret is not None:
        keys.append(derive_key(settings.previous_secret, SEED_KEY_PURPOSE))
    return tuple(keys)


def _typed(code: object, field: str) -> str:
    """Return an entered code as checked text (IN-1): `InvalidInput` for anything else."""
    value = code.reveal() if isinstance(code, Secret) else code
    return text.line(value, field=field, max_length=_MAX_ENTRY_LENGTH, required=True, label="code")


def _app_digits(code: object, field: str) -> str:
    """Return an authenticator code as its six ASCII digits, or refuse it (not counted)."""
    digits = entered_digits(_typed(code, field), totp.DIGITS)
    if digits is None:
        raise InvalidInput(
            f"Enter the {totp.DIGITS} digits your authenticator app shows.",
            field=field,
            code="authenticator.malformed",
        )
    return digits


def _recovery_text(code: object, field: str) -> str:
    """Return a typed recovery code that has a recovery code's shape, or refuse it (not counted)."""
    typed = _typed(code, field)
    if recovery.normalize_entry(typed) is None:
        raise InvalidInput(
            "Enter a recovery code as it was given: 16 letters and digits, in groups of "
            "four (such as XXXX-XXXX-XXXX-XXXX).",
            field=field,
            code="recovery_code.malformed",
        )
    return typed


def _refused(uow: UnitOfWork, user: User, action: str, reason: str, now: datetime) -> FactorEntry:
    """Audit an entry that was not accepted, and return it, with no notice."""
    audit(uow, action, reason, at=now, actor=user, subject=user)
    return FactorEntry(accepted=False, reason=reason, notices=())


def _blocked(
    uow: UnitOfWork, user: User, now: datetime, deps: Dependencies
) -> tuple[SendLedger | None, guesses.CodesBlocked | None]:
    """Return the user's ledger and why codes are not taken from them now, if they are not."""
    ledger = uow.code_sends.get(user.id)
    return ledger, guesses.blocked(ledger, now=now, rules=deps.settings.verification)


def enter_authenticator_code(
    deps: Dependencies,
    uow: UnitOfWork,
    user: User,
    credential: Credential,
    code: str | Secret[str],
    *,
    now: datetime,
) -> FactorEntry:
    """In ``uow``, check a code of the user's active authenticator app (MF-3, MF-8).

    ``credential`` is the user's, as read in ``uow``. A code that is not
    six digits raises `InvalidInput` (``authenticator.malformed``, or a
    ``text.*`` code, IN-1) before anything is read. While the user's codes
    are paused or stopped the code is refused unchecked. A right code is
    accepted for its own step and ``authenticator_steps_back`` steps before
    it, each step once: the step is saved on the credential over its
    version, so of simultaneous uses one is accepted and the others, run
    again by `retry_on_conflict`, find it ``replayed``. A right code clears
    the count of wrong codes, a wrong one adds to it.
    """
    digits = _app_digits(code, "authenticator_code")
    return _check_app(deps, uow, user, credential, digits, now=now, confirming=False)


def _check_app(
    deps: Dependencies,
    uow: UnitOfWork,
    user: User,
    credential: Credential,
    digits: str,
    *,
    now: datetime,
    confirming: bool,
) -> FactorEntry:
    """Check ``digits`` on the user's app: the active one, or the one being added if ``confirming``.

    The seed is opened with the portal's keys and, when it was sealed under
    a previous secret, sealed again under the current one and saved.
    """
    rules = deps.settings.verification
    ledger, block = _blocked(uow, user, now, deps)
    if block is not None:
        return _refused(uow, user, "authenticator.failed", block.value, now)
    app = credential.authenticator
    # Sign-in takes the active app only; a confirmation, the one being added only.
    if app is None or app.confirmed == confirming:
        return _refused(uow, user, "authenticator.failed", "not_enrolled", now)
    keys = seed_keys(deps.settings)
    seed = sealed.open_sealed(app.sealed_seed, keys=keys, owner=user.id)
    if not sealed.is_sealed_under(app.sealed_seed, keys[0]):
        app = attrs.evolve(app, sealed_seed=sealed.seal(seed, key=keys[0], owner=user.id))
    back = rules.authenticator_steps_back
    step = totp.matching_step(seed, digits, now=now, steps_back=back, last_used_step=app.last_step)
    if step is not None:
        app = attrs.evolve(app, confirmed=True, last_step=step)
    if app != credential.authenticator:
        uow.credentials.save(
            revised(credential, authenticator=app), expected_version=credential.version
        )
    if step is not None:
        notices = count_code_guess(uow, user, ledger, right=True, now=now, rules=rules)
        audit(uow, "authenticator.verified", at=now, actor=user, subject=user)
        return FactorEntry(accepted=True, reason="ok", notices=notices)
    used = totp.matching_step(seed, digits, now=now, steps_back=back, last_used_step=None)
    if used is not None:
        return _refused(uow, user, "authenticator.failed", "replayed", now)
    notices = count_code_guess(uow, user, ledger, right=False, now=now, rules=rules)
    audit(uow, "authenticator.failed", "wrong", at=now, actor=user, subject=user)
    return FactorEntry(accepted=False, reason="wrong", notices=notices)


def enter_recovery_code(
    deps: Dependencies,
    uow: UnitOfWork,
    user: User,
    credential: Credential,
    code: str | Secret[str],
    *,
    now: datetime,
) -> FactorEntry:
    """In ``uow``, use one of the user's recovery codes (MF-4, MF-8).

    ``credential`` is the user's, as read in ``uow``. An entry that cannot
    be a recovery code raises `InvalidInput` (``recovery_code.malformed``,
    or a ``text.*`` code, IN-1) before anything is read. While the user's
    codes are paused or stopped it is refused unchecked. A right code is
    used up: its hash leaves the set, saved over the credential's version,
    so of simultaneous uses one is accepted and the others, run again by
    `retry_on_conflict`, find it used (a wrong code). A use is audited and
    its notice asks the user to make a new set.
    """
    typed = _recovery_text(code, "recovery_code")
    rules = deps.settings.verification
    ledger, block = _blocked(uow, user, now, deps)
    if block is not None:
        return _refused(uow, user, "recovery_code.failed", block.value, now)
    kept = credential.recovery_codes
    if all(stored is None for stored in kept):
        return _refused(uow, user, "recovery_code.failed", "not_enrolled", now)
    index = recovery.matching_index(typed, kept, user_id=user.id)
    if index is None:
        notices = count_code_guess(uow, user, ledger, right=False, now=now, rules=rules)
        audit(uow, "recovery_code.failed", "wrong", at=now, actor=user, subject=user)
        return FactorEntry(accepted=False, reason="wrong", notices=notices)
    left = (*kept[:index], None, *kept[index + 1 :])
    uow.credentials.save(
        revised(credential, recovery_codes=left), expected_version=credential.version
    )
    notices = count_code_guess(uow, user, ledger, right=True, now=now, rules=rules)
    audit(
        uow, "recovery_code.used", at=now, actor=user, subject=user,
        codes_left=str(sum(stored is not None for stored in left)),
    )  # fmt: skip
    return FactorEntry(accepted=True, reason="ok", notices=(*notices, "recovery_code_used"))


def send_factor_notices(deps: Dependencies, user: User, entry: FactorEntry) -> None:
    """Email the user what an entry called for, once its unit has committed.

    A failed delivery is audited (``notice.failed``), not raised: the entry
    is committed by then.
    """
    send_notices(deps, user, entry.notices)


# Authenticator apps (MF-3, MF-10).


def _credential(uow: UnitOfWork, user: User) -> Credential:
    credential = uow.credentials.get(user.id)
    if credential is None:
        raise InvalidState("this account has no password yet", code="password.not_set")
    return credential


def start_authenticator(service: Service, token: str | Secret[str]) -> NewAuthenticator:
    """Begin adding an authenticator app: a new seed, kept sealed until a code confirms it (MF-3).

    Returns the ``otpauth://`` URI (issuer the portal's name, account the
    user's email) and the setup key, shown once: nothing can show them
    again. Starting again replaces a seed not confirmed yet. While an app
    is active this is refused (``authenticator.already_active``): it stays
    the user's until they remove it with their password. Audited; the
    seed never is.
    """
    deps = service.deps
    seed = totp.new_seed()
    key = seed_keys(deps.settings)[0]

    def start() -> User:
        now = deps.now()
        with deps.unit() as uow:
            _session, user = signed_in(deps, uow, token, now)
            credential = _credential(uow, user)
            current = credential.authenticator
            if current is not None and current.confirmed:
                raise InvalidState(_ALREADY_ACTIVE, code="authenticator.already_active")
            app = Authenticator(sealed_seed=sealed.seal(seed, key=key, owner=user.id), added_at=now)
            uow.credentials.save(
                revised(credential, authenticator=app), expected_version=credential.version
            )
            audit(
                uow, "authenticator.started", at=now, actor=user, subject=user,
                replaced="yes" if current is not None else "no",
            )  # fmt: skip
            return user

    user = retry_on_conflict(start)
    setup = base64.b32encode(seed.reveal()).decode("ascii").rstrip("=")
    groups = [setup[i : i + _KEY_GROUP] for i in range(0, len(setup), _KEY_GROUP)]
    return NewAuthenticator(
        uri=totp.provisioning_uri(seed, account=user.email, issuer=deps.portal_name),
        setup_key=Secret(" ".join(groups)),
    )


def confirm_authenticator(
    service: Service, token: str | Secret[str], *, code: str | Secret[str]
) -> None:
    """Make the app being added active, with one code it shows now (MF-3).

    A right code activates it (that step is used), ends the user's other
    sessions (RC-5) and emails the user. A wrong one raises `InvalidInput`
    (``authenticator.wrong_code``) after it counted (MF-8); while codes
    are paused `~securepractice.errors.RateLimited`
    (``verification.codes_paused``), once stopped `InvalidState`
    (``verification.codes_stopped``). With no app being added:
    ``authenticator.not_started``, or ``authenticator.already_active``.
    """
    digits = _app_digits(code, "code")
    deps = service.deps

    def confirm() -> tuple[User, FactorEntry, SecurePracticeError | None]:
        now = deps.now()
        with deps.unit() as uow:
            session, user = signed_in(deps, uow, token, now)
            credential = _credential(uow, user)
            app = credential.authenticator
            if app is None:
                raise InvalidState(
                    "No authenticator app is being added: start again.",
                    code="authenticator.not_started",
                )
            if app.confirmed:
                raise InvalidState(_ALREADY_ACTIVE, code="authenticator.already_active")
            entry = _check_app(deps, uow, user, credential, digits, now=now, confirming=True)
            if not entry.accepted:
                return user, entry, _confirm_refusal(uow, user, entry, now)
            revoked = end_sessions(uow, user.id, keep=session.token_hash)
            audit(
                uow, "authenticator.added", at=now, actor=user, subject=user,
                sessions_revoked=str(revoked),
            )  # fmt: skip
            return user, attrs.evolve(entry, notices=(*entry.notices, "authenticator_added")), None

    user, entry, refusal = retry_on_conflict(confirm)
    send_factor_notices(deps, user, entry)
    if refusal is not None:
        raise refusal


def _confirm_refusal(
    uow: UnitOfWork, user: User, entry: FactorEntry, now: datetime
) -> SecurePracticeError:
    """Return the error a refused confirmation raises once its unit has committed."""
    ledger = uow.code_sends.get(user.id)
    if entry.reason in {"paused", "stopped"} and ledger is not None:
        return codes_blocked(guesses.CodesBlocked(entry.reason), ledger, now)
    return InvalidInput(
        "This is not the code your authenticator app shows now. Enter the latest one; if "
        "it is refused again, check that your phone sets its clock automatically.",
        field="code",
        code="authenticator.wrong_code",
    )


def remove_authenticator(
    service: Service, token: str | Secret[str], *, current_password: str
) -> None:
    """Remove the user's authenticator app, after their current password (MF-3).

    A wrong password raises `InvalidInput` (``password.current_wrong``) and
    counts toward lockout (LK-1). Removing an active app ends the user's
    other sessions (RC-5) and emails the user; an app not confirmed yet is
    dropped quietly. With no app at all: ``authenticator.none``, before the
    password is checked.
    """
    require_password_text(current_password, field="current_password")
    deps = service.deps
    now = deps.now()

    def has_app(uow: UnitOfWork, user: User) -> None:
        if _credential(uow, user).authenticator is None:
            raise InvalidState(
                "You have no authenticator app to remove.", code="authenticator.none"
            )

    checked = _recheck.recheck(
        deps, token, current_password, now, purpose="remove_authenticator", precheck=has_app
    )
    _recheck.require_match(checked)

    def remove() -> tuple[User, bool]:
        with deps.unit() as uow:
            session, user, credential = _recheck.proven(deps, uow, token, now, checked)
            has_app(uow, user)
            active = credential.authenticator is not None and credential.authenticator.confirmed
            uow.credentials.save(
                revised(credential, authenticator=None), expected_version=credential.version
            )
            revoked = end_sessions(uow, user.id, keep=session.token_hash) if active else 0
            audit(
                uow, "authenticator.removed", at=now, actor=user, subject=user,
                confirmed="yes" if active else "no", sessions_revoked=str(revoked),
            )  # fmt: skip
            return user, active

    with _recheck.settling(deps, checked):
        user, active = retry_on_conflict(remove)
    if active:
        send_notices(deps, user, ("authenticator_removed",))


# Recovery codes (MF-4).


def make_recovery_codes(
    service: Service, token: str | Secret[str], *, current_password: str
) -> tuple[Secret[str], ...]:
    """Make a new set of recovery codes, after the current password; return them, once (MF-4).

    ``VerificationRules.recovery_codes`` codes of 80 random bits each, kept
    only as salted hashes: nothing can show them again. The new set voids
    every code of the old one. A wrong password raises `InvalidInput`
    (``password.current_wrong``) and counts toward lockout (LK-1). Audited,
    and the user is emailed.
    """
    require_password_text(current_password, field="current_password")
    deps = service.deps
    now = deps.now()
    count = deps.settings.verification.recovery_codes
    checked = _recheck.recheck(deps, token, current_password, now, purpose="make_recovery_codes")
    _recheck.require_match(checked)
    made = recovery.new_codes(count)
    hashes = tuple(recovery.code_hash(code, user_id=checked.user.id) for code in made)

    def make() -> User:
        with deps.unit() as uow:
            _session, user, credential = _recheck.proven(deps, uow, token, now, checked)
            voided = sum(stored is not None for stored in credential.recovery_codes)
            uow.credentials.save(
                revised(credential, recovery_codes=hashes), expected_version=credential.version
            )
            audit(
                uow, "recovery_codes.made", at=now, actor=user, subject=user, codes=str(count),
                voided=str(voided),
            )  # fmt: skip
            return user

    with _recheck.settling(deps, checked):
        user = retry_on_conflict(make)
    send_notices(deps, user, ("recovery_codes_made",))
    return made


def recovery_codes_left(service: Service, token: str | Secret[str]) -> int:
    """Return how many of the user's recovery codes are still unused (MF-4)."""
    deps = service.deps
    with deps.unit() as uow:
        _session, user = signed_in(deps, uow, token, deps.now())
        return sum(stored is not None for stored in _credential(uow, user).recovery_codes)


# The notice where a user picks a text or a call (MF-9).


def phone_code_notice(service: Service) -> str:
    """Return the notice to show beside the choice of a text or a call (MF-9).

    It is ``VerificationRules.phone_code_notice`` filled in with the
    portal's name and the stronger methods it offers: an authenticator app
    when the ``authenticator`` extra is installed, and recovery codes.
    """
    deps = service.deps
    stronger = ["recovery codes"]
    if importlib.util.find_spec("cryptography") is not None:
        stronger.insert(0, "an authenticator app")
    template = Template(deps.settings.verification.phone_code_notice)
    return template.substitute(portal=deps.portal_name, stronger=" or ".join(stronger))
