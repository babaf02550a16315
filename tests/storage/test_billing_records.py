"""The billing records refuse money that is not cents and cards beyond their last four digits."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice.errors import InvalidInput
from securepractice.records import CardOnFile, SecureMailPayment

NOW = datetime(2026, 1, 5, tzinfo=timezone.utc)


def _payment(amount: object) -> SecureMailPayment:
    return SecureMailPayment(id="pay1", purchase_id="sm1", payer_id="u1", account_id="u2",
                             amount_cents=amount, paid_at=NOW)  # type: ignore[arg-type]  # fmt: skip


@given(st.integers(min_value=0, max_value=10**12))
def test_whole_non_negative_cents_are_accepted(amount: int) -> None:
    """UM-6: money is held in integer cents."""
    assert _payment(amount).amount_cents == amount


@pytest.mark.parametrize("amount", [-1, 10.0, 9.99, True, "1000", None])
def test_anything_but_whole_cents_is_refused(amount: object) -> None:
    """UM-6: never floats, never negative."""
    with pytest.raises(InvalidInput) as refused:
        _payment(amount)
    assert (refused.value.code, refused.value.field) == ("money.not_cents", "amount_cents")


@pytest.mark.parametrize("digits", ["424", "42424", "42a2", "٤٢٤٢", "", None])
def test_card_keeps_only_four_ascii_digits(digits: object) -> None:
    """UM-6: a card on file is the processor's token and the last four digits, nothing more."""
    with pytest.raises(InvalidInput) as refused:
        CardOnFile(user_id="u1", processor_token="tok", last_four=digits,  # type: ignore[arg-type]
                   added_at=NOW)  # fmt: skip
    assert refused.value.code == "card.last_four_invalid"


def test_card_token_stays_out_of_repr() -> None:
    """AU-2: the processor token is a credential and never shows."""
    card = CardOnFile(user_id="u1", processor_token="tok_live_secret", last_four="4242",
                      added_at=NOW)  # fmt: skip
    assert "tok_live_secret" not in repr(card)
    assert "4242" in repr(card)
