"""Attachment validation (P4) against a streaming read and a naive full read: time and memory.

Validation reads a file's 8 KiB header (and an archive's directory), never
the whole content. Its honest peer is the cheapest way to look at every
byte: a streaming read, ``readinto`` a reused 1 MiB buffer until the end
(what a checksum or a scan of the content costs at least); the naive full
read (``Path.read_bytes``) is shown beside it. Each figure is a median of
runs that take turns, and the peak of Python's allocations (tracemalloc)
during one run. The files are sparse (made with ``truncate``) in a
temporary folder, so they cost no disk space; reading a hole costs no disk
either, so the reads' times are the floor of a real disk's. A first read,
not timed, checks that the stream sees every byte. The naive read of the
10 GiB file is skipped: it would need 10 GiB of memory.

Run with ``nox -s bench`` (or ``python benchmarks/bench_attachments.py``).
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from _timing import clocked, interleaved, median_ms, mode_line, scaled

from securepractice.policy.attachments import Attachment, AttachmentPolicy

PDF_HEAD = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
#: The biggest file, in GiB: a quick run reads a smaller one (a first read of 10 GiB of holes
#: fills the page cache, which takes the kernel tens of seconds).
BIG = scaled(10, 2)
#: Each file's label, size, and runs of each way: the reads of big files take seconds each.
SIZES = (
    ("1 KiB", 1024, scaled(200, 20)),
    ("300 MiB", 300 * 1024**2, scaled(9, 3)),
    (f"{BIG} GiB", BIG * 1024**3, scaled(3, 1)),
)
NAIVE_LIMIT = 1024**3
CHUNK = 1024**2


def peak_bytes(action: Callable[[], object]) -> int:
    """Peak memory allocated by ``action``, as tracemalloc sees it."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def sparse_file(folder: Path, size: int) -> Path:
    path = folder / f"scan-{size}.pdf"
    path.write_bytes(PDF_HEAD)
    subprocess.run(["truncate", "-s", str(size), str(path)], check=True)  # noqa: S603, S607
    return path


def streamed(path: Path) -> int:
    """Read every byte of ``path`` through one reused buffer of `CHUNK` bytes; return the count."""
    buffer = memoryview(bytearray(CHUNK))
    total = 0
    with path.open("rb", buffering=0) as file:
        while read := file.readinto(buffer):
            total += read
    return total


def ways(policy: AttachmentPolicy, path: Path, size: int) -> dict[str, Callable[[], object]]:
    """Return the ways to look at ``path``: validate, stream, and read whole unless too big."""
    report = policy.check([Attachment.from_path(path)])
    assert report.files[0].ok, report.files[0].problems
    assert streamed(path) == size
    found: dict[str, Callable[[], object]] = {
        "validate": lambda: policy.check([Attachment.from_path(path)]),
        "streaming read": lambda: streamed(path),
    }
    if size <= NAIVE_LIMIT:
        found["full read"] = path.read_bytes
    return found


def measure(label: str, runs: int, policy: AttachmentPolicy, path: Path, size: int) -> None:
    """Print the median time and peak memory of each way, and the ratios to validation."""
    found = ways(policy, path, size)
    each = {name: lambda action=action: clocked(action)[0] for name, action in found.items()}
    times = interleaved(each, rounds=runs)
    medians = {name: statistics.median(values) for name, values in times.items()}
    peaks = {name: peak_bytes(action) for name, action in found.items()}
    check_ms, check_peak = medians["validate"], peaks["validate"]
    print(f"{label} ({size:,} bytes), {runs} runs each:")
    for name in found:
        line = f"  {name:<15} {medians[name]:12.3f} ms  peak {peaks[name]:>15,} B"
        if name != "validate":
            line += (
                f"  time {medians[name] / check_ms:>11,.1f}x validate,"
                f" memory {peaks[name] / check_peak:>9,.1f}x"
            )
        print(line)
    if "full read" not in found:
        print("  full read       skipped: it would hold the whole file in memory")


def main() -> None:
    print(f"P4 attachment validation; streaming reads use a {CHUNK:,} B buffer; {mode_line()}")
    policy = AttachmentPolicy()
    with tempfile.TemporaryDirectory() as folder:
        for label, size, runs in SIZES:
            measure(label, runs, policy, sparse_file(Path(folder), size), size)
    header = PDF_HEAD.ljust(8192, b"\0")
    import filetype  # noqa: PLC0415 - only to time the sniffing step alone

    sniff_us = median_ms(lambda: filetype.match(header), scaled(2000, 200)) * 1000
    print(f"filetype on an 8 KiB header: {sniff_us:.1f} us")


if __name__ == "__main__":
    main()
