"""The user's phone and app, for the tests of authenticator apps, recovery codes and MF-8's cap.

An authenticator app is played by ``pyotp``, an implementation of RFC 6238
independent of ours: it is given what `start_authenticator` returned, as a
user's app is, and shows the codes the user types. Sign-in enters a code
through `enter_authenticator_code` or `enter_recovery_code` inside a unit of
its own and sends the notices after commit, as the sign-in service does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
import pyotp
import pytest

from accounts.profile_fixtures import Portal
from securepractice.accounts import factors
from securepractice.accounts._shared import retry_on_conflict
from securepractice.dependencies import Dependencies
from securepractice.errors import InvalidInput, SecurePracticeError
from securepractice.records import Credential, SendLedger, User
from securepractice.secret import Secret
from securepractice.storage.ports import UnitOfWork
from securepractice.testing import PASSWORD

#: A password that is not the user's.
WRONG_PASSWORD = "Not-the-password-1"

Enter = Callable[
    [Dependencies, UnitOfWork, User, Credential, "str | Secret[str]"], factors.FactorEntry
]


def with_verification(context: Dependencies, **changes: Any) -> Dependencies:
    """Return ``context`` under other verification rules (MF-8's numbers, say)."""
    settings = context.settings
    rules = attrs.evolve(settings.verification, **changes)
    return attrs.evolve(context, settings=attrs.evolve(settings, verification=rules))


def app_of(new: factors.NewAuthenticator) -> pyotp.TOTP:
    """The user's app after they typed in the setup key: it shows the codes of the seed."""
    return pyotp.TOTP(new.setup_key.reveal().replace(" ", ""))


def enrol(portal: Portal) -> pyotp.TOTP:
    """Add an authenticator app to the portal's user, confirmed with the code it shows."""
    app = app_of(portal.actions.start_authenticator(portal.token))
    portal.actions.confirm_authenticator(portal.token, code=app.at(portal.clock.now()))
    return app


def other_code(code: str) -> str:
    """A six-digit code that is not ``code``."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


def wrong_app_code(app: pyotp.TOTP, now: datetime) -> str:
    """A code the app shows at no step near ``now``: a wrong code, not an old one."""
    near = {app.at(now, counter_offset=offset) for offset in range(-3, 4)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in near)


def enter(portal: Portal, how: Enter, code: str | Secret[str]) -> factors.FactorEntry:
    """Enter ``code`` as sign-in does: in a unit, run again on a lost race; notices after commit."""
    deps = portal.context
    user = portal.stored_user()

    def run() -> factors.FactorEntry:
        with deps.unit() as uow:
            stored = uow.credentials.get(user.id)
            assert stored is not None
            return how(deps, uow, user, stored, code)

    entry = retry_on_conflict(run)
    factors.send_factor_notices(deps, user, entry)
    return entry


def app_code(
    deps: Dependencies, uow: UnitOfWork, user: User, credential: Credential, code: str | Secret[str]
) -> factors.FactorEntry:
    """Enter an authenticator app's code: `Enter` for `enter`."""
    return factors.enter_authenticator_code(deps, uow, user, credential, code, now=deps.now())


def recovery_code(
    deps: Dependencies, uow: UnitOfWork, user: User, credential: Credential, code: str | Secret[str]
) -> factors.FactorEntry:
    """Enter a recovery code: `Enter` for `enter`."""
    return factors.enter_recovery_code(deps, uow, user, credential, code, now=deps.now())


def make_codes(portal: Portal) -> list[str]:
    """Make a set of recovery codes, as the user reads them off the screen."""
    made = portal.actions.make_recovery_codes(portal.token, current_password=PASSWORD)
    return [code.reveal() for code in made]


def ledger(portal: Portal) -> SendLedger | None:
    """The user's ledger of codes sent and wrong codes (VF-8, MF-8)."""
    with portal.storage.unit_of_work() as uow:
        return uow.code_sends.get(portal.user.id)


def wrong_codes(portal: Portal) -> int:
    """The user's count of wrong codes in a row (MF-8)."""
    found = ledger(portal)
    return 0 if found is None else found.wrong_codes


def refused_for_a_wrong_password(portal: Portal, action: Callable[[str], object]) -> None:
    """Run ``action`` with a wrong password: refused, nothing changed, a failed sign-in (LK-1)."""
    before = portal.credential()
    with pytest.raises(InvalidInput) as caught:
        action(WRONG_PASSWORD)
    assert (caught.value.code, caught.value.field) == ("password.current_wrong", "current_password")
    assert portal.failures() == 1
    assert portal.credential() == before


def outcome(action: Callable[[], object]) -> str:
    """Run ``action``: ``ok``, a factor entry's reason, or the code of the error it raised."""
    try:
        done = action()
    except SecurePracticeError as error:
        return error.code
    return done.reason if isinstance(done, factors.FactorEntry) else "ok"
