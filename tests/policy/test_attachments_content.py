"""Content checks: real samples, spoofed types, bounded reads and streams (AT-3, AT-5, AT-8)."""

from __future__ import annotations

import io
import os
import struct
import sys
import wave
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from securepractice import AttachmentRules
from securepractice.policy.attachments import Attachment, AttachmentPolicy, FileReport

HEADER_BOUND = 8 * 1024


# --- real samples, built with the standard library -------------------------------------------


def png() -> bytes:
    """A 2x2 RGB PNG: signature, IHDR, zlib-compressed IDAT, IEND, each with its CRC."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\0" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def wav() -> bytes:
    """A tenth of a second of 8 kHz mono silence, written by the wave module."""
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\0\0" * 800)
    return out.getvalue()


def gif() -> bytes:
    """A 1x1 GIF89a with a two-colour table and one LZW-coded pixel."""
    screen = struct.pack("<HHBBB", 1, 1, 0x80, 0, 0)
    colours = b"\x00\x00\x00\xff\xff\xff"
    image = b"," + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
    return b"GIF89a" + screen + colours + image + b"\x02\x02\x44\x01\x00" + b";"


def bmp() -> bytes:
    """A 1x1 24-bit BMP: file header, BITMAPINFOHEADER and one padded row."""
    info = struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, 4, 2835, 2835, 0, 0)
    pixels = b"\x00\x00\xff\x00"
    size = 14 + len(info) + len(pixels)
    return b"BM" + struct.pack("<IHHI", size, 0, 0, 14 + len(info)) + info + pixels


def pdf() -> bytes:
    """A one-page PDF with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ]
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def midi() -> bytes:
    """A format-0 MIDI file with one note."""
    events = b"\x00\x90\x3c\x40\x60\x80\x3c\x40\x00\xff\x2f\x00"
    return (
        b"MThd"
        + struct.pack(">IHHH", 6, 0, 1, 96)
        + b"MTrk"
        + struct.pack(">I", len(events))
        + events
    )


def tiff() -> bytes:
    """A 1x1 little-endian grey TIFF with the entries a reader needs."""
    entries = [
        (256, 3, 1, 1),
        (257, 3, 1, 1),
        (258, 3, 1, 8),
        (262, 3, 1, 1),
        (273, 4, 1, 8 + 2 + 12 * 6 + 4),
        (279, 4, 1, 1),
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\0\0\0\0" + b"\x80"


def elf() -> bytes:
    """An x86-64 ELF executable header and one program header."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 64, 0, 0, 64, 56, 1, 0, 0, 0
    )
    program = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 0x80, 0x80, 0x1000)
    return header + program + b"\x31\xff\xb8\x3c\x00\x00\x00\x0f\x05"


def pe() -> bytes:
    """A PE32 header: DOS stub pointing at "PE\\0\\0", a COFF header and an optional header."""
    dos = b"MZ" + bytes(0x3A) + struct.pack("<I", 0x40)
    coff = struct.pack("<HHIIIHH", 0x14C, 0, 0, 0, 0, 0xE0, 0x102)
    optional = struct.pack("<HBB", 0x10B, 14, 0) + bytes(0xE0 - 4)
    return dos + b"PE\0\0" + coff + optional


def jpeg_then_script() -> bytes:
    """A JPEG start (SOI and a JFIF APP0 segment) followed by a PHP script."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return (
        b"\xff\xd8\xff\xe0"
        + struct.pack(">H", len(app0) + 2)
        + app0
        + b"<?php system($_GET['c']); ?>"
    )


def docx() -> bytes:
    """A minimal Word document: content types, package relationships and the body."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as document:
        document.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
            '"application/xml"/><Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        document.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
            'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target='
            '"word/document.xml"/></Relationships>',
        )
        document.writestr(
            "word/document.xml",
            '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.'
            'openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Referral'
            "</w:t></w:r></w:p></w:body></w:document>",
        )
    return out.getvalue()


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("notes.txt", "Patient notes\n")
    return out.getvalue()


def check(name: str, content: Any, rules: AttachmentRules | None = None) -> FileReport:
    return AttachmentPolicy(rules).check([Attachment(name=name, content=content)]).files[0]


# --- AT-3 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "build", "kind"),
    [
        ("xray.png", png, "png"),
        ("dictation.wav", wav, "wav"),
        ("logo.gif", gif, "gif"),
        ("scan.bmp", bmp, "bmp"),
        ("referral.pdf", pdf, "pdf"),
        ("chime.mid", midi, "midi"),
        ("chime.midi", midi, "midi"),
        ("film.tif", tiff, "tif"),
        ("film.TIFF", tiff, "tif"),
        ("photo.jpeg", jpeg_then_script, "jpg"),
        ("photo.jpe", jpeg_then_script, "jpg"),
        ("letter.docx", docx, "docx"),
        ("letter.word", docx, "docx"),
        ("bundle.zip", plain_zip, "zip"),
        ("bundle.zip", docx, "docx"),
        ("letter.docx", plain_zip, "zip"),
        ("drawing.ai", pdf, "pdf"),
        ("figure.eps", pdf, "pdf"),
    ],
)
def test_real_files_whose_content_agrees_with_their_name_pass(
    name: str, build: Any, kind: str
) -> None:
    """AT-3: content recognised as a kind consistent with the extension passes."""
    report = check(name, build())
    assert report.problems == ()
    assert report.detected == kind


@pytest.mark.parametrize(
    ("name", "build", "kind"),
    [
        ("xray.jpg", png, "png"),
        ("xray.png", gif, "gif"),
        ("scan.pdf", png, "png"),
        ("photo.jpg", plain_zip, "zip"),
        ("photo.jpg", docx, "docx"),
        ("sound.mp3", wav, "wav"),
        ("notes.txt", pdf, "pdf"),
        ("notes.xml", png, "png"),
        ("letter.xlsx", docx, "docx"),
        ("referral.doc", pdf, "pdf"),
    ],
)
def test_content_of_another_family_than_its_name_is_refused(
    name: str, build: Any, kind: str
) -> None:
    """AT-3: a .jpg that is a ZIP, a .png that is a GIF... is refused as a mismatch."""
    report = check(name, build())
    assert report.detected == kind
    assert "attachment.type_mismatch" in report.codes


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("referral.pdf", elf(), "elf"),
        ("referral.pdf", pe(), "exe"),
        ("xray.dcm", pe(), "exe"),
        ("notes.txt", b"#!/bin/sh\nrm -rf ~\n", "script"),
        ("photo.jpg", b"#!/usr/bin/env python3\n" + png(), "script"),
        ("app.dex", b"dex\n035\0" + bytes(100), "dex"),
        ("tool.obj", b"\xcf\xfa\xed\xfe" + bytes(60), "macho"),
        ("tool.obj", b"\xca\xfe\xba\xbe" + bytes(60), "macho"),
    ],
)
def test_executables_and_scripts_are_refused_whatever_their_name(
    name: str, content: bytes, kind: str
) -> None:
    """AT-3: ELF, PE, Mach-O, Dalvik and #! content is refused with its own code."""
    report = check(name, content)
    assert report.detected == kind
    assert report.codes == ("attachment.executable",)


def test_a_dicom_preamble_that_is_a_windows_program_is_refused() -> None:
    """AT-3: a PE/DICOM polyglot sniffs as DICOM in filetype, yet its "MZ" start is caught."""
    polyglot = pe()[:64].ljust(128, b"\0") + b"DICM" + bytes(200)
    assert polyglot[128:132] == b"DICM"
    assert check("study.dcm", polyglot).codes == ("attachment.executable",)
    assert check("study.dcm", bytes(128) + b"DICM" + bytes(200)).ok


def test_the_running_interpreter_renamed_pdf_is_refused() -> None:
    """AT-3: a real program from this machine, renamed, is refused."""
    program = Path(sys.executable).resolve()
    report = check("referral.pdf", program)
    assert report.codes == ("attachment.executable",)


def test_a_jpeg_header_followed_by_a_script_passes_as_a_jpeg() -> None:
    """AT-3, AT-5: only the header is judged; what follows it is not (a documented limit)."""
    sample = jpeg_then_script()
    assert check("photo.jpg", sample).ok
    assert check("photo.php", sample).codes == ("attachment.extension_not_allowed",)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", b"Patient arrived at 9:00.\n"),
        ("notes.log", b"2024-01-01 sign-in\n"),
        ("card.vcf", b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Dr Who\r\nEND:VCARD\r\n"),
        ("data.xml", b'<?xml version="1.0"?><a/>'),
        ("part.stl", b"solid part\nendsolid part\n"),
        ("part.stl", bytes(80) + struct.pack("<I", 0)),
        ("empty.pdf", b""),
        ("x-ray.dex", b"DEXIS image data"),
    ],
)
def test_types_filetype_cannot_recognise_pass_on_their_extension(name: str, content: bytes) -> None:
    """AT-3: nothing in the header says otherwise, so the extension decides."""
    report = check(name, content)
    assert report.ok
    assert report.detected is None


def test_ole2_documents_accept_each_others_kinds() -> None:
    """AT-3: filetype names the OLE2 family by the first stream (.doc sniffing as xls passes)."""
    workbook = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".ljust(512, b"\0") + b"\x09\x08\x10\x00\x00\x06\x05\x00"
    )
    workbook = workbook.ljust(1024, b"\0")
    assert check("sheet.xls", workbook).detected == "xls"
    assert check("sheet.doc", workbook).ok
    assert check("sheet.xl", workbook).ok
    assert "attachment.type_mismatch" in check("sheet.pdf", workbook).codes


def test_an_extension_added_in_the_settings_accepts_its_own_kind() -> None:
    """AT-1, AT-3: a type added by the user is judged by filetype's own name for it."""
    rules = AttachmentRules(allowed_extensions={".gif", ".webp"})
    webp = b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8 " + bytes(30)
    assert check("pic.webp", webp, rules).ok
    assert check("pic.webp", png(), rules).codes == ("attachment.type_mismatch",)


# --- AT-5 --------------------------------------------------------------------------------------


class CountingStream:
    """A seekable binary stream that counts every byte read through it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.bytes_read = 0
        self.reads = 0

    def read(self, size: int = -1, /) -> bytes:
        data: bytes = self.inner.read(size)
        self.bytes_read += len(data)
        self.reads += 1
        return data

    def seek(self, offset: int, whence: int = 0, /) -> int:
        position: int = self.inner.seek(offset, whence)
        return position

    def tell(self) -> int:
        position: int = self.inner.tell()
        return position

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        number: int = self.inner.fileno()
        return number

    def close(self) -> None:
        self.inner.close()


MIB = 1024 * 1024
GIB = 1024 * MIB


def sparse(path: Path, head: bytes, size: int) -> Path:
    path.write_bytes(head)
    os.truncate(path, size)
    return path


def test_at_most_the_header_is_read_from_a_10_gb_file(tmp_path: Path) -> None:
    """AT-5: a 10 GB (sparse) file costs one 8 KiB header read, not 10 GB."""
    path = sparse(tmp_path / "scan.pdf", pdf(), 10 * GIB)
    with path.open("rb") as raw:
        counting = CountingStream(raw)
        report = AttachmentPolicy().check([Attachment(name="scan.pdf", content=counting)])
    assert report.files[0].size == 10 * 1024**3
    assert report.files[0].detected == "pdf"
    assert 0 < counting.bytes_read <= HEADER_BOUND
    assert not report.ok
    assert report.codes == ("message.too_large",)


def test_a_path_is_read_no_further_than_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AT-5: the same bound holds when the content is given as a path."""
    path = sparse(tmp_path / "xray.png", png(), 10 * GIB)
    opened: list[CountingStream] = []
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> CountingStream:
        opened.append(CountingStream(real_open(self, *args, **kwargs)))
        return opened[-1]

    monkeypatch.setattr(Path, "open", counting_open)
    report = AttachmentPolicy().check([Attachment.from_path(path)])
    assert report.files[0].detected == "png"
    assert report.files[0].size == 10 * 1024**3
    assert len(opened) == 1
    assert 0 < opened[0].bytes_read <= HEADER_BOUND
    assert opened[0].inner.closed


def test_a_smaller_header_setting_reads_less(tmp_path: Path) -> None:
    """AT-5: the header bound comes from the settings."""
    path = sparse(tmp_path / "notes.txt", b"text", MIB)
    with path.open("rb") as raw:
        counting = CountingStream(raw)
        check("notes.txt", counting, AttachmentRules(header_bytes=512))
    assert counting.bytes_read == 512


def test_a_10_gb_archive_costs_the_header_the_end_records_and_the_directory(tmp_path: Path) -> None:
    """AT-5: a ZIP is read only at its head, its end records and its central directory."""
    path = sparse(tmp_path / "bundle.zip", b"", 10 * GIB)
    small = plain_zip()
    with path.open("ab") as out:
        out.write(small)
    with path.open("rb") as raw:
        counting = CountingStream(raw)
        report = check("bundle.zip", counting)
    assert report.ok, report.problems
    assert counting.bytes_read <= HEADER_BOUND + len(small)


# --- AT-8 --------------------------------------------------------------------------------------


class OneWayStream:
    """A non-seekable stream, like a socket or a pipe; it counts what it hands out."""

    def __init__(self, data: bytes, chunk: int = 1000) -> None:
        self._data = data
        self._position = 0
        self._chunk = chunk
        self.bytes_read = 0

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            size = len(self._data)
        part = self._data[self._position : self._position + min(size, self._chunk)]
        self._position += len(part)
        self.bytes_read += len(part)
        return part

    def seekable(self) -> bool:
        return False


def test_a_non_seekable_stream_is_handed_back_whole() -> None:
    """AT-8: the bytes read from the returned stream are exactly the bytes given."""
    data = pdf() + os.urandom(200_000)
    source = OneWayStream(data)
    report = AttachmentPolicy().check([Attachment(name="scan.pdf", content=source, size=len(data))])
    assert report.ok
    assert source.bytes_read == HEADER_BOUND
    stream = report.files[0].stream
    assert stream is not None
    assert b"".join(iter(lambda: stream.read(777), b"")) == data


def test_a_short_non_seekable_stream_is_handed_back_whole() -> None:
    """AT-8: a stream shorter than the header is given back unchanged too."""
    source = OneWayStream(b"short note", chunk=3)
    report = AttachmentPolicy().check([Attachment(name="n.txt", content=source, size=10)])
    stream = report.files[0].stream
    assert stream is not None
    assert stream.read() == b"short note"


def test_a_seekable_stream_is_left_where_it_was() -> None:
    """AT-8: a seekable stream is read from its position and put back there, unchanged."""
    data = b"preamble" + png()
    stream = io.BytesIO(data)
    stream.seek(8)
    report = AttachmentPolicy().check([Attachment(name="xray.png", content=stream)])
    assert report.ok
    assert report.files[0].size == len(data) - 8
    assert report.files[0].stream is stream
    assert stream.tell() == 8
    assert stream.getvalue() == data
    assert stream.read() == png()


def test_an_archive_in_a_seekable_stream_is_left_where_it_was() -> None:
    """AT-8: after the directory checks the stream is back at its first byte."""
    stream = io.BytesIO(docx())
    assert check("letter.docx", stream).ok
    assert stream.tell() == 0


def test_a_non_seekable_stream_needs_a_size_from_the_caller() -> None:
    """AT-2, AT-8: nothing is read to measure a stream; without a size it cannot pass."""
    report = check("scan.pdf", OneWayStream(pdf()))
    assert report.codes == ("attachment.size_unknown",)
    assert report.size is None


def test_a_zip_in_a_non_seekable_stream_is_refused() -> None:
    """AT-5, AT-7, AT-8: its directory is at its end, so it cannot be checked within the bound."""
    data = docx()
    source = OneWayStream(data)
    report = AttachmentPolicy().check(
        [Attachment(name="letter.docx", content=source, size=len(data))]
    )
    assert report.codes == ("attachment.archive_not_seekable",)
    assert source.bytes_read <= HEADER_BOUND
    stream = report.files[0].stream
    assert stream is not None
    assert b"".join(iter(lambda: stream.read(4096), b"")) == data


def test_unreadable_content_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    """AT-6: a missing file or a directory is reported with its own code."""
    assert check("gone.pdf", tmp_path / "gone.pdf").codes == ("attachment.unreadable",)
    assert check("folder.pdf", tmp_path).codes == ("attachment.unreadable",)
    assert check("gone.zip", tmp_path / "gone.zip").codes == ("attachment.unreadable",)

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def tell(self) -> int:
            raise OSError(5, "Input/output error")

    assert check("scan.pdf", Broken()).codes == ("attachment.unreadable",)


def test_a_file_that_cannot_be_measured_is_closed_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AT-6: a failure after opening closes the file and is reported."""
    path = tmp_path / "scan.pdf"
    path.write_bytes(pdf())
    opened: list[Any] = []
    real_open = Path.open

    class Unmeasurable:
        """A real open file whose size cannot be asked for."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def fileno(self) -> int:
            raise OSError(5, "Input/output error")

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    def tracking_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(real_open(self, *args, **kwargs))
        return Unmeasurable(opened[-1])

    monkeypatch.setattr(Path, "open", tracking_open)
    report = check("scan.pdf", path)
    assert report.codes == ("attachment.unreadable",)
    assert "Input/output error" in report.problems[0].message
    assert opened[0].closed
