"""The async face: every action awaited from a loop it never blocks, with its request context."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator

import pytest

from securepractice import InvalidToken, Messaging, Outbox, SettingsError
from securepractice.aio import AsyncPortal
from securepractice.context import RequestContext, current_request
from securepractice.portal import Portal
from securepractice.settings import Settings
from securepractice.testing import PASSWORD, World

EMAIL = "dr.smith@example.com"
#: No test waits longer than this for its loop.
BOUND = 10


@pytest.fixture
def portal(settings: Settings) -> Iterator[Portal]:
    with Portal.in_memory(messaging=Messaging.using(Outbox()), settings=settings) as opened:
        world = World(opened.deps)
        world.user(EMAIL, practice=world.practice())
        yield opened


def test_an_action_is_awaited_in_a_worker_thread_with_the_tasks_context(portal: Portal) -> None:
    loop_thread: list[int] = []

    async def main() -> None:
        loop_thread.append(threading.get_ident())
        async with AsyncPortal(portal) as aportal:
            with aportal.request(RequestContext(client_address="203.0.113.7")):
                result = await aportal.call(
                    aportal.accounts.sign_in, email=EMAIL, password=PASSWORD
                )
            assert result.ok

    asyncio.run(asyncio.wait_for(main(), BOUND))
    with portal.deps.storage.unit_of_work() as uow:
        (event,) = [e for e in uow.audit.events() if e.action == "sign_in"]
    assert event.client_address == "203.0.113.7"  # CX-1 across the thread hop


def test_the_loop_runs_on_while_an_action_waits(portal: Portal) -> None:
    """An action blocked in its thread until the loop itself frees it: on the loop, a deadlock."""
    released = threading.Event()
    ran_on: list[str] = []

    def blocking_action() -> str:
        ran_on.append(threading.current_thread().name)
        if not released.wait(BOUND):
            raise TimeoutError("the loop never ran while the action waited")
        return "done"

    async def main() -> str:
        async with AsyncPortal(portal) as aportal:
            waiting = asyncio.ensure_future(aportal.call(blocking_action))
            await asyncio.sleep(0)
            released.set()  # only possible because the loop was free
            return await waiting

    assert asyncio.run(asyncio.wait_for(main(), BOUND)) == "done"
    assert ran_on[0].startswith("securepractice")


def test_concurrent_tasks_keep_their_own_contexts(portal: Portal) -> None:  # CX-1
    async def one(aportal: AsyncPortal, address: str) -> str | None:
        with aportal.request(RequestContext(client_address=address)):
            await asyncio.sleep(0)
            seen = await aportal.call(current_request)
        return None if seen is None else seen.client_address

    async def main() -> list[str | None]:
        async with AsyncPortal(portal, workers=2) as aportal:
            addresses = [f"192.0.2.{n}" for n in range(1, 21)]
            return list(await asyncio.gather(*(one(aportal, a) for a in addresses)))

    assert asyncio.run(asyncio.wait_for(main(), BOUND)) == [f"192.0.2.{n}" for n in range(1, 21)]


def test_errors_reach_the_awaiting_task_and_refusals_are_audited(portal: Portal) -> None:
    async def main() -> None:
        async with AsyncPortal(portal) as aportal:
            await aportal.call(aportal.accounts.touch_session, "not a session")

    with pytest.raises(InvalidToken):
        asyncio.run(asyncio.wait_for(main(), BOUND))
    with portal.deps.storage.unit_of_work() as uow:
        assert [e.action for e in uow.audit.events()][-1] == "request.refused"


def test_the_pool_is_bounded_and_checked(portal: Portal) -> None:
    lanes = portal.deps.settings.hashing.parallelism
    filling = -(-(os.cpu_count() or 1) // lanes)  # hashes of `lanes` lanes that fill the processors
    assert f"workers={min(8, max(2, filling))}" in repr(AsyncPortal(portal))
    assert "workers=3" in repr(AsyncPortal(portal, workers=3))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(SettingsError):
            AsyncPortal(portal, workers=bad)  # type: ignore[arg-type]
    with pytest.raises(SettingsError):
        AsyncPortal(object())  # type: ignore[arg-type]
    assert AsyncPortal(portal).events is portal.events
