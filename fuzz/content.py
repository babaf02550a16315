"""Adversarial attachment content: random bytes, real magic numbers, damaged ZIP archives.

`Uploads` draws an `Upload`: a file name, the bytes, and how they are handed
over (bytes, a bytearray, a memoryview, a seekable stream that starts past
its first byte, a non-seekable stream that reads a few bytes at a time, a
stream that fails part way) and the size a caller claims, if any. The
content, per upload:

* random bytes after a real magic number: documents, images, sound, video,
  archives, and programs (35%); random bytes alone (10%);
* a ZIP archive built here (plain, stored, with a comment, ZIP64 end
  records, names that escape, a bomb, overlapping entries, a docx), intact
  (5%) or damaged by one to three edits (40%): bits flipped, bytes
  overwritten, inserted, deleted or doubled, cut off, junk before or after,
  or a length, count or offset field of its end records and directory
  entries set to 0, 1, 0xFFFF, 0xFFFFFFFF or anything;
* empty or a few bytes (5%); over the 8 KiB header (5%).
"""

from __future__ import annotations

import errno
import functools
import io
import random
import struct
import zipfile
from collections.abc import Callable

import attrs

from fuzz.edits import cut, deleted, doubled, inserted, replaced
from fuzz.texts import mixture

#: Leading bytes of the types `filetype` knows and of the seed's allowed list.
MAGIC: tuple[bytes, ...] = (
    b"%PDF-1.7\n",
    b"%!PS-Adobe-3.0",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"GIF87a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF\x00\x00\x00\x00WAVE",
    b"RIFF\x00\x00\x00\x00AVI ",
    b"FORM\x00\x00\x00\x00AIFF",
    b"ID3",
    b"\xff\xfb",
    b"MThd",
    b"{\\rtf1",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\x00\x00\x00\x18ftypmp42",
    b"\x00\x00\x00\x14ftypqt  ",
    b"0&\xb2u\x8ef\xcf\x11",
    b"\xed\xab\xee\xdb",
    b"\x00" * 128 + b"DICM",
    b"\x1f\x8b\x08",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07\x00",
    b"\x1a\x45\xdf\xa3",
    b"<?xml ",
)
#: Leading bytes of programs: content that starts so must be refused whatever its name (AT-3).
PROGRAMS: tuple[bytes, ...] = (
    b"MZ",
    b"\x7fELF",
    b"#!",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"dex\n",
)
#: File names an upload carries: allowed types, a type that is not, no extension.
NAMES = (
    "scan.pdf",
    "SCAN.PDF",
    "photo.jpg",
    "image.png",
    "anim.gif",
    "scan.tiff",
    "archive.zip",
    "letter.docx",
    "sheet.xlsx",
    "slides.pptx",
    "old.doc",
    "notes.txt",
    "study.dcm",
    "sound.wav",
    "movie.mp4",
    "clip.mov",
    "letter.rtf",
    "setup.exe",
    "no_extension",
)
#: How the bytes are handed over.
DELIVERIES = ("bytes", "bytearray", "memoryview", "seekable", "stream", "failing")

_EOCD = b"PK\x05\x06"
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR = struct.Struct("<4sLQL")
#: The signatures of a ZIP archive's records, whose fields the damage aims at.
_SIGNATURES = (b"PK\x03\x04", b"PK\x01\x02", _EOCD, b"PK\x06\x06", b"PK\x06\x07")
_FIELD_VALUES = (0, 1, 0xFF, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000)
_FIELD_SIZES = ("<B", "<H", "<L", "<Q")
_LENGTHS = ((0, 16), (16, 400), (400, 9000), (9000, 40_000))
_LENGTH_WEIGHTS = (2, 5, 3, 1)
_BOMB_BYTES = 4_000_000


_SHOWN_BYTES = 120


@attrs.frozen(kw_only=True)
class Upload:
    """One attachment to check: its name, its bytes, how they are handed over, a claimed size.

    A seekable stream starts ``offset`` bytes into its buffer; a non-seekable
    one gives at most ``step`` bytes a read and, when ``delivery`` is
    ``"failing"``, raises `OSError` once it has given ``fail_after`` bytes.
    """

    name: str
    data: bytes
    delivery: str
    size: int | None
    offset: int = 0
    step: int = 1
    fail_after: int = 0

    def __str__(self) -> str:
        shown = self.data if len(self.data) <= _SHOWN_BYTES else self.data[:_SHOWN_BYTES]
        more = "" if len(self.data) <= _SHOWN_BYTES else "..."
        return (
            f"Upload(name={self.name!r}, delivery={self.delivery!r}, size={self.size!r},"
            f" offset={self.offset}, step={self.step}, fail_after={self.fail_after},"
            f" {len(self.data)} bytes: {shown!r}{more})"
        )


class CountingStream:
    """A caller's seekable stream, starting ``offset`` bytes in, that counts the bytes read."""

    def __init__(self, data: bytes, offset: int) -> None:
        self._buffer = io.BytesIO(bytes(offset) + data)
        self._buffer.seek(offset)
        self.bytes_read = 0

    def read(self, size: int = -1, /) -> bytes:
        """Read as `io.BytesIO` does, counting."""
        data = self._buffer.read(size)
        self.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        """Move as `io.BytesIO` does."""
        return self._buffer.seek(offset, whence)

    def tell(self) -> int:
        """Return the position in the buffer."""
        return self._buffer.tell()

    def seekable(self) -> bool:
        """Say yes."""
        return True


class OneWayStream:
    """A non-seekable stream (a socket, a pipe): ``step`` bytes a read at most, failing if told."""

    def __init__(self, upload: Upload) -> None:
        self._data = upload.data
        self._step = upload.step
        self._fail_after = upload.fail_after if upload.delivery == "failing" else None
        self.bytes_read = 0

    def read(self, size: int = -1, /) -> bytes:
        """Return the next bytes, at most ``step`` of them, or fail part way."""
        if self._fail_after is not None and self.bytes_read >= self._fail_after:
            raise OSError(errno.EIO, "the upload was cut off")
        wanted = self._step if size < 0 else min(size, self._step)
        data = self._data[self.bytes_read : self.bytes_read + wanted]
        self.bytes_read += len(data)
        return data


def _zip(
    entries: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED, comment: bytes = b""
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        archive.comment = comment
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _end(archive: bytes) -> tuple[int, tuple[int, ...]]:
    at = archive.rfind(_EOCD)
    return at, _END.unpack_from(archive, at)


def _as_zip64(archive: bytes) -> bytes:
    """Return ``archive`` with ZIP64 end records, its classic end record all markers."""
    at, (_, _, _, _, entries, size, offset, _) = _end(archive)
    end64 = _END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, offset)
    locator = _LOCATOR.pack(b"PK\x06\x07", 0, at, 1)
    end = _END.pack(_EOCD, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return archive[:at] + end64 + locator + end


def _overlapping(archive: bytes) -> bytes:
    """Return ``archive`` with its directory listed twice: every entry's data shared."""
    _, (_, _, _, _, entries, size, offset, _) = _end(archive)
    directory = archive[offset : offset + size]
    end = _END.pack(_EOCD, 0, 0, 2 * entries, 2 * entries, 2 * size, offset, 0)
    return archive[:offset] + directory + directory + end


@functools.cache
def archives() -> tuple[bytes, ...]:
    """Return the ZIP archives damage starts from, built once per process."""
    text = {"a.txt": b"hello " * 50, "b/c.txt": b"world", "d.bin": bytes(range(256))}
    plain = _zip(text)
    bomb = _zip({"zeros.bin": bytes(_BOMB_BYTES)})
    return (
        plain,
        _zip(text, method=zipfile.ZIP_STORED),
        _zip(text, comment=b"c" * 1000),
        _as_zip64(plain),
        _zip({"../evil.txt": b"x", "/etc/passwd": b"x", "C:\\win.ini": b"x", "a/../../b": b"x"}),
        bomb,
        _overlapping(plain),
        _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"}),
        _zip({f"{n}.txt": b"" for n in range(300)}),
        _EOCD + bytes(18),
    )


class Uploads:
    """Draws adversarial uploads from a seeded `random.Random`."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._damage: tuple[Callable[[bytes], bytes], ...] = (
            self._flip,
            lambda d: replaced(rng, d, lambda: self._bytes(rng.randint(1, 16))),
            lambda d: inserted(rng, d, lambda: self._bytes(rng.randint(1, 64))),
            lambda d: deleted(rng, d, 64),
            lambda d: doubled(rng, d),
            lambda d: cut(rng, d),
            self._junk,
            self._field,
            self._field,
            self._field,
        )
        mix: tuple[tuple[Callable[[], bytes], int], ...] = (
            (self._after_magic, 35),
            (self._random, 10),
            (self._archive, 5),
            (self._damaged_archive, 40),
            (lambda: self._bytes(self._rng.randint(0, 4)), 5),
            (lambda: self._bytes(self._rng.randint(8 * 1024, 40_000)), 5),
        )
        self._content = mixture(rng, mix)

    def __call__(self) -> Upload:
        """Return the next upload."""
        rng = self._rng
        data = self._content()
        delivery = rng.choices(DELIVERIES, weights=(55, 5, 5, 15, 15, 5))[0]
        size = rng.choices((None, len(data), rng.randint(0, 1 << 40)), weights=(85, 10, 5))[0]
        return Upload(
            name=rng.choice(NAMES),
            data=data,
            delivery=delivery,
            size=size,
            offset=rng.randint(0, 64),
            step=rng.choices((1, 7, 512, 1 << 20), weights=(1, 4, 15, 80))[0],
            fail_after=rng.randint(0, len(data)),
        )

    def _bytes(self, length: int) -> bytes:
        return self._rng.randbytes(length)

    def _length(self) -> int:
        low, high = self._rng.choices(_LENGTHS, weights=_LENGTH_WEIGHTS)[0]
        return self._rng.randint(low, high)

    def _random(self) -> bytes:
        return self._bytes(self._length())

    def _after_magic(self) -> bytes:
        magic = self._rng.choice(MAGIC + PROGRAMS)
        return magic + self._bytes(self._length())

    def _archive(self) -> bytes:
        return self._rng.choice(archives())

    def _damaged_archive(self) -> bytes:
        data = self._archive()
        for _ in range(self._rng.randint(1, 3)):
            data = self._rng.choice(self._damage)(data)
        return data

    def _flip(self, data: bytes) -> bytes:
        if not data:
            return data
        changed = bytearray(data)
        for _ in range(self._rng.randint(1, 8)):
            changed[self._rng.randrange(len(changed))] ^= 1 << self._rng.randrange(8)
        return bytes(changed)

    def _junk(self, data: bytes) -> bytes:
        junk = self._bytes(self._rng.randint(1, 100))
        return self._rng.choice((junk + data, data + junk))

    def _field(self, data: bytes) -> bytes:
        """Set a field after one of the archive's record signatures (or anywhere) to a bad value."""
        rng = self._rng
        starts = [
            at
            for signature in _SIGNATURES
            for at in (data.find(signature), data.rfind(signature))
            if at >= 0
        ]
        base = rng.choice(starts) if starts else 0
        fmt = rng.choice(_FIELD_SIZES)
        width = struct.calcsize(fmt)
        at = base + rng.randrange(4, 56)
        if at + width > len(data):
            return data
        limit = (1 << (8 * width)) - 1
        value = rng.choice((*_FIELD_VALUES, len(data), rng.randint(0, limit))) & limit
        return data[:at] + struct.pack(fmt, value) + data[at + width :]
