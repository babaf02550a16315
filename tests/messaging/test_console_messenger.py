"""The console adapter for the demo: prints messages, labelled, and never logs."""

from __future__ import annotations

import io
import logging

import pytest

from securepractice.errors import DeliveryFailed
from securepractice.messaging import ConsoleMessenger, EmailMessage, SmsMessage, VoiceMessage

PAT = "+12025550123"


def test_ms1_console_prints_each_channel_labelled() -> None:
    stream = io.StringIO()
    console = ConsoleMessenger(stream)

    console.send_email(
        EmailMessage(
            to="pat@clinic.example", subject="Reset", body="Open https://portal.example/r/t"
        )
    )
    console.send_sms(SmsMessage(to=PAT, text="Your code is 482913"))
    console.place_call(VoiceMessage(to=PAT, text="Your code is 4 8 2 9 1 3"))

    assert stream.getvalue() == (
        "----- [email] -----\n"
        "To: pat@clinic.example\n"
        "Subject: Reset\n"
        "\n"
        "Open https://portal.example/r/t\n"
        "----- [end email] -----\n"
        "----- [sms] -----\n"
        f"To: {PAT}\n"
        "\n"
        "Your code is 482913\n"
        "----- [end sms] -----\n"
        "----- [voice] -----\n"
        f"To: {PAT}\n"
        "\n"
        "Your code is 4 8 2 9 1 3\n"
        "----- [end voice] -----\n"
    )


def test_console_defaults_to_standard_output_at_each_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    console = ConsoleMessenger()

    console.send_sms(SmsMessage(to=PAT, text="Your code is 482913"))

    assert "[sms]" in capsys.readouterr().out


def test_au2_console_never_logs(caplog: pytest.LogCaptureFixture) -> None:
    """The demo prints the code on purpose; it must never reach `logging` (AU-2)."""
    caplog.set_level(logging.DEBUG)
    console = ConsoleMessenger(io.StringIO())

    console.send_sms(SmsMessage(to=PAT, text="Your code is 482913"))
    console.send_email(EmailMessage(to="pat@clinic.example", subject="s", body="code 482913"))

    assert caplog.records == []


class _BrokenStream(io.StringIO):
    def write(self, _text: str) -> int:
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("broken", ["closed", "full"])
def test_vf10_unwritable_stream_is_delivery_failed(broken: str) -> None:
    stream: io.StringIO = _BrokenStream() if broken == "full" else io.StringIO()
    if broken == "closed":
        stream.close()
    console = ConsoleMessenger(stream)

    with pytest.raises(DeliveryFailed) as excinfo:
        console.send_sms(SmsMessage(to=PAT, text="Your code is 482913"))

    assert excinfo.value.channel == "sms"
    assert PAT in str(excinfo.value)
    assert "482913" not in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, (OSError, ValueError))
