"""How a finished sign-in attempt counts toward lockout, as a pure rule (LK-3, LK-4, LK-8, DP-5)."""

from __future__ import annotations

import pytest

from securepractice.policy.lockout import attempt_outcome
from securepractice.records import AttemptOutcome


@pytest.mark.parametrize(
    ("matched", "accepted", "outcome"),
    [
        (True, True, AttemptOutcome.RIGHT),  # LK-3: a sign-in clears the failures
        (False, False, AttemptOutcome.WRONG),  # a wrong password, or refused unchecked (LK-4)
        (True, False, AttemptOutcome.NOT_COUNTED),  # DP-5: right, refused by what changed
        (None, False, AttemptOutcome.NOT_COUNTED),  # LK-8: an unreadable hash
    ],
)
def test_dp_5_only_a_wrong_or_unchecked_password_is_a_failure(
    matched: bool | None, accepted: bool, outcome: AttemptOutcome
) -> None:
    """DP-5, LK-8: a right password never counts as a failure, accepted or not."""
    assert attempt_outcome(matched=matched, accepted=accepted) is outcome
