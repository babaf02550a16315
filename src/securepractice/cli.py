"""The ``securepractice`` command.

``securepractice check-password`` checks a password against the policy. The
password is read from a hidden prompt, or from standard input when that is
not a terminal; never from the command line, where other users of the
machine could see it in the process list.

``securepractice check-attachments FILE...`` checks files as the attachments
of one message: a table of each file's verdict and reasons, then the
message's total against the size limit.

``securepractice admin`` is the operator's support work (OP-1, OP-2, OP-3):
support staff, unlocking, the User Manager role, housekeeping and the
audit export, on the portal's own database. It needs the portal's secret,
from the environment variable ``PORTAL_SECRET`` (hex) or ``--secret-file``,
never from the command line; without the secret or the database it exits 2
and does nothing. A refusal of the library exits 1 with its code.

``securepractice --version`` prints the installed version.
"""

from __future__ import annotations

import argparse
import getpass
import importlib.metadata
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from securepractice.errors import DeliveryFailed, SecurePracticeError
from securepractice.messaging.ports import EmailMessage, EmailSender, Messaging
from securepractice.policy.attachments import Attachment, AttachmentPolicy
from securepractice.policy.password import CompromisedPasswordFile, PasswordPolicy
from securepractice.secret import Secret
from securepractice.settings import LinkRules, Settings

if TYPE_CHECKING:
    from securepractice.operations import PruneProgress
    from securepractice.portal import Portal
    from securepractice.records import User

__all__ = ["main"]


def _read_password(stdin: TextIO) -> str:
    if stdin.isatty():
        return getpass.getpass("Password (not shown): ")
    line = stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")


def _check_password(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    if args.profile == "nist":
        if args.compromised is None:
            print("The nist profile needs --compromised FILE.", file=sys.stderr)
            return 2
        policy = PasswordPolicy.nist(CompromisedPasswordFile(args.compromised))
    else:
        policy = PasswordPolicy()
    report = policy.check(_read_password(stdin))
    if report.ok:
        print("The password meets every rule.", file=stdout)
    else:
        print("The password breaks these rules:", file=stdout)
        for violation in report.violations:
            print(f"  - {violation.message} ({violation.code})", file=stdout)
    print("\nPassword instructions:", file=stdout)
    for line in policy.instructions:
        print(f"  {line}", file=stdout)
    return 0 if report.ok else 1


def _shown(name: str) -> str:
    return name if name.isprintable() else ascii(name)


def _check_attachments(args: argparse.Namespace, _stdin: TextIO, stdout: TextIO) -> int:
    report = AttachmentPolicy().check(Attachment.from_path(path) for path in args.files)
    rows = [
        (
            _shown(f.name),
            "unknown" if f.size is None else f"{f.size:,}",
            "ok" if f.ok else "refused",
            [f"{p.code}: {p.message}" for p in f.problems],
        )
        for f in report.files
    ]
    name_width = max(len("FILE"), *(len(row[0]) for row in rows))
    size_width = max(len("BYTES"), *(len(row[1]) for row in rows))
    indent = " " * (name_width + size_width + 13)
    print(f"{'FILE':<{name_width}}  {'BYTES':>{size_width}}  VERDICT  REASONS", file=stdout)
    for name, size, verdict, reasons in rows:
        first, *more = reasons or [""]
        print(
            f"{name:<{name_width}}  {size:>{size_width}}  {verdict:<7}  {first}".rstrip(),
            file=stdout,
        )
        for reason in more:
            print(f"{indent}{reason}", file=stdout)
    within = "within" if report.total_bytes <= report.max_bytes else "over"
    print(
        f"\nMessage total: {report.total_bytes:,} of {report.max_bytes:,} bytes allowed"
        f" ({within} the limit)",
        file=stdout,
    )
    for problem in report.problems:
        print(f"  {problem.code}: {problem.message}", file=stdout)
    print("The message passes." if report.ok else "The message is refused.", file=stdout)
    return 0 if report.ok else 1


def _demo(_args: argparse.Namespace, _stdin: TextIO, stdout: TextIO) -> int:
    from securepractice.demo import run_demo  # noqa: PLC0415 - only the demo needs the portal

    return run_demo(stdout)


def version() -> str:
    """Return the installed version, or the source's when the package is not installed."""
    try:
        return importlib.metadata.version("securepractice")
    except importlib.metadata.PackageNotFoundError:
        from securepractice import __version__  # noqa: PLC0415 - only without an installation

        return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="securepractice", description="Account-security rules of a practice portal."
    )
    parser.add_argument("--version", action="version", version=f"securepractice {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check-password",
        help="check a password (read from a hidden prompt or standard input)",
        description="Check a password against the password policy. The password is read"
        " from a hidden prompt, or from standard input when it is not a terminal.",
    )
    check.add_argument(
        "--profile",
        choices=("portal", "nist"),
        default="portal",
        help="portal: the portal's own rules (default); nist: NIST SP 800-63B",
    )
    check.add_argument(
        "--compromised",
        metavar="FILE",
        help="a newline-separated list of known-compromised passwords (nist profile)",
    )
    check.set_defaults(handler=_check_password)
    attachments = commands.add_parser(
        "check-attachments",
        help="check files as the attachments of one message",
        description="Check files as the attachments of one SecureMail message: their"
        " names, types, content headers and archives, and their total size. Exits 0 when"
        " every file passes and the total is within the limit, 1 otherwise.",
    )
    attachments.add_argument("files", metavar="FILE", nargs="+", help="a file to attach")
    attachments.set_defaults(handler=_check_attachments)
    demo = commands.add_parser(
        "demo",
        help="play the portal's help pages through once: registration, sign-in, lockout, reset",
    )
    demo.set_defaults(handler=_demo)
    _admin_parser(commands)
    return parser


def main(
    argv: list[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command with ``argv`` (default: the process arguments); return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "admin":
        return _admin(args, stdout or sys.stdout, stderr or sys.stderr)
    status: int = args.handler(args, stdin or sys.stdin, stdout or sys.stdout)
    return status


# The operator's command, ``securepractice admin`` (OP-1, OP-2, OP-3).

#: The exit status of a command the library refused (a permission, a state, an input).
_REFUSED = 1
#: The exit status of a command that could not start: no secret, no database, a bad option.
_CANNOT_START = 2

_AdminHandler = Callable[["Portal", argparse.Namespace, TextIO, TextIO], int]


class _Undeliverable:
    """The channels of a command that sends nothing: a message is a failure, never printed."""

    def _refuse(self, channel: str) -> None:
        raise DeliveryFailed("this command sends no messages", channel=channel)

    def send_email(self, _message: EmailMessage) -> None:
        self._refuse("email")

    def send_sms(self, _message: object) -> None:
        self._refuse("sms")

    def place_call(self, _message: object) -> None:
        self._refuse("voice")


class _CannotStart(Exception):
    """The command cannot start; the message says why, in plain words."""


def _portal_secret(args: argparse.Namespace) -> Secret[bytes]:
    """Read the portal secret (hex) from ``--secret-file`` or ``PORTAL_SECRET``."""
    if args.secret_file is not None:
        try:
            given = Path(args.secret_file).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            msg = f"Cannot read the secret file: {type(error).__name__}."
            raise _CannotStart(msg) from None
        source = "The secret file"
    else:
        given = os.environ.get("PORTAL_SECRET", "")
        source = "PORTAL_SECRET"
        if not given.strip():
            msg = (
                "The portal's secret is needed: set PORTAL_SECRET (hex) or give"
                " --secret-file FILE. Nothing was done."
            )
            raise _CannotStart(msg)
    try:
        return Secret(bytes.fromhex(given.strip()))
    except ValueError:
        msg = f"{source} does not hold the portal's secret in hex. Nothing was done."
        raise _CannotStart(msg) from None


def _email_sender(args: argparse.Namespace) -> EmailSender:
    """Return the sender of ``--smtp``; ``SMTP_USERNAME`` and ``SMTP_PASSWORD`` sign in, if set."""
    from securepractice.messaging.smtp import SmtpEmailSender  # noqa: PLC0415 - loaded when used

    host, _, port = args.smtp.rpartition(":")
    if not host or not port.isdigit():
        host, port = args.smtp, ""
    username = os.environ.get("SMTP_USERNAME")
    password = os.environ.get("SMTP_PASSWORD")
    return SmtpEmailSender(
        host=host,
        port=int(port) if port else None,
        security=args.smtp_security,
        from_address=args.mail_from,
        username=username,
        password=None if password is None else Secret(password),
    )


def _open_portal(args: argparse.Namespace) -> Portal:
    """Open the portal's database with its secret, or say why the command cannot start."""
    from securepractice.portal import Portal  # noqa: PLC0415 - only the admin command needs it

    if args.database is None and args.postgres is None:
        msg = (
            "The portal's database is needed: give --database PATH (SQLite) or"
            " --postgres CONNINFO. Nothing was done."
        )
        raise _CannotStart(msg)
    secret = _portal_secret(args)
    if args.database is not None and not Path(args.database).is_file():
        msg = f"There is no database at {args.database}. Nothing was done."
        raise _CannotStart(msg)
    undeliverable = _Undeliverable()
    email = _email_sender(args) if getattr(args, "smtp", None) else undeliverable
    messaging = Messaging(email=email, sms=undeliverable, voice=undeliverable)
    settings = Settings(secret=secret, links=LinkRules(base_url=getattr(args, "base_url", None)))
    name = args.portal_name
    if args.database is not None:
        return Portal.sqlite(
            args.database, messaging=messaging, settings=settings, portal_name=name
        )
    return Portal.postgres(args.postgres, messaging=messaging, settings=settings, portal_name=name)


def _admin(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    try:
        portal = _open_portal(args)
    except _CannotStart as problem:
        print(problem, file=stderr)
        return _CANNOT_START
    except SecurePracticeError as error:
        print(f"The portal cannot open: {error}. Nothing was done.", file=stderr)
        return _CANNOT_START
    with portal:
        handler: _AdminHandler = args.admin_handler
        try:
            return handler(portal, args, stdout, stderr)
        except SecurePracticeError as error:
            print(f"Refused: {error}", file=stderr)
            return _REFUSED


def _create_support(portal: Portal, args: argparse.Namespace, stdout: TextIO, _e: TextIO) -> int:
    from securepractice import admin  # noqa: PLC0415 - only this command needs it

    user = admin.create_support_staff(
        portal, args.by, email=args.email, first_name=args.first_name, last_name=args.last_name
    )
    print(f"Invited {user.email} as support staff (user id {user.id}).", file=stdout)
    print("The invitation link was e-mailed to them; it is shown nowhere else.", file=stdout)
    return 0


def _list_support(portal: Portal, args: argparse.Namespace, stdout: TextIO, _e: TextIO) -> int:
    from securepractice import admin  # noqa: PLC0415 - only this command needs it

    staff = admin.list_support_staff(portal, args.by)
    rows = [
        (
            user.id,
            user.email,
            " ".join(n for n in (user.first_name, user.last_name) if n),
            "deactivated" if user.deactivated else "locked" if user.locked else user.status.value,
        )
        for user in staff
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(_STAFF_COLUMNS)]
    for row in (_STAFF_COLUMNS, *rows):
        print(
            "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)).rstrip(),
            file=stdout,
        )
    return 0


_STAFF_COLUMNS = ("USER ID", "EMAIL", "NAME", "STATUS")


#: The operator's actions on one user: the command, the function of `securepractice.admin`, help.
_ON_USER = (
    ("deactivate-support", "deactivate_support_staff", "deactivate a member of support staff"),
    ("unlock", "unlock", "unlock a practice user's account and clear its failure count"),
    ("grant-manager", "grant_user_manager", "give a practice user the User Manager role"),
    ("revoke-manager", "revoke_user_manager", "take the User Manager role from a practice user"),
)


def _on_user(command: str, function: str) -> _AdminHandler:
    """Return the handler of the operator's action ``function`` on the user of ``USER_ID``."""

    def handle(portal: Portal, args: argparse.Namespace, stdout: TextIO, _e: TextIO) -> int:
        from securepractice import admin  # noqa: PLC0415 - only these commands need it

        act: Callable[..., User] = getattr(admin, function)
        user = act(portal, args.by, user_id=args.user_id)
        print(f"{command}: done for user {user.id}.", file=stdout)
        return 0

    return handle


def _prune(portal: Portal, _args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    import attrs  # noqa: PLC0415 - only this command needs it

    from securepractice import operations  # noqa: PLC0415 - only this command needs it

    terminal = stderr.isatty()
    report = operations.prune(portal, progress=_progress_line(stderr) if terminal else None)
    if terminal:
        print(file=stderr)
    for kind, count in attrs.asdict(report).items():
        print(f"{kind.replace('_', ' ')}: {count}", file=stdout)
    print(f"Pruned {report.total} in all; the audit log is kept whole.", file=stdout)
    return 0


def _progress_line(stderr: TextIO) -> Callable[[PruneProgress], None]:
    """Return a callback that redraws one line on the terminal from each `PruneProgress`."""

    def draw(progress: PruneProgress) -> None:
        kind = progress.kind.replace("_", " ")
        stderr.write(
            f"\rpruning {kind}: {progress.removed:,} removed of {progress.examined:,} read\x1b[K"
        )
        stderr.flush()

    return draw


def _moment(value: str) -> datetime:
    """Read an ISO 8601 moment for ``--since`` and ``--until``."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        msg = f"not an ISO 8601 time with its zone, such as 2026-01-31T00:00:00+00:00: {value!r}"
        raise argparse.ArgumentTypeError(msg) from None


def _export_audit(portal: Portal, args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from securepractice import operations  # noqa: PLC0415 - only this command needs it

    window = {"since": args.since, "until": args.until, "practice_id": args.practice}
    if args.output is None:
        count = operations.export_audit(portal, stdout, **window)
    else:
        try:
            # Never over another file; readable by its owner only, as the log names people.
            handle = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as error:
            print(f"Cannot create {args.output}: {type(error).__name__}.", file=stderr)
            return _CANNOT_START
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            count = operations.export_audit(portal, out, **window)
    print(f"Exported {count} audit events.", file=stderr)
    return 0


def _admin_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = commands.add_parser(
        "admin",
        allow_abbrev=False,  # no --secret taken for --secret-file
        help="support work as the portal's operator, on its database and with its secret",
        description="Support work as the portal's operator: whoever holds the portal's"
        " secret and its database. The secret is read from the environment variable"
        " PORTAL_SECRET (hex) or from --secret-file, never from the command line. Exits 0"
        " when done, 1 when the library refused (with its code), 2 when the command could"
        " not start (no secret, no database, a bad option) and nothing was done.",
    )
    where = admin.add_mutually_exclusive_group()
    where.add_argument("--database", metavar="PATH", help="the portal's SQLite database")
    where.add_argument(
        "--postgres",
        metavar="CONNINFO",
        help="the portal's PostgreSQL database (keep its password in PGPASSWORD or ~/.pgpass)",
    )
    admin.add_argument("--secret-file", metavar="FILE", help="a file holding the secret in hex")
    admin.add_argument(
        "--portal-name", default="Practice Portal", help="the portal's name in messages"
    )
    work = admin.add_subparsers(dest="admin_command", required=True)

    create = work.add_parser(
        "create-support",
        help="invite a new member of support staff by email",
        description="Invite a new member of support staff. The invitation is e-mailed through"
        " --smtp (SMTP_USERNAME and SMTP_PASSWORD sign in, when set); the link is printed"
        " nowhere. They register from it like any user: phones, a code, the Terms, a password.",
    )
    create.add_argument("email", metavar="EMAIL")
    create.add_argument("--first-name", default="")
    create.add_argument("--last-name", default="")
    create.add_argument("--base-url", required=True, help="the portal's address, for the link")
    create.add_argument("--smtp", required=True, metavar="HOST[:PORT]", help="the mail server")
    create.add_argument("--smtp-security", choices=("starttls", "tls", "none"), default="starttls")
    create.add_argument("--mail-from", required=True, metavar="ADDRESS")
    _operator_name(create)
    create.set_defaults(admin_handler=_create_support)

    listing = work.add_parser("list-support", help="list the support staff")
    _operator_name(listing)
    listing.set_defaults(admin_handler=_list_support)

    for command, function, text in _ON_USER:
        one = work.add_parser(command, help=text)
        one.add_argument("user_id", metavar="USER_ID")
        _operator_name(one)
        one.set_defaults(admin_handler=_on_user(command, function))

    prune = work.add_parser("prune", help="remove expired sessions, links and codes (never audit)")
    prune.set_defaults(admin_handler=_prune)

    export = work.add_parser("export-audit", help="export the audit log as JSON Lines")
    export.add_argument("--since", type=_moment, metavar="ISO")
    export.add_argument("--until", type=_moment, metavar="ISO")
    export.add_argument("--practice", metavar="ID")
    export.add_argument("--output", metavar="FILE", help="a new file (default: standard output)")
    export.set_defaults(admin_handler=_export_audit)


def _operator_name(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--by", required=True, metavar="NAME", help="your name, kept by the audit as operator:NAME"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
