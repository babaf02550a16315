"""The one exception hierarchy of securepractice.

Expected user mistakes (a weak password, a wrong code) are values, not
exceptions. Exceptions are for what a caller must not ignore. Every exception
carries a stable machine-readable ``code`` and a plain-English message that
never contains a password, code, token or hash (AU-2). Every code is
registered, with its meaning, in `securepractice.error_codes`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

__all__ = [
    "AlreadyExists",
    "Conflict",
    "CorruptHash",
    "CorruptSecret",
    "DeliveryFailed",
    "InvalidInput",
    "InvalidState",
    "InvalidToken",
    "NotFound",
    "PaymentFailed",
    "PermissionDenied",
    "RateLimited",
    "SecurePracticeError",
    "SettingsError",
    "StorageError",
]


class SecurePracticeError(Exception):
    """Root of every error this library raises; never raised itself.

    ``code`` is stable across releases and meant for programs; ``message``
    is plain English and meant for people. Every code the library raises is
    in `securepractice.error_codes.CODES` (a test reads the source to prove
    it); an application's own adapters may raise with codes of their own.
    """

    default_code: ClassVar[str] = "securepractice.error"
    #: Whether the action that raised it has audited it already (the facades then do not, CX-1).
    audited: bool = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        if type(self) is SecurePracticeError:
            msg = "SecurePracticeError is abstract: raise one of its subclasses"
            raise TypeError(msg)
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled whole (code, field, retry_after ...), so that errors cross process
        # boundaries (multiprocessing, task queues) unchanged whatever their signature.
        return (_restore, (type(self), self.args, self.__dict__))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


def _restore(
    kind: type[SecurePracticeError], args: tuple[object, ...], state: dict[str, object]
) -> SecurePracticeError:
    """Rebuild a pickled error without calling its ``__init__``, whose arguments vary."""
    error = kind.__new__(kind)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class SettingsError(SecurePracticeError, ValueError):
    """A `Settings` value was built with a value the rules cannot work with."""

    default_code = "settings.invalid"

    def __init__(self, field: str, message: str, *, code: str | None = None) -> None:
        super().__init__(f"{field}: {message}", code=code)
        self.field = field


class InvalidInput(SecurePracticeError, ValueError):
    """A value given by a caller or a user is malformed (an email, a phone number).

    ``field`` names the form field the value came from, so a user interface
    can show the message beside it.
    """

    default_code = "input.invalid"

    def __init__(self, message: str, *, field: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


class InvalidState(SecurePracticeError):
    """An action was asked for at a point where the flow does not allow it.

    For example a registration step done out of order (RG-2). Nothing changes.
    """

    default_code = "flow.out_of_order"


class AlreadyExists(SecurePracticeError):
    """The thing to create exists already (an email that is another user's)."""

    default_code = "already_exists"


class PermissionDenied(SecurePracticeError):
    """The actor may not do this action to this subject; nothing changed."""

    default_code = "permission.denied"


class NotFound(SecurePracticeError):
    """The record asked for does not exist."""

    default_code = "not_found"


class InvalidToken(SecurePracticeError):
    """A link token is unknown, expired, used or superseded.

    One error for all four, so that nothing tells which (RG-6).
    """

    default_code = "token.invalid"


class RateLimited(SecurePracticeError):
    """Too many attempts; ``retry_after`` says how long until the next one is allowed."""

    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after: timedelta, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class DeliveryFailed(SecurePracticeError):
    """A message could not be handed to its channel (email, sms or voice)."""

    default_code = "delivery.failed"

    def __init__(self, message: str, *, channel: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.channel = channel


class StorageError(SecurePracticeError):
    """Storage could not be reached or could not complete a unit of work.

    Nothing of the unit of work was kept.
    """

    default_code = "storage.unavailable"


class Conflict(StorageError):
    """A record changed in another unit of work between this unit's read and its save.

    Raised by a store's ``save(record, expected_version=...)``; the unit is
    rolled back. Services turn it into the user's answer (a link or a code
    already used) where it means one; elsewhere the action may be retried.
    """

    default_code = "storage.conflict"


class CorruptHash(SecurePracticeError):
    """A stored password hash cannot be read: it is truncated, altered or not argon2."""

    default_code = "hash.corrupt"


class CorruptSecret(SecurePracticeError):
    """A sealed secret (an authenticator app's seed) cannot be opened with the portal's keys.

    It was altered, cut short, copied from another user, or sealed under a
    secret the portal no longer has (MF-10).
    """

    default_code = "secret.unreadable"


class PaymentFailed(SecurePracticeError):
    """The payment processor refused or could not make a charge; nothing was granted."""

    default_code = "payment.failed"
