"""The second factor at sign-in, each method, trusted devices, on every store (MF-1, MF-2, MF-5).

A user's phone, authenticator app and recovery codes are used as the user
would: codes read from the outbox, an app's code computed from the seed in
the ``otpauth://`` URI the portal showed.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest

from securepractice import (
    FakeClock,
    InvalidInput,
    InvalidState,
    InvalidToken,
    Outbox,
    SignInRules,
)
from securepractice.accounts.second_factor import SECOND_FACTOR_REFUSED_MESSAGE
from securepractice.accounts.signin import (
    INVALID_CREDENTIALS_MESSAGE,
    SignInOutcome,
    SignInReason,
    SignInResult,
)
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts
from securepractice.records import DeliveryMethod, Phone, PhoneKind
from securepractice.secret import Secret
from securepractice.settings import SecondFactor
from securepractice.testing import PASSWORD, World
from securepractice.verification import totp

EMAIL = "dr.smith@example.com"
CELL = "+12025550143"
NEW = "Harbor-Light-77"


def _rules(context: Dependencies, second_factor: SecondFactor) -> Dependencies:
    rules = SignInRules(second_factor=second_factor)
    return attrs.evolve(context, settings=attrs.evolve(context.settings, sign_in=rules))


@attrs.define
class Person:
    """One user, their portal under each rule, and what they hold: the app's seed, their codes."""

    context: Dependencies
    outbox: Outbox
    clock: FakeClock
    seed: Secret[bytes] | None = None
    recovery: list[str] = attrs.Factory(list)

    def accounts(self, rule: SecondFactor = SecondFactor.ALWAYS) -> Accounts:
        return Accounts(_rules(self.context, rule))

    def enrol(self) -> None:
        """Add an authenticator app and make recovery codes, from a full session."""
        plain = Accounts(self.context)
        token = World(self.context).sign_in(EMAIL)
        added = plain.start_authenticator(token)
        query = parse_qs(urlsplit(added.uri.reveal()).query)
        secret = query["secret"][0]
        self.seed = Secret(base64.b32decode(secret + "=" * (-len(secret) % 8)))
        plain.confirm_authenticator(token, code=self.app_code())
        self.clock.advance(timedelta(seconds=30))  # the confirming step is used
        codes = plain.make_recovery_codes(token, current_password=PASSWORD)
        self.recovery = [code.reveal() for code in codes]

    def app_code(self) -> str:
        assert self.seed is not None
        return totp.totp(self.seed, self.clock.now()).reveal()

    def pending(self, rule: SecondFactor = SecondFactor.ALWAYS, **extra: object) -> Secret[str]:
        result = self.accounts(rule).sign_in(email=EMAIL, password=PASSWORD, **extra)  # type: ignore[arg-type]
        assert result.outcome is SignInOutcome.SECOND_FACTOR_REQUIRED
        assert result.session_token is None
        assert result.pending_token is not None
        return result.pending_token

    def by_phone(self, pending: Secret[str], method: DeliveryMethod = DeliveryMethod.SMS) -> None:
        accounts = self.accounts()
        options = accounts.second_factor_options(pending).delivery_options
        option = next(o for o in options if o.method is method)
        accounts.send_code(pending, option=option)
        assert accounts.verify_code(pending, code=self.outbox.last_code(CELL)).verified


@pytest.fixture
def person(context: Dependencies, outbox: Outbox, clock: FakeClock) -> Person:
    world = World(context)
    cell = Phone(number=CELL, kind=PhoneKind.CELL)
    world.user(EMAIL, practice=world.practice(), phones=(cell,))
    return Person(context, outbox, clock)


def _signed_in(result: SignInResult) -> str:
    assert result.outcome is SignInOutcome.OK, result.reason
    assert result.session_token is not None
    return result.session_token.reveal()


def test_mf_1_the_portal_profile_asks_no_second_factor(person: Person) -> None:
    assert SignInRules().second_factor is SecondFactor.NEVER
    assert SignInRules.NIST.second_factor is SecondFactor.ALWAYS
    _signed_in(person.accounts(SecondFactor.NEVER).sign_in(email=EMAIL, password=PASSWORD))


def test_mf_1_a_right_password_gives_a_pending_sign_in_that_opens_nothing(person: Person) -> None:
    pending = person.pending()
    accounts = person.accounts()
    with pytest.raises(InvalidToken):
        accounts.touch_session(pending)
    with pytest.raises(InvalidToken):
        accounts.update_profile(pending, first_name="Mallory")
    with pytest.raises(InvalidToken):
        accounts.change_password(
            pending, current_password=PASSWORD, new_password=NEW, confirmation=NEW
        )


def test_mf_1_refusals_are_unchanged(person: Person) -> None:
    """LK-5: a wrong password under a second factor is refused as before, naming no one."""
    for email, password in ((EMAIL, "Wrong-2026"), ("nobody@example.com", PASSWORD)):
        result = person.accounts().sign_in(email=email, password=password)
        assert (result.outcome, result.message) == (
            SignInOutcome.INVALID_CREDENTIALS,
            INVALID_CREDENTIALS_MESSAGE,
        )
        assert (result.user_id, result.pending_token, result.session_token) == (None, None, None)


@pytest.mark.parametrize("method", [DeliveryMethod.SMS, DeliveryMethod.VOICE])
def test_mf_2_a_code_by_text_or_call_finishes_the_sign_in_once(
    person: Person, method: DeliveryMethod
) -> None:
    pending = person.pending()
    person.by_phone(pending, method)
    token = _signed_in(person.accounts().finish_sign_in(pending))
    person.accounts().touch_session(token)
    with pytest.raises(InvalidToken):
        person.accounts().finish_sign_in(pending)


def test_mf_2_an_authenticator_code_finishes_the_sign_in(person: Person) -> None:
    person.enrol()
    pending = person.pending()
    options = person.accounts().second_factor_options(pending)
    assert (options.authenticator, options.recovery_codes) == (True, True)
    _signed_in(person.accounts().finish_sign_in(pending, authenticator_code=person.app_code()))


def test_mf_3_an_authenticator_code_is_accepted_once(person: Person) -> None:
    """No replay: the step used for one sign-in does not finish another."""
    person.enrol()
    code = person.app_code()
    _signed_in(person.accounts().finish_sign_in(person.pending(), authenticator_code=code))
    again = person.accounts().finish_sign_in(person.pending(), authenticator_code=code)
    assert again.outcome is SignInOutcome.SECOND_FACTOR_REFUSED
    assert again.message == SECOND_FACTOR_REFUSED_MESSAGE


def test_mf_2_mf_4_a_recovery_code_finishes_the_sign_in_once_and_the_user_is_told(
    person: Person,
) -> None:
    person.enrol()
    code = person.recovery[0]
    _signed_in(person.accounts().finish_sign_in(person.pending(), recovery_code=code))
    assert "recovery code" in person.outbox.last_email(EMAIL).body.lower()
    again = person.accounts().finish_sign_in(person.pending(), recovery_code=code)
    assert again.outcome is SignInOutcome.SECOND_FACTOR_REFUSED


def test_mf_1_wrong_codes_end_the_pending_sign_in_at_the_limit(person: Person) -> None:
    """VF-7 on a pending sign-in: five wrong codes, and the password must be typed again."""
    person.enrol()
    pending = person.pending()
    accounts = person.accounts()
    for _ in range(5):
        wrong = accounts.finish_sign_in(pending, recovery_code="0000-0000-0000-0000")
        assert wrong.outcome is SignInOutcome.SECOND_FACTOR_REFUSED
        assert wrong.reason is SignInReason.WRONG_CODE
        assert (wrong.session_token, wrong.user_id) == (None, None)
    with pytest.raises(InvalidToken):
        accounts.finish_sign_in(pending, authenticator_code=person.app_code())


def test_mf_1_a_pending_sign_in_lapses_after_ten_minutes(person: Person) -> None:
    person.enrol()
    pending = person.pending()
    person.clock.advance(timedelta(minutes=10))
    with pytest.raises(InvalidToken):
        person.accounts().finish_sign_in(pending, authenticator_code=person.app_code())


def test_mf_1_finishing_without_a_verified_code_is_out_of_order(person: Person) -> None:
    pending = person.pending()
    with pytest.raises(InvalidState) as early:
        person.accounts().finish_sign_in(pending)
    assert early.value.code == "flow.out_of_order"


@pytest.mark.parametrize(
    ("given", "code"),
    [
        (
            {"authenticator_code": "123456", "recovery_code": "AAAA-AAAA-AAAA-AAAA"},
            "sign_in.two_factors",
        ),
        ({"trust_device": "yes"}, "sign_in.not_bool"),
    ],
)
def test_mf_2_a_malformed_finish_is_a_clear_error(
    person: Person, given: dict[str, object], code: str
) -> None:
    finish: Callable[..., object] = person.accounts().finish_sign_in
    with pytest.raises(InvalidInput) as refused:
        finish(person.pending(), **given)
    assert refused.value.code == code


@pytest.mark.parametrize("typed", ["", "\ud800", "1" * 10_000, "١٢٣٤٥٦", 123456])
def test_mf_2_any_code_typed_is_a_refusal_or_an_error_never_a_crash(
    person: Person, typed: object
) -> None:
    person.enrol()
    finish: Callable[..., SignInResult] = person.accounts().finish_sign_in
    answer = _answer(lambda: finish(person.pending(), authenticator_code=typed))
    assert answer in {"refused", "text", "authenticator"}, answer


def _answer(action: Callable[[], SignInResult]) -> str:
    """Return "refused" for a refused second factor, or the area of the library's error."""
    try:
        result = action()
    except InvalidInput as error:
        return error.code.partition(".")[0]
    return "refused" if result.outcome is SignInOutcome.SECOND_FACTOR_REFUSED else "other"


def test_mf_5_a_trusted_device_skips_the_second_factor_until_forgotten(person: Person) -> None:
    rule = SecondFactor.NEW_DEVICE
    accounts = person.accounts(rule)
    pending = person.pending(rule)
    person.by_phone(pending)
    finished = accounts.finish_sign_in(pending, trust_device=True)
    token = _signed_in(finished)
    assert finished.device_token is not None
    device = finished.device_token
    _signed_in(accounts.sign_in(email=EMAIL, password=PASSWORD, device_token=device))
    (trusted,) = accounts.trusted_devices(token)
    assert trusted.expires_at - trusted.trusted_at == timedelta(days=30)
    assert device.reveal() not in repr(trusted)
    accounts.forget_device(token, device_id=trusted.id)
    assert accounts.trusted_devices(token) == ()
    person.pending(rule, device_token=device)


def test_mf_5_a_trusted_device_lapses_after_30_days(person: Person) -> None:
    rule = SecondFactor.NEW_DEVICE
    pending = person.pending(rule)
    person.by_phone(pending)
    device = person.accounts(rule).finish_sign_in(pending, trust_device=True).device_token
    person.clock.advance(timedelta(days=30))
    person.pending(rule, device_token=device)


def test_mf_5_a_change_of_password_forgets_every_device(person: Person) -> None:
    rule = SecondFactor.NEW_DEVICE
    accounts = person.accounts(rule)
    pending = person.pending(rule)
    person.by_phone(pending)
    finished = accounts.finish_sign_in(pending, trust_device=True)
    token = _signed_in(finished)
    changed = accounts.change_password(
        token, current_password=PASSWORD, new_password=NEW, confirmation=NEW
    )
    assert changed.ok
    result = accounts.sign_in(email=EMAIL, password=NEW, device_token=finished.device_token)
    assert result.outcome is SignInOutcome.SECOND_FACTOR_REQUIRED


def test_mf_5_devices_are_not_honoured_under_always_nor_made(person: Person) -> None:
    pending = person.pending(SecondFactor.NEW_DEVICE)
    person.by_phone(pending)
    device = person.accounts(SecondFactor.NEW_DEVICE).finish_sign_in(pending, trust_device=True)
    person.pending(SecondFactor.ALWAYS, device_token=device.device_token)
    always = person.pending(SecondFactor.ALWAYS)
    person.by_phone(always)
    assert person.accounts().finish_sign_in(always, trust_device=True).device_token is None


def test_mf_5_another_users_device_token_is_no_trust(person: Person) -> None:
    rule = SecondFactor.NEW_DEVICE
    world = World(person.context)
    world.user("other@example.com", practice=world.practice("Other"),
               phones=(Phone(number="+12025550199", kind=PhoneKind.CELL),))  # fmt: skip
    other = person.accounts(rule).sign_in(email="other@example.com", password=PASSWORD)
    assert other.pending_token is not None
    accounts = person.accounts(rule)
    options = accounts.second_factor_options(other.pending_token).delivery_options
    accounts.send_code(other.pending_token, option=options[0])
    accounts.verify_code(other.pending_token, code=person.outbox.last_code("+12025550199"))
    theirs = accounts.finish_sign_in(other.pending_token, trust_device=True).device_token
    person.pending(rule, device_token=theirs)


def test_mf_1_with_two_step_off_new_device_asks_nothing_and_always_cannot_turn_it_off(
    person: Person,
) -> None:
    """MF-1: under ``new_device`` a user with two-step off signs in with the password alone;
    under ``always`` the switch is refused (two_step.required)."""
    token = World(person.context).sign_in(EMAIL)
    with pytest.raises(InvalidState) as refused:
        person.accounts().set_two_step(token, enabled=False, current_password=PASSWORD, code="1")
    assert refused.value.code == "two_step.required"
    with person.context.unit() as uow:
        user = uow.users.get_by_email(EMAIL)
        assert user is not None
        uow.users.save(attrs.evolve(user, two_step_enabled=False, version=user.version + 1),
                       expected_version=user.version)  # fmt: skip
    new_device = person.accounts(SecondFactor.NEW_DEVICE)
    _signed_in(new_device.sign_in(email=EMAIL, password=PASSWORD))


def test_mf_1_twenty_simultaneous_finishes_open_one_session(person: Person) -> None:
    """MF-1, RS-5: a pending sign-in completes once, whatever the race."""
    pending = person.pending()
    person.by_phone(pending)
    results = _race(20, lambda: person.accounts().finish_sign_in(pending))
    assert sum(isinstance(r, SignInResult) and r.ok for r in results) == 1
    assert all(isinstance(r, (SignInResult, InvalidToken)) for r in results)


def test_mf_4_fifty_simultaneous_uses_of_one_recovery_code_let_one_in(person: Person) -> None:
    person.enrol()
    code = person.recovery[1]
    pendings = [person.pending() for _ in range(50)]
    accounts = person.accounts()
    results = _race(50, lambda: accounts.finish_sign_in(pendings.pop(), recovery_code=code))
    assert sum(isinstance(r, SignInResult) and r.ok for r in results) == 1
    refused = [r for r in results if isinstance(r, SignInResult) and not r.ok]
    assert len(refused) == 49


def test_mf_3_fifty_simultaneous_uses_of_one_app_step_let_one_in(person: Person) -> None:
    person.enrol()
    code = person.app_code()
    pendings = [person.pending() for _ in range(50)]
    accounts = person.accounts()
    results = _race(50, lambda: accounts.finish_sign_in(pendings.pop(), authenticator_code=code))
    assert sum(isinstance(r, SignInResult) and r.ok for r in results) == 1


def _race(n: int, action: Callable[[], SignInResult]) -> list[object]:
    """Run ``action`` in ``n`` threads released at once; return what each returned or raised."""
    start = threading.Barrier(n, timeout=60)
    results: list[object] = []
    guard = threading.Lock()

    def run() -> None:
        start.wait()
        try:
            outcome: object = action()
        except Exception as error:  # noqa: BLE001 - the test sorts what came out
            outcome = error
        with guard:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == n
    return results
