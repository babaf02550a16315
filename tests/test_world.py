"""The testing kit's `World`: what it stores, and a sign-in it refuses to hide."""

from __future__ import annotations

import pytest

from securepractice.dependencies import Dependencies
from securepractice.records import RegistrationStatus
from securepractice.testing import PASSWORD, FakeClock, World


def test_a_refused_sign_in_fails_the_test_with_its_reason_and_not_the_password(
    context: Dependencies,
) -> None:
    world = World(context)
    world.user("pat@clinic.example", practice=world.practice(), locked=True)
    with pytest.raises(AssertionError) as caught:
        world.sign_in("pat@clinic.example")
    assert "locked" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_an_expired_password_is_not_a_signed_in_member(
    context: Dependencies, clock: FakeClock
) -> None:
    """PW-5: the session of an expired password reaches only the change, so it is refused."""
    world = World(context)
    world.user("pat@clinic.example", practice=world.practice(), password="Harbor-Light-77")
    clock.advance(days=90)
    with pytest.raises(AssertionError) as caught:
        world.sign_in("pat@clinic.example", "Harbor-Light-77")
    assert "password_expired" in str(caught.value)
    assert "Harbor-Light-77" not in str(caught.value)


def test_a_user_without_a_password_is_invited_and_a_named_practice_keeps_its_id(
    context: Dependencies,
) -> None:
    world = World(context)
    practice = world.practice("Alpha Dental", practice_id="practice-a")
    user = world.user("new@alpha.example", practice=practice, password=None, deactivated=True)
    with context.storage.unit_of_work() as uow:
        assert uow.practices.get("practice-a") == practice
        assert uow.users.get(user.id) == user
        assert uow.credentials.get(user.id) is None
    assert (user.practice_id, user.status, user.deactivated) == (
        "practice-a",
        RegistrationStatus.INVITED,
        True,
    )
