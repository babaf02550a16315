"""The ``securepractice check-password`` command."""

from __future__ import annotations

import importlib.metadata
import io
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import securepractice
from securepractice import cli


class Terminal(io.StringIO):
    """Standard input that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


def run(argv: list[str], stdin: io.StringIO) -> tuple[int, str]:
    out = io.StringIO()
    status = cli.main(argv, stdin=stdin, stdout=out)
    return status, out.getvalue()


def test_a_good_password_from_standard_input_passes() -> None:
    """PW-8: the command prints the instructions and exits 0."""
    status, out = run(["check-password"], io.StringIO("Sunshine-2026\n"))
    assert status == 0
    assert "meets every rule" in out
    assert "Password instructions" in out
    assert "Sunshine-2026" not in out


def test_a_bad_password_lists_every_violation_and_exits_1() -> None:
    """PW-8: each violation is printed with its code."""
    status, out = run(["check-password"], io.StringIO("sunshine\r\n"))
    assert status == 1
    for code in ("password.no_uppercase", "password.no_digit", "password.no_special"):
        assert code in out
    assert "password.too_short" not in out


def test_only_the_line_ending_is_stripped() -> None:
    status, out = run(["check-password"], io.StringIO("Sunshine-2026 \n"))
    assert status == 0, out


def test_a_terminal_gets_a_hidden_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return "Sunshine-2026"

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    status, _ = run(["check-password"], Terminal(""))
    assert status == 0
    assert prompts == ["Password (not shown): "]


def test_nist_profile_with_a_compromised_list(tmp_path: Path) -> None:
    """PW-10: the command can check against the NIST profile and a breach list."""
    listing = tmp_path / "breached.txt"
    listing.write_text("correct horse battery staple\n")
    argv = ["check-password", "--profile", "nist", "--compromised", str(listing)]
    status, out = run(argv, io.StringIO("correct horse battery staple\n"))
    assert status == 1
    assert "password.compromised" in out
    status, _ = run(argv, io.StringIO("a long passphrase nobody used\n"))
    assert status == 0


def test_nist_profile_without_a_list_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = run(["check-password", "--profile", "nist"], io.StringIO("x\n"))
    assert status == 2
    assert "--compromised" in capsys.readouterr().err


def test_the_password_is_never_an_argument() -> None:
    """The command refuses a password on the command line, where others could see it."""
    with pytest.raises(SystemExit) as caught:
        cli.main(["check-password", "Sunshine-2026"], stdin=io.StringIO(""))
    assert caught.value.code == 2


def test_the_installed_command_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "securepractice", "check-password"],
        input="Sunshine-2026\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "meets every rule" in done.stdout


def test_python_dash_m_runs_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m securepractice`` runs the same command and exits with its status."""
    monkeypatch.setattr(sys, "argv", ["securepractice", "check-password"])
    monkeypatch.setattr(sys, "stdin", io.StringIO("weak\n"))
    with pytest.raises(SystemExit) as caught:
        runpy.run_module("securepractice", run_name="__main__")
    assert caught.value.code == 1


def test_version_prints_the_installed_release(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--version"])
    assert caught.value.code == 0
    installed = importlib.metadata.version("securepractice")
    assert capsys.readouterr().out == f"securepractice {installed}\n"


def test_version_without_an_installation_is_the_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert cli.version() == securepractice.__version__
    assert securepractice.__version__


def test_version_through_python_dash_m() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "securepractice", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"securepractice {importlib.metadata.version('securepractice')}\n"
