"""The second factor: an authenticator-app code against pyotp's, and a whole sign-in with one.

Two figures, each beside its peer in the same run:

* checking an authenticator app's code (MF-3), ours against pyotp's
  ``TOTP.verify``, in alternating rounds: with the same tolerance of one
  step (``steps_back=0`` against ``valid_window=0``) and with the defaults
  that accept the step before too (``steps_back=1``, two codes computed,
  against ``valid_window=1``, three); the claim is at least as fast;
* a sign-in with a second factor at the default argon2 parameters on the
  default SQLite store in a temporary folder (the password, then the
  app's code: two calls, four units of work), against one bare argon2
  verify at those parameters, interleaved sample by sample, with their ratio.
"""

from __future__ import annotations

import base64
import statistics
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import argon2
import attrs
import pyotp
from _portal import sqlite_context
from _timing import clocked, mode_line, paired_rates, scaled

from securepractice import FakeClock, HashParameters, SignInRules
from securepractice.portal import Accounts
from securepractice.secret import Secret
from securepractice.settings import SecondFactor
from securepractice.testing import PASSWORD, World
from securepractice.verification import totp

ROUNDS = scaled(15, 3)
CALLS = scaled(5_000, 500)
SIGN_INS = scaled(40, 4)
NOW = datetime(2026, 12, 1, 9, 0, 10, tzinfo=timezone.utc)


def bench_totp() -> None:
    seed = totp.new_seed()
    app = pyotp.TOTP(base64.b32encode(seed.reveal()).decode())
    code = totp.totp(seed, NOW).reveal()
    for steps, window in ((0, 0), (1, 1)):

        def ours(steps: int = steps) -> object:
            return totp.matching_step(seed, code, now=NOW, steps_back=steps, last_used_step=None)

        def theirs(window: int = window) -> object:
            return app.verify(code, for_time=NOW, valid_window=window)

        assert ours() is not None
        assert theirs()
        mine, peer, ratio = paired_rates(ours, theirs, rounds=ROUNDS, calls=CALLS)
        print(
            f"TOTP verify, steps_back={steps} vs valid_window={window}: "
            f"{mine:,.0f}/s vs pyotp {peer:,.0f}/s, ratio {ratio:.2f}x "
            f"({'at least as fast' if ratio >= 1 else 'SLOWER than pyotp'})"
        )


def bench_sign_in() -> None:
    hashing = HashParameters()
    with tempfile.TemporaryDirectory() as folder:
        deps = sqlite_context(Path(folder), hashing)
        rules = SignInRules(second_factor=SecondFactor.ALWAYS)
        asking = attrs.evolve(deps, settings=attrs.evolve(deps.settings, sign_in=rules))
        world = World(deps)
        world.user("dr@example.com", practice=world.practice())
        plain = Accounts(deps)
        token = world.sign_in("dr@example.com")
        added = plain.start_authenticator(token)
        secret = parse_qs(urlsplit(added.uri.reveal()).query)["secret"][0]
        seed = Secret(base64.b32decode(secret + "=" * (-len(secret) % 8)))
        clock = deps.clock
        assert isinstance(clock, FakeClock)
        plain.confirm_authenticator(token, code=totp.totp(seed, clock.now()))
        accounts = Accounts(asking)
        bare = argon2.PasswordHasher(
            time_cost=hashing.time_cost,
            memory_cost=hashing.memory_cost,
            parallelism=hashing.parallelism,
        )
        stored = bare.hash(PASSWORD)

        def sign_in() -> None:
            clock.advance(timedelta(seconds=30))  # each sign-in uses a step of its own
            pending = accounts.sign_in(email="dr@example.com", password=PASSWORD)
            assert pending.pending_token is not None
            done = accounts.finish_sign_in(
                pending.pending_token, authenticator_code=totp.totp(seed, clock.now())
            )
            assert done.ok, done.reason

        ours, peer = [], []
        for _ in range(SIGN_INS):
            ours.append(clocked(sign_in)[0])
            peer.append(clocked(lambda: bare.verify(stored, PASSWORD))[0])
        mine, theirs = statistics.median(ours), statistics.median(peer)
        print(
            f"Sign-in with an authenticator code, default argon2, SQLite FULL: median "
            f"{mine:.1f} ms vs one bare argon2 verify {theirs:.1f} ms: ratio {mine / theirs:.2f}x "
            f"({SIGN_INS} samples each, interleaved)"
        )


if __name__ == "__main__":
    print(mode_line())
    bench_totp()
    bench_sign_in()
