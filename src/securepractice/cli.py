"""The ``securepractice`` command.

``securepractice check-password`` checks a password against the policy. The
password is read from a hidden prompt, or from standard input when that is
not a terminal; never from the command line, where other users of the
machine could see it in the process list.

``securepractice check-attachments FILE...`` checks files as the attachments
of one message: a table of each file's verdict and reasons, then the
message's total against the size limit.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from securepractice.policy.attachments import Attachment, AttachmentPolicy
from securepractice.policy.password import CompromisedPasswordFile, PasswordPolicy

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="securepractice", description="Account-security rules of a practice portal."
    )
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
    return parser


def main(
    argv: list[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Run the command with ``argv`` (default: the process arguments); return the exit status."""
    args = _parser().parse_args(argv)
    status: int = args.handler(args, stdin or sys.stdin, stdout or sys.stdout)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
