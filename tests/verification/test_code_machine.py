"""The code state machine under any sequence of steps (VF-4 to VF-8, VF-10).

Hypothesis drives issue, re-send, change of method, failed delivery, right,
old and wrong entries and the clock, and checks each step against a small
model of the rules written here, not taken from the code under test. After
every step: at most one code works and it is the latest one sent; a code
never verifies twice; wrong entries never exceed the limit; the send ledger
holds the sends of the window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from securepractice.errors import InvalidInput, InvalidState, RateLimited
from securepractice.records import Challenge, Phone, PhoneKind, Purpose, SendLedger
from securepractice.secret import Secret
from securepractice.settings import VerificationRules
from securepractice.testing import FakeClock
from securepractice.verification.codes import (
    CodeIssued,
    VerifyOutcome,
    cancel,
    change_method,
    delivery_failed,
    issue,
    resend,
    verify,
)
from securepractice.verification.phones import delivery_options

USER = "user-1"
PURPOSE = Purpose.PASSWORD_RESET
OFFERED = delivery_options(
    [
        Phone(number="+12025550143", kind=PhoneKind.CELL),
        Phone(number="+442079460958", kind=PhoneKind.PHONE),
    ]
)
RULES = VerificationRules(max_wrong_codes=3, send_limit=4, code_lifetime=timedelta(minutes=10))


class CodeMachine(RuleBasedStateMachine):
    """One user's verifications for one purpose, step by step, beside a model."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.challenge: Challenge | None = None
        self.sent: list[str] = []
        self.sends: list[datetime] = []
        self.ledger: SendLedger | None = None
        self.verified: list[str] = []
        # The model: what the rules say the challenge is.
        self.latest: str | None = None
        self.state = "none"
        self.wrong = 0
        self.expires = self.clock.now()
        self.option = 0

    def now(self) -> datetime:
        return self.clock.now()

    def over_send_limit(self) -> bool:
        start = self.now() - RULES.send_window
        return sum(1 for t in self.sends if t > start) >= RULES.send_limit

    def sent_code(self, issued: CodeIssued) -> None:
        self.challenge = issued.challenge
        self.ledger = issued.ledger
        self.latest = issued.code.reveal()
        self.sent.append(self.latest)
        self.sends.append(self.now())
        self.expires = self.now() + RULES.code_lifetime

    @rule(option=st.integers(0, len(OFFERED) - 1))
    def start(self, option: int) -> None:
        if self.challenge is not None and self.state == "active":
            self.challenge = cancel(self.challenge)
            self.state, self.latest = "void", None

        def attempt() -> CodeIssued:
            return issue(
                user_id=USER,
                purpose=PURPOSE,
                option=OFFERED[option],
                offered=OFFERED,
                ledger=self.ledger,
                now=self.now(),
                rules=RULES,
            )

        if self.over_send_limit():
            with pytest.raises(RateLimited):
                attempt()
            return
        self.sent_code(attempt())
        self.state, self.wrong, self.option = "active", 0, option

    @precondition(lambda self: self.challenge is not None)
    @rule()
    def resend(self) -> None:
        assert self.challenge is not None
        expected: type[Exception] | None = None
        if self.state != "active":
            expected = InvalidState
        elif self.over_send_limit():
            expected = RateLimited
        if expected is not None:
            with pytest.raises(expected):
                resend(self.challenge, ledger=self.ledger, now=self.now(), rules=RULES)
            return
        self.sent_code(resend(self.challenge, ledger=self.ledger, now=self.now(), rules=RULES))

    @precondition(lambda self: self.challenge is not None)
    @rule(option=st.integers(0, len(OFFERED) - 1))
    def change(self, option: int) -> None:
        assert self.challenge is not None
        expected: type[Exception] | None = None
        if self.state != "active":
            expected = InvalidState
        elif option == self.option:
            expected = InvalidInput
        elif self.over_send_limit():
            expected = RateLimited

        def attempt() -> CodeIssued:
            assert self.challenge is not None
            return change_method(
                self.challenge,
                option=OFFERED[option],
                offered=OFFERED,
                ledger=self.ledger,
                now=self.now(),
                rules=RULES,
            )

        if expected is not None:
            with pytest.raises(expected):
                attempt()
            return
        self.sent_code(attempt())
        self.option = option

    @precondition(lambda self: self.challenge is not None)
    @rule()
    def delivery_fails(self) -> None:
        assert self.challenge is not None
        if self.state != "active":
            with pytest.raises(InvalidState):
                delivery_failed(self.challenge)
            return
        self.challenge = delivery_failed(self.challenge)
        self.latest = None

    def expected_outcome(self, entry: str) -> VerifyOutcome:
        """The rules, in the order they are checked."""
        refusals = (
            (self.state == "verified", VerifyOutcome.ALREADY_VERIFIED),
            (self.state == "void", VerifyOutcome.VOID),
            (self.now() >= self.expires, VerifyOutcome.EXPIRED),
            (self.latest is None, VerifyOutcome.NO_ACTIVE_CODE),
            (entry == self.latest, VerifyOutcome.VERIFIED),
            (self.wrong + 1 >= RULES.max_wrong_codes, VerifyOutcome.TOO_MANY_WRONG),
        )
        return next((outcome for holds, outcome in refusals if holds), VerifyOutcome.WRONG_CODE)

    def enter(self, entry: str) -> None:
        assert self.challenge is not None
        expected = self.expected_outcome(entry)
        result = verify(
            self.challenge,
            Secret(entry),
            user_id=USER,
            purpose=PURPOSE,
            now=self.now(),
            rules=RULES,
        )
        assert result.outcome is expected
        self.challenge = result.challenge
        if expected is VerifyOutcome.VERIFIED:
            self.verified.append(self.challenge.id)
            self.state, self.latest = "verified", None
        elif expected in {VerifyOutcome.WRONG_CODE, VerifyOutcome.TOO_MANY_WRONG}:
            self.wrong += 1
            if expected is VerifyOutcome.TOO_MANY_WRONG:
                self.state, self.latest = "void", None

    @precondition(lambda self: self.challenge is not None and self.sent)
    @rule()
    def enter_latest_sent(self) -> None:
        self.enter(self.sent[-1])

    @precondition(lambda self: self.challenge is not None and self.sent)
    @rule(data=st.data())
    def enter_an_older_code(self, data: st.DataObject) -> None:
        self.enter(data.draw(st.sampled_from(self.sent)))

    @precondition(lambda self: self.challenge is not None)
    @rule(guess=st.integers(0, 999_999))
    def enter_a_guess(self, guess: int) -> None:
        self.enter(str(guess).zfill(6))

    @rule(minutes=st.integers(0, 16), seconds=st.integers(0, 59))
    def time_passes(self, minutes: int, seconds: int) -> None:
        self.clock.advance(minutes=minutes, seconds=seconds)

    @invariant()
    def at_most_the_latest_code_works(self) -> None:
        """VF-5, VF-6, VF-10: of every code ever sent, only the latest live one verifies."""
        if self.challenge is None:
            return
        working = {
            code
            for code in self.sent
            if verify(
                self.challenge, code, user_id=USER, purpose=PURPOSE, now=self.now(), rules=RULES
            ).verified
        }
        live = self.state == "active" and self.latest is not None and self.now() < self.expires
        assert working == ({self.latest} if live and self.latest is not None else set())

    @invariant()
    def codes_work_only_for_their_user_and_purpose(self) -> None:
        """VF-7: the latest code does nothing for another user or purpose."""
        if self.challenge is None or self.latest is None:
            return
        for user_id, purpose in (("user-2", PURPOSE), (USER, Purpose.REGISTRATION)):
            result = verify(
                self.challenge,
                self.latest,
                user_id=user_id,
                purpose=purpose,
                now=self.now(),
                rules=RULES,
            )
            assert not result.verified
            assert result.challenge == self.challenge

    @invariant()
    def the_ledger_keeps_the_sends_of_the_window(self) -> None:
        """VF-8: the send ledger holds every send within the window of the latest one."""
        if self.ledger is not None:
            start = self.ledger.sends[-1] - RULES.send_window
            assert list(self.ledger.sends) == [t for t in self.sends if t > start]
            assert self.ledger.version == len(self.sends) - 1

    @invariant()
    def wrong_entries_never_exceed_the_limit(self) -> None:
        """VF-7: the count matches the model and stops at max_wrong_codes."""
        if self.challenge is not None:
            assert self.challenge.wrong_attempts == self.wrong
            assert self.challenge.wrong_attempts <= RULES.max_wrong_codes

    @invariant()
    def a_verification_succeeds_at_most_once(self) -> None:
        """VF-7: a code never verifies twice: each verification succeeds once at most."""
        assert len(self.verified) == len(set(self.verified))
        if self.challenge is not None and self.state == "verified":
            assert self.challenge.code_hash is None


TestCodeMachine = CodeMachine.TestCase
