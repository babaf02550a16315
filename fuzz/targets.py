"""The parsers fuzzed, each with its inputs and the promises its answers must keep.

A target's ``check`` takes one input and returns None when the parser
accepted it, or the code it refused it with: the code of a library error
(`SecurePracticeError`), of a report's first problem, or of a verification
outcome. An answer that breaks one of the parser's promises raises `Broken`;
any other exception is a finding too (the runner calls it unhandled). The
promises are written from SPEC.md's rules, with the fuzzer's own character
lists, not with the library's functions, so that the two can disagree.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar, cast

import attrs

from fuzz.characters import ASCII, DIGITS, LOOK_ALIKE_PUNCTUATION, SPACES
from fuzz.content import PROGRAMS, CountingStream, OneWayStream, Upload, Uploads
from fuzz.texts import Texts
from securepractice.errors import InvalidToken, SecurePracticeError
from securepractice.policy._archives import END_RECORDS_BYTES
from securepractice.policy.attachments import Attachment, AttachmentPolicy, Content
from securepractice.policy.identity import MAX_EMAIL_LENGTH, normalize_email
from securepractice.policy.password import (
    PasswordPolicy,
    check_limit,
    normalize_password,
    require_password_text,
)
from securepractice.records import (
    Challenge,
    DeliveryMethod,
    LinkToken,
    PhoneKind,
    Purpose,
    TokenPurpose,
)
from securepractice.secret import Secret
from securepractice.settings import AttachmentRules, VerificationRules
from securepractice.testing import PASSWORD
from securepractice.verification.codes import VerifyOutcome, code_hash, verify
from securepractice.verification.phones import delivery_options, parse_phone
from securepractice.verification.tokens import INVALID_LINK_MESSAGE, open_token, token_problem

__all__ = ["TARGETS", "Broken", "Target"]

T = TypeVar("T")


class Broken(Exception):
    """An answer that breaks a promise of the parser (a wrong verdict, not a crash)."""


def _promise(kept: bool, what: str) -> None:
    if not kept:
        raise Broken(what)


def _again(call: Callable[[], T], what: str) -> T:
    """Return what ``call`` returns: a call on an accepted value, which must not be refused."""
    try:
        return call()
    except SecurePracticeError as refused:
        raise Broken(f"{what}: {refused.code}") from refused


@attrs.frozen
class Target:
    """One parser: its name, how its inputs are drawn, and how one is checked."""

    name: str
    inputs: Callable[[random.Random], Callable[[], object]]
    check: Callable[[object], str | None]


#: Categories no stored text may hold: controls, surrogates, line and paragraph
#: separators, private use, unassigned.
_NEVER = frozenset({"Cc", "Cs", "Zl", "Zp", "Co", "Cn"})
_JOINERS = frozenset("\u200c\u200d")
#: Letters that display as nothing: the Hangul fillers.
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
_NOW = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)


def _categories(text: str) -> set[str]:
    return {unicodedata.category(c) for c in text}


def _invisible(text: str) -> bool:
    """Whether ``text`` holds a format character (direction marks among them) or a filler.

    A zero width joiner or non-joiner is let pass: between two visible
    characters it is text.
    """
    return any(
        c in _FILLERS or (unicodedata.category(c) == "Cf" and c not in _JOINERS) for c in text
    )


# --- password: the policy's check and require_password_text (PW-1..PW-3, PW-8, IN-1, IN-3) ---

_POLICY = PasswordPolicy()
_RULES = _POLICY.rules
_PASSWORDS = (
    PASSWORD,
    "Harbor-Light-77",
    "Cafe\u0301-Lumie\u0300re-9",
    "\u01c5ungla-Ma\u00f1ana-42",
    "\u041f\u0430\u0440\u043e\u043b\u044c-\u041d\u0430\u0434\u0451\u0436\u043d\u044b\u0439-1",
    "\u5bc6\u7801Aa1!",
    "Aa1!" + "x" * 4,
    "Aa1!" + "x" * 3,
    "Aa1!" + "x" * (_RULES.max_length - 4),
    "Aa1!" + "x" * (_RULES.max_length - 3),
    "Aa1\ufb03\ufdfa" * 13,
    "\uff21\uff41\uff11\uff01-full-width",
    "correct horse battery staple",
    "P\u00e4ss w\u00f6rd 2026 \U0001f642",
)


def _password_inputs(rng: random.Random) -> Callable[[], object]:
    texts = Texts(rng, _PASSWORDS, ASCII + DIGITS + SPACES)

    def draw() -> object:
        password = texts()
        how = rng.choices(("same", "normal", "other", "none"), weights=(6, 1, 2, 1))[0]
        if how == "same" or not isinstance(password, str):
            return (password, password)
        if how == "normal":
            return (password, unicodedata.normalize(rng.choice(("NFC", "NFD", "NFKD")), password))
        return (password, texts() if how == "other" else None)

    return draw


def _check_password(value: object) -> str | None:
    typed, confirmation = cast("tuple[object, Any]", value)
    password = require_password_text(typed)
    _promise(password is typed, "require_password_text changed it")
    report = _POLICY.check(password, confirmation)
    limit = check_limit(_RULES)
    if isinstance(confirmation, str) and max(len(password), len(confirmation)) <= limit:
        same = normalize_password(password) == normalize_password(confirmation)
        _promise(same != ("password.mismatch" in report.codes), "PW-3: wrong mismatch verdict")
    if not report.ok:
        return report.codes[0]
    normal = normalize_password(password)
    _promise(_RULES.min_length <= len(normal) <= _RULES.max_length, "PW-1: length")
    _promise(_NEVER.isdisjoint(_categories(normal) - {"Co", "Cn"}), "IN-1: refused class")
    _promise(not _invisible(normal), "IN-1: invisible character or direction mark")
    cats = _categories(normal)
    _promise("Ll" in cats and bool({"Lu", "Lt"} & cats) and "Nd" in cats, "PW-2: classes")
    _promise(any(not c.startswith(("L", "M")) and c != "Nd" for c in cats), "PW-2: special")
    return None


# --- email: normalize_email (ID-1, IN-1, IN-2) ---

_EMAILS = (
    "dana@smile.example",
    " Dr.Smith@Example.COM ",
    "Dr.Smith@M\u00fcnchen.de",
    "user@xn--mnchen-3ya.de",
    "a@b.co",
    "user+tag@example.com",
    "o'brien@example.org",
    "\u00fc\u00f1\u00ee\u00e7\u00f8\u00f0\u00e9@example.com",
    "\u043f\u043e\u0447\u0442\u0430@\u043f\u043e\u0447\u0442\u0430.\u0440\u0444",
    "x" * 64 + "@example.com",
    "x" * 65 + "@example.com",
    "a@" + "b" * 63 + ".example",
    "a@" + ("b" * 60 + ".") * 4 + "example",
    "user@[127.0.0.1]",
    '"quoted"@example.com',
    "user@localhost",
    "x@y.test",
    "ex\u0430mple@example.com",
    "user@exa\u3002mple.com",
    "user..dots@example.com",
    ".start@example.com",
    "a@b@example.com",
    "user@-bad-.com",
    "user@ex_ample.com",
    "user@example.com.",
    "user(comment)@example.com",
)
_SPECIAL_USE = frozenset(
    {"alt", "arpa", "internal", "invalid", "local", "localhost", "onion", "test"}
)


def _email_inputs(rng: random.Random) -> Callable[[], object]:
    return Texts(rng, _EMAILS, ASCII + "@.-_+" * 4 + LOOK_ALIKE_PUNCTUATION)


def _check_email(value: object) -> str | None:
    stored = normalize_email(value)  # type: ignore[arg-type]
    assert isinstance(value, str)  # noqa: S101 - normalize_email refuses anything else
    _promise(_again(lambda: normalize_email(stored), "ID-1") == stored, "ID-1: not idempotent")
    if len(value) <= MAX_EMAIL_LENGTH:
        padded = _again(lambda: normalize_email(f" {value}\t"), "ID-1: padded")
        _promise(padded == stored, "ID-1: outer blanks matter")
    _promise(_NEVER.isdisjoint(_categories(stored)), "IN-1: refused class kept")
    _promise(not _invisible(stored), "IN-2: invisible character kept")
    _promise("Zs" not in _categories(stored), "IN-2: a space kept")
    local, at, domain = stored.rpartition("@")
    _promise(bool(local and at and domain), "ID-1: no local part or domain")
    _promise(domain.rpartition(".")[2] not in _SPECIAL_USE, "IN-2: special-use domain")
    return None


# --- phone: parse_phone (VF-1, VF-2, VF-3) ---

_PHONES = (
    "+12025550143",
    "(202) 555-0143",
    "202.555.0143",
    "+44 20 7946 0958",
    "+49 30 1234567",
    "+1 900 555 0100",
    "+1 202 555 0143 ext. 12",
    "tel:+1-202-555-0143",
    "+800 1234 5678",
    "0049 30 1234567",
    "+\u0661\u0662\u0660\u0662\u0665\u0665\u0665\u0660\u0661\u0664\u0663",
    "\uff0b\uff11\uff12\uff10\uff12\uff15\uff15\uff15\uff10\uff11\uff14\uff13",
    "\u200f+1 202 555 0143\u200e",
    "1-800-FLOWERS",
    "+1202555014",
    "+120255501439999",
    "++1 202 555 0143",
    "+0 123",
    "911",
    "+",
)
_REGIONS = (None, None, None, "GB", "DE", "IN", "BR")
#: E.164 as libphonenumber writes it: a plus, a country code, digits. ITU's E.164 caps a number
#: at 15 digits; libphonenumber takes some longer German numbers as valid (docs/testing.md).
_E164 = re.compile(r"\+[1-9][0-9]{1,16}")


def _phone_inputs(rng: random.Random) -> Callable[[], object]:
    texts = Texts(rng, _PHONES, "0123456789+-() .#*extEXT" + DIGITS)
    return lambda: (texts(), rng.choice(tuple(PhoneKind)), rng.choice(_REGIONS))


def _check_phone(value: object) -> str | None:
    text, kind, region = cast("tuple[object, PhoneKind, str | None]", value)
    phone = parse_phone(text, kind=kind, region=region)
    _promise(phone.kind is kind, "VF-1: field lost")
    _promise(_E164.fullmatch(phone.number) is not None, "VF-1: not E.164")
    again = _again(lambda: parse_phone(phone.number, kind=kind), "VF-1: E.164 form refused")
    _promise(again == phone, "VF-1: E.164 form parses to another number")
    _promise(bool(delivery_options([phone])), "VF-2: an accepted number no code can reach")
    return None


# --- code: the one-time code entry check (VF-4, VF-7) ---

#: How often a code or a token comes wrapped in a `Secret`, as services pass them.
_SECRETS = 0.05
_CODE = "408213"
_CODE_RULES = VerificationRules(code_key=Secret(bytes(range(32))))
_CHALLENGE = Challenge(
    id="challenge-1",
    user_id="user-1",
    purpose=Purpose.REGISTRATION,
    method=DeliveryMethod.SMS,
    destination="+12025550143",
    code_hash=code_hash(
        Secret(_CODE),
        challenge_id="challenge-1",
        user_id="user-1",
        purpose=Purpose.REGISTRATION,
        key=_CODE_RULES.code_key,
    ),
    issued_at=_NOW,
    expires_at=_NOW + _CODE_RULES.code_lifetime,
)


def _in_digits(zero: str) -> str:
    return "".join(chr(ord(zero) + int(d)) for d in _CODE)


_CODES = (
    _CODE,
    "408 213",
    "408-213",
    "408\u00a0213",
    " 408213\n",
    _in_digits("\u0660"),
    _in_digits("\uff10"),
    _in_digits("\U0001d7ce"),
    _in_digits("\u0966"),
    "40821",
    "4082130",
    "408214",
    "000000",
    "\u2074\u2070\u2078\u00b2\u00b9\u00b3",
)


def _code_inputs(rng: random.Random) -> Callable[[], object]:
    texts = Texts(rng, _CODES, "0123456789 -" + DIGITS + SPACES)

    def draw() -> object:
        entry = texts()
        return Secret(entry) if isinstance(entry, str) and rng.random() < _SECRETS else entry

    return draw


def _check_code(value: object) -> str | None:
    result = verify(
        _CHALLENGE,
        value,  # type: ignore[arg-type]
        user_id="user-1",
        purpose=Purpose.REGISTRATION,
        now=_NOW,
        rules=_CODE_RULES,
    )
    entry = value.reveal() if isinstance(value, Secret) else value
    assert isinstance(entry, str)  # noqa: S101 - verify refuses anything else
    _promise(entry != _CODE or result.verified, "VF-7: the right code refused")
    if result.verified:
        typed = "".join(str(unicodedata.decimal(c)) for c in entry if c.isdecimal())
        _promise(typed == _CODE, "VF-7: a wrong code verified")
        return None
    if result.outcome is VerifyOutcome.MALFORMED:
        _promise(result.challenge is _CHALLENGE, "VF-7: a malformed entry counted")
    else:
        _promise(result.outcome is VerifyOutcome.WRONG_CODE, f"VF-7: {result.outcome}")
        _promise(result.challenge.wrong_attempts == 1, "VF-7: a wrong code not counted")
    return f"outcome.{result.outcome.value}"


# --- token: the link token check (RG-1, RG-6) ---

_TOKEN = base64.urlsafe_b64encode(hashlib.sha256(b"fuzz").digest()).rstrip(b"=").decode()
_TOKEN_RECORD = LinkToken(
    id="link-1",
    token_hash=hashlib.sha256(_TOKEN.encode()).digest(),
    user_id="user-1",
    purpose=TokenPurpose.INVITATION,
    created_at=_NOW,
    expires_at=_NOW + timedelta(days=14),
)
_TOKENS = (
    _TOKEN,
    _TOKEN + "=",
    _TOKEN[:-1],
    _TOKEN.swapcase(),
    f"https://portal.example/invite?token={_TOKEN}",
    _TOKEN.replace("-", "%2D"),
    f" {_TOKEN}",
    _TOKEN * 12,
    _TOKEN[:32],
)


def _token_inputs(rng: random.Random) -> Callable[[], object]:
    texts = Texts(rng, _TOKENS, ASCII + "-_=%+/" * 4)

    def draw() -> object:
        token = texts()
        return Secret(token) if isinstance(token, str) and rng.random() < _SECRETS else token

    return draw


def _check_token(value: object) -> str | None:
    text = value.reveal() if isinstance(value, Secret) else value
    token: Any = value
    problem = token_problem(token, _TOKEN_RECORD, purpose=TokenPurpose.INVITATION, now=_NOW)
    try:
        record = open_token(token, _TOKEN_RECORD, purpose=TokenPurpose.INVITATION, now=_NOW)
    except InvalidToken as refused:
        _promise(refused.message == INVALID_LINK_MESSAGE, "RG-6: a refusal tells why")
        _promise(problem is not None and text != _TOKEN, "RG-1: the right token refused")
        return refused.code
    _promise(text == _TOKEN and record is _TOKEN_RECORD, "RG-1: a wrong token opened the link")
    _promise(problem is None, "RG-6: token_problem disagrees with open_token")
    return None


# --- attachment name: Attachment and AttachmentPolicy.check_name (AT-1, AT-4, IN-1) ---

_ATTACHMENTS = AttachmentPolicy()
#: The longest name a file system takes, in UTF-8 bytes.
_MAX_NAME_BYTES = 255
_ALLOWED = AttachmentRules().allowed_extensions
_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{port}{n}" for port in ("COM", "LPT") for n in "123456789"}
)
_NAMES = (
    "scan.pdf",
    "X-ray 2024.JPG",
    "r\u00e9sum\u00e9.docx",
    "\u5831\u544a.pdf",
    "invoice\u202efdp.exe",
    "a.pdf.exe",
    "CON.txt",
    "com1.pdf",
    "COM\u00b9.pdf",
    "../../etc/passwd.pdf",
    "C:evil.pdf",
    "name.",
    "name .pdf ",
    ".pdf",
    "....pdf",
    "file<1>.pdf",
    "\u00e9" * 125 + ".pdf",
    "\u00e9" * 126 + ".pdf",
    "no_extension",
    "emoji\U0001f469\u200d\u2695\ufe0f.png",
)


def _name_inputs(rng: random.Random) -> Callable[[], object]:
    return Texts(rng, _NAMES, ASCII + './\\:<>|?*"' * 3 + "CONPRNAUXLPT1pdfjpg")


def _check_name(value: object) -> str | None:
    name = Attachment(name=value, content=b"").name  # type: ignore[arg-type]
    problems = _ATTACHMENTS.check_name(name)
    if problems:
        return problems[0].code
    stem, _, suffix = name.rpartition(".")
    _promise(f".{suffix.lower()}" in _ALLOWED and bool(stem.strip(". ")), "AT-1: extension")
    _promise(not any(part in name for part in ("/", "\\", "..")), "AT-4: a path")
    _promise(not name.endswith((".", " ")), "AT-4: ends in a dot or a space")
    _promise(len(name.encode("utf-8", "surrogatepass")) <= _MAX_NAME_BYTES, "AT-4: too long")
    _promise(_NEVER.isdisjoint(_categories(name)), "IN-1: refused class")
    _promise(not _invisible(name), "AT-4: invisible character or direction mark")
    _promise(name.split(".", 1)[0].rstrip(" ").upper() not in _DEVICES, "AT-4: device name")
    return None


# --- attachment content: AttachmentPolicy.check_file (AT-3, AT-5, AT-7, AT-8) ---

_HEADER = AttachmentRules().header_bytes
_MOST_READ = _HEADER + END_RECORDS_BYTES + AttachmentRules().max_central_directory_bytes


def _content_inputs(rng: random.Random) -> Callable[[], object]:
    return Uploads(rng)


def _handed(upload: Upload) -> tuple[Content, CountingStream | OneWayStream | None]:
    if upload.delivery == "bytearray":
        return bytearray(upload.data), None
    if upload.delivery == "memoryview":
        return memoryview(upload.data), None
    if upload.delivery == "seekable":
        stream = CountingStream(upload.data, upload.offset)
        return stream, stream
    if upload.delivery in {"stream", "failing"}:
        one_way = OneWayStream(upload)
        return one_way, one_way
    return upload.data, None


def _check_content(value: object) -> str | None:
    upload = value
    assert isinstance(upload, Upload)  # noqa: S101 - the content target draws nothing else
    content, stream = _handed(upload)
    report = _ATTACHMENTS.check_file(
        Attachment(name=upload.name, content=content, size=upload.size)
    )
    codes = report.codes
    if upload.data.startswith(PROGRAMS) and not (
        isinstance(stream, OneWayStream) and "attachment.unreadable" in codes
    ):
        _promise("attachment.executable" in codes, "AT-3: a program passed")
    if isinstance(stream, CountingStream):
        _promise(stream.tell() == upload.offset, "AT-8: the stream was moved")
        _promise(stream.bytes_read <= _MOST_READ, "AT-5: read past the bound")
        _promise(report.size == len(upload.data), "AT-5: wrong size")
    if isinstance(stream, OneWayStream) and report.stream is not None:
        _promise(stream.bytes_read <= _HEADER, "AT-8: read past the header")
        if upload.delivery == "stream":
            _promise(report.stream.read() == upload.data, "AT-8: the bytes handed back differ")
    return codes[0] if codes else None


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("password", _password_inputs, _check_password),
        Target("email", _email_inputs, _check_email),
        Target("phone", _phone_inputs, _check_phone),
        Target("code", _code_inputs, _check_code),
        Target("token", _token_inputs, _check_token),
        Target("attachment_name", _name_inputs, _check_name),
        Target("attachment_content", _content_inputs, _check_content),
    )
}
