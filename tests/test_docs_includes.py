"""The docs' snippet includes are written so that MkDocs expands them (a formatter once broke one).

A broken marker (``--8 < --``) is printed as literal text and the strict
build does not notice; the docs session also searches the built site.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"-\s*-\s*8\s*<\s*-\s*-")
INCLUDE = re.compile(r'^--8<-- "([^"]+)"$')


def _marker_lines() -> list[tuple[Path, str]]:
    return [
        (page, line.strip())
        for page in sorted((ROOT / "docs").rglob("*.md"))
        for line in page.read_text(encoding="utf-8").splitlines()
        if MARKER.search(line)
    ]


def test_the_docs_include_examples() -> None:
    assert _marker_lines(), "no snippet include found: the check would prove nothing"


@pytest.mark.parametrize(
    ("page", "line"), _marker_lines(), ids=lambda value: getattr(value, "name", str(value))
)
def test_every_include_marker_is_exact_and_names_a_file(page: Path, line: str) -> None:
    included = INCLUDE.match(line)
    assert included is not None, f"{page.name}: malformed include {line!r}"
    assert (ROOT / included.group(1)).is_file()
