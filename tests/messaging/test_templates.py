"""OP-4: every message the library sends comes from a template the application can replace.

The defaults are the library's plain English (the flows' own tests check
their words); here every template is filled in, a replacement reaches the
outbox through a real flow, and a replacement the messages cannot be filled
in from is refused when it is built.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import BASE_URL
from securepractice import LinkRules, Messaging, Outbox, Portal, Settings, SettingsError
from securepractice.messaging.templates import EmailTemplate, MessageTemplates
from securepractice.records import DeliveryMethod
from securepractice.verification.codes import VerifyOutcome

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "messaging.md"
FIELDS = attrs.fields(MessageTemplates)
NAMES = [field.name for field in FIELDS]
CELL = "+12025550143"
#: A word that must never be repeated by an error about a template holding it.
MARKER = "Zebrafish"


def _is_email(name: str) -> bool:
    return isinstance(getattr(MessageTemplates(), name), EmailTemplate)


def _samples(name: str) -> dict[str, str]:
    return {key: f"<{key}>" for key in MessageTemplates.placeholders(name)}


def _rendered(messages: MessageTemplates, name: str, values: dict[str, str]) -> list[str]:
    if _is_email(name):
        return list(messages.render_email(name, values))
    return [messages.render(name, values)]


def _used(template: Template) -> set[str]:
    """The placeholders ``template`` uses, read with the standard library's own pattern."""
    found = (
        m.group("named") or m.group("braced") for m in template.pattern.finditer(template.template)
    )
    return {name for name in found if name}


@pytest.mark.parametrize("name", NAMES)
def test_op_4_every_template_renders_with_sample_values(name: str) -> None:
    """OP-4: each message, filled in with what it offers, leaves no placeholder and is not empty."""
    values = _samples(name)
    texts = _rendered(MessageTemplates(), name, values)
    for text in texts:
        assert text.strip()
        assert "$" not in text
    default = getattr(MessageTemplates(), name)
    templates = [default.subject, default.body] if _is_email(name) else [default]
    for template, text in zip(templates, texts, strict=True):
        for key in _used(template):
            assert values[key] in text


def test_op_4_every_field_is_a_message() -> None:
    """OP-4: the messages are many, each a template or an email, each offering its placeholders."""
    assert len(NAMES) >= 30
    for field in FIELDS:
        value = getattr(MessageTemplates(), field.name)
        assert isinstance(value, (Template, EmailTemplate)), field.name
        assert isinstance(MessageTemplates.placeholders(field.name), frozenset)


def test_op_4_defaults_are_plain_english() -> None:
    """OP-4: a code's text and call script read as the portal has always sent them."""
    messages = MessageTemplates()
    words = {
        "portal": "Smile",
        "code": "482913",
        "spoken": "4, 8, 2, 9, 1, 3",
        "lifetime": "10 minutes",
    }
    assert messages.render("verification_code_text", words) == (
        "Your Smile verification code is 482913. It expires in 10 minutes."
    )
    assert messages.render("verification_code_call", words) == (
        "Hello. Your Smile verification code is 4, 8, 2, 9, 1, 3. Again, your code is "
        "4, 8, 2, 9, 1, 3. It expires in 10 minutes."
    )
    assert messages.render("greeting", {"first_name": "Dana"}) == "Hello Dana,"
    assert messages.render_email("password_changed", {"portal": "Smile"})[0] == (
        "Your password was changed"
    )


# A replacement reaches the outbox through a real flow.

SPANISH = MessageTemplates(
    invitation=EmailTemplate(
        subject="Le invitamos a $portal",
        body="$greeting\n\nSu usuario es $email. Abra este enlace ($lifetime):\n\n$link\n",
    ),
    greeting="Hola $first_name,",
    greeting_without_name="Hola,",
    verification_code_text="Su código de $portal es $code.",
    verification_code_call="Su código de $portal es $spoken. Repito: $spoken.",
)


def _portal(messages: MessageTemplates) -> tuple[Portal, Outbox]:
    outbox = Outbox()
    settings = Settings(links=LinkRules(base_url=BASE_URL), messages=messages)
    portal = Portal.in_memory(
        messaging=Messaging.using(outbox), settings=settings, portal_name="Sonrisa"
    )
    return portal, outbox


def test_op_4_a_replaced_invitation_text_and_call_reach_the_outbox() -> None:
    """OP-4: a Spanish invitation, text and call are what the user receives, and they work."""
    portal, outbox = _portal(SPANISH)
    practice = portal.accounts.create_practice(name="Smile Dental")
    portal.accounts.invite(practice_id=practice.id, email="ana@smile.example", first_name="Ana")
    portal.accounts.invite(practice_id=practice.id, email="bo@smile.example")

    email = outbox.last_email("ana@smile.example")
    link = outbox.last_link("ana@smile.example")
    assert email.subject == "Le invitamos a Sonrisa"
    assert email.body == (
        f"Hola Ana,\n\nSu usuario es ana@smile.example. Abra este enlace (14 days):\n\n{link}\n"
    )
    assert outbox.last_email("bo@smile.example").body.startswith("Hola,\n\nSu usuario es bo@")

    token = parse_qs(urlsplit(link).query)["token"][0]
    step = portal.accounts.add_phones(token, cell=CELL)
    by_text = next(o for o in step.delivery_options if o.method is DeliveryMethod.SMS)
    by_call = next(o for o in step.delivery_options if o.method is DeliveryMethod.VOICE)
    portal.accounts.send_code(token, option=by_text)
    code = outbox.last_code(CELL)
    assert outbox.last_sms(CELL).text == f"Su código de Sonrisa es {code}."
    portal.accounts.change_delivery_method(token, option=by_call)
    code = outbox.last_code(CELL)
    spoken = ", ".join(code)
    assert outbox.last_call(CELL).text == f"Su código de Sonrisa es {spoken}. Repito: {spoken}."
    assert portal.accounts.verify_code(token, code=code).outcome is VerifyOutcome.VERIFIED


def test_op_4_messages_not_replaced_keep_their_default_words() -> None:
    """OP-4: replacing one message leaves the others as they were."""
    portal, outbox = _portal(MessageTemplates(invitation=SPANISH.invitation))
    practice = portal.accounts.create_practice(name="Smile Dental")
    portal.accounts.invite(practice_id=practice.id, email="ana@smile.example", cell=CELL)
    token = parse_qs(urlsplit(outbox.last_link("ana@smile.example")).query)["token"][0]
    option = portal.accounts.open_invitation(token).delivery_options[0]
    portal.accounts.send_code(token, option=option)
    assert outbox.last_sms(CELL).text.startswith("Your Sonrisa verification code is ")


# A replacement the message cannot be filled in from is refused when built.

BAD = [
    ("verification_code_text", f"{MARKER} $nombre $code", "verification_code_text"),
    ("verification_code_text", f"{MARKER} costs $5 $code", "verification_code_text"),
    ("verification_code_text", f"{MARKER} ${{code", "verification_code_text"),
    ("verification_code_call", f"{MARKER} has no code", "verification_code_call"),
    ("verification_code_text", "   ", "verification_code_text"),
    ("greeting", f"{MARKER} $email", "greeting"),
    ("greeting", 5, "greeting"),
    ("greeting", Template(b"Hello"), "greeting"),  # type: ignore[arg-type]
    ("invitation", f"{MARKER} $link", "invitation"),
    ("invitation", EmailTemplate(subject=f"{MARKER} $portal", body="no link"), "invitation.body"),
    ("invitation", EmailTemplate(subject=f"{MARKER} $link", body="$link"), "invitation.subject"),
    (
        "invitation",
        EmailTemplate(subject=f"{MARKER}\nBcc: x@y", body="$link"),
        "invitation.subject",
    ),
    ("invitation", EmailTemplate(subject="", body="$link"), "invitation.subject"),
    (
        "password_changed",
        EmailTemplate(subject="ok", body=f"{MARKER} $code"),
        "password_changed.body",
    ),
    (
        "password_changed",
        EmailTemplate(subject="ok $nope", body=MARKER),
        "password_changed.subject",
    ),
    ("new_phone_code_call", f"{MARKER} $link $spoken", "new_phone_code_call"),
]


@pytest.mark.parametrize(("name", "value", "field"), BAD)
def test_op_4_a_bad_replacement_is_refused_naming_the_field_not_the_text(
    name: str, value: object, field: str
) -> None:
    """OP-4: unknown placeholders, bad syntax, a dropped link or code, a leaky subject."""
    with pytest.raises(SettingsError) as refused:
        MessageTemplates(**{name: value})  # type: ignore[arg-type]
    assert refused.value.code == "settings.invalid"
    assert refused.value.field == field
    assert MARKER not in str(refused.value)
    assert "nombre" not in str(refused.value)


def test_op_4_settings_refuse_what_is_not_message_templates() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings(messages={"invitation": "x"})  # type: ignore[arg-type]
    assert refused.value.field == "messages"


def test_op_4_a_good_replacement_is_kept_by_settings_and_named_in_repr() -> None:
    """OP-4: text or a Template, braces and `$$` are accepted; repr names what was replaced."""
    messages = MessageTemplates(
        verification_code_text=Template("${code} es su código; cuesta $$0."),
        two_step_turned_on=EmailTemplate(subject="Activada", body="En $portal."),
    )
    settings = Settings(messages=messages)
    assert settings.messages is messages
    words = {"portal": "P", "code": "123456", "spoken": "1", "lifetime": "1"}
    assert messages.render("verification_code_text", words) == "123456 es su código; cuesta $0."
    assert repr(messages) == (
        "MessageTemplates(replaced=('verification_code_text', 'two_step_turned_on'))"
    )
    assert "replaced=('verification_code_text', 'two_step_turned_on')" in repr(settings)
    assert MessageTemplates(greeting="Hello $first_name,") == MessageTemplates()
    assert MessageTemplates(greeting="Hi $first_name,") != MessageTemplates()


# Filling a message in with the wrong values is a programming error.


def test_op_4_a_missing_or_unknown_value_is_a_programming_error() -> None:
    messages = MessageTemplates()
    words = _samples("verification_code_text")
    del words["spoken"]  # not used by the default text, still required
    with pytest.raises(ValueError, match=r"missing \$spoken"):
        messages.render("verification_code_text", words)
    with pytest.raises(ValueError, match=r"unknown \$extra"):
        messages.render("greeting", {"first_name": "A", "extra": "B"})
    with pytest.raises(ValueError, match="no message"):
        messages.render("no_such_message", {})
    with pytest.raises(TypeError):
        messages.render("invitation", _samples("invitation"))
    with pytest.raises(TypeError):
        messages.render_email("greeting", _samples("greeting"))


# Any template built only from what a message offers is accepted and fills in.

_LITERAL = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")).filter(lambda c: c != "$"),
    max_size=12,
)


def _template_of(name: str, *, subject: bool) -> st.SearchStrategy[tuple[str, set[str]]]:
    """Draw a template's text and the placeholders it uses, from what ``name`` offers."""
    offers = sorted(
        MessageTemplates.placeholders(name) - ({"link", "code", "spoken"} if subject else set())
    )
    placeholder = (
        st.sampled_from(offers).flatmap(
            lambda key: st.sampled_from([(f"${key} ", key), (f"${{{key}}}", key)])
        )
        if offers
        else st.nothing()
    )
    piece = st.one_of(_LITERAL.map(lambda t: (t, "")), st.just(("$$", "")), placeholder)
    return st.lists(piece, max_size=8).map(
        lambda pieces: ("".join(p for p, _ in pieces), {k for _, k in pieces if k})
    )


@given(data=st.data())
def test_op_4_any_template_of_offered_placeholders_renders(data: st.DataObject) -> None:
    """OP-4: built only from offered placeholders (and what is needed), it renders fully."""
    name = data.draw(st.sampled_from(NAMES))
    needed = {"link"} if "link" in MessageTemplates.placeholders(name) else set()
    if "code" in MessageTemplates.placeholders(name):
        needed = {data.draw(st.sampled_from(["code", "spoken"]))}
    body, used = data.draw(_template_of(name, subject=False))
    body = "".join(f"${key} " for key in sorted(needed)) + body + " x"
    if _is_email(name):
        subject, subject_used = data.draw(_template_of(name, subject=True))
        value: object = EmailTemplate(subject=subject + " s", body=body)
        used |= subject_used
    else:
        value = body
    messages = MessageTemplates(**{name: value})  # type: ignore[arg-type]
    values = _samples(name)
    texts = _rendered(messages, name, values)
    joined = "".join(texts)
    for key in used | needed:
        assert values[key] in joined


# The guide lists every message with its placeholders.


def _guide_rows() -> dict[str, set[str]]:
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## Replacing the messages", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        match = re.fullmatch(r"\| `(\w+)` \| (email|text|call|part) \| (.+) \|", line)
        if match:
            rows[match.group(1)] = set(re.findall(r"`\$(\w+)`", match.group(3)))
    return rows


def test_op_4_the_guide_lists_every_message_with_its_placeholders() -> None:
    rows = _guide_rows()
    assert set(rows) == set(NAMES)
    for name, listed in rows.items():
        assert listed == MessageTemplates.placeholders(name), name
