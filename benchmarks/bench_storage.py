"""Storage benchmarks: the lockout count through each store against its raw driver, side by side.

What is measured is the count a sign-in takes before argon2 (LK-4): one unit
of work holding one ``sign_in_failures.start``. The baseline is the raw
driver on the same database and settings doing the same work the plainest
way: one transaction per count holding one ``UPDATE ... SET n = n + 1 ...
RETURNING n``. A second row, "sign-in", is a failed sign-in as the service
records it: ``start`` in one unit, ``finish(WRONG)`` in another, against two
such raw transactions.

* **PostgreSQL**: a throwaway server (`securepractice.testing.postgres`)
  with ``durable=True``, i.e. PostgreSQL's own defaults ``fsync=on`` and
  ``synchronous_commit=on``, reached on its unix socket; every connection,
  the store's and the raw ones, at READ COMMITTED with the store's session
  settings.
* **SQLite**: one file in WAL mode at ``synchronous=FULL``; the raw
  baseline runs ``BEGIN IMMEDIATE``, the ``UPDATE ... RETURNING`` and
  ``COMMIT``, as the store's units do.

Each figure is measured at 1 thread, 8 threads (one store shared, a raw
connection per thread) and 8 processes (``spawn``; each opens its own store
and its own connection), all counting on one account at once. Each account
takes `PER_ACCOUNT` counts, then the next series moves to a fresh one (a
new user row, or a new raw counter row); every series is checked: N counts
return the N distinct numbers 1..N, and N failed sign-ins leave exactly N
recorded failures. Rates are medians over rounds that alternate store and
raw; ratios are taken round by round.

Shown beside, for information: raw autocommit on PostgreSQL (one
statement, no transaction block), and on both "store's SQL", the store's
own start statement (its counter row keeps the
attempts in flight, DP-5) run through the raw driver, so that the gap to
raw splits into the cost of that SQL and the adapter's Python.

Every row is measured twice: with the SQLite file and PostgreSQL's data
folder on disk, and on a RAM disk (a tmpfs), where a commit's fsync costs
next to nothing and the adapter's own CPU work is no longer hidden behind
it. Without a RAM disk the second set is skipped, and the script says so.
"""

from __future__ import annotations

import itertools
import multiprocessing
import multiprocessing.synchronize
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from multiprocessing.pool import Pool
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Protocol

import psycopg
from _timing import interleaved, median_ratio, mode_line, scaled, together

from securepractice.records import AttemptOutcome, Practice, User
from securepractice.storage.ports import Storage
from securepractice.storage.postgres import _POSTGRES as PG_DIALECT
from securepractice.storage.postgres import PostgresStorage
from securepractice.storage.sqlite import _SQLITE as SQLITE_DIALECT
from securepractice.storage.sqlite import SQLiteStorage
from securepractice.testing.postgres import PostgresServer, PostgresUnavailable

NOW = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
#: Older than every attempt of the run: no attempt in flight is dropped as abandoned.
LONG_AGO = NOW - timedelta(days=1)
ROUNDS = scaled(7, 3)
WORKERS = 8
#: Counts per round, and failed sign-ins (two units each) per round.
COUNTS = scaled(256, 128)
SIGN_INS = scaled(128, 64)
#: Counts on one account, shared among the threads or processes; then a fresh account. The
#: store keeps the start of each attempt in flight, which a series of starts never finishes;
#: this bounds that list (a real sign-in finishes its attempt, so it stays at a few).
PER_ACCOUNT = 64
#: The store's rate should be at least this share of raw.
TARGET = 0.67
#: The store's session settings, which the raw PostgreSQL connections take too.
LOCK_TIMEOUT = timedelta(seconds=5)
#: How long the parent waits for the processes' counts on one account, in seconds.
WAIT = 120
SPAWN = multiprocessing.get_context("spawn")

Count = Callable[[str], int]


@dataclass
class Counting:
    """One thread's or one process's ways to count on an account, by name, and what to close."""

    ops: dict[str, Count]
    closers: list[Callable[[], object]] = field(default_factory=list)

    def close(self) -> None:
        """Close the connections (and a store of its own) it opened."""
        for close in reversed(self.closers):
            close()


def store_ops(store: Storage) -> dict[str, Count]:
    """Return the store's two ways: the count before argon2, and a failed sign-in's two units."""

    def count(user_id: str) -> int:
        with store.unit_of_work() as uow:
            return uow.sign_in_failures.start(user_id, now=NOW, abandoned_before=LONG_AGO)

    def sign_in(user_id: str) -> int:
        with store.unit_of_work() as uow:
            uow.sign_in_failures.start(user_id, now=NOW, abandoned_before=LONG_AGO)
        with store.unit_of_work() as uow:
            return uow.sign_in_failures.finish(user_id, started=NOW, outcome=AttemptOutcome.WRONG)

    return {"store count": count, "store sign-in": sign_in}


# --- raw drivers ------------------------------------------------------------------------------

#: A raw counter: ``n`` counts (attempts in flight, in a sign-in), ``failures`` recorded ones.
RAW_TABLE = (
    "CREATE TABLE bench_counters "
    "(id TEXT PRIMARY KEY, n INTEGER NOT NULL, failures INTEGER NOT NULL)"
)
PG_COUNT = b"UPDATE bench_counters SET n = n + 1 WHERE id = %s RETURNING n"
PG_START = b"UPDATE bench_counters SET n = n + 1 WHERE id = %s RETURNING n + failures"
PG_FINISH = (
    b"UPDATE bench_counters SET n = n - 1, failures = failures + 1 WHERE id = %s RETURNING failures"
)
SQLITE_COUNT = PG_COUNT.decode().replace("%s", "?")
#: The SQLite store's own start statement, and the times it takes, as the store passes them.
#: The stores' own start statements (the counter row and its attempts in flight), and the
#: times they take: a raw count that runs them on the store's counter table is `STORE_SQL`.
PG_STORE_START = PG_DIALECT.start.encode()
SQLITE_STORE_START = SQLITE_DIALECT.start
START_TIMES = {"now": NOW, "abandoned_before": LONG_AGO}
STORE_SQL = "raw count, store's SQL"
SQLITE_START = PG_START.decode().replace("%s", "?")
SQLITE_FINISH = PG_FINISH.decode().replace("%s", "?")


def pg_connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    """Connect as the store does: READ COMMITTED, UTC and its lock timeout."""
    connection = psycopg.connect(dsn, autocommit=autocommit)
    connection.execute(
        "SELECT set_config('default_transaction_isolation', 'read committed', false), "
        "set_config('TimeZone', 'UTC', false), set_config('lock_timeout', %s, false)",
        (f"{int(LOCK_TIMEOUT.total_seconds() * 1000)}ms",),
    )
    connection.commit()
    return connection


def _one(row: tuple[object, ...] | None) -> int:
    assert row is not None, "the counter row is missing"
    value = row[0]
    assert isinstance(value, int)
    return value


def _text(row: tuple[object, ...] | None) -> str:
    assert row is not None
    return str(row[0])


def pg_counting(dsn: str, store: PostgresStorage) -> Counting:
    """Return the store's ways and raw psycopg's: a transaction per count, and autocommit.

    "raw count, store's SQL" runs the store's own start statement through
    raw psycopg, as in `sqlite_counting`.
    """
    tx = pg_connect(dsn)
    auto = pg_connect(dsn, autocommit=True)

    def count(subject: str) -> int:
        n = _one(tx.execute(PG_COUNT, (subject,)).fetchone())
        tx.commit()
        return n

    def count_autocommit(subject: str) -> int:
        return _one(auto.execute(PG_COUNT, (subject,)).fetchone())

    def store_sql(subject: str) -> int:
        n = _one(tx.execute(PG_STORE_START, {"key": subject, **START_TIMES}).fetchone())
        tx.commit()
        return n

    def sign_in(subject: str) -> int:
        tx.execute(PG_START, (subject,)).fetchone()
        tx.commit()
        failures = _one(tx.execute(PG_FINISH, (subject,)).fetchone())
        tx.commit()
        return failures

    ops = {
        **store_ops(store),
        "raw count": count,
        "raw count, autocommit": count_autocommit,
        "raw sign-in": sign_in,
        STORE_SQL: store_sql,
    }
    return Counting(ops, [tx.close, auto.close])


def sqlite_connect(path: Path) -> sqlite3.Connection:
    """Connect as the store does: WAL, ``synchronous=FULL``, its busy timeout of 5 s."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=5, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout = 5000")
    connection.execute("PRAGMA synchronous = FULL")
    return connection


def sqlite_counting(path: Path, store: SQLiteStorage) -> Counting:
    """Return the store's ways and raw sqlite3's: ``BEGIN IMMEDIATE``, a statement, ``COMMIT``.

    Beside the plain raw count, "raw count, store's SQL" runs the store's own
    start statement (the counter row and its JSON array of attempts in
    flight) through raw sqlite3, for information: the store against it is
    the adapter's Python alone, raw against it the cost of the store's SQL.
    """
    connection = sqlite_connect(path)

    def transaction(sql: str, subject: str | Mapping[str, str]) -> int:
        connection.execute("BEGIN IMMEDIATE")
        try:
            n = _one(
                connection.execute(
                    sql, (subject,) if isinstance(subject, str) else subject
                ).fetchone()
            )
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return n

    def sign_in(subject: str) -> int:
        transaction(SQLITE_START, subject)
        return transaction(SQLITE_FINISH, subject)

    def store_sql(subject: str) -> int:
        times = {
            name: moment.isoformat("T", "microseconds") for name, moment in START_TIMES.items()
        }
        return transaction(SQLITE_STORE_START, {"key": subject, **times})

    ops: dict[str, Count] = {
        **store_ops(store),
        "raw count": partial(transaction, SQLITE_COUNT),
        "raw sign-in": sign_in,
        STORE_SQL: store_sql,
    }
    return Counting(ops, [connection.close])


# --- subjects and their checks ------------------------------------------------------------------


class Raw(Protocol):
    """What the parent reads and writes raw counters with."""

    def add(self, subject: str) -> None:
        """Add a counter row at zero."""
        ...

    def read(self, subject: str) -> int:
        """Return the counter's ``n + failures``: counts made, whatever finished."""
        ...


def on_store_table(kind: str) -> bool:
    """Whether ``kind`` counts in the store's tables (a user's counter), not in the raw one."""
    return kind.startswith("store") or kind == STORE_SQL


@dataclass
class Subjects:
    """Fresh accounts for each series, on both sides, and the check of what a series left."""

    store: Storage
    raw: Raw
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        with self.store.unit_of_work() as uow:
            uow.practices.add(Practice(id="bench", name="Bench", created_at=NOW))

    def new(self, kind: str) -> str:
        """Return the id of a new account that ``kind`` counts on."""
        subject = f"u{next(self._ids)}"
        if on_store_table(kind):
            user = User(
                id=subject, practice_id="bench", email=f"{subject}@example.com", created_at=NOW
            )
            with self.store.unit_of_work() as uow:
                uow.users.add(user)
        else:
            self.raw.add(subject)
        return subject

    def check(self, kind: str, subject: str, values: Sequence[int]) -> None:
        """Fail unless the series counted exactly: N distinct numbers 1..N, and N at the end."""
        made = len(values)
        assert sorted(values) == list(range(1, made + 1)), f"{kind}: counts not exact"
        if on_store_table(kind):
            with self.store.unit_of_work() as uow:
                recorded = uow.sign_in_failures.count(subject)
            assert recorded == (made if kind.endswith("sign-in") else 0), f"{kind}: {recorded}"
        else:
            assert self.raw.read(subject) == made, f"{kind}: final count"


@dataclass
class PgRaw:
    """Raw counters in the PostgreSQL database."""

    connection: psycopg.Connection[tuple[object, ...]]

    def add(self, subject: str) -> None:
        """Add a counter row at zero."""
        self.connection.execute(b"INSERT INTO bench_counters VALUES (%s, 0, 0)", (subject,))

    def read(self, subject: str) -> int:
        """Return the counter's ``n + failures``."""
        row = self.connection.execute(
            b"SELECT n + failures FROM bench_counters WHERE id = %s", (subject,)
        ).fetchone()
        return _one(row)


@dataclass
class SqliteRaw:
    """Raw counters in the SQLite file."""

    connection: sqlite3.Connection

    def add(self, subject: str) -> None:
        """Add a counter row at zero."""
        self.connection.execute("INSERT INTO bench_counters VALUES (?, 0, 0)", (subject,))

    def read(self, subject: str) -> int:
        """Return the counter's ``n + failures``."""
        row = self.connection.execute(
            "SELECT n + failures FROM bench_counters WHERE id = ?", (subject,)
        ).fetchone()
        return _one(row)


# --- series in threads and in processes ---------------------------------------------------------


Series = Callable[[str, str], tuple[float, list[int]]]


def in_threads(workers: Sequence[Counting], kind: str, subject: str) -> tuple[float, list[int]]:
    """Count `PER_ACCOUNT` times on ``subject`` from the workers' threads at once.

    Return the seconds it took and the numbers the counts returned.
    """
    each = PER_ACCOUNT // len(workers)
    values: list[list[int]] = [[] for _ in workers]

    def work(index: int) -> None:
        count = workers[index].ops[kind]
        values[index].extend(count(subject) for _ in range(each))

    elapsed = together([partial(work, index) for index in range(len(workers))])
    return elapsed, [value for part in values for value in part]


_CHILD: dict[str, Counting] = {}
_BARRIER: list[multiprocessing.synchronize.Barrier] = []


def child_opens(
    barrier: multiprocessing.synchronize.Barrier, sqlite: Path, dsn: str | None
) -> None:
    """Open this process's own stores and connections (a pool's initializer)."""
    _BARRIER.append(barrier)
    lite = SQLiteStorage(sqlite)
    _CHILD["sqlite"] = sqlite_counting(sqlite, lite)
    _CHILD["sqlite"].closers.insert(0, lite.close)
    if dsn is not None:
        store = PostgresStorage(dsn, min_size=1, max_size=1)
        _CHILD["postgres"] = pg_counting(dsn, store)
        _CHILD["postgres"].closers.insert(0, store.close)
    for counting in _CHILD.values():
        Finalize(None, counting.close, exitpriority=10)


def child_counts(
    backend: str, kind: str, subject: str, each: int
) -> tuple[float, float, list[int]]:
    """Wait for the other processes, count ``each`` times; return start, end and the counts."""
    count = _CHILD[backend].ops[kind]
    _BARRIER[0].wait(timeout=WAIT)
    start = time.monotonic()
    values = [count(subject) for _ in range(each)]
    return start, time.monotonic(), values


def in_processes(pool: Pool, backend: str, kind: str, subject: str) -> tuple[float, list[int]]:
    """Count `PER_ACCOUNT` times on ``subject`` from every process of ``pool`` at once.

    Return the seconds from the earliest start to the latest end that the
    processes report (``time.monotonic`` is one clock for the whole machine)
    and the numbers the counts returned.
    """
    each = PER_ACCOUNT // WORKERS
    pending = [
        pool.apply_async(child_counts, (backend, kind, subject, each)) for _ in range(WORKERS)
    ]
    done = [result.get(timeout=WAIT) for result in pending]
    elapsed = max(end for _, end, _ in done) - min(start for start, _, _ in done)
    return elapsed, [value for _, _, part in done for value in part]


def rate(series: Series, subjects: Subjects, kind: str, total: int) -> float:
    """Count ``total`` times in series of `PER_ACCOUNT` on fresh accounts, each checked exact.

    Return the counts per second, setting up the accounts left out.
    """
    accounts = total // PER_ACCOUNT
    seconds = 0.0
    for _ in range(accounts):
        subject = subjects.new(kind)
        elapsed, values = series(kind, subject)
        subjects.check(kind, subject, values)
        seconds += elapsed
    return accounts * PER_ACCOUNT / seconds


# --- the report ---------------------------------------------------------------------------------

Rate = Callable[[str, int], float]
SIGN_IN_KINDS = ("store sign-in", "raw sign-in")


def compare(title: str, measure: Rate, kinds: Sequence[str], total: int) -> None:
    """Measure ``kinds`` (store first, raw second, then others) in alternating rounds; print a row.

    The row has the median rate of each, the median and range of the
    round-by-round ratio store/raw, and for each other kind the median
    ratio store/that kind.
    """
    for kind in kinds:  # warm up: pools filled, statements prepared
        measure(kind, PER_ACCOUNT)
    rates = interleaved({kind: partial(measure, kind, total) for kind in kinds}, rounds=ROUNDS)
    store, raw = rates[kinds[0]], rates[kinds[1]]
    ratios = [s / r for s, r in zip(store, raw, strict=True)]
    ratio = median_ratio(store, raw)
    cells = [f"{statistics.median(rates[kind]):>7,.0f}/s" for kind in kinds[:2]]
    cells.append(f"{ratio:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
    cells += [
        f"{statistics.median(rates[kind]):>7,.0f}/s ({median_ratio(store, rates[kind]):.2f}x)"
        for kind in kinds[2:]
    ]
    flag = "" if ratio >= TARGET else f"  below {TARGET}x"
    print(f"  {title:<22} {'  '.join(cells)}{flag}")


def report(
    name: str, *, subjects: Subjects, threads: Sequence[Counting], pool: Pool, counts: Sequence[str]
) -> None:
    """Print the count and sign-in rows of one backend at 1 thread, 8 threads and 8 processes."""
    others = "".join(
        f"  {kind.removeprefix('raw count, ') + ' (store/it)':>17}" for kind in counts[2:]
    )
    print(f"  {'':<22} {'store':>9}  {'raw':>9}  {'store/raw (range)':<17}{others}")
    for label, series in (
        ("1 thread", partial(in_threads, threads[:1])),
        (f"{WORKERS} threads", partial(in_threads, threads)),
        (f"{WORKERS} processes", partial(in_processes, pool, name)),
    ):
        measure = partial(rate, series, subjects)
        compare(f"count, {label}", measure, counts, COUNTS)
        compare(f"sign-in, {label}", measure, SIGN_IN_KINDS, SIGN_INS)


def postgres(stack: ExitStack, dsn: str, pool: Pool) -> None:
    """Print the PostgreSQL rows: the store against raw psycopg on one database."""
    store = PostgresStorage(dsn, min_size=WORKERS, max_size=WORKERS)
    stack.callback(store.close)
    admin = pg_connect(dsn, autocommit=True)
    stack.callback(admin.close)
    admin.execute(RAW_TABLE.encode())
    shown = {
        name: _text(admin.execute(f"SHOW {name}".encode()).fetchone())
        for name in ("server_version", "fsync", "synchronous_commit", "wal_sync_method")
    }
    print(
        f"PostgreSQL {shown['server_version'].split()[0]}, durable: fsync={shown['fsync']}, "
        f"synchronous_commit={shown['synchronous_commit']} ({shown['wal_sync_method']}); "
        "READ COMMITTED; unix socket"
    )
    threads = [pg_counting(dsn, store) for _ in range(WORKERS)]
    for counting in threads:
        stack.callback(counting.close)
    kinds = ("store count", "raw count", STORE_SQL, "raw count, autocommit")
    subjects = Subjects(store, PgRaw(admin))
    report("postgres", subjects=subjects, threads=threads, pool=pool, counts=kinds)


def sqlite(stack: ExitStack, path: Path, pool: Pool) -> None:
    """Print the SQLite rows: the store against raw sqlite3 on one file."""
    store = SQLiteStorage(path)
    stack.callback(store.close)
    print(f"SQLite {sqlite3.sqlite_version}, WAL, synchronous=FULL; one file")
    threads = [sqlite_counting(path, store) for _ in range(WORKERS)]
    for counting in threads:
        stack.callback(counting.close)
    admin = sqlite_connect(path)
    stack.callback(admin.close)
    subjects = Subjects(store, SqliteRaw(admin))
    kinds = ("store count", "raw count", STORE_SQL)
    report("sqlite", subjects=subjects, threads=threads, pool=pool, counts=kinds)


#: Where a RAM disk is looked for: tmpfs folders every process may write to. The benchmark
#: makes a private folder of its own inside (`tempfile.TemporaryDirectory`).
RAM_DISKS = (Path("/dev/shm"), Path("/run/shm"))  # noqa: S108


def file_system(path: Path) -> str:
    """Return the type of the file system ``path`` is on ("ext4", "tmpfs"), or "unknown"."""
    mounts = Path("/proc/mounts")
    if not mounts.is_file():
        return "unknown"
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    for line in mounts.read_text().splitlines():
        _, point, fs_type, *_ = line.split()
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fs_type
    return kind


def ram_disk() -> Path | None:
    """Return a writable tmpfs folder, or None when there is none."""
    for folder in RAM_DISKS:
        if folder.is_dir() and os.access(folder, os.W_OK) and file_system(folder) == "tmpfs":
            return folder
    return None


@contextmanager
def temporary_files_in(folder: Path | None) -> Iterator[None]:
    """Make temporary folders (the database's, the server's) inside ``folder``; None: the default.

    `PostgresServer` makes its data folder with `tempfile.mkdtemp`, which
    honours ``tempfile.tempdir``.
    """
    before = tempfile.tempdir
    tempfile.tempdir = None if folder is None else str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = before


def measure_in(place: str, folder: Path | None) -> None:
    """Make both databases in ``folder`` (None: the system's temporary folder); print every row."""
    with temporary_files_in(folder), tempfile.TemporaryDirectory() as name, ExitStack() as stack:
        path = Path(name) / "portal.db"
        print(f"=== {place}: {tempfile.gettempdir()} ({file_system(Path(name))})")
        SQLiteStorage(path).close()  # made and migrated before the processes open it
        with closing(sqlite_connect(path)) as setup:
            setup.execute(RAW_TABLE)
        dsn: str | None = None
        try:
            server = stack.enter_context(PostgresServer(durable=True))
        except PostgresUnavailable as error:
            print(f"PostgreSQL: skipped, {error}")
        else:
            dsn = server.dsn(server.create_database())
        pool = SPAWN.Pool(WORKERS, child_opens, (SPAWN.Barrier(WORKERS), path, dsn))
        stack.callback(pool.join)
        stack.callback(pool.close)
        if dsn is not None:
            postgres(stack, dsn, pool)
        sqlite(stack, path, pool)


def main() -> None:
    """Print every row on disk, then on a RAM disk."""
    print(
        f"{COUNTS} counts or {SIGN_INS} failed sign-ins a round, {PER_ACCOUNT} on each account; "
        f"median rates of {ROUNDS} rounds; store/raw: median (range) of the rounds' ratios; "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {mode_line()}"
    )
    measure_in("on disk", None)
    memory = ram_disk()
    if memory is None:
        print(
            "=== RAM disk: skipped, no writable tmpfs found "
            f"(looked for {', '.join(map(str, RAM_DISKS))}); the figures above include fsync"
        )
    else:
        measure_in("RAM disk", memory)


if __name__ == "__main__":
    main()
