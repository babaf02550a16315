"""No code, token, link, key or hash shows in a repr, str or error message (AU-2)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import cast

import attrs
import pytest

from securepractice.errors import SecurePracticeError
from securepractice.records import Phone, PhoneKind, Purpose, TokenPurpose
from securepractice.settings import LinkRules, VerificationRules
from securepractice.testing import FakeClock
from securepractice.verification import codes, phones, tokens

#: Codes no phone number, date or id of this test contains, drawn in turn.
DISTINCT_CODES = [864_209, 731_986, 590_417, 478_362, 319_875, 246_813]


def forms(secret: str | bytes) -> set[str]:
    """Every way a secret could be written out: as is, repr, hex, base64."""
    if isinstance(secret, str):
        return {secret}
    return {
        repr(secret),
        secret.hex(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    }


def texts(value: object) -> Iterator[str]:
    """The repr and str of a value and of each field its repr shows; an error's message too."""
    yield repr(value)
    yield str(value)
    if isinstance(value, BaseException):
        yield from (str(arg) for arg in value.args)
    if isinstance(value, SecurePracticeError):
        yield value.message
    if attrs.has(type(value)):
        for field in attrs.fields(cast("type[attrs.AttrsInstance]", type(value))):
            if field.repr:
                yield from texts(getattr(value, field.name))


def raised(action: Callable[[], object]) -> SecurePracticeError:
    with pytest.raises(SecurePracticeError) as caught:
        action()
    return caught.value


def test_nothing_secret_shows_anywhere(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    """AU-2: walk every operation, collect every value and error, look for every secret."""
    draws = iter(DISTINCT_CODES)
    monkeypatch.setattr(secrets, "randbelow", lambda _bound: next(draws))
    rules = VerificationRules()
    link_rules = LinkRules(base_url="https://portal.example.com")
    offered: Sequence[phones.DeliveryOption] = phones.delivery_options(
        [phones.parse_phone("+1 202 555 0143", kind=PhoneKind.CELL)]
    )
    now = clock.now()
    seen: list[object] = [rules, link_rules, *offered]
    secret_values: list[str | bytes] = [rules.code_key.reveal()]

    def issue() -> codes.CodeIssued:
        return codes.issue(
            user_id="u1",
            purpose=Purpose.REGISTRATION,
            option=offered[0],
            offered=offered,
            ledger=None,
            now=now,
            rules=rules,
            challenge_id="challenge-1",
        )

    first = issue()
    second = codes.resend(first.challenge, ledger=first.ledger, now=now, rules=rules)
    third = codes.change_method(
        second.challenge,
        option=offered[1],
        offered=offered,
        ledger=second.ledger,
        now=now,
        rules=rules,
    )
    seen += [first, second, third, third.ledger, codes.delivery_failed(third.challenge)]
    for issued in (first, second, third):
        secret_values += [issued.code.reveal(), issued.challenge.code_hash or b""]
    wrong = codes.verify(
        third.challenge,
        first.code,
        user_id="u1",
        purpose=Purpose.REGISTRATION,
        now=now,
        rules=rules,
    )
    right = codes.verify(
        wrong.challenge,
        third.code,
        user_id="u1",
        purpose=Purpose.REGISTRATION,
        now=now,
        rules=rules,
    )
    assert right.verified
    seen += [wrong, right]
    seen.append(
        raised(
            lambda: codes.record_send(
                attrs.evolve(third.ledger, sends=(now,) * rules.send_limit),
                user_id="u1",
                now=now + timedelta(seconds=1),
                rules=rules,
            )
        )
    )
    seen.append(raised(lambda: codes.resend(right.challenge, ledger=None, now=now, rules=rules)))
    seen.append(raised(lambda: phones.parse_phone("202-555-0143 x45", kind=PhoneKind.CELL)))

    invitation = tokens.issue_token(
        user_id="u1", purpose=TokenPurpose.INVITATION, now=now, rules=link_rules
    )
    link = tokens.build_link(invitation.token, purpose=TokenPurpose.INVITATION, rules=link_rules)
    used = tokens.use_token(
        invitation.token, invitation.record, purpose=TokenPurpose.INVITATION, now=now
    )
    seen += [
        invitation,
        link,
        used,
        *tokens.supersede([invitation.record], user_id="u1", purpose=TokenPurpose.INVITATION),
    ]
    seen.append(
        raised(
            lambda: tokens.open_token(
                invitation.token, used, purpose=TokenPurpose.INVITATION, now=now
            )
        )
    )
    seen.append(raised(lambda: tokens.hash_token("x" * 600)))
    seen.append(
        raised(
            lambda: tokens.build_link(
                invitation.token, purpose=TokenPurpose.INVITATION, rules=LinkRules()
            )
        )
    )
    secret_values += [
        invitation.token.reveal(),
        invitation.record.token_hash,
        link.reveal(),
    ]

    shown = "\n".join(text for value in seen for text in texts(value))
    assert "Secret('***')" in shown
    leaks = [form for secret in secret_values for form in forms(secret) if form in shown]
    assert leaks == []


def test_the_scan_would_see_a_leak() -> None:
    """AU-2: the scan above is not blind: an unwrapped code or hash is found."""
    code_hash = b"\x01\x02\xfe" * 10
    leaky = Phone(number="864209", kind=PhoneKind.CELL)
    shown = "\n".join(texts(leaky)) + repr(code_hash)
    assert [f for s in ("864209", code_hash) for f in forms(s) if f in shown]
