"""The dummy verification of a refused sign-in: the cost of a real one, from the first (LK-5)."""

from __future__ import annotations

import argon2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import CHEAP_HASHING
from securepractice.policy.hashing import PasswordHasher


def test_lk_5_a_new_hasher_hashes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """No sign-in of a process, known email or not, pays for making the dummy hash."""
    hashed: list[bytes] = []
    monkeypatch.setattr(argon2.PasswordHasher, "hash", lambda _self, pw, **_: hashed.append(pw))
    PasswordHasher(CHEAP_HASHING).dummy_verify("Wrong-2026")
    assert hashed == []


@given(st.text(max_size=64))
def test_lk_5_no_password_matches_the_dummy_hash(password: str) -> None:
    hasher = _CHEAP
    hasher.dummy_verify(password)
    assert hasher.verify(hasher._dummy, password) is False


def test_lk_5_each_hasher_has_a_dummy_hash_of_its_own() -> None:
    """Random salt and tag: two hashers share nothing an attacker could precompute."""
    assert PasswordHasher(CHEAP_HASHING)._dummy != PasswordHasher(CHEAP_HASHING)._dummy


_CHEAP = PasswordHasher(CHEAP_HASHING)
