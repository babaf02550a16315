"""The in-memory outbox: what was sent, what a person reads, and simulated outages."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securepractice.errors import DeliveryFailed, InvalidInput, NotFound
from securepractice.messaging import (
    EmailMessage,
    NothingSent,
    Outbox,
    SmsMessage,
    VoiceMessage,
)

PAT = "+12025550123"
LEE = "+442071838750"


def _email(to: str = "pat@clinic.example", body: str = "Hello") -> EmailMessage:
    return EmailMessage(to=to, subject="Portal", body=body)


def test_ms1_outbox_keeps_messages_per_channel_in_order() -> None:
    outbox = Outbox()
    first, second = _email(body="one"), _email(body="two")
    sms = SmsMessage(to=PAT, text="Code 123456")
    call = VoiceMessage(to=PAT, text="Code 1 2 3 4 5 6")

    outbox.send_email(first)
    outbox.send_sms(sms)
    outbox.place_call(call)
    outbox.send_email(second)

    assert outbox.emails == (first, second)
    assert outbox.sms == (sms,)
    assert outbox.calls == (call,)
    assert repr(outbox) == "Outbox(emails=2, sms=1, calls=1)"


def test_last_message_by_recipient() -> None:
    outbox = Outbox()
    outbox.send_email(_email("pat@clinic.example", "for pat"))
    outbox.send_email(_email("lee@clinic.example", "for lee"))
    outbox.send_sms(SmsMessage(to=PAT, text="pat 1"))
    outbox.send_sms(SmsMessage(to=LEE, text="lee 1"))
    outbox.place_call(VoiceMessage(to=LEE, text="lee call"))

    assert outbox.last_email().body == "for lee"
    assert outbox.last_email(to="pat@clinic.example").body == "for pat"
    assert outbox.last_sms(to=PAT).text == "pat 1"
    assert outbox.last_sms().text == "lee 1"
    assert outbox.last_call(to=LEE).text == "lee call"
    assert outbox.last_call().to == LEE


def test_nothing_sent_is_a_clear_lookup_error() -> None:
    outbox = Outbox()
    outbox.send_sms(SmsMessage(to=PAT, text="hi"))

    with pytest.raises(NothingSent) as excinfo:
        outbox.last_sms(to=LEE)
    assert isinstance(excinfo.value, LookupError)
    assert isinstance(excinfo.value, NotFound)
    assert excinfo.value.code == "outbox.nothing_sent"
    assert LEE in str(excinfo.value)
    with pytest.raises(NothingSent, match="no email was sent"):
        outbox.last_email()
    with pytest.raises(NothingSent, match="no voice call was sent"):
        outbox.last_call()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Your verification code is 482913.", "482913"),
        ("482913 is your code", "482913"),
        ("Your code: 482 913. It expires in 10 minutes.", "482913"),
        ("Your code: 482-913", "482913"),
        ("Your 2-step code is 00482913, valid 10 minutes", "00482913"),
        ("Your code is 4, 8, 2, 9, 1, 3. Again: 4, 8, 2, 9, 1, 3.", "482913"),
        ("Your code is 4 8 2 9 1 3.", "482913"),
        ("Code ٤٨٢٩١٣", "٤٨٢٩١٣"),
    ],
)
def test_last_code_reads_the_code_as_a_person_would(text: str, code: str) -> None:
    outbox = Outbox()
    outbox.send_sms(SmsMessage(to=PAT, text=text))

    assert outbox.last_code(PAT) == code


@given(code=st.text(alphabet="0123456789", min_size=4, max_size=10))
def test_last_code_finds_any_code_of_four_digits_or_more(code: str) -> None:
    outbox = Outbox()
    outbox.place_call(VoiceMessage(to=PAT, text=f"Hello. Your code is {code}. Goodbye."))

    assert outbox.last_code(PAT) == code


def test_last_code_takes_the_latest_of_sms_and_voice() -> None:
    """A re-send by another method (VF-6): the latest message counts, whatever its channel."""
    outbox = Outbox()
    outbox.send_sms(SmsMessage(to=PAT, text="Code 111111"))
    outbox.place_call(VoiceMessage(to=PAT, text="Code 2 2 2 2 2 2"))
    outbox.send_sms(SmsMessage(to=LEE, text="Code 333333"))

    assert outbox.last_code(PAT) == "222222"

    outbox.send_sms(SmsMessage(to=PAT, text="Code 444444"))
    assert outbox.last_code(PAT) == "444444"


def test_last_code_does_not_fall_back_to_an_older_message() -> None:
    outbox = Outbox()
    outbox.send_sms(SmsMessage(to=PAT, text="Code 111111"))
    outbox.send_sms(SmsMessage(to=PAT, text="Your 2 step setting was turned off."))

    with pytest.raises(NothingSent, match="holds no code"):
        outbox.last_code(PAT)


def test_last_code_with_nothing_sent_to_that_number() -> None:
    outbox = Outbox()
    outbox.send_email(_email(body="Code 123456"))

    with pytest.raises(NothingSent):
        outbox.last_code(PAT)


@pytest.mark.parametrize(
    ("body", "link"),
    [
        (
            "Open https://portal.example/invite?token=abc_DEF-123 to register.",
            "https://portal.example/invite?token=abc_DEF-123",
        ),
        ("Reset here: https://portal.example/r/xyz.", "https://portal.example/r/xyz"),
        ("(see https://portal.example/r/xyz)", "https://portal.example/r/xyz"),
        ("<https://portal.example/a/b?c=d&e=f>", "https://portal.example/a/b?c=d&e=f"),
        ("http://localhost:8000/reset/t0k3n\nThanks", "http://localhost:8000/reset/t0k3n"),
        ("First https://a.example/1 then https://b.example/2", "https://a.example/1"),
    ],
)
def test_last_link_reads_the_link_as_a_person_would(body: str, link: str) -> None:
    outbox = Outbox()
    outbox.send_email(_email(body=body))

    assert outbox.last_link("pat@clinic.example") == link


def test_last_link_uses_the_latest_email_to_that_address() -> None:
    outbox = Outbox()
    outbox.send_email(_email(body="https://portal.example/old"))
    outbox.send_email(_email(body="https://portal.example/new"))
    outbox.send_email(_email("lee@clinic.example", "https://portal.example/lee"))

    assert outbox.last_link("pat@clinic.example") == "https://portal.example/new"


def test_last_link_when_there_is_none() -> None:
    outbox = Outbox()
    outbox.send_email(_email(body="Your password was changed."))

    with pytest.raises(NothingSent, match="holds no link"):
        outbox.last_link("pat@clinic.example")
    with pytest.raises(NothingSent, match=re.escape("no email was sent to 'lee@clinic.example'")):
        outbox.last_link("lee@clinic.example")


@pytest.mark.parametrize("channel", ["email", "sms", "voice"])
def test_vf10_fail_next_simulates_an_outage_once(channel: str) -> None:
    outbox = Outbox()
    senders: dict[str, Callable[[], None]] = {
        "email": lambda: outbox.send_email(_email(body="Code 123456")),
        "sms": lambda: outbox.send_sms(SmsMessage(to=PAT, text="Code 123456")),
        "voice": lambda: outbox.place_call(VoiceMessage(to=PAT, text="Code 123456")),
    }
    send = senders[channel]
    outbox.fail_next(channel)  # type: ignore[arg-type]

    with pytest.raises(DeliveryFailed) as excinfo:
        send()

    assert excinfo.value.channel == channel
    assert excinfo.value.code == "delivery.failed"
    assert isinstance(excinfo.value.__cause__, ConnectionError)
    assert "123456" not in str(excinfo.value)
    assert (len(outbox.emails), len(outbox.sms), len(outbox.calls)) == (0, 0, 0)
    send()
    assert len(outbox.emails) + len(outbox.sms) + len(outbox.calls) == 1


def test_vf10_failures_are_per_channel_and_add_up() -> None:
    outbox = Outbox()
    outbox.fail_next("sms", times=2)
    outbox.fail_next("sms")

    outbox.place_call(VoiceMessage(to=PAT, text="voice works"))
    outbox.send_email(_email())
    for _ in range(3):
        with pytest.raises(DeliveryFailed):
            outbox.send_sms(SmsMessage(to=PAT, text="x"))
    outbox.send_sms(SmsMessage(to=PAT, text="back"))

    assert [m.text for m in outbox.sms] == ["back"]
    assert len(outbox.calls) == 1


def test_clear_forgets_messages_and_pending_failures() -> None:
    outbox = Outbox()
    outbox.send_email(_email())
    outbox.fail_next("voice")

    outbox.clear()

    assert outbox.emails == ()
    outbox.place_call(VoiceMessage(to=PAT, text="after clear"))
    assert len(outbox.calls) == 1


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"channel": "sms", "times": 0}, "times"),
        ({"channel": "sms", "times": -1}, "times"),
        ({"channel": "sms", "times": True}, "times"),
        ({"channel": "sms", "times": 1.5}, "times"),
    ],
)
def test_fail_next_refuses_bad_arguments(arguments: dict[str, object], field: str) -> None:
    outbox = Outbox()

    with pytest.raises(InvalidInput) as excinfo:
        outbox.fail_next(**arguments)  # type: ignore[arg-type]

    assert excinfo.value.field == field
    outbox.send_sms(SmsMessage(to=PAT, text="nothing pending"))
    assert len(outbox.sms) == 1


def test_outbox_is_thread_safe() -> None:
    """Many threads sending at once: every message is kept, every failure used exactly once."""
    outbox = Outbox()
    outbox.fail_next("sms", times=50)
    threads_count, per_thread = 8, 100
    failures: list[int] = []
    start = threading.Barrier(threads_count)

    def work(number: int) -> None:
        start.wait()
        failed = 0
        for index in range(per_thread):
            try:
                outbox.send_sms(SmsMessage(to=f"+1202555{number:04d}", text=f"m {index}"))
            except DeliveryFailed:
                failed += 1
            outbox.send_email(_email(body=f"{number} {index}"))
        failures.append(failed)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(failures) == 50
    assert len(outbox.sms) == threads_count * per_thread - 50
    assert len(outbox.emails) == threads_count * per_thread
