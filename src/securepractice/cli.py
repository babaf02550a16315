"""The ``securepractice`` command.

``securepractice check-password`` checks a password against the policy. The
password is read from a hidden prompt, or from standard input when that is
not a terminal; never from the command line, where other users of the
machine could see it in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

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
