"""A world builder: practices and registered users in a store, in one call each.

Tests of a portal built on this library need users that have finished
registration. Going through the invitation flow for each is slow and beside
the point; `World` writes the records the flow would have written, and
signs users in through the real sign-in, so the sessions are real.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import attrs

from securepractice.dependencies import Dependencies
from securepractice.records import (
    Credential,
    Phone,
    Practice,
    RegistrationStatus,
    Role,
    User,
)

__all__ = ["PASSWORD", "Member", "World"]

#: The password `World` gives every registered user unless told otherwise.
PASSWORD = "Sunshine-2026"


@attrs.frozen(kw_only=True)
class Member:
    """A registered user and the token of their signed-in session."""

    user: User
    token: str = attrs.field(repr=False)

    @property
    def id(self) -> str:
        """The user's id."""
        return self.user.id


class World:
    """Practices and users written straight into the store of ``deps``.

    Every user has a password (`PASSWORD` unless given) hashed with the
    portal's own hasher, so that `sign_in` works as for a user who
    registered.
    """

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    def practice(self, name: str = "Smile Dental", *, practice_id: str | None = None) -> Practice:
        """Store a new practice, under ``practice_id`` when the test names it, and return it."""
        practice = Practice(
            id=uuid.uuid4().hex if practice_id is None else practice_id,
            name=name,
            created_at=self._deps.now(),
        )
        with self._deps.unit() as uow:
            uow.practices.add(practice)
        return practice

    def user(
        self,
        email: str,
        *,
        practice: Practice | None = None,
        password: str | None = PASSWORD,
        roles: Iterable[Role] = (Role.USER,),
        phones: tuple[Phone, ...] = (),
        two_step: bool = True,
        first_name: str = "Dana",
        last_name: str = "Smith",
        locked: bool = False,
        deactivated: bool = False,
    ) -> User:
        """Store a user of ``practice`` (support staff have none) and return it.

        With a ``password`` the user is registered; with None they are
        invited and have not finished registration. ``locked`` and
        ``deactivated`` give a user as a lockout or a User Manager left them.
        ``email`` must be in its normal form
        (`~securepractice.policy.identity.normalize_email`).
        """
        now = self._deps.now()
        user = User(
            id=uuid.uuid4().hex,
            practice_id=practice.id if practice is not None else None,
            email=email,
            first_name=first_name,
            last_name=last_name,
            phones=phones,
            roles=frozenset(roles),
            status=RegistrationStatus.INVITED
            if password is None
            else RegistrationStatus.REGISTERED,
            two_step_enabled=two_step,
            locked=locked,
            deactivated=deactivated,
            created_at=now,
        )
        with self._deps.unit() as uow:
            uow.users.add(user)
            if password is not None:
                uow.credentials.add(
                    Credential(
                        user_id=user.id,
                        password_hash=self._deps.hasher.hash(password),
                        set_at=now,
                    )
                )
        return user

    def sign_in(self, email: str, password: str = PASSWORD) -> str:
        """Sign in through the real sign-in and return the session token.

        Raises `AssertionError` when the sign-in gives no full session (an
        expired password gives one for the change of password only), with
        the reason for the test's report (never the password).
        """
        from securepractice.accounts import signin  # noqa: PLC0415 - services load on use

        result = signin.sign_in(self, email=email, password=password)
        if not result.ok or result.session_token is None:
            msg = f"sign-in of a world user was refused: {result.reason.value}"
            raise AssertionError(msg)
        return result.session_token.reveal()

    def member(
        self,
        email: str,
        *,
        practice: Practice | None = None,
        roles: Iterable[Role] = (Role.USER,),
        phones: tuple[Phone, ...] = (),
    ) -> Member:
        """Store a registered user with `PASSWORD` and sign them in: one call for a test's actor."""
        user = self.user(email, practice=practice, roles=roles, phones=phones)
        return Member(user=user, token=self.sign_in(email))

    @property
    def deps(self) -> Dependencies:
        """The collaborators of the world: it is a `~securepractice.dependencies.Service` too."""
        return self._deps
