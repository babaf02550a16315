"""Fixtures of the verification tests: rules, a user's numbers and their options."""

from __future__ import annotations

import pytest

from securepractice.records import Phone, PhoneKind
from securepractice.settings import LinkRules, VerificationRules
from securepractice.verification.phones import DeliveryOption, delivery_options


@pytest.fixture
def rules() -> VerificationRules:
    """The spec's verification defaults, with a fresh random code key."""
    return VerificationRules()


@pytest.fixture
def link_rules() -> LinkRules:
    """The spec's link defaults, with the portal's address set."""
    return LinkRules(base_url="https://portal.example.com")


@pytest.fixture
def us_cell() -> Phone:
    """A US number given as cell phone: it takes texts and calls."""
    return Phone(number="+12025550143", kind=PhoneKind.CELL)


@pytest.fixture
def uk_landline() -> Phone:
    """A UK fixed line given as phone: it takes calls only."""
    return Phone(number="+442079460958", kind=PhoneKind.PHONE)


@pytest.fixture
def offered(us_cell: Phone, uk_landline: Phone) -> tuple[DeliveryOption, ...]:
    """The options of a user with that cell phone and that landline: SMS, voice, voice."""
    return delivery_options([us_cell, uk_landline])
