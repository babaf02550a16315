"""A store that fails on purpose, to prove that flows fail safely (ST-2, LK-8).

`FaultyStorage` wraps any `~securepractice.storage.ports.Storage`. It counts
every storage operation (beginning a unit, each repository call, each
commit) and raises `~securepractice.errors.StorageError` at the operation
you choose, or at every operation during a simulated outage. The wrapped
unit of work then rolls back, so a test can check, for every ``k``, that a
flow failing at its ``k``-th operation leaves everything or nothing::

    store = FaultyStorage(MemoryStorage(), fail_at=3)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

from typing_extensions import Self

from securepractice.errors import StorageError
from securepractice.storage._unit import ClosesOnExit
from securepractice.storage.ports import (
    AuditLog,
    AuditSinks,
    Cards,
    Challenges,
    ClientFailures,
    CodeSends,
    Credentials,
    Entitlements,
    LinkTokens,
    Practices,
    SecureMailBilling,
    Sessions,
    SignInFailures,
    Storage,
    Subscriptions,
    TermsAcceptances,
    UnitOfWork,
    Users,
)

__all__ = ["FaultyStorage", "FaultyUnitOfWork"]


class _Plan:
    """Which operations fail, and how many have run; shared by every unit of a store."""

    def __init__(self, fail_at: int | None) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.fail_at = fail_at
        self.outage = False

    def tick(self, operation: str) -> None:
        with self.lock:
            self.calls += 1
            number = self.calls
            fail = self.outage or number == self.fail_at
        if fail:
            raise StorageError(f"storage failed at operation {number} ({operation}), on purpose")


class _Repository:
    """Counts each call of a repository method, failing it when the plan says so."""

    def __init__(self, inner: object, plan: _Plan, name: str) -> None:
        self._inner = inner
        self._plan = plan
        self._name = name

    def __getattr__(self, method: str) -> Callable[..., Any]:
        target: Callable[..., Any] = getattr(self._inner, method)

        def call(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - forwards any port method
            self._plan.tick(f"{self._name}.{method}")
            return target(*args, **kwargs)

        return call


class FaultyUnitOfWork:
    """A unit of work that counts and may fail each operation; see `FaultyStorage`."""

    def __init__(self, inner: UnitOfWork, plan: _Plan) -> None:
        self._inner = inner
        self._plan = plan
        self.practices = cast("Practices", _Repository(inner.practices, plan, "practices"))
        self.users = cast("Users", _Repository(inner.users, plan, "users"))
        self.credentials = cast("Credentials", _Repository(inner.credentials, plan, "credentials"))
        self.sign_in_failures = cast(
            "SignInFailures", _Repository(inner.sign_in_failures, plan, "sign_in_failures")
        )
        self.challenges = cast("Challenges", _Repository(inner.challenges, plan, "challenges"))
        self.code_sends = cast("CodeSends", _Repository(inner.code_sends, plan, "code_sends"))
        self.link_tokens = cast("LinkTokens", _Repository(inner.link_tokens, plan, "link_tokens"))
        self.sessions = cast("Sessions", _Repository(inner.sessions, plan, "sessions"))
        self.audit = cast("AuditLog", _Repository(inner.audit, plan, "audit"))
        self.audit_sinks = cast("AuditSinks", _Repository(inner.audit_sinks, plan, "audit_sinks"))
        self.client_failures = cast(
            "ClientFailures", _Repository(inner.client_failures, plan, "client_failures")
        )
        self.terms = cast("TermsAcceptances", _Repository(inner.terms, plan, "terms"))
        self.subscriptions = cast(
            "Subscriptions", _Repository(inner.subscriptions, plan, "subscriptions")
        )
        self.entitlements = cast(
            "Entitlements", _Repository(inner.entitlements, plan, "entitlements")
        )
        self.cards = cast("Cards", _Repository(inner.cards, plan, "cards"))
        self.securemail = cast(
            "SecureMailBilling", _Repository(inner.securemail, plan, "securemail")
        )

    def __enter__(self) -> Self:
        self._plan.tick("begin")
        self._inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                self._plan.tick("commit")
            except StorageError as error:
                self._inner.__exit__(StorageError, error, error.__traceback__)
                raise
        self._inner.__exit__(exc_type, exc, tb)


class FaultyStorage(ClosesOnExit):
    """Wraps a store; its ``fail_at``-th operation (counting from 1) raises `StorageError`.

    ``calls`` tells how many operations ran so far. `start_outage` makes
    every operation fail until `end_outage`, as an unreachable database would.
    `persistent` and `remember_secret` are the wrapped store's, passed
    through uncounted: they belong to starting a portal, not to a unit.
    """

    def __init__(self, inner: Storage, *, fail_at: int | None = None) -> None:
        self.inner = inner
        self._plan = _Plan(fail_at)

    @property
    def calls(self) -> int:
        """How many operations were attempted, failed ones included."""
        return self._plan.calls

    def fail_at(self, operation: int | None) -> None:
        """Fail the ``operation``-th operation counted from now (1 is the next); None: none."""
        with self._plan.lock:
            self._plan.fail_at = None if operation is None else self._plan.calls + operation

    def start_outage(self) -> None:
        """Fail every operation from now on."""
        self._plan.outage = True

    def end_outage(self) -> None:
        """Let operations through again."""
        self._plan.outage = False

    @property
    def persistent(self) -> bool:
        """Whether the wrapped store's records outlive the process."""
        return self.inner.persistent

    def remember_secret(self, fingerprint: str, *, replacing: str | None = None) -> None:
        """Let the wrapped store remember the portal secret's fingerprint (DP-2)."""
        self.inner.remember_secret(fingerprint, replacing=replacing)

    def unit_of_work(self, *, durable: bool = True) -> FaultyUnitOfWork:
        """Return a unit of work of the wrapped store, counted and failing as planned."""
        return FaultyUnitOfWork(self.inner.unit_of_work(durable=durable), self._plan)

    def close(self) -> None:
        """Close the wrapped store."""
        self.inner.close()
