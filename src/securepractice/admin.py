"""What the portal's operator does without a session: the ``securepractice admin`` command (OP-1).

The operator is whoever holds the portal's secret and its database; they
are no stored user and sign in nowhere. Each action takes the service
first and the operator's name (``by``), which the audit events keep as the
actor ``operator:<by>``. The operator acts as support staff do and is
refused what they are refused: the decisions are the very functions of
`securepractice.practice.support`, given an operator instead of a
signed-in member. A refusal changes nothing and is audited, as there.

```python
admin.create_support_staff(portal, "jane", email="help@portal.example")
admin.unlock(portal, "jane", user_id=user.id)
```
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from securepractice.accounts._shared import retry_on_conflict
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import SecurePracticeError, StorageError
from securepractice.policy import text
from securepractice.practice._base import Acting, audit_refusal
from securepractice.practice.support import (
    _DEACTIVATED,
    _STAFF_INVITED,
    _UNLOCKED,
    _deactivate_staff,
    _invite_staff,
    _manager_event,
    _set_manager,
    _staff_draft,
    _support_staff,
    _unlock,
)
from securepractice.records import RegistrationStatus, Role, User

__all__ = [
    "OPERATOR_PREFIX",
    "create_support_staff",
    "deactivate_support_staff",
    "grant_user_manager",
    "list_support_staff",
    "operator",
    "revoke_user_manager",
    "unlock",
]

#: What the audit events' actor id of the operator starts with; no user id holds a colon.
OPERATOR_PREFIX = "operator:"


def operator(deps: Dependencies, by: str) -> User:
    """Return the operator named ``by`` as the actor of an action: support staff, never stored.

    The name is checked as every name is (IN-1) and is required.
    """
    name = text.name(by, field="by", label="operator's name")
    return User(
        id=OPERATOR_PREFIX + name,
        practice_id=None,
        email="",
        roles=frozenset({Role.SUPPORT}),
        status=RegistrationStatus.REGISTERED,
        created_at=deps.now(),
    )


@contextlib.contextmanager
def _operating(
    deps: Dependencies, by: str, event: str, *, target: str | None = None
) -> Iterator[Acting]:
    """Run the block for the operator named ``by``, in one unit of work.

    As `~securepractice.practice._base.acting` does for a session: a
    refusal (any library error but a storage failure) is audited as
    ``event``, with the error's code and ``target``, after the unit rolled back.
    """
    actor = operator(deps, by)
    try:
        with deps.unit() as uow:
            yield Acting(uow=uow, actor=actor, now=actor.created_at)
    except SecurePracticeError as error:
        if isinstance(error, StorageError):
            raise
        audit_refusal(deps, event, error, at=actor.created_at, actor=actor, target=target)
        raise


def create_support_staff(
    service: Service, by: str, *, email: str, first_name: str = "", last_name: str = ""
) -> User:
    """Invite a new member of support staff by email, as support staff do (OP-1).

    See `securepractice.practice.support.create_support_staff`: the invitee
    registers from the e-mailed link under the password policy and
    two-step verification.
    """
    deps = service.deps
    draft = _staff_draft(deps.now(), email, first_name, last_name)
    return _invite_staff(deps, draft, _operating(deps, by, _STAFF_INVITED))


def list_support_staff(service: Service, by: str) -> tuple[User, ...]:
    """List the portal's support staff, invited and registered, ordered by email."""
    with _operating(service.deps, by, "support_staff.listed") as act:
        return _support_staff(act)


def deactivate_support_staff(service: Service, by: str, *, user_id: str) -> User:
    """Deactivate a member of support staff; never the last active one (OP-1, LK-6)."""
    user_id = text.identifier(user_id, field="user_id")
    deps = service.deps
    return retry_on_conflict(
        lambda: _deactivate_staff(_operating(deps, by, _DEACTIVATED, target=user_id), user_id)
    )


def unlock(service: Service, by: str, *, user_id: str) -> User:
    """Unlock a practice user's account and clear its failure count (SP-1, LK-2)."""
    user_id = text.identifier(user_id, field="user_id")
    with _operating(service.deps, by, _UNLOCKED, target=user_id) as act:
        return _unlock(act, user_id)


def grant_user_manager(service: Service, by: str, *, user_id: str) -> User:
    """Give a practice user the User Manager role (UM-8)."""
    user_id = text.identifier(user_id, field="user_id")
    with _operating(service.deps, by, _manager_event(grant=True), target=user_id) as act:
        return _set_manager(act, user_id, grant=True)


def revoke_user_manager(service: Service, by: str, *, user_id: str) -> User:
    """Take the User Manager role away from a practice user (UM-8)."""
    user_id = text.identifier(user_id, field="user_id")
    with _operating(service.deps, by, _manager_event(grant=False), target=user_id) as act:
        return _set_manager(act, user_id, grant=False)
