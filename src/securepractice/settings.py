"""Every number of the rules in one frozen, validated value.

`Settings` groups the numbers SPEC.md marks *default* by the part of the
library that uses them. Each group is a frozen attrs class with the spec's
defaults; change one with `attrs.evolve` or by passing a group of your own.
A value the rules cannot work with is refused when the group is built, with
a `SettingsError` naming the field, not later at run time.
"""

from __future__ import annotations

import enum
import ipaddress
import secrets
from collections.abc import Callable, Iterable
from datetime import timedelta
from string import Template
from typing import Any, ClassVar, TypeVar
from urllib.parse import SplitResult, urlsplit

import attrs

from securepractice.errors import SettingsError
from securepractice.keys import derive_key
from securepractice.messaging.templates import MessageTemplates
from securepractice.secret import Secret

__all__ = [
    "PHONE_CODE_NOTICE",
    "SEED_ATTACHMENT_EXTENSIONS",
    "AttachmentRules",
    "BillingRules",
    "HashParameters",
    "LinkRules",
    "Lockout",
    "PasswordRules",
    "SecondFactor",
    "Settings",
    "SignInRules",
    "VerificationRules",
]

T = TypeVar("T")

#: The attachment types of the portal's FAQ, in its order. The FAQ lists
#: ``.text`` twice; the duplicate is kept here so the list reads as the seed.
SEED_ATTACHMENT_EXTENSIONS: tuple[str, ...] = (
    ".ai", ".aif", ".aifc", ".aiff", ".avi", ".bmp", ".cpt", ".dcm", ".dex", ".doc",
    ".docx", ".ds2", ".eml", ".eps", ".gif", ".hqx", ".jpe", ".jpeg", ".jpg", ".log",
    ".mid", ".midi", ".mif", ".mov", ".movie", ".mp2", ".mp3", ".mp4", ".mpe", ".mpeg",
    ".mpga", ".obj", ".oda", ".pdf", ".png", ".ppt", ".pptx", ".ps", ".qt", ".ra",
    ".ram", ".rm", ".rpm", ".rtf", ".rtx", ".rv", ".smi", ".smil", ".stl", ".text",
    ".tif", ".tiff", ".txt", ".text", ".vcard", ".vcf", ".wav", ".wbxml", ".wmlc", ".wmv",
    ".word", ".xl", ".xls", ".xml", ".xsl", ".xlsx", ".zip",
)  # fmt: skip

MIB = 1024 * 1024
_REGION_CODE_LENGTH = 2
_MIN_CODE_KEY_BYTES = 32


def _check(predicate: Callable[[Any], bool], requirement: str) -> Callable[[Any, Any, Any], None]:
    """Build an attrs validator that raises `SettingsError` naming the field."""

    def validate(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not predicate(value):
            raise SettingsError(attribute.name, f"must be {requirement}, got {value!r}")

    return validate


def _whole(minimum: int) -> Callable[[Any, Any, Any], None]:
    return _check(
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
        f"a whole number of at least {minimum}",
    )


def _member(kind: type[enum.Enum]) -> Callable[[Any, Any, Any], None]:
    names = ", ".join(f"{kind.__name__}.{member.name}" for member in kind)
    return _check(lambda v: isinstance(v, kind), f"one of {names}")


_positive_duration = _check(
    lambda v: isinstance(v, timedelta) and v > timedelta(0), "a positive timedelta"
)
_optional_positive_duration = _check(
    lambda v: v is None or (isinstance(v, timedelta) and v > timedelta(0)),
    "None or a positive timedelta",
)


def _frozenset_of_extensions(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.lower() for v in values)


@attrs.frozen(kw_only=True)
class PasswordRules:
    """The password policy's numbers and switches (PW-1, PW-2, PW-4, PW-5, PW-10).

    Two named profiles exist: `PasswordRules.PORTAL` (the portal's own rules,
    the default) and `PasswordRules.NIST` (NIST SP 800-63B).
    """

    PORTAL: ClassVar[PasswordRules]
    NIST: ClassVar[PasswordRules]

    name: str = "portal"
    min_length: int = attrs.field(default=8, validator=_whole(1))
    max_length: int = attrs.field(default=256, validator=_whole(1))
    require_classes: bool = True
    history: int = attrs.field(default=6, validator=_whole(0))
    max_age: timedelta | None = attrs.field(
        default=timedelta(days=90), validator=_optional_positive_duration
    )
    screen_compromised: bool = False

    def __attrs_post_init__(self) -> None:
        if self.max_length < self.min_length:
            raise SettingsError("max_length", "must not be smaller than min_length")


PasswordRules.PORTAL = PasswordRules()
PasswordRules.NIST = PasswordRules(
    name="nist-800-63b",
    min_length=15,
    require_classes=False,
    max_age=None,
    screen_compromised=True,
)


@attrs.frozen(kw_only=True)
class HashParameters:
    """argon2id cost parameters (PW-7) and how many hashes may run at once.

    The default is argon2-cffi's RFC 9106 low-memory profile. Each hash holds
    ``memory_cost`` KiB while it runs, so ``max_concurrent`` bounds the
    memory a burst of sign-ins can take.
    """

    RFC_9106_LOW_MEMORY: ClassVar[HashParameters]
    OWASP: ClassVar[HashParameters]

    time_cost: int = attrs.field(default=3, validator=_whole(1))
    memory_cost: int = attrs.field(default=64 * 1024, validator=_whole(8))
    parallelism: int = attrs.field(default=4, validator=_whole(1))
    hash_len: int = attrs.field(default=32, validator=_whole(16))
    salt_len: int = attrs.field(default=16, validator=_whole(16))
    max_concurrent: int = attrs.field(default=8, validator=_whole(1))

    def __attrs_post_init__(self) -> None:
        if self.memory_cost < 8 * self.parallelism:
            raise SettingsError("memory_cost", "argon2 needs at least 8 KiB per lane")


HashParameters.RFC_9106_LOW_MEMORY = HashParameters()
HashParameters.OWASP = HashParameters(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class Lockout(enum.Enum):
    """What ``max_failed_sign_ins`` failures in a row do to an account."""

    #: Locked until a reset or support staff (LK-1): the portal's rule.
    UNTIL_RESET = "until_reset"
    #: Refused for a while, longer each time, locked as LK-1 only at ``lock_for_good_at`` (MF-7).
    TEMPORARY = "temporary"


class SecondFactor(enum.Enum):
    """When a sign-in asks for a second factor after the password (MF-1)."""

    #: Never: two-step verification at registration and reset only (the portal's rule).
    NEVER = "never"
    #: At every sign-in; trusted devices are not honoured (the NIST profile).
    ALWAYS = "always"
    #: On a device the user has not trusted (MF-5).
    NEW_DEVICE = "new_device"


@attrs.frozen(kw_only=True)
class SignInRules:
    """Lockout, second factor, sessions, throttle (LK-1, LK-6, LK-7, DP-5, MF-1, MF-5, MF-7, CX-3).

    ``SignInRules.PORTAL`` (the default) keeps the portal's rules: lock until
    reset at ``max_failed_sign_ins``, no second factor at sign-in.
    ``SignInRules.NIST`` asks for a second factor at every sign-in and locks
    for a while (``first_lock``, doubling up to ``longest_lock``) at each
    run of ``max_failed_sign_ins`` failures, until ``lock_for_good_at``
    failures in a row lock the account as LK-1 does. How long a pending
    sign-in and a trusted device last is in `LinkRules`, with the other
    tokens' lifetimes.

    ``attempt_timeout`` is how long a sign-in attempt may stay in flight
    (counted, its outcome not yet recorded) before it is abandoned: an
    attempt whose outcome storage failed to record stops counting toward
    the threshold then, and never becomes a failure (DP-5).

    ``throttle_limit`` failed sign-ins from one client address within
    ``throttle_window`` make the shipped throttle refuse that address until
    the oldest of them leaves the window (CX-3).
    """

    PORTAL: ClassVar[SignInRules]
    NIST: ClassVar[SignInRules]

    max_failed_sign_ins: int = attrs.field(default=5, validator=_whole(1))
    lockout: Lockout = attrs.field(default=Lockout.UNTIL_RESET, validator=_member(Lockout))
    first_lock: timedelta = attrs.field(default=timedelta(minutes=15), validator=_positive_duration)
    longest_lock: timedelta = attrs.field(default=timedelta(hours=24), validator=_positive_duration)
    lock_for_good_at: int = attrs.field(default=100, validator=_whole(1))
    second_factor: SecondFactor = attrs.field(
        default=SecondFactor.NEVER, validator=_member(SecondFactor)
    )
    attempt_timeout: timedelta = attrs.field(
        default=timedelta(seconds=30), validator=_positive_duration
    )
    idle_timeout: timedelta = attrs.field(
        default=timedelta(minutes=30), validator=_positive_duration
    )
    absolute_lifetime: timedelta = attrs.field(
        default=timedelta(hours=12), validator=_positive_duration
    )
    session_token_bytes: int = attrs.field(default=32, validator=_whole(16))
    throttle_limit: int = attrs.field(default=100, validator=_whole(1))
    throttle_window: timedelta = attrs.field(
        default=timedelta(hours=1), validator=_positive_duration
    )


SignInRules.PORTAL = SignInRules()
SignInRules.NIST = SignInRules(lockout=Lockout.TEMPORARY, second_factor=SecondFactor.ALWAYS)

_SECRET_REQUIREMENT = "a Secret holding at least 32 random bytes"


def _is_secret_or_none(value: object) -> bool:
    return value is None or (
        isinstance(value, Secret)
        and isinstance(value.reveal(), bytes)
        and len(value.reveal()) >= _MIN_CODE_KEY_BYTES
    )


def _new_code_key() -> Secret[bytes]:
    return Secret(secrets.token_bytes(32))


#: MF-9's notice on the risks of texts and calls; ``$portal`` and ``$stronger`` are filled in.
PHONE_CODE_NOTICE = (
    "Codes sent by text message or phone call can be intercepted: someone who persuades "
    "your phone company to move your number to their SIM card (a SIM swap) or to another "
    "company (number porting) gets your codes. $portal also offers $stronger, which "
    "cannot be taken that way."
)


def _is_notice(value: object) -> bool:
    """Whether ``value`` is a notice whose only placeholders are ``$portal`` and ``$stronger``."""
    if not isinstance(value, str):
        return False
    try:
        Template(value).substitute(portal="", stronger="")
    except (KeyError, ValueError):
        return False
    return True


@attrs.frozen(kw_only=True)
class VerificationRules:
    """Two-step verification numbers (VF-1, VF-4, VF-7, VF-8, MF-8).

    The wrong one-time codes of every kind are also counted per user, across
    verifications (MF-8): from ``pause_from_wrong_codes`` in a row, no code
    is accepted for ``first_code_pause``, doubling with each further wrong
    code up to ``longest_code_pause``; at ``stop_at_wrong_codes`` none is
    issued or accepted until support staff clear the count. An authenticator
    app's code is accepted for its own 30-second step and
    ``authenticator_steps_back`` steps before it (MF-3; 0 meets ASVS 5.0
    6.5.5); a set of recovery codes has ``recovery_codes`` codes (MF-4).
    ``phone_code_notice`` is the notice a portal shows where a user picks a
    text or a call (MF-9): a `string.Template` text in which ``$portal`` is
    the portal's name and ``$stronger`` the stronger methods it offers.
    ``code_key`` is the key under which codes are stored as a keyed hash.
    In a portal it is derived from `Settings.secret`; alone, for the pure
    core, it defaults to a fresh random key, good for one process only.
    """

    default_region: str = attrs.field(
        default="US",
        validator=_check(
            lambda v: (
                isinstance(v, str) and len(v) == _REGION_CODE_LENGTH and v.isascii() and v.isupper()
            ),
            "a two-letter upper-case region code such as 'US'",
        ),
    )
    code_digits: int = attrs.field(default=6, validator=_whole(6))
    code_lifetime: timedelta = attrs.field(
        default=timedelta(minutes=10), validator=_positive_duration
    )
    max_wrong_codes: int = attrs.field(default=5, validator=_whole(1))
    send_limit: int = attrs.field(default=5, validator=_whole(1))
    send_window: timedelta = attrs.field(
        default=timedelta(minutes=15), validator=_positive_duration
    )
    pause_from_wrong_codes: int = attrs.field(default=10, validator=_whole(1))
    first_code_pause: timedelta = attrs.field(
        default=timedelta(minutes=15), validator=_positive_duration
    )
    longest_code_pause: timedelta = attrs.field(
        default=timedelta(hours=24), validator=_positive_duration
    )
    stop_at_wrong_codes: int = attrs.field(default=100, validator=_whole(1))
    authenticator_steps_back: int = attrs.field(default=1, validator=_whole(0))
    recovery_codes: int = attrs.field(default=10, validator=_whole(1))
    phone_code_notice: str = attrs.field(
        default=PHONE_CODE_NOTICE,
        validator=_check(_is_notice, "text whose only placeholders are $portal and $stronger"),
    )
    code_key: Secret[bytes] = attrs.field(
        factory=_new_code_key,
        validator=_check(
            lambda v: v is not None and _is_secret_or_none(v),
            _SECRET_REQUIREMENT,
        ),
    )


_BASE_URL_REQUIREMENT = (
    "must be None or an absolute https URL without query or fragment, such as "
    "'https://portal.example'"
)
_IPV4_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_IPV6_LOOPBACK = ipaddress.IPv6Address("::1")


def _is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost``, 127.0.0.0/8 or ::1 (RC-6)."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address in _IPV4_LOOPBACK
    return address == _IPV6_LOOPBACK


def _url_parts(value: str) -> SplitResult | None:
    """Return the parts of ``value``, or None when it cannot be split (a bad port, a bad IPv6)."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # a port out of range raises only when read
    except ValueError:
        return None
    return parts


def _check_base_url(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse a links' address that is not https, but for a loopback host (RS-5, RC-6).

    Every invitation and reset link carries its token in the address, so
    over plain http it would travel in clear. The message never repeats the
    address whole: one with a user name may hold a password.
    """
    if value is None:
        return
    if not isinstance(value, str):
        raise SettingsError(attribute.name, f"{_BASE_URL_REQUIREMENT}, not {type(value).__name__}")
    parts = _url_parts(value)
    host = None if parts is None else parts.hostname
    if parts is None or host is None or parts.scheme not in {"https", "http"}:
        raise SettingsError(attribute.name, _BASE_URL_REQUIREMENT)
    if parts.query or parts.fragment:
        raise SettingsError(attribute.name, _BASE_URL_REQUIREMENT)
    if parts.scheme == "http" and not _is_loopback(host):
        raise SettingsError(
            attribute.name,
            "must use https, so that invitation and reset tokens never travel in clear; "
            "http is allowed only for a loopback host (localhost, 127.0.0.0/8, ::1), for tests "
            f"and demonstrations, not for {host!r}",
            code="settings.insecure_base_url",
        )
    if parts.username is not None or parts.password is not None:
        raise SettingsError(
            attribute.name, "must not hold a user name or password: every link would carry them"
        )


_LINK_PATH_REQUIREMENT = "a path starting with one '/', without query or fragment"


def _is_link_path(value: object) -> bool:
    return (
        isinstance(value, str)
        and value.startswith("/")
        and not value.startswith("//")
        and value.isascii()
        and value.isprintable()
        and not any(c in value for c in "?#\\ ")
    )


@attrs.frozen(kw_only=True)
class LinkRules:
    """E-mailed link tokens (RG-1, RS-1, RS-5, RC-1).

    ``base_url`` is the only source of a link's address, never request data;
    links cannot be built until it is set. It uses https, so that tokens
    never travel in clear; plain http is accepted only for a loopback host
    (``localhost``, 127.0.0.0/8, ``::1``), for tests and demonstrations
    (``settings.insecure_base_url`` otherwise, RC-6). A link is
    ``base_url`` joined with ``invitation_path``, ``reset_path`` or
    ``email_change_path`` (the link that confirms a new email address), and
    the token as its ``token`` query parameter. Two tokens are handed to
    the browser rather than e-mailed, and kept the same way: a pending
    sign-in, waiting for its second factor, lasts ``sign_in_lifetime``
    (MF-1); a trusted device is trusted for ``trusted_device_lifetime``
    (MF-5).
    """

    base_url: str | None = attrs.field(default=None, validator=_check_base_url)
    invitation_lifetime: timedelta = attrs.field(
        default=timedelta(days=14), validator=_positive_duration
    )
    reset_lifetime: timedelta = attrs.field(
        default=timedelta(hours=1), validator=_positive_duration
    )
    email_change_lifetime: timedelta = attrs.field(
        default=timedelta(hours=24), validator=_positive_duration
    )
    sign_in_lifetime: timedelta = attrs.field(
        default=timedelta(minutes=10), validator=_positive_duration
    )
    trusted_device_lifetime: timedelta = attrs.field(
        default=timedelta(days=30), validator=_positive_duration
    )
    token_bytes: int = attrs.field(default=32, validator=_whole(16))
    invitation_path: str = attrs.field(
        default="/register", validator=_check(_is_link_path, _LINK_PATH_REQUIREMENT)
    )
    reset_path: str = attrs.field(
        default="/reset-password", validator=_check(_is_link_path, _LINK_PATH_REQUIREMENT)
    )
    email_change_path: str = attrs.field(
        default="/confirm-email", validator=_check(_is_link_path, _LINK_PATH_REQUIREMENT)
    )


@attrs.frozen(kw_only=True)
class AttachmentRules:
    """Attachment validation numbers and the allow-list (AT-1, AT-2, AT-5, AT-7)."""

    allowed_extensions: frozenset[str] = attrs.field(
        default=frozenset(SEED_ATTACHMENT_EXTENSIONS),
        converter=_frozenset_of_extensions,
        validator=_check(
            lambda v: all(e.startswith(".") and len(e) > 1 and "/" not in e for e in v),
            "a set of extensions each starting with a dot",
        ),
    )
    max_message_bytes: int = attrs.field(default=300 * MIB, validator=_whole(1))
    header_bytes: int = attrs.field(default=8 * 1024, validator=_whole(262))
    max_central_directory_bytes: int = attrs.field(default=1 * MIB, validator=_whole(22))
    max_archive_entries: int = attrs.field(default=10_000, validator=_whole(1))
    max_compression_ratio: int = attrs.field(default=100, validator=_whole(1))


@attrs.frozen(kw_only=True)
class BillingRules:
    """SecureMail money rules (UM-6), in integer cents."""

    securemail_monthly_cents: int = attrs.field(default=1000, validator=_whole(0))


def _group(kind: type[T]) -> Any:  # noqa: ANN401 - attrs.field's own return type
    return attrs.field(
        factory=kind,
        validator=_check(lambda v: isinstance(v, kind), f"a {kind.__name__}"),
    )


@attrs.frozen(kw_only=True)
class Settings:
    """Every *default* of SPEC.md, grouped, frozen and validated when built.

    ``Settings()`` gives the portal's rules. Override a group, for example
    ``Settings(password=PasswordRules.NIST)`` or
    ``Settings(sign_in=SignInRules(max_failed_sign_ins=3))``.

    ``secret`` is the portal secret (at least 32 random bytes, the same in
    every process and server of the portal): every key is derived from it,
    the code key among them, which then replaces ``verification.code_key``
    (DP-1). A store shared between processes refuses to work without it, or
    with another one than it first saw (DP-2). To rotate it, start once with
    the new ``secret`` and the old one as ``previous_secret``.

    ``messages`` holds the words of every email, text and call (OP-4).
    """

    password: PasswordRules = _group(PasswordRules)
    hashing: HashParameters = _group(HashParameters)
    sign_in: SignInRules = _group(SignInRules)
    verification: VerificationRules = _group(VerificationRules)
    links: LinkRules = _group(LinkRules)
    attachments: AttachmentRules = _group(AttachmentRules)
    billing: BillingRules = _group(BillingRules)
    messages: MessageTemplates = _group(MessageTemplates)
    secret: Secret[bytes] | None = attrs.field(
        default=None, validator=_check(_is_secret_or_none, _SECRET_REQUIREMENT), repr=False
    )
    previous_secret: Secret[bytes] | None = attrs.field(
        default=None, validator=_check(_is_secret_or_none, _SECRET_REQUIREMENT), repr=False
    )

    @property
    def root_key(self) -> Secret[bytes]:
        """The key the library's other keys and keyed names come from.

        The portal secret; without one (a store in memory, DP-2) the code
        key, which lives as long as the process, as such a store does.
        """
        return self.secret if self.secret is not None else self.verification.code_key

    def __attrs_post_init__(self) -> None:
        if self.previous_secret is not None and self.secret is None:
            raise SettingsError("previous_secret", "give the new secret too, as secret")
        if self.secret is not None:
            derived = derive_key(self.secret, "verification-code")
            object.__setattr__(
                self, "verification", attrs.evolve(self.verification, code_key=derived)
            )
