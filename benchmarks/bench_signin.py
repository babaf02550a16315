"""Sign-in on SQLite: the library's cost over one argon2 verify, and LK-5 timing.

Two figures:

* a sign-in with the right password at the default argon2 parameters, as a
  ratio to one bare ``argon2`` verify with the same parameters (the
  library's own work should add at most 5%);
* the median time of unknown-email, wrong-password and locked-account
  sign-ins over 1,000 samples each, with cheap argon2 parameters so that
  the library's own work is what is compared, and their differences.
"""

from __future__ import annotations

import statistics
import tempfile
from functools import partial
from pathlib import Path

import argon2
from _portal import sqlite_context
from _timing import timed

from securepractice import (
    HashParameters,
)
from securepractice.portal import Accounts
from securepractice.testing import World

PASSWORD = "Sunshine-2026"
SAMPLES = 1000


def portal(folder: Path, hashing: HashParameters) -> Accounts:
    context = sqlite_context(folder, hashing)
    world = World(context)
    practice = world.practice()
    world.user("dr@example.com", practice=practice, password=PASSWORD)
    world.user("locked@example.com", practice=practice, password=PASSWORD, locked=True)
    return Accounts(context)


def overhead(folder: Path) -> float:
    params = HashParameters()
    accounts = portal(folder, params)
    bare = argon2.PasswordHasher(
        time_cost=params.time_cost, memory_cost=params.memory_cost, parallelism=params.parallelism
    )
    stored = bare.hash(PASSWORD)
    verify_ms: list[float] = []
    sign_in_ms: list[float] = []
    for _ in range(25):  # interleaved, so that load on the machine hits both alike
        verify_ms += timed(lambda: bare.verify(stored, PASSWORD), 1)
        sign_in_ms += timed(lambda: accounts.sign_in(email="dr@example.com", password=PASSWORD), 1)
    verify = statistics.median(verify_ms)
    sign_in = statistics.median(sign_in_ms)
    print(
        f"default parameters: bare argon2 verify {verify:.1f} ms, sign-in {sign_in:.1f} ms,"
        f" ratio {sign_in / verify:.3f}"
    )
    return verify


def own_work(folder: Path, verify: float) -> None:
    """Measure the library's own work: a right-password sign-in at the cheapest argon2 cost.

    With argon2 itself reduced to microseconds, what is left is the store,
    the session and the audit; set against one default verify it is the
    overhead, free of the noise of 140 ms hashes on a shared machine.
    """
    cheap = HashParameters(time_cost=1, memory_cost=8, parallelism=1)
    accounts = portal(folder, cheap)
    bare = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    stored = bare.hash(PASSWORD)
    argon = statistics.median(timed(lambda: bare.verify(stored, PASSWORD), SAMPLES))
    sign_in = statistics.median(
        timed(lambda: accounts.sign_in(email="dr@example.com", password=PASSWORD), SAMPLES)
    )
    work = sign_in - argon
    print(
        f"library's own work per sign-in: {work:.3f} ms (median over {SAMPLES}),"
        f" {100 * work / verify:.2f}% of one default verify"
    )


def comparable_paths(folder: Path) -> None:
    accounts = portal(folder, HashParameters(time_cost=1, memory_cost=8, parallelism=1))
    cases = {
        "unknown email": ("nobody@example.com", PASSWORD),
        "wrong password": ("dr@example.com", "Wrong-2026"),
        "locked account": ("locked@example.com", PASSWORD),
    }
    medians = {}
    for label, (email, password) in cases.items():
        samples = timed(partial(accounts.sign_in, email=email, password=password), SAMPLES)
        medians[label] = statistics.median(samples)
        print(f"{label}: median {medians[label]:.3f} ms over {SAMPLES} sign-ins")
    spread = max(medians.values()) - min(medians.values())
    print(f"largest difference between medians: {spread:.3f} ms (cheap argon2 parameters)")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        verify = overhead(Path(folder, "default"))
        own_work(Path(folder, "cheap"), verify)
        comparable_paths(Path(folder, "paths"))


if __name__ == "__main__":
    main()
