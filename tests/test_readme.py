"""The README's examples run, so they can never go stale."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
CI_SCRIPT = README.parent / ".ci" / "run"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def console_commands() -> list[str]:
    blocks = re.findall(r"```console\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


@pytest.mark.parametrize("block", python_blocks())
def test_readme_python_example_runs(
    block: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Python block of the README runs without error (its asserts are the checks)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORTAL_SECRET", "5e" * 32)  # what the README's console block exports
    exec(compile(block, str(README), "exec"), {})  # noqa: S102 - the README is ours
    assert capsys.readouterr().out or "print(" not in block


def test_readme_has_python_examples() -> None:
    assert python_blocks()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    """.ci/run runs exactly the README's test command, under set -euo pipefail."""
    commands = console_commands()
    test_command = next(c for c in commands if c.endswith("python3 -m nox"))
    script = CI_SCRIPT.read_text(encoding="utf-8")
    assert "set -euo pipefail" in script
    assert test_command in script.splitlines()
