"""The error-code registry: every code in the source registered, used, in one scheme, documented.

The source is read with `ast`, not imported, so that a code on a path no
test reaches is still found. A code is whatever string literal sits where a
code goes:

* the ``code=`` keyword of any call, and a class's ``default_code``;
* an argument bound to a parameter (or attrs field) named ``code`` of a
  function or class defined in the source: ``Violation(code, message)``,
  ``ArchiveFinding``, the storage helpers, ``_refuse`` of the phone parser;
* the ``reason`` of a role `Decision` (``_deny(reason)``), but ``ok``;
* a (code, message) row of a table: a tuple display holding one literal of
  a code's shape and one with a space (a message), as in the password
  classes, the phone parser's errors and the SQLite conflicts.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import securepractice
from securepractice.error_codes import (
    CODE_PATTERN,
    CODES,
    LEGACY_CODES,
    REPORT,
    is_registered,
    render_markdown,
)
from securepractice.errors import NotFound, PaymentFailed
from securepractice.policy.attachments import Attachment, AttachmentPolicy
from securepractice.policy.password import PasswordPolicy

SOURCE = Path(securepractice.__file__).parent
DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
REGENERATE = "python -m securepractice.error_codes > docs/errors.md"

#: Registered codes that the source builds at run time, so that no literal
#: holds them: ``f"{thing}.not_found"`` when storage/memory.py or
#: storage/sqlite.py saves a record that is gone. Once they are literals,
#: drop them here.
RUN_TIME_CODES = frozenset(
    {
        "challenge.not_found",
        "credential.not_found",
        "link_token.not_found",
        "purchase.not_found",
        "send_ledger.not_found",
        "session.not_found",
    }
)

#: The reason of an allowed `Decision`: a value, but no error.
ALLOWED_REASON = "ok"

#: Callables whose ``reason`` is a code (policy/roles.py).
REASON_CALLEES = frozenset({"Decision", "_deny"})

#: Callables that make a value carrying the code (a report), not an error.
REPORT_CALLEES = frozenset({"Violation", "ArchiveFinding", "Decision", "_deny"})

#: What a literal must look like to be taken for a code in a table row:
#: looser than the scheme, so that a badly named code is found and refused.
_CODE_SHAPE = re.compile(r"[a-z][a-z0-9_]*\.[a-z0-9_]+")


@attrs.frozen
class Site:
    """One place a code is written: the code, where, and what carries it if known."""

    code: str
    where: str
    carrier: str | None


def _modules() -> Iterator[tuple[str, ast.Module]]:
    """Every module of the package but the registry, which names every code."""
    for path in sorted(SOURCE.rglob("*.py")):
        name = path.relative_to(SOURCE.parent).as_posix()
        if name != "securepractice/error_codes.py":
            yield name, ast.parse(path.read_text(encoding="utf-8"), filename=name)


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[str]:
    """The names of what a call's positional arguments bind to, ``self`` left out."""
    if isinstance(node, ast.ClassDef):
        return [
            s.target.id
            for s in node.body
            if isinstance(s, ast.AnnAssign)
            and isinstance(s.target, ast.Name)
            and "ClassVar" not in ast.unparse(s.annotation)
        ]
    names = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def _default_code(statement: ast.stmt) -> str | None:
    """The literal of a ``default_code = "..."`` class attribute, or None."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target, value = statement.targets[0], statement.value
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        target, value = statement.target, statement.value
    else:
        return None
    is_default = isinstance(target, ast.Name) and target.id == "default_code"
    return _text(value) if is_default else None


def _error_classes(modules: list[tuple[str, ast.Module]]) -> set[str]:
    """The names of `SecurePracticeError` and every class deriving from it in the source."""
    bases: dict[str, set[str]] = {}
    for _, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {ast.unparse(b).rpartition(".")[2] for b in node.bases}
    found = {"SecurePracticeError"}
    while grown := {name for name, of in bases.items() if of & found} - found:
        found |= grown
    return found


def _collect() -> tuple[list[Site], set[str]]:
    """Every code site in the source, and the names of the error classes."""
    modules = list(_modules())
    errors = _error_classes(modules)
    signatures: dict[str, list[list[str]]] = {}
    for _, tree in modules:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                signatures.setdefault(node.name, []).append(_parameters(node))
    sites: list[Site] = []
    for module, tree in modules:
        for node in ast.walk(tree):
            where = f"{module}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call):
                sites += _call_sites(node, where, signatures, errors)
            elif isinstance(node, ast.ClassDef):
                sites += [
                    Site(code, where, node.name)
                    for statement in node.body
                    if (code := _default_code(statement)) is not None
                ]
            elif isinstance(node, ast.Tuple):
                texts = [t for e in node.elts if (t := _text(e)) is not None]
                codes = [t for t in texts if _CODE_SHAPE.fullmatch(t)]
                if len(codes) == 1 and any(" " in t for t in texts):
                    sites.append(Site(codes[0], where, None))
    return sites, errors


def _call_sites(
    call: ast.Call, where: str, signatures: dict[str, list[list[str]]], errors: set[str]
) -> list[Site]:
    callee = _callee(call)
    carrier = callee if callee in errors else REPORT if callee in REPORT_CALLEES else None
    names = {"code", "reason"} if callee in REASON_CALLEES else {"code"}
    found = [_text(k.value) for k in call.keywords if k.arg in names]
    for parameters in signatures.get(callee or "", []):
        found += [
            _text(argument)
            for argument, parameter in zip(call.args, parameters, strict=False)
            if parameter in names
        ]
    allowed = ALLOWED_REASON if callee in REASON_CALLEES else None
    return [Site(code, where, carrier) for code in found if code is not None and code != allowed]


SITES, ERROR_CLASSES = _collect()
FOUND = {site.code for site in SITES}


def test_the_collector_finds_codes_of_every_kind() -> None:
    """The other tests mean something only if the source is really read."""
    assert len(FOUND) > 100
    assert {
        "verification.rate_limited",  # code= on an error
        "storage.unavailable",  # default_code
        "password.no_digit",  # a row of the password classes
        "password.mismatch",  # Violation(code, message)
        "attachment.archive_bomb",  # ArchiveFinding(code, message)
        "attachment.name_device",  # a Violation of the attachment policy
        "permission.not_self",  # a role decision's reason
        "phone.empty",  # _refuse(kind, code, reason)
        "phone.not_possible",  # a row of the phone parser's errors
        "practice.exists",  # a storage helper's code parameter
        "storage.busy",  # a (message, code) pair
    } <= FOUND
    assert ALLOWED_REASON not in FOUND
    assert {"AlreadyExists", "NotFound", "StorageError", "NothingSent"} <= ERROR_CLASSES


def test_every_code_in_the_source_is_registered() -> None:
    missing = sorted(f"{s.where}: {s.code}" for s in SITES if not is_registered(s.code))
    assert not missing, "add these codes to securepractice/error_codes.py:\n" + "\n".join(missing)


def test_every_code_is_registered_with_what_carries_it() -> None:
    wrong = sorted(
        f"{s.where}: {s.code} is carried by {s.carrier}"
        for s in SITES
        if s.carrier is not None and s.code in CODES and s.carrier not in CODES[s.code].carriers
    )
    assert not wrong, "\n".join(wrong)


def test_every_carrier_named_is_an_error_class_or_a_report() -> None:
    named = {carrier for entry in CODES.values() for carrier in entry.carriers}
    assert named - ERROR_CLASSES == {REPORT}


def test_no_registered_code_is_unused() -> None:
    unused = sorted(set(CODES) - FOUND - RUN_TIME_CODES)
    assert not unused, f"registered but found nowhere in the source: {unused}"
    assert set(CODES) >= RUN_TIME_CODES
    assert not RUN_TIME_CODES & FOUND, "now a literal: drop it from RUN_TIME_CODES"


def test_every_registered_code_follows_the_naming_scheme() -> None:
    assert {"already_exists", "not_found", "rate_limited"} == LEGACY_CODES, "no new exceptions"
    assert set(CODES) >= LEGACY_CODES
    off_scheme = sorted(c for c in CODES if c not in LEGACY_CODES and not CODE_PATTERN.fullmatch(c))
    assert not off_scheme


@pytest.mark.parametrize("code", ["password.no_digit", "link_token.exists", "time.naive"])
def test_the_scheme_takes_area_dot_reason(code: str) -> None:
    assert CODE_PATTERN.fullmatch(code)


@pytest.mark.parametrize(
    "code",
    [
        "password",
        "Password.too_short",
        "password.tooShort",
        "password.too-short",
        "password.too_short.again",
        "password._short",
        "password.too__short",
        "password.short_",
        "_password.short",
        "password.1short",
        "attachment.name_empty ",
    ],
)
def test_the_scheme_refuses_other_shapes(code: str) -> None:
    assert not CODE_PATTERN.fullmatch(code)


def test_the_table_is_in_alphabetical_order() -> None:
    """One place for each new code, so that two changes adding codes merge cleanly."""
    assert list(CODES) == sorted(CODES)


def test_every_code_has_a_one_line_meaning() -> None:
    for code, entry in CODES.items():
        assert entry.code == code
        assert entry.carriers
        assert entry.meaning.endswith(".")
        assert "\n" not in entry.meaning


def test_the_docs_page_is_generated_from_the_registry() -> None:
    page = DOCS_PAGE.read_text(encoding="utf-8")
    assert page == render_markdown(), f"docs/errors.md is stale: run `{REGENERATE}`"
    for code in CODES:
        assert f"| `{code}` |" in page


def test_codes_that_reports_return_are_registered() -> None:
    """The value paths, run: a password and an attachment with many problems at once."""
    password = PasswordPolicy().check("\u202e", "other")
    attachment = AttachmentPolicy().check(
        [Attachment(name="..\\CON.exe\u202e", content=b"MZ"), Attachment(name="", content=b"")]
    )
    codes = {*password.codes, *attachment.codes}
    assert len(codes) > 8
    assert {c for c in codes if not is_registered(c)} == set()


def test_an_application_adapter_may_raise_with_a_code_of_its_own() -> None:
    """Codes are checked by reading the library's source, not at run time (a processor's own)."""
    failed = PaymentFailed("card expired", code="acme.card_expired")
    assert failed.code == "acme.card_expired"
    assert not is_registered(failed.code)


def test_registered_codes_and_defaults_pass() -> None:
    assert NotFound("There is no such user.", code="user.not_found").code == "user.not_found"
    assert NotFound("no such record").code == "not_found"
