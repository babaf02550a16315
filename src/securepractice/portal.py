"""The whole account layer wired together, in one line for the embedded default.

```python
settings = Settings(secret=Secret(bytes.fromhex(os.environ["PORTAL_SECRET"])),
                    links=LinkRules(base_url="https://portal.example"))
portal = Portal.sqlite("portal.db", messaging=Messaging.using(ConsoleMessenger()),
                       settings=settings)
practice = portal.accounts.create_practice(name="Smile Dental")
portal.accounts.invite(practice_id=practice.id, email="dr.smith@example.com")
```

A store kept in a file or on a server needs the portal secret
(``Settings.secret``: at least 32 random bytes, the same in every process);
without it, or with another one than the store first saw, the portal
refuses to start (DP-2). An in-memory portal may go without.
"""

from __future__ import annotations

import functools
import os
from contextlib import AbstractContextManager
from typing import Literal

import attrs
from typing_extensions import TypedDict, Unpack

from securepractice import operations
from securepractice.accounts import (
    factors,
    profile,
    registration,
    reset,
    second_factor,
    signin,
    verification,
)
from securepractice.actions import action
from securepractice.clock import Clock, SystemClock
from securepractice.context import RequestContext
from securepractice.context import request as request_context
from securepractice.dependencies import Dependencies
from securepractice.errors import SettingsError
from securepractice.events import EventHooks
from securepractice.messaging.ports import Messaging
from securepractice.policy.password import CompromisedPasswords
from securepractice.practice import billing, dashboard, support, users
from securepractice.practice.payments import PaymentProcessor
from securepractice.settings import Settings
from securepractice.storage._unit import ClosesOnExit
from securepractice.storage.ports import Storage
from securepractice.throttle import SignInThrottle

__all__ = ["Accounts", "Billing", "Operations", "Portal", "PracticeAdministration"]


@attrs.frozen
class Accounts:
    """Every action a portal user takes for their own account, one method each.

    Invitation and registration, "Verify your Identity", sign-in and
    sessions, forgotten password, change of password, profile, and the
    stronger second factors (authenticator app, recovery codes). Each action
    is a function of its flow's module that takes the facade first; this
    class only names them, and holds the ``deps`` they act through.
    """

    deps: Dependencies

    create_practice = action(registration.create_practice)
    invite = action(registration.invite)
    open_invitation = action(registration.open_invitation)
    add_phones = action(registration.add_phones)
    accept_terms = action(registration.accept_terms)
    set_password = action(registration.set_password)

    delivery_options = action(verification.delivery_options)
    send_code = action(verification.send_code)
    resend_code = action(verification.resend_code)
    change_delivery_method = action(verification.change_delivery_method)
    verify_code = action(verification.verify_code)

    sign_in = action(signin.sign_in)
    second_factor_options = action(second_factor.second_factor_options)
    finish_sign_in = action(second_factor.finish_sign_in)
    trusted_devices = action(second_factor.trusted_devices)
    forget_device = action(second_factor.forget_device)
    touch_session = action(signin.touch_session)
    sign_out = action(signin.sign_out)

    forgot_password = action(reset.forgot_password)
    open_reset_link = action(reset.open_reset_link)
    reset_password = action(reset.reset_password)

    change_password = action(profile.change_password)
    update_profile = action(profile.update_profile)
    set_two_step = action(profile.set_two_step)
    two_step_off_options = action(profile.two_step_off_options)
    send_two_step_off_code = action(profile.send_two_step_off_code)
    resend_two_step_off_code = action(profile.resend_two_step_off_code)
    change_email = action(profile.change_email)
    confirm_email_change = action(profile.confirm_email_change)
    start_phone_change = action(profile.start_phone_change)
    resend_phone_code = action(profile.resend_phone_code)
    verify_phone_code = action(profile.verify_phone_code)

    list_sessions = action(profile.list_sessions)
    end_session = action(profile.end_session)
    end_other_sessions = action(profile.end_other_sessions)

    start_authenticator = action(factors.start_authenticator)
    confirm_authenticator = action(factors.confirm_authenticator)
    remove_authenticator = action(factors.remove_authenticator)
    make_recovery_codes = action(factors.make_recovery_codes)
    recovery_codes_left = action(factors.recovery_codes_left)
    phone_code_notice = action(factors.phone_code_notice)


@attrs.frozen
class PracticeAdministration:
    """What User Managers and support staff do: Manage Users, support actions, dashboards.

    Every action asks the role rules first (`securepractice.policy.roles`)
    and refuses with `PermissionDenied` outside the actor's reach (UM-2).
    """

    deps: Dependencies

    list_users = action(users.list_users)
    edit_invited_user = action(users.edit_invited_user)
    reinvite = action(users.reinvite)
    set_two_step_for = action(users.set_two_step_for)

    unlock = action(support.unlock)
    grant_user_manager = action(support.grant_user_manager)
    revoke_user_manager = action(support.revoke_user_manager)
    edit_practice = action(support.edit_practice)
    subscribe_practice = action(support.subscribe_practice)
    grant_product = action(support.grant_product)
    revoke_product = action(support.revoke_product)
    deactivate = action(support.deactivate)
    end_user_sessions = action(support.end_user_sessions)
    mark_password_compromised = action(support.mark_password_compromised)
    clear_code_guesses = action(support.clear_code_guesses)
    create_support_staff = action(support.create_support_staff)
    list_support_staff = action(support.list_support_staff)
    deactivate_support_staff = action(support.deactivate_support_staff)
    put_card_on_file_for = action(billing.put_card_on_file_for)

    dashboard_products = action(dashboard.dashboard_products)


@attrs.frozen
class Billing:
    """SecureMail bought by User Managers: card on file, purchases, monthly billing (UM-6, UM-7).

    ``processor`` is the card processor that makes the charges.
    """

    deps: Dependencies
    processor: PaymentProcessor

    put_card_on_file = action(billing.put_card_on_file)
    purchase_securemail = action(billing.purchase_securemail)
    run_billing = action(billing.run_billing)
    list_payments = action(billing.list_payments)
    list_invoices = action(billing.list_invoices)
    email_invoices = action(billing.email_invoices)


@attrs.frozen
class Operations:
    """What an operator runs, not a user: housekeeping and the audit export (OP-2, OP-3).

    They act through the portal's store with no session: whoever holds the
    portal's secret and database may run them (the ``securepractice admin``
    command does).
    """

    deps: Dependencies

    prune = action(operations.prune)
    export_audit = action(operations.export_audit)


class PortalOptions(TypedDict, total=False):
    """The optional settings of a `Portal`, as keyword arguments."""

    settings: Settings | None
    clock: Clock | None
    terms_version: str
    portal_name: str
    payment_processor: PaymentProcessor | None
    compromised: CompromisedPasswords | None
    throttle: SignInThrottle | Literal["stored"] | None


class Portal(ClosesOnExit):
    """The account and practice services over one store, one set of channels and one clock.

    ``portal.accounts`` holds every action a user takes for their own
    account, ``portal.practice`` what User Managers and support staff do,
    ``portal.billing`` the SecureMail money rules, and ``portal.operations``
    the operator's housekeeping and audit export. Building one checks
    the portal secret against the store
    (`~securepractice.dependencies.check_secret`): a persistent store needs
    ``settings.secret`` (DP-2). ``compromised`` is the source of
    known-compromised passwords that the NIST profile needs (PW-10, RC-3),
    such as ``CompromisedPasswordFile("breached.txt")``; when given, new
    passwords and the passwords of sign-ins are checked against it (RC-4).
    ``throttle`` counts failed sign-ins by client address (CX-3): the
    shipped `~securepractice.throttle.StoredThrottle` in the portal's store
    unless another is given, or None for none.

    One portal is meant to be shared: by every thread of a worker and, through
    `securepractice.aio.AsyncPortal`, by every task of an event loop.
    """

    def __init__(
        self,
        *,
        storage: Storage,
        messaging: Messaging,
        settings: Settings | None = None,
        clock: Clock | None = None,
        terms_version: str = "1",
        portal_name: str = "Practice Portal",
        payment_processor: PaymentProcessor | None = None,
        compromised: CompromisedPasswords | None = None,
        throttle: SignInThrottle | Literal["stored"] | None = "stored",
    ) -> None:
        build = functools.partial(
            Dependencies,
            storage=storage,
            messaging=messaging,
            settings=settings or Settings(),
            clock=clock or SystemClock(),
            compromised=compromised,
            terms_version=terms_version,
            portal_name=portal_name,
        )
        self.deps = build() if throttle == "stored" else build(throttle=throttle)
        self.accounts = Accounts(self.deps)
        self.practice = PracticeAdministration(self.deps)
        self.operations = Operations(self.deps)
        self._billing = None if payment_processor is None else Billing(self.deps, payment_processor)

    @property
    def events(self) -> EventHooks:
        """The hooks an application subscribes to security events with (OP-5)."""
        return self.deps.events

    @staticmethod
    def request(context: RequestContext | None) -> AbstractContextManager[RequestContext | None]:
        """Give every service call inside the ``with`` block the request's context (CX-1).

        The context (client address, user agent, request id) is kept by the
        audit events the calls write, and its client address is what the
        sign-in throttle counts (CX-3). It is held per thread and per
        asyncio task (`securepractice.context`).
        """
        return request_context(context)

    @property
    def billing(self) -> Billing:
        """SecureMail purchases, monthly billing and invoices (UM-6, UM-7).

        Needs the ``payment_processor`` the portal was built with.
        """
        if self._billing is None:
            raise SettingsError(
                "payment_processor",
                "give the Portal a PaymentProcessor before SecureMail can be bought or billed",
            )
        return self._billing

    @classmethod
    def sqlite(
        cls, path: str | os.PathLike[str], *, messaging: Messaging, **options: Unpack[PortalOptions]
    ) -> Portal:
        """Open (and create or migrate) the SQLite database at ``path``: the embedded default.

        ``settings`` must hold the portal secret (DP-2); when the portal
        refuses to start, the database is closed again.
        """
        from securepractice.storage.sqlite import SQLiteStorage  # noqa: PLC0415 (loaded when used)

        storage = SQLiteStorage(path)
        try:
            return cls(storage=storage, messaging=messaging, **options)
        except BaseException:
            storage.close()
            raise

    @classmethod
    def in_memory(cls, *, messaging: Messaging, **options: Unpack[PortalOptions]) -> Portal:
        """Keep everything in memory: for tests and demonstrations."""
        from securepractice.storage.memory import MemoryStorage  # noqa: PLC0415 (loaded when used)

        return cls(storage=MemoryStorage(), messaging=messaging, **options)

    def close(self) -> None:
        """Release the store."""
        self.deps.storage.close()

    @classmethod
    def postgres(
        cls, conninfo: str, *, messaging: Messaging, **options: Unpack[PortalOptions]
    ) -> Portal:
        """Connect to (and create or migrate) a PostgreSQL database: for several servers (DP-4).

        ``conninfo`` is a libpq connection string or URL; the store's pool
        takes its defaults (`~securepractice.storage.postgres.PostgresStorage`).
        ``settings`` must hold the portal secret (DP-2); when the portal
        refuses to start, the pool is closed again. Needs the postgres extra.
        """
        from securepractice.storage.postgres import PostgresStorage  # noqa: PLC0415 (when used)

        storage = PostgresStorage(conninfo)
        try:
            return cls(storage=storage, messaging=messaging, **options)
        except BaseException:
            storage.close()
            raise
