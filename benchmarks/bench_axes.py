"""Failed sign-ins against django-axes (P8): the lockout's own cost, and its exactness under load.

Both sides keep their records in a SQLite file of the same temporary
folder, with the library's default durability: WAL, ``synchronous=FULL``,
a 5 s busy timeout, and write transactions begun ``IMMEDIATE`` (Django's
``transaction_mode``, as the store's units of work begin). Django is
configured here, in the script (``settings.configure``, the auth,
contenttypes and axes apps migrated in-process into the temporary folder),
with axes in its documented setup: `AxesStandaloneBackend` before Django's
`ModelBackend`, the database handler, lockout by username (an account, as
the library locks), and the library's failure limit. Both sides hash with
argon2id at the same parameters, and both hashers count their calls.

Two figures:

* **Overhead of a failed sign-in**: the median time of a wrong password
  on a fresh account (never locked), minus the median of one bare argon2
  verify at the same cheap parameters (argon2-cffi itself), so that what
  is compared is the lockout's and the framework's own work. The three are
  measured in turns, sample by sample. Target: the library's overhead is
  at most a third of axes'. axes' log records are made and dropped (a
  ``NullHandler``), as the library's audit events are written to its store.
* **100 concurrent wrong attempts** on one account from 8 threads released
  at once: how many reached the password check (verified against the
  account's hash; the library's dummy verifications of refused attempts
  are not counted), how many failures each side recorded, and errors. The
  lockout limit is 5 on both sides; LK-4 allows 5 checks. Measured at cheap
  and (in a full run) at the default argon2 parameters, where a check is
  slow and the window between counting and checking is wide.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
import statistics
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import ClassVar, Protocol

import argon2
import attrs
import axes
import django
from _portal import sqlite_context
from _timing import clocked, interleaved, mode_line, scaled, together
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.core.management import call_command
from django.db import connections
from django.db.models import Sum
from django.test import RequestFactory

from securepractice import HashParameters, SignInRules
from securepractice.accounts.signin import SignInReason
from securepractice.dependencies import Dependencies
from securepractice.policy.hashing import PasswordHasher
from securepractice.portal import Accounts
from securepractice.records import Practice
from securepractice.storage.sqlite import SQLiteStorage
from securepractice.testing import World

PASSWORD = "Sunshine-2026"
WRONG = "Wrong-2026"
CHEAP = HashParameters(time_cost=1, memory_cost=8, parallelism=1)
LIMIT = SignInRules().max_failed_sign_ins
SAMPLES = scaled(1000, 100)
ATTEMPTS = 100
THREADS = 8
#: Trials of the concurrent attempts: several at the cheap parameters, fewer at the default.
TRIALS = {"cheap": scaled(5, 2), "default": scaled(2, 0)}
#: The library's overhead should be at most this share of axes'.
TARGET = 1 / 3
CLIENT = "203.0.113.7"


class CountedArgon2(Argon2PasswordHasher):  # type: ignore[misc]  # Django has no hints
    """Django's argon2 hasher at the cheap parameters, counting its verifications."""

    time_cost = CHEAP.time_cost
    memory_cost = CHEAP.memory_cost
    parallelism = CHEAP.parallelism
    lock = threading.Lock()
    verified = 0

    def verify(self, password: str, encoded: str) -> bool:
        """Count one check of a password against an account's hash, and make it."""
        with CountedArgon2.lock:
            CountedArgon2.verified += 1
        return bool(super().verify(password, encoded))


def django_hash(parameters: HashParameters) -> str:
    """Return Django's argon2 hash of `PASSWORD` made at ``parameters``.

    A hash carries its parameters, so `CountedArgon2` verifies it at them.
    """
    hasher = CountedArgon2()
    hasher.time_cost = parameters.time_cost
    hasher.memory_cost = parameters.memory_cost
    hasher.parallelism = parameters.parallelism
    return str(hasher.encode(PASSWORD, hasher.salt()))


class CountingHasher(PasswordHasher):
    """The library's hasher, counting checks against an account's hash.

    An account's hash is one this hasher made; the dummy verifications of
    refused attempts (LK-5) are against another, and are not counted.
    """

    def __init__(self, parameters: HashParameters) -> None:
        super().__init__(parameters)
        self.lock = threading.Lock()
        self.made: set[str] = set()
        self.checked = 0

    def hash(self, password: str) -> str:
        """Make a hash, and remember it as an account's."""
        stored = super().hash(password)
        with self.lock:
            self.made.add(stored)
        return stored

    def verify(self, stored: str, password: str) -> bool:
        """Count a verification against an account's hash, and make it."""
        if stored in self.made:
            with self.lock:
                self.checked += 1
        return super().verify(stored, password)


def configure_django(folder: Path) -> None:
    """Configure Django and axes on ``folder``/django.db with the store's SQLite settings."""
    settings.configure(
        SECRET_KEY=secrets.token_hex(32),
        USE_TZ=True,
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "axes"],
        MIDDLEWARE=["axes.middleware.AxesMiddleware"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(folder / "django.db"),
                "OPTIONS": {
                    "init_command": "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL",
                    "transaction_mode": "IMMEDIATE",
                    "timeout": 5,
                },
            }
        },
        AUTHENTICATION_BACKENDS=[
            "axes.backends.AxesStandaloneBackend",
            "django.contrib.auth.backends.ModelBackend",
        ],
        PASSWORD_HASHERS=[f"{__name__}.CountedArgon2"],
        AXES_FAILURE_LIMIT=LIMIT,
        AXES_LOCKOUT_PARAMETERS=["username"],
        AXES_COOLOFF_TIME=None,  # locked until reset, as LK-1
        AXES_RESET_ON_SUCCESS=True,
    )
    django.setup()
    axes_log = logging.getLogger("axes")
    axes_log.addHandler(logging.NullHandler())
    axes_log.propagate = False
    call_command("migrate", verbosity=0, skip_checks=True)


@attrs.define
class Sides:
    """The library's sign-in and Django's, each making fresh accounts with one password."""

    accounts: Accounts
    hasher: CountingHasher
    world: World
    practice: Practice
    django_hash: str
    #: Numbers for fresh accounts, shared by every `Sides`: Django's accounts are in one database.
    numbers: ClassVar[itertools.count[int]] = itertools.count(1)

    @classmethod
    def over(cls, deps: Dependencies) -> Sides:
        """Return both sides at ``deps``' argon2 cost; the library's with a counting hasher."""
        hasher = CountingHasher(deps.settings.hashing)
        deps = attrs.evolve(deps, hasher=hasher)
        world = World(deps)
        return cls(
            Accounts(deps), hasher, world, world.practice(), django_hash(deps.settings.hashing)
        )

    def email(self, side: str) -> str:
        """Return an email no account has used."""
        return f"{side}{next(self.numbers)}@example.com"

    def ours(self) -> str:
        """Store a fresh registered user of the library; return their email."""
        email = self.email("ours")
        self.world.user(email, practice=self.practice, password=PASSWORD)
        return email

    def theirs(self) -> str:
        """Store a fresh Django user with `PASSWORD`; return the username."""
        from django.contrib.auth.models import User  # noqa: PLC0415 - loads after setup

        username = self.email("django")
        User.objects.create(username=username, password=self.django_hash)
        return username


def login_request(username: str) -> object:
    """Return a login form's POST request as a view would hold it, its form already parsed."""
    request = RequestFactory().post(
        "/login/", {"username": username, "password": WRONG}, REMOTE_ADDR=CLIENT
    )
    _ = request.POST  # a login view reads the form before it authenticates
    return request


def sign_in_ours(sides: Sides) -> float:
    """Time one wrong password on a fresh account of the library; check it was one."""
    email = sides.ours()
    elapsed, result = clocked(lambda: sides.accounts.sign_in(email=email, password=WRONG))
    assert result.reason is SignInReason.WRONG_PASSWORD, result.reason
    return elapsed


def sign_in_axes(sides: Sides) -> float:
    """Time one wrong password on a fresh Django account under axes; check it was refused."""
    username = sides.theirs()
    request = login_request(username)
    elapsed, user = clocked(lambda: authenticate(request, username=username, password=WRONG))
    assert user is None
    return elapsed


def overhead(sides: Sides) -> None:
    """Print the failed sign-in of each side, less one bare argon2 verify, and their ratio."""
    bare = argon2.PasswordHasher(
        time_cost=CHEAP.time_cost, memory_cost=CHEAP.memory_cost, parallelism=CHEAP.parallelism
    )
    stored = bare.hash(PASSWORD)

    def mismatch() -> None:
        with contextlib.suppress(argon2.exceptions.VerifyMismatchError):
            bare.verify(stored, WRONG)

    def verify() -> float:
        return clocked(mismatch)[0]

    runs: dict[str, Callable[[], float]] = {
        "bare argon2 verify": verify,
        "securepractice sign_in": partial(sign_in_ours, sides),
        "django-axes authenticate": partial(sign_in_axes, sides),
    }
    interleaved(runs, rounds=max(5, SAMPLES // 20))  # warm up: connections, statements, caches
    times = interleaved(runs, rounds=SAMPLES)
    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians["bare argon2 verify"]
    print(f"failed sign-in, a fresh account each, {SAMPLES} samples of each in turns (medians):")
    for name, median in medians.items():
        extra = "" if name == "bare argon2 verify" else f"  overhead {median - floor:7.3f} ms"
        print(f"  {name:<26} {median:7.3f} ms{extra}")
    ours = medians["securepractice sign_in"] - floor
    theirs = medians["django-axes authenticate"] - floor
    ratio = ours / theirs
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"  overhead securepractice / axes: {ratio:.2f} (target <= {TARGET:.2f}: {verdict})")


@attrs.frozen
class Trial:
    """What one burst of concurrent wrong attempts on one account did, on one side."""

    checked: int
    recorded: int
    locked: bool
    errors: Counter[str]


def counting_errors(
    attempt: Callable[[], object], errors: Counter[str], lock: threading.Lock
) -> None:
    """Make one attempt; count an error it raises by its kind, whatever it is."""
    try:
        attempt()
    except Exception as error:  # noqa: BLE001 - counted and shown
        with lock:
            errors[type(error).__name__] += 1


def burst(attempt: Callable[[], object]) -> Counter[str]:
    """Make `ATTEMPTS` attempts from `THREADS` threads released at once; return errors by kind."""
    errors: Counter[str] = Counter()
    lock = threading.Lock()

    def share(count: int) -> None:
        for _ in range(count):
            counting_errors(attempt, errors, lock)
        connections.close_all()  # this thread's Django connection

    counts = [ATTEMPTS // THREADS + (i < ATTEMPTS % THREADS) for i in range(THREADS)]
    together([partial(share, count) for count in counts])
    return errors


def trial_ours(sides: Sides) -> Trial:
    """Burst wrong passwords at a fresh account of the library."""
    email = sides.ours()
    before = sides.hasher.checked
    errors = burst(lambda: sides.accounts.sign_in(email=email, password=WRONG))
    deps = sides.accounts.deps
    with deps.unit() as uow:
        user = uow.users.get_by_email(email)
        assert user is not None
        recorded = uow.sign_in_failures.count(user.id)
    return Trial(sides.hasher.checked - before, recorded, user.locked, errors)


def trial_axes(sides: Sides) -> Trial:
    """Burst wrong passwords at a fresh Django account under axes."""
    from axes.models import AccessAttempt  # noqa: PLC0415 - loads after setup

    username = sides.theirs()
    before = CountedArgon2.verified
    errors = burst(lambda: authenticate(login_request(username), username=username, password=WRONG))
    attempts = AccessAttempt.objects.filter(username=username)
    recorded = int(attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0)
    return Trial(CountedArgon2.verified - before, recorded, recorded >= LIMIT, errors)


def spread(values: list[int]) -> str:
    """Return ``min/median/max`` of ``values``."""
    return f"{min(values)}/{statistics.median(values):g}/{max(values)}"


def concurrency(sides_by_cost: dict[str, Sides]) -> None:
    """Print, for each side and cost, what bursts of concurrent wrong attempts did."""
    print(
        f"{ATTEMPTS} concurrent wrong attempts on one account from {THREADS} threads, lockout"
        f" after {LIMIT}; per trial min/median/max:"
    )
    print(f"  {'':<34} {'reached check':>13} {'recorded':>11} {'locked':>7}  errors")
    for cost, sides in sides_by_cost.items():
        trials = TRIALS[cost]
        for name, run in (
            ("securepractice", partial(trial_ours, sides)),
            ("django-axes", partial(trial_axes, sides)),
        ):
            results = [run() for _ in range(trials)]
            errors = sum((result.errors for result in results), Counter[str]())
            shown = ", ".join(f"{kind} {n}" for kind, n in errors.items()) or "none"
            print(
                f"  {name + ', ' + cost + f' ({trials} trials)':<34}"
                f" {spread([r.checked for r in results]):>13}"
                f" {spread([r.recorded for r in results]):>11}"
                f" {sum(r.locked for r in results):>3}/{trials:<3}  {shown}"
            )


class Rows(Protocol):
    """What a query returns, on either side: rows to fetch."""

    def fetchone(self) -> Sequence[object]:
        """Return the next row."""
        ...


def sqlite_settings(execute: Callable[[str], Rows]) -> str:
    """Return a connection's journal mode, synchronous level and busy timeout, as SQLite says."""
    pragmas = ("journal_mode", "synchronous", "busy_timeout")
    return ", ".join(f"{name}={execute(f'PRAGMA {name}').fetchone()[0]}" for name in pragmas)


def same_sqlite_settings(sides: Sides) -> str:
    """Fail unless both sides' connections run with the same SQLite settings; return them."""
    storage = sides.accounts.deps.storage
    assert isinstance(storage, SQLiteStorage)
    ours = sqlite_settings(storage.connection().execute)
    with connections["default"].cursor() as cursor:
        theirs = sqlite_settings(cursor.execute)
    assert ours == theirs, f"securepractice {ours}, Django {theirs}"
    return ours


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        configure_django(folder)
        print(
            f"P8 securepractice against django-axes {axes.__version__} (Django"
            f" {django.get_version()}), both on SQLite WAL synchronous=FULL in one folder;"
            f" argon2id t={CHEAP.time_cost} m={CHEAP.memory_cost} KiB p={CHEAP.parallelism};"
            f" lockout after {LIMIT}; {mode_line()}"
        )
        cheap = Sides.over(sqlite_context(folder / "cheap", CHEAP))
        print(f"both sides' connections: {same_sqlite_settings(cheap)}")
        overhead(cheap)
        costs = {"cheap": cheap}
        if TRIALS["default"]:
            costs["default"] = Sides.over(sqlite_context(folder / "default", HashParameters()))
        concurrency(costs)
        connections.close_all()


if __name__ == "__main__":
    main()
