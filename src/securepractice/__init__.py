"""securepractice: the account-security layer of a practice portal.

The names a user imports live here; everything else may change freely. They
are imported on first use (PEP 562), so that ``import securepractice`` or a
pure module such as ``securepractice.policy.lockout`` loads no storage or
messaging adapter, and no database, mail or network module.
"""

from __future__ import annotations

from securepractice._lazy import lazy_exports

#: True only for type checkers, which know the name; importing it from
#: ``typing`` would cost a bare ``import`` of this package most of its time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    # The names of _MODULE_OF, for type checkers and editors; the "as" form
    # re-exports them. tests/test_import_cost.py checks the two listings agree.
    from securepractice.accounts.factors import FactorEntry as FactorEntry
    from securepractice.accounts.factors import NewAuthenticator as NewAuthenticator
    from securepractice.accounts.profile import ChangePasswordResult as ChangePasswordResult
    from securepractice.accounts.profile import SessionInfo as SessionInfo
    from securepractice.accounts.registration import RegistrationStage as RegistrationStage
    from securepractice.accounts.registration import RegistrationStep as RegistrationStep
    from securepractice.accounts.reset import ResetStage as ResetStage
    from securepractice.accounts.reset import ResetStep as ResetStep
    from securepractice.accounts.signin import SessionStatus as SessionStatus
    from securepractice.accounts.signin import SignInOutcome as SignInOutcome
    from securepractice.accounts.signin import SignInReason as SignInReason
    from securepractice.accounts.signin import SignInResult as SignInResult
    from securepractice.aio import AsyncPortal as AsyncPortal
    from securepractice.clock import Clock as Clock
    from securepractice.clock import FakeClock as FakeClock
    from securepractice.clock import SystemClock as SystemClock
    from securepractice.context import RequestContext as RequestContext
    from securepractice.dependencies import Dependencies as Dependencies
    from securepractice.dependencies import Service as Service
    from securepractice.errors import AlreadyExists as AlreadyExists
    from securepractice.errors import Conflict as Conflict
    from securepractice.errors import CorruptHash as CorruptHash
    from securepractice.errors import DeliveryFailed as DeliveryFailed
    from securepractice.errors import InvalidInput as InvalidInput
    from securepractice.errors import InvalidState as InvalidState
    from securepractice.errors import InvalidToken as InvalidToken
    from securepractice.errors import NotFound as NotFound
    from securepractice.errors import PaymentFailed as PaymentFailed
    from securepractice.errors import PermissionDenied as PermissionDenied
    from securepractice.errors import RateLimited as RateLimited
    from securepractice.errors import SecurePracticeError as SecurePracticeError
    from securepractice.errors import SettingsError as SettingsError
    from securepractice.errors import StorageError as StorageError
    from securepractice.events import AccountLocked as AccountLocked
    from securepractice.events import EventHooks as EventHooks
    from securepractice.events import PasswordChanged as PasswordChanged
    from securepractice.events import RoleGranted as RoleGranted
    from securepractice.events import RoleRevoked as RoleRevoked
    from securepractice.events import SecureMailBought as SecureMailBought
    from securepractice.events import SecurityEvent as SecurityEvent
    from securepractice.events import SignedIn as SignedIn
    from securepractice.events import SignInRefused as SignInRefused
    from securepractice.messaging.console import ConsoleMessenger as ConsoleMessenger
    from securepractice.messaging.outbox import NothingSent as NothingSent
    from securepractice.messaging.outbox import Outbox as Outbox
    from securepractice.messaging.ports import EmailMessage as EmailMessage
    from securepractice.messaging.ports import EmailSender as EmailSender
    from securepractice.messaging.ports import Messaging as Messaging
    from securepractice.messaging.ports import MessagingAdapter as MessagingAdapter
    from securepractice.messaging.ports import SmsMessage as SmsMessage
    from securepractice.messaging.ports import SmsSender as SmsSender
    from securepractice.messaging.ports import VoiceCaller as VoiceCaller
    from securepractice.messaging.ports import VoiceMessage as VoiceMessage
    from securepractice.messaging.smtp import SmtpEmailSender as SmtpEmailSender
    from securepractice.messaging.smtp import SmtpSecurity as SmtpSecurity
    from securepractice.messaging.templates import EmailTemplate as EmailTemplate
    from securepractice.messaging.templates import MessageTemplates as MessageTemplates
    from securepractice.policy.attachments import Attachment as Attachment
    from securepractice.policy.attachments import AttachmentPolicy as AttachmentPolicy
    from securepractice.policy.attachments import FileReport as FileReport
    from securepractice.policy.attachments import MessageReport as MessageReport
    from securepractice.policy.compromised import CompromisedCheckFailed as CompromisedCheckFailed
    from securepractice.policy.compromised import (
        CompromisedPasswordRange as CompromisedPasswordRange,
    )
    from securepractice.policy.compromised import RangeFetch as RangeFetch
    from securepractice.policy.hashing import PasswordHasher as PasswordHasher
    from securepractice.policy.identity import normalize_email as normalize_email
    from securepractice.policy.password import CompromisedPasswordFile as CompromisedPasswordFile
    from securepractice.policy.password import CompromisedPasswords as CompromisedPasswords
    from securepractice.policy.password import PasswordPolicy as PasswordPolicy
    from securepractice.policy.password import PasswordReport as PasswordReport
    from securepractice.policy.password import Violation as Violation
    from securepractice.policy.password import normalize_password as normalize_password
    from securepractice.policy.password import password_expired as password_expired
    from securepractice.policy.password import password_expires_at as password_expires_at
    from securepractice.policy.roles import Action as Action
    from securepractice.policy.roles import Decision as Decision
    from securepractice.policy.roles import decide as decide
    from securepractice.policy.securemail import SECUREMAIL as SECUREMAIL
    from securepractice.policy.securemail import format_cents as format_cents
    from securepractice.portal import Accounts as Accounts
    from securepractice.portal import Billing as Billing
    from securepractice.portal import Operations as Operations
    from securepractice.portal import Portal as Portal
    from securepractice.portal import PracticeAdministration as PracticeAdministration
    from securepractice.practice.billing import BillingRun as BillingRun
    from securepractice.practice.payments import Charge as Charge
    from securepractice.practice.payments import (
        InMemoryPaymentProcessor as InMemoryPaymentProcessor,
    )
    from securepractice.practice.payments import PaymentProcessor as PaymentProcessor
    from securepractice.practice.users import ManagedUser as ManagedUser
    from securepractice.records import AttemptOutcome as AttemptOutcome
    from securepractice.records import AuditEvent as AuditEvent
    from securepractice.records import CardOnFile as CardOnFile
    from securepractice.records import Challenge as Challenge
    from securepractice.records import ChallengeState as ChallengeState
    from securepractice.records import Credential as Credential
    from securepractice.records import DeliveryMethod as DeliveryMethod
    from securepractice.records import Entitlement as Entitlement
    from securepractice.records import Invoice as Invoice
    from securepractice.records import LinkToken as LinkToken
    from securepractice.records import Phone as Phone
    from securepractice.records import PhoneKind as PhoneKind
    from securepractice.records import Practice as Practice
    from securepractice.records import PracticeSubscription as PracticeSubscription
    from securepractice.records import Purpose as Purpose
    from securepractice.records import RegistrationStatus as RegistrationStatus
    from securepractice.records import Role as Role
    from securepractice.records import SecureMailPayment as SecureMailPayment
    from securepractice.records import SecureMailPurchase as SecureMailPurchase
    from securepractice.records import SendLedger as SendLedger
    from securepractice.records import Session as Session
    from securepractice.records import TermsAcceptance as TermsAcceptance
    from securepractice.records import TokenPurpose as TokenPurpose
    from securepractice.records import User as User
    from securepractice.secret import Secret as Secret
    from securepractice.settings import SEED_ATTACHMENT_EXTENSIONS as SEED_ATTACHMENT_EXTENSIONS
    from securepractice.settings import AttachmentRules as AttachmentRules
    from securepractice.settings import BillingRules as BillingRules
    from securepractice.settings import HashParameters as HashParameters
    from securepractice.settings import LinkRules as LinkRules
    from securepractice.settings import Lockout as Lockout
    from securepractice.settings import PasswordRules as PasswordRules
    from securepractice.settings import SecondFactor as SecondFactor
    from securepractice.settings import Settings as Settings
    from securepractice.settings import SignInRules as SignInRules
    from securepractice.settings import VerificationRules as VerificationRules
    from securepractice.storage.faults import FaultyStorage as FaultyStorage
    from securepractice.storage.memory import MemoryStorage as MemoryStorage
    from securepractice.storage.ports import Storage as Storage
    from securepractice.storage.ports import UnitOfWork as UnitOfWork
    from securepractice.storage.postgres import PostgresStorage as PostgresStorage
    from securepractice.storage.sqlite import SQLiteStorage as SQLiteStorage
    from securepractice.throttle import SignInThrottle as SignInThrottle
    from securepractice.throttle import StoredThrottle as StoredThrottle
    from securepractice.verification.codes import CodeIssued as CodeIssued
    from securepractice.verification.codes import VerifyOutcome as VerifyOutcome
    from securepractice.verification.codes import VerifyResult as VerifyResult
    from securepractice.verification.phones import DeliveryOption as DeliveryOption
    from securepractice.verification.phones import delivery_options as delivery_options
    from securepractice.verification.phones import parse_phone as parse_phone
    from securepractice.verification.tokens import INVALID_LINK_MESSAGE as INVALID_LINK_MESSAGE
    from securepractice.verification.tokens import IssuedToken as IssuedToken
    from securepractice.verification.tokens import TokenProblem as TokenProblem
    from securepractice.web import HttpError as HttpError
    from securepractice.web import http_error as http_error
    from securepractice.web import request_context as request_context

__version__ = "0.1.0.dev0"

#: Each public name and the module it lives in: the one runtime listing.
_MODULE_OF: dict[str, str] = {
    "FactorEntry": "securepractice.accounts.factors",
    "NewAuthenticator": "securepractice.accounts.factors",
    "ChangePasswordResult": "securepractice.accounts.profile",
    "SessionInfo": "securepractice.accounts.profile",
    "RegistrationStage": "securepractice.accounts.registration",
    "RegistrationStep": "securepractice.accounts.registration",
    "ResetStage": "securepractice.accounts.reset",
    "ResetStep": "securepractice.accounts.reset",
    "SessionStatus": "securepractice.accounts.signin",
    "SignInOutcome": "securepractice.accounts.signin",
    "SignInReason": "securepractice.accounts.signin",
    "SignInResult": "securepractice.accounts.signin",
    "Clock": "securepractice.clock",
    "FakeClock": "securepractice.clock",
    "SystemClock": "securepractice.clock",
    "Dependencies": "securepractice.dependencies",
    "Service": "securepractice.dependencies",
    "AlreadyExists": "securepractice.errors",
    "Conflict": "securepractice.errors",
    "CorruptHash": "securepractice.errors",
    "DeliveryFailed": "securepractice.errors",
    "InvalidInput": "securepractice.errors",
    "InvalidState": "securepractice.errors",
    "InvalidToken": "securepractice.errors",
    "NotFound": "securepractice.errors",
    "PaymentFailed": "securepractice.errors",
    "PermissionDenied": "securepractice.errors",
    "RateLimited": "securepractice.errors",
    "SecurePracticeError": "securepractice.errors",
    "SettingsError": "securepractice.errors",
    "StorageError": "securepractice.errors",
    "ConsoleMessenger": "securepractice.messaging.console",
    "NothingSent": "securepractice.messaging.outbox",
    "Outbox": "securepractice.messaging.outbox",
    "EmailMessage": "securepractice.messaging.ports",
    "EmailSender": "securepractice.messaging.ports",
    "Messaging": "securepractice.messaging.ports",
    "MessagingAdapter": "securepractice.messaging.ports",
    "SmsMessage": "securepractice.messaging.ports",
    "SmsSender": "securepractice.messaging.ports",
    "VoiceCaller": "securepractice.messaging.ports",
    "VoiceMessage": "securepractice.messaging.ports",
    "SmtpEmailSender": "securepractice.messaging.smtp",
    "SmtpSecurity": "securepractice.messaging.smtp",
    "Attachment": "securepractice.policy.attachments",
    "AttachmentPolicy": "securepractice.policy.attachments",
    "FileReport": "securepractice.policy.attachments",
    "MessageReport": "securepractice.policy.attachments",
    "CompromisedCheckFailed": "securepractice.policy.compromised",
    "CompromisedPasswordRange": "securepractice.policy.compromised",
    "RangeFetch": "securepractice.policy.compromised",
    "PasswordHasher": "securepractice.policy.hashing",
    "normalize_email": "securepractice.policy.identity",
    "CompromisedPasswordFile": "securepractice.policy.password",
    "CompromisedPasswords": "securepractice.policy.password",
    "PasswordPolicy": "securepractice.policy.password",
    "PasswordReport": "securepractice.policy.password",
    "Violation": "securepractice.policy.password",
    "normalize_password": "securepractice.policy.password",
    "password_expired": "securepractice.policy.password",
    "password_expires_at": "securepractice.policy.password",
    "Action": "securepractice.policy.roles",
    "Decision": "securepractice.policy.roles",
    "decide": "securepractice.policy.roles",
    "SECUREMAIL": "securepractice.policy.securemail",
    "format_cents": "securepractice.policy.securemail",
    "AsyncPortal": "securepractice.aio",
    "RequestContext": "securepractice.context",
    "AccountLocked": "securepractice.events",
    "EventHooks": "securepractice.events",
    "PasswordChanged": "securepractice.events",
    "RoleGranted": "securepractice.events",
    "RoleRevoked": "securepractice.events",
    "SecureMailBought": "securepractice.events",
    "SecurityEvent": "securepractice.events",
    "SignInRefused": "securepractice.events",
    "SignedIn": "securepractice.events",
    "SignInThrottle": "securepractice.throttle",
    "StoredThrottle": "securepractice.throttle",
    "HttpError": "securepractice.web",
    "http_error": "securepractice.web",
    "request_context": "securepractice.web",
    "Accounts": "securepractice.portal",
    "Billing": "securepractice.portal",
    "Operations": "securepractice.portal",
    "Portal": "securepractice.portal",
    "PracticeAdministration": "securepractice.portal",
    "BillingRun": "securepractice.practice.billing",
    "Charge": "securepractice.practice.payments",
    "InMemoryPaymentProcessor": "securepractice.practice.payments",
    "PaymentProcessor": "securepractice.practice.payments",
    "ManagedUser": "securepractice.practice.users",
    "AttemptOutcome": "securepractice.records",
    "AuditEvent": "securepractice.records",
    "CardOnFile": "securepractice.records",
    "Challenge": "securepractice.records",
    "ChallengeState": "securepractice.records",
    "SendLedger": "securepractice.records",
    "Credential": "securepractice.records",
    "DeliveryMethod": "securepractice.records",
    "Entitlement": "securepractice.records",
    "Invoice": "securepractice.records",
    "LinkToken": "securepractice.records",
    "Phone": "securepractice.records",
    "PhoneKind": "securepractice.records",
    "Practice": "securepractice.records",
    "PracticeSubscription": "securepractice.records",
    "Purpose": "securepractice.records",
    "RegistrationStatus": "securepractice.records",
    "Role": "securepractice.records",
    "SecureMailPayment": "securepractice.records",
    "SecureMailPurchase": "securepractice.records",
    "Session": "securepractice.records",
    "TermsAcceptance": "securepractice.records",
    "TokenPurpose": "securepractice.records",
    "User": "securepractice.records",
    "Secret": "securepractice.secret",
    "SEED_ATTACHMENT_EXTENSIONS": "securepractice.settings",
    "AttachmentRules": "securepractice.settings",
    "BillingRules": "securepractice.settings",
    "HashParameters": "securepractice.settings",
    "LinkRules": "securepractice.settings",
    "PasswordRules": "securepractice.settings",
    "Lockout": "securepractice.settings",
    "SecondFactor": "securepractice.settings",
    "EmailTemplate": "securepractice.messaging.templates",
    "MessageTemplates": "securepractice.messaging.templates",
    "Settings": "securepractice.settings",
    "SignInRules": "securepractice.settings",
    "VerificationRules": "securepractice.settings",
    "FaultyStorage": "securepractice.storage.faults",
    "MemoryStorage": "securepractice.storage.memory",
    "Storage": "securepractice.storage.ports",
    "PostgresStorage": "securepractice.storage.postgres",
    "UnitOfWork": "securepractice.storage.ports",
    "SQLiteStorage": "securepractice.storage.sqlite",
    "CodeIssued": "securepractice.verification.codes",
    "VerifyOutcome": "securepractice.verification.codes",
    "VerifyResult": "securepractice.verification.codes",
    "DeliveryOption": "securepractice.verification.phones",
    "delivery_options": "securepractice.verification.phones",
    "parse_phone": "securepractice.verification.phones",
    "INVALID_LINK_MESSAGE": "securepractice.verification.tokens",
    "IssuedToken": "securepractice.verification.tokens",
    "TokenProblem": "securepractice.verification.tokens",
}

__all__ = list(_MODULE_OF)
__all__ += ["__version__"]


_load, __dir__ = lazy_exports(__name__, _MODULE_OF, globals())

# Hidden from type checkers: they type the names by the imports above and flag
# any other, where a visible __getattr__ would make every attribute valid.
if not TYPE_CHECKING:  # pragma: no branch - always taken when the code runs
    __getattr__ = _load
