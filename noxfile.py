"""Development sessions: tests, lint, typecheck, docs, bench, demo.

Plain ``nox`` runs tests, lint and typecheck. Each session installs what it
needs from pyproject.toml's dependency groups into its own virtualenv.
"""

from __future__ import annotations

import re
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")


def _group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite under coverage; fail under 90% line and branch coverage."""
    session.install("-e", ".[postgres]", *_group("test"))
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine")
    session.run("coverage", "report")


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff, and the import layering with import-linter."""
    session.install(*_group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # import-linter reads the source without importing it: src on the path is
    # enough, and --no-cache leaves no cache folder in the work tree.
    session.run("lint-imports", "--no-cache", env={"PYTHONPATH": "src"})


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the library, its tests and benchmarks with mypy --strict."""
    session.install("-e", ".[postgres]", *_group("typecheck"), "nox")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation; any warning, or an include left unexpanded, fails the build."""
    session.install("-e", ".", *_group("docs"), "mypy")
    session.run("mypy", "--strict", "docs/examples")
    site = Path(session.create_tmp(), "site")
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site))
    unexpanded = [
        page.relative_to(site).as_posix()
        for page in site.rglob("*.html")
        if re.search(r"-\s*-\s*8\s*(<|&lt;)\s*-\s*-", page.read_text(encoding="utf-8"))
    ]
    if unexpanded:
        session.error(f"snippet includes left unexpanded in: {', '.join(unexpanded)}")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark in benchmarks/ and print its figures.

    bench_storage.py compares the PostgreSQL store with raw psycopg on a
    throwaway server of its own (`securepractice.testing.postgres`, started
    durable: fsync on), so the session installs the postgres extra.
    """
    session.install("-e", ".[postgres]", *_group("bench"))
    for script in sorted(Path("benchmarks").glob("bench_*.py")):
        session.log(f"--- {script.name}")
        session.run("python", str(script), *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Run the demonstration: the portal's help pages played through once."""
    session.install(".")
    session.run("securepractice", "demo", *session.posargs)
