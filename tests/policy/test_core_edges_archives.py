"""AT-5 and AT-7 at their edges: end records found where zipfile finds them, exact bounds, budgets.

Each archive here is built by hand, record by record, to put one field
exactly on a boundary or one record where a careless reader looks past it.
"""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from plain_words import assert_plain_english
from securepractice import AttachmentRules
from securepractice.policy._archives import OverBudget, ReadWindow, read_up_to
from securepractice.policy.attachments import Attachment, AttachmentPolicy

_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR = struct.Struct("<4sLQL")


def _zip(entries: dict[str, bytes], *, comment: bytes = b"") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as made:
        made.comment = comment
        for name, data in entries.items():
            made.writestr(name, data)
    return out.getvalue()


def _end_at(data: bytes) -> int:
    return data.rindex(b"PK\x05\x06")


def _with_end(data: bytes, **fields: int) -> bytes:
    """Return ``data`` with fields of its (last) end record replaced: entries, size, offset."""
    at = _end_at(data)
    sig, disk, start, _, entries, size, offset, comment = _END.unpack_from(data, at)
    entries = fields.get("entries", entries)
    end = _END.pack(
        sig,
        disk,
        start,
        fields.get("here", entries),
        entries,
        fields.get("size", size),
        fields.get("offset", offset),
        fields.get("comment", comment),
    )
    return data[:at] + end + data[at + _END.size :]


def _as_zip64(data: bytes, *, entries: int | None = None) -> bytes:
    """Return ``data`` with ZIP64 end records before its end record, which becomes all markers."""
    at = _end_at(data)
    _, _, _, _, count, size, offset, comment_length = _END.unpack_from(data, at)
    count = count if entries is None else entries
    end64 = _END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = _LOCATOR.pack(b"PK\x06\x07", 0, at, 1)
    markers = _END.pack(
        b"PK\x05\x06", 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, comment_length
    )
    return data[:at] + end64 + locator + markers + data[at + _END.size :]


def _codes(data: bytes, rules: AttachmentRules | None = None) -> tuple[str, ...]:
    return AttachmentPolicy(rules).check_file(Attachment(name="bundle.zip", content=data)).codes


def _messages(data: bytes, rules: AttachmentRules | None = None) -> dict[str, str]:
    report = AttachmentPolicy(rules).check_file(Attachment(name="bundle.zip", content=data))
    return {problem.code: problem.message for problem in report.problems}


PLAIN = _zip({"a.txt": b"hello", "b.txt": b"world"})


class _OneByteAtATime(io.RawIOBase):
    """A stream that gives one byte a read."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def read(self, _size: int = -1, /) -> bytes:
        taken, self._data = self._data[:1], self._data[1:]
        return taken


def test_at_5_reading_up_to_a_count_takes_every_byte_of_a_trickling_stream() -> None:
    """AT-5: a stream that gives one byte a read still yields exactly the count asked for."""
    assert read_up_to(_OneByteAtATime(b"abcdef"), 5) == b"abcde"
    assert read_up_to(_OneByteAtATime(b"ab"), 5) == b"ab"


def test_at_5_a_window_reads_nothing_before_it_is_given_a_budget() -> None:
    """AT-5: a new window fails closed: its budget starts at nothing."""
    window = ReadWindow(io.BytesIO(b"0123456789"), start=0, length=10)
    with pytest.raises(OverBudget):
        window.read(1)


def test_at_5_a_window_counts_every_byte_it_reads_and_stops_at_its_end() -> None:
    """AT-5: the count adds up across reads; a single last byte is read; past the end is empty."""
    window = ReadWindow(io.BytesIO(b"xx0123456789"), start=2, length=10)
    window.budget = 10
    assert window.read(4) == b"0123"
    assert window.read(5) == b"45678"
    assert window.read(1) == b"9"
    assert window.bytes_read == 10
    assert window.read_at(10, 4) == b""
    with pytest.raises(OSError, match="negative") as refused:
        window.seek(-1)
    assert_plain_english(str(refused.value), sentence=False)


def test_at_7_a_comment_ending_in_two_zero_bytes_hides_no_end_record() -> None:
    """AT-7: the end record is found by its signature, not by the last two bytes being zero."""
    assert _codes(_zip({"a.txt": b"hello"}, comment=b"notes\0\0")) == ()


def test_at_7_the_last_end_record_is_the_one_read_as_zipfile_reads_it() -> None:
    """AT-7: a comment that holds an end record is what an unzip tool obeys, so it is judged."""
    fake = _END.pack(b"PK\x05\x06", 0, 0, 0xFFF0, 0xFFF0, 0, 0, 0)
    sample = _with_end(_zip({"a.txt": b"hello"}, comment=fake), comment=len(fake))
    assert _codes(sample, AttachmentRules(max_archive_entries=100)) == (
        "attachment.archive_too_many_entries",
    )


@pytest.mark.parametrize("comment", [b"", b"note"])
def test_at_7_an_empty_archive_is_an_archive(comment: bytes) -> None:
    """AT-7: an archive of no entries is no damage, with a comment or without (end record at 0)."""
    empty = _END.pack(b"PK\x05\x06", 0, 0, 0, 0, 0, 0, len(comment)) + comment
    assert _codes(empty) == ()


def test_at_7_an_end_record_whose_comment_was_cut_off_is_still_read() -> None:
    """AT-7: a record that claims a comment the file lacks is read, as zipfile reads it."""
    assert _codes(_with_end(PLAIN, comment=10)) == ()


@pytest.mark.parametrize("comment", [b"", b"a comment"])
def test_at_7_zip64_end_records_are_read_with_or_without_a_comment(comment: bytes) -> None:
    """AT-7: the ZIP64 locator is found just before the end record, wherever the tail starts."""
    sample = _as_zip64(_zip({"a.txt": b"hello"}, comment=comment))
    assert _codes(sample) == ()


def test_at_7_a_zip64_count_over_the_bound_is_refused_before_reading() -> None:
    """AT-7: the entry count of the ZIP64 record, not its directory size, is the count."""
    sample = _as_zip64(PLAIN, entries=20_000)
    assert _codes(sample) == ("attachment.archive_too_many_entries",)


def test_at_7_a_zip64_locator_pointing_at_the_last_bytes_is_corrupt_not_a_crash() -> None:
    """AT-7: a ZIP64 record cut short by the end of the file is damage, reported as such."""
    sample = _as_zip64(PLAIN)
    at = sample.rindex(b"PK\x06\x07")
    locator = _LOCATOR.pack(b"PK\x06\x07", 0, len(sample) - 30, 1)
    sample = sample[:at] + locator + sample[at + _LOCATOR.size :]
    assert _codes(sample) == ("attachment.archive_corrupt",)


def test_at_7_a_directory_past_the_end_is_corrupt_whatever_its_size() -> None:
    """AT-7: a directory that does not fit in the file is damage, before its size is judged."""
    sample = _with_end(PLAIN, size=5_000, offset=0)
    assert _codes(sample, AttachmentRules(max_central_directory_bytes=1_000)) == (
        "attachment.archive_corrupt",
    )


def test_at_7_a_directory_that_ends_exactly_at_the_end_of_the_file_is_judged() -> None:
    """AT-7: a directory reaching the last byte fits; its declared count is then judged."""
    body = bytes(100)
    end = _END.pack(b"PK\x05\x06", 0, 0, 20_000, 20_000, len(body) + _END.size, 0, 0)
    assert _codes(body + end) == ("attachment.archive_too_many_entries",)


def test_at_5_a_directory_of_exactly_the_bound_is_read() -> None:
    """AT-5: a directory of exactly ``max_central_directory_bytes`` is read, one more is not."""
    rules = AttachmentRules(max_central_directory_bytes=1_000)
    body = bytes(1_001)
    exactly = body + _END.pack(b"PK\x05\x06", 0, 0, 1, 1, 1_000, 0, 0)
    assert _codes(exactly, rules) == ("attachment.archive_corrupt",)
    over = body + _END.pack(b"PK\x05\x06", 0, 0, 1, 1, 1_001, 0, 0)
    messages = _messages(over, rules)
    assert list(messages) == ["attachment.archive_directory_too_large"]
    assert_plain_english(messages["attachment.archive_directory_too_large"], sentence=False)
    assert "1,001" in messages["attachment.archive_directory_too_large"]
    assert "1,000" in messages["attachment.archive_directory_too_large"]


def _declare(data: bytes, uncompressed: int) -> bytes:
    """Return ``data`` with its one directory entry declaring ``uncompressed`` bytes."""
    at = data.index(b"PK\x01\x02") + 24
    return data[:at] + struct.pack("<L", uncompressed) + data[at + 4 :]


def test_at_7_exactly_the_ratio_is_no_bomb() -> None:
    """AT-7: declaring exactly 100 times the archive's size is allowed; one byte more is not."""
    one = _zip({"a.txt": b"hello"})
    assert _codes(_declare(one, 100 * len(one))) == ()
    bomb = _messages(_declare(one, 100 * len(one) + 1))
    assert list(bomb) == ["attachment.archive_bomb"]
    assert_plain_english(bomb["attachment.archive_bomb"], sentence=False, names=("100",))


def test_at_7_entries_back_to_back_do_not_overlap() -> None:
    """AT-7: an entry whose data ends where the next begins is not an overlap."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as made:
        made.writestr(zipfile.ZipInfo(""), b"first")  # no name: its data ends where b.txt starts
        made.writestr(zipfile.ZipInfo("b.txt"), b"second")
    assert _codes(out.getvalue()) == ()


def test_at_7_overlapping_entries_say_so_in_plain_words() -> None:
    """AT-7: the overlap finding is a fragment a person reads."""
    sample = PLAIN
    first, second = (sample.index(b"PK\x01\x02"), sample.rindex(b"PK\x01\x02"))
    offset_of_first = sample[first + 42 : first + 46]
    sample = sample[: second + 42] + offset_of_first + sample[second + 46 :]
    messages = _messages(sample)
    assert "attachment.archive_overlapping_entries" in messages
    assert_plain_english(messages["attachment.archive_overlapping_entries"], sentence=False)


def test_at_7_escaping_entries_are_listed_three_at_most_and_comma_separated() -> None:
    """AT-7: the finding counts every escaping entry and shows the first three."""
    names = ["../a", "/b", "..\\c", "../d"]
    messages = _messages(_zip(dict.fromkeys(names, b"x")))
    message = messages["attachment.archive_unsafe_entry"]
    assert_plain_english(message, sentence=False)
    assert message.startswith("4 ")
    assert "'../a', '/b', '..\\\\c'" in message
    assert "../d" not in message


def test_at_7_too_many_entries_in_the_directory_says_how_many() -> None:
    """AT-7: a directory that holds more entries than allowed names both numbers."""
    sample = _with_end(_zip({f"{n}.txt": b"" for n in range(12)}), entries=2)
    messages = _messages(sample, AttachmentRules(max_archive_entries=10))
    message = messages["attachment.archive_too_many_entries"]
    assert_plain_english(message, sentence=False, names=("12", "10"))


def test_at_7_a_damaged_archive_says_so_in_plain_words() -> None:
    """AT-7: the corrupt finding names the ZIP format."""
    messages = _messages(b"PK\x05\x06 not really")
    assert_plain_english(messages["attachment.archive_corrupt"], sentence=False, names=("ZIP",))
