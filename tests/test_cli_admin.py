"""The ``securepractice admin`` command: the operator's support work on a SQLite file (OP-1).

Each command needs the portal's secret (``PORTAL_SECRET`` or
``--secret-file``) and its database; without either it exits 2 and does
nothing. A refusal of the library exits 1 with its code.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import CHEAP_HASHING, SECRET
from securepractice import LinkRules, Messaging, Outbox, Portal, Role, Settings, cli
from securepractice.messaging.ports import EmailSender
from securepractice.records import AuditEvent, RegistrationStatus, User
from securepractice.testing import World

HEX = SECRET.reveal().hex()
NEW = "new.helper@portal.example"


class Office:
    """A portal database in a file: a practice, a locked user, and one member of staff."""

    def __init__(self, path: Path) -> None:
        self.path = path
        settings = Settings(
            secret=SECRET, hashing=CHEAP_HASHING, links=LinkRules(base_url="https://p.example")
        )
        with Portal.sqlite(path, messaging=Messaging.using(Outbox()), settings=settings) as portal:
            world = World(portal.deps)
            practice = world.practice("Alpha Dental", practice_id="practice-a")
            self.user = world.user("user@alpha.example", practice=practice, locked=True)
            self.staff = world.user("help@portal.example", roles=(Role.SUPPORT,))

    def user_by_id(self, user_id: str) -> User:
        with self._portal() as portal, portal.deps.unit() as uow:
            user = uow.users.get(user_id)
        assert user is not None
        return user

    def user_by_email(self, email: str) -> User | None:
        with self._portal() as portal, portal.deps.unit() as uow:
            return uow.users.get_by_email(email)

    def events(self, action: str) -> list[AuditEvent]:
        return [e for e in self.all_events() if e.action == action]

    def all_events(self) -> list[AuditEvent]:
        with self._portal() as portal, portal.deps.unit() as uow:
            return list(uow.audit.events())

    def _portal(self) -> Portal:
        settings = Settings(secret=SECRET, hashing=CHEAP_HASHING)
        return Portal.sqlite(self.path, messaging=Messaging.using(Outbox()), settings=settings)


@pytest.fixture
def office(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Office:
    monkeypatch.setenv("PORTAL_SECRET", HEX)
    return Office(tmp_path / "portal.db")


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Outbox]:
    """Every email the command sends, instead of the SMTP server of ``--smtp``."""
    sent = Outbox()
    given: list[argparse.Namespace] = []

    def sender(args: argparse.Namespace) -> EmailSender:
        given.append(args)
        return sent

    monkeypatch.setattr(cli, "_email_sender", sender)
    yield sent
    assert all(args.smtp == "mail.example:587" for args in given)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(list(argv), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def admin(office: Office, *argv: str) -> tuple[int, str, str]:
    return run("admin", "--database", str(office.path), *argv)


CREATE = (
    "create-support",
    NEW,
    "--first-name",
    "Ann",
    "--last-name",
    "Lee",
    "--by",
    "jane",
    "--base-url",
    "https://portal.example",
    "--smtp",
    "mail.example:587",
    "--mail-from",
    "portal@portal.example",
)


def test_op1_create_support_emails_the_invitation_and_prints_no_link(
    office: Office, outbox: Outbox
) -> None:
    status, out, err = admin(office, *CREATE)
    assert (status, err) == (0, "")
    invitee = office.user_by_email(NEW)
    assert invitee is not None
    assert invitee.roles == frozenset({Role.SUPPORT})
    assert invitee.status is RegistrationStatus.INVITED
    assert (invitee.first_name, invitee.last_name) == ("Ann", "Lee")
    link = outbox.last_link(NEW)
    assert link.startswith("https://portal.example/")
    assert link not in out
    assert "token" not in out
    assert invitee.id in out
    [event] = office.events("support_staff.invited")
    assert event.actor_id == "operator:jane"


def test_op1_create_support_needs_the_mail_server(office: Office) -> None:
    with pytest.raises(SystemExit) as usage:
        admin(office, *CREATE[: CREATE.index("--smtp")])
    assert usage.value.code == 2
    assert office.user_by_email(NEW) is None


@pytest.mark.usefixtures("outbox")
def test_op1_list_support_prints_the_staff(office: Office) -> None:
    admin(office, *CREATE)
    status, out, _ = admin(office, "list-support", "--by", "jane")
    assert status == 0
    header, *rows = out.splitlines()
    assert header.split() == ["USER", "ID", "EMAIL", "NAME", "STATUS"]
    assert [row.split()[1] for row in rows] == ["help@portal.example", NEW]
    assert rows[0].split()[-1] == "registered"
    assert rows[1].split()[-1] == "invited"
    assert "user@alpha.example" not in out


def test_op1_unlock_and_the_user_manager_role(office: Office) -> None:
    """OP-1, LK-2, UM-8: each command acts, prints what it did, and is audited by its operator."""
    assert admin(office, "unlock", office.user.id, "--by", "jane")[0] == 0
    assert not office.user_by_id(office.user.id).locked
    assert admin(office, "grant-manager", office.user.id, "--by", "jane")[0] == 0
    assert Role.USER_MANAGER in office.user_by_id(office.user.id).roles
    status, out, _ = admin(office, "revoke-manager", office.user.id, "--by", "jane")
    assert status == 0
    assert office.user.id in out
    assert Role.USER_MANAGER not in office.user_by_id(office.user.id).roles
    for action in ("account.unlocked", "role.granted", "role.revoked"):
        [event] = office.events(action)
        assert event.actor_id == "operator:jane"


@pytest.mark.usefixtures("outbox")
def test_op1_deactivate_support_but_never_the_last_active(office: Office) -> None:
    status, _, err = admin(office, "deactivate-support", office.staff.id, "--by", "jane")
    assert status == 1
    assert "support_staff.last_active" in err
    assert not office.user_by_id(office.staff.id).deactivated
    admin(office, *CREATE)
    invitee = office.user_by_email(NEW)
    assert invitee is not None
    assert admin(office, "deactivate-support", invitee.id, "--by", "jane")[0] == 0
    assert office.user_by_id(invitee.id).deactivated


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (("unlock", "no-such-user", "--by", "jane"), "user.not_found"),
        (("unlock", "STAFF", "--by", "jane"), "permission.not_practice_user"),
        (("unlock", "USER", "--by", "ja\u202ene"), "text.bidi_control"),
        (("grant-manager", "USER", "--by", " "), "text.empty"),
    ],
)
def test_op1_a_refusal_exits_1_with_its_code(
    office: Office, argv: tuple[str, ...], code: str
) -> None:
    ids = {"STAFF": office.staff.id, "USER": office.user.id}
    status, out, err = admin(office, *(ids.get(a, a) for a in argv))
    assert (status, out) == (1, "")
    assert code in err
    assert office.user_by_id(office.user.id).locked
    assert Role.USER_MANAGER not in office.user_by_id(office.user.id).roles


def test_op1_without_the_secret_nothing_is_done(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PORTAL_SECRET")
    status, out, err = admin(office, "unlock", office.user.id, "--by", "jane")
    assert (status, out) == (2, "")
    assert "PORTAL_SECRET" in err
    assert office_unchanged(office)


@pytest.mark.parametrize("secret", ["not hex", "00" * 32, "ab"])
def test_op1_a_wrong_secret_is_refused(
    office: Office, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    """DP-2: a secret that is not hex, another one, or a short one: exit 2, nothing done."""
    monkeypatch.setenv("PORTAL_SECRET", secret)
    status, out, err = admin(office, "unlock", office.user.id, "--by", "jane")
    assert (status, out) == (2, "")
    assert "Nothing was done" in err
    assert secret not in err or secret == "ab"
    monkeypatch.setenv("PORTAL_SECRET", HEX)
    assert office_unchanged(office)


def test_op1_the_secret_comes_from_a_file(
    office: Office, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PORTAL_SECRET")
    secret_file = tmp_path / "portal.secret"
    secret_file.write_text(HEX + "\n", encoding="ascii")
    status = admin(office, "--secret-file", str(secret_file), "unlock", office.user.id, "--by", "j")
    assert status[0] == 0
    monkeypatch.setenv("PORTAL_SECRET", HEX)
    assert not office.user_by_id(office.user.id).locked


def test_op1_an_unreadable_secret_file_exits_2(office: Office, tmp_path: Path) -> None:
    missing = str(tmp_path / "none")
    status, out, err = admin(
        office, "--secret-file", missing, "unlock", office.user.id, "--by", "j"
    )
    assert (status, out) == (2, "")
    assert "secret file" in err
    assert office_unchanged(office)


def test_op1_the_secret_is_never_taken_from_the_command_line(office: Office) -> None:
    with pytest.raises(SystemExit) as usage:
        admin(office, "--secret", HEX, "unlock", office.user.id, "--by", "jane")
    assert usage.value.code == 2
    assert office_unchanged(office)


def test_op1_without_a_database_nothing_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_SECRET", HEX)
    status, out, err = run("admin", "list-support", "--by", "jane")
    assert (status, out) == (2, "")
    assert "--database" in err
    missing = tmp_path / "missing.db"
    status, out, err = run("admin", "--database", str(missing), "list-support", "--by", "jane")
    assert (status, out) == (2, "")
    assert "no database" in err
    assert not missing.exists()  # never made by the command


def test_op1_database_and_postgres_are_one_choice(office: Office) -> None:
    with pytest.raises(SystemExit) as usage:
        admin(office, "--postgres", "dbname=portal", "list-support", "--by", "jane")
    assert usage.value.code == 2


def office_unchanged(office: Office) -> bool:
    user = office.user_by_id(office.user.id)
    return user.locked and not office.events("account.unlocked")


def test_op2_prune_prints_its_counts_and_keeps_the_audit(office: Office) -> None:
    before = len(office.all_events())
    status, out, err = admin(office, "prune")
    assert (status, err) == (0, "")  # not a terminal: no progress line
    assert "sessions: " in out
    assert "the audit log is kept whole" in out
    assert len(office.all_events()) == before + 1  # one housekeeping.pruned event


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_op2_prune_on_a_terminal_redraws_one_progress_line(office: Office) -> None:
    err = Terminal()
    status = cli.main(
        ["admin", "--database", str(office.path), "prune"], stdout=io.StringIO(), stderr=err
    )
    assert status == 0
    drawn = err.getvalue()
    assert drawn.startswith("\rpruning ")
    assert drawn.endswith("\n")
    assert drawn.count("\n") == 1


def test_op3_export_audit_writes_json_lines_to_a_new_file(office: Office, tmp_path: Path) -> None:
    admin(office, "unlock", office.user.id, "--by", "jane")
    target = tmp_path / "audit.jsonl"
    status, out, err = admin(
        office, "export-audit", "--practice", "practice-a", "--output", str(target)
    )
    assert (status, out) == (0, "")
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert lines
    assert {line["practice_id"] for line in lines} == {"practice-a"}
    assert "account.unlocked" in {line["action"] for line in lines}
    assert f"Exported {len(lines)} audit events." in err
    assert target.stat().st_mode & 0o077 == 0
    again = admin(office, "export-audit", "--output", str(target))
    assert again[0] == 2  # never over an existing file
    assert len(target.read_text(encoding="utf-8").splitlines()) == len(lines)


def test_op3_export_audit_by_time_to_standard_output(office: Office) -> None:
    admin(office, "unlock", office.user.id, "--by", "jane")
    before = len(office.all_events())
    status, out, _ = admin(office, "export-audit", "--since", "2000-01-01T00:00:00+00:00")
    assert status == 0
    assert out.count("\n") == before > 0
    status, out, _ = admin(office, "export-audit", "--until", "2000-01-01T00:00:00+00:00")
    assert (status, out) == (0, "")


@pytest.mark.parametrize(
    "argv",
    [
        ("--since", "yesterday"),
        ("--since", "2026-01-02T00:00:00+00:00", "--until", "2026-01-01T00:00:00+00:00"),
        ("--since", "2026-01-01T00:00:00"),
    ],
)
def test_op3_a_bad_time_range_does_nothing(office: Office, argv: tuple[str, ...]) -> None:
    try:
        status, out, _ = admin(office, "export-audit", *argv)
    except SystemExit as usage:
        status, out = int(str(usage.code)), ""
    assert status in {1, 2}
    assert out == ""
