"""Authenticator apps: enrol, confirm with one code, each step once, remove with a password (MF-3).

Seeds are sealed under a key derived from the portal secret and move to a
new secret when used (MF-10). Every test runs on each store. The user's app
is pyotp, given the setup key as a user types it in; sign-in's entry of a
code is `enter_authenticator_code` in a unit of its own.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import pyotp
import pytest

from accounts.factor_fixtures import (
    WRONG_PASSWORD,
    app_code,
    app_of,
    enrol,
    enter,
    ledger,
    outcome,
    refused_for_a_wrong_password,
    with_verification,
    wrong_app_code,
    wrong_codes,
)
from accounts.profile_fixtures import EMAIL, Portal, at_once, open_portal
from securepractice import (
    FakeClock,
    HashParameters,
    InvalidInput,
    InvalidState,
    MemoryStorage,
    Messaging,
    Outbox,
    Secret,
    Settings,
)
from securepractice.accounts import factors
from securepractice.dependencies import Dependencies
from securepractice.errors import CorruptSecret
from securepractice.keys import derive_key
from securepractice.records import Authenticator, revised
from securepractice.testing import PASSWORD
from securepractice.verification import sealed

NEW_SECRET: Secret[bytes] = Secret(bytes(range(100, 132)))


@pytest.fixture
def portal(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Portal:
    return open_portal(context, outbox, clock)


def stored_app(portal: Portal) -> Authenticator | None:
    return portal.credential().authenticator


def actions(portal: Portal) -> list[str]:
    return [event.action for event in portal.events()]


# Enrolment (MF-3).


def test_mf_3_start_gives_the_uri_and_setup_key_of_one_new_seed(portal: Portal) -> None:
    """MF-3: a 160-bit seed as an otpauth:// URI (issuer the portal, account the email) and text."""
    new = portal.actions.start_authenticator(portal.token)
    key = new.setup_key.reveal()
    assert all(len(group) == 4 for group in key.split(" "))
    seed = base64.b32decode(key.replace(" ", ""))
    assert len(seed) * 8 == 160
    uri = urlsplit(new.uri.reveal())
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == f"/{portal.context.portal_name}:{EMAIL}"
    query = {name: values[0] for name, values in parse_qs(uri.query).items()}
    assert query == {
        "secret": key.replace(" ", ""),
        "issuer": portal.context.portal_name,
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
    }
    # An independent implementation reads the same seed from the URI as from the key.
    from_uri = pyotp.parse_uri(new.uri.reveal())
    assert isinstance(from_uri, pyotp.TOTP)
    assert from_uri.at(portal.clock.now()) == app_of(new).at(portal.clock.now())
    assert "***" in repr(new)
    assert key not in repr(new)
    assert new.uri.reveal() not in repr(new)


def test_mf_3_an_app_is_active_only_after_one_right_code(portal: Portal) -> None:
    """MF-3: the seed waits unconfirmed; its codes sign in to nothing until one confirms it."""
    app = app_of(portal.actions.start_authenticator(portal.token))
    waiting = stored_app(portal)
    assert waiting is not None
    assert not waiting.confirmed
    assert enter(portal, app_code, app.at(portal.clock.now())).reason == "not_enrolled"
    portal.actions.confirm_authenticator(portal.token, code=app.at(portal.clock.now()))
    active = stored_app(portal)
    assert active is not None
    assert active.confirmed
    portal.clock.advance(seconds=30)
    assert enter(portal, app_code, app.at(portal.clock.now())) == factors.FactorEntry(
        accepted=True, reason="ok", notices=()
    )


def test_mf_3_confirming_ends_other_sessions_is_audited_and_emailed(portal: Portal) -> None:
    """MF-3, RC-5: a new factor ends the other sessions, keeps this one, and the user is told."""
    other = Secret(portal.world.sign_in(EMAIL))
    enrol(portal)
    assert actions(portal)[-3:] == [
        "authenticator.started",
        "authenticator.verified",
        "authenticator.added",
    ]
    assert portal.session_ended(other)
    assert not portal.session_ended(portal.token)
    [added] = portal.events("authenticator.added")
    assert dict(added.detail) == {"sessions_revoked": "1"}
    mail = portal.outbox.last_email(EMAIL)
    assert (
        mail.subject
        == f"An authenticator app was added to your {portal.context.portal_name} account"
    )


def test_mf_3_starting_again_replaces_a_seed_not_confirmed_yet(portal: Portal) -> None:
    """MF-3: only the latest seed can be confirmed; the first one's codes are wrong codes."""
    first = app_of(portal.actions.start_authenticator(portal.token))
    second = app_of(portal.actions.start_authenticator(portal.token))
    now = portal.clock.now()
    assert first.at(now) != second.at(now)
    with pytest.raises(InvalidInput) as caught:
        portal.actions.confirm_authenticator(portal.token, code=first.at(now))
    assert (caught.value.code, caught.value.field) == ("authenticator.wrong_code", "code")
    portal.actions.confirm_authenticator(portal.token, code=second.at(now))
    [started, again] = portal.events("authenticator.started")
    assert (dict(started.detail), dict(again.detail)) == ({"replaced": "no"}, {"replaced": "yes"})


def test_mf_3_an_active_app_stays_until_removed_with_the_password(portal: Portal) -> None:
    """MF-3: a session alone cannot swap the app for another one; the active app keeps working."""
    app = enrol(portal)
    before = portal.credential()
    with pytest.raises(InvalidState) as caught:
        portal.actions.start_authenticator(portal.token)
    assert caught.value.code == "authenticator.already_active"
    assert portal.credential() == before
    portal.clock.advance(seconds=30)
    assert enter(portal, app_code, app.at(portal.clock.now())).accepted


def test_mf_3_confirming_needs_an_app_being_added(portal: Portal) -> None:
    """MF-3: nothing to confirm before a start; nothing left to confirm after it succeeded."""
    with pytest.raises(InvalidState) as caught:
        portal.actions.confirm_authenticator(portal.token, code="123456")
    assert caught.value.code == "authenticator.not_started"
    app = enrol(portal)
    with pytest.raises(InvalidState) as caught:
        portal.actions.confirm_authenticator(portal.token, code=app.at(portal.clock.now()))
    assert caught.value.code == "authenticator.already_active"


def test_mf_3_mf_8_a_wrong_confirmation_code_counts_and_a_right_one_clears(portal: Portal) -> None:
    """MF-3, MF-8: a wrong code while enrolling counts toward the cap; the right one clears it."""
    app = app_of(portal.actions.start_authenticator(portal.token))
    now = portal.clock.now()
    for expected in (1, 2):
        with pytest.raises(InvalidInput) as caught:
            portal.actions.confirm_authenticator(portal.token, code=wrong_app_code(app, now))
        assert caught.value.code == "authenticator.wrong_code"
        counted = ledger(portal)
        assert counted is not None
        assert counted.wrong_codes == expected
    assert [dict(e.detail) for e in portal.events("authenticator.failed")] == [{}, {}]
    assert [e.outcome for e in portal.events("authenticator.failed")] == ["wrong", "wrong"]
    portal.actions.confirm_authenticator(portal.token, code=app.at(now))
    cleared = ledger(portal)
    assert cleared is not None
    assert cleared.wrong_codes == 0


# Each step once, its own and one back (MF-3).


def test_mf_3_a_code_is_accepted_for_its_step_and_one_step_back_once(portal: Portal) -> None:
    """MF-3: the previous step's code still works once; the same step never works twice."""
    app = enrol(portal)
    portal.clock.advance(minutes=5)
    now = portal.clock.now()
    previous = app.at(now, counter_offset=-1)
    assert enter(portal, app_code, previous).accepted
    assert enter(portal, app_code, previous).reason == "replayed"
    current = app.at(now)
    assert enter(portal, app_code, current).accepted
    assert enter(portal, app_code, current).reason == "replayed"
    # A replay is no guess: it does not count toward the cap (MF-8).
    assert wrong_codes(portal) == 0
    portal.clock.advance(seconds=30)
    assert enter(portal, app_code, app.at(portal.clock.now(), counter_offset=-2)).reason == "wrong"
    assert enter(portal, app_code, app.at(portal.clock.now(), counter_offset=1)).reason == "wrong"


@pytest.fixture
def no_step_back(context: Dependencies) -> Dependencies:
    return with_verification(context, authenticator_steps_back=0)


def test_mf_3_with_no_step_back_only_the_current_step_works(
    no_step_back: Dependencies, outbox: Outbox, clock: FakeClock
) -> None:
    """MF-3: ``authenticator_steps_back=0`` (ASVS 5.0 6.5.5) takes the current step's code only."""
    portal = open_portal(no_step_back, outbox, clock)
    app = enrol(portal)
    portal.clock.advance(minutes=1)
    now = portal.clock.now()
    assert enter(portal, app_code, app.at(now, counter_offset=-1)).reason == "wrong"
    assert enter(portal, app_code, app.at(now)).accepted


def test_mf_3_fifty_simultaneous_uses_of_one_step_accept_exactly_one(portal: Portal) -> None:
    """MF-3: of 50 entries of one code at once, one is accepted; the others find it replayed."""
    app = enrol(portal)
    portal.clock.advance(seconds=30)
    code = app.at(portal.clock.now())
    said = at_once(lambda: outcome(lambda: enter(portal, app_code, code)), times=50)
    assert said.count("ok") == 1
    assert set(said) == {"ok", "replayed"}
    assert len(portal.events("authenticator.verified")) == 2  # the confirmation, and this one


# Removal (MF-3).


def test_mf_3_removing_needs_the_password_and_a_wrong_one_counts(portal: Portal) -> None:
    """MF-3, LK-1: a wrong password keeps the app and counts as a failed sign-in."""
    enrol(portal)
    refused_for_a_wrong_password(
        portal,
        lambda wrong: portal.actions.remove_authenticator(portal.token, current_password=wrong),
    )


def test_mf_3_removing_ends_the_app_other_sessions_and_tells_the_user(portal: Portal) -> None:
    """MF-3, RC-5: its codes stop working, other sessions end, the user is emailed."""
    app = enrol(portal)
    other = Secret(portal.world.sign_in(EMAIL))
    portal.actions.remove_authenticator(portal.token, current_password=PASSWORD)
    assert stored_app(portal) is None
    assert portal.session_ended(other)
    assert not portal.session_ended(portal.token)
    portal.clock.advance(seconds=30)
    assert enter(portal, app_code, app.at(portal.clock.now())).reason == "not_enrolled"
    [removed] = portal.events("authenticator.removed")
    assert dict(removed.detail) == {"confirmed": "yes", "sessions_revoked": "1"}
    assert portal.outbox.last_email(EMAIL).subject.startswith("The authenticator app was removed")


def test_mf_3_an_app_not_confirmed_is_dropped_quietly(portal: Portal) -> None:
    """MF-3: cancelling an enrolment ends no session and sends no email."""
    portal.actions.start_authenticator(portal.token)
    other = Secret(portal.world.sign_in(EMAIL))
    mails = len(portal.outbox.emails)
    portal.actions.remove_authenticator(portal.token, current_password=PASSWORD)
    assert stored_app(portal) is None
    assert not portal.session_ended(other)
    assert len(portal.outbox.emails) == mails


def test_mf_3_removing_nothing_is_refused_before_the_password_counts(portal: Portal) -> None:
    """MF-3: with no app there is nothing to remove: refused, and no attempt counted."""
    with pytest.raises(InvalidState) as caught:
        portal.actions.remove_authenticator(portal.token, current_password=WRONG_PASSWORD)
    assert caught.value.code == "authenticator.none"
    assert portal.failures() == 0


# Bad input (MF-3, IN-1).

BAD_CODES = [
    ("", "text.empty"),
    ("   ", "text.empty"),
    ("12345", "authenticator.malformed"),
    ("1234567", "authenticator.malformed"),
    ("12345a", "authenticator.malformed"),
    ("12.34.56", "authenticator.malformed"),
    ("１２３４５", "authenticator.malformed"),
    ("123\ud800456", "text.surrogate"),
    ("123\u200b456", "text.invisible_character"),
    ("\u202e123456", "text.bidi_control"),
    ("123456\n", "text.control_character"),
    ("1" * 1000, "text.too_long"),
    (None, "text.not_text"),
    (123456, "text.not_text"),
    (b"123456", "text.not_text"),
    (Secret(b"123456"), "text.not_text"),
]


@pytest.mark.parametrize(("code", "expected"), BAD_CODES)
def test_mf_3_in_1_a_code_of_the_wrong_shape_is_refused_and_not_counted(
    portal: Portal, code: object, expected: str
) -> None:
    """MF-3, IN-1: entering or confirming it is refused with a stable code; nothing is counted."""
    portal.actions.start_authenticator(portal.token)
    before = portal.credential()
    events = len(portal.events())
    with pytest.raises(InvalidInput) as caught:
        portal.actions.confirm_authenticator(portal.token, code=code)  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.field) == (expected, "code")
    with pytest.raises(InvalidInput) as caught:
        enter(portal, app_code, code)  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.field) == (expected, "authenticator_code")
    assert portal.credential() == before
    assert ledger(portal) is None
    assert len(portal.events()) == events


@pytest.mark.parametrize("typed", ["{} {}", " {}{} ", "{}-{}"])
def test_mf_3_a_code_typed_with_a_space_or_dash_or_other_digits_works(
    portal: Portal, typed: str
) -> None:
    """MF-3: "123 456", "123-456" and full-width digits are the code the app shows."""
    app = app_of(portal.actions.start_authenticator(portal.token))
    code = app.at(portal.clock.now())
    portal.actions.confirm_authenticator(portal.token, code=typed.format(code[:3], code[3:]))
    portal.clock.advance(seconds=30)
    wide = "".join(chr(ord("０") + int(digit)) for digit in app.at(portal.clock.now()))
    assert enter(portal, app_code, Secret(wide)).accepted


# Sealed seeds (MF-10, AU-2).


def test_mf_10_the_seed_is_stored_sealed_under_the_portal_key(portal: Portal) -> None:
    """MF-10: the stored seed opens only with the key derived from the portal secret."""
    new = portal.actions.start_authenticator(portal.token)
    seed = base64.b32decode(new.setup_key.reveal().replace(" ", ""))
    app = stored_app(portal)
    assert app is not None
    assert seed not in app.sealed_seed
    secret = portal.context.settings.secret
    assert secret is not None
    key = derive_key(secret, factors.SEED_KEY_PURPOSE)
    assert sealed.is_sealed_under(app.sealed_seed, key)
    assert sealed.open_sealed(app.sealed_seed, keys=[key], owner=portal.user.id).reveal() == seed
    with pytest.raises(CorruptSecret):
        sealed.open_sealed(app.sealed_seed, keys=[key], owner="another-user")
    assert factors.seed_keys(portal.context.settings) == (key,)


def test_mf_10_au_2_no_seed_or_code_in_a_repr_an_event_or_an_email(portal: Portal) -> None:
    """MF-10, AU-2: the seed, the URI and the codes appear nowhere but in what the user got."""
    new = portal.actions.start_authenticator(portal.token)
    app = app_of(new)
    wrong = wrong_app_code(app, portal.clock.now())
    with pytest.raises(InvalidInput) as caught:
        portal.actions.confirm_authenticator(portal.token, code=wrong)
    right = app.at(portal.clock.now())
    portal.actions.confirm_authenticator(portal.token, code=right)
    secrets = [new.setup_key.reveal(), new.setup_key.reveal().replace(" ", ""), right, wrong]
    stored = portal.credential()
    seen = [
        repr(stored),
        repr(stored.authenticator),
        str(caught.value),
        repr(caught.value),
        *(repr(event) for event in portal.all_events()),
        *(mail.body + mail.subject for mail in portal.outbox.emails),
    ]
    for text in seen:
        for secret in secrets:
            assert secret not in text


def test_mf_10_a_seed_moves_to_the_new_secret_when_next_used(portal: Portal) -> None:
    """MF-10: after a rotation the old key opens it once; the use seals it under the new key."""
    app = enrol(portal)
    old = portal.context.settings.secret
    assert old is not None
    rotated = attrs.evolve(
        portal.context,
        settings=attrs.evolve(portal.context.settings, secret=NEW_SECRET, previous_secret=old),
    )
    new_key, old_key = factors.seed_keys(rotated.settings)
    before = stored_app(portal)
    assert before is not None
    assert sealed.is_sealed_under(before.sealed_seed, old_key)
    portal = attrs.evolve(portal, context=rotated)
    portal.clock.advance(seconds=30)
    assert enter(portal, app_code, app.at(portal.clock.now())).accepted
    after = stored_app(portal)
    assert after is not None
    assert sealed.is_sealed_under(after.sealed_seed, new_key)
    # Only the new secret is needed from now on.
    settled = attrs.evolve(rotated, settings=attrs.evolve(rotated.settings, previous_secret=None))
    portal = attrs.evolve(portal, context=settled)
    portal.clock.advance(seconds=30)
    assert enter(portal, app_code, app.at(portal.clock.now())).accepted


def test_mf_10_a_wrong_code_also_moves_the_seed_to_the_new_secret(portal: Portal) -> None:
    """MF-10: any use opens the seed, so any use seals it again; the wrong code still counts."""
    app = enrol(portal)
    old = portal.context.settings.secret
    rotated = attrs.evolve(
        portal.context,
        settings=attrs.evolve(portal.context.settings, secret=NEW_SECRET, previous_secret=old),
    )
    portal = attrs.evolve(portal, context=rotated)
    assert enter(portal, app_code, wrong_app_code(app, portal.clock.now())).reason == "wrong"
    after = stored_app(portal)
    assert after is not None
    assert sealed.is_sealed_under(after.sealed_seed, factors.seed_keys(rotated.settings)[0])
    counted = ledger(portal)
    assert counted is not None
    assert counted.wrong_codes == 1


def test_mf_10_a_seed_under_a_secret_the_portal_no_longer_has_is_a_clear_error(
    portal: Portal,
) -> None:
    """MF-10: a seed no key opens raises `CorruptSecret` and counts nothing."""
    app = enrol(portal)
    with portal.storage.unit_of_work() as uow:
        stored = uow.credentials.get(portal.user.id)
        assert stored is not None
        assert stored.authenticator is not None
        foreign = sealed.seal(
            Secret(b"x" * 20), key=derive_key(NEW_SECRET, factors.SEED_KEY_PURPOSE), owner="u"
        )
        uow.credentials.save(
            revised(stored, authenticator=attrs.evolve(stored.authenticator, sealed_seed=foreign)),
            expected_version=stored.version,
        )
    portal.clock.advance(seconds=30)
    with pytest.raises(CorruptSecret) as caught:
        enter(portal, app_code, app.at(portal.clock.now()))
    assert caught.value.code == "secret.unreadable"
    assert wrong_codes(portal) == 0


def test_mf_10_without_a_portal_secret_the_key_comes_from_the_code_key(
    outbox: Outbox, clock: FakeClock
) -> None:
    """MF-10: a store in memory without a secret still seals seeds, under a key of its own."""
    settings = Settings(hashing=HashParameters(time_cost=1, memory_cost=8, parallelism=1))
    deps = Dependencies(
        storage=MemoryStorage(), messaging=Messaging.using(outbox), settings=settings, clock=clock
    )
    portal = open_portal(deps, outbox, clock)
    app = enrol(portal)
    [key] = factors.seed_keys(settings)
    assert key == derive_key(settings.verification.code_key, factors.SEED_KEY_PURPOSE)
    stored = stored_app(portal)
    assert stored is not None
    assert sealed.is_sealed_under(stored.sealed_seed, key)
    portal.clock.advance(timedelta(seconds=30))
    assert enter(portal, app_code, app.at(portal.clock.now())).accepted
