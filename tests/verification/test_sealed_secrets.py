"""Authenticator seeds sealed with AES-256-GCM under keys from the portal secret (MF-10)."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice.errors import CorruptSecret, SettingsError
from securepractice.secret import Secret
from securepractice.verification import sealed

CURRENT = Secret(b"c" * 32)
PREVIOUS = Secret(b"p" * 32)
SEED = Secret(b"\x07" * 20)


@given(value=st.binary(max_size=64), owner=st.text(max_size=40))
def test_mf_10_what_is_sealed_opens_for_its_owner(value: bytes, owner: str) -> None:
    box = sealed.seal(Secret(value), key=CURRENT, owner=owner)
    assert sealed.open_sealed(box, keys=[CURRENT], owner=owner) == Secret(value)
    if len(value) >= 8:  # a short value may turn up in random bytes by chance
        assert value not in box


def test_mf_10_each_seal_is_new() -> None:
    """A random nonce per seal: the same seed sealed twice looks different."""
    assert sealed.seal(SEED, key=CURRENT, owner="u1") != sealed.seal(SEED, key=CURRENT, owner="u1")


def test_mf_10_a_seed_sealed_under_the_previous_key_opens_and_is_told_to_reseal() -> None:
    """Rotation: the previous secret's key still opens; is_sealed_under says to seal again."""
    old = sealed.seal(SEED, key=PREVIOUS, owner="u1")
    assert sealed.open_sealed(old, keys=[CURRENT, PREVIOUS], owner="u1") == SEED
    assert not sealed.is_sealed_under(old, CURRENT)
    assert sealed.is_sealed_under(old, PREVIOUS)
    with pytest.raises(CorruptSecret) as lost:
        sealed.open_sealed(old, keys=[CURRENT], owner="u1")
    assert lost.value.code == "secret.unreadable"


def test_mf_10_another_owner_cannot_open_it() -> None:
    """A sealed seed copied to another user's row opens for nobody there."""
    box = sealed.seal(SEED, key=CURRENT, owner="u1")
    with pytest.raises(CorruptSecret):
        sealed.open_sealed(box, keys=[CURRENT], owner="u2")


@pytest.mark.parametrize("position", [0, 1, 9, 21, 30, -1])
def test_mf_10_any_altered_byte_is_refused(position: int) -> None:
    box = bytearray(sealed.seal(SEED, key=CURRENT, owner="u1"))
    box[position] ^= 0x01
    with pytest.raises(CorruptSecret):
        sealed.open_sealed(bytes(box), keys=[CURRENT], owner="u1")


@pytest.mark.parametrize("cut", [0, 1, 20, 21, 36])
def test_mf_10_a_cut_short_value_is_refused(cut: int) -> None:
    box = sealed.seal(SEED, key=CURRENT, owner="u1")
    with pytest.raises(CorruptSecret):
        sealed.open_sealed(box[:cut], keys=[CURRENT], owner="u1")


def test_mf_10_errors_and_ids_hold_no_secret() -> None:
    """AU-2: the key id is a keyed hash of the key; messages name no value."""
    box = sealed.seal(SEED, key=CURRENT, owner="u1")
    assert CURRENT.reveal() not in sealed.key_id(CURRENT)
    with pytest.raises(CorruptSecret) as refused:
        sealed.open_sealed(box, keys=[PREVIOUS], owner="u1")
    assert "\x07" not in str(refused.value)
    assert repr(SEED) == "Secret('***')"


def test_mf_10_without_the_cryptography_package_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(SettingsError) as missing:
        sealed.seal(SEED, key=CURRENT, owner="u1")
    assert missing.value.code == "settings.missing_extra"
    assert "securepractice[authenticator]" in str(missing.value)
