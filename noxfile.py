"""Development sessions: tests, lint, typecheck, docs, bench, demo, fuzz, mutate.

Plain ``nox`` runs tests, lint and typecheck. Each session installs what it
needs from pyproject.toml's dependency groups into its own virtualenv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
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
    session.install("-e", ".[postgres,authenticator]", *_group("test"))
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
    session.install("-e", ".[postgres,authenticator]", *_group("typecheck"), "nox")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation; any warning, or an include left unexpanded, fails the build."""
    session.install("-e", ".", *_group("docs"), *_group("recipes"), "mypy")
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
    """Run every benchmark in benchmarks/ and print its figures (docs/benchmarks.md).

    bench_storage.py compares the PostgreSQL store with raw psycopg on a
    throwaway server of its own (`securepractice.testing.postgres`, started
    durable: fsync on), so the session installs the postgres extra;
    bench_axes.py compares failed sign-ins with django-axes (the bench
    group). ``nox -s bench -- --quick`` runs each with few samples, for
    development: its figures are not for the table.
    """
    session.install("-e", ".[postgres,authenticator]", *_group("bench"))
    for script in sorted(Path("benchmarks").glob("bench_*.py")):
        session.log(f"--- {script.name}")
        session.run("python", str(script), *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Run the demonstration: the portal's help pages played through once."""
    session.install(".[authenticator]")
    session.run("securepractice", "demo", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """Fuzz every parser with 1,000,000 adversarial inputs each; fail on any finding.

    ``nox -s fuzz -- 10000`` sets the count per parser (so does ``FUZZ_COUNT``);
    ``-- --help`` lists the other options (one parser, a seed, a replay).
    """
    session.install(".")
    session.run("python", "-m", "fuzz", *session.posargs)


#: The least mutation score, in percent, that `mutate` accepts.
MUTATION_FLOOR = 85.0


@nox.session
def mutate(session: nox.Session) -> None:
    """Mutation-test the pure core with mutmut; fail when its tests kill under 85% of the mutants.

    What is mutated and which tests run is [tool.mutmut] in pyproject.toml.
    Each run starts afresh: mutmut's mutants/ folder is removed first, and the
    package is not installed, so the tests import its mutated copy only. The
    score is mutmut's own: killed and timed-out mutants over every mutant
    not skipped. ``mutmut show NAME`` prints a listed survivor's change.
    """
    session.install(*PYPROJECT["project"]["dependencies"], *_group("mutate"))
    if session.run("mutmut", "--version") is None:
        return  # nox --install-only runs nothing
    shutil.rmtree("mutants", ignore_errors=True)
    session.run("mutmut", "run", "--max-children", str(os.cpu_count() or 1))
    session.run("mutmut", "export-cicd-stats")
    session.run("mutmut", "results")
    stats = json.loads(Path("mutants/mutmut-cicd-stats.json").read_text(encoding="utf-8"))
    counted = stats["total"] - stats["skipped"]
    killed = stats["killed"] + stats["timeout"]
    score = 100 * killed / counted if counted else 0.0
    session.log(
        f"mutation score {score:.1f}%: {killed} of {counted} mutants killed"
        f" ({stats['timeout']} by timeout); {stats['survived']} survived,"
        f" {stats['no_tests']} reached by no test, {stats['suspicious']} suspicious"
    )
    if score < MUTATION_FLOOR:
        session.error(f"mutation score {score:.1f}% is under {MUTATION_FLOOR:.0f}%")
