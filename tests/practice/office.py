"""The practice tests' world: two practices, their users, support staff, all signed in.

Actors are created through the store and signed in through the real
sign-in flow.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlparse

import attrs

from securepractice import (
    Credential,
    Outbox,
    Practice,
    RegistrationStatus,
    Role,
    User,
)
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts, Billing, PracticeAdministration
from securepractice.practice.payments import InMemoryPaymentProcessor

PASSWORD = "Sunshine-2026"


@attrs.frozen(kw_only=True)
class Actor:
    """A user and the token of their signed-in session."""

    user: User
    token: str

    @property
    def id(self) -> str:
        """The user's id."""
        return self.user.id


class Office:
    """Two practices, A and B, with their users, and a support staff member."""

    def __init__(self, context: Dependencies, processor: InMemoryPaymentProcessor) -> None:
        self.context = context
        self.processor = processor
        self.accounts = Accounts(context)
        self.practice = PracticeAdministration(context)
        self.billing = Billing(context, processor)
        now = context.clock.now()
        self.practice_a = Practice(id="practice-a", name="Alpha Dental", created_at=now)
        self.practice_b = Practice(id="practice-b", name="Beta Medical", created_at=now)
        with context.storage.unit_of_work() as uow:
            uow.practices.add(self.practice_a)
            uow.practices.add(self.practice_b)
        self.manager_a = self.signed_in("manager@alpha.example", "practice-a", manager=True)
        self.user_a = self.signed_in("user@alpha.example", "practice-a")
        self.invited_a = self.add("invited@alpha.example", "practice-a", registered=False)
        self.manager_b = self.signed_in("manager@beta.example", "practice-b", manager=True)
        self.user_b = self.signed_in("user@beta.example", "practice-b")
        self.invited_b = self.add("invited@beta.example", "practice-b", registered=False)
        self.support = self.signed_in("help@portal.example", None, support=True)

    @property
    def outbox(self) -> Outbox:
        """The outbox every message goes to."""
        outbox = self.context.messaging.email
        assert isinstance(outbox, Outbox)
        return outbox

    def add(
        self,
        email: str,
        practice_id: str | None,
        *,
        manager: bool = False,
        support: bool = False,
        registered: bool = True,
    ) -> User:
        """Store a user; a registered one gets a credential with `PASSWORD`."""
        roles = {Role.SUPPORT} if support else {Role.USER}
        if manager:
            roles.add(Role.USER_MANAGER)
        user = User(
            id=uuid.uuid4().hex,
            practice_id=practice_id,
            email=email,
            roles=frozenset(roles),
            status=RegistrationStatus.REGISTERED if registered else RegistrationStatus.INVITED,
            created_at=self.context.clock.now(),
        )
        with self.context.storage.unit_of_work() as uow:
            uow.users.add(user)
            if registered:
                uow.credentials.add(
                    Credential(
                        user_id=user.id,
                        password_hash=self.context.hasher.hash(PASSWORD),
                        set_at=self.context.clock.now(),
                    )
                )
        return user

    def signed_in(
        self,
        email: str,
        practice_id: str | None,
        *,
        manager: bool = False,
        support: bool = False,
    ) -> Actor:
        """Store a registered user and sign them in."""
        user = self.add(email, practice_id, manager=manager, support=support)
        return Actor(user=user, token=self.sign_in(email))

    def sign_in(self, email: str) -> str:
        """Sign in with `PASSWORD` and return the session token."""
        result = self.accounts.sign_in(email=email, password=PASSWORD)
        assert result.ok, result.reason
        assert result.session_token is not None
        return result.session_token.reveal()

    def get(self, user_id: str) -> User:
        """Read a user from the store."""
        with self.context.storage.unit_of_work() as uow:
            user = uow.users.get(user_id)
        assert user is not None
        return user


def link_token(link: str) -> str:
    """Return the token an e-mailed link carries."""
    return parse_qs(urlparse(link).query)["token"][0]
