"""Records that hold personal data keep it out of their repr (AU-2)."""

from __future__ import annotations

from datetime import datetime, timezone

from securepractice import Phone, PhoneKind, User


def test_au_2_a_user_and_a_phone_are_named_by_id_and_kind_only() -> None:
    phone = Phone(number="+12025550143", kind=PhoneKind.CELL)
    user = User(
        id="u1",
        practice_id="p1",
        email="dr.smith@example.com",
        first_name="Dana",
        last_name="Smith",
        phones=(phone,),
        created_at=datetime(2026, 1, 5, tzinfo=timezone.utc),
    )
    shown = repr(user) + repr(phone) + str(user)
    for personal in ("dr.smith", "example.com", "Dana", "Smith", "2025550143"):
        assert personal not in shown
    assert "u1" in repr(user)
    assert "CELL" in repr(phone)
