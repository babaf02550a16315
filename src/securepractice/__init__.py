"""securepractice: the account-security layer of a practice portal.

The names a user imports live here; everything else may change freely.
"""

from __future__ import annotations

from securepractice.clock import Clock, FakeClock, SystemClock
from securepractice.errors import (
    AlreadyExists,
    CorruptHash,
    DeliveryFailed,
    InvalidInput,
    InvalidState,
    InvalidToken,
    NotFound,
    PermissionDenied,
    RateLimited,
    SecurePracticeError,
    SettingsError,
    StorageError,
)
from securepractice.policy.hashing import PasswordHasher
from securepractice.policy.password import (
    CompromisedPasswordFile,
    CompromisedPasswords,
    PasswordPolicy,
    PasswordReport,
    Violation,
    normalize_password,
    password_expired,
    password_expires_at,
)
from securepractice.secret import Secret
from securepractice.settings import (
    SEED_ATTACHMENT_EXTENSIONS,
    AttachmentRules,
    BillingRules,
    HashParameters,
    LinkRules,
    PasswordRules,
    Settings,
    SignInRules,
    VerificationRules,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "SEED_ATTACHMENT_EXTENSIONS",
    "AlreadyExists",
    "AttachmentRules",
    "BillingRules",
    "Clock",
    "CompromisedPasswordFile",
    "CompromisedPasswords",
    "CorruptHash",
    "DeliveryFailed",
    "FakeClock",
    "HashParameters",
    "InvalidInput",
    "InvalidState",
    "InvalidToken",
    "LinkRules",
    "NotFound",
    "PasswordHasher",
    "PasswordPolicy",
    "PasswordReport",
    "PasswordRules",
    "PermissionDenied",
    "RateLimited",
    "Secret",
    "SecurePracticeError",
    "Settings",
    "SettingsError",
    "SignInRules",
    "StorageError",
    "SystemClock",
    "VerificationRules",
    "Violation",
    "__version__",
    "normalize_password",
    "password_expired",
    "password_expires_at",
]
