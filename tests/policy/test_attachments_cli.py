"""The ``securepractice check-attachments`` command, on real files (AT-2, AT-3, AT-6, AT-7)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import wave
import zipfile
from pathlib import Path

from securepractice import cli


def run(*files: Path | str) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = cli.main(["check-attachments", *map(str, files)], stdout=out)
    return status, out.getvalue().splitlines()


def dictation(path: Path) -> Path:
    with wave.open(str(path), "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(1)
        sound.setframerate(8000)
        sound.writeframes(b"\x80" * 8000)
    return path


def bundle(path: Path, *names: str) -> Path:
    with zipfile.ZipFile(path, "w") as made:
        for name in names:
            made.writestr(name, "text")
    return path


def test_files_that_all_pass_exit_0(tmp_path: Path) -> None:
    """AT-6: a table row per file, the total against the limit, status 0."""
    wav = dictation(tmp_path / "dictation.wav")
    archive = bundle(tmp_path / "notes.zip", "a.txt", "b.txt")
    status, lines = run(wav, archive)
    assert status == 0
    assert lines[0].split() == ["FILE", "BYTES", "VERDICT", "REASONS"]
    assert lines[1].split() == ["dictation.wav", f"{wav.stat().st_size:,}", "ok"]
    assert lines[2].split() == ["notes.zip", f"{archive.stat().st_size:,}", "ok"]
    total = wav.stat().st_size + archive.stat().st_size
    assert f"Message total: {total:,} of 314,572,800 bytes allowed (within the limit)" in lines
    assert lines[-1] == "The message passes."


def test_a_refused_file_lists_its_reasons_and_exits_1(tmp_path: Path) -> None:
    """AT-3, AT-7: each reason on its own line, with its code; status 1."""
    program = tmp_path / "referral.pdf"
    program.write_bytes(Path(sys.executable).resolve().read_bytes()[:4096])
    unsafe = bundle(tmp_path / "photo.jpg", "../../escape.txt")
    good = dictation(tmp_path / "ok.wav")
    status, lines = run(program, unsafe, good)
    assert status == 1
    assert lines[1].split()[:3] == ["referral.pdf", "4,096", "refused"]
    assert "attachment.executable:" in lines[1]
    assert lines[2].split()[2] == "refused"
    assert "attachment.type_mismatch:" in lines[2]
    assert lines[3].strip().startswith("attachment.archive_unsafe_entry:")
    assert lines[3].index("attachment.") == lines[2].index("attachment.")
    assert lines[4].split()[2] == "ok"
    assert lines[-1] == "The message is refused."


def test_an_over_size_message_names_the_total_and_the_limit(tmp_path: Path) -> None:
    """AT-2: the message-level problem is printed under the total."""
    big = tmp_path / "big.txt"
    big.write_bytes(b"")
    os.truncate(big, 314_572_801)
    status, lines = run(big)
    assert status == 1
    assert lines[1].split() == ["big.txt", "314,572,801", "ok"]
    assert "Message total: 314,572,801 of 314,572,800 bytes allowed (over the limit)" in lines
    assert any(line.strip().startswith("message.too_large:") for line in lines)


def test_a_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    """AT-6: an unreadable file is a refused row."""
    status, lines = run(tmp_path / "nowhere.pdf")
    assert status == 1
    assert lines[1].split()[:3] == ["nowhere.pdf", "unknown", "refused"]
    assert "attachment.unreadable:" in lines[1]


def test_an_unprintable_name_is_shown_escaped(tmp_path: Path) -> None:
    """AT-4: a control character in a file name does not reach the terminal raw."""
    odd = tmp_path / "a\x1b[31mred.txt"
    odd.write_bytes(b"x")
    status, lines = run(odd)
    assert status == 1
    assert "\x1b" not in "".join(lines)
    assert "attachment.name_control_character:" in lines[1]


def test_the_command_runs_as_a_program(tmp_path: Path) -> None:
    """The installed entry point gives the same exit status."""
    wav = dictation(tmp_path / "d.wav")
    done = subprocess.run(  # noqa: S603 - the test's own interpreter
        [sys.executable, "-m", "securepractice", "check-attachments", str(wav)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "The message passes." in done.stdout
