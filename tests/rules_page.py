"""Write docs/rules.md: every rule of the specification and the tests that name it.

The rules' ids and one-line titles live in ``tests/rules.txt``, made once
from the specification (which is not part of the repository):

    python tests/rules_page.py --from-spec ../shared/SPEC.md

The page itself is made from that list and the tests, and
tests/test_rules_page.py checks that the committed page is what this makes:

    python tests/rules_page.py > docs/rules.md

A test names a rule in its name (``test_lk_1_...``), its docstring, or a
comment in or just above it (``# LK-1``), as the specification asks.
"""

from __future__ import annotations

import argparse
import ast
import io
import itertools
import re
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "tests" / "rules.txt"
PAGE = ROOT / "docs" / "rules.md"
#: Where tests live: the tests, and the storage contract suite shipped in the package.
TEST_SOURCES = (ROOT / "tests", ROOT / "src" / "securepractice" / "testing" / "contract.py")

RULE_ID = re.compile(r"\b([A-Z]{2})-(\d+)\b")
_NAME_PART = re.compile(r"^([a-z]{2})(\d+)$")
_FAMILY = re.compile(r"^[a-z]{2}$")
_SPEC_RULE = re.compile(r"^- ([A-Z]{2}-\d+) (.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`])")


@attrs.frozen
class Rule:
    """One rule of the specification: its id, its family and its first sentence."""

    id: str
    family: str
    title: str


def rules_from_spec(spec: str) -> str:
    """Return the text of ``tests/rules.txt`` for the specification ``spec``."""
    lines: list[str] = []
    rule: list[str] = []

    def flush() -> None:
        if rule:
            text = " ".join(rule)
            rule_id, body = text.split(" ", 1)
            lines.append(f"{rule_id}\t{_SENTENCE_END.split(body, maxsplit=1)[0]}")
            rule.clear()

    for line in spec.splitlines():
        started = _SPEC_RULE.match(line)
        if line.startswith("## "):
            flush()
            lines.append(f"# {line[3:].strip()}")
        elif started:
            flush()
            rule.extend(started.groups())
        elif rule and line.startswith("  ") and line.strip():
            rule.append(line.strip())
        else:
            flush()
    flush()
    return "\n".join(lines) + "\n"


def read_rules(text: str) -> list[Rule]:
    """Parse ``tests/rules.txt``: ``# Family`` lines, then ``ID<TAB>title`` lines."""
    rules: list[Rule] = []
    family = ""
    for line in text.splitlines():
        if line.startswith("# "):
            family = line[2:]
        elif line.strip():
            rule_id, title = line.split("\t")
            rules.append(Rule(id=rule_id, family=family, title=title))
    return rules


def ids_in_name(name: str) -> set[str]:
    """Return the rule ids a test's name spells, as ``mf_3`` or ``mf3``."""
    parts = name.split("_")
    found = {
        f"{a.upper()}-{b}" for a, b in itertools.pairwise(parts) if _FAMILY.match(a) and b.isdigit()
    }
    found |= {f"{m[1].upper()}-{m[2]}" for part in parts if (m := _NAME_PART.match(part))}
    return found


def _comments(source: str) -> dict[int, str]:
    """Return each line's comment text, by line number."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.start[0]: t.string for t in tokens if t.type == tokenize.COMMENT}


def _tests(
    body: list[ast.stmt], prefix: str, first: int
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, int]]:
    """Yield each test of ``body`` with its name and the first line that belongs to it.

    A test owns the lines from just after the statement before it (so the
    comments above its decorators) to its last line.
    """
    start = first
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            yield f"{prefix}{node.name}", node, start
        elif isinstance(node, ast.ClassDef):
            yield from _tests(node.body, f"{prefix}{node.name}::", start)
        start = (node.end_lineno or node.lineno) + 1


def tests_naming_rules(files: list[tuple[str, str]], known: set[str]) -> dict[str, list[str]]:
    """Map each rule id of ``known`` to the tests that name it, from (path, source) pairs."""
    naming: dict[str, list[str]] = {}
    for path, source in files:
        comments = _comments(source)
        for name, node, start in _tests(ast.parse(source).body, "", 1):
            end = node.end_lineno or node.lineno
            text = " ".join(comments.get(n, "") for n in range(start, end + 1))
            text += " " + (ast.get_docstring(node) or "")
            ids = ids_in_name(node.name) | {f"{a}-{b}" for a, b in RULE_ID.findall(text)}
            for rule_id in sorted(ids & known):
                naming.setdefault(rule_id, []).append(f"{path}::{name}")
    return naming


def read_test_modules(root: Path) -> list[tuple[str, str]]:
    """Return (path from the root, source) for every test module, in path order."""
    paths: list[Path] = []
    for source in TEST_SOURCES:
        paths.extend(sorted(source.rglob("*.py")) if source.is_dir() else [source])
    return [(p.relative_to(root).as_posix(), p.read_text(encoding="utf-8")) for p in paths]


def render(rules: list[Rule], naming: dict[str, list[str]]) -> str:
    """Return the Markdown of the rules page."""
    out = [
        "# Rules and their tests",
        "",
        "Every rule of the specification, by family, with the tests that name it",
        "(in their name, docstring or a comment). This page is generated by",
        "`python tests/rules_page.py > docs/rules.md`, and a test checks that it is",
        "up to date.",
    ]
    family = None
    for rule in rules:
        if rule.family != family:
            family = rule.family
            out += ["", f"## {family}", ""]
        out.append(f"- **{rule.id}** {rule.title}")
        tests = naming.get(rule.id, [])
        out += [f"    - `{test}`" for test in tests] or ["    - *no test names it yet*"]
    return "\n".join(out) + "\n"


def page(root: Path = ROOT) -> str:
    """Return the rules page for the repository at ``root``."""
    rules = read_rules((root / "tests" / "rules.txt").read_text(encoding="utf-8"))
    return render(rules, tests_naming_rules(read_test_modules(root), {r.id for r in rules}))


def main(argv: list[str] | None = None) -> int:
    """Print the rules page, or, with ``--from-spec``, rewrite the list of rules."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--from-spec", type=Path, help="rewrite tests/rules.txt from this file")
    args = parser.parse_args(argv)
    if args.from_spec is not None:
        RULES.write_text(rules_from_spec(args.from_spec.read_text(encoding="utf-8")), "utf-8")
        return 0
    sys.stdout.write(page())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
