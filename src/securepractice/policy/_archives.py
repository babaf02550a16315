"""Bounded reading of attachment content, and ZIP central-directory checks (AT-5, AT-7, AT-8).

Nothing here reads more than it is allowed to: `ReadWindow` counts every
byte it takes from the caller's stream against a budget, and the ZIP checks
read only the end-of-central-directory records and the central directory
itself, through `zipfile`, never an entry's data.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from typing import Protocol

import attrs
from typing_extensions import Buffer

__all__ = [
    "END_RECORDS_BYTES",
    "ArchiveFinding",
    "BinaryStream",
    "ReadWindow",
    "ReplayStream",
    "SeekableStream",
    "inspect_zip",
    "read_up_to",
]

_END = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
_LOCATOR = struct.Struct("<4sLQL")
_LOCATOR_SIGNATURE = b"PK\x06\x07"
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_SIGNATURE = b"PK\x06\x06"
_MAX_COMMENT = 0xFFFF
_LOCAL_HEADER_BYTES = 30
_ZIP64_MARKERS = (0xFFFF, 0xFFFFFFFF)

_LAST_RECORDS = _END.size + _LOCATOR.size
_LAST_RECORDS_WITH_COMMENT = _LAST_RECORDS + _MAX_COMMENT

#: The most an archive's end records can cost in reads, besides its central
#: directory: a first look at the last 42 bytes, then (when the archive has a
#: comment) at its last 64 KiB + 42 bytes, and the ZIP64 record, which
#: `zipfile` reads a second time.
END_RECORDS_BYTES = _LAST_RECORDS + _LAST_RECORDS_WITH_COMMENT + 2 * _END64.size

_DRIVE = re.compile(r"^[A-Za-z]:")


class BinaryStream(Protocol):
    """The one method validation needs from a caller's stream: ``read(n) -> bytes``."""

    def read(self, size: int = -1, /) -> bytes:
        """Return at most ``size`` bytes; ``b""`` at the end."""
        ...


class SeekableStream(BinaryStream, Protocol):
    """A stream that can also ``seek`` and ``tell``: what the ZIP checks need."""

    def seek(self, offset: int, whence: int = 0, /) -> int:
        """Move to ``offset`` relative to ``whence``; return the new position."""
        ...

    def tell(self) -> int:
        """Return the current position."""
        ...


class OverBudget(Exception):
    """A read would pass the byte budget; nothing was read."""


def read_up_to(stream: BinaryStream, count: int) -> bytes:
    """Read exactly ``count`` bytes, or fewer at the end of ``stream``; never more."""
    parts: list[bytes] = []
    missing = count
    while missing > 0:
        part = stream.read(missing)
        if not part:
            break
        parts.append(part[:missing])
        missing -= len(part)
    return b"".join(parts)


class ReadWindow(io.RawIOBase):
    """A seekable view of ``length`` bytes of a stream from ``start``, reading on a budget.

    Every byte taken from the source counts against ``budget``; a read that
    would pass it raises `OverBudget` before touching the source. Bytes kept
    by `remember` are served again from memory without counting.
    """

    def __init__(self, source: SeekableStream, *, start: int, length: int) -> None:
        super().__init__()
        self._source = source
        self._start = start
        self._length = length
        self._position = 0
        self.bytes_read = 0
        self.budget = 0
        self._kept_at = 0
        self._kept = b""

    @property
    def length(self) -> int:
        """How many bytes the window shows."""
        return self._length

    def readable(self) -> bool:
        """Say yes: a window is always readable."""
        return True

    def seekable(self) -> bool:
        """Say yes: a window is always seekable."""
        return True

    def tell(self) -> int:
        """Return the position inside the window."""
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move inside the window; a position before its start is an `OSError`."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        if base + offset < 0:
            raise OSError("negative seek position")
        self._position = base + offset
        return self._position

    def remember(self, at: int, data: bytes) -> None:
        """Keep ``data`` (read from position ``at``) to serve it again without reading."""
        self._kept_at, self._kept = at, data

    def readinto(self, buffer: Buffer) -> int:
        """Read into ``buffer`` from the current position, from memory when it can."""
        target = memoryview(buffer).cast("B")
        wanted = min(len(target), max(self._length - self._position, 0))
        if wanted == 0:
            return 0
        offset = self._position - self._kept_at
        if offset >= 0 and offset + wanted <= len(self._kept):
            data = self._kept[offset : offset + wanted]
        else:
            if self.bytes_read + wanted > self.budget:
                raise OverBudget
            self._source.seek(self._start + self._position)
            data = read_up_to(self._source, wanted)
            self.bytes_read += len(data)
        target[: len(data)] = data
        self._position += len(data)
        return len(data)

    def read_at(self, at: int, count: int) -> bytes:
        """Read up to ``count`` bytes from position ``at``."""
        self.seek(at)
        return self.read(count) or b""


class ReplayStream(io.RawIOBase):
    """A non-seekable stream given back whole: the header already read, then the rest (AT-8)."""

    def __init__(self, header: bytes, rest: BinaryStream) -> None:
        super().__init__()
        self._header = memoryview(header)
        self._rest = rest

    def readable(self) -> bool:
        """Say yes: a replay stream is readable."""
        return True

    def readinto(self, buffer: Buffer) -> int:
        """Fill ``buffer`` from the header first, then from the original stream."""
        target = memoryview(buffer).cast("B")
        if self._header:
            count = min(len(target), len(self._header))
            target[:count] = self._header[:count]
            self._header = self._header[count:]
            return count
        data = self._rest.read(len(target))
        target[: len(data)] = data
        return len(data)


@attrs.frozen
class ArchiveFinding:
    """One problem found in an archive's directory: its code and a plain-English message."""

    code: str
    message: str


@attrs.frozen(kw_only=True)
class _Directory:
    entries: int
    size: int
    offset: int


def _parse_end_record(window: ReadWindow) -> _Directory | None:
    """Find the end-of-central-directory record (ZIP64 too); `None` when there is none."""
    length = window.length
    tail_start = max(length - _LAST_RECORDS, 0)
    tail = window.read_at(tail_start, length - tail_start)
    at = len(tail) - _END.size
    if not (at >= 0 and tail[at : at + 4] == _END_SIGNATURE and tail[-2:] == b"\0\0"):
        tail_start = max(length - _LAST_RECORDS_WITH_COMMENT, 0)
        tail = window.read_at(tail_start, length - tail_start)
        at = tail.rfind(_END_SIGNATURE)
        if at < 0 or at + _END.size > len(tail):
            return None
    window.remember(tail_start, tail)
    _, _, _, _, entries, size, offset, _ = _END.unpack_from(tail, at)
    if (
        entries not in _ZIP64_MARKERS
        and size not in _ZIP64_MARKERS
        and offset not in _ZIP64_MARKERS
    ):
        return _Directory(entries=entries, size=size, offset=offset)
    if at < _LOCATOR.size:
        return None
    signature, _, end64_at, _ = _LOCATOR.unpack_from(tail, at - _LOCATOR.size)
    record = window.read_at(end64_at, _END64.size)
    if signature != _LOCATOR_SIGNATURE or len(record) < _END64.size:
        return None
    fields = _END64.unpack(record)
    if fields[0] != _END64_SIGNATURE:
        return None
    return _Directory(entries=fields[7], size=fields[8], offset=fields[9])


def _escapes(name: str) -> bool:
    """Whether an entry name could land outside the folder it is extracted to."""
    return (
        name.startswith("/") or "\\" in name or bool(_DRIVE.match(name)) or ".." in name.split("/")
    )


def _overlapping(entries: list[zipfile.ZipInfo], directory_start: int) -> bool:
    """Whether two entries' data overlap, or run into the directory (a zip-bomb trick)."""
    if not entries:
        return False
    ordered = sorted(entries, key=lambda e: e.header_offset)
    ends = [e.header_offset + _LOCAL_HEADER_BYTES + e.compress_size for e in ordered]
    starts = [e.header_offset for e in ordered[1:]] + [directory_start]
    return any(end > start for end, start in zip(ends, starts, strict=True))


def _check_entries(
    archive: zipfile.ZipFile, *, max_entries: int, max_ratio: int, size: int
) -> list[ArchiveFinding]:
    entries = archive.infolist()
    findings: list[ArchiveFinding] = []
    if len(entries) > max_entries:
        findings.append(
            ArchiveFinding(
                "attachment.archive_too_many_entries",
                f"the archive holds {len(entries):,} entries; at most {max_entries:,} are allowed",
            )
        )
    escaping = [e.filename for e in entries if _escapes(e.filename)]
    if escaping:
        shown = ", ".join(repr(n) for n in escaping[:3])
        findings.append(
            ArchiveFinding(
                "attachment.archive_unsafe_entry",
                f"{len(escaping)} entry name(s) would escape the archive's folder: {shown}",
            )
        )
    declared = sum(e.file_size for e in entries)
    if declared > max_ratio * size:
        findings.append(
            ArchiveFinding(
                "attachment.archive_bomb",
                f"the entries declare {declared:,} bytes uncompressed, more than"
                f" {max_ratio} times the archive's {size:,} bytes: a likely zip bomb",
            )
        )
    if _overlapping(entries, archive.start_dir):
        findings.append(
            ArchiveFinding(
                "attachment.archive_overlapping_entries",
                "entries share or overlap their data: a likely zip bomb",
            )
        )
    return findings


def inspect_zip(
    window: ReadWindow, *, max_directory_bytes: int, max_entries: int, max_ratio: int
) -> list[ArchiveFinding]:
    """Check a ZIP archive from its central directory, never extracting (AT-5, AT-7).

    Reads the end records (at most `END_RECORDS_BYTES`) and a central
    directory of at most ``max_directory_bytes``; a larger directory, or an
    entry count over ``max_entries`` in the end record, is refused before
    the directory is read.
    """
    corrupt = [
        ArchiveFinding("attachment.archive_corrupt", "the archive is damaged or not a ZIP archive")
    ]
    window.budget = window.bytes_read + END_RECORDS_BYTES - _END64.size
    try:
        directory = _parse_end_record(window)
    except (OSError, OverBudget):
        return corrupt
    if directory is None or directory.offset + directory.size > window.length:
        return corrupt
    findings: list[ArchiveFinding] = []
    if directory.size > max_directory_bytes:
        findings.append(
            ArchiveFinding(
                "attachment.archive_directory_too_large",
                f"the archive's directory takes {directory.size:,} bytes;"
                f" at most {max_directory_bytes:,} are read",
            )
        )
    if directory.entries > max_entries:
        findings.append(
            ArchiveFinding(
                "attachment.archive_too_many_entries",
                f"the archive declares {directory.entries:,} entries;"
                f" at most {max_entries:,} are allowed",
            )
        )
    if findings:
        return findings
    window.budget = window.bytes_read + directory.size + _END64.size
    try:
        with zipfile.ZipFile(window) as archive:
            return _check_entries(
                archive, max_entries=max_entries, max_ratio=max_ratio, size=window.length
            )
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        ValueError,
        struct.error,
        NotImplementedError,
        OverBudget,
    ):
        return corrupt
