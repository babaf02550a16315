"""The API reference documents every public name and every action of the facades.

The reference is split by area (docs/reference/*.md); a name exported
later, or an action added to a facade, must find its page, or the build
would pass while the reference silently lacks it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import securepractice

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs" / "reference").glob("*.md"))
PORTAL = ROOT / "src" / "securepractice" / "portal.py"
FACADES = ("Accounts", "PracticeAdministration", "Billing")

_DIRECTIVE = re.compile(r"^::: ([\w.]+)\n((?:    .*\n|\n(?=    ))*)", re.MULTILINE)


def directives() -> dict[str, set[str]]:
    """Each ``:::`` path on the reference pages, with the members its options list."""
    found: dict[str, set[str]] = {}
    for page in PAGES:
        for path, options in _DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            members = set(re.findall(r"^\s+- (\w+)$", options, re.MULTILINE))
            found.setdefault(path, set()).update(members)
    return found


def facade_actions() -> dict[str, list[str]]:
    """Each action of the facades in portal.py, by the module of the function it names."""
    tree = ast.parse(PORTAL.read_text(encoding="utf-8"))
    modules = {
        alias.asname or alias.name: f"{node.module}.{alias.name}"
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    actions: dict[str, list[str]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.ClassDef) and node.name in FACADES):
            continue
        for statement in node.body:
            if not isinstance(statement, ast.Assign):
                continue
            value = statement.value
            if isinstance(value, ast.Call) and len(value.args) == 1:  # action(module.function)
                value = value.args[0]
            if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
                module = modules.get(value.value.id, value.value.id)
                actions.setdefault(module, []).append(value.attr)
    return actions


def test_the_reference_has_its_pages() -> None:
    assert len(PAGES) >= 10


def test_every_public_name_is_on_a_reference_page() -> None:
    documented = set(directives())
    public = {name for name in securepractice.__all__ if name != "__version__"}
    missing = sorted(name for name in public if f"securepractice.{name}" not in documented)
    assert not missing, f"add these to a page of docs/reference/: {missing}"


def test_every_action_of_the_facades_is_on_a_reference_page() -> None:
    documented = directives()
    actions = facade_actions()
    assert sum(len(names) for names in actions.values()) > 50
    missing = sorted(
        f"{module}.{name}"
        for module, names in actions.items()
        for name in names
        if name not in documented.get(module, set())
    )
    assert not missing, f"add these actions to docs/reference/accounts.md or practice.md: {missing}"
