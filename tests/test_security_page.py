"""docs/security.md keeps in step with `Settings` and the audit events the library writes (OP-6).

The page's settings tables give each setting's path and its value in the
portal profile and the NIST profile; this reads them back and compares
them with live `Settings` values, and fails on a setting the page leaves
out. Its audit tables list every action; this finds the actions in the
source (the second argument of each ``audit(...)`` call, followed through
names, parameters and small helpers) and fails on one the page leaves out
or one the library no longer writes.
"""

from __future__ import annotations

import ast
import re
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from securepractice import settings as settings_module
from securepractice.events import KINDS, WARNING_ACTIONS
from securepractice.settings import PasswordRules, Settings, SignInRules

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "security.md"
SOURCE = ROOT / "src" / "securepractice"

#: Settings the page does not list, each with why: not a number that guards an account.
NOT_ON_PAGE = {
    "billing": "money (UM-6), not security",
    "messages": "the words of messages (OP-4)",
    "secret": "the portal secret itself",
    "previous_secret": "the portal secret being rotated out",
    "password.name": "the profile's name",
    "verification.default_region": "how national phone numbers are read (VF-1)",
    "verification.phone_code_notice": "the words of a notice (MF-9)",
    "verification.code_key": "a key, derived from the portal secret",
    "links.base_url": "the portal's address, checked when set (RC-6)",
    "links.invitation_path": "a path of the portal",
    "links.reset_path": "a path of the portal",
    "links.email_change_path": "a path of the portal",
    "attachments.allowed_extensions": "the seed's list, on the attachments guide (AT-1)",
}

#: The NIST profile the page's last column describes.
NIST = Settings(password=PasswordRules.NIST, sign_in=SignInRules.NIST)

_ROW = re.compile(r"^\|\s*`([a-z_]+(?:\.[a-z_]+)+)`\s*\|([^|]*)\|([^|]*)\|")
_AMOUNT = re.compile(r"^(\d[\d,]*)(?:\s+([A-Za-z]+))?$")
_DURATIONS = {"second": "seconds", "minute": "minutes", "hour": "hours", "day": "days"}
#: How many names, parameters and helpers an action may pass through.
_MAX_DEPTH = 6
_SETTINGS_HEADING = "\n## Settings\n"
_AUDIT_HEADING = "\n## Audit events\n"
_ACTION_ROW = re.compile(r"^\|\s*((?:`[a-z_.]+`(?:,\s*)?)+)\s*\|")


def page_text() -> str:
    return PAGE.read_text(encoding="utf-8")


def parse_value(text: str) -> object:
    """Read a value as the page writes it: `none`, `yes`, `no`, `Enum.MEMBER`, 15 minutes, 5."""
    text = text.strip()
    words: dict[str, object] = {"none": None, "yes": True, "no": False}
    if text in words:
        return words[text]
    member = re.fullmatch(r"`(\w+)\.(\w+)`", text)
    if member:
        return getattr(getattr(settings_module, member[1]), member[2])
    amount = _AMOUNT.match(text)
    if amount is None:
        msg = f"cannot read the value {text!r}"
        raise ValueError(msg)
    number = int(amount[1].replace(",", ""))
    unit = (amount[2] or "").lower().removesuffix("s")
    if unit in _DURATIONS:
        return timedelta(**{_DURATIONS[unit]: number})
    return number


def page_settings() -> dict[str, tuple[str, str]]:
    """Return each setting path on the page with its portal and NIST cells."""
    rows: dict[str, tuple[str, str]] = {}
    section = page_text().split(_SETTINGS_HEADING, 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        row = _ROW.match(line)
        if row and row[1].split(".")[0] in attrs.fields_dict(Settings):
            assert row[1] not in rows, f"{row[1]} is on the page twice"
            rows[row[1]] = (row[2], row[3])
    return rows


def live(settings: Settings, path: str) -> Any:
    value: Any = settings
    for name in path.split("."):
        value = getattr(value, name)
    return value


def security_settings(kind: type = Settings, prefix: str = "") -> list[str]:
    """Every setting path, found by walking the attrs classes of `Settings` (less NOT_ON_PAGE)."""
    paths: list[str] = []
    hints = typing.get_type_hints(kind)
    for field in attrs.fields(kind):
        path = f"{prefix}{field.name}"
        kind_of_field = hints[field.name]
        if path in NOT_ON_PAGE:
            continue
        if isinstance(kind_of_field, type) and attrs.has(kind_of_field):
            paths += security_settings(kind_of_field, f"{path}.")
        else:
            paths.append(path)
    return paths


def test_op_6_the_walk_finds_every_group_of_settings() -> None:
    """The walk reads the annotations, so it reaches inside every group of settings."""
    groups = {p.split(".")[0] for p in security_settings()}
    assert groups == {"password", "hashing", "sign_in", "verification", "links", "attachments"}


def test_op_6_every_security_setting_is_on_the_page() -> None:
    missing = sorted(set(security_settings()) - set(page_settings()))
    assert not missing, f"add these settings to docs/security.md: {missing}"


def test_op_6_the_page_lists_no_setting_that_does_not_exist() -> None:
    unknown = sorted(set(page_settings()) - set(security_settings()))
    assert not unknown, f"docs/security.md lists settings that do not exist: {unknown}"


def test_op_6_the_new_throttle_settings_are_on_the_page() -> None:
    """CX-3's throttle: 100 failed sign-ins an hour from one address (the spec's numbers)."""
    rows = page_settings()
    assert parse_value(rows["sign_in.throttle_limit"][0]) == 100
    assert parse_value(rows["sign_in.throttle_window"][0]) == timedelta(hours=1)


@pytest.mark.parametrize("path", sorted(page_settings()))
def test_op_6_each_value_on_the_page_is_the_portal_default(path: str) -> None:
    portal_cell, _nist_cell = page_settings()[path]
    assert parse_value(portal_cell) == live(Settings(), path)


@pytest.mark.parametrize("path", sorted(page_settings()))
def test_op_6_each_value_on_the_page_is_the_nist_profile(path: str) -> None:
    _portal_cell, nist_cell = page_settings()[path]
    assert parse_value(nist_cell) == live(NIST, path)


def test_op_6_the_spec_defaults_the_page_states() -> None:
    """A few of the spec's own numbers, read from the page, not from the code (LK-1, LK-6, PW-5)."""
    rows = page_settings()
    assert parse_value(rows["sign_in.max_failed_sign_ins"][0]) == 5
    assert parse_value(rows["sign_in.idle_timeout"][0]) == timedelta(minutes=30)
    assert parse_value(rows["sign_in.absolute_lifetime"][0]) == timedelta(hours=12)
    assert parse_value(rows["password.max_age"][0]) == timedelta(days=90)
    assert parse_value(rows["password.max_age"][1]) is None
    assert parse_value(rows["links.trusted_device_lifetime"][0]) == timedelta(days=30)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("none", None),
        ("yes", True),
        ("no", False),
        ("`Lockout.TEMPORARY`", settings_module.Lockout.TEMPORARY),
        ("15 minutes", timedelta(minutes=15)),
        ("1 hour", timedelta(hours=1)),
        ("30 seconds", timedelta(seconds=30)),
        ("14 days", timedelta(days=14)),
        ("314,572,800 bytes", 314_572_800),
        ("6", 6),
    ],
)
def test_values_are_read_as_the_page_writes_them(text: str, value: object) -> None:
    assert parse_value(text) == value


@pytest.mark.parametrize("text", ["", "five", "15 min utes", "1.5 hours", "`Nothing.HERE`"])
def test_a_value_the_page_cannot_mean_is_an_error(text: str) -> None:
    with pytest.raises((ValueError, AttributeError)):
        parse_value(text)


# --- audit events


class _Module:
    """One source module: its tree, its module-level names, and each node's function."""

    def __init__(self, path: Path, dotted: str) -> None:
        self.path = path
        self.dotted = dotted
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.names: dict[str, ast.expr] = {}
        self.functions: dict[str, ast.FunctionDef] = {}
        #: Each name imported from another module: that module and the name there.
        self.imports: dict[str, tuple[str, str]] = {}
        for statement in self.tree.body:
            self._define(statement)
        self.enclosing: dict[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for node in ast.walk(self.tree):  # outer functions first, so inner ones win
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.enclosing.update(dict.fromkeys(ast.walk(node), node))

    def _define(self, node: ast.stmt) -> None:
        """Note the module-level names ``node`` defines."""
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                self.imports[alias.asname or alias.name] = (node.module, alias.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    self.names[target.id] = node.value
        elif isinstance(node, ast.FunctionDef):
            self.functions[node.name] = node


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


class AuditActions:
    """The audit actions the library's source writes, followed through names and parameters."""

    def __init__(self, root: Path) -> None:
        paths = [p for p in sorted(root.rglob("*.py")) if p.name != "contract.py"]
        self.modules = [_Module(p, _dotted(root, p)) for p in paths]
        self.by_name = {module.dotted: module for module in self.modules}
        self.unresolved: list[str] = []
        self.actions: set[str] = set()
        for module in self.modules:
            for node in ast.walk(module.tree):
                if isinstance(node, ast.Call):
                    self._visit(module, node)

    def _visit(self, module: _Module, call: ast.Call) -> None:
        name = _called_name(call)
        if name == "audit" and len(call.args) >= 2:  # audit(uow, action, ...)
            self._add(module, call.args[1], call)
        elif name == "AuditEvent":
            function = module.enclosing.get(call)
            if function is not None and function.name == "audit":
                return  # the one place that builds an event from audit's own parameter
            for keyword in call.keywords:
                if keyword.arg == "action":
                    self._add(module, keyword.value, call)

    def _add(self, module: _Module, expr: ast.expr, at: ast.AST) -> None:
        found = self.resolve(module, expr, at, depth=0)
        if found is None:
            line = getattr(at, "lineno", 0)
            self.unresolved.append(f"{module.path.name}:{line}: {ast.unparse(expr)}")
        else:
            self.actions |= found

    def resolve(self, module: _Module, expr: ast.expr, at: ast.AST, depth: int) -> set[str] | None:
        """Return every string ``expr`` can be where it stands, or None when it cannot be told."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(expr, ast.Constant):
            return {expr.value} if isinstance(expr.value, str) else None
        if isinstance(expr, ast.IfExp):
            return _union(
                self.resolve(module, expr.body, at, depth + 1),
                self.resolve(module, expr.orelse, at, depth + 1),
            )
        if isinstance(expr, ast.Name):
            return self._resolve_name(module, expr.id, at, depth)
        return self._resolve_lookup(module, expr, at, depth)

    def _resolve_lookup(
        self, module: _Module, expr: ast.expr, at: ast.AST, depth: int
    ) -> set[str] | None:
        """Resolve ``TABLE[key]`` by every value of the table, ``helper()`` by its returns."""
        if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name):
            table = module.names.get(expr.value.id)
            if not isinstance(table, ast.Dict):
                return None
            return _union(*(self.resolve(module, v, at, depth + 1) for v in table.values))
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            home, name = self._home(module, expr.func.id)
            helper = home.functions.get(name) if home is not None else None
            if home is None or helper is None:
                return None
            returns = [n.value for n in ast.walk(helper) if isinstance(n, ast.Return) and n.value]
            return _union(*(self.resolve(home, r, r, depth + 1) for r in returns)) or None
        return None

    def _resolve_name(self, module: _Module, name: str, at: ast.AST, depth: int) -> set[str] | None:
        function = module.enclosing.get(at)
        if function is not None:
            assigned = [
                node.value
                for node in ast.walk(function)
                if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
            ]
            if assigned:
                return _union(*(self.resolve(module, v, v, depth + 1) for v in assigned))
            parameters = [a.arg for a in function.args.posonlyargs + function.args.args]
            keywords = [a.arg for a in function.args.kwonlyargs]
            if name in parameters or name in keywords:
                position = parameters.index(name) if name in parameters else None
                return self._from_callers(module, function.name, name, position, depth)
        home, name = self._home(module, name)
        if home is not None and name in home.names:
            return self.resolve(home, home.names[name], home.names[name], depth + 1)
        return None

    def _home(self, module: _Module, name: str) -> tuple[_Module | None, str]:
        """Return the module defining ``module``'s top-level ``name``, and its name there."""
        if name in module.names or name in module.functions:
            return module, name
        if name in module.imports:
            dotted, original = module.imports[name]
            return self.by_name.get(dotted), original
        return None, name

    def _from_callers(
        self, module: _Module, function: str, parameter: str, position: int | None, depth: int
    ) -> set[str] | None:
        """Return what every call of ``function`` passes as ``parameter``."""
        modules = [module] if function.startswith("_") else self.modules
        found: set[str] | None = None
        calls = 0
        for caller in modules:
            for call in ast.walk(caller.tree):
                if not isinstance(call, ast.Call) or _called_name(call) != function:
                    continue
                argument = next((k.value for k in call.keywords if k.arg == parameter), None)
                if argument is None and position is not None and position < len(call.args):
                    argument = call.args[position]
                if argument is None:
                    continue
                calls += 1
                values = self.resolve(caller, argument, call, depth + 1)
                if values is None:
                    return None
                found = (found or set()) | values
        return found if calls else None


def _dotted(root: Path, path: Path) -> str:
    """Return the import name of the module at ``path`` in the package at ``root``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _union(*parts: set[str] | None) -> set[str] | None:
    if any(part is None for part in parts):
        return None
    return set().union(*(part for part in parts if part is not None))


def page_actions() -> set[str]:
    """Every action named in the first column of the tables under the audit events heading."""
    text = page_text()
    assert _AUDIT_HEADING in text
    section = text.split(_AUDIT_HEADING, 1)[1].split("\n## ", 1)[0]
    actions: set[str] = set()
    for line in section.splitlines():
        row = _ACTION_ROW.match(line)
        if row:
            actions |= set(re.findall(r"`([a-z_.]+)`", row[1]))
    return actions


@pytest.fixture(scope="module")
def written() -> AuditActions:
    return AuditActions(SOURCE)


def test_op_6_every_audit_action_in_the_source_can_be_told(written: AuditActions) -> None:
    """An action passed in a way this cannot follow must be made plain, or taught here."""
    assert not written.unresolved
    assert {"sign_in", "account.locked", "password.reset", "two_step.toggled"} <= written.actions


def test_op_6_every_audit_action_is_on_the_page(written: AuditActions) -> None:
    missing = sorted(written.actions - page_actions())
    assert not missing, f"add these audit actions to docs/security.md: {missing}"


def test_op_5_log_levels_and_hooks_name_only_actions_the_library_writes(
    written: AuditActions,
) -> None:
    """A renamed action must not leave a WARNING level or a hook's kind listening to nothing."""
    named = set(WARNING_ACTIONS) | {action for kind in KINDS for action in kind.actions}
    assert named <= written.actions, sorted(named - written.actions)


def test_op_6_the_page_lists_no_action_the_library_does_not_write(written: AuditActions) -> None:
    stale = sorted(page_actions() - written.actions)
    assert not stale, f"docs/security.md lists actions nothing writes: {stale}"


def test_the_finder_follows_parameters_helpers_and_tables(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(
        "TABLE = {1: 'link.refused', 2: 'device.refused'}\n"
        "_DONE = 'flow.done'\n"
        "def _event(*, on: bool) -> str:\n"
        "    return 'thing.on' if on else 'thing.off'\n"
        "def acting(deps, token, event):\n"
        "    audit(uow, event, at=now)\n"
        "def one(deps):\n"
        "    acting(deps, 't', 'card.added')\n"
        "    acting(deps, 't', event='card.removed')\n"
        "def two(deps, purpose):\n"
        "    action = TABLE[purpose]\n"
        "    audit(uow, action, at=now)\n"
        "    audit(uow, _DONE)\n"
        "    audit(uow, _event(on=True))\n"
        "    uow.audit.append(AuditEvent(id='1', action='direct.event'))\n",
        encoding="utf-8",
    )
    (tmp_path / "other.py").write_text(
        f"from {tmp_path.name}.flows import _DONE, _event\n"
        "def three(uow):\n"
        "    audit(uow, _DONE)\n"
        "    audit(uow, _event(on=False))\n",
        encoding="utf-8",
    )
    found = AuditActions(tmp_path)
    assert not found.unresolved
    assert found.actions == {
        "card.added",
        "card.removed",
        "link.refused",
        "device.refused",
        "flow.done",
        "thing.on",
        "thing.off",
        "direct.event",
    }


def test_the_finder_reports_what_it_cannot_follow(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(
        "def go(deps, name):\n    audit(uow, name.upper(), at=now)\n", encoding="utf-8"
    )
    found = AuditActions(tmp_path)
    assert found.unresolved == ["flows.py:2: name.upper()"]
    assert found.actions == set()
