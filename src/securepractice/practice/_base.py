"""What every practice action shares: acting for a signed-in user, and asking the rule first.

`acting` opens one unit of work for the signed-in actor. A refusal inside
it (a permission, a state, a missing record) rolls the unit back, so
nothing changes; the attempt is then audited in a unit of its own, without
a subject, so the record of the user acted on stays as it was (UM-2, AU-1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

import attrs

from securepractice.accounts._shared import audit
from securepractice.accounts.signin import signed_in
from securepractice.dependencies import Dependencies
from securepractice.errors import NotFound, PermissionDenied, SecurePracticeError, StorageError
from securepractice.policy.roles import Action, decide
from securepractice.records import User
from securepractice.secret import Secret
from securepractice.storage.ports import UnitOfWork

__all__ = ["Acting", "acting"]


@attrs.frozen(kw_only=True)
class Acting:
    """A signed-in actor inside one unit of work, at one moment."""

    uow: UnitOfWork
    actor: User
    now: datetime

    def require(
        self, action: Action, subject: User | None = None, practice_id: str | None = None
    ) -> None:
        """Ask `decide`; raise `PermissionDenied` with the decision's code when refused."""
        decision = decide(self.actor, action, subject, practice_id)
        if not decision.allowed:
            raise PermissionDenied(decision.message, code=decision.reason)

    def user(self, user_id: str) -> User:
        """Return the user with this id; `NotFound` (``user.not_found``) if there is none."""
        user = self.uow.users.get(user_id)
        if user is None:
            raise NotFound("There is no such user.", code="user.not_found")
        return user


@contextlib.contextmanager
def acting(
    deps: Dependencies, token: str | Secret[str], event: str, *, target: str | None = None
) -> Iterator[Acting]:
    """Run the block for the user signed in with ``token``, in one unit of work.

    A refusal (any library error but a storage failure) is audited as
    ``event`` with the error's code as outcome and ``target`` (the id acted
    on) in its detail, after the unit rolled back. A session that cannot be
    used raises `~securepractice.errors.InvalidToken`, unaudited here.
    """
    now = deps.now()
    actor: User | None = None
    try:
        with deps.unit() as uow:
            _session, actor = signed_in(deps, uow, token, now)
            yield Acting(uow=uow, actor=actor, now=now)
    except SecurePracticeError as error:
        if actor is None or isinstance(error, StorageError):
            raise
        audit_refusal(deps, event, error, at=now, actor=actor, target=target)
        raise


def audit_refusal(
    deps: Dependencies,
    event: str,
    error: SecurePracticeError,
    *,
    at: datetime,
    actor: User,
    target: str | None,
) -> None:
    """Audit ``actor``'s refused attempt as ``event``, in a unit of its own (UM-2, AU-1, CX-1).

    The error's code is the outcome and ``target`` (the id acted on) is in
    the detail; the error is marked audited, so the facade does not record
    it a second time.
    """
    with deps.unit() as uow:
        if target is None:
            audit(uow, event, error.code, at=at, actor=actor)
        else:
            audit(uow, event, error.code, at=at, actor=actor, target=target)
    error.audited = True
