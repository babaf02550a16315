"""Recovery codes: shown once, kept salted, single use, a new set voids the old (MF-4).

Every test runs on each store. The user reads the codes off the screen once;
sign-in's use of one is `enter_recovery_code` in a unit of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs
import pytest

from accounts.factor_fixtures import (
    enter,
    make_codes,
    outcome,
    recovery_code,
    refused_for_a_wrong_password,
    wrong_codes,
)
from accounts.profile_fixtures import EMAIL, Portal, at_once, open_portal
from securepractice import FakeClock, InvalidInput, Outbox, Secret
from securepractice.accounts import factors
from securepractice.dependencies import Dependencies
from securepractice.records import revised
from securepractice.testing import PASSWORD
from securepractice.verification import recovery

#: Crockford's base32, 16 characters (80 bits) in four groups.
CODE_SHAPE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}")


@pytest.fixture
def portal(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Portal:
    return open_portal(context, outbox, clock)


def left(portal: Portal) -> int:
    return portal.actions.recovery_codes_left(portal.token)


def test_mf_4_a_set_is_ten_codes_of_80_bits_kept_only_as_salted_hashes(portal: Portal) -> None:
    """MF-4: ten distinct codes, shown once; the store holds salted hashes, never a code."""
    codes = make_codes(portal)
    count = portal.context.settings.verification.recovery_codes
    assert len(codes) == count == 10
    assert len(set(codes)) == count
    assert all(CODE_SHAPE.fullmatch(code) for code in codes)
    stored = portal.credential().recovery_codes
    assert len(stored) == count
    assert all(isinstance(digest, bytes) for digest in stored)
    assert len(set(stored)) == count
    for code in codes:
        plain = code.replace("-", "").encode()
        assert all(
            digest is not None and plain not in digest and code.encode() not in digest
            for digest in stored
        )
    assert left(portal) == count
    assert all(code not in repr(portal.credential()) for code in codes)


def test_mf_4_the_same_codes_for_two_users_are_kept_unalike(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MF-4: the hash is salted and bound to its user: one code has unrelated hashes."""
    fixed = recovery.new_codes(10)
    monkeypatch.setattr(recovery, "new_codes", lambda count: fixed[:count])
    make_codes(portal)
    other = portal.world.member("dr.jones@example.com", practice=portal.practice)
    portal.actions.make_recovery_codes(Secret(other.token), current_password=PASSWORD)
    mine, theirs = portal.credential().recovery_codes, portal.credential(other.id).recovery_codes
    assert not set(mine) & set(theirs)
    # Hashes copied to another user's record are no codes of theirs.
    with portal.storage.unit_of_work() as uow:
        stored = uow.credentials.get(other.id)
        assert stored is not None
        uow.credentials.save(revised(stored, recovery_codes=mine), expected_version=stored.version)
    copied = attrs.evolve(portal, user=other.user, token=Secret(other.token))
    assert enter(copied, recovery_code, fixed[0]).reason == "wrong"
    assert enter(portal, recovery_code, fixed[0]).accepted


def test_mf_4_making_a_set_needs_the_password_and_a_wrong_one_counts(portal: Portal) -> None:
    """MF-4, LK-1: no set is made without the password; a wrong one is a failed sign-in."""
    make_codes(portal)
    refused_for_a_wrong_password(
        portal,
        lambda wrong: portal.actions.make_recovery_codes(portal.token, current_password=wrong),
    )


def test_mf_4_making_a_set_is_audited_and_emailed(portal: Portal) -> None:
    """MF-4, AU-1: the event says how many codes were made and voided; no code in it."""
    first = make_codes(portal)
    second = make_codes(portal)
    made = portal.events("recovery_codes.made")
    assert [dict(e.detail) for e in made] == [
        {"codes": "10", "voided": "0"},
        {"codes": "10", "voided": "10"},
    ]
    mail = portal.outbox.last_email(EMAIL)
    assert mail.subject.startswith("New recovery codes were made")
    for code in (*first, *second):
        assert code not in mail.body
        assert all(code not in repr(event) for event in portal.all_events())


def test_mf_4_a_new_set_voids_the_old_one(portal: Portal) -> None:
    """MF-4: a code of the old set is a wrong code once a new set is made."""
    old = make_codes(portal)
    new = make_codes(portal)
    assert enter(portal, recovery_code, old[0]).reason == "wrong"
    assert wrong_codes(portal) == 1
    assert enter(portal, recovery_code, new[0]).accepted
    assert wrong_codes(portal) == 0


def test_mf_4_a_code_works_once_is_audited_and_asks_for_a_new_set(portal: Portal) -> None:
    """MF-4: the used code's hash leaves the set; the user is emailed to make a new set."""
    codes = make_codes(portal)
    entry = enter(portal, recovery_code, codes[3])
    assert entry == factors.FactorEntry(accepted=True, reason="ok", notices=("recovery_code_used",))
    stored = portal.credential().recovery_codes
    assert stored[3] is None
    assert sum(digest is not None for digest in stored) == left(portal) == 9
    [used] = portal.events("recovery_code.used")
    assert dict(used.detail) == {"codes_left": "9"}
    mail = portal.outbox.last_email(EMAIL)
    assert mail.subject.startswith("A recovery code of your")
    assert "make a new set" in mail.body
    assert enter(portal, recovery_code, codes[3]).reason == "wrong"
    assert left(portal) == 9


@pytest.mark.parametrize(
    "spell",
    [
        str.lower,
        lambda c: c.replace("-", ""),
        lambda c: c.replace("-", " "),
        lambda c: f"  {c}  ",
        lambda c: c.replace("1", "l").replace("0", "O"),
    ],
)
def test_mf_4_a_code_typed_in_any_case_or_grouping_works(
    portal: Portal, spell: Callable[[str], str]
) -> None:
    """MF-4: case, dashes, spaces, and I, L or O for 1 and 0 do not matter."""
    codes = make_codes(portal)
    assert enter(portal, recovery_code, spell(codes[0])).accepted


def test_mf_4_without_unused_codes_there_is_no_recovery_code_to_check(portal: Portal) -> None:
    """MF-4: no set, or a set used up, is ``not_enrolled``: nothing checked, nothing counted."""
    assert enter(portal, recovery_code, "0000-0000-0000-0000").reason == "not_enrolled"
    codes = make_codes(portal)
    for code in codes:
        assert enter(portal, recovery_code, code).accepted
    assert left(portal) == 0
    assert enter(portal, recovery_code, codes[0]).reason == "not_enrolled"
    assert wrong_codes(portal) == 0


def test_mf_4_fifty_simultaneous_uses_of_one_code_accept_exactly_one(portal: Portal) -> None:
    """MF-4: of 50 uses of one code at once one is accepted; the others find it used.

    Those are wrong codes (MF-8): from the tenth in a row, codes pause, and
    the rest are refused unchecked.
    """
    [code, *_] = make_codes(portal)
    said = at_once(lambda: outcome(lambda: enter(portal, recovery_code, code)), times=50)
    assert said.count("ok") == 1
    assert set(said) <= {"ok", "wrong", "paused"}
    assert wrong_codes(portal) == said.count("wrong")
    assert said.count("wrong") == portal.context.settings.verification.pause_from_wrong_codes
    assert left(portal) == 9


BAD_CODES = [
    ("", "text.empty"),
    ("ABCD-EFGH-JKMN-PQR", "recovery_code.malformed"),
    ("ABCD-EFGH-JKMN-PQRST", "recovery_code.malformed"),
    ("ABCD-EFGH-JKMN-PQRU", "recovery_code.malformed"),
    ("ABCD_EFGH_JKMN_PQR!", "recovery_code.malformed"),
    ("123456", "recovery_code.malformed"),
    ("ABCD-EFGH-JKMN-PQR\ud800", "text.surrogate"),
    ("ABCD-EFGH\u200b-JKMN-PQRS", "text.invisible_character"),
    ("\u202eABCD-EFGH-JKMN-PQRS", "text.bidi_control"),
    ("ABCD-EFGH-JKMN-PQRS\x00", "text.control_character"),
    ("A" * 5000, "text.too_long"),
    (None, "text.not_text"),
    (b"ABCD-EFGH-JKMN-PQRS", "text.not_text"),
]


@pytest.mark.parametrize(("code", "expected"), BAD_CODES)
def test_mf_4_in_1_an_entry_that_cannot_be_a_code_is_refused_and_not_counted(
    portal: Portal, code: object, expected: str
) -> None:
    """MF-4, IN-1: refused with a stable code before anything is read; no count, no event."""
    make_codes(portal)
    before = portal.credential()
    events = len(portal.events())
    with pytest.raises(InvalidInput) as caught:
        enter(portal, recovery_code, code)  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.field) == (expected, "recovery_code")
    assert portal.credential() == before
    assert wrong_codes(portal) == 0
    assert len(portal.events()) == events
