"""``python -m fuzz [COUNT]``: fuzz every parser, print what each did, fail on any finding.

COUNT inputs per parser (default: the ``FUZZ_COUNT`` environment variable,
else 1,000,000). ``--only`` picks parsers, ``--seed`` another generator seed,
``--jobs`` the number of processes, ``--replay target:chunk:index`` runs one
input again and prints its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from fuzz.runner import KEPT_FINDINGS, Tally, replay, run
from fuzz.targets import TARGETS

DEFAULT_COUNT = 1_000_000
DEFAULT_SEED = 12


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    parser.add_argument(
        "count",
        nargs="?",
        type=int,
        default=int(os.environ.get("FUZZ_COUNT", DEFAULT_COUNT)),
        help="inputs per parser (default: $FUZZ_COUNT, else 1,000,000)",
    )
    parser.add_argument("--only", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--replay", metavar="TARGET:CHUNK:INDEX")
    return parser.parse_args(argv)


def _row(tally: Tally) -> str:
    refused = sum(tally.refused.values())
    per_input = tally.seconds / tally.inputs * 1e6 if tally.inputs else 0.0
    return (
        f"{tally.target:<19}{tally.inputs:>11,}{tally.accepted:>11,}{refused:>11,}"
        f"{tally.unhandled:>10,}{tally.broken:>8,}{tally.seconds:>9.1f}{per_input:>9.1f}"
        f"{tally.slowest * 1000:>9.1f}  {tally.slowest_handle}"
    )


_HEADER = (
    f"{'parser':<19}{'inputs':>11}{'accepted':>11}{'refused':>11}{'unhandled':>10}"
    f"{'broken':>8}{'seconds':>9}{'µs each':>9}{'worst ms':>9}  worst input"
)


def _details(tally: Tally) -> list[str]:
    codes = ", ".join(f"{code} {n:,}" for code, n in tally.refused.most_common())
    lines = [f"{tally.target}: refused by {codes or 'nothing'}"]
    for finding in sorted(tally.findings, key=lambda f: f.handle)[:KEPT_FINDINGS]:
        lines.append(f"  FINDING {finding.handle}: {finding.error}")
        lines.append(f"    input: {finding.shown}")
    return lines


def main(argv: list[str]) -> int:
    """Run the fuzzer as the arguments say; return 1 when anything was found, else 0."""
    arguments = _arguments(argv)
    if arguments.replay:
        sys.stdout.write(replay(arguments.replay, arguments.seed) + "\n")
        return 0
    started = time.perf_counter()
    sys.stdout.write(
        f"fuzzing {', '.join(arguments.only)}: {arguments.count:,} inputs each,"
        f" seed {arguments.seed}, {arguments.jobs} processes\n"
    )
    tallies: list[Tally] = []
    for tally in run(
        arguments.only, count=arguments.count, seed=arguments.seed, jobs=arguments.jobs
    ):
        sys.stdout.write(f"  {tally.target}: done\n")
        sys.stdout.flush()
        tallies.append(tally)
    tallies.sort(key=lambda t: arguments.only.index(t.target))
    lines = ["", _HEADER, *(_row(t) for t in tallies), ""]
    for tally in tallies:
        lines.extend(_details(tally))
    wall = time.perf_counter() - started
    found = sum(t.unhandled + t.broken for t in tallies)
    lines.append(f"\n{wall:.0f} s in all; {found} finding(s)")
    if found:
        lines.append(f"replay one: python -m fuzz --seed {arguments.seed} --replay HANDLE")
    sys.stdout.write("\n".join(lines) + "\n")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
