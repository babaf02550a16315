"""Import cost (P6): a fresh interpreter importing securepractice against phonenumbers.

Each figure is one cold process, ``python -c "<statement>"``: its wall time
from spawn to exit, and its own peak RSS. The statements run in turn, round
after round, so that drift in the machine's load falls on all of them
alike; the table gives medians. The targets are those of P6: ``import
securepractice`` takes at most 1.5 times the wall time of ``import
phonenumbers`` and at most 5 MiB more peak RSS.

The peak RSS is the child's own high-water mark, ``VmHWM`` of
``/proc/self/status``, which the child prints as its last act. Not the
``ru_maxrss`` that `os.wait4` reports for it: on Linux that also holds the
RSS of the memory the child ran in before its ``exec``, which for
``posix_spawn`` (and ``vfork``) is the parent's, so every child would
weigh at least as much as this script. Where there is no ``/proc`` (macOS)
the script falls back to ``ru_maxrss`` and says so.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from _timing import mode_line, scaled

ROUNDS = scaled(21, 5)
BARE = "pass"
LIBRARY = "import securepractice"
REFERENCE = "import phonenumbers"
PORTAL = "from securepractice import Portal"
STATEMENTS = (BARE, REFERENCE, LIBRARY, PORTAL)
MAX_WALL_RATIO = 1.5
MAX_EXTRA_MIB = 5.0
#: Where a Linux process reads its own peak RSS (``VmHWM``, in KiB).
STATUS = Path("/proc/self/status")
OWN_PEAK = STATUS.is_file()
#: What each child runs after its statement, on Linux: print its own peak RSS in KiB.
PRINT_PEAK = (
    f"\nwith open({str(STATUS)!r}) as s: print(next(l for l in s if l.startswith('VmHWM:'))"
    ".split()[1])"
)
# ru_maxrss is in KiB on Linux and in bytes on macOS.
RSS_UNIT_KIB = 1 / 1024 if sys.platform == "darwin" else 1


def cold_run(statement: str) -> tuple[float, float]:
    """Run ``statement`` in a fresh interpreter; return its wall ms and its own peak RSS in MiB."""
    code = statement + PRINT_PEAK if OWN_PEAK else statement
    read, write = os.pipe()
    try:
        start = time.perf_counter()
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-c", code],
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, write, 1)],
        )
        _, status, usage = os.wait4(pid, 0)
        elapsed_ms = (time.perf_counter() - start) * 1000
        os.close(write)
        printed = os.read(read, 4096)
    finally:
        os.close(read)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"python -c {statement!r} failed")
    peak_kib = int(printed) if OWN_PEAK else usage.ru_maxrss * RSS_UNIT_KIB
    return elapsed_ms, peak_kib / 1024


def main() -> None:
    for statement in STATEMENTS:  # a first run writes the bytecode caches
        cold_run(statement)
    runs: dict[str, list[tuple[float, float]]] = {s: [] for s in STATEMENTS}
    for _ in range(ROUNDS):
        for statement in STATEMENTS:
            runs[statement].append(cold_run(statement))
    wall = {s: statistics.median(ms for ms, _ in runs[s]) for s in STATEMENTS}
    peak = {s: statistics.median(mib for _, mib in runs[s]) for s in STATEMENTS}

    source = "the child's own VmHWM" if OWN_PEAK else "wait4's ru_maxrss, which holds the parent's"
    print(f"P6 cold python -c, {ROUNDS} interleaved rounds, medians; peak RSS: {source}")
    print(mode_line())
    print(f"{'statement':<36} {'wall ms':>8} {'peak RSS MiB':>13}")
    for statement in STATEMENTS:
        print(f"{statement:<36} {wall[statement]:>8.1f} {peak[statement]:>13.1f}")
    ratio = wall[LIBRARY] / wall[REFERENCE]
    extra = peak[LIBRARY] - peak[REFERENCE]
    print(
        f"wall ratio securepractice / phonenumbers: {ratio:.2f} "
        f"(target <= {MAX_WALL_RATIO}: {'met' if ratio <= MAX_WALL_RATIO else 'missed'})"
    )
    print(
        f"peak RSS securepractice - phonenumbers: {extra:+.1f} MiB "
        f"(target <= +{MAX_EXTRA_MIB:.0f} MiB: {'met' if extra <= MAX_EXTRA_MIB else 'missed'})"
    )


if __name__ == "__main__":
    main()
