"""Attachment validation against a naive full read: time, peak memory and ratios.

Run with ``nox -s bench`` (or ``python benchmarks/bench_attachments.py``). The
files are sparse (made with ``truncate``) in a temporary folder, so they cost
no disk space. The naive full read of the 10 GiB file is skipped: it would
need 10 GiB of memory.
"""

from __future__ import annotations

import subprocess
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from _timing import median_ms

from securepractice.policy.attachments import Attachment, AttachmentPolicy

PDF_HEAD = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
SIZES = (("1 KB", 1024), ("300 MB", 300 * 1024 * 1024), ("10 GB", 10 * 1024**3))
NAIVE_LIMIT = 1024**3


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


def main() -> None:
    policy = AttachmentPolicy()
    with tempfile.TemporaryDirectory() as folder:
        for label, size in SIZES:
            path = sparse_file(Path(folder), size)

            def validate(path: Path = path) -> object:
                return policy.check([Attachment.from_path(path)])

            report = policy.check([Attachment.from_path(path)])
            assert report.files[0].ok, report.files[0].problems
            check_ms = median_ms(validate, 50)
            check_peak = peak_bytes(validate)
            line = f"{label} ({size:,} bytes): validate {check_ms:.3f} ms, peak {check_peak:,} B"
            if size <= NAIVE_LIMIT:
                naive_ms = median_ms(path.read_bytes, 5)
                naive_peak = peak_bytes(path.read_bytes)
                line += (
                    f"; naive full read {naive_ms:.3f} ms, peak {naive_peak:,} B;"
                    f" time ratio {naive_ms / check_ms:,.1f}x,"
                    f" memory ratio {naive_peak / check_peak:,.1f}x"
                )
            else:
                line += "; naive full read skipped (it would hold the whole file in memory)"
            print(line)
    header = PDF_HEAD.ljust(8192, b"\0")
    import filetype  # noqa: PLC0415 - only to time the sniffing step alone

    sniff_us = median_ms(lambda: filetype.match(header), 2000) * 1000
    print(f"filetype on an 8 KiB header: {sniff_us:.1f} us")


if __name__ == "__main__":
    main()
