"""ZIP archives checked from their central directory (AT-5, AT-7)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice import AttachmentRules
from securepractice.policy._archives import (
    END_RECORDS_BYTES,
    OverBudget,
    ReadWindow,
    ReplayStream,
)
from securepractice.policy.attachments import Attachment, AttachmentPolicy, FileReport


def archive(entries: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as made:
        for name, data in entries.items():
            made.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return out.getvalue()


def check(name: str, content: Any, rules: AttachmentRules | None = None) -> FileReport:
    return AttachmentPolicy(rules).check([Attachment(name=name, content=content)]).files[0]


def overlapping_bomb(copies: int, kernel_size: int) -> bytes:
    """A zip bomb of overlapping entries: every directory entry points at one compressed kernel.

    Built by hand, as the real ones are: one local header and deflated data,
    then ``copies`` central-directory entries that all name that same data.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    kernel = compressor.compress(bytes(kernel_size)) + compressor.flush()
    crc = zlib.crc32(bytes(kernel_size))
    local = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(kernel), kernel_size, 1, 0
    )
    data = local + b"0" + kernel
    directory = b""
    for i in range(copies):
        name = b"%d" % i
        directory += (
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                0,
                8,
                0,
                0,
                crc,
                len(kernel),
                kernel_size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                0,
            )
            + name
        )
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, copies, copies, len(directory), len(data), 0)
    return data + directory + end


def test_a_real_word_document_passes() -> None:
    """AT-7: an ordinary archive passes its directory checks."""
    sample = archive(
        {
            "[Content_Types].xml": b"<Types/>",
            "_rels/.rels": b"<Relationships/>",
            "word/document.xml": b"<w:document/>",
        }
    )
    assert check("letter.docx", sample).ok
    assert check("bundle.zip", sample).ok


@pytest.mark.parametrize(
    "entry",
    [
        "../evil.sh",
        "docs/../../evil.sh",
        "/etc/passwd",
        "C:/Windows/evil.dll",
        "a\\..\\b.txt",
        "..",
    ],
)
def test_entries_that_escape_the_archive_are_refused(entry: str) -> None:
    """AT-7: absolute names, "..", drive letters and backslashes are refused."""
    sample = archive({"ok.txt": b"fine", entry: b"payload"})
    report = check("bundle.zip", sample)
    assert report.codes == ("attachment.archive_unsafe_entry",)
    assert repr(entry) in report.problems[0].message


def test_harmless_dots_in_entry_names_pass() -> None:
    """AT-7: a name such as "v1..2.txt" or ".hidden" escapes nothing."""
    assert check("bundle.zip", archive({"v1..2.txt": b"x", ".hidden/a.txt": b"y"})).ok


def test_an_overlapping_entries_zip_bomb_is_refused() -> None:
    """AT-7: many entries sharing one kernel declare far more than 100x the archive."""
    bomb = overlapping_bomb(copies=50, kernel_size=1_000_000)
    with zipfile.ZipFile(io.BytesIO(bomb)) as opened:
        assert len(opened.infolist()) == 50
        assert opened.read("0") == bytes(1_000_000)
    report = check("bundle.zip", bomb)
    assert set(report.codes) == {
        "attachment.archive_bomb",
        "attachment.archive_overlapping_entries",
    }
    assert "50,000,000" in report.problems[0].message


def test_overlapping_entries_are_refused_even_when_small() -> None:
    """AT-7: entries that share data are refused whatever the ratio."""
    report = check("bundle.zip", overlapping_bomb(copies=2, kernel_size=10))
    assert report.codes == ("attachment.archive_overlapping_entries",)


def test_the_ratio_bound_is_a_setting() -> None:
    """AT-7: 1 MB of zeros in a ~1 KB archive is over 100x; a laxer setting lets it pass."""
    sample = archive({"zeros.bin": bytes(1_000_000)})
    assert check("bundle.zip", sample).codes == ("attachment.archive_bomb",)
    lax = AttachmentRules(max_compression_ratio=1_000_000 // len(sample) + 1)
    assert check("bundle.zip", sample, lax).ok
    stored = archive({"zeros.bin": bytes(10_000)}, method=zipfile.ZIP_STORED)
    assert check("bundle.zip", stored).ok


def test_the_entry_count_is_bounded_at_10000() -> None:
    """AT-7: 10,000 entries pass, 10,001 are refused."""
    many = {f"{i}": b"" for i in range(10_000)}
    assert check("bundle.zip", archive(many, method=zipfile.ZIP_STORED)).ok
    many["one-more"] = b""
    report = check("bundle.zip", archive(many, method=zipfile.ZIP_STORED))
    assert report.codes == ("attachment.archive_too_many_entries",)
    assert "10,001" in report.problems[0].message


def test_the_entry_count_is_a_setting() -> None:
    """AT-7: the bound comes from AttachmentRules."""
    sample = archive({"a": b"", "b": b"", "c": b""})
    assert check("bundle.zip", sample, AttachmentRules(max_archive_entries=3)).ok
    report = check("bundle.zip", sample, AttachmentRules(max_archive_entries=2))
    assert report.codes == ("attachment.archive_too_many_entries",)


def test_an_end_record_that_undercounts_is_caught_in_the_directory() -> None:
    """AT-7: the count is checked again on the entries actually listed."""
    sample = bytearray(archive({"a": b"", "b": b"", "c": b""}, method=zipfile.ZIP_STORED))
    struct.pack_into("<HH", sample, len(sample) - 22 + 8, 1, 1)
    report = check("bundle.zip", bytes(sample), AttachmentRules(max_archive_entries=2))
    assert report.codes == ("attachment.archive_too_many_entries",)


class CountingStream(io.BytesIO):
    """Bytes in memory that count what is read from them."""

    bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def test_a_directory_over_the_bound_is_refused_without_reading_it() -> None:
    """AT-5: the central directory is read only when it fits the bound."""
    sample = archive({f"entry-{i:04}.txt": b"x" for i in range(200)})
    rules = AttachmentRules(max_central_directory_bytes=4096)
    stream = CountingStream(sample)
    report = check("bundle.zip", stream, rules)
    assert report.codes == ("attachment.archive_directory_too_large",)
    assert stream.bytes_read <= 8 * 1024 + END_RECORDS_BYTES
    assert check("bundle.zip", sample).ok


def test_a_big_directory_within_the_bound_is_read_once() -> None:
    """AT-5: the bytes read are the header, the end records and the directory, no more."""
    sample = archive({f"entry-{i:05}.txt": b"x" for i in range(5000)}, method=zipfile.ZIP_STORED)
    with zipfile.ZipFile(io.BytesIO(sample)) as opened:
        directory = len(sample) - opened.start_dir - 22
    stream = CountingStream(sample)
    assert check("bundle.zip", stream).ok
    assert stream.bytes_read <= 8 * 1024 + 42 + directory


def test_zip64_end_records_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """AT-7: an archive with ZIP64 end records is checked like any other."""
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
    written = archive({"a.txt": b"a", "../b.txt": b"b"})
    monkeypatch.undo()
    assert b"PK\x06\x06" in written
    # Mark the classic end record's fields as "see ZIP64", as writers do for huge archives.
    marked = struct.pack("<HH2L", 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    sample = written[:-14] + marked + written[-2:]
    with zipfile.ZipFile(io.BytesIO(sample)) as opened:
        assert len(opened.infolist()) == 2
    assert check("bundle.zip", sample).codes == ("attachment.archive_unsafe_entry",)
    report = check("bundle.zip", sample, AttachmentRules(max_archive_entries=1))
    assert report.codes == ("attachment.archive_too_many_entries",)


def test_an_archive_with_a_comment_is_read() -> None:
    """AT-7: the end record is found behind an archive comment."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as made:
        made.writestr("../up.txt", b"x")
        made.comment = b"c" * 60_000
    assert check("bundle.zip", out.getvalue()).codes == ("attachment.archive_unsafe_entry",)


def needs_version(sample: bytes, version: int) -> bytes:
    """Make the first directory entry claim it needs a ZIP version ``zipfile`` cannot read."""
    at = sample.index(b"PK\x01\x02") + 6
    return sample[:at] + struct.pack("<H", version) + sample[at + 2 :]


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-10],
        lambda b: b[: len(b) // 2],
        lambda _b: b"PK\x03\x04" + bytes(100),
        # A bare end record that promises one entry in a directory that is not there.
        lambda _b: b"PK\x05\x06" + struct.pack("<4H2LH", 0, 0, 1, 1, 46, 0, 0),
        lambda _b: b"PK",
        lambda _b: b"",
        lambda b: b.replace(b"PK\x01\x02", b"PK\x01\x09"),
        lambda b: b[:-22] + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, 46, 10**9, 0),
        lambda b: b[:-22] + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0, 0, 0),
        lambda _b: b"PK\x05\x06" + b"\xff" * 18,
        lambda b: b + b"PK\x05\x06",
        lambda b: needs_version(b, 64),
    ],
)
def test_a_damaged_archive_is_refused_with_its_own_code(damage: Any) -> None:
    """AT-7: a corrupt archive is a problem, never an exception."""
    sample = archive({"notes.txt": b"Patient notes\n" * 20, "more.txt": b"More\n"})
    assert check("bundle.zip", damage(sample)).codes == ("attachment.archive_corrupt",)


@given(st.binary(max_size=600))
def test_no_bytes_named_zip_make_the_validator_raise(data: bytes) -> None:
    """AT-7: arbitrary content named .zip gives a report, never an exception."""
    check("bundle.zip", data)


@given(st.data())
def test_no_damage_to_a_real_archive_makes_the_validator_raise(data: st.DataObject) -> None:
    """AT-7: flipping bytes of a real archive gives a report, never an exception."""
    sample = bytearray(archive({"a.txt": b"alpha" * 10, "b/c.txt": b"beta"}))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(sample) - 1))
        sample[at] = data.draw(st.integers(0, 255))
    report = check("bundle.zip", bytes(sample))
    assert all(code.startswith("attachment.") for code in report.codes)


def test_a_zip64_locator_pointing_nowhere_is_corrupt() -> None:
    """AT-7: a ZIP64 locator whose record is missing is refused as corrupt."""
    sample = archive({"a.txt": b"a"})
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, 3, 1)
    marked = sample[:-22] + locator + sample[-22:-14] + b"\xff" * 12 + sample[-2:]
    assert check("bundle.zip", marked).codes == ("attachment.archive_corrupt",)


def test_a_read_error_inside_an_archive_is_reported() -> None:
    """AT-7: an I/O error after the header is a problem, not an exception."""

    class FailingAfterHeader(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            if self.tell() > 0:
                raise OSError(5, "Input/output error")
            return super().read(size)

    report = check("bundle.zip", FailingAfterHeader(archive({"a.txt": b"a"})))
    assert report.codes == ("attachment.archive_corrupt",)


def test_the_window_refuses_to_read_past_its_budget() -> None:
    """AT-5: a read that would pass the budget reads nothing and says so."""
    source = CountingStream(b"0123456789" * 10)
    window = ReadWindow(source, start=10, length=50)
    assert window.readable()
    assert window.seekable()
    window.budget = 20
    assert window.read(15) == b"012345678901234"
    with pytest.raises(OverBudget):
        window.read(15)
    assert source.bytes_read == 15
    window.remember(0, b"0123456789")
    window.seek(2)
    assert window.read(5) == b"23456"
    assert source.bytes_read == 15
    window.seek(-5, io.SEEK_END)
    assert window.read(100) == b"56789"
    with pytest.raises(OSError, match="negative"):
        window.seek(-1)


def test_a_replay_stream_is_readable_and_gives_everything_back() -> None:
    """AT-8: header first, then the rest, in any read sizes."""
    replay = ReplayStream(b"head", io.BytesIO(b"-and-rest"))
    assert replay.readable()
    assert replay.read(2) == b"he"
    assert replay.read() == b"ad-and-rest"
