"""The demonstration runs the seed's journeys end to end on SQLite, and says what happened."""

from __future__ import annotations

import io

from securepractice import cli
from securepractice.accounts.signin import INVALID_CREDENTIALS_MESSAGE


def test_demo_plays_registration_lockout_and_reset() -> None:
    """RG-2, VF-5, VF-6, LK-1, LK-6, RS-2, PW-4, AT-3, MF-3 as a person sees them in the demo."""
    out = io.StringIO()
    assert cli.main(["demo"], stdout=out) == 0
    lines = out.getvalue().splitlines()
    for expected in (
        "Registration step: phones",
        "The first code now: wrong_code",
        "The code from the call: verified",
        "'sunshine': password.no_uppercase, password.no_digit, password.no_special",
        "'Sunshine-2026': accepted",
        "'Sunshine-2026': password.reused",
        "'Moonlight-2026': accepted",
        "Password: second_factor_required",
        "The app's code: ok",
        "xray.pdf: ok",
        "invoice.pdf: attachment.executable",
    ):
        assert expected in lines
    assert [line for line in lines if line.startswith("Sign-in:")] == [
        "Sign-in: ok",
        f"Sign-in: invalid_credentials: {INVALID_CREDENTIALS_MESSAGE}",
        "Sign-in: ok",
    ]
    assert any(line.startswith("Session: You are not signed in") for line in lines)
