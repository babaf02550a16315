"""The pure permission rule `decide` (UM-1, UM-2, UM-8, SP-1, SB-1, PF-2, PW-9)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice import Role, User
from securepractice.policy.roles import (
    MANAGER_ACTIONS,
    SELF_ACTIONS,
    STAFF_ACTIONS,
    SUPPORT_ACTIONS,
    Action,
    decide,
    is_support,
    is_user_manager,
)

WHEN = datetime(2026, 1, 5, tzinfo=timezone.utc)
PRACTICES = ("p1", "p2", "p3")


def person(
    user_id: str = "u1",
    practice_id: str | None = "p1",
    roles: set[Role] | None = None,
    *,
    locked: bool = False,
    deactivated: bool = False,
) -> User:
    return User(
        id=user_id,
        practice_id=practice_id,
        email=f"{user_id}@example.com",
        roles=frozenset(roles if roles is not None else {Role.USER}),
        locked=locked,
        deactivated=deactivated,
        created_at=WHEN,
    )


users = st.builds(
    person,
    user_id=st.sampled_from(["u1", "u2", "u3", "u4"]),
    practice_id=st.sampled_from((None, *PRACTICES)),
    roles=st.sets(st.sampled_from(list(Role))),
    locked=st.booleans(),
    deactivated=st.booleans(),
)
triples = st.tuples(
    users,
    st.sampled_from(list(Action)),
    st.none() | users,
    st.none() | st.sampled_from(PRACTICES),
)


def ordered(actions: frozenset[Action]) -> list[Action]:
    return sorted(actions, key=lambda action: action.value)


MANAGER = person("m1", "p1", {Role.USER, Role.USER_MANAGER})
USER = person("u1", "p1")
NEIGHBOUR = person("u9", "p2")
SUPPORT = person("s1", None, {Role.SUPPORT})


def test_the_action_groups_cover_every_action_once() -> None:
    """Every action is a manager, self, support or staff action, and only one of them."""
    groups = (MANAGER_ACTIONS, SELF_ACTIONS, SUPPORT_ACTIONS, STAFF_ACTIONS)
    assert set(Action) == MANAGER_ACTIONS | SELF_ACTIONS | SUPPORT_ACTIONS | STAFF_ACTIONS
    assert sum(len(g) for g in groups) == len(Action)


@given(triples)
def test_um2_a_user_manager_acts_only_inside_their_own_practice(
    triple: tuple[User, Action, User | None, str | None],
) -> None:
    """UM-2: an allowed manager action is by an active User Manager, in their own practice."""
    actor, action, subject, practice_id = triple
    decision = decide(actor, action, subject, practice_id)
    if decision.allowed and action in MANAGER_ACTIONS:
        target = subject.practice_id if subject is not None else practice_id
        assert Role.USER_MANAGER in actor.roles
        assert actor.practice_id is not None
        assert target == actor.practice_id
        assert not actor.locked
        assert not actor.deactivated


@given(triples)
def test_sp1_support_acts_only_through_the_support_actions(
    triple: tuple[User, Action, User | None, str | None],
) -> None:
    """SP-1, UM-8, PF-2, SB-1: support staff do support actions only, and only they do them."""
    actor, action, subject, practice_id = triple
    decision = decide(actor, action, subject, practice_id)
    if not decision.allowed:
        return
    if action in SUPPORT_ACTIONS | STAFF_ACTIONS:
        assert Role.SUPPORT in actor.roles
        assert actor.practice_id is None
    if action in SUPPORT_ACTIONS:
        assert subject is None or subject.practice_id is not None
    if action in STAFF_ACTIONS:
        assert subject is None or subject.practice_id is None
    if Role.SUPPORT in actor.roles and actor.practice_id is None:
        # A person is their id: the subject may be the actor's record read at another time.
        own = subject is None or subject.id == actor.id
        own_dashboard = action is Action.VIEW_DASHBOARD and own
        assert action in SUPPORT_ACTIONS | STAFF_ACTIONS or own_dashboard


@given(triples)
def test_um1_a_plain_user_acts_only_on_themselves(
    triple: tuple[User, Action, User | None, str | None],
) -> None:
    """UM-1: a user who is neither manager nor support may act only on their own account."""
    actor, action, subject, practice_id = triple
    decision = decide(actor, action, subject, practice_id)
    plain = not is_user_manager(actor) and not is_support(actor)
    if decision.allowed and plain:
        assert action in SELF_ACTIONS
        assert subject is None or subject.id == actor.id
    if decision.allowed:
        assert not actor.locked
        assert not actor.deactivated
    else:
        assert decision.reason.startswith("permission.")
        assert decision.message


@given(st.sampled_from(ordered(MANAGER_ACTIONS)), st.booleans())
def test_um2_a_manager_may_do_every_manager_action_in_their_practice(
    action: Action, on_self: bool
) -> None:
    """UM-3..UM-7: each manager action is allowed on a user of the manager's practice."""
    subject = MANAGER if on_self else USER
    assert decide(MANAGER, action, subject).allowed
    assert decide(MANAGER, action, practice_id="p1").allowed


@given(st.sampled_from(ordered(MANAGER_ACTIONS)))
def test_um2_other_practice_is_refused_for_every_manager_action(action: Action) -> None:
    """UM-2: a manager acting on another practice's user or practice is refused."""
    assert decide(MANAGER, action, NEIGHBOUR).reason == "permission.other_practice"
    assert decide(MANAGER, action, practice_id="p2").reason == "permission.other_practice"
    assert decide(MANAGER, action, SUPPORT).reason == "permission.other_practice"
    assert decide(MANAGER, action).reason == "permission.no_subject"


@pytest.mark.parametrize("action", ordered(SUPPORT_ACTIONS))
def test_sp1_support_may_do_every_support_action_on_any_practice(action: Action) -> None:
    """SP-1, UM-8, PF-2, SB-1: support acts on users and practices of every practice."""
    assert decide(SUPPORT, action, NEIGHBOUR, "p2").allowed
    assert decide(SUPPORT, action, USER).allowed
    assert decide(MANAGER, action, USER).reason == "permission.support_only"
    assert decide(USER, action, USER).reason == "permission.support_only"


def test_sp1_support_acts_on_practice_users_only() -> None:
    """Support staff cannot unlock, promote or deactivate other staff, nor act on nobody."""
    other_staff = person("s2", None, {Role.SUPPORT})
    assert decide(SUPPORT, Action.DEACTIVATE, other_staff).reason == "permission.not_practice_user"
    assert decide(SUPPORT, Action.UNLOCK).reason == "permission.no_subject"
    assert decide(SUPPORT, Action.EDIT_PRACTICE).reason == "permission.no_subject"
    assert decide(SUPPORT, Action.EDIT_PRACTICE, practice_id="p3").allowed


@pytest.mark.parametrize("action", ordered(STAFF_ACTIONS))
def test_op1_only_support_staff_act_on_the_staff(action: Action) -> None:
    """OP-1: support invite, list and deactivate staff; no one else does, and never on users."""
    other_staff = person("s2", None, {Role.SUPPORT})
    assert decide(SUPPORT, action, other_staff).allowed
    assert decide(SUPPORT, action, SUPPORT).allowed
    assert decide(MANAGER, action, other_staff).reason == "permission.support_only"
    assert decide(USER, action).reason == "permission.support_only"
    on_user = decide(SUPPORT, action, USER)
    alone = decide(SUPPORT, action)
    if action is Action.DEACTIVATE_SUPPORT_STAFF:
        assert on_user.reason == "permission.not_support_staff"
        assert alone.reason == "permission.no_subject"
    else:
        assert on_user.allowed
        assert alone.allowed


@pytest.mark.parametrize("action", ordered(MANAGER_ACTIONS))
def test_sp1_support_cannot_do_manager_actions(action: Action) -> None:
    """Support staff do not act as a practice's User Manager."""
    assert decide(SUPPORT, action, USER).reason == "permission.not_support_action"
    assert decide(USER, action, USER).reason == "permission.not_user_manager"


def test_um1_roles_count_only_where_they_fit() -> None:
    """UM-1: support is staff with no practice; User Manager is a practice user's capability."""
    confused = person("x", "p1", {Role.SUPPORT})
    assert not is_support(confused)
    assert decide(confused, Action.UNLOCK, USER).reason == "permission.support_only"
    floating = person("y", None, {Role.USER_MANAGER})
    assert not is_user_manager(floating)
    assert decide(floating, Action.LIST_USERS, practice_id="p1").reason == (
        "permission.not_user_manager"
    )


@pytest.mark.parametrize("flag", ["locked", "deactivated"])
def test_an_inactive_actor_may_do_nothing(flag: str) -> None:
    """A locked or deactivated actor is refused every action, even on themselves."""
    manager = person("m1", "p1", {Role.USER, Role.USER_MANAGER}, **{flag: True})
    staff = person("s1", None, {Role.SUPPORT}, **{flag: True})
    for action in Action:
        assert decide(manager, action, manager).reason == "permission.actor_inactive"
        assert decide(staff, action, USER, "p1").reason == "permission.actor_inactive"


def test_self_actions_are_for_ones_own_account() -> None:
    """A card and a dashboard are one's own; support staff have no card to put."""
    assert decide(USER, Action.PUT_CARD_ON_FILE, USER).allowed
    assert decide(USER, Action.VIEW_DASHBOARD).allowed
    assert decide(MANAGER, Action.PUT_CARD_ON_FILE, USER).reason == "permission.not_self"
    assert decide(SUPPORT, Action.VIEW_DASHBOARD, SUPPORT).allowed
    assert decide(SUPPORT, Action.PUT_CARD_ON_FILE, SUPPORT).reason == (
        "permission.not_support_action"
    )


def test_pw9_no_action_concerns_a_password() -> None:
    """PW-9: the permission rule has no action that sets, sees or resets a password.

    The one action that names a password marks it compromised (RC-4), which
    makes its user choose a new one; it sets, shows and resets nothing.
    """
    assert [a for a in Action if "password" in a.value] == [Action.MARK_PASSWORD_COMPROMISED]
