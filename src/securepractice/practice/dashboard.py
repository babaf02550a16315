"""The dashboard: the products a signed-in user is entitled to (SB-1, SB-2)."""

from __future__ import annotations

from securepractice.accounts._shared import audit
from securepractice.dependencies import Service
from securepractice.policy.roles import Action
from securepractice.practice._base import acting
from securepractice.secret import Secret

__all__ = ["dashboard_products"]


def dashboard_products(service: Service, token: str | Secret[str]) -> tuple[str, ...]:
    """Return the products the signed-in user is entitled to, by name (SB-1).

    Only the user's own entitlements count, so some users of a practice
    see fewer products than it subscribes to; SecureMail bought for the
    user shows at once (SB-2). Support staff have no products.
    """
    with acting(service.deps, token, "dashboard.viewed") as act:
        act.require(Action.VIEW_DASHBOARD, act.actor)
        products = tuple(e.product for e in act.uow.entitlements.list_for_user(act.actor.id))
        audit(
            act.uow, "dashboard.viewed", at=act.now, actor=act.actor, subject=act.actor,
            products=",".join(products),
        )  # fmt: skip
        return products
