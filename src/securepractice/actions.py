"""What the facades do around every action: audit an attempt the rules refused (CX-1).

A refused attempt (a send over the limit, a step out of order, a session or
link that is not valid, an action outside the actor's role) rolls its unit
of work back, and its own audit events with it; so the facade records it
afterwards, in a unit of its own, as ``request.refused`` with the error's
code as outcome, the action's name, and the request context of the call,
unless the action audited the refusal itself (the practice actions do, with
the actor: `securepractice.practice._base.acting`). The refusal itself then
reaches the caller unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from securepractice.accounts._shared import audit
from securepractice.context import call
from securepractice.dependencies import Service
from securepractice.errors import (
    InvalidState,
    InvalidToken,
    PermissionDenied,
    RateLimited,
    StorageError,
)
from securepractice.records import User

__all__ = ["REFUSALS", "action", "record_refusal"]

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S", bound=Service)

#: The errors that are refused attempts, audited as ``request.refused`` (CX-1).
REFUSALS = (InvalidState, InvalidToken, PermissionDenied, RateLimited)


def record_refusal(
    service: Service, name: str, module: str, refusal: Exception, *, about: User | None
) -> None:
    """Audit a refused attempt at ``name`` in a unit of its own; a store that fails is let be.

    ``about`` is the user whose session or link the attempt came with, when
    the action got as far as knowing (AU-1).

    The refusal is what the caller must hear about: a store too broken to
    record it must not replace it with a `StorageError`.
    """
    code = getattr(refusal, "code", type(refusal).__name__)
    deps = service.deps
    try:
        with deps.unit() as uow:
            audit(
                uow, "request.refused", code, at=deps.now(), actor=about, subject=about,
                written_by=module, call=name,
            )  # fmt: skip
    except StorageError:
        return


def action(fn: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """Return ``fn``, a service action, auditing each attempt it refuses (CX-1)."""
    name = fn.__name__

    @functools.wraps(fn)
    def run(service: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with call() as note:
            try:
                return fn(service, *args, **kwargs)
            except REFUSALS as refusal:
                if not refusal.audited:
                    record_refusal(service, name, fn.__module__, refusal, about=note.user)
                raise

    return run
