"""The testing kit: what users test their own code and their own adapters with.

The fakes of the portal's world, each in one import: `FakeClock` (moves only
when told), `Outbox` (every email, text and call, read as a user reads their
phone), `MemoryStorage`, `FaultyStorage` (fails on the call you pick),
`InMemoryPaymentProcessor`, and `World`, which puts practices and registered,
signed-in users into a store in one call each.

`securepractice.testing.contract` holds the storage contract suite (it needs
pytest and hypothesis): subclass its `StorageContract` to prove that a store
of your own keeps every promise of `securepractice.storage.ports`.
`securepractice.testing.postgres` starts a throwaway PostgreSQL server (a
unix socket in a temporary folder) for tests of a portal on PostgreSQL.
"""

from __future__ import annotations

from securepractice.clock import FakeClock
from securepractice.messaging.outbox import Outbox
from securepractice.practice.payments import InMemoryPaymentProcessor
from securepractice.storage.faults import FaultyStorage
from securepractice.storage.memory import MemoryStorage
from securepractice.testing.world import PASSWORD, Member, World

__all__ = [
    "PASSWORD",
    "FakeClock",
    "FaultyStorage",
    "InMemoryPaymentProcessor",
    "Member",
    "MemoryStorage",
    "Outbox",
    "World",
]
