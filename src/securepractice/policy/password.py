"""The password policy: pure checks that report every violated rule at once.

Rules PW-1 to PW-5, PW-8 and PW-10 of SPEC.md. A password is normalised with
Unicode NFKC before anything else, so that "Café" typed on a keyboard that
sends a combining accent is the same password as one that sends "é".

Character classes (PW-2), after normalisation:

* lower-case letter: Unicode category ``Ll``;
* upper-case letter: ``Lu`` or ``Lt`` (title case, such as "ǅ");
* digit: a decimal digit, category ``Nd`` (NFKC turns full-width digits
  into ASCII ones);
* special: any character that is neither a letter (``L*``), nor a decimal
  digit, nor a combining mark (``M*``, which only modifies the character
  before it): punctuation, symbols, spaces, and other numbers such as "½".

Letters without case (Chinese, Arabic, Hebrew...) are letters, so they count
towards no class. Control characters (NUL among them), line separators, lone
surrogates, bidirectional controls and invisible format characters are
refused, as in every text the library takes (`securepractice.policy.text`):
they cannot be typed reliably, cannot all be encoded, or change how the
password looks on screen.
"""

from __future__ import annotations

import hmac
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from securepractice.clock import require_utc
from securepractice.errors import InvalidInput
from securepractice.policy.compromised import CompromisedCheckFailed
from securepractice.policy.text import MAX_COMPOSITION_RATIO, CharacterClass, refused_characters
from securepractice.settings import PasswordRules

if TYPE_CHECKING:
    from pathlib import Path

    from securepractice.policy.hashing import PasswordHasher

__all__ = [
    "MAX_COMPOSITION_RATIO",
    "CompromisedPasswordFile",
    "CompromisedPasswords",
    "PasswordPolicy",
    "PasswordReport",
    "Violation",
    "check_limit",
    "normalize_password",
    "password_expired",
    "password_expires_at",
    "require_password_text",
    "too_long_to_check",
]

#: The character classes a password may not hold (IN-1): those that cannot be
#: typed reliably, cannot be encoded, or change how the password looks.
#: Private-use and unassigned code points are allowed: a keyboard can type them.
_REFUSED = frozenset(CharacterClass) - {CharacterClass.PRIVATE_USE, CharacterClass.UNASSIGNED}


def require_password_text(password: object, *, field: str = "password") -> str:
    """Return ``password`` if it is text; raise `InvalidInput` (``password.not_text``) if not.

    Checks the type alone, never normalising: what is too long is refused
    by length first (IN-3), so no input is normalised in full.
    """
    if not isinstance(password, str):
        raise InvalidInput(
            f"a password must be text (str), not {type(password).__name__}",
            field=field,
            code="password.not_text",
        )
    return password


def check_limit(rules: PasswordRules) -> int:
    """Return the longest input, before normalising, that the policy could accept (IN-3).

    NFKC shrinks a string by at most `MAX_COMPOSITION_RATIO`, so anything
    longer than ``max_length`` times that was never anyone's password.
    """
    return rules.max_length * MAX_COMPOSITION_RATIO


def too_long_to_check(password: object, rules: PasswordRules, *, field: str = "password") -> bool:
    """Return whether ``password`` is too long to be anyone's, without normalising it (IN-3).

    Such input is refused with no normalisation or hashing spent on it.
    Raises `InvalidInput` (``password.not_text``) for what is not text.
    """
    return len(require_password_text(password, field=field)) > check_limit(rules)


def normalize_password(password: str, *, field: str = "password") -> str:
    """Return the NFKC form of ``password``: the form that is checked, counted and hashed.

    Idempotent: normalising twice gives the same string as normalising once.
    """
    return unicodedata.normalize("NFKC", require_password_text(password, field=field))


@attrs.frozen
class Violation:
    """One broken rule: a stable ``code`` for programs and a ``message`` for people."""

    code: str
    message: str


@attrs.frozen
class PasswordReport:
    """The outcome of a password check: every violation, in the order of the instructions."""

    violations: tuple[Violation, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the password passed every rule."""
        return not self.violations

    @property
    def codes(self) -> tuple[str, ...]:
        """The codes of the violations, for programs."""
        return tuple(v.code for v in self.violations)

    def __bool__(self) -> bool:
        return self.ok


@runtime_checkable
class CompromisedPasswords(Protocol):
    """A source of known-compromised passwords (PW-10), for the NIST profile.

    Two are shipped: a file (`CompromisedPasswordFile`) and a k-anonymity
    range API reached through the application's HTTP call
    (`~securepractice.policy.compromised.CompromisedPasswordRange`); one of
    one's own may sit over any breach corpus. It is given the normalised
    password. When it cannot answer it raises
    `~securepractice.policy.compromised.CompromisedCheckFailed`.
    """

    def is_compromised(self, password: str) -> bool:
        """Return whether ``password`` is known to have been compromised."""
        ...


class CompromisedPasswordFile:
    """Known-compromised passwords read from a newline-separated UTF-8 file you supply.

    Entries are compared after NFKC normalisation and case folding, so
    "PASSWORD1!" is caught by a list holding "password1!". Blank lines are
    ignored. The file is read once, when this object is built.
    """

    def __init__(self, path: Path | str) -> None:
        from pathlib import Path  # noqa: PLC0415 - only this adapter touches files

        with Path(path).open(encoding="utf-8", errors="surrogateescape") as lines:
            self._known = frozenset(
                normalize_password(line.rstrip("\r\n")).casefold()
                for line in lines
                if line.strip("\r\n")
            )

    def __len__(self) -> int:
        return len(self._known)

    def is_compromised(self, password: str) -> bool:
        """Return whether the list holds ``password``."""
        return normalize_password(password).casefold() in self._known

    def __repr__(self) -> str:
        return f"CompromisedPasswordFile({len(self._known)} entries)"


def _is_lower(ch: str) -> bool:
    return unicodedata.category(ch) == "Ll"


def _is_upper(ch: str) -> bool:
    return unicodedata.category(ch) in {"Lu", "Lt"}


def _is_digit(ch: str) -> bool:
    return unicodedata.category(ch) == "Nd"


def _is_special(ch: str) -> bool:
    category = unicodedata.category(ch)
    return not (category.startswith(("L", "M")) or category == "Nd")


#: The four character classes of PW-2: code, what the instructions call it, test.
_CLASSES: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
    ("password.no_lowercase", "a lower-case letter", _is_lower),
    ("password.no_uppercase", "an upper-case letter", _is_upper),
    ("password.no_digit", "a number", _is_digit),
    (
        "password.no_special",
        "a special character such as punctuation, a symbol or a space",
        _is_special,
    ),
)


@attrs.frozen
class PasswordPolicy:
    """Checks new passwords against one profile of `PasswordRules`.

    ``PasswordPolicy()`` is the portal's own policy; ``PasswordPolicy.nist()``
    follows NIST SP 800-63B and needs a `CompromisedPasswords` source.
    """

    rules: PasswordRules = PasswordRules.PORTAL
    compromised: CompromisedPasswords | None = None

    def __attrs_post_init__(self) -> None:
        if self.rules.screen_compromised and self.compromised is None:
            raise InvalidInput(
                f"the {self.rules.name} profile screens against known-compromised passwords:"
                " give a CompromisedPasswords source (Portal(compromised=...))",
                field="compromised",
                code="settings.no_compromised_source",
            )

    @classmethod
    def nist(cls, compromised: CompromisedPasswords) -> PasswordPolicy:
        """Build the NIST SP 800-63B profile (PW-10) over a compromised-password source."""
        return cls(PasswordRules.NIST, compromised)

    @property
    def instructions(self) -> tuple[str, ...]:
        """The "Password Instructions" a form shows beside the password fields."""
        rules = self.rules
        lines = [
            f"Use at least {rules.min_length} and at most {rules.max_length} characters.",
        ]
        if rules.require_classes:
            lines.append(
                "Include at least one character from each of these four classes: "
                + "; ".join(what for _, what, _ in _CLASSES)
                + "."
            )
        if rules.screen_compromised:
            lines.append("Do not use a password that is known to have been exposed in a breach.")
        if rules.history:
            lines.append(f"Do not reuse any of your last {rules.history} passwords.")
        if rules.max_age is not None:
            lines.append(f"Your password expires {rules.max_age.days} days after you set it.")
        lines.append("Type the same password again in the re-enter field.")
        return tuple(lines)

    def check(
        self,
        password: str,
        confirmation: str | None = None,
        *,
        history: Iterable[str] = (),
        hasher: PasswordHasher | None = None,
    ) -> PasswordReport:
        """Check a new password and report every rule it breaks (PW-8).

        ``confirmation`` is the re-entered password (PW-3); leave it out to
        check the password alone. ``history`` holds the stored hashes of the
        user's previous passwords, the current one included (PW-4); checking
        it needs the ``hasher`` that made them, and is skipped when the other
        rules already fail, so that no hashing is spent on a refused password.
        A compromised-password source that cannot answer gives
        ``password.check_unavailable``: the password is refused for now.
        """
        rules = self.rules
        if too_long_to_check(password, rules):
            return PasswordReport((self._too_long(),))
        normalized = normalize_password(password)
        violations = self._composition(normalized)
        if confirmation is not None and not _same(normalized, confirmation, rules):
            violations.append(
                Violation("password.mismatch", "The two passwords you typed do not match.")
            )
        if not violations:
            violations.extend(self._screen(normalized))
        stored = tuple(history)[: rules.history] if rules.history else ()
        if not violations and stored:
            if hasher is None:
                msg = "checking password history needs the PasswordHasher that made it"
                raise InvalidInput(msg, field="hasher", code="password.history_needs_hasher")
            if hasher.matches_any(normalized, stored):
                violations.append(
                    Violation(
                        "password.reused",
                        f"Your new password must differ from your last {rules.history} passwords.",
                    )
                )
        return PasswordReport(tuple(violations))

    def _screen(self, normalized: str) -> tuple[Violation, ...]:
        """Ask the compromised-password source; a source that cannot answer refuses for now.

        A new password the source could not check is not taken (RC-3): the
        NIST profile rests on the check, and the user can try again soon.
        """
        if self.compromised is None:
            return ()
        try:
            listed = self.compromised.is_compromised(normalized)
        except CompromisedCheckFailed:
            return (
                Violation(
                    "password.check_unavailable",
                    "We could not check this password against the list of exposed passwords"
                    " just now, so nothing was changed. Try again in a few minutes.",
                ),
            )
        if not listed:
            return ()
        return (
            Violation(
                "password.compromised",
                "This password is known to have been exposed in a breach; choose another.",
            ),
        )

    def _too_long(self) -> Violation:
        return Violation(
            "password.too_long",
            f"Use at most {self.rules.max_length} characters.",
        )

    def _composition(self, normalized: str) -> list[Violation]:
        rules = self.rules
        violations: list[Violation] = []
        if _REFUSED.intersection(refused_characters(normalized)):
            violations.append(
                Violation(
                    "password.invalid_character",
                    "Remove control characters, invisible characters and direction marks.",
                )
            )
        length = len(normalized)
        if length < rules.min_length:
            violations.append(
                Violation(
                    "password.too_short",
                    f"Use at least {rules.min_length} characters (you typed {length}).",
                )
            )
        elif length > rules.max_length:
            violations.append(self._too_long())
        if rules.require_classes:
            violations.extend(
                Violation(code, f"Include {what}.")
                for code, what, belongs in _CLASSES
                if not any(belongs(ch) for ch in normalized)
            )
        return violations


def _same(normalized: str, confirmation: str, rules: PasswordRules) -> bool:
    """Whether the re-entry is the password; one too long to be it is not normalised (IN-3)."""
    if too_long_to_check(confirmation, rules, field="confirmation"):
        return False
    return hmac.compare_digest(
        normalized.encode("utf-8", "surrogatepass"),
        normalize_password(confirmation, field="confirmation").encode("utf-8", "surrogatepass"),
    )


def password_expires_at(set_at: datetime, rules: PasswordRules) -> datetime | None:
    """Return when a password set at ``set_at`` expires, or None if it never does (PW-5)."""
    set_at = require_utc(set_at, field="set_at")
    return None if rules.max_age is None else set_at + rules.max_age


def password_expired(set_at: datetime, now: datetime, rules: PasswordRules) -> bool:
    """Return whether a password set at ``set_at`` has expired at ``now`` (PW-5).

    The password expires at the very instant ``max_age`` after it was set.
    """
    expires = password_expires_at(set_at, rules)
    return expires is not None and require_utc(now) >= expires
