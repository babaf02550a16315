"""Profile fields and the two-step setting, on both stores (PF-1, PF-3, VF-9, AU-1)."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.profile_fixtures import EMAIL, Portal, open_portal
from securepractice import FakeClock, InvalidInput, InvalidToken, Outbox
from securepractice.accounts.profile import (
    MAX_NAME_LENGTH,
    MAX_SPECIALTIES,
    MAX_SPECIALTY_LENGTH,
)
from securepractice.accounts.reset import ResetStage
from securepractice.dependencies import Dependencies
from securepractice.policy.text import refused_characters
from securepractice.testing import PASSWORD

if TYPE_CHECKING:
    from accounts.link_flows import Flows

NEW = "Harbor-Light-77"

#: The codes of a name refused for its characters or its length (IN-1).
REFUSED_TEXT_CODES = {
    "text.too_long",
    "text.surrogate",
    "text.control_character",
    "text.line_separator",
    "text.bidi_control",
    "text.invisible_character",
    "text.private_use",
    "text.unassigned",
}

#: Each test of this module gets its own store; hypothesis reuses it across examples.
_REUSED_FIXTURE = [HealthCheck.function_scoped_fixture]


@pytest.fixture
def portal(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Portal:
    return open_portal(context, outbox, clock)


@pytest.mark.parametrize(
    ("field", "given_value", "stored"),
    [
        ("first_name", "  Robin ", "Robin"),
        ("first_name", "Ze\u0301lie", "Zélie"),  # NFC: the combining accent joins the letter
        ("last_name", "O'Neil-García", "O'Neil-García"),
        ("last_name", "", ""),
        ("time_zone", "America/Chicago", "America/Chicago"),
        ("time_zone", " Europe/London ", "Europe/London"),
        ("time_zone", "", None),
        ("ada_number", " 123456789 ", "123456789"),
        ("ada_number", "", None),
        ("specialties", ("Orthodontics", "Endodontics"), ("Orthodontics", "Endodontics")),
        (
            "specialties",
            ["Periodontics", " periodontics ", "Oral Surgery"],
            ("Periodontics", "Oral Surgery"),
        ),
        ("specialties", (), ()),
    ],
)
def test_each_field_is_updated_and_stored(
    portal: Portal, field: str, given_value: object, stored: object
) -> None:
    """PF-1: a signed-in user updates their own name, time zone, ADA number, specialties."""
    if field in {"time_zone", "ada_number", "specialties"}:
        # Give the field a value first, so that clearing it is a change.
        portal.actions.update_profile(
            portal.token, time_zone="Asia/Tokyo", ada_number="42", specialties=("Prosthodontics",)
        )
    user = portal.actions.update_profile(portal.token, **{field: given_value})  # type: ignore[arg-type]
    assert getattr(user, field) == stored
    assert getattr(portal.stored_user(), field) == stored
    event = portal.events("profile.changed")[-1]
    assert dict(event.detail) == {"fields": field}


def test_none_leaves_every_field_as_it_was(portal: Portal) -> None:
    before = portal.stored_user()
    assert portal.actions.update_profile(portal.token) == before
    assert portal.stored_user() == before
    assert portal.events("profile.changed") == []


def test_several_fields_at_once_are_one_event_naming_fields_never_values(portal: Portal) -> None:
    """AU-1, AU-2: one event, actor, subject and practice; field names only."""
    portal.actions.update_profile(
        portal.token, first_name="Robin", last_name="Lee", ada_number="987654321"
    )
    [event] = portal.events("profile.changed")
    assert dict(event.detail) == {"fields": "ada_number,first_name,last_name"}
    assert event.actor_id == event.subject_id == portal.user.id
    assert event.practice_id == portal.practice.id
    assert event.outcome == "ok"
    assert "Robin" not in repr(event)
    assert "987654321" not in repr(event)


def test_a_value_equal_to_the_stored_one_is_no_change(portal: Portal) -> None:
    portal.actions.update_profile(portal.token, first_name=portal.user.first_name)
    assert portal.events("profile.changed") == []


@pytest.mark.parametrize(
    ("arguments", "field", "code"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone", "profile.unknown_time_zone"),
        ({"time_zone": "EST5EDT/../../etc/passwd"}, "time_zone", "profile.unknown_time_zone"),
        ({"time_zone": "/etc/localtime"}, "time_zone", "profile.unknown_time_zone"),
        ({"time_zone": "localtime"}, "time_zone", "profile.unknown_time_zone"),
        ({"time_zone": "america/new_york"}, "time_zone", "profile.unknown_time_zone"),
        ({"time_zone": "A" * 10_000}, "time_zone", "profile.unknown_time_zone"),
        ({"time_zone": 5}, "time_zone", "text.not_text"),
        ({"first_name": "Robin\x00"}, "first_name", "text.control_character"),
        ({"first_name": "Rob\nin"}, "first_name", "text.control_character"),
        ({"first_name": "Robin\u202e"}, "first_name", "text.bidi_control"),
        ({"last_name": "Le\u2028e"}, "last_name", "text.line_separator"),
        ({"first_name": "   "}, "first_name", "text.empty"),
        ({"first_name": "R" * (MAX_NAME_LENGTH + 1)}, "first_name", "text.too_long"),
        ({"last_name": "L" * 10_000_000}, "last_name", "text.too_long"),
        ({"first_name": b"Robin"}, "first_name", "text.not_text"),
        ({"last_name": 7}, "last_name", "text.not_text"),
        ({"ada_number": "12 34"}, "ada_number", "profile.ada_number_invalid"),
        ({"ada_number": "１２３"}, "ada_number", "profile.ada_number_invalid"),
        ({"ada_number": "1" * 21}, "ada_number", "text.too_long"),
        ({"specialties": "Orthodontics"}, "specialties", "profile.not_a_list"),
        ({"specialties": {"Orthodontics"}}, "specialties", "profile.not_a_list"),
        ({"specialties": ("Ortho", 3)}, "specialties", "text.not_text"),
        ({"specialties": ("Ortho", " ")}, "specialties", "text.empty"),
        ({"specialties": ("x" * (MAX_SPECIALTY_LENGTH + 1),)}, "specialties", "text.too_long"),
        ({"specialties": ("Ortho\x07",)}, "specialties", "text.control_character"),
        (
            {"specialties": tuple(f"s{n}" for n in range(MAX_SPECIALTIES + 1))},
            "specialties",
            "profile.too_many",
        ),
        # One bad field refuses the whole change: the good one is not kept.
        ({"first_name": "Robin", "time_zone": "Nowhere"}, "time_zone", "profile.unknown_time_zone"),
    ],
)
def test_bad_values_are_refused_naming_the_field_and_nothing_changes(
    portal: Portal, arguments: dict[str, object], field: str, code: str
) -> None:
    before = portal.stored_user()
    with pytest.raises(InvalidInput) as caught:
        portal.actions.update_profile(portal.token, **arguments)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.code) == (field, code)
    assert len(caught.value.message) < 200
    assert portal.stored_user() == before
    assert portal.events("profile.changed") == []


@hypothesis_settings(suppress_health_check=_REUSED_FIXTURE, max_examples=60)
@given(name=st.text(max_size=120))
def test_a_name_is_kept_exactly_as_trimmed_or_refused_with_a_code(
    portal: Portal, name: str
) -> None:
    """Any text: stored trimmed in NFC without control characters, or refused; never mangled."""
    before = portal.stored_user()
    refused: InvalidInput | None = None
    try:
        user = portal.actions.update_profile(portal.token, last_name=name)
    except InvalidInput as error:
        refused = error
    if refused is not None:
        assert refused.field == "last_name"
        assert refused.code in REFUSED_TEXT_CODES
        assert portal.stored_user() == before
        return
    expected = unicodedata.normalize("NFC", name).strip()
    assert user.last_name == expected
    assert len(expected) <= MAX_NAME_LENGTH
    assert all(unicodedata.category(c) not in {"Cc", "Cs", "Zl", "Zp"} for c in expected)
    assert refused_characters(expected) == ()


def test_every_listed_time_zone_name_is_usable(portal: Portal) -> None:
    """A sample of IANA names, legacy aliases included, is accepted."""
    for name in ("UTC", "America/Argentina/ComodRivadavia", "Pacific/Chatham", "US/Eastern"):
        assert portal.actions.update_profile(portal.token, time_zone=name).time_zone == name


def test_a_signed_out_session_cannot_update_the_profile(portal: Portal) -> None:
    portal.actions.sign_out(portal.token)
    with pytest.raises(InvalidToken):
        portal.actions.update_profile(portal.token, first_name="Robin")
    assert portal.stored_user() == portal.user


def test_updating_the_profile_keeps_the_session_alive(portal: Portal) -> None:
    """A profile change is activity: it extends the idle timeout (LK-6)."""
    idle = portal.context.settings.sign_in.idle_timeout
    portal.clock.advance(idle / 2)
    portal.actions.update_profile(portal.token, first_name="Robin")
    portal.clock.advance(idle / 2)
    assert portal.actions.touch_session(portal.token).user_id == portal.user.id


def test_two_step_can_be_turned_off_and_on(portal: Portal) -> None:
    """PF-3, VF-9, RC-2: the user's own two-step setting, audited each time it changes."""
    assert portal.user.two_step_enabled is True
    assert portal.two_step_off().two_step_enabled is False
    assert portal.stored_user().two_step_enabled is False
    # Setting it to what it is changes nothing and records nothing.
    portal.actions.set_two_step(
        portal.token, enabled=False, current_password=PASSWORD, code="000000"
    )
    assert portal.actions.set_two_step(portal.token, enabled=True).two_step_enabled is True
    portal.actions.set_two_step(portal.token, enabled=True)
    events = portal.events("two_step.toggled")
    assert [dict(e.detail)["enabled"] for e in events] == ["off", "on"]
    assert all(e.actor_id == e.subject_id == portal.user.id for e in events)
    assert all(e.practice_id == portal.practice.id for e in events)


@pytest.mark.parametrize("value", [None, 0, 1, "false", "off"])
def test_two_step_takes_only_a_bool(portal: Portal, value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        portal.actions.set_two_step(portal.token, enabled=value)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.code) == ("enabled", "profile.not_bool")
    assert portal.stored_user().two_step_enabled is True


def test_another_users_profile_is_out_of_reach(portal: Portal) -> None:
    """The session decides whose profile changes: a second user's stays as it was."""
    other = portal.world.user("dr.jones@example.com", practice=portal.practice)
    portal.actions.update_profile(portal.token, first_name="Robin")
    assert portal.stored_user(other.id) == other


@pytest.mark.parametrize("enabled", [False, True])
def test_the_two_step_setting_persists_across_a_reset(
    portal: Portal, flows: Flows, enabled: bool
) -> None:
    """VF-9: a reset of the password leaves the user's own setting as they chose it."""
    portal.two_step_off()
    portal.actions.set_two_step(portal.token, enabled=True)
    if not enabled:
        portal.two_step_off()
    flows.accounts.forgot_password(email=EMAIL)
    token = flows.token(EMAIL)
    step = flows.accounts.open_reset_link(token)
    assert step.stage is (ResetStage.VERIFY if enabled else ResetStage.PASSWORD)
    if enabled:
        flows.accounts.send_code(token, option=step.delivery_options[0])
        code = portal.outbox.last_code(step.delivery_options[0].destination)
        assert flows.accounts.verify_code(token, code=code).verified
    assert flows.accounts.reset_password(token, password=NEW, confirmation=NEW).ok
    assert portal.stored_user().two_step_enabled is enabled
    assert portal.actions.sign_in(email=EMAIL, password=NEW).ok
