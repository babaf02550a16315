"""Change of password on SQLite at the default argon2 parameters.

Three figures:

* the time of one change of password with a full history (the current
  password verified, the new one checked against the last six, then hashed),
  as a ratio to one bare ``argon2`` verify with the same parameters;
* the latency of another writer's units of work (a failure count of another
  user, once a millisecond) while changes of password run, against the
  same loop alone: argon2 runs outside any unit of work, so no change holds the write
  lock for a hash's length;
* the time of an ``update_profile``, which hashes nothing.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

import argon2
from _portal import sqlite_context
from _timing import mode_line, scaled

from securepractice import (
    HashParameters,
)
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts
from securepractice.secret import Secret
from securepractice.testing import World

FIRST = "Sunshine-2026"
CHANGES = scaled(4, 2)
VERIFIES = scaled(10, 3)
UPDATES = scaled(200, 50)
#: How long the other writer runs alone, in seconds.
ALONE = scaled(20, 5) / 10


def setup(folder: Path) -> tuple[Accounts, Dependencies, str]:
    """Return the actions, their context and the id of the user the other writer counts for."""
    context = sqlite_context(folder)
    world = World(context)
    practice = world.practice()
    world.user("dr@example.com", practice=practice, password=FIRST)
    other = world.user("other@example.com", practice=practice, password=None)
    return Accounts(context), context, other.id


def writer_latencies(context: Dependencies, user_id: str, stop: threading.Event) -> list[float]:
    """Run a one-count unit each millisecond until ``stop``; return their times in ms."""
    latencies: list[float] = []
    while not stop.is_set():
        start = time.perf_counter()
        now = context.clock.now()
        with context.storage.unit_of_work() as uow:
            uow.sign_in_failures.start(user_id, now=now, abandoned_before=now)
        latencies.append((time.perf_counter() - start) * 1000)
        # A request a millisecond, not a tight loop: SQLite's busy handler is not
        # fair, and a writer that never pauses can starve the others.
        time.sleep(0.001)
    return latencies


def writer_alone(context: Dependencies, user_id: str, seconds: float) -> list[float]:
    """Run the writer for ``seconds`` with nothing else running; return its latencies."""
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    return writer_latencies(context, user_id, stop)


def main() -> None:
    params = HashParameters()
    bare = argon2.PasswordHasher(
        time_cost=params.time_cost, memory_cost=params.memory_cost, parallelism=params.parallelism
    )
    stored = bare.hash(FIRST)
    verify_samples = []
    for _ in range(VERIFIES):
        start = time.perf_counter()
        bare.verify(stored, FIRST)
        verify_samples.append((time.perf_counter() - start) * 1000)
    verify = statistics.median(verify_samples)

    with tempfile.TemporaryDirectory() as folder:
        profile, context, other = setup(Path(folder))
        signed_in = profile.sign_in(email="dr@example.com", password=FIRST)
        assert signed_in.session_token is not None
        token: Secret[str] = signed_in.session_token
        current = FIRST
        # Fill the history, so that every timed change checks six hashes.
        for n in range(context.settings.password.history):
            new = f"Harbor-{n}-Fill!"
            result = profile.change_password(
                token, current_password=current, new_password=new, confirmation=new
            )
            assert result.session_token is not None
            token, current = result.session_token, new

        alone = writer_alone(context, other, ALONE)

        def timed_changes(count: int, label: str) -> list[float]:
            nonlocal token, current
            samples = []
            for n in range(count):
                new = f"Harbor-{n}-{label}!"
                start = time.perf_counter()
                result = profile.change_password(
                    token, current_password=current, new_password=new, confirmation=new
                )
                samples.append((time.perf_counter() - start) * 1000)
                assert result.session_token is not None
                token, current = result.session_token, new
            return samples

        change_ms = timed_changes(CHANGES, "Alone")
        stop = threading.Event()
        busy: list[float] = []
        writer = threading.Thread(
            target=lambda: busy.extend(writer_latencies(context, other, stop))
        )
        writer.start()
        contended_ms = timed_changes(CHANGES, "Busy")
        stop.set()
        writer.join()

        update_ms = []
        for n in range(UPDATES):
            start = time.perf_counter()
            profile.update_profile(token, first_name=f"Robin {n}")
            update_ms.append((time.perf_counter() - start) * 1000)
        context.storage.close()

    change = statistics.median(change_ms)
    print(f"change of password on SQLite; {mode_line()}")
    print(f"default parameters: bare argon2 verify {verify:.1f} ms")
    # One verify of the current password, one per remembered hash, one hash of the new one.
    operations = 1 + context.settings.password.history + 1
    print(
        f"change_password with a full history: median {change:.1f} ms over {CHANGES},"
        f" ratio to one verify {change / verify:.2f} for {operations} argon2 operations"
        f" ({change / operations / verify:.2f} verifies' time per operation)"
    )
    print(
        f"another writer alone: median {statistics.median(alone):.2f} ms,"
        f" max {max(alone):.2f} ms over {len(alone)} units"
    )
    print(f"change_password while the writer runs: median {statistics.median(contended_ms):.1f} ms")
    print(
        f"another writer during changes: median {statistics.median(busy):.2f} ms,"
        f" max {max(busy):.2f} ms over {len(busy)} units"
        f" (max / one verify {max(busy) / verify:.2f})"
    )
    print(f"update_profile: median {statistics.median(update_ms):.2f} ms over {UPDATES}")


if __name__ == "__main__":
    main()
