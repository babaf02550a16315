"""The one registry of the stable codes that callers receive, and their meanings.

A code is on every `~securepractice.errors.SecurePracticeError` (``error.code``)
and on every problem a report returns (``Violation.code`` of a password or
attachment report, ``Decision.reason`` of a denied permission). Programs branch
on codes, never on messages, so each code is listed here once, with what it
means for a caller and what carries it; an error built with a code missing
from `CODES` is refused, and a test checks that every code in the source is
here and that ``docs/errors.md`` is this table.

Naming scheme: ``area.reason``, matched by `CODE_PATTERN`. The area (what the
code is about: ``password``, ``attachment``, ``storage``...) and the reason
(what went wrong: ``too_short``, ``not_found``...) are lower-case snake_case
words joined by one dot; the reason may hold digits. The three `LEGACY_CODES`
predate the scheme and keep their names, because codes are stable across
releases.

Regenerate the documentation page with
``python -m securepractice.error_codes > docs/errors.md``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = [
    "CODES",
    "CODE_PATTERN",
    "LEGACY_CODES",
    "REPORT",
    "ErrorCode",
    "is_registered",
    "main",
    "render_markdown",
]

#: What every code but the `LEGACY_CODES` looks like: ``area.reason``.
CODE_PATTERN: Final = re.compile(r"[a-z]+(?:_[a-z]+)*\.[a-z][a-z0-9]*(?:_[a-z0-9]+)*")

#: Default codes older than the naming scheme, kept because codes are stable.
LEGACY_CODES: Final = frozenset({"already_exists", "not_found", "rate_limited"})

#: The carrier named for a code that comes as a value in a report, not raised.
REPORT: Final = "report"


@dataclass(frozen=True)
class ErrorCode:
    """One registered code: what it means for a caller, and what carries it.

    ``carriers`` names the error classes raised with the code, or `REPORT`
    when it comes as a value (``Violation.code``, ``Decision.reason``).
    """

    code: str
    carriers: tuple[str, ...]
    meaning: str


_ALREADY = ("AlreadyExists",)
_INPUT = ("InvalidInput",)
_STATE = ("InvalidState",)
_NOT_FOUND = ("NotFound",)
_STORAGE = ("StorageError",)
_REPORTED = (REPORT,)
_DENIED = ("PermissionDenied", REPORT)
_SOURCE = ("CompromisedCheckFailed",)

_TABLE: Final = (
    ErrorCode(
        "already_exists",
        _ALREADY,
        "The thing to create exists already (the default code of AlreadyExists).",
    ),
    ErrorCode(
        "attachment.archive_bomb",
        _REPORTED,
        "A ZIP attachment's entries declare more uncompressed bytes than max_compression_ratio"
        " times its size: a likely zip bomb.",
    ),
    ErrorCode(
        "attachment.archive_corrupt",
        _REPORTED,
        "A ZIP attachment's end records or central directory are damaged, or it is not a ZIP"
        " archive.",
    ),
    ErrorCode(
        "attachment.archive_directory_too_large",
        _REPORTED,
        "A ZIP attachment's central directory is larger than max_central_directory_bytes, so it"
        " is not read.",
    ),
    ErrorCode(
        "attachment.archive_not_seekable",
        _REPORTED,
        "A ZIP attachment came as a non-seekable stream, so its directory cannot be checked: give"
        " a path, bytes or a seekable stream.",
    ),
    ErrorCode(
        "attachment.archive_overlapping_entries",
        _REPORTED,
        "Entries of a ZIP attachment share or overlap their data: a likely zip bomb.",
    ),
    ErrorCode(
        "attachment.archive_too_many_entries",
        _REPORTED,
        "A ZIP attachment holds more entries than max_archive_entries.",
    ),
    ErrorCode(
        "attachment.archive_unsafe_entry",
        _REPORTED,
        "An entry name of a ZIP attachment would land outside the folder it is extracted to.",
    ),
    ErrorCode(
        "attachment.content_invalid",
        _INPUT,
        "An Attachment was built with content that is not a path, bytes or a binary stream.",
    ),
    ErrorCode(
        "attachment.executable",
        _REPORTED,
        "The attachment's content is a program or a script, whatever its name says.",
    ),
    ErrorCode(
        "attachment.extension_not_allowed",
        _REPORTED,
        "The attachment's name has no extension, or one the allow-list does not hold.",
    ),
    ErrorCode(
        "attachment.name_bidi_control",
        _REPORTED,
        "The attachment's name holds a bidirectional control character, which can disguise its"
        " type.",
    ),
    ErrorCode(
        "attachment.name_control_character",
        _REPORTED,
        "The attachment's name holds a control character (NUL, a tab, a line break...) or a line"
        " or paragraph separator.",
    ),
    ErrorCode(
        "attachment.name_device",
        _REPORTED,
        "The attachment's name is a Windows device name such as CON, NUL or COM1.",
    ),
    ErrorCode(
        "attachment.name_dot_dot",
        _REPORTED,
        "The attachment's name holds two dots in a row.",
    ),
    ErrorCode(
        "attachment.name_drive_letter",
        _REPORTED,
        "The attachment's name starts with a drive letter.",
    ),
    ErrorCode("attachment.name_empty", _REPORTED, "The attachment has no name."),
    ErrorCode(
        "attachment.name_empty_stem",
        _REPORTED,
        "The attachment's name has nothing but dots and spaces before its extension.",
    ),
    ErrorCode(
        "attachment.name_invalid_unicode",
        _REPORTED,
        "The attachment's name holds an unpaired surrogate (so it is not valid Unicode), or a"
        " private-use or unassigned code point, which means nothing to its reader.",
    ),
    ErrorCode(
        "attachment.name_invisible_character",
        _REPORTED,
        "The attachment's name holds an invisible character (a zero-width space, a byte order"
        " mark...), which can disguise it.",
    ),
    ErrorCode(
        "attachment.name_not_text",
        _INPUT,
        "An Attachment was built with a name that is not text.",
    ),
    ErrorCode(
        "attachment.name_reserved_character",
        _REPORTED,
        "The attachment's name holds a character Windows reserves: an angle bracket, colon,"
        " double quote, vertical bar, question mark or asterisk.",
    ),
    ErrorCode(
        "attachment.name_separator",
        _REPORTED,
        "The attachment's name holds a path separator (a slash or a backslash).",
    ),
    ErrorCode(
        "attachment.name_too_long",
        _REPORTED,
        "The attachment's name takes more than 255 bytes in UTF-8.",
    ),
    ErrorCode(
        "attachment.name_trailing_dot_or_space",
        _REPORTED,
        "The attachment's name ends in a dot or a space.",
    ),
    ErrorCode(
        "attachment.size_invalid",
        _INPUT,
        "An Attachment was built with a size that is neither None nor a whole, non-negative"
        " number of bytes.",
    ),
    ErrorCode(
        "attachment.size_mismatch",
        _REPORTED,
        "The size given for an attachment differs from the size of its content.",
    ),
    ErrorCode(
        "attachment.size_unknown",
        _REPORTED,
        "An attachment came as a non-seekable stream without a size, so its size cannot be"
        " checked.",
    ),
    ErrorCode(
        "attachment.type_mismatch",
        _REPORTED,
        "The attachment's content is recognised as a type its extension does not name.",
    ),
    ErrorCode(
        "attachment.unreadable",
        _REPORTED,
        "The attachment's content cannot be opened or read (a missing file, an I/O error).",
    ),
    ErrorCode(
        "audit.bad_position",
        _INPUT,
        "A position given to the audit feed is not one the store gave (CX-2).",
    ),
    ErrorCode("audit.exists", _ALREADY, "An audit event with this id is stored already."),
    ErrorCode(
        "authenticator.already_active",
        _STATE,
        "The user has an active authenticator app: to use another one, remove it first, with"
        " the current password (MF-3).",
    ),
    ErrorCode(
        "authenticator.malformed",
        _INPUT,
        "The authenticator code entered is not six digits; it was not checked or counted.",
    ),
    ErrorCode("authenticator.none", _STATE, "The user has no authenticator app to remove."),
    ErrorCode(
        "authenticator.not_started",
        _STATE,
        "No authenticator app is being added: start adding one before confirming it (MF-3).",
    ),
    ErrorCode(
        "authenticator.wrong_code",
        _INPUT,
        "The code entered to confirm a new authenticator app is not the one it shows now; it"
        " counts toward the cap on wrong codes (MF-8).",
    ),
    ErrorCode(
        "card.last_four_invalid",
        _INPUT,
        "A card's last_four is not exactly the last four digits of the card.",
    ),
    ErrorCode(
        "card.number_given",
        _INPUT,
        "What was given as the processor's token for a card looks like a card number.",
    ),
    ErrorCode("card.token_required", _INPUT, "No payment processor token was given for the card."),
    ErrorCode(
        "challenge.exists",
        _ALREADY,
        "A verification challenge with this id is stored already.",
    ),
    ErrorCode(
        "challenge.not_found",
        _NOT_FOUND,
        "The verification challenge to update does not exist.",
    ),
    ErrorCode("code.not_text", _INPUT, "The verification code entered is not text."),
    ErrorCode(
        "compromised.bad_response",
        _SOURCE,
        "The compromised-password range API answered something other than lines of"
        " SUFFIX:COUNT; the message names the first bad line by number.",
    ),
    ErrorCode(
        "compromised.unavailable",
        _SOURCE,
        "The compromised-password source could not answer: the application's call to the range"
        " API failed (a new password is then refused for now; a sign-in goes on).",
    ),
    ErrorCode(
        "context.bad_address",
        _INPUT,
        "The request context's client address is not an IPv4 or IPv6 address (CX-1).",
    ),
    ErrorCode(
        "context.bad_request_id",
        _INPUT,
        "The request context's request id is not 1 to 128 printable ASCII characters without"
        " spaces (CX-1).",
    ),
    ErrorCode("context.bad_user_agent", _INPUT, "The request context's user agent is not text."),
    ErrorCode(
        "context.not_context",
        _INPUT,
        "A request block was given something other than a RequestContext (CX-1).",
    ),
    ErrorCode("credential.exists", _ALREADY, "A credential for this user is stored already."),
    ErrorCode("credential.not_found", _NOT_FOUND, "The credential to save does not exist."),
    ErrorCode(
        "delivery.failed",
        ("DeliveryFailed",),
        "A message could not be handed to its channel; the error's channel says which.",
    ),
    ErrorCode(
        "device.not_found",
        _NOT_FOUND,
        "The signed-in user trusts no device with that id, or no longer does (MF-5).",
    ),
    ErrorCode(
        "email.malformed",
        _INPUT,
        "An email address is not valid, holds an invisible character, mixes look-alike alphabets"
        " or has a special-use domain; the message says why.",
    ),
    ErrorCode(
        "flow.out_of_order",
        _STATE,
        "A step of a flow was done out of order (RG-2); nothing changed.",
    ),
    ErrorCode(
        "forwarding.bad_option",
        _INPUT,
        "AuditForwarder or SyslogSink was given a batch, name, transport, facility, app name or"
        " timeout it cannot work with (CX-2).",
    ),
    ErrorCode(
        "hash.corrupt",
        ("CorruptHash",),
        "A stored password hash cannot be read: it is truncated, altered or not argon2.",
    ),
    ErrorCode(
        "input.invalid",
        _INPUT,
        "A value given by a caller or a user is malformed (the default code of InvalidInput).",
    ),
    ErrorCode("invoice.exists", _ALREADY, "An invoice with this id is stored already."),
    ErrorCode("link_token.exists", _ALREADY, "A link token with this hash is stored already."),
    ErrorCode("link_token.not_found", _NOT_FOUND, "The link token to save does not exist."),
    ErrorCode(
        "message.control_character",
        _INPUT,
        "A message header value holds a line break or another control character.",
    ),
    ErrorCode("message.empty", _INPUT, "A message body is empty."),
    ErrorCode("message.no_recipient", _INPUT, "A message recipient is empty."),
    ErrorCode("message.not_text", _INPUT, "A message field is not text."),
    ErrorCode(
        "message.not_valid",
        _INPUT,
        "Outbox.fail_next was given a count that is not a whole number of at least 1.",
    ),
    ErrorCode(
        "message.recipient_not_valid",
        _INPUT,
        "A message recipient has spaces around it, or is not one bare address.",
    ),
    ErrorCode(
        "message.too_large",
        _REPORTED,
        "The attachments of a message total more than max_message_bytes.",
    ),
    ErrorCode(
        "message.unknown_channel",
        _INPUT,
        "Outbox.fail_next was given a channel other than email, sms or voice.",
    ),
    ErrorCode(
        "money.not_cents",
        _INPUT,
        "An amount of money is not a whole, non-negative number of cents.",
    ),
    ErrorCode(
        "not_found",
        _NOT_FOUND,
        "The record asked for does not exist (the default code of NotFound).",
    ),
    ErrorCode(
        "outbox.nothing_sent",
        ("NothingSent",),
        "The outbox holds no message, code or link of the kind asked for.",
    ),
    ErrorCode(
        "password.changed_meanwhile",
        _STATE,
        "The password was changed elsewhere while this action ran: sign in again.",
    ),
    ErrorCode(
        "password.check_unavailable",
        _REPORTED,
        "The compromised-password source could not check the new password just now; nothing was"
        " changed, try again later.",
    ),
    ErrorCode(
        "password.compromised",
        ("InvalidState", REPORT),
        "The password is known to have been exposed: as a new password it is refused (a report);"
        " marked on the current password, it must be changed before anything else (InvalidState).",
    ),
    ErrorCode(
        "password.current_wrong",
        ("InvalidInput", REPORT),
        "The current password given is wrong; repeated wrong entries lock the account.",
    ),
    ErrorCode(
        "password.expired",
        _STATE,
        "The password has expired: it must be changed before anything else.",
    ),
    ErrorCode(
        "password.history_needs_hasher",
        _INPUT,
        "Password history was given without the PasswordHasher that made it.",
    ),
    ErrorCode(
        "password.invalid_character",
        _REPORTED,
        "The new password holds a control character, a line separator, an invisible character or"
        " a direction mark, or an unpaired surrogate.",
    ),
    ErrorCode(
        "password.mismatch",
        _REPORTED,
        "The re-entered password differs from the new password.",
    ),
    ErrorCode("password.no_digit", _REPORTED, "The new password holds no digit."),
    ErrorCode("password.no_lowercase", _REPORTED, "The new password holds no lower-case letter."),
    ErrorCode(
        "password.no_special",
        _REPORTED,
        "The new password holds no special character (punctuation, a symbol or a space).",
    ),
    ErrorCode("password.no_uppercase", _REPORTED, "The new password holds no upper-case letter."),
    ErrorCode("password.not_set", _STATE, "The account has no password yet."),
    ErrorCode("password.not_text", _INPUT, "A password is not text."),
    ErrorCode(
        "password.reused",
        _REPORTED,
        "The new password is one of the user's recent passwords.",
    ),
    ErrorCode(
        "password.too_long",
        _REPORTED,
        "The new password is longer than the profile's maximum length.",
    ),
    ErrorCode(
        "password.too_short",
        _REPORTED,
        "The new password is shorter than the profile's minimum length.",
    ),
    ErrorCode(
        "payment.declined",
        ("PaymentFailed",),
        "The card was declined; nothing was granted.",
    ),
    ErrorCode("payment.exists", _ALREADY, "A payment with this id is stored already."),
    ErrorCode(
        "payment.failed",
        ("PaymentFailed",),
        "The payment processor refused or could not make a charge; nothing was granted.",
    ),
    ErrorCode(
        "payment.idempotency_conflict",
        ("PaymentFailed",),
        "A charge was made before under the same idempotency key with another amount.",
    ),
    ErrorCode(
        "permission.actor_inactive",
        _DENIED,
        "The acting user is locked or deactivated, so may do nothing.",
    ),
    ErrorCode(
        "permission.denied",
        ("PermissionDenied",),
        "The actor may not do this action (the default code of PermissionDenied).",
    ),
    ErrorCode(
        "permission.no_subject",
        _DENIED,
        "The action needs a user or a practice to act on, and none was given.",
    ),
    ErrorCode(
        "permission.not_practice_user",
        _DENIED,
        "Support actions apply to practice users only, not to other support staff.",
    ),
    ErrorCode(
        "permission.not_self",
        _DENIED,
        "The action is allowed only on the actor's own account.",
    ),
    ErrorCode("permission.not_support_action", _DENIED, "Support staff cannot do this action."),
    ErrorCode(
        "permission.not_support_staff",
        _DENIED,
        "The action applies to support staff only, and the user acted on is a practice user.",
    ),
    ErrorCode(
        "permission.not_user_manager",
        _DENIED,
        "Only a User Manager of the practice can do this action.",
    ),
    ErrorCode(
        "permission.other_practice",
        _DENIED,
        "The user or practice acted on is not part of the actor's practice.",
    ),
    ErrorCode("permission.support_only", _DENIED, "Only support staff can do this action."),
    ErrorCode("phone.bad_character", _INPUT, "A phone number holds a control character."),
    ErrorCode("phone.empty", _INPUT, "A phone number is empty."),
    ErrorCode(
        "phone.has_extension",
        _INPUT,
        "A phone number has an extension, which a verification call cannot dial.",
    ),
    ErrorCode(
        "phone.invalid_country_code",
        _INPUT,
        "A phone number's country code does not exist.",
    ),
    ErrorCode(
        "phone.kind",
        _INPUT,
        "The kind of phone given is not PhoneKind.PHONE or PhoneKind.CELL.",
    ),
    ErrorCode("phone.not_a_number", _INPUT, "The text given as a phone number is not one."),
    ErrorCode(
        "phone.not_possible",
        _INPUT,
        "A phone number has a length no number of its country has, or can be dialled only locally.",
    ),
    ErrorCode("phone.not_text", _INPUT, "A phone number is not text."),
    ErrorCode("phone.not_valid", _INPUT, "A phone number is not in use in its country."),
    ErrorCode(
        "phone.required",
        _INPUT,
        "Registration needs at least one phone number, Phone or Cell Phone.",
    ),
    ErrorCode("phone.too_long", _INPUT, "A phone number is too long."),
    ErrorCode("phone.too_short", _INPUT, "A phone number is too short."),
    ErrorCode("phone.unchanged", _INPUT, "The new phone number is the one the user has already."),
    ErrorCode(
        "phone.unknown_region",
        _INPUT,
        "The default region is not one the phone number library knows.",
    ),
    ErrorCode(
        "phone.unsupported_type",
        _INPUT,
        "A phone number cannot take a code: premium-rate, pager, voicemail or a switchboard.",
    ),
    ErrorCode("practice.exists", _ALREADY, "A practice with this id is stored already."),
    ErrorCode("practice.not_found", _NOT_FOUND, "There is no such practice."),
    ErrorCode(
        "product.invalid",
        _INPUT,
        "A product name is not 1 to 64 lower-case letters, digits, hyphens or underscores.",
    ),
    ErrorCode(
        "product.not_subscribed",
        _STATE,
        "The user's practice does not subscribe to this product.",
    ),
    ErrorCode(
        "profile.ada_number_invalid",
        _INPUT,
        "An ADA number holds something other than letters, digits and hyphens.",
    ),
    ErrorCode("profile.not_a_list", _INPUT, "Specialties were not given as a tuple or a list."),
    ErrorCode(
        "profile.not_bool",
        _INPUT,
        "A yes-or-no setting, such as two-step verification, is not True or False.",
    ),
    ErrorCode("profile.too_many", _INPUT, "More specialties were given than a profile may list."),
    ErrorCode(
        "profile.unknown_time_zone",
        _INPUT,
        "The time zone is not an IANA time zone name such as America/New_York.",
    ),
    ErrorCode("purchase.exists", _ALREADY, "A SecureMail purchase with this id is stored already."),
    ErrorCode("purchase.not_found", _NOT_FOUND, "The SecureMail purchase to save does not exist."),
    ErrorCode(
        "rate_limited",
        ("RateLimited",),
        "Too many attempts; retry_after says when to try again (the default code of RateLimited).",
    ),
    ErrorCode(
        "recovery_code.malformed",
        _INPUT,
        "The recovery code entered is not 16 letters and digits; it was not checked or counted.",
    ),
    ErrorCode(
        "secret.unreadable",
        ("CorruptSecret",),
        "A sealed secret (an authenticator app's seed) cannot be opened with the portal's keys:"
        " altered, cut short, another user's, or sealed under a secret the portal no longer has.",
    ),
    ErrorCode(
        "securemail.already_paid",
        _ALREADY,
        "SecureMail for this account is paid for already.",
    ),
    ErrorCode("securemail.ended", _STATE, "The SecureMail purchase has ended already."),
    ErrorCode(
        "securemail.manager_paid_by_other",
        ("PermissionDenied",),
        "The manager's own SecureMail is paid for by another User Manager, so they cannot pay for"
        " other accounts.",
    ),
    ErrorCode("securemail.no_card", _STATE, "The User Manager has no credit card on file."),
    ErrorCode(
        "securemail.paid",
        _STATE,
        "A User Manager pays for this user's SecureMail: it ends with the purchase, not by"
        " revoking it.",
    ),
    ErrorCode(
        "securemail.purchase_pending",
        _STATE,
        "Another User Manager's purchase of SecureMail for this account is not complete yet; it"
        " completes on their retry or at the next billing run.",
    ),
    ErrorCode(
        "securepractice.error",
        ("SecurePracticeError",),
        "The fallback of a subclass that sets no default_code of its own; the library's own"
        " classes all set one.",
    ),
    ErrorCode("send_ledger.exists", _ALREADY, "A send ledger for this user is stored already."),
    ErrorCode("send_ledger.not_found", _NOT_FOUND, "The send ledger to save does not exist."),
    ErrorCode("session.exists", _ALREADY, "A session with this token is stored already."),
    ErrorCode(
        "session.invalid",
        ("InvalidToken",),
        "The session is unknown, ended or expired, or its user is locked or deactivated: sign in"
        " again.",
    ),
    ErrorCode("session.not_found", _NOT_FOUND, "The session to update does not exist."),
    ErrorCode(
        "session.unknown_id",
        _NOT_FOUND,
        "No live session of the user has this public id: it ended, or it is not theirs (RC-5).",
    ),
    ErrorCode(
        "settings.insecure_base_url",
        ("SettingsError",),
        "The links' base_url uses plain http for a host that is not loopback: links carry tokens,"
        " so they need https (http only for localhost, 127.0.0.0/8 or ::1).",
    ),
    ErrorCode(
        "settings.invalid",
        ("SettingsError",),
        "A settings value cannot be worked with; the message names the field.",
    ),
    ErrorCode(
        "settings.missing_extra",
        ("SettingsError",),
        "A feature that was asked for needs an optional package that is not installed;"
        " the message names the extra to install.",
    ),
    ErrorCode(
        "settings.no_compromised_source",
        _INPUT,
        "A password profile that screens compromised passwords was built without a source of them.",
    ),
    ErrorCode(
        "settings.no_secret",
        ("SettingsError",),
        "A store kept in a file or on a server was opened without the portal secret: give"
        " Settings(secret=...), 32 or more random bytes, the same in every process.",
    ),
    ErrorCode(
        "settings.secret_mismatch",
        ("SettingsError",),
        "The store was first used with another portal secret: start with that one, or rotate by"
        " giving the new one as secret and the old one as previous_secret.",
    ),
    ErrorCode(
        "sign_in.not_bool",
        _INPUT,
        "Whether to trust the device must be True or False (MF-5).",
    ),
    ErrorCode(
        "sign_in.two_factors",
        _INPUT,
        "A pending sign-in is finished with one second factor: an authenticator code or a"
        " recovery code, not both (MF-2).",
    ),
    ErrorCode(
        "storage.bad_option",
        _INPUT,
        "SQLiteStorage was given an unknown synchronous mode or a negative busy_timeout, or"
        " PostgresStorage a pool size or timeout it cannot work with.",
    ),
    ErrorCode(
        "storage.busy",
        _STORAGE,
        "The database stayed locked by another connection for longer than the store waits"
        " (SQLite's busy_timeout, PostgreSQL's lock_timeout), or PostgreSQL broke a deadlock by"
        " failing this unit; nothing was written.",
    ),
    ErrorCode("storage.cannot_open", _STORAGE, "The database file cannot be opened."),
    ErrorCode("storage.closed", _STORAGE, "The store is closed."),
    ErrorCode(
        "storage.conflict",
        ("Conflict",),
        "A record changed in another unit of work between this unit's read and its save; the unit"
        " was rolled back.",
    ),
    ErrorCode("storage.corrupt", _STORAGE, "The database file is damaged or is not a database."),
    ErrorCode(
        "storage.migration_failed",
        _STORAGE,
        "Migrating the database would leave a record referring to a missing one; nothing changed.",
    ),
    ErrorCode(
        "storage.nested_unit",
        _STORAGE,
        "A unit of work was started inside another; units do not nest.",
    ),
    ErrorCode("storage.no_unit", _STORAGE, "Storage was reached outside an active unit of work."),
    ErrorCode("storage.read_only", _STORAGE, "The database is read-only; nothing was written."),
    ErrorCode(
        "storage.reference_missing",
        _NOT_FOUND,
        "The record refers to another record that does not exist.",
    ),
    ErrorCode(
        "storage.schema_mismatch",
        _STORAGE,
        "A stored record does not fit the record's fields.",
    ),
    ErrorCode(
        "storage.schema_too_new",
        _STORAGE,
        "The database's schema is newer than this version of securepractice knows: upgrade to"
        " open it.",
    ),
    ErrorCode(
        "storage.unavailable",
        _STORAGE,
        "Storage could not be reached or could not complete a unit of work; nothing of the unit"
        " was kept.",
    ),
    ErrorCode(
        "storage.unit_reused",
        _STORAGE,
        "A unit of work was used a second time; each can be used only once.",
    ),
    ErrorCode(
        "storage.value_refused",
        _STORAGE,
        "The database cannot keep a value of the record (PostgreSQL: a NUL character in a key or"
        " an email, a number out of range); nothing was written.",
    ),
    ErrorCode(
        "support_staff.last_active",
        _STATE,
        "The member of support staff is the last active one (registered, not deactivated):"
        " invite another before deactivating them (OP-1).",
    ),
    ErrorCode(
        "terms.already_accepted",
        _ALREADY,
        "The user has accepted this version of the Terms of Use already.",
    ),
    ErrorCode("terms.outdated", _INPUT, "The Terms of Use accepted are not the current version."),
    ErrorCode(
        "text.bidi_control",
        _INPUT,
        "A text field holds a bidirectional control, which can make it display as other text.",
    ),
    ErrorCode(
        "text.control_character",
        _INPUT,
        "A text field holds a control character, such as NUL or a line break where one line is"
        " wanted.",
    ),
    ErrorCode("text.empty", _INPUT, "A required text field is empty or blank."),
    ErrorCode(
        "text.invisible_character",
        _INPUT,
        "A text field holds an invisible character: a zero-width space, a byte order mark, a"
        " soft hyphen, a filler.",
    ),
    ErrorCode(
        "text.line_separator",
        _INPUT,
        "A text field holds a Unicode line or paragraph separator (U+2028, U+2029).",
    ),
    ErrorCode("text.not_text", _INPUT, "A text field was given a value that is not text (str)."),
    ErrorCode(
        "text.private_use",
        _INPUT,
        "A text field holds a private-use code point, which means nothing to its reader.",
    ),
    ErrorCode(
        "text.surrogate",
        _INPUT,
        "A text field holds an unpaired surrogate, which is not text and cannot be encoded.",
    ),
    ErrorCode(
        "text.too_long",
        _INPUT,
        "A text field is longer than its maximum length (the message says it).",
    ),
    ErrorCode(
        "text.too_many_lines",
        _INPUT,
        "A text of several lines, such as an address, has more lines than it may.",
    ),
    ErrorCode(
        "text.unassigned",
        _INPUT,
        "A text field holds a code point that Unicode (as the running Python knows it) has not"
        " assigned.",
    ),
    ErrorCode("time.backward", _INPUT, "A clock was asked to move backward."),
    ErrorCode("time.naive", _INPUT, "A datetime has no time zone; give a timezone-aware one."),
    ErrorCode("time.reversed_range", _INPUT, "The end of a time range is before its start (OP-3)."),
    ErrorCode(
        "token.invalid",
        ("InvalidToken",),
        "A link token is unknown, expired, used or superseded; one code for all four (RG-6).",
    ),
    ErrorCode(
        "two_step.already_off",
        _STATE,
        "Two-step verification is off already: there is nothing to send a code for (RC-2).",
    ),
    ErrorCode(
        "two_step.own_account",
        ("PermissionDenied",),
        "A User Manager turns their own two-step verification off in their profile, with their"
        " password and a code, not through Manage Users (RC-2).",
    ),
    ErrorCode(
        "two_step.required",
        _STATE,
        "Every sign-in needs a second factor on this portal (SecondFactor.ALWAYS), so two-step"
        " verification cannot be turned off (MF-1).",
    ),
    ErrorCode(
        "user.already_registered",
        ("AlreadyExists", "InvalidState"),
        "The user has finished registration already.",
    ),
    ErrorCode("user.deactivated", _STATE, "The user has been deactivated."),
    ErrorCode("user.email_taken", _ALREADY, "The email address belongs to another user."),
    ErrorCode("user.exists", _ALREADY, "A user with this id is stored already."),
    ErrorCode("user.not_found", _NOT_FOUND, "There is no such user."),
    ErrorCode(
        "verification.code_used",
        _INPUT,
        "The code entered belongs to a verification that is over (used, void or replaced): ask"
        " for a new code.",
    ),
    ErrorCode(
        "verification.codes_paused",
        ("RateLimited",),
        "After a run of wrong codes, no code is accepted for a while; retry_after says how long"
        " (MF-8).",
    ),
    ErrorCode(
        "verification.codes_stopped",
        _STATE,
        "After too many wrong codes in a row, no code is sent or accepted until support staff"
        " clear the count (MF-8).",
    ),
    ErrorCode(
        "verification.expired",
        _INPUT,
        "The code entered has expired (VF-4): ask for a new one; the entry did not count.",
    ),
    ErrorCode(
        "verification.malformed",
        _INPUT,
        "The entry cannot be a code (not the code's number of digits); it did not count.",
    ),
    ErrorCode(
        "verification.no_active_code",
        _INPUT,
        "The last code could not be delivered, so none works (VF-10): ask for a new one.",
    ),
    ErrorCode(
        "verification.no_phone_kind",
        _STATE,
        "The verification does not say which phone number it is for.",
    ),
    ErrorCode(
        "verification.not_active",
        _STATE,
        "The verification has ended (verified, expired or void): start a new one.",
    ),
    ErrorCode(
        "verification.not_started",
        _STATE,
        "No verification of this kind is under way: start one first.",
    ),
    ErrorCode(
        "verification.option_not_offered",
        _INPUT,
        "The delivery option chosen is not one the user's phone numbers allow.",
    ),
    ErrorCode(
        "verification.rate_limited",
        ("RateLimited",),
        "Too many codes were sent within the window; retry_after says when another may be sent.",
    ),
    ErrorCode(
        "verification.same_option",
        _INPUT,
        "The delivery option chosen is the current one: re-send the code instead.",
    ),
    ErrorCode(
        "verification.too_many_wrong",
        _INPUT,
        "The code entered was wrong and reached the limit of wrong entries: the verification is"
        " void, ask for a new code (VF-7).",
    ),
    ErrorCode(
        "verification.wrong_code",
        _INPUT,
        "The code entered is wrong; it counts toward the limit, and the message says how many"
        " tries are left (VF-7).",
    ),
)

#: Every registered code, in order, with its meaning and carriers.
CODES: Final[Mapping[str, ErrorCode]] = MappingProxyType({e.code: e for e in _TABLE})


def is_registered(code: str) -> bool:
    """Return whether ``code`` is in the registry; a dictionary lookup."""
    return code in CODES


def _escape(text: str) -> str:
    """Keep a table cell one cell: a vertical bar would split it."""
    return text.replace("|", r"\|")


def render_markdown() -> str:
    """Return the Markdown of ``docs/errors.md``: every code, grouped by area."""
    lines = [
        "# Error codes",
        "",
        "<!-- Generated from securepractice/error_codes.py: do not edit by hand. Regenerate with",
        "     python -m securepractice.error_codes > docs/errors.md -->",
        "",
        "Every error the library raises carries a stable `code`, and so does every",
        "problem a report returns: a `Violation` of a password or attachment report,",
        "the `reason` of a denied `Decision`. Programs branch on codes, which stay",
        "the same across releases; messages are for people and may be reworded.",
        "",
        "A code is `area.reason`: what it is about, a dot, and what went wrong, both",
        "in lower-case snake_case. Three default codes older than this scheme keep",
        "their names: " + ", ".join(f"`{code}`" for code in sorted(LEGACY_CODES)) + ".",
        "",
        f'"Carried by" names the error class raised with the code, or "{REPORT}" for',
        "a value returned in a report.",
    ]
    areas: dict[str, list[ErrorCode]] = {}
    for entry in sorted(CODES.values(), key=lambda e: (e.code in LEGACY_CODES, e.code)):
        area = "Older codes" if entry.code in LEGACY_CODES else entry.code.partition(".")[0]
        areas.setdefault(area, []).append(entry)
    for area, entries in areas.items():
        lines += ["", f"## {area}", "", "| Code | Carried by | Meaning |", "|---|---|---|"]
        lines += [
            f"| `{e.code}` | {', '.join(e.carriers)} | {_escape(e.meaning)} |" for e in entries
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Write the documentation page to standard output."""
    sys.stdout.write(render_markdown())


if __name__ == "__main__":
    main()
