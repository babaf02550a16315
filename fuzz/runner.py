"""Running the targets in seeded chunks on every core, and tallying what came back.

A target's inputs are cut into chunks of `CHUNK` inputs; chunk *n* of target
*t* draws from ``random.Random(f"{seed}:{t}:{n}")``, so input *i* of it is
the same on every run with that seed, whichever process runs it: its handle
``t:n:i`` replays it (`replay`).
"""

from __future__ import annotations

import collections
import random
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

import attrs

from fuzz.targets import TARGETS, Broken
from securepractice.errors import SecurePracticeError

__all__ = ["CHUNK", "Finding", "Tally", "inputs", "replay", "run", "run_chunk", "shown"]

#: Inputs per chunk: small enough to spread over the cores, large enough to cost nothing.
CHUNK = 10_000
#: Findings kept per target and kind: the first ones are enough to reproduce.
KEPT_FINDINGS = 5
_SHOWN_CHARACTERS = 160


@attrs.frozen
class Finding:
    """One input that broke a target: its handle, the input as text, and what happened."""

    handle: str
    shown: str
    error: str


@attrs.define
class Tally:
    """What one target did with its inputs."""

    target: str
    inputs: int = 0
    accepted: int = 0
    refused: collections.Counter[str] = attrs.field(factory=collections.Counter)
    unhandled: int = 0
    broken: int = 0
    findings: list[Finding] = attrs.field(factory=list)
    seconds: float = 0.0
    slowest: float = 0.0
    slowest_handle: str = ""

    def add(self, other: Tally) -> None:
        """Add another chunk's tally of the same target to this one."""
        self.inputs += other.inputs
        self.accepted += other.accepted
        self.refused.update(other.refused)
        self.unhandled += other.unhandled
        self.broken += other.broken
        self.findings.extend(other.findings)
        self.seconds += other.seconds
        if other.slowest > self.slowest:
            self.slowest, self.slowest_handle = other.slowest, other.slowest_handle


def shown(value: object) -> str:
    """Return ``value`` as a Python literal a reader can paste, cut short when huge."""
    if isinstance(value, tuple):
        return f"({', '.join(map(shown, value))})"
    if isinstance(value, str) and len(value) > _SHOWN_CHARACTERS:
        return f"{value[: _SHOWN_CHARACTERS // 2]!a} + ... ({len(value):,} characters in all)"
    text = ascii(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 4 * _SHOWN_CHARACTERS else text[: 4 * _SHOWN_CHARACTERS] + "..."


def inputs(target: str, seed: int, chunk: int, count: int) -> Iterator[object]:
    """Yield the ``count`` inputs of one chunk of a target."""
    draw = TARGETS[target].inputs(random.Random(f"{seed}:{target}:{chunk}"))
    for _ in range(count):
        yield draw()


def run_chunk(target: str, seed: int, chunk: int, count: int) -> Tally:
    """Run one chunk of a target's inputs and tally the answers."""
    check = TARGETS[target].check
    tally = Tally(target)
    started = time.perf_counter()
    for index, value in enumerate(inputs(target, seed, chunk, count)):
        before = time.perf_counter()
        try:
            code = check(value)
        except SecurePracticeError as refused:
            tally.refused[refused.code] += 1
        except Broken as broken:
            tally.broken += 1
            _keep(tally, f"{target}:{chunk}:{index}", value, f"broken promise: {broken}")
        except Exception as error:  # noqa: BLE001 - every other exception is the finding
            tally.unhandled += 1
            _keep(tally, f"{target}:{chunk}:{index}", value, f"{type(error).__name__}: {error}")
        else:
            if code is None:
                tally.accepted += 1
            else:
                tally.refused[code] += 1
        spent = time.perf_counter() - before
        if spent > tally.slowest:
            tally.slowest, tally.slowest_handle = spent, f"{target}:{chunk}:{index}"
        tally.inputs += 1
    tally.seconds = time.perf_counter() - started
    return tally


def _keep(tally: Tally, handle: str, value: object, error: str) -> None:
    if len(tally.findings) < 2 * KEPT_FINDINGS:
        tally.findings.append(Finding(handle, shown(value), error[:_SHOWN_CHARACTERS]))


def run(targets: list[str], *, count: int, seed: int, jobs: int) -> Iterator[Tally]:
    """Run ``count`` inputs of each target on ``jobs`` processes; yield each target's tally.

    Chunks of all targets are interleaved, so that the first tallies come
    while the rest still run; a target's tally comes once all its chunks are in.
    """
    sizes = [CHUNK] * (count // CHUNK) + ([count % CHUNK] if count % CHUNK else [])
    totals = {target: Tally(target) for target in targets}
    pending = dict.fromkeys(targets, len(sizes))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(run_chunk, target, seed, number, size): target
            for number, size in enumerate(sizes)
            for target in targets
        }
        for future in as_completed(futures):
            target = futures[future]
            totals[target].add(future.result())
            pending[target] -= 1
            if not pending[target]:
                yield totals[target]


def replay(handle: str, seed: int) -> str:
    """Run the one input named by ``handle`` (``target:chunk:index``) again; say what it did."""
    target, chunk, index = handle.split(":")
    value = next(_nth(inputs(target, seed, int(chunk), int(index) + 1), int(index)))
    lines = [f"input: {shown(value)}"]
    try:
        lines.append(f"answer: {TARGETS[target].check(value)!r}")
    except Exception:  # noqa: BLE001 - the traceback is what a replay is for
        lines.append(traceback.format_exc())
    return "\n".join(lines)


def _nth(values: Iterator[object], index: int) -> Iterator[object]:
    for position, value in enumerate(values):
        if position == index:
            yield value
