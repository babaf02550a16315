"""Fixtures of the practice-administration tests; `context` (every store in turn) is the suite's."""

from __future__ import annotations

import pytest

from practice.office import Office
from securepractice.dependencies import Dependencies
from securepractice.testing import InMemoryPaymentProcessor


@pytest.fixture
def processor() -> InMemoryPaymentProcessor:
    """A payment processor that records charges."""
    return InMemoryPaymentProcessor()


@pytest.fixture
def office(context: Dependencies, processor: InMemoryPaymentProcessor) -> Office:
    """Two practices with a manager, a user and an invited user each, and support staff."""
    return Office(context, processor)
