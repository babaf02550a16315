"""Compromised passwords through the portal, on every store (RC-3, RC-4, PW-10, PW-5, LK-5, AU-2).

The portal runs the NIST profile over `Breaches`, a compromised-password
source over a set that records what it is asked; the user reads the
portal's emails from the outbox.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from accounts.link_flows import token_of
from conftest import BASE_URL, CHEAP_HASHING, SECRET
from securepractice import (
    CompromisedCheckFailed,
    CompromisedPasswordFile,
    CompromisedPasswordRange,
    Dependencies,
    FakeClock,
    HashParameters,
    InvalidInput,
    InvalidState,
    LinkRules,
    MemoryStorage,
    Messaging,
    Outbox,
    PasswordHasher,
    PasswordPolicy,
    PasswordRules,
    PermissionDenied,
    Portal,
    Role,
    Settings,
    SettingsError,
    SignInOutcome,
    SignInReason,
)
from securepractice.accounts.signin import INVALID_CREDENTIALS_MESSAGE
from securepractice.portal import Accounts, PracticeAdministration
from securepractice.records import AuditEvent, Credential, User
from securepractice.secret import Secret
from securepractice.storage.ports import Storage
from securepractice.testing import PASSWORD, World

EMAIL = "dr.smith@example.com"
#: A password on the list of exposed passwords: long enough for the NIST profile.
LEAKED = "correct horse battery staple"
#: Passwords on no list.
FRESH = "a long walk to the harbour light"
FRESHER = "tide tables for the whole bay 2026"

NIST = Settings(
    password=PasswordRules.NIST,
    hashing=CHEAP_HASHING,
    links=LinkRules(base_url=BASE_URL),
    secret=SECRET,
)
NOTICE_SUBJECT = "Choose a new MySecurePractice password"


class Breaches:
    """A compromised-password source over a set of passwords; it records what it is asked.

    With ``failure`` set it raises that instead of answering, as a source
    whose service is down does.
    """

    def __init__(self, *listed: str) -> None:
        self.listed = set(listed)
        self.asked: list[str] = []
        self.failure: Exception | None = None

    def is_compromised(self, password: str) -> bool:
        self.asked.append(password)
        if self.failure is not None:
            raise self.failure
        return password in self.listed


@attrs.frozen
class Site:
    """A NIST portal over one store: its actions, its world and what a test reads back."""

    deps: Dependencies
    outbox: Outbox
    clock: FakeClock
    breaches: Breaches
    world: World
    accounts: Accounts
    practice: PracticeAdministration

    def credential(self, user_id: str) -> Credential:
        with self.deps.storage.unit_of_work() as uow:
            found = uow.credentials.get(user_id)
        assert found is not None
        return found

    def events(self, action: str) -> list[AuditEvent]:
        with self.deps.storage.unit_of_work() as uow:
            return [e for e in uow.audit.events() if e.action == action]

    def notices(self, to: str = EMAIL) -> list[str]:
        """The bodies of the compromised-password emails sent to ``to``."""
        return [m.body for m in self.outbox.emails if m.to == to and m.subject == NOTICE_SUBJECT]

    def user(self, password: str | None = PASSWORD, *, two_step: bool = False) -> User:
        return self.world.user(
            EMAIL, practice=self.world.practice(), password=password, two_step=two_step
        )


@pytest.fixture
def site(store: Storage, outbox: Outbox, clock: FakeClock) -> Site:
    breaches = Breaches(LEAKED)
    deps = Dependencies(
        storage=store,
        messaging=Messaging.using(outbox),
        settings=NIST,
        clock=clock,
        compromised=breaches,
        portal_name="MySecurePractice",
    )
    return Site(
        deps=deps,
        outbox=outbox,
        clock=clock,
        breaches=breaches,
        world=World(deps),
        accounts=Accounts(deps),
        practice=PracticeAdministration(deps),
    )


def assert_change_only(site: Site, token: Secret[str]) -> None:
    """PW-5, RC-4: the session is live, and every action but the change of password refuses it."""
    assert site.accounts.touch_session(token).must_change_password
    with pytest.raises(InvalidState) as profile:
        site.accounts.update_profile(token, first_name="Robin")
    with pytest.raises(InvalidState) as two_step:
        site.accounts.set_two_step(token, enabled=True)
    with pytest.raises(InvalidState) as practice:
        site.practice.list_users(token)
    for caught in (profile, two_step, practice):
        assert caught.value.code == "password.compromised"


def assert_no_secret_in_audit(site: Site, *secrets: str) -> None:
    """AU-2: no password and no stored hash in any audit event."""
    with site.deps.storage.unit_of_work() as uow:
        shown = repr(list(uow.audit.events()))
    for secret in secrets:
        assert secret not in shown


# RC-3: the compromised-password source through Portal.


@pytest.mark.parametrize("kind", ["in_memory", "sqlite", "postgres"])
def test_rc_3_pw_10_a_nist_portal_is_one_line_and_refuses_a_listed_password(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """RC-3, PW-10: each Portal constructor takes the source; a listed password is refused."""
    listing = tmp_path / "breached.txt"
    listing.write_text(f"{LEAKED}\nletmein\n", encoding="utf-8")
    outbox = Outbox()
    messaging = Messaging.using(outbox)
    breached = CompromisedPasswordFile(listing)
    if kind == "in_memory":
        portal = Portal.in_memory(messaging=messaging, settings=NIST, compromised=breached)
    elif kind == "sqlite":
        portal = Portal.sqlite(
            tmp_path / "p.db", messaging=messaging, settings=NIST, compromised=breached
        )
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        portal = Portal.postgres(dsn, messaging=messaging, settings=NIST, compromised=breached)
    with portal:
        world = World(portal.deps)
        member = world.member(EMAIL, practice=world.practice())
        with portal.deps.storage.unit_of_work() as uow:
            kept = uow.credentials.get(member.id)

        refused = portal.accounts.change_password(
            member.token, current_password=PASSWORD, new_password=LEAKED, confirmation=LEAKED
        )
        assert refused.report.codes == ("password.compromised",)
        with portal.deps.storage.unit_of_work() as uow:
            assert uow.credentials.get(member.id) == kept
        changed = portal.accounts.change_password(
            member.token, current_password=PASSWORD, new_password=FRESH, confirmation=FRESH
        )
        assert changed.ok


def test_rc_3_the_nist_profile_without_a_source_is_a_clear_error() -> None:
    """RC-3: a NIST portal given no source says which keyword it needs."""
    with pytest.raises(InvalidInput) as caught:
        Portal.in_memory(messaging=Messaging.using(Outbox()), settings=NIST)
    assert caught.value.code == "settings.no_compromised_source"
    assert "compromised=" in caught.value.message


def test_rc_3_a_source_that_is_no_source_is_refused_when_the_portal_is_built() -> None:
    """RC-3: a file name or a second, different source is refused at once, naming the field."""
    messaging = Messaging.using(Outbox())
    with pytest.raises(SettingsError) as caught:
        Portal.in_memory(messaging=messaging, compromised="breached.txt")  # type: ignore[arg-type]
    assert caught.value.field == "compromised"
    with pytest.raises(SettingsError) as twice:
        Dependencies(
            storage=MemoryStorage(),
            messaging=messaging,
            policy=PasswordPolicy.nist(Breaches()),
            compromised=Breaches(),
        )
    assert twice.value.field == "compromised"


def test_rc_3_the_portal_profile_screens_too_when_given_a_source(site: Site) -> None:
    """RC-3: a source given with the portal's own profile is used as well, at change of password."""
    portal_rules = Dependencies(
        storage=site.deps.storage,
        messaging=site.deps.messaging,
        settings=Settings(hashing=CHEAP_HASHING, secret=SECRET),
        clock=site.clock,
        compromised=site.breaches,
    )
    site.breaches.listed.add("Harbor-Light-77")
    world = World(portal_rules)
    member = world.member(EMAIL, practice=world.practice())
    result = Accounts(portal_rules).change_password(
        member.token,
        current_password=PASSWORD,
        new_password="Harbor-Light-77",
        confirmation="Harbor-Light-77",
    )
    assert result.report.codes == ("password.compromised",)


def test_rc_3_a_new_password_the_source_cannot_check_is_refused_and_nothing_saved(
    site: Site,
) -> None:
    """RC-3: at change of password an outage refuses with its own code; the old one still works."""
    member = site.world.member(EMAIL, practice=site.world.practice())
    kept = site.credential(member.id)
    site.breaches.failure = CompromisedCheckFailed("down", code="compromised.unavailable")

    result = site.accounts.change_password(
        member.token, current_password=PASSWORD, new_password=FRESH, confirmation=FRESH
    )

    assert result.report.codes == ("password.check_unavailable",)
    assert not result.ok
    assert site.credential(member.id) == kept
    [refusal] = site.events("password.change_refused")
    assert dict(refusal.detail)["violations"] == "password.check_unavailable"
    site.breaches.failure = None
    assert site.accounts.sign_in(email=EMAIL, password=PASSWORD).ok


def test_rc_3_a_reset_the_source_cannot_check_keeps_its_link_for_later(site: Site) -> None:
    """RC-3, RS-2: a reset during an outage is refused; the same link works once it is over."""
    site.user()
    site.accounts.forgot_password(email=EMAIL)
    token = token_of(site.outbox.last_link(EMAIL))
    site.breaches.failure = CompromisedCheckFailed("down", code="compromised.unavailable")
    refused = site.accounts.reset_password(token, password=FRESH, confirmation=FRESH)
    assert refused.codes == ("password.check_unavailable",)
    site.breaches.failure = None
    assert site.accounts.reset_password(token, password=LEAKED, confirmation=LEAKED).codes == (
        "password.compromised",
    )
    assert site.accounts.reset_password(token, password=FRESH, confirmation=FRESH).ok
    assert site.accounts.sign_in(email=EMAIL, password=FRESH).ok


# RC-4: a password marked compromised at sign-in.


def test_rc_4_pw_5_a_listed_password_signs_in_only_to_change_it(site: Site) -> None:
    """RC-4, PW-5: the source lists the password at sign-in; each session can only change it."""
    user = site.user(LEAKED)
    site.breaches.listed.clear()
    earlier = site.accounts.sign_in(email=EMAIL, password=LEAKED)
    assert earlier.ok
    assert earlier.session_token is not None
    site.breaches.listed.add(LEAKED)

    result = site.accounts.sign_in(email=EMAIL, password=LEAKED)

    assert result.outcome is SignInOutcome.PASSWORD_COMPROMISED
    assert result.reason is SignInReason.PASSWORD_COMPROMISED
    assert result.must_change_password
    assert not result.ok
    assert result.user_id == user.id
    token = result.session_token
    assert token is not None
    assert site.credential(user.id).compromised
    assert_change_only(site, token)
    assert_change_only(site, earlier.session_token)

    changed = site.accounts.change_password(
        token, current_password=LEAKED, new_password=FRESH, confirmation=FRESH
    )

    assert changed.ok
    assert changed.session_token is not None
    assert not site.credential(user.id).compromised
    assert not site.accounts.touch_session(changed.session_token).must_change_password
    assert site.accounts.update_profile(changed.session_token, first_name="Robin").first_name == (
        "Robin"
    )
    assert site.accounts.sign_in(email=EMAIL, password=FRESH).ok


def test_rc_4_the_user_is_told_once_and_the_source_asked_once(site: Site) -> None:
    """RC-4, AU-1, AU-2: one email and one audit event at the mark; none again, and no secret."""
    user = site.user(LEAKED)

    first = site.accounts.sign_in(email=EMAIL, password=LEAKED)
    second = site.accounts.sign_in(email=EMAIL, password=LEAKED)

    assert first.must_change_password
    assert second.outcome is SignInOutcome.PASSWORD_COMPROMISED
    assert site.breaches.asked == [LEAKED]
    [notice] = site.notices()
    assert "MySecurePractice" in notice
    assert "Forgot Password" in notice
    assert LEAKED not in notice
    [marked] = site.events("password.marked_compromised")
    assert (marked.actor_id, marked.subject_id, dict(marked.detail)) == (
        user.id,
        user.id,
        {"by": "sign_in"},
    )
    outcomes = [e.outcome for e in site.events("sign_in")]
    assert outcomes == ["password_compromised", "password_compromised"]
    assert_no_secret_in_audit(site, LEAKED, site.credential(user.id).password_hash)


def test_rc_4_the_password_is_screened_as_typed_in_its_normal_form(site: Site) -> None:
    """RC-4: the source gets the NFKC form of what was typed, which is what was hashed."""
    site.user(LEAKED)
    typed = "ｃorrect horse battery staple"
    assert site.accounts.sign_in(email=EMAIL, password=typed).must_change_password
    assert site.breaches.asked == [LEAKED]


def test_lk_5_wrong_passwords_and_unknown_emails_are_never_sent_to_the_source(
    site: Site,
) -> None:
    """LK-5, RC-4: refusals stay as they were: the same answer, no question to the source."""
    user = site.user(LEAKED)

    wrong = site.accounts.sign_in(email=EMAIL, password=LEAKED + "!")
    unknown = site.accounts.sign_in(email="nobody@example.com", password=LEAKED)

    for refused in (wrong, unknown):
        assert refused.outcome is SignInOutcome.INVALID_CREDENTIALS
        assert refused.message == INVALID_CREDENTIALS_MESSAGE
        assert (refused.user_id, refused.session_token) == (None, None)
    assert (wrong.reason, unknown.reason) == (
        SignInReason.WRONG_PASSWORD,
        SignInReason.UNKNOWN_USER,
    )
    assert site.breaches.asked == []
    assert not site.credential(user.id).compromised
    assert site.outbox.emails == ()
    with site.deps.storage.unit_of_work() as uow:
        assert uow.sign_in_failures.count(user.id) == 1


@pytest.mark.parametrize(
    "failure",
    [CompromisedCheckFailed("garbled", code="compromised.bad_response"), ConnectionError()],
)
def test_rc_4_a_source_that_cannot_answer_never_blocks_a_right_password(
    site: Site, failure: Exception
) -> None:
    """RC-4: at sign-in an outage is audited and the sign-in goes on; nothing is marked."""
    user = site.user(LEAKED)
    site.breaches.failure = failure

    result = site.accounts.sign_in(email=EMAIL, password=LEAKED)

    assert result.ok
    assert not site.credential(user.id).compromised
    assert site.notices() == []
    [event] = site.events("password.compromised_check_failed")
    expected = getattr(failure, "code", "compromised.unavailable")
    assert (event.outcome, dict(event.detail)) == (expected, {"error": type(failure).__name__})
    assert event.subject_id == user.id


def test_rc_4_a_notice_that_cannot_be_sent_is_audited_and_the_mark_stays(site: Site) -> None:
    """RC-4: the mark is made before the email; a failed delivery is audited, not raised."""
    user = site.user(LEAKED)
    site.outbox.fail_next("email")

    result = site.accounts.sign_in(email=EMAIL, password=LEAKED)

    assert result.outcome is SignInOutcome.PASSWORD_COMPROMISED
    assert site.credential(user.id).compromised
    [failed] = site.events("notice.failed")
    assert dict(failed.detail)["notice"] == "password_compromised"


# RC-4: support staff mark a password compromised.


def test_rc_4_support_marks_a_password_and_the_user_must_change_it(site: Site) -> None:
    """RC-4, SP-1, PW-9: support marks; the user's sessions reach only the change; told once."""
    practice = site.world.practice()
    member = site.world.member(EMAIL, practice=practice)
    support = site.world.member("help@portal.example", roles=(Role.SUPPORT,))
    before = site.credential(member.id)

    marked = site.practice.mark_password_compromised(support.token, user_id=member.id)
    again = site.practice.mark_password_compromised(support.token, user_id=member.id)

    assert marked.id == again.id == member.id
    after = site.credential(member.id)
    assert after.compromised
    assert after.password_hash == before.password_hash
    assert after.password_hash not in repr(after)
    assert len(site.notices()) == 1
    [event] = site.events("password.marked_compromised")
    assert (event.actor_id, event.subject_id, event.practice_id, dict(event.detail)) == (
        support.id,
        member.id,
        practice.id,
        {"by": "support"},
    )
    assert_change_only(site, Secret(member.token))
    asked = list(site.breaches.asked)
    signed_in = site.accounts.sign_in(email=EMAIL, password=PASSWORD)
    assert signed_in.outcome is SignInOutcome.PASSWORD_COMPROMISED
    assert site.breaches.asked == asked, "a marked password is not asked again"

    changed = site.accounts.change_password(
        member.token, current_password=PASSWORD, new_password=FRESH, confirmation=FRESH
    )
    assert changed.ok
    assert not site.credential(member.id).compromised
    assert site.accounts.sign_in(email=EMAIL, password=FRESH).ok
    assert_no_secret_in_audit(site, PASSWORD, FRESH, before.password_hash)


def test_rc_4_only_support_marks_and_only_a_password_that_exists(site: Site) -> None:
    """RC-4, UM-2: managers, users and other staff are refused; an invited user has no password."""
    practice = site.world.practice()
    user = site.world.member(EMAIL, practice=practice)
    manager = site.world.member(
        "manager@example.com", practice=practice, roles=(Role.USER, Role.USER_MANAGER)
    )
    support = site.world.member("help@portal.example", roles=(Role.SUPPORT,))
    other_staff = site.world.member("staff@portal.example", roles=(Role.SUPPORT,))
    invited = site.world.user("new@example.com", practice=practice, password=None)

    for actor, subject, code in (
        (manager, user.id, "permission.support_only"),
        (user, user.id, "permission.support_only"),
        (support, other_staff.id, "permission.not_practice_user"),
    ):
        with pytest.raises(PermissionDenied) as denied:
            site.practice.mark_password_compromised(actor.token, user_id=subject)
        assert denied.value.code == code
    with pytest.raises(InvalidState) as unset:
        site.practice.mark_password_compromised(support.token, user_id=invited.id)
    assert unset.value.code == "password.not_set"

    assert not site.credential(user.id).compromised
    assert not site.credential(other_staff.id).compromised
    assert site.notices() == []
    refusals = [e.outcome for e in site.events("password.marked_compromised")]
    assert refusals == [
        "permission.support_only",
        "permission.support_only",
        "permission.not_practice_user",
        "password.not_set",
    ]


def test_rc_4_a_reset_clears_the_mark(site: Site) -> None:
    """RC-4, RS-3: a new password set through a reset link clears the mark."""
    user = site.user()
    support = site.world.member("help@portal.example", roles=(Role.SUPPORT,))
    site.practice.mark_password_compromised(support.token, user_id=user.id)
    site.accounts.forgot_password(email=EMAIL)
    token = token_of(site.outbox.last_link(EMAIL))

    assert site.accounts.reset_password(token, password=FRESHER, confirmation=FRESHER).ok

    assert not site.credential(user.id).compromised
    assert site.accounts.sign_in(email=EMAIL, password=FRESHER).ok


def test_rc_4_pw_7_a_rehashed_password_keeps_its_mark(site: Site) -> None:
    """RC-4, PW-7: new hashing parameters upgrade the hash at sign-in; the mark moves with it."""
    user = site.user()
    support = site.world.member("help@portal.example", roles=(Role.SUPPORT,))
    site.practice.mark_password_compromised(support.token, user_id=user.id)
    before = site.credential(user.id)
    stronger = HashParameters(time_cost=2, memory_cost=8, parallelism=1)
    upgraded = Accounts(attrs.evolve(site.deps, hasher=PasswordHasher(stronger)))

    result = upgraded.sign_in(email=EMAIL, password=PASSWORD)

    after = site.credential(user.id)
    assert after.password_hash != before.password_hash
    assert after.compromised
    assert result.outcome is SignInOutcome.PASSWORD_COMPROMISED
    assert len(site.events("password.rehashed")) == 1
    assert len(site.notices()) == 1


def test_rc_4_the_range_source_marks_at_sign_in_through_the_portal(
    store: Storage, outbox: Outbox, clock: FakeClock
) -> None:
    """RC-3, RC-4: the shipped range source, over the application's call, marks at sign-in."""
    import hashlib  # noqa: PLC0415 - only this test speaks the range API

    digest = hashlib.sha1(LEAKED.encode(), usedforsecurity=False).hexdigest().upper()
    prefixes: list[str] = []

    def fetch(prefix: str) -> str:
        prefixes.append(prefix)
        return f"{digest[5:]}:42\r\n{'0' * 35}:0" if digest.startswith(prefix) else ""

    deps = Dependencies(
        storage=store,
        messaging=Messaging.using(outbox),
        settings=NIST,
        clock=clock,
        compromised=CompromisedPasswordRange(fetch),
    )
    World(deps).user(EMAIL, password=LEAKED)
    assert Accounts(deps).sign_in(email=EMAIL, password=LEAKED).must_change_password
    assert prefixes == [digest[:5]]
