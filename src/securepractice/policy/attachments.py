"""Attachment validation for SecureMail and Collaborator messages (AT-1 to AT-8).

A message is validated as a whole: each `Attachment` is a name, a size and
its content (a path, bytes or a binary stream). `AttachmentPolicy.check`
returns a `MessageReport` that lists every problem of every file with a
stable code, and the message passes only when every file passes (AT-6).

Validation reads at most ``header_bytes`` (8 KiB) of each file, plus, for ZIP
archives given as a path, bytes or a seekable stream, their end records and a
central directory of at most ``max_central_directory_bytes`` (AT-5). Sizes
come from the caller or the file system, never from reading the content. The
content is opened read-only and never changed; a non-seekable stream is handed
back whole as `FileReport.stream` (AT-8). Nothing here raises for a bad file:
every problem is a value in the report.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Union

import attrs
import filetype

from securepractice.errors import InvalidInput
from securepractice.policy._archives import (
    BinaryStream,
    ReadWindow,
    ReplayStream,
    SeekableStream,
    inspect_zip,
    read_up_to,
)
from securepractice.policy.password import Violation
from securepractice.policy.text import CharacterClass, refused_characters
from securepractice.settings import AttachmentRules

__all__ = [
    "CONSISTENT_KINDS",
    "Attachment",
    "AttachmentPolicy",
    "BinaryStream",
    "Content",
    "FileReport",
    "MessageReport",
]

#: What an attachment's content may be: a path, the bytes themselves, or a
#: binary stream positioned at the attachment's first byte.
Content = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryStream]

_OLE2 = frozenset({"doc", "xls", "ppt"})
_ZIP_KINDS = frozenset({"zip", "docx", "xlsx", "pptx", "epub", "odt", "ods", "odp"})
_ISO_MEDIA = frozenset({"mp4", "m4v", "m4a", "mov", "3gp"})
_NOTHING = frozenset[str]()

#: For each extension of the seed's list, the `filetype` kinds (its
#: ``Type.extension`` names) that content with that extension may sniff as.
#: An empty set means `filetype` cannot recognise the type: any recognised
#: content is then a mismatch. An extension added through the settings and
#: missing here accepts the kind of its own name (``.heic``: ``heic``).
CONSISTENT_KINDS: dict[str, frozenset[str]] = {
    ".ai": frozenset({"pdf", "ps"}),
    ".aif": frozenset({"aiff"}),
    ".aifc": frozenset({"aiff"}),
    ".aiff": frozenset({"aiff"}),
    ".avi": frozenset({"avi"}),
    ".bmp": frozenset({"bmp"}),
    ".cpt": _NOTHING,
    ".dcm": frozenset({"dcm"}),
    ".dex": _NOTHING,
    ".doc": _OLE2,
    ".docx": frozenset({"docx", "zip"}),
    ".ds2": _NOTHING,
    ".eml": _NOTHING,
    ".eps": frozenset({"ps", "pdf"}),
    ".gif": frozenset({"gif"}),
    ".hqx": _NOTHING,
    ".jpe": frozenset({"jpg"}),
    ".jpeg": frozenset({"jpg"}),
    ".jpg": frozenset({"jpg"}),
    ".log": _NOTHING,
    ".mid": frozenset({"midi"}),
    ".midi": frozenset({"midi"}),
    ".mif": _NOTHING,
    ".mov": _ISO_MEDIA,
    ".movie": _NOTHING,
    ".mp2": frozenset({"mpg", "mp3"}),
    ".mp3": frozenset({"mp3"}),
    ".mp4": _ISO_MEDIA,
    ".mpe": frozenset({"mpg"}),
    ".mpeg": frozenset({"mpg"}),
    ".mpga": frozenset({"mp3"}),
    ".obj": _NOTHING,
    ".oda": _NOTHING,
    ".pdf": frozenset({"pdf"}),
    ".png": frozenset({"png", "apng"}),
    ".ppt": _OLE2,
    ".pptx": frozenset({"pptx", "zip"}),
    ".ps": frozenset({"ps"}),
    ".qt": _ISO_MEDIA,
    ".ra": _NOTHING,
    ".ram": _NOTHING,
    ".rm": _NOTHING,
    ".rpm": frozenset({"rpm"}),
    ".rtf": frozenset({"rtf"}),
    ".rtx": _NOTHING,
    ".rv": _NOTHING,
    ".smi": _NOTHING,
    ".smil": _NOTHING,
    ".stl": _NOTHING,
    ".text": _NOTHING,
    ".tif": frozenset({"tif"}),
    ".tiff": frozenset({"tif"}),
    ".txt": _NOTHING,
    ".vcard": _NOTHING,
    ".vcf": _NOTHING,
    ".wav": frozenset({"wav"}),
    ".wbxml": _NOTHING,
    ".wmlc": _NOTHING,
    ".wmv": frozenset({"wmv"}),
    ".word": _OLE2 | {"docx", "zip", "rtf"},
    ".xl": _OLE2 | {"xlsx", "zip"},
    ".xls": _OLE2,
    ".xml": _NOTHING,
    ".xsl": _NOTHING,
    ".xlsx": frozenset({"xlsx", "zip"}),
    ".zip": _ZIP_KINDS,
}

_ARCHIVE_EXTENSIONS = frozenset({".zip", ".docx", ".xlsx", ".pptx"})

#: Leading bytes of programs, checked whatever the name and whatever
#: `filetype` says (a DICOM file's free preamble can start with "MZ").
_EXECUTABLES: tuple[tuple[bytes, str, str], ...] = (
    (b"MZ", "exe", "a Windows or DOS program (MZ)"),
    (b"\x7fELF", "elf", "an ELF program"),
    (b"\xfe\xed\xfa\xce", "macho", "a Mach-O program"),
    (b"\xfe\xed\xfa\xcf", "macho", "a Mach-O program"),
    (b"\xce\xfa\xed\xfe", "macho", "a Mach-O program"),
    (b"\xcf\xfa\xed\xfe", "macho", "a Mach-O program"),
    (b"\xca\xfe\xba\xbe", "macho", "a Mach-O universal program or a Java class"),
    (b"#!", "script", "a script (#!)"),
    (b"dex\n", "dex", "an Android (Dalvik) program"),
)

_MAX_NAME_BYTES = 255
_RESERVED = frozenset('<>:"|?*')
_DRIVE = re.compile(r"^[A-Za-z]:")
_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789\u00b9\u00b2\u00b3"}
)

#: The problem a file name has for each class of character that text refuses (IN-1).
_NAME_CHARACTERS: dict[CharacterClass, tuple[str, str]] = {
    CharacterClass.SURROGATE: (
        "attachment.name_invalid_unicode",
        "the name holds an unpaired surrogate",
    ),
    CharacterClass.CONTROL: (
        "attachment.name_control_character",
        "the name holds a control character",
    ),
    CharacterClass.LINE_SEPARATOR: (
        "attachment.name_control_character",
        "the name holds a line or paragraph separator",
    ),
    CharacterClass.BIDI_CONTROL: (
        "attachment.name_bidi_control",
        "the name holds a bidirectional control character, which can disguise its type",
    ),
    CharacterClass.INVISIBLE: (
        "attachment.name_invisible_character",
        "the name holds an invisible character, which can disguise it",
    ),
    CharacterClass.PRIVATE_USE: (
        "attachment.name_invalid_unicode",
        "the name holds a private-use character",
    ),
    CharacterClass.UNASSIGNED: (
        "attachment.name_invalid_unicode",
        "the name holds a code point Unicode has not assigned",
    ),
}


@attrs.frozen(kw_only=True)
class Attachment:
    """One file of a message: its ``name``, its ``content``, and its ``size`` when known.

    ``size`` is needed only for a non-seekable stream; for a path, bytes or a
    seekable stream it is measured (file system, length, seeking to the end),
    and a ``size`` given too must agree. A malformed argument (a name that is
    not text, a negative size) is a programming error and raises
    `~securepractice.errors.InvalidInput`; everything about the file itself
    is reported, not raised.
    """

    name: str
    content: Content = attrs.field(repr=False)
    size: int | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise InvalidInput(
                f"an attachment name must be text (str), not {type(self.name).__name__}",
                field="name",
                code="attachment.name_not_text",
            )
        content: object = self.content
        if not isinstance(content, (str, os.PathLike, bytes, bytearray, memoryview)) and not (
            callable(getattr(content, "read", None))
        ):
            raise InvalidInput(
                "attachment content must be a path, bytes or a binary stream, not"
                f" {type(content).__name__}",
                field="content",
                code="attachment.content_invalid",
            )
        size: object = self.size
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise InvalidInput(
                f"an attachment size must be None or a whole number of bytes, not {size!r}",
                field="size",
                code="attachment.size_invalid",
            )

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Attachment:
        """Build an attachment for a file on disk, named after its last path component."""
        return cls(name=Path(path).name, content=path)


@attrs.frozen(kw_only=True)
class FileReport:
    """The verdict on one attachment (AT-6).

    ``extension`` is the lower-cased last suffix, ``detected`` what the
    content's header was recognised as (a `filetype` kind, or a program),
    ``size`` the size in bytes when known. ``stream`` is what to read the
    upload from after validation: for a non-seekable stream, a stream that
    gives back every byte from the first (AT-8); for a seekable stream, the
    caller's own, at the position it had; ``None`` for a path or bytes.
    """

    name: str
    extension: str | None
    size: int | None
    detected: str | None
    problems: tuple[Violation, ...]
    stream: BinaryStream | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def ok(self) -> bool:
        """Whether this attachment passed every rule."""
        return not self.problems

    @property
    def codes(self) -> tuple[str, ...]:
        """The problems' codes, for programs."""
        return tuple(p.code for p in self.problems)


@attrs.frozen(kw_only=True)
class MessageReport:
    """The verdict on a whole message: each file's report and the message's own problems."""

    files: tuple[FileReport, ...]
    total_bytes: int
    max_bytes: int
    problems: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        """Whether the message may be sent: no message problem and every file passed."""
        return not self.problems and all(f.ok for f in self.files)

    @property
    def codes(self) -> tuple[str, ...]:
        """Every code, the message's first, then each file's in order."""
        return tuple(p.code for p in self.problems) + tuple(c for f in self.files for c in f.codes)

    def __bool__(self) -> bool:
        return self.ok


@attrs.frozen
class _Content:
    """What was learned from reading an attachment's content within the bounds."""

    size: int | None
    header: bytes
    problems: tuple[Violation, ...] = ()
    stream: BinaryStream | None = None
    window: ReadWindow | None = None
    release: Callable[[], object] | None = None


class AttachmentPolicy:
    """Validates the attachments of a message against `AttachmentRules` (AT-1 to AT-8).

    The allow-list and every number come from ``rules`` (the spec's defaults
    by default); narrow the list with
    ``AttachmentRules(allowed_extensions=...)``.
    """

    def __init__(self, rules: AttachmentRules | None = None) -> None:
        self.rules = rules or AttachmentRules()

    def check(self, attachments: Iterable[Attachment]) -> MessageReport:
        """Validate a whole message; it passes only when every attachment passes (AT-6, AT-2)."""
        files = tuple(self.check_file(a) for a in attachments)
        total = sum(f.size or 0 for f in files)
        limit = self.rules.max_message_bytes
        problems: tuple[Violation, ...] = ()
        if total > limit:
            problems = (
                Violation(
                    "message.too_large",
                    f"the attachments total {total:,} bytes; a message may carry at most"
                    f" {limit:,} bytes ({limit / 1024 / 1024:g} MiB)",
                ),
            )
        return MessageReport(files=files, total_bytes=total, max_bytes=limit, problems=problems)

    def extension(self, name: str) -> str | None:
        """Return the lower-cased last suffix of ``name`` (``a.pdf.exe``: ``.exe``), or None."""
        _, dot, suffix = name.rpartition(".")
        return f".{suffix.lower()}" if dot and suffix else None

    def check_name(self, name: str) -> tuple[Violation, ...]:
        """Every problem of a file name: its characters and form (AT-4) and its type (AT-1)."""
        if not name:
            return (Violation("attachment.name_empty", "the file has no name"),)
        problems = list(self._name_form(name))
        extension = self.extension(name)
        if extension is None:
            problems.append(
                Violation(
                    "attachment.extension_not_allowed",
                    "the file name has no extension to judge it by",
                )
            )
        elif extension not in self.rules.allowed_extensions:
            problems.append(
                Violation(
                    "attachment.extension_not_allowed",
                    f"files of type {extension!r} are not accepted",
                )
            )
        return tuple(problems)

    def _name_form(self, name: str) -> Iterable[Violation]:  # noqa: C901 - one branch per rule
        if "/" in name or "\\" in name:
            yield Violation(
                "attachment.name_separator", "the name holds a path separator (/ or \\)"
            )
        if ".." in name:
            yield Violation("attachment.name_dot_dot", "the name holds '..'")
        if _DRIVE.match(name):
            yield Violation("attachment.name_drive_letter", "the name starts with a drive letter")
        elif _RESERVED.intersection(name):
            yield Violation(
                "attachment.name_reserved_character", 'the name holds one of < > : " | ? *'
            )
        # A name longer than the limit is refused for that; its characters are
        # judged within the limit only, so a huge name costs no more than a long one.
        reported: set[str] = set()
        for kind in refused_characters(name[: _MAX_NAME_BYTES + 1]):
            code, message = _NAME_CHARACTERS[kind]
            if code not in reported:
                reported.add(code)
                yield Violation(code, message)
        if name.endswith((".", " ")):
            yield Violation(
                "attachment.name_trailing_dot_or_space", "the name ends in a dot or a space"
            )
        stem, dot, _ = name.rpartition(".")
        if dot and not stem.strip(". "):
            yield Violation(
                "attachment.name_empty_stem", "the name has nothing before its extension"
            )
        if len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
            yield Violation(
                "attachment.name_too_long", f"the name takes more than {_MAX_NAME_BYTES} bytes"
            )
        if name.split(".", 1)[0].rstrip(" ").upper() in _DEVICES:
            yield Violation(
                "attachment.name_device", "the name is a Windows device name (CON, NUL, COM1...)"
            )

    def check_file(self, attachment: Attachment) -> FileReport:
        """Validate one attachment: its name, size, header and, for archives, directory."""
        problems = list(self.check_name(attachment.name))
        extension = self.extension(attachment.name)
        content = self._read(attachment)
        problems.extend(content.problems)
        detected = None
        if content.header:
            detected, found = self._judge_header(content.header, extension)
            problems.extend(found)
        try:
            if extension in _ARCHIVE_EXTENSIONS or detected in _ZIP_KINDS:
                problems.extend(self._judge_archive(content))
        finally:
            if content.release is not None:
                content.release()
        return FileReport(
            name=attachment.name,
            extension=extension,
            size=content.size,
            detected=detected,
            problems=tuple(problems),
            stream=content.stream,
        )

    def _judge_header(
        self, header: bytes, extension: str | None
    ) -> tuple[str | None, list[Violation]]:
        for magic, kind, program in _EXECUTABLES:
            if header.startswith(magic):
                return kind, [
                    Violation(
                        "attachment.executable", f"the content is {program}, whatever its name says"
                    )
                ]
        kind = filetype.match(header)
        if kind is None:
            return None, []
        detected: str = kind.extension
        if extension is None or extension not in self.rules.allowed_extensions:
            return detected, []
        if detected not in CONSISTENT_KINDS.get(extension, frozenset({extension[1:]})):
            return detected, [
                Violation(
                    "attachment.type_mismatch",
                    f"the content is {detected} ({kind.mime}), not what {extension!r} names",
                )
            ]
        return detected, []

    def _judge_archive(self, content: _Content) -> list[Violation]:
        if content.window is None:
            if content.stream is not None and content.header:
                return [
                    Violation(
                        "attachment.archive_not_seekable",
                        "a ZIP archive's directory is at its end; give it as a path,"
                        " bytes or a seekable stream",
                    )
                ]
            return []
        findings = inspect_zip(
            content.window,
            max_directory_bytes=self.rules.max_central_directory_bytes,
            max_entries=self.rules.max_archive_entries,
            max_ratio=self.rules.max_compression_ratio,
        )
        return [Violation(f.code, f.message) for f in findings]

    def _read(self, attachment: Attachment) -> _Content:
        """Read the header (and open the window for archives) without reading any more."""
        source = attachment.content
        try:
            if isinstance(source, (str, os.PathLike)):
                return self._read_path(Path(source), attachment.size)
            if isinstance(source, (bytes, bytearray, memoryview)):
                data = io.BytesIO(source)
                size = len(data.getbuffer())
                return self._read_seekable(
                    data, start=0, size=size, claimed=attachment.size, release=data.close
                )
            return self._read_stream(source, attachment.size)
        except OSError as error:
            reason = error.strerror or type(error).__name__
            return _Content(
                size=attachment.size,
                header=b"",
                problems=(
                    Violation("attachment.unreadable", f"the content cannot be read: {reason}"),
                ),
            )

    def _read_path(self, path: Path, claimed: int | None) -> _Content:
        raw = path.open("rb", buffering=0)
        try:
            size = os.fstat(raw.fileno()).st_size
            return self._read_seekable(raw, start=0, size=size, claimed=claimed, release=raw.close)
        except OSError:
            raw.close()
            raise

    def _read_stream(self, stream: BinaryStream, claimed: int | None) -> _Content:
        seekable = getattr(stream, "seekable", None)
        if callable(seekable) and seekable():
            seeking: SeekableStream = stream  # type: ignore[assignment]
            start = seeking.tell()
            end = seeking.seek(0, io.SEEK_END)
            seeking.seek(start)
            return self._read_seekable(
                seeking,
                start=start,
                size=end - start,
                claimed=claimed,
                handed_back=stream,
                release=lambda: seeking.seek(start),
            )
        header = read_up_to(stream, self.rules.header_bytes)
        problems: tuple[Violation, ...] = ()
        if claimed is None:
            problems = (
                Violation(
                    "attachment.size_unknown",
                    "the stream cannot be measured and no size was given for it",
                ),
            )
        return _Content(
            size=claimed, header=header, problems=problems, stream=ReplayStream(header, stream)
        )

    def _read_seekable(
        self,
        source: SeekableStream,
        *,
        start: int,
        size: int,
        claimed: int | None,
        release: Callable[[], object],
        handed_back: BinaryStream | None = None,
    ) -> _Content:
        window = ReadWindow(source, start=start, length=size)
        window.budget = self.rules.header_bytes
        try:
            header = read_up_to(window, self.rules.header_bytes)
        finally:
            source.seek(start)
        problems: tuple[Violation, ...] = ()
        if claimed is not None and claimed != size:
            problems = (
                Violation(
                    "attachment.size_mismatch",
                    f"the content holds {size:,} bytes, not the {claimed:,} bytes given",
                ),
            )
        return _Content(
            size=size,
            header=header,
            problems=problems,
            stream=handed_back,
            window=window,
            release=release,
        )
