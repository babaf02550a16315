"""Timing helpers shared by the benchmark scripts: medians, rates, threads and the quick mode."""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Set to 1 (or pass ``--quick``) for a quick run while developing: fewer samples, noisy figures.
QUICK_VARIABLE = "BENCH_QUICK"


def quick() -> bool:
    """Whether this is a quick run (``--quick`` or ``BENCH_QUICK=1``): figures not for the table."""
    return "--quick" in sys.argv[1:] or os.environ.get(QUICK_VARIABLE, "0") not in ("", "0")


def scaled(full: int, quick_count: int) -> int:
    """Return ``full`` in a full run and ``quick_count`` in a quick one."""
    return quick_count if quick() else full


def mode_line() -> str:
    """Say which mode the run is in, for the first line a script prints."""
    return "QUICK run: few samples, for development only" if quick() else "full run"


def clocked(action: Callable[[], T]) -> tuple[float, T]:
    """Run ``action`` once; return its wall time in milliseconds and its result."""
    start = time.perf_counter()
    result = action()
    return (time.perf_counter() - start) * 1000, result


def timed(action: Callable[[], object], count: int) -> list[float]:
    """Wall times of ``count`` runs of ``action``, in milliseconds."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def median_ms(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``action`` in milliseconds over ``repeat`` runs."""
    return statistics.median(timed(action, repeat))


def ops_per_second(action: Callable[[], object], seconds: float = 1.0) -> float:
    """How many times ``action`` runs per second, measured for about ``seconds``."""
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        action()
        count += 1
    return count / elapsed


def in_threads(threads: int, work: Callable[[], object]) -> float:
    """Run ``work`` in ``threads`` threads at once; return the elapsed seconds."""
    pool = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - start


def paired_rates(
    a: Callable[[], object], b: Callable[[], object], *, rounds: int = 15, calls: int = 2_000
) -> tuple[float, float, float]:
    """Rates of ``a`` and ``b`` measured in alternating rounds: (median a, median b, median a/b).

    Each round times ``calls`` calls of one, then of the other, so that a
    drift of the machine's speed touches both alike; the ratio is taken
    round by round.
    """
    rates_a: list[float] = []
    rates_b: list[float] = []
    for _ in range(rounds):
        for action, rates in ((a, rates_a), (b, rates_b)):
            start = time.perf_counter()
            for _ in range(calls):
                action()
            rates.append(calls / (time.perf_counter() - start))
    ratios = [x / y for x, y in zip(rates_a, rates_b, strict=True)]
    return statistics.median(rates_a), statistics.median(rates_b), statistics.median(ratios)


def together(works: Sequence[Callable[[], object]]) -> float:
    """Run each of ``works`` in a thread of its own, all released at once; return the seconds.

    The time runs from the release until the last one ends, so starting the
    threads is not counted. An exception in any of them is raised here.
    """
    barrier = threading.Barrier(len(works) + 1)
    errors: list[BaseException] = []

    def run(work: Callable[[], object]) -> None:
        barrier.wait()
        try:
            work()
        except BaseException as error:
            errors.append(error)
            raise

    pool = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


def interleaved(runs: Mapping[str, Callable[[], float]], *, rounds: int) -> dict[str, list[float]]:
    """Call each of ``runs`` once a round; return each one's results, in round order.

    Each run times itself and returns its rate, so that it can leave its own
    setup (a fresh subject) out. Each round starts one further along the
    list, so that a drift of the machine's speed, and going first, touch
    every run alike; compare runs round by round with `median_ratio`.
    """
    names = list(runs)
    results: dict[str, list[float]] = {name: [] for name in names}
    for turn in range(rounds):
        shift = turn % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(runs[name]())
    return results


def median_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Return the median of the round-by-round ratios ``a[i] / b[i]``."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))
