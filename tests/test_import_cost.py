"""P6: the public face is lazy, and the pure core loads no adapter, driver or network module.

Each import runs in a fresh interpreter, which prints the modules it loaded
as JSON; none of them may be a database driver, a mail, TLS or network
module, a thread pool, nor one of the package's own adapters and services.
The names the packages export resolve on first use, once, from one table
that the type checkers' listing of them matches.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib import import_module
from pathlib import Path
from types import ModuleType

import pytest

import securepractice
import securepractice.messaging

PURE_IMPORTS = (
    "securepractice",
    "securepractice.policy",
    "securepractice.verification",
    "securepractice.messaging",
    "securepractice.storage",
    "securepractice.policy.password",
    "securepractice.policy.lockout",
    "securepractice.policy.sessions",
    "securepractice.policy.roles",
    "securepractice.policy.identity",
    "securepractice.policy.hashing",
    "securepractice.policy.attachments",
    "securepractice.verification.codes",
    "securepractice.verification.tokens",
    "securepractice.verification.phones",
)
HEAVY = (
    "sqlite3",
    "_sqlite3",
    "psycopg",
    "ssl",
    "_ssl",
    "socket",
    "smtplib",
    "email.mime",
    "concurrent.futures",
)
ADAPTERS_AND_SERVICES = (
    "securepractice.storage.memory",
    "securepractice.storage.sqlite",
    "securepractice.messaging.smtp",
    "securepractice.messaging.console",
    "securepractice.messaging.outbox",
    "securepractice.accounts",
    "securepractice.practice",
    "securepractice.portal",
    "securepractice.cli",
    "securepractice.demo",
)
LAZY_PACKAGES = (securepractice, securepractice.messaging)


def modules_loaded_by(module: str) -> set[str]:
    """Return the names in ``sys.modules`` of a fresh interpreter after ``import module``."""
    code = f"import json, sys\nimport {module}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(  # noqa: S603 - the test's own interpreter, a module named here
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("module", PURE_IMPORTS)
def test_p6_a_pure_import_loads_no_driver_adapter_or_service(module: str) -> None:
    loaded = modules_loaded_by(module)
    assert module in loaded
    assert sorted(loaded.intersection(HEAVY, ADAPTERS_AND_SERVICES)) == []


def test_p6_importing_the_package_loads_none_of_its_modules() -> None:
    """Only the small lazy-export helper comes with the package; every public module waits."""
    loaded = modules_loaded_by("securepractice")
    assert sorted(n for n in loaded if n.startswith("securepractice.")) == ["securepractice._lazy"]


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda package: package.__name__)
def test_p6_every_exported_name_resolves_once_from_its_module(package: ModuleType) -> None:
    for name in package.__all__:
        value = getattr(package, name)
        assert vars(package)[name] is value
    for name, module in package._MODULE_OF.items():
        assert getattr(package, name) is getattr(import_module(module), name)


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda package: package.__name__)
def test_p6_dir_lists_every_exported_name(package: ModuleType) -> None:
    assert set(package.__all__) <= set(dir(package))


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda package: package.__name__)
def test_p6_an_unknown_name_raises_attribute_error(package: ModuleType) -> None:
    name = "NoSuchName"
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchName'"):
        getattr(package, name)


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda package: package.__name__)
def test_p6_the_type_checkers_imports_match_the_table(package: ModuleType) -> None:
    """The ``if TYPE_CHECKING:`` block re-exports exactly the table's names, from its modules."""
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )
    imported: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        assert node.module is not None
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name} is not re-exported as itself"
            imported[alias.name] = node.module
    assert imported == package._MODULE_OF
