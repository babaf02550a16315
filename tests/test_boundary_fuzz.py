"""IN-1: every public action that takes text, given any text, answers or raises the library's error.

Each entry point gets arbitrary Unicode (lone surrogates, controls, direction
marks, invisible characters, huge strings) in one of its text arguments, the
others being right, on every store. Whatever comes out must be a result or a
`SecurePracticeError`: never a `UnicodeEncodeError` from a driver, a
`ValueError` from a parser, an `AttributeError`. And whatever a result
holds as a name, an address or an email holds no refused character.

The number of examples follows the hypothesis profile ("ci" under CI): a
share of it on the stores in memory and SQLite, a small one on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from securepractice import (
    AlreadyExists,
    InvalidInput,
    Outbox,
    Role,
    SecurePracticeError,
    SignInRules,
)
from securepractice.accounts.signin import INVALID_CREDENTIALS_MESSAGE, SignInOutcome
from securepractice.dependencies import Dependencies
from securepractice.policy.attachments import Attachment, AttachmentPolicy
from securepractice.policy.identity import normalize_email
from securepractice.policy.text import refused_characters
from securepractice.portal import Accounts, Billing, PracticeAdministration
from securepractice.practice.users import ManagedUser
from securepractice.records import (
    DeliveryMethod,
    Phone,
    PhoneKind,
    Practice,
    User,
)
from securepractice.settings import SecondFactor
from securepractice.testing import PASSWORD, InMemoryPaymentProcessor, World
from securepractice.verification.phones import DeliveryOption
from strategies import ANY_TEXT

CELL = "+12025550143"
PHONES = (Phone(number=CELL, kind=PhoneKind.CELL),)
BY_TEXT = DeliveryOption(method=DeliveryMethod.SMS, destination=CELL, kind=PhoneKind.CELL)

#: What a form might send: valid values, into which the strategy splices junk.
BASES = (
    "dana@smile.example",
    "Dana@Smile.Example",
    "user@münchen.de",
    PASSWORD,
    "(202) 555-0143",
    CELL,
    "123456",
    "Smile Dental",
    "1 Main St\r\nSuite 5",
    "scan.pdf",
    "practice-a",
    "securemail",
    "America/New_York",
    "4242",
)
#: Code points that have broken text handling somewhere: one of each refused class.
JUNK = (
    "\ud800\udfff\udc80\x00\n\r\t\x7f\x85\u2028\u2029\u202e\u2066\u061c"
    "\u200b\u200c\u200d\ufeff\u00ad\u3164\ue000\U000e0041\u0378\uffff@. "
)
HUGE = ("x" * 1_000_000, "\u202e" * 100_000, "a@" + "b" * 100_000 + ".example")


def _spliced(base: str, junk: str, at: int) -> str:
    return base[:at] + junk + base[at:]


TEXT = st.one_of(
    ANY_TEXT,
    st.builds(
        _spliced,
        st.sampled_from(BASES),
        st.text(st.one_of(st.sampled_from(JUNK), st.characters(exclude_categories=())), max_size=3),
        st.integers(0, 24),
    ),
    st.sampled_from(BASES + HUGE),
)


class Lab:
    """One practice's people at every stage, each with the link, code or session it needs.

    ``tag`` keeps the emails and ids of one lab apart from another's in the same store.
    """

    def __init__(self, deps: Dependencies, outbox: Outbox, tag: str) -> None:
        self.tag = tag
        self.accounts = Accounts(deps)
        self.practice = PracticeAdministration(deps)
        self.billing = Billing(deps, InMemoryPaymentProcessor())
        world = World(deps)
        self.office = world.practice("Smile Dental", practice_id=f"practice-{tag}")
        manager = world.member(
            self.mail("manager"),
            practice=self.office,
            roles=(Role.USER, Role.USER_MANAGER),
            phones=PHONES,
        )
        self.manager, self.token = manager.user, manager.token
        self.support = world.member(self.mail("help"), roles=(Role.SUPPORT,)).token
        invited = self.accounts.invite(
            practice_id=self.office.id, email=self.mail("new"), cell=CELL
        )
        self.invited = invited.id
        self.invitation = _token(outbox.last_link(self.mail("new")))
        self.accounts.send_code(self.invitation, option=BY_TEXT)
        world.user(self.mail("reset"), practice=self.office, phones=PHONES)
        self.accounts.forgot_password(email=self.mail("reset"))
        self.reset = _token(outbox.last_link(self.mail("reset")))
        self.accounts.send_code(self.reset, option=BY_TEXT)
        self.accounts.start_phone_change(
            self.token,
            current_password=PASSWORD,
            kind=PhoneKind.PHONE,
            number="(202) 555-0199",
            option_method=DeliveryMethod.VOICE,
        )
        self.accounts.send_two_step_off_code(self.token, option=BY_TEXT)
        self.accounts.change_email(
            self.token, current_password=PASSWORD, new_email=self.mail("moved")
        )
        self.email_change = _token(outbox.last_link(self.mail("moved")))
        always = SignInRules(second_factor=SecondFactor.ALWAYS)
        self.asking = Accounts(
            attrs.evolve(deps, settings=attrs.evolve(deps.settings, sign_in=always))
        )
        pending = self.asking.sign_in(email=self.mail("reset"), password=PASSWORD)
        assert pending.pending_token is not None
        self.pending = pending.pending_token

    def mail(self, who: str) -> str:
        """The email of one of the lab's people (or of someone to invite)."""
        return f"{who}-{self.tag}@smile.example"


def _token(link: str) -> str:
    return link.rpartition("token=")[2]


#: Every public action that takes text, one argument at a time: name, call.
ENTRY_POINTS: dict[str, Callable[[Lab, str], object]] = {
    "create_practice.name": lambda lab, t: lab.accounts.create_practice(name=t),
    "create_practice.address": lambda lab, t: lab.accounts.create_practice(name="S", address=t),
    "create_practice.phone": lambda lab, t: lab.accounts.create_practice(name="S", phone=t),
    "invite.email": lambda lab, t: lab.accounts.invite(practice_id=lab.office.id, email=t),
    "invite.practice_id": lambda lab, t: lab.accounts.invite(practice_id=t, email="a@b.example"),
    "invite.first_name": lambda lab, t: lab.accounts.invite(
        practice_id=lab.office.id, email=lab.mail("x"), first_name=t
    ),
    "invite.last_name": lambda lab, t: lab.accounts.invite(
        practice_id=lab.office.id, email=lab.mail("x"), last_name=t
    ),
    "invite.phone": lambda lab, t: lab.accounts.invite(
        practice_id=lab.office.id, email=lab.mail("x"), phone=t
    ),
    "invite.cell": lambda lab, t: lab.accounts.invite(
        practice_id=lab.office.id, email=lab.mail("x"), cell=t
    ),
    "invite.invited_by": lambda lab, t: lab.accounts.invite(
        practice_id=lab.office.id, email=lab.mail("x"), invited_by=t
    ),
    "open_invitation.token": lambda lab, t: lab.accounts.open_invitation(t),
    "add_phones.token": lambda lab, t: lab.accounts.add_phones(t, cell=CELL),
    "add_phones.phone": lambda lab, t: lab.accounts.add_phones(lab.invitation, phone=t),
    "add_phones.cell": lambda lab, t: lab.accounts.add_phones(lab.invitation, cell=t),
    "delivery_options.token": lambda lab, t: lab.accounts.delivery_options(t),
    "send_code.token": lambda lab, t: lab.accounts.send_code(t, option=BY_TEXT),
    "resend_code.token": lambda lab, t: lab.accounts.resend_code(t),
    "change_delivery_method.token": lambda lab, t: lab.accounts.change_delivery_method(
        t, option=BY_TEXT
    ),
    "verify_code.token": lambda lab, t: lab.accounts.verify_code(t, code="123456"),
    "verify_code.code": lambda lab, t: lab.accounts.verify_code(lab.invitation, code=t),
    "accept_terms.version": lambda lab, t: lab.accounts.accept_terms(lab.invitation, version=t),
    "set_password.token": lambda lab, t: lab.accounts.set_password(
        t, password=PASSWORD, confirmation=PASSWORD
    ),
    "set_password.password": lambda lab, t: lab.accounts.set_password(
        lab.invitation, password=t, confirmation=t
    ),
    "sign_in.email": lambda lab, t: lab.accounts.sign_in(email=t, password=PASSWORD),
    "sign_in.password": lambda lab, t: lab.accounts.sign_in(email=lab.manager.email, password=t),
    "forgot_password.email": lambda lab, t: lab.accounts.forgot_password(email=t),
    "open_reset_link.token": lambda lab, t: lab.accounts.open_reset_link(t),
    "reset_password.token": lambda lab, t: lab.accounts.reset_password(
        t, password=PASSWORD, confirmation=PASSWORD
    ),
    "reset_password.password": lambda lab, t: lab.accounts.reset_password(
        lab.reset, password=t, confirmation=t
    ),
    "change_password.token": lambda lab, t: lab.accounts.change_password(
        t, current_password=PASSWORD, new_password="Harbor-Light-77", confirmation="x"
    ),
    "change_password.current_password": lambda lab, t: lab.accounts.change_password(
        lab.token, current_password=t, new_password="Harbor-Light-77", confirmation="x"
    ),
    "change_password.new_password": lambda lab, t: lab.accounts.change_password(
        lab.token, current_password="wrong", new_password=t, confirmation=t
    ),
    "update_profile.first_name": lambda lab, t: lab.accounts.update_profile(
        lab.token, first_name=t
    ),
    "update_profile.last_name": lambda lab, t: lab.accounts.update_profile(lab.token, last_name=t),
    "update_profile.time_zone": lambda lab, t: lab.accounts.update_profile(lab.token, time_zone=t),
    "update_profile.ada_number": lambda lab, t: lab.accounts.update_profile(
        lab.token, ada_number=t
    ),
    "update_profile.specialties": lambda lab, t: lab.accounts.update_profile(
        lab.token, specialties=(t,)
    ),
    "set_two_step.token": lambda lab, t: lab.accounts.set_two_step(t, enabled=True),
    "set_two_step.current_password": lambda lab, t: lab.accounts.set_two_step(
        lab.token, enabled=False, current_password=t, code="123456"
    ),
    "set_two_step.code": lambda lab, t: lab.accounts.set_two_step(
        lab.token, enabled=False, current_password=PASSWORD, code=t
    ),
    "two_step_off_options.token": lambda lab, t: lab.accounts.two_step_off_options(t),
    "send_two_step_off_code.token": lambda lab, t: lab.accounts.send_two_step_off_code(
        t, option=BY_TEXT
    ),
    "resend_two_step_off_code.token": lambda lab, t: lab.accounts.resend_two_step_off_code(t),
    "confirm_email_change.token": lambda lab, t: lab.accounts.confirm_email_change(
        t, link_token=lab.email_change
    ),
    "confirm_email_change.link_token": lambda lab, t: lab.accounts.confirm_email_change(
        lab.token, link_token=t
    ),
    "list_sessions.token": lambda lab, t: lab.accounts.list_sessions(t),
    "end_session.session_id": lambda lab, t: lab.accounts.end_session(
        lab.token, session_id=t, current_password=PASSWORD
    ),
    "end_session.current_password": lambda lab, t: lab.accounts.end_session(
        lab.token,
        session_id=lab.accounts.list_sessions(lab.token)[0].session_id,
        current_password=t,
    ),
    "end_other_sessions.current_password": lambda lab, t: lab.accounts.end_other_sessions(
        lab.token, current_password=t
    ),
    "change_email.new_email": lambda lab, t: lab.accounts.change_email(
        lab.token, current_password="wrong", new_email=t
    ),
    "change_email.current_password": lambda lab, t: lab.accounts.change_email(
        lab.token, current_password=t, new_email=lab.manager.email
    ),
    "start_phone_change.number": lambda lab, t: lab.accounts.start_phone_change(
        lab.token,
        current_password="wrong",
        kind=PhoneKind.CELL,
        number=t,
        option_method=DeliveryMethod.SMS,
    ),
    "start_phone_change.current_password": lambda lab, t: lab.accounts.start_phone_change(
        lab.token,
        current_password=t,
        kind=PhoneKind.PHONE,
        number="(202) 555-0198",
        option_method=DeliveryMethod.VOICE,
    ),
    "resend_phone_code.token": lambda lab, t: lab.accounts.resend_phone_code(t),
    "verify_phone_code.code": lambda lab, t: lab.accounts.verify_phone_code(lab.token, code=t),
    "verify_phone_code.token": lambda lab, t: lab.accounts.verify_phone_code(t, code="123456"),
    "second_factor_options.pending_token": lambda lab, t: lab.accounts.second_factor_options(t),
    "finish_sign_in.pending_token": lambda lab, t: lab.accounts.finish_sign_in(
        t, recovery_code="AAAA-AAAA-AAAA-AAAA"
    ),
    "finish_sign_in.authenticator_code": lambda lab, t: lab.asking.finish_sign_in(
        lab.pending, authenticator_code=t
    ),
    "finish_sign_in.recovery_code": lambda lab, t: lab.asking.finish_sign_in(
        lab.pending, recovery_code=t
    ),
    "trusted_devices.token": lambda lab, t: lab.accounts.trusted_devices(t),
    "forget_device.device_id": lambda lab, t: lab.accounts.forget_device(lab.token, device_id=t),
    "start_authenticator.token": lambda lab, t: lab.accounts.start_authenticator(t),
    "confirm_authenticator.token": lambda lab, t: lab.accounts.confirm_authenticator(
        t, code="123456"
    ),
    "confirm_authenticator.code": lambda lab, t: lab.accounts.confirm_authenticator(
        lab.token, code=t
    ),
    "remove_authenticator.current_password": lambda lab, t: lab.accounts.remove_authenticator(
        lab.token, current_password=t
    ),
    "make_recovery_codes.current_password": lambda lab, t: lab.accounts.make_recovery_codes(
        lab.token, current_password=t
    ),
    "recovery_codes_left.token": lambda lab, t: lab.accounts.recovery_codes_left(t),
    "touch_session.token": lambda lab, t: lab.accounts.touch_session(t),
    "sign_out.token": lambda lab, t: lab.accounts.sign_out(t),
    "list_users.token": lambda lab, t: lab.practice.list_users(t),
    "edit_invited_user.user_id": lambda lab, t: lab.practice.edit_invited_user(
        lab.token, user_id=t, cell=CELL
    ),
    "edit_invited_user.email": lambda lab, t: lab.practice.edit_invited_user(
        lab.token, user_id=lab.invited, email=t
    ),
    "edit_invited_user.phone": lambda lab, t: lab.practice.edit_invited_user(
        lab.token, user_id=lab.invited, phone=t
    ),
    "edit_invited_user.cell": lambda lab, t: lab.practice.edit_invited_user(
        lab.token, user_id=lab.invited, cell=t
    ),
    "reinvite.user_id": lambda lab, t: lab.practice.reinvite(lab.token, user_id=t),
    "set_two_step_for.user_id": lambda lab, t: lab.practice.set_two_step_for(
        lab.token, user_id=t, enabled=True
    ),
    "set_two_step_for.reason": lambda lab, t: lab.practice.set_two_step_for(
        lab.token, user_id=lab.invited, enabled=False, reason=t
    ),
    "unlock.user_id": lambda lab, t: lab.practice.unlock(lab.support, user_id=t),
    "grant_user_manager.user_id": lambda lab, t: lab.practice.grant_user_manager(
        lab.support, user_id=t
    ),
    "revoke_user_manager.user_id": lambda lab, t: lab.practice.revoke_user_manager(
        lab.support, user_id=t
    ),
    "edit_practice.practice_id": lambda lab, t: lab.practice.edit_practice(
        lab.support, practice_id=t, name="Smile Dental"
    ),
    "edit_practice.name": lambda lab, t: lab.practice.edit_practice(
        lab.support, practice_id=lab.office.id, name=t
    ),
    "edit_practice.address": lambda lab, t: lab.practice.edit_practice(
        lab.support, practice_id=lab.office.id, address=t
    ),
    "edit_practice.phone": lambda lab, t: lab.practice.edit_practice(
        lab.support, practice_id=lab.office.id, phone=t
    ),
    "subscribe_practice.product": lambda lab, t: lab.practice.subscribe_practice(
        lab.support, practice_id=lab.office.id, product=t
    ),
    "subscribe_practice.practice_id": lambda lab, t: lab.practice.subscribe_practice(
        lab.support, practice_id=t, product="securemail"
    ),
    "grant_product.product": lambda lab, t: lab.practice.grant_product(
        lab.support, user_id=lab.manager.id, product=t
    ),
    "revoke_product.user_id": lambda lab, t: lab.practice.revoke_product(
        lab.support, user_id=t, product="securemail"
    ),
    "deactivate.user_id": lambda lab, t: lab.practice.deactivate(lab.support, user_id=t),
    "mark_password_compromised.user_id": lambda lab, t: lab.practice.mark_password_compromised(
        lab.support, user_id=t
    ),
    "end_user_sessions.user_id": lambda lab, t: lab.practice.end_user_sessions(
        lab.support, user_id=t
    ),
    "clear_code_guesses.user_id": lambda lab, t: lab.practice.clear_code_guesses(
        lab.support, user_id=t
    ),
    "create_support_staff.email": lambda lab, t: lab.practice.create_support_staff(
        lab.support, email=t
    ),
    "create_support_staff.first_name": lambda lab, t: lab.practice.create_support_staff(
        lab.support, email="new.staff@support.example", first_name=t
    ),
    "list_support_staff.token": lambda lab, t: lab.practice.list_support_staff(t),
    "deactivate_support_staff.user_id": lambda lab, t: lab.practice.deactivate_support_staff(
        lab.support, user_id=t
    ),
    "put_card_on_file_for.user_id": lambda lab, t: lab.practice.put_card_on_file_for(
        lab.support, user_id=t, processor_token="tok_visa", last_four="4242"
    ),
    "put_card_on_file_for.processor_token": lambda lab, t: lab.practice.put_card_on_file_for(
        lab.support, user_id=lab.manager.id, processor_token=t, last_four="4242"
    ),
    "dashboard_products.token": lambda lab, t: lab.practice.dashboard_products(t),
    "put_card_on_file.processor_token": lambda lab, t: lab.billing.put_card_on_file(
        lab.token, processor_token=t, last_four="4242"
    ),
    "put_card_on_file.last_four": lambda lab, t: lab.billing.put_card_on_file(
        lab.token, processor_token="tok_visa", last_four=t
    ),
    "purchase_securemail.account_id": lambda lab, t: lab.billing.purchase_securemail(
        lab.token, account_id=t
    ),
    "list_payments.token": lambda lab, t: lab.billing.list_payments(t),
    "list_invoices.token": lambda lab, t: lab.billing.list_invoices(t),
    "email_invoices.token": lambda lab, t: lab.billing.email_invoices(t),
    "attachment.name": lambda _lab, t: AttachmentPolicy().check(
        [Attachment(name=t, content=b"%PDF-1.7\n")]
    ),
}

#: The share of the profile's examples each entry point gets on each store.
_SHARE = {"memory": 4, "sqlite": 8, "postgres": 40}
#: What a result may hold as text a person reads: none may hold a refused character.
_TEXT_FIELDS = ("email", "pending_email", "first_name", "last_name", "name", "address")


def _assert_clean(result: object) -> None:
    """IN-1: the names, addresses and emails a result holds hold no refused character."""
    if isinstance(result, (User, Practice, ManagedUser)):
        for field in _TEXT_FIELDS:
            value: Any = getattr(result, field, None) or ""
            assert refused_characters(value, newlines=field == "address") == (), field


def _fuzz(lab: Lab, call: Callable[[Lab, str], object], examples: int) -> None:
    """Give ``call`` arbitrary text, the worst known cases first."""

    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(text=TEXT)
    @example(text="\ud800")
    @example(text=f"{lab.mail('new')}\udcff")
    @example(text="\x00")
    @example(text="Smile\u202e")
    @example(text="")
    @example(text=HUGE[0])
    def answers(text: str) -> None:
        try:
            result = call(lab, text)
        except SecurePracticeError:
            return
        _assert_clean(result)

    answers()


def test_in_1_every_entry_point_answers_any_text_with_only_the_librarys_errors(
    request: pytest.FixtureRequest, context: Dependencies, outbox: Outbox
) -> None:
    """IN-1: arbitrary Unicode in any text argument never escapes as a foreign exception.

    Every entry point runs on its own lab in the one store of the test (a
    fresh database per entry point would cost PostgreSQL most of the time).
    """
    store = request.node.callspec.params["store"]
    examples = max(3, hypothesis_settings().max_examples // _SHARE[store])
    escaped: list[str] = []
    for number, entry in enumerate(sorted(ENTRY_POINTS)):
        lab = Lab(context, outbox, tag=str(number))
        try:
            _fuzz(lab, ENTRY_POINTS[entry], examples)
        except Exception as error:  # noqa: BLE001 - each is reported below, with its entry
            notes = " ".join(getattr(error, "__notes__", ()))
            escaped.append(f"{entry}: {type(error).__name__}: {error} {notes}")
    assert not escaped, "\n".join(escaped)


def test_in_1_the_table_names_every_public_action_that_takes_text() -> None:
    """IN-1: an action added to a facade with a text argument must join the fuzz table."""
    import inspect  # noqa: PLC0415

    covered = {name.partition(".")[0] for name in ENTRY_POINTS}
    missing = []
    for facade in (Accounts, PracticeAdministration, Billing):
        for name, member in vars(facade).items():
            if name.startswith("_") or not callable(member) or isinstance(member, type):
                continue
            parameters = list(inspect.signature(member).parameters.values())[1:]
            takes_text = any("str" in str(p.annotation) for p in parameters)
            if takes_text and name not in covered:
                missing.append(name)
    assert not missing, f"public actions taking text with no fuzz entry: {missing}"


def _examples(request: pytest.FixtureRequest) -> int:
    """The examples a property test gets on the store of this run of it."""
    store = request.node.callspec.params["store"]
    return max(3, hypothesis_settings().max_examples // _SHARE[store])


def test_rs_1_forgot_password_answers_none_to_any_text_and_sends_nothing(
    request: pytest.FixtureRequest, context: Dependencies, outbox: Outbox
) -> None:
    """RS-1, IN-1: any text, surrogates included, gets the same None, and no mail."""
    lab = Lab(context, outbox, tag="rs")
    sent = len(outbox.emails)

    @hypothesis_settings(max_examples=_examples(request), deadline=None, database=None)
    @given(text=TEXT)
    @example(text="a\ud800@example.com")
    @example(text=f"{lab.mail('reset')}\ufeff")
    def answers(text: str) -> None:
        assert lab.accounts.forgot_password(email=text) is None

    answers()
    assert len(outbox.emails) == sent


def test_lk_5_sign_in_with_any_email_text_gets_the_one_public_refusal(
    request: pytest.FixtureRequest, context: Dependencies, outbox: Outbox
) -> None:
    """LK-5, IN-1: an email that is no user's, however malformed, is the one refusal."""
    lab = Lab(context, outbox, tag="lk")

    @hypothesis_settings(max_examples=_examples(request), deadline=None, database=None)
    @given(text=TEXT)
    @example(text="a\ud800@example.com")
    @example(text=f"{lab.mail('manager')}\u200b")
    def refused(text: str) -> None:
        result = lab.accounts.sign_in(email=text, password=PASSWORD)
        assert result.outcome is SignInOutcome.INVALID_CREDENTIALS
        assert result.message == INVALID_CREDENTIALS_MESSAGE

    refused()


def test_in_2_two_spellings_of_one_mailbox_are_one_user_and_a_look_alike_is_none(
    context: Dependencies, outbox: Outbox
) -> None:
    """IN-2 repro: the IDNA spelling, or an invisible character, made a second account."""
    accounts = Accounts(context)
    world = World(context)
    first = world.practice("Smile Dental")
    other = world.practice("Other Dental")
    user = accounts.invite(practice_id=first.id, email="Dr.Smith@München.de")
    assert user.email == "dr.smith@münchen.de"
    with pytest.raises(AlreadyExists) as taken:
        accounts.invite(practice_id=other.id, email="dr.smith@xn--mnchen-3ya.de")
    assert taken.value.code == "user.email_taken"
    for look_alike in ("dr.smith@m\ufeffünchen.de", "dr.smith@münchen.d\u200ce"):
        with pytest.raises(InvalidInput) as refused:
            accounts.invite(practice_id=other.id, email=look_alike)
        assert refused.value.code == "email.malformed"
    with context.unit() as uow:
        assert [u.id for u in uow.users.list_for_practice(other.id)] == []
    assert [m.to for m in outbox.emails] == ["dr.smith@münchen.de"]
    world.user(normalize_email("bo@zahnärzte.de"), practice=first)
    assert accounts.sign_in(email="BO@XN--ZAHNRZTE-3ZA.DE", password=PASSWORD).ok


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("first_name", "x" * 1_000_000, "text.too_long"),
        ("first_name", "Dana\x00", "text.control_character"),
        ("last_name", "Smith\u202e", "text.bidi_control"),
        ("first_name", "\ud800", "text.surrogate"),
        ("last_name", "Sm\u200bith", "text.invisible_character"),
    ],
)
def test_in_1_invite_checks_the_names_before_anything_is_stored_or_sent(
    context: Dependencies, outbox: Outbox, field: str, value: str, code: str
) -> None:
    """IN-1 repro: a 1 MB name, NUL and U+202E went into the store and the invitation email."""
    accounts = Accounts(context)
    practice = World(context).practice()
    with pytest.raises(InvalidInput) as caught:
        accounts.invite(practice_id=practice.id, email="dana@smile.example", **{field: value})
    assert (caught.value.field, caught.value.code) == (field, code)
    assert outbox.emails == ()
    with context.unit() as uow:
        assert not uow.users.list_for_practice(practice.id)


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"name": "\ud800"}, "name", "text.surrogate"),
        ({"name": "Smile\u2066Dental"}, "name", "text.bidi_control"),
        ({"name": "S" * 1_000_000}, "name", "text.too_long"),
        ({"name": "Smile", "address": "1 Main St\x00"}, "address", "text.control_character"),
        ({"name": "Smile", "address": "\n".join("x" * 7)}, "address", "text.too_many_lines"),
    ],
)
def test_in_1_a_practice_is_created_only_with_clean_text(
    context: Dependencies, fields: dict[str, str], field: str, code: str
) -> None:
    """IN-1 repro: create_practice(name="\\ud800") raised UnicodeEncodeError on SQLite."""
    with pytest.raises(InvalidInput) as caught:
        Accounts(context).create_practice(**fields)
    assert (caught.value.field, caught.value.code) == (field, code)


def test_in_1_a_practice_address_keeps_its_lines(context: Dependencies) -> None:
    practice = Accounts(context).create_practice(
        name=" Smile Dental ", address="1 Main St\r\nSuite 5\r\n\r\nSpringfield, IL 62701\r\n"
    )
    assert practice.address == "1 Main St\nSuite 5\nSpringfield, IL 62701"
    with context.unit() as uow:
        assert uow.practices.get(practice.id) == practice
