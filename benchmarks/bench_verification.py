"""Two-step verification benchmarks: codes, phone parsing, import time and memory.

Prints plain lines: code issue + verify round trips per second against a bare
HMAC-SHA256 round trip, phone numbers parsed and validated per second, and
the time and peak memory of importing the package and its phone module in a
fresh interpreter.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone

import pyotp

from securepractice.records import Phone, PhoneKind, Purpose
from securepractice.settings import VerificationRules
from securepractice.verification import codes
from securepractice.verification.phones import delivery_options, parse_phone

SECONDS_PER_FIGURE = 1.5
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
            recent_sends=(),
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
    library = rate(library_round_trip)
    print(f"bare HMAC-SHA256 code round trip: {bare:,.0f} per second")
    print(f"code issue + verify round trip: {library:,.0f} per second")
    print(f"ratio library / bare HMAC: {library / bare:.3f}")
    totp = pyotp.TOTP(pyotp.random_base32())
    pyotp_rate = rate(lambda: totp.verify(totp.now()))
    print(f"pyotp TOTP generate + verify: {pyotp_rate:,.0f} per second")
    print(f"ratio pyotp / bare HMAC: {pyotp_rate / bare:.3f}")
    print(f"ratio library / pyotp: {library / pyotp_rate:.3f}")


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


def child_peak_kib(code: str) -> int:
    """Peak RSS of a fresh interpreter running ``code``, read as RUSAGE_CHILDREN by a parent.

    A small parent process runs the child, so that its children's peak is
    that one child's alone.
    """
    parent = (
        "import resource, subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {code!r}], check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run(  # noqa: S603 - this interpreter, with code written here
        [sys.executable, "-c", parent], check=True, capture_output=True, text=True
    )
    return int(out.stdout.strip())


def import_ms(module: str) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter (-X importtime), median of 5."""
    times = []
    for _ in range(5):
        out = subprocess.run(  # noqa: S603 - this interpreter, importing a module named here
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            check=True,
            capture_output=True,
            text=True,
        )
        for line in out.stderr.splitlines():
            fields = [f.strip() for f in line.removeprefix("import time:").split("|")]
            if len(fields) == 3 and fields[2] == module:
                times.append(int(fields[1]) / 1000)
    return statistics.median(times)


def bench_import() -> None:
    bare = child_peak_kib("pass")
    print(f"bare interpreter: peak RSS {bare / 1024:.1f} MiB")
    for module in (
        "securepractice",
        "securepractice.verification.phones",
        "securepractice.verification.codes",
        "securepractice.verification.tokens",
    ):
        peak = child_peak_kib(f"import {module}")
        print(
            f"import {module}: {import_ms(module):.1f} ms, peak RSS {peak / 1024:.1f} MiB "
            f"(+{(peak - bare) / 1024:.1f} MiB over a bare interpreter)"
        )


def main() -> None:
    bench_codes()
    bench_phones()
    bench_import()


if __name__ == "__main__":
    main()
