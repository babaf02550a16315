"""The async face under load: a heartbeat on the loop while 100 sign-ins are in flight.

A task on the event loop wakes every 10 ms and notes how late each wake is,
while 100 sign-ins with the default argon2 parameters run concurrently
through `AsyncPortal` (its default pool) over a SQLite file, each as a
different registered user with the right password; three rounds, and the
worst wake of all of them is the figure. The claim: the heartbeat is never late by
more than 20 ms, because neither argon2 nor the store runs on the loop.
The same load is then run with the blocking calls made on the loop itself,
side by side, to show what the claim guards against.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from _portal import sqlite_context
from _timing import mode_line, scaled

from securepractice import HashParameters, Portal
from securepractice.aio import AsyncPortal
from securepractice.testing import PASSWORD, World

CONCURRENT = scaled(100, 20)
#: The load runs this many times, one after another, over the same portal and loop.
ROUNDS = scaled(3, 1)
#: How many sign-ins the side-by-side run makes on the loop itself: enough to show it stall.
BLOCKING = 10
BEAT = 0.010
LATE_LIMIT = 0.020


async def _heartbeat(stop: asyncio.Event, lateness: list[float]) -> None:
    """Wake every `BEAT` seconds until ``stop``; note how late each wake was."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        planned = loop.time() + BEAT
        await asyncio.sleep(BEAT)
        lateness.append(max(0.0, loop.time() - planned))


async def _under_load(sign_ins: Callable[[], Awaitable[object]]) -> tuple[list[float], float]:
    """Run the heartbeat during ``sign_ins``; return each wake's lateness and the load's time."""
    stop = asyncio.Event()
    lateness: list[float] = []
    beat = asyncio.create_task(_heartbeat(stop, lateness))
    await asyncio.sleep(BEAT * 3)
    started = time.perf_counter()
    await sign_ins()
    took = time.perf_counter() - started
    stop.set()
    await beat
    return lateness, took


def _report(name: str, count: int, lateness: list[float], took: float) -> float:
    worst = max(lateness)
    p99 = statistics.quantiles(lateness, n=100)[-1] if len(lateness) > 1 else worst
    print(
        f"{name}: {count} sign-ins in {took:.2f} s; {len(lateness)} beats, "
        f"median late {statistics.median(lateness) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
        f"worst {worst * 1000:.2f} ms"
    )
    return worst


async def _main(folder: Path) -> int:
    print(f"The async face under 100 sign-ins; {mode_line()}")
    deps = sqlite_context(folder, HashParameters())
    world = World(deps)
    practice = world.practice()
    emails = [f"user{n}@example.com" for n in range(CONCURRENT)]
    for email in emails:
        world.user(email, practice=practice)
    portal = Portal(storage=deps.storage, messaging=deps.messaging, settings=deps.settings,
                    clock=deps.clock)  # fmt: skip
    async with AsyncPortal(portal) as aportal:

        async def off_the_loop() -> None:
            results = await asyncio.gather(
                *(
                    aportal.call(aportal.accounts.sign_in, email=e, password=PASSWORD)
                    for e in emails
                )
            )
            assert all(r.ok for r in results)

        async def on_the_loop() -> None:
            for email in emails[:BLOCKING]:
                assert portal.accounts.sign_in(email=email, password=PASSWORD).ok

        worst = 0.0
        for n in range(1, ROUNDS + 1):
            late, took = await _under_load(off_the_loop)
            worst = max(worst, _report(f"AsyncPortal.call, round {n}", CONCURRENT, late, took))
        _report("blocking calls on the loop", BLOCKING, *await _under_load(on_the_loop))
        print(f"AsyncPortal's worker threads: {aportal!r}")
    portal.close()
    verdict = "met" if worst <= LATE_LIMIT else "missed"
    print(f"heartbeat never later than {LATE_LIMIT * 1000:.0f} ms: {verdict}")
    return 0


def main() -> int:
    """Run the benchmark and print its figures; like the others, it reports and never fails."""
    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(_main(Path(folder)))


if __name__ == "__main__":
    sys.exit(main())
