"""The notice on the risks of texts and calls, where a user picks one (MF-9).

It is a template of the settings that a portal may replace, filled in with
the portal's name and the stronger methods it offers. Every test runs on
each store.
"""

from __future__ import annotations

import importlib.util
from string import Template

import attrs
import pytest

from securepractice import SettingsError, VerificationRules
from securepractice.dependencies import Dependencies
from securepractice.portal import Accounts


def with_notice(context: Dependencies, notice: str) -> Accounts:
    settings = context.settings
    rules = attrs.evolve(settings.verification, phone_code_notice=notice)
    return Accounts(attrs.evolve(context, settings=attrs.evolve(settings, verification=rules)))


def test_mf_9_the_notice_names_the_risks_and_the_stronger_methods(context: Dependencies) -> None:
    """MF-9: SIM swap and number porting, and what the portal offers instead, in plain words."""
    notice = Accounts(context).phone_code_notice()
    assert "SIM swap" in notice
    assert "number porting" in notice
    assert context.portal_name in notice
    assert "an authenticator app or recovery codes" in notice
    assert "$" not in notice


def test_mf_9_without_the_authenticator_extra_only_recovery_codes_are_named(
    context: Dependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MF-9: a portal that cannot offer authenticator apps does not name them."""
    find_spec = importlib.util.find_spec

    def without_cryptography(name: str, package: str | None = None) -> object:
        return None if name == "cryptography" else find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_cryptography)
    notice = Accounts(context).phone_code_notice()
    assert "authenticator" not in notice
    assert f"{context.portal_name} also offers recovery codes," in notice


def test_mf_9_a_portal_replaces_the_notice_with_its_own_words(context: Dependencies) -> None:
    """MF-9: the template is the portal's to replace; ``$portal`` and ``$stronger`` fill in."""
    mine = "At $portal, prefer $stronger: a text can be taken over with your number."
    notice = with_notice(context, mine).phone_code_notice()
    assert notice == Template(mine).substitute(
        portal=context.portal_name, stronger="an authenticator app or recovery codes"
    )
    assert with_notice(context, "Texts can be intercepted.").phone_code_notice() == (
        "Texts can be intercepted."
    )


@pytest.mark.parametrize("bad", ["Use $unknown instead.", "Costs $ 5.", "${portal", None, 42, b"x"])
def test_mf_9_a_notice_with_other_placeholders_is_refused_when_built(bad: object) -> None:
    """MF-9: a template that could not be filled in is a settings error, not a failure later."""
    with pytest.raises(SettingsError) as caught:
        VerificationRules(phone_code_notice=bad)  # type: ignore[arg-type]
    assert caught.value.field == "phone_code_notice"
