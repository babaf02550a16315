"""The portal's actions as awaitables, for asyncio applications (FastAPI, Starlette).

```python
portal = Portal.postgres(conninfo, messaging=messaging, settings=settings)
aportal = AsyncPortal(portal)

@app.post("/sign-in")
async def sign_in(form: SignInForm, request: Request) -> ...:
    with aportal.request(RequestContext(client_address=request.client.host)):
        result = await aportal.call(aportal.accounts.sign_in,
                                    email=form.email, password=form.password)
```

Every action is the same function of the same core as the blocking one:
`call` runs it in a bounded pool of worker threads and awaits it, so the
event loop never waits on argon2 (which releases the interpreter lock while
it hashes, and is bounded further by ``HashParameters.max_concurrent``) nor
on the store. The request context of the calling task
(`securepractice.context`) goes with the call into its worker thread.

Threads rather than an async driver: the store's units of work, retries and
the in-flight marker of sign-in (LK-4, DP-5) stay one implementation, tested
once on every store, and a worker thread costs the loop nothing while it
waits. Argon2 dominates every action that hashes; an async driver would
save a thread hop on the rest.

What is safe to share: one `Portal` (and one `AsyncPortal` over it) serves
every thread of a process and every task of a loop; the stores pool their
connections, the hasher bounds its own concurrency, and the request context
belongs to one thread or task. A unit of work belongs to the thread that
opened it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import math
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import ParamSpec, TypeVar

from typing_extensions import Self

from securepractice.context import RequestContext
from securepractice.errors import SettingsError
from securepractice.events import EventHooks
from securepractice.portal import Accounts, Billing, Portal, PracticeAdministration
from securepractice.settings import HashParameters

__all__ = ["AsyncPortal"]

P = ParamSpec("P")
T = TypeVar("T")

#: The fewest worker threads: one action may wait on the store while another hashes.
_FEWEST_WORKERS = 2
#: How much lower the workers' priority is than the loop's (Linux ``nice``: 0 to 19).
_WORKER_NICENESS = 10


def _yield_to_the_loop() -> None:
    """Lower the worker thread's scheduling priority, so the event loop's thread goes first.

    With the processors busy hashing, a loop that wakes for a timer or a
    socket would otherwise wait for a time slice behind every hashing
    thread. Linux sets a priority per thread; elsewhere the workers keep
    the process's.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _WORKER_NICENESS)


def _default_workers(hashing: HashParameters) -> int:
    """Return enough threads to keep every processor hashing, and no more (at least two).

    Each hash runs ``parallelism`` lanes at once, so a few hashes fill the
    processors; a thread more only waits, for the processors and for the
    interpreter lock, which the loop's thread then waits for too: each
    thread that wants the lock when the loop does can keep it waiting a
    switch interval (5 ms).
    """
    filling = math.ceil((os.cpu_count() or 1) / hashing.parallelism)
    return min(hashing.max_concurrent, max(_FEWEST_WORKERS, filling))


class AsyncPortal:
    """A `Portal` for an event loop: each action awaited, run in a bounded pool of threads.

    ``workers`` bounds the threads: by default as many hashes as fill the
    processors (each runs ``HashParameters.parallelism`` lanes), at least
    two and at most ``HashParameters.max_concurrent``. More hashes at once
    finish no sooner, take ``memory_cost`` each, and keep the loop waiting
    for the interpreter lock. The pool is this
    object's: `aclose` (or ``async with``) shuts it down after the actions
    in flight; the portal stays open, for its owner to close.
    """

    def __init__(self, portal: Portal, *, workers: int | None = None) -> None:
        if not isinstance(portal, Portal):
            raise SettingsError("portal", "must be a Portal")
        size: object = (
            _default_workers(portal.deps.settings.hashing) if workers is None else workers
        )
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise SettingsError("workers", "must be a whole number of threads, at least 1")
        self.portal = portal
        self._pool = ThreadPoolExecutor(
            max_workers=size, thread_name_prefix="securepractice", initializer=_yield_to_the_loop
        )

    def __repr__(self) -> str:
        return f"AsyncPortal(workers={self._pool._max_workers})"  # noqa: SLF001

    @property
    def accounts(self) -> Accounts:
        """The portal's account actions, to name in `call`."""
        return self.portal.accounts

    @property
    def practice(self) -> PracticeAdministration:
        """The portal's User Manager and support actions, to name in `call`."""
        return self.portal.practice

    @property
    def billing(self) -> Billing:
        """The portal's SecureMail billing actions, to name in `call`."""
        return self.portal.billing

    @property
    def events(self) -> EventHooks:
        """The portal's event hooks (OP-5); handlers run in the worker thread of the action."""
        return self.portal.events

    @staticmethod
    def request(context: RequestContext | None) -> AbstractContextManager[RequestContext | None]:
        """Give the calls the current task makes inside the block the request's context (CX-1)."""
        return Portal.request(context)

    async def call(self, action: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``action`` (such as ``aportal.accounts.sign_in``) in the pool and await its result.

        The calling task's request context goes with it; its errors are
        raised here, as the blocking call would raise them.
        """
        context = contextvars.copy_context()
        run = functools.partial(context.run, action, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    async def aclose(self) -> None:
        """Shut the pool down once the actions in flight have finished; the loop goes on."""
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
