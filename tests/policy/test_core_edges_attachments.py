"""AT-1..AT-6, AT-8 at their edges: exact bounds on names, sizes and totals, words people read."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from plain_words import assert_plain_english
from securepractice import AttachmentRules, InvalidInput
from securepractice.policy.attachments import Attachment, AttachmentPolicy

MIB = 1024 * 1024
POLICY = AttachmentPolicy()


class _OneWay:
    """A stream that cannot seek, such as a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        return self._data.read(size)


class _Broken:
    """A stream whose first read fails with a bare `OSError` (no ``strerror``)."""

    def read(self, _size: int = -1, /) -> bytes:
        raise OSError("cut off")


def _problems(name: str) -> dict[str, str]:
    return {problem.code: problem.message for problem in POLICY.check_name(name)}


@pytest.mark.parametrize(
    ("kwargs", "field", "code", "named"),
    [
        ({"name": 7, "content": b""}, "name", "attachment.name_not_text", "int"),
        ({"name": "a.pdf", "content": 3.5}, "content", "attachment.content_invalid", "float"),
        ({"name": "a.pdf", "content": b"", "size": -1}, "size", "attachment.size_invalid", "-1"),
        (
            {"name": "a.pdf", "content": b"", "size": True},
            "size",
            "attachment.size_invalid",
            "True",
        ),
    ],
)
def test_at_6_a_malformed_attachment_is_a_programming_error_that_says_what_was_given(
    kwargs: dict[str, object], field: str, code: str, named: str
) -> None:
    """AT-6: a name that is not text, content of no kind, a negative size: each says what it got."""
    with pytest.raises(InvalidInput) as refused:
        Attachment(**kwargs)  # type: ignore[arg-type]
    assert (refused.value.field, refused.value.code) == (field, code)
    assert_plain_english(refused.value.message, sentence=False, names=(named,))


def test_at_6_an_empty_file_has_size_zero_and_counts_nothing() -> None:
    """AT-6: size 0 is a size; an empty file adds nothing to the message's total (AT-2)."""
    assert Attachment(name="a.pdf", content=b"", size=0).size == 0
    rules = AttachmentRules(max_message_bytes=10)
    report = AttachmentPolicy(rules).check(
        [
            Attachment(name="a.txt", content=b"0123456789"),
            Attachment(name="b.txt", content=b""),
            Attachment(name="c.txt", content=_OneWay(b"")),
        ]
    )
    assert report.total_bytes == 10
    assert report.problems == ()


def test_at_2_an_oversize_message_names_the_limit_in_bytes_and_mebibytes() -> None:
    """AT-2: the total and the limit, the limit in bytes and in MiB as people read it."""
    report = POLICY.check(
        [Attachment(name="scan.pdf", content=_OneWay(b"%PDF-1.7\n"), size=300 * MIB + 1)]
    )
    assert [p.code for p in report.problems] == ["message.too_large"]
    assert_plain_english(
        report.problems[0].message,
        sentence=False,
        names=(f"{300 * MIB + 1:,}", f"{300 * MIB:,} bytes", "(300 MiB)"),
    )


@pytest.mark.parametrize(
    ("name", "code", "named"),
    [
        ("", "attachment.name_empty", "name"),
        ("README", "attachment.extension_not_allowed", "extension"),
        ("setup.exe", "attachment.extension_not_allowed", "'.exe'"),
        ("a/b.pdf", "attachment.name_separator", "separator"),
        ("a..b.pdf", "attachment.name_dot_dot", "'..'"),
        ("C:x.pdf", "attachment.name_drive_letter", "drive letter"),
        ("a?.pdf", "attachment.name_reserved_character", '< > : " | ? *'),
        ("a\x00.pdf", "attachment.name_control_character", "control character"),
        ("a\u2028.pdf", "attachment.name_control_character", "separator"),
        ("a\u202e.pdf", "attachment.name_bidi_control", "bidirectional"),
        ("a\u200b.pdf", "attachment.name_invisible_character", "invisible"),
        ("a\ud800.pdf", "attachment.name_invalid_unicode", "surrogate"),
        ("a\ue000.pdf", "attachment.name_invalid_unicode", "private-use"),
        ("a\u0378.pdf", "attachment.name_invalid_unicode", "assigned"),
        ("scan.pdf.", "attachment.name_trailing_dot_or_space", "dot or a space"),
        (". .pdf", "attachment.name_empty_stem", "before its extension"),
        ("a" * 252 + ".pdf", "attachment.name_too_long", "255"),
        ("NUL.pdf", "attachment.name_device", "Windows"),
    ],
)
def test_at_4_each_problem_of_a_name_says_what_it_is(name: str, code: str, named: str) -> None:
    """AT-4, AT-1: each problem of a name is a fragment naming what is wrong."""
    problems = _problems(name)
    assert code in problems
    assert_plain_english(problems[code], sentence=False, names=(named,))


def test_at_4_a_device_name_is_written_as_windows_writes_it() -> None:
    """AT-4: the device finding names Windows and its devices in capitals."""
    message = _problems("com1.pdf")["attachment.name_device"]
    assert_plain_english(message, sentence=False, names=("Windows", "CON", "NUL", "COM1"))


def test_at_4_only_spaces_end_a_device_name() -> None:
    """AT-4: Windows trims spaces after a device name; a no-break space is part of the name."""
    assert "attachment.name_device" in _problems("CON  .txt")
    assert "attachment.name_device" not in _problems("CON\u00a0.txt")


def test_at_4_the_extension_is_the_last_suffix_and_the_stem_what_precedes_it() -> None:
    """AT-4: ``.hidden.pdf`` has a stem; ``X.pdf`` too; ``. .pdf`` has none."""
    assert _problems(".hidden.pdf") == {}
    assert _problems("X.pdf") == {}
    assert "attachment.name_empty_stem" in _problems(". .pdf")


def test_at_4_one_code_is_reported_once_for_two_classes_that_share_it() -> None:
    """AT-4: a surrogate and a private-use character are both invalid Unicode, reported once."""
    codes = [p.code for p in POLICY.check_name("a\ud800\ue000.pdf")]
    assert codes.count("attachment.name_invalid_unicode") == 1


def test_at_4_characters_are_judged_up_to_one_past_the_longest_name() -> None:
    """AT-4: a huge name is judged on its first 256 characters: one past the limit, no more."""
    at_the_last = "a" * 255 + "\x00" + ".pdf"
    assert "attachment.name_control_character" in _problems(at_the_last)
    past_it = "a" * 256 + "\x00" + ".pdf"
    assert "attachment.name_control_character" not in _problems(past_it)
    assert "attachment.name_too_long" in _problems(past_it)


def test_at_6_a_report_gives_the_extension_it_judged() -> None:
    """AT-6: the report of a file carries its lower-cased extension."""
    report = POLICY.check_file(Attachment(name="Scan.PDF", content=b"%PDF-1.7\n"))
    assert (report.extension, report.ok) == (".pdf", True)


def test_at_3_a_type_mismatch_names_what_the_content_is_and_the_extension() -> None:
    """AT-3: the mismatch says what was found and which extension it contradicts."""
    report = POLICY.check_file(Attachment(name="photo.jpg", content=b"%PDF-1.7\n"))
    assert report.codes == ("attachment.type_mismatch",)
    assert_plain_english(report.problems[0].message, sentence=False, names=("pdf", "'.jpg'"))


def test_at_7_an_empty_stream_named_zip_is_not_asked_to_seek() -> None:
    """AT-7: a stream that gave no bytes has no archive to judge; only its unknown size counts."""
    report = POLICY.check_file(Attachment(name="bundle.zip", content=_OneWay(b"")))
    assert report.codes == ("attachment.size_unknown",)
    assert_plain_english(report.problems[0].message, sentence=False)


def test_at_8_a_zip_from_a_stream_that_cannot_seek_says_how_to_give_it() -> None:
    """AT-8: a ZIP archive's directory is at its end: the finding says what to give instead."""
    report = POLICY.check_file(
        Attachment(name="bundle.zip", content=_OneWay(b"PK\x03\x04"), size=4)
    )
    assert report.codes == ("attachment.archive_not_seekable",)
    assert_plain_english(report.problems[0].message, sentence=False, names=("ZIP",))


def test_at_6_a_stream_that_fails_is_unreadable_and_keeps_the_size_given() -> None:
    """AT-6: a read error is a problem of the file naming the error; the claimed size stays."""
    report = POLICY.check_file(Attachment(name="scan.pdf", content=_Broken(), size=100))
    assert report.codes == ("attachment.unreadable",)
    assert report.size == 100
    assert_plain_english(report.problems[0].message, sentence=False, names=("OSError",))


def test_at_6_a_claimed_size_is_checked_for_paths_and_seekable_streams(tmp_path: Path) -> None:
    """AT-6: a path or a seekable stream is measured, and a size given that differs is reported."""
    path = tmp_path / "scan.pdf"
    path.write_bytes(b"%PDF-1.7\n")
    for content in (path, io.BytesIO(b"%PDF-1.7\n")):
        report = POLICY.check_file(Attachment(name="scan.pdf", content=content, size=99))
        assert report.codes == ("attachment.size_mismatch",)
        assert_plain_english(report.problems[0].message, sentence=False, names=("9", "99"))
