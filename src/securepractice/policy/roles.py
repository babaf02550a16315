"""Who may do what: roles and permissions as one pure rule (UM-1, UM-2, UM-8, SP-1, SB-1, PF-2).

`decide` takes the acting user, the action and its subject (a user, or a
practice by id) and returns a `Decision`; it never reads storage or the
clock, so it can be tested on its own. The rules:

- Roles (UM-1): ``user``; ``user_manager``, a capability of a practice's
  user; ``support``, staff of the portal operator with no practice. A user
  counts as support staff only if they hold the role *and* belong to no
  practice, and as a User Manager only if they hold the role *and* belong
  to a practice.
- A locked or deactivated actor may do nothing.
- A User Manager acts only on users of their own practice (UM-2).
- Support staff act only through the support actions (SP-1, PF-2, SB-1),
  and only on practice users and practices; on the staff themselves only
  to invite, list and deactivate them (OP-1).
- A plain user acts only on themselves.
"""

from __future__ import annotations

import enum

import attrs

from securepractice.records import Role, User

__all__ = [
    "MANAGER_ACTIONS",
    "SELF_ACTIONS",
    "STAFF_ACTIONS",
    "SUPPORT_ACTIONS",
    "Action",
    "Decision",
    "decide",
    "is_support",
    "is_user_manager",
]


class Action(enum.Enum):
    """Every action of the practice services, named for the permission it needs."""

    # A User Manager's actions on the users of their practice (UM-3..UM-7).
    LIST_USERS = "list_users"
    EDIT_INVITED_USER = "edit_invited_user"
    REINVITE = "reinvite"
    SET_TWO_STEP_FOR = "set_two_step_for"
    PURCHASE_SECUREMAIL = "purchase_securemail"
    VIEW_BILLING = "view_billing"
    EMAIL_INVOICES = "email_invoices"
    # A user's actions on their own account.
    PUT_CARD_ON_FILE = "put_card_on_file"
    VIEW_DASHBOARD = "view_dashboard"
    # Support staff's actions (SP-1, UM-8, PF-2, SB-1, LK-2, LK-6, RC-4, RC-5, MF-8).
    UNLOCK = "unlock"
    GRANT_USER_MANAGER = "grant_user_manager"
    REVOKE_USER_MANAGER = "revoke_user_manager"
    EDIT_PRACTICE = "edit_practice"
    SUBSCRIBE_PRACTICE = "subscribe_practice"
    GRANT_PRODUCT = "grant_product"
    REVOKE_PRODUCT = "revoke_product"
    DEACTIVATE = "deactivate"
    END_USER_SESSIONS = "end_user_sessions"
    MARK_PASSWORD_COMPROMISED = "mark_password_compromised"
    CLEAR_CODE_GUESSES = "clear_code_guesses"
    PUT_CARD_ON_FILE_FOR = "put_card_on_file_for"
    # Support staff's actions on the portal's own staff (OP-1).
    CREATE_SUPPORT_STAFF = "create_support_staff"
    LIST_SUPPORT_STAFF = "list_support_staff"
    DEACTIVATE_SUPPORT_STAFF = "deactivate_support_staff"


#: Actions of a User Manager, allowed only inside their own practice (UM-2).
MANAGER_ACTIONS = frozenset(
    {
        Action.LIST_USERS,
        Action.EDIT_INVITED_USER,
        Action.REINVITE,
        Action.SET_TWO_STEP_FOR,
        Action.PURCHASE_SECUREMAIL,
        Action.VIEW_BILLING,
        Action.EMAIL_INVOICES,
    }
)
#: Actions a user takes on their own account only.
SELF_ACTIONS = frozenset({Action.PUT_CARD_ON_FILE, Action.VIEW_DASHBOARD})
#: Actions of support staff only (SP-1, UM-8, PF-2, SB-1).
SUPPORT_ACTIONS = frozenset(
    {
        Action.UNLOCK,
        Action.GRANT_USER_MANAGER,
        Action.REVOKE_USER_MANAGER,
        Action.EDIT_PRACTICE,
        Action.SUBSCRIBE_PRACTICE,
        Action.GRANT_PRODUCT,
        Action.REVOKE_PRODUCT,
        Action.DEACTIVATE,
        Action.END_USER_SESSIONS,
        Action.MARK_PASSWORD_COMPROMISED,
        Action.CLEAR_CODE_GUESSES,
        Action.PUT_CARD_ON_FILE_FOR,
    }
)
#: Actions of support staff on the portal's own staff, never on practice users (OP-1).
STAFF_ACTIONS = frozenset(
    {Action.CREATE_SUPPORT_STAFF, Action.LIST_SUPPORT_STAFF, Action.DEACTIVATE_SUPPORT_STAFF}
)
#: Support actions whose subject is a practice rather than a user.
_PRACTICE_SUBJECT = frozenset({Action.EDIT_PRACTICE, Action.SUBSCRIBE_PRACTICE})

_MESSAGES = {
    "ok": "Allowed.",
    "permission.actor_inactive": "Your account is locked or deactivated.",
    "permission.other_practice": "This user or practice is not part of your practice's account.",
    "permission.not_user_manager": "Only a User Manager of the practice can do this.",
    "permission.support_only": "Only support staff can do this.",
    "permission.not_support_action": "Support staff cannot do this.",
    "permission.not_self": "You can do this only for your own account.",
    "permission.not_practice_user": "Support actions apply to practice users only.",
    "permission.not_support_staff": "This action applies to support staff only.",
    "permission.no_subject": "This action needs a user or a practice to act on.",
}


@attrs.frozen(kw_only=True)
class Decision:
    """Whether an action is allowed and, when it is not, the stable code of the reason.

    ``reason`` is ``ok`` when allowed, otherwise a ``permission.*`` code;
    ``message`` is its plain-English text.
    """

    allowed: bool
    reason: str

    @property
    def message(self) -> str:
        """The reason in plain English, fit to show to the actor."""
        return _MESSAGES[self.reason]


_ALLOWED = Decision(allowed=True, reason="ok")


def _deny(reason: str) -> Decision:
    return Decision(allowed=False, reason=reason)


def is_support(user: User) -> bool:
    """Whether ``user`` is support staff: the role, and no practice (UM-1)."""
    return Role.SUPPORT in user.roles and user.practice_id is None


def is_user_manager(user: User) -> bool:
    """Whether ``user`` is a User Manager: the role, on a practice user (UM-1)."""
    return Role.USER_MANAGER in user.roles and user.practice_id is not None


def decide(
    actor: User,
    action: Action,
    subject: User | None = None,
    practice_id: str | None = None,
) -> Decision:
    """Decide whether ``actor`` may do ``action`` to ``subject`` (a user) or ``practice_id``.

    When a subject user is given, the practice acted in is theirs and
    ``practice_id`` is ignored.
    """
    if actor.locked or actor.deactivated:
        return _deny("permission.actor_inactive")
    target = subject.practice_id if subject is not None else practice_id
    if action in SUPPORT_ACTIONS:
        return _support(actor, action, subject, target)
    if action in STAFF_ACTIONS:
        return _staff(actor, action, subject)
    if action in SELF_ACTIONS:
        return _self(actor, action, subject)
    return _manager(actor, subject, target)


def _manager(actor: User, subject: User | None, target: str | None) -> Decision:
    if is_support(actor):
        return _deny("permission.not_support_action")
    if not is_user_manager(actor):
        return _deny("permission.not_user_manager")
    if target is None and subject is None:
        return _deny("permission.no_subject")
    if target != actor.practice_id:
        return _deny("permission.other_practice")
    return _ALLOWED


def _support(actor: User, action: Action, subject: User | None, target: str | None) -> Decision:
    if not is_support(actor):
        return _deny("permission.support_only")
    if action in _PRACTICE_SUBJECT:
        return _ALLOWED if target is not None else _deny("permission.no_subject")
    if subject is None:
        return _deny("permission.no_subject")
    if subject.practice_id is None:
        return _deny("permission.not_practice_user")
    return _ALLOWED


def _staff(actor: User, action: Action, subject: User | None) -> Decision:
    if not is_support(actor):
        return _deny("permission.support_only")
    if action is not Action.DEACTIVATE_SUPPORT_STAFF:
        return _ALLOWED
    if subject is None:
        return _deny("permission.no_subject")
    return _ALLOWED if is_support(subject) else _deny("permission.not_support_staff")


def _self(actor: User, action: Action, subject: User | None) -> Decision:
    if subject is not None and subject.id != actor.id:
        return _deny("permission.not_self")
    if action is Action.PUT_CARD_ON_FILE and actor.practice_id is None:
        return _deny("permission.not_support_action")
    return _ALLOWED
