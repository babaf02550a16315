"""Timing helpers shared by the benchmark scripts: medians, rates and threads."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable


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
