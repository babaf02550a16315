"""The practice tests' world: two practices, their users, support staff, all signed in.

Actors are stored by `securepractice.testing.World` and signed in through
the real sign-in flow.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from securepractice import Outbox, Role, User
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts, Billing, PracticeAdministration
from securepractice.testing import InMemoryPaymentProcessor, World

#: The roles of a practice's User Manager.
MANAGER = (Role.USER, Role.USER_MANAGER)
#: The roles of the portal's support staff.
SUPPORT = (Role.SUPPORT,)


class Office:
    """Two practices, A and B, with their users, and a support staff member."""

    def __init__(self, context: Dependencies, processor: InMemoryPaymentProcessor) -> None:
        self.context = context
        self.processor = processor
        self.accounts = Accounts(context)
        self.practice = PracticeAdministration(context)
        self.billing = Billing(context, processor)
        self.world = world = World(context)
        self.practice_a = world.practice("Alpha Dental", practice_id="practice-a")
        self.practice_b = world.practice("Beta Medical", practice_id="practice-b")
        self.manager_a = world.member(
            "manager@alpha.example", practice=self.practice_a, roles=MANAGER
        )
        self.user_a = world.member("user@alpha.example", practice=self.practice_a)
        self.invited_a = world.user(
            "invited@alpha.example", practice=self.practice_a, password=None
        )
        self.manager_b = world.member(
            "manager@beta.example", practice=self.practice_b, roles=MANAGER
        )
        self.user_b = world.member("user@beta.example", practice=self.practice_b)
        self.invited_b = world.user("invited@beta.example", practice=self.practice_b, password=None)
        self.support = world.member("help@portal.example", roles=SUPPORT)

    @property
    def outbox(self) -> Outbox:
        """The outbox every message goes to."""
        outbox = self.context.messaging.email
        assert isinstance(outbox, Outbox)
        return outbox

    def get(self, user_id: str) -> User:
        """Read a user from the store."""
        with self.context.storage.unit_of_work() as uow:
            user = uow.users.get(user_id)
        assert user is not None
        return user


def link_token(link: str) -> str:
    """Return the token an e-mailed link carries."""
    return parse_qs(urlparse(link).query)["token"][0]
