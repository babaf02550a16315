"""Two-step verification benchmarks: codes against pyotp (P5), phone parsing.

Prints plain lines: code issue + verify round trips per second beside pyotp's
TOTP generate + verify, in alternating rounds, with the ratio of each pair
(P5), and a bare HMAC-SHA256 round trip for scale; phone numbers parsed and
validated per second. Import cost is `bench_import.py`'s.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone

import pyotp
from _timing import mode_line, paired_rates, scaled

from securepractice.records import Phone, PhoneKind, Purpose
from securepractice.settings import VerificationRules
from securepractice.verification import codes
from securepractice.verification.phones import delivery_options, parse_phone

SECONDS_PER_FIGURE = scaled(15, 3) / 10
#: Alternating rounds of the P5 pair.
ROUNDS = scaled(15, 5)
NUMBERS = [
    "(202) 555-0143",
    "+44 20 7946 0958",
    "+49 30 123456",
    "+33 6 12 34 56 78",
    "+81 3-1234-5678",
    "+61 412 345 678",
    "+1 416 555 0199",
    "+91 98765 43210",
]


def rate(action: Callable[[], object]) -> float:
    """Call ``action`` for about SECONDS_PER_FIGURE seconds; return calls per second."""
    calls = 0
    batch = 100
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < SECONDS_PER_FIGURE:
        for _ in range(batch):
            action()
        calls += batch
    return calls / elapsed


def bench_codes() -> None:
    rules = VerificationRules()
    key = rules.code_key.reveal()
    now = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    offered = delivery_options([Phone(number="+12025550143", kind=PhoneKind.CELL)])

    def bare_round_trip() -> bool:
        code = str(secrets.randbelow(10**6)).zfill(6).encode()
        stored = hmac.new(key, code, hashlib.sha256).digest()
        return hmac.compare_digest(hmac.new(key, code, hashlib.sha256).digest(), stored)

    def library_round_trip() -> bool:
        issued = codes.issue(
            user_id="u1",
            purpose=Purpose.REGISTRATION,
            option=offered[0],
            offered=offered,
            ledger=None,
            now=now,
            rules=rules,
            challenge_id="c1",
        )
        return codes.verify(
            issued.challenge,
            issued.code,
            user_id="u1",
            purpose=Purpose.REGISTRATION,
            now=now,
            rules=rules,
        ).verified

    assert library_round_trip()
    bare = rate(bare_round_trip)
    print(f"bare HMAC-SHA256 code round trip: {bare:,.0f} per second")
    totp = pyotp.TOTP(pyotp.random_base32())
    library, peer, ratio = paired_rates(
        library_round_trip, lambda: totp.verify(totp.now()), rounds=ROUNDS
    )
    print(f"code issue + verify round trip (default rules): {library:,.0f} per second")
    print(f"pyotp TOTP generate + verify, alternating rounds: {peer:,.0f} per second")
    print(f"P5 ratio library / pyotp, median of paired rounds: {ratio:.2f} (target >= 1.5)")
    print(f"ratio library / bare HMAC: {library / bare:.3f}")


def bench_phones() -> None:
    turn = iter(range(sys.maxsize))

    def parse_one() -> Phone:
        return parse_phone(NUMBERS[next(turn) % len(NUMBERS)], kind=PhoneKind.CELL)

    parsed = rate(parse_one)
    print(f"phone parse + validate: {parsed:,.0f} per second")
    phones = [parse_phone(n, kind=PhoneKind.CELL) for n in NUMBERS[:2]]
    print(
        f"delivery options of two numbers: {rate(lambda: delivery_options(phones)):,.0f} per second"
    )


def main() -> None:
    print(f"P5 two-step verification; {mode_line()}")
    bench_codes()
    bench_phones()


if __name__ == "__main__":
    main()
