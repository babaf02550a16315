"""A message as a whole: its size limit and every problem per file (AT-2, AT-6)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from securepractice import AttachmentRules, InvalidInput
from securepractice.policy.attachments import Attachment, AttachmentPolicy

LIMIT = 314_572_800


class Pipe:
    """A non-seekable stream whose size the caller knows (an upload's Content-Length)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        return self._data.read(size)


def claimed(name: str, size: int) -> Attachment:
    return Attachment(name=name, content=Pipe(b"plain text"), size=size)


def test_the_default_limit_is_300_mib_in_bytes() -> None:
    """AT-2: 300 MB means 300 * 1024 * 1024 bytes."""
    assert AttachmentRules().max_message_bytes == LIMIT
    assert AttachmentPolicy().check([]).max_bytes == LIMIT


def test_the_limit_itself_is_allowed_and_one_byte_more_is_not() -> None:
    """AT-2: the boundary is exact, whatever the split between files."""
    policy = AttachmentPolicy()
    at_limit = policy.check([claimed("a.txt", LIMIT - 1000), claimed("b.txt", 1000)])
    assert at_limit.ok
    assert at_limit.total_bytes == LIMIT
    over = policy.check([claimed("a.txt", LIMIT - 1000), claimed("b.txt", 1001)])
    assert not over.ok
    assert over.total_bytes == LIMIT + 1
    assert over.codes == ("message.too_large",)
    assert all(f.ok for f in over.files)
    assert "314,572,801" in over.problems[0].message
    assert "314,572,800" in over.problems[0].message


def test_sizes_on_disk_count_without_reading_the_files(tmp_path: Path) -> None:
    """AT-2: two sparse files of 150 MiB pass; one more byte is refused."""
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_bytes(b"")
        os.truncate(tmp_path / name, 150 * 1024 * 1024)
    (tmp_path / "c.txt").write_bytes(b"x")
    policy = AttachmentPolicy()
    two = [Attachment.from_path(tmp_path / "a.txt"), Attachment.from_path(tmp_path / "b.txt")]
    assert policy.check(two).ok
    over = policy.check([*two, Attachment.from_path(tmp_path / "c.txt")])
    assert over.codes == ("message.too_large",)


def test_the_limit_is_a_setting() -> None:
    """AT-2: a smaller limit from AttachmentRules applies exactly."""
    policy = AttachmentPolicy(AttachmentRules(max_message_bytes=10))
    assert policy.check([Attachment(name="a.txt", content=b"0123456789")]).ok
    assert policy.check([Attachment(name="a.txt", content=b"0123456789!")]).codes == (
        "message.too_large",
    )


def test_a_size_that_disagrees_with_the_content_is_refused() -> None:
    """AT-2: a caller's size must match a measurable content."""
    report = AttachmentPolicy().check([Attachment(name="a.txt", content=b"four", size=3)])
    assert report.codes == ("attachment.size_mismatch",)
    assert report.files[0].size == 4
    assert AttachmentPolicy().check([Attachment(name="a.txt", content=b"four", size=4)]).ok


def test_a_message_passes_only_when_every_file_passes() -> None:
    """AT-6: one bad file refuses the message; each file keeps its own verdict."""
    good = Attachment(name="notes.txt", content=b"notes")
    bad = Attachment(name="invoice\u202etxt.exe", content=b"MZ\x90\x00")
    report = AttachmentPolicy().check([good, bad])
    assert not report.ok
    assert not report
    assert report.files[0].ok
    assert report.files[0].codes == ()
    assert report.files[1].codes == (
        "attachment.name_bidi_control",
        "attachment.extension_not_allowed",
        "attachment.executable",
    )
    assert report.codes == report.files[1].codes
    assert AttachmentPolicy().check([good, good]).ok


def test_an_empty_message_passes() -> None:
    """AT-6: no attachments, no problems."""
    report = AttachmentPolicy().check([])
    assert report.ok
    assert report.total_bytes == 0


def test_every_code_is_stable_and_namespaced() -> None:
    """AT-6: file problems start with "attachment.", message problems with "message."."""
    report = AttachmentPolicy(AttachmentRules(max_message_bytes=1)).check(
        [Attachment(name="../x.pdf", content=b"MZ"), Attachment(name="y.txt", content=b"y")]
    )
    assert report.problems[0].code == "message.too_large"
    assert all(c.startswith("attachment.") for f in report.files for c in f.codes)
    assert all(p.message for f in report.files for p in f.problems)


def test_the_content_is_not_in_the_repr() -> None:
    """AT-6: reports and attachments show names and verdicts, not what a file holds."""
    attachment = Attachment(name="notes.txt", content=b"patient: Jane Doe")
    report = AttachmentPolicy().check([attachment])
    assert "Jane" not in repr(attachment)
    assert "Jane" not in repr(report)


@pytest.mark.parametrize(
    ("arguments", "field", "code"),
    [
        ({"name": b"a.txt", "content": b""}, "name", "attachment.name_not_text"),
        ({"name": "a.txt", "content": 42}, "content", "attachment.content_invalid"),
        ({"name": "a.txt", "content": b"", "size": -1}, "size", "attachment.size_invalid"),
        ({"name": "a.txt", "content": b"", "size": True}, "size", "attachment.size_invalid"),
        ({"name": "a.txt", "content": b"", "size": 1.5}, "size", "attachment.size_invalid"),
    ],
)
def test_malformed_arguments_are_programming_errors(
    arguments: dict[str, object], field: str, code: str
) -> None:
    """AT-6: a wrong argument type raises InvalidInput naming the field, at construction."""
    with pytest.raises(InvalidInput) as raised:
        Attachment(**arguments)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert raised.value.code == code


def test_content_may_be_a_path_string_bytearray_or_memoryview(tmp_path: Path) -> None:
    """AT-6: every documented content form is accepted."""
    path = tmp_path / "n.txt"
    path.write_bytes(b"hello")
    policy = AttachmentPolicy()
    for content in (str(path), path, bytearray(b"hello"), memoryview(b"hello")):
        report = policy.check([Attachment(name="n.txt", content=content)])
        assert report.ok
        assert report.total_bytes == 5
