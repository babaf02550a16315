"""The words of every message the library sends, as templates an application replaces (OP-4).

`MessageTemplates` holds one `string.Template` per text message and call
script, and one `EmailTemplate` (a subject and a body) per email; its
defaults are the library's plain English. Each message offers its own
``$placeholders`` (`MessageTemplates.placeholders`); a replacement may use
only those, and one that carries a link or a code must still carry it, so a
mistake is refused with `~securepractice.errors.SettingsError` when the
value is built, never found when a message is sent. A few *parts* (a
greeting, a line of an invoice list) are templates too, so that every word
a user reads can be replaced.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from string import Template
from typing import Any, Final

import attrs

from securepractice.errors import InvalidInput, SettingsError
from securepractice.messaging.ports import check_header

__all__ = ["EmailTemplate", "MessageTemplates"]

#: Placeholders whose value is a secret: never in a subject, which logs and reprs show.
_SECRET_PLACEHOLDERS: Final = frozenset({"link", "code", "spoken"})

#: What a code's text and call script offer: the code, digit by digit, its lifetime.
_CODE = frozenset({"portal", "code", "spoken", "lifetime"})
#: What MF-8's notices offer: the numbers of the cap on wrong codes.
_GUESSES = frozenset({"portal", "pause_from", "first_pause", "stop_at"})
_PORTAL = frozenset({"portal"})
_ACCOUNT = frozenset({"portal", "email"})


def _as_template(value: str | Template) -> Template:
    """Accept a template's text as well as a `string.Template`."""
    return Template(value) if isinstance(value, str) else value


def _text_of(template: Template) -> str:
    return template.template


def _repr_of(template: Template) -> str:
    return repr(template.template)


def _used(template: Template, field: str) -> frozenset[str]:
    """Return the placeholders ``template`` uses; refuse a ``$`` that starts none."""
    used: set[str] = set()
    for match in template.pattern.finditer(template.template):
        if match.group("invalid") is not None:
            raise SettingsError(
                field, "has a '$' that starts no placeholder: write '$$' for a dollar sign"
            )
        name = match.group("named") or match.group("braced")
        if name is not None:
            used.add(name)
    return frozenset(used)


def _names(placeholders: Collection[str]) -> str:
    return ", ".join(f"${name}" for name in sorted(placeholders)) or "none"


def _template(value: object, field: str, *, may_be_blank: bool) -> Template:
    """Return ``value`` if it is a template of text, blank only where allowed."""
    if not isinstance(value, Template) or not isinstance(value.template, str):
        raise SettingsError(field, "must be a string.Template or its text")
    if not may_be_blank and not value.template.strip():
        raise SettingsError(field, "must not be blank")
    return value


def _check_template(
    value: object,
    field: str,
    *,
    offers: frozenset[str],
    needs: frozenset[str] = frozenset(),
    may_be_blank: bool = False,
) -> Template:
    """Refuse a template the message cannot be filled in from, naming ``field``, not the text."""
    template = _template(value, field, may_be_blank=may_be_blank)
    used = _used(template, field)
    if not used <= offers:
        raise SettingsError(
            field, f"uses a placeholder this message does not offer; it offers {_names(offers)}"
        )
    if needs and not used & needs:
        raise SettingsError(field, f"must use {' or '.join(f'${n}' for n in sorted(needs))}")
    return template


def _check_subject(value: object, field: str, offers: frozenset[str]) -> None:
    """Refuse a subject with a secret placeholder or a line break (header injection)."""
    secrets = _used(_template(value, field, may_be_blank=False), field) & _SECRET_PLACEHOLDERS
    if secrets:
        raise SettingsError(field, f"must not use {_names(secrets)}: a subject is not kept secret")
    subject = _check_template(value, field, offers=offers)
    try:
        check_header(subject.template, field)
    except InvalidInput:
        raise SettingsError(field, "must not hold line breaks or control characters") from None


@attrs.frozen(kw_only=True)
class EmailTemplate:
    """The subject and the body of one email, each a `string.Template` (or its text)."""

    subject: Template = attrs.field(converter=_as_template, eq=_text_of, repr=_repr_of)
    body: Template = attrs.field(converter=_as_template, eq=_text_of, repr=_repr_of)


def _text_rules(
    offers: Collection[str], *, needs: Collection[str] = (), part: bool = False
) -> dict[str, Any]:
    """Return the `attrs.field` options of a text, a call script or a part, but its default.

    The text may use only the placeholders it ``offers``, and one of
    ``needs`` if any are given, so that a replacement cannot drop the code.
    A ``part`` is a piece of a message, which may be blank.
    """
    offered, required = frozenset(offers), frozenset(needs)

    def validate(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        _check_template(value, attribute.name, offers=offered, needs=required, may_be_blank=part)

    return {"validator": validate, "eq": _text_of, "metadata": {"offers": offered}}


def _email_rules(offers: Collection[str], *, needs: Collection[str] = ()) -> dict[str, Any]:
    """Return the `attrs.field` options of an email, but its default.

    Both its subject and its body may use only the placeholders it
    ``offers``, the subject none that holds a secret; the body must use
    one of ``needs`` if any are given, so that a replacement cannot drop
    the link.
    """
    offered, required = frozenset(offers), frozenset(needs)

    def validate(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        name = attribute.name
        if not isinstance(value, EmailTemplate):
            raise SettingsError(name, "must be an EmailTemplate")
        _check_subject(value.subject, f"{name}.subject", offered - _SECRET_PLACEHOLDERS)
        _check_template(value.body, f"{name}.body", offers=offered, needs=required)

    return {"validator": validate, "metadata": {"offers": offered}}


def _email(subject: str, body: str) -> EmailTemplate:
    return EmailTemplate(subject=Template(subject), body=Template(body))


@attrs.frozen(kw_only=True, repr=False)
class MessageTemplates:
    """Every email, text message, call script and message part the library sends (OP-4).

    Replace any of them by name, keeping the others:
    ``Settings(messages=MessageTemplates(invitation=EmailTemplate(...)))``.
    A text is a `string.Template` or its text; an email an `EmailTemplate`.
    Each may use only the placeholders its message offers, an email's
    subject none that holds a secret (``$link``, ``$code``, ``$spoken``)
    and no line break, and a message that carries a link or a code must
    use it; anything else is a `~securepractice.errors.SettingsError`
    (``settings.invalid``) naming the field. ``$$`` writes a dollar sign.
    """

    # Registration, reset and sign-in (RG-1, RS-1, RS-3, MF-6, MF-7, RC-4).
    invitation: EmailTemplate = attrs.field(
        default=_email(
            "You are invited to $portal",
            "$greeting\n\n"
            "You are invited to $portal. Your email address, $email, is your username.\n\n"
            "To register, open this link (it works for $lifetime):\n\n"
            "$link\n\n"
            "You will give at least one phone number, verify your identity with a code "
            "sent to your phone, accept the Terms of Use and create your password. "
            "Then you sign in with your email address and your new password.\n",
        ),
        **_email_rules(
            {"portal", "email", "first_name", "greeting", "lifetime", "link"},
            needs={"link"},
        ),
    )
    greeting: Template = attrs.field(
        default=Template("Hello $first_name,"),
        converter=_as_template,
        **_text_rules({"first_name"}, part=True),
    )
    greeting_without_name: Template = attrs.field(
        default=Template("Hello,"), converter=_as_template, **_text_rules((), part=True)
    )
    verification_code_text: Template = attrs.field(
        default=Template("Your $portal verification code is $code. It expires in $lifetime."),
        converter=_as_template,
        **_text_rules(_CODE, needs={"code", "spoken"}),
    )
    verification_code_call: Template = attrs.field(
        default=Template(
            "Hello. Your $portal verification code is $spoken. "
            "Again, your code is $spoken. It expires in $lifetime."
        ),
        converter=_as_template,
        **_text_rules(_CODE, needs={"code", "spoken"}),
    )
    password_reset_link: EmailTemplate = attrs.field(
        default=_email(
            "Reset your $portal password",
            "Someone, probably you, asked to reset the password of $email on $portal.\n\n"
            "To choose a new password, open this link (it works for $lifetime, once):\n\n"
            "$link\n\n"
            "You will verify your identity with a code sent to your phone, then enter your "
            "new password twice. If you did not ask, ignore this email: your password has "
            "not changed.\n",
        ),
        **_email_rules({"portal", "email", "lifetime", "link"}, needs={"link"}),
    )
    password_reset_not_registered: EmailTemplate = attrs.field(
        default=_email(
            "Finish registering on $portal",
            "Someone asked to reset the password of $email on $portal, but this "
            "account has not finished registering, so it has no password yet.\n\n"
            "To register, open the link in your invitation email. If it no longer works, "
            "ask the person who invited you to send a new invitation.\n",
        ),
        **_email_rules(_ACCOUNT),
    )
    password_reset_done: EmailTemplate = attrs.field(
        default=_email(
            "Your $portal password was changed",
            "The password of $email on $portal was changed on $date at $time UTC, with a "
            "reset link sent to this address. Every session that was signed in has been "
            "signed out.\n\n"
            'If you did not do this, use "Forgot Password" at once to choose a new '
            "password, and tell your practice's User Manager.\n",
        ),
        **_email_rules({"portal", "email", "date", "time"}),
    )
    account_locked: EmailTemplate = attrs.field(
        default=_email(
            "Your $portal account is locked",
            "Someone, perhaps you, typed a wrong password for $email on $portal too many "
            "times in a row, so the account is locked until its password is reset.\n\n"
            'To sign in again, choose a new password with "Forgot Password" on the sign-in '
            "page. If it was not you, someone may be trying to guess your password: choose "
            "one you use nowhere else.\n",
        ),
        **_email_rules(_ACCOUNT),
    )
    account_locked_temporarily: EmailTemplate = attrs.field(
        default=_email(
            "Your $portal account is locked",
            "Someone, perhaps you, typed a wrong password for $email on $portal too many "
            "times in a row, so signing in is paused for $length.\n\n"
            "You can sign in again after that, or at once by choosing a new password with "
            '"Forgot Password". If it was not you, someone may be trying to guess your '
            "password: choose one you use nowhere else.\n",
        ),
        **_email_rules({"portal", "email", "length"}),
    )
    password_compromised: EmailTemplate = attrs.field(
        default=_email(
            "Choose a new $portal password",
            "The password of $email on $portal is known to have been exposed, so it can no "
            "longer be used as it is.\n\n"
            "The next time you sign in, you will be asked to choose a new password before "
            'anything else. You can also choose one now with "Forgot Password".\n\n'
            "If you use the same password anywhere else, change it there too.\n",
        ),
        **_email_rules(_ACCOUNT),
    )
    # Wrong codes and the second factors (MF-3, MF-4, MF-8).
    code_guesses_paused: EmailTemplate = attrs.field(
        default=_email(
            "Codes are paused on your $portal account",
            "$pause_from wrong codes in a row were entered for your $portal account, so "
            "no code is accepted for $first_pause. Each further wrong code makes the pause "
            "longer, and at $stop_at in a row no code is sent or accepted until support "
            "staff clear them.\n\nIf you did not enter them, someone may know your "
            "password: change it now.\n",
        ),
        **_email_rules(_GUESSES),
    )
    code_guesses_stopped: EmailTemplate = attrs.field(
        default=_email(
            "Codes are stopped on your $portal account",
            "$stop_at wrong codes in a row were entered for your $portal account, so no "
            "code is sent to you or accepted until support staff clear them. Please "
            "contact support.\n\nIf you did not enter them, someone may know your "
            "password.\n",
        ),
        **_email_rules(_GUESSES),
    )
    authenticator_added: EmailTemplate = attrs.field(
        default=_email(
            "An authenticator app was added to your $portal account",
            "An authenticator app was added to your $portal account: its codes now prove "
            "it is you when you sign in, and your other sessions were signed out.\n\nIf you "
            "did not add it, change your password now, remove the app in your profile and "
            "contact support.\n",
        ),
        **_email_rules(_PORTAL),
    )
    authenticator_removed: EmailTemplate = attrs.field(
        default=_email(
            "The authenticator app was removed from your $portal account",
            "The authenticator app of your $portal account was removed, and your other "
            "sessions were signed out. Its codes no longer work.\n\nIf you did not remove "
            "it, change your password now and contact support.\n",
        ),
        **_email_rules(_PORTAL),
    )
    recovery_codes_made: EmailTemplate = attrs.field(
        default=_email(
            "New recovery codes were made for your $portal account",
            "A new set of recovery codes was made for your $portal account. The codes of "
            "any earlier set no longer work.\n\nIf you did not make them, change your "
            "password now, make a new set and contact support.\n",
        ),
        **_email_rules(_PORTAL),
    )
    recovery_code_used: EmailTemplate = attrs.field(
        default=_email(
            "A recovery code of your $portal account was used",
            "One of your recovery codes was used to sign in to your $portal account. Each "
            "code works once: please make a new set in your profile now, which replaces "
            "the codes you have left.\n\nIf you did not use a recovery code, change your "
            "password, make a new set and contact support.\n",
        ),
        **_email_rules(_PORTAL),
    )
    # The profile (PF-4, RC-1, RC-2, RC-5).
    password_changed: EmailTemplate = attrs.field(
        default=_email(
            "Your password was changed",
            "The password of your $portal account was changed. If you did not "
            "change it, reset your password now and contact support.",
        ),
        **_email_rules(_PORTAL),
    )
    email_change_requested: EmailTemplate = attrs.field(
        default=_email(
            "A change of your email address was requested",
            "Someone signed in to your $portal account asked to change its email address. "
            "The new address takes effect only when it is confirmed from a link sent to it; "
            "until then you sign in, and get your mail, at this address. If you did not ask "
            "for this, change your password now, which signs out every other session, and "
            "contact support.",
        ),
        **_email_rules(_PORTAL),
    )
    email_change_link: EmailTemplate = attrs.field(
        default=_email(
            "Confirm your new email address for $portal",
            "Someone, probably you, asked to make this the email address of an account on "
            "$portal.\n\nTo confirm it, open this link while signed in to $portal (it works "
            "for $lifetime, once):\n\n$link\n\nUntil then the account keeps its "
            "current address. If you did not ask, ignore this email.\n",
        ),
        **_email_rules({"portal", "lifetime", "link"}, needs={"link"}),
    )
    email_changed_old_address: EmailTemplate = attrs.field(
        default=_email(
            "Your email address was changed",
            "The email address of your $portal account was changed to another address. "
            "If you did not change it, contact support.",
        ),
        **_email_rules(_PORTAL),
    )
    email_changed_new_address: EmailTemplate = attrs.field(
        default=_email(
            "Your email address was changed",
            "The email address of your $portal account was changed, and this is the "
            "address you now sign in with. If you did not change it, contact support.",
        ),
        **_email_rules(_PORTAL),
    )
    new_phone_code_text: Template = attrs.field(
        default=Template(
            "$code is your code to confirm this phone number for $portal. It expires in $lifetime."
        ),
        converter=_as_template,
        **_text_rules(_CODE, needs={"code", "spoken"}),
    )
    new_phone_code_call: Template = attrs.field(
        default=Template(
            "Your code to confirm this phone number for $portal is $spoken. Again: $spoken."
        ),
        converter=_as_template,
        **_text_rules(_CODE, needs={"code", "spoken"}),
    )
    phone_changed: EmailTemplate = attrs.field(
        default=_email(
            "Your phone number was changed",
            "A phone number of your $portal account was changed and "
            "verified, and your other sessions were signed out. If you did not change "
            "it, contact support.",
        ),
        **_email_rules(_PORTAL),
    )
    two_step_off_code_text: Template = attrs.field(
        default=Template(
            "$code is your code to turn off two-step verification for $portal. It expires in "
            "$lifetime. If you did not ask for it, change your password."
        ),
        converter=_as_template,
        **_text_rules(_CODE, needs={"code", "spoken"}),
    )
    two_step_off_code_call: Template = attrs.field(
        default=Template(
            "Your code to turn off two-step verification for $portal is $spoken. Again: $spoken."
        ),
        converter=_as_template,
        **_text_rules(_CODE, needs={"code", "spoken"}),
    )
    two_step_turned_on: EmailTemplate = attrs.field(
        default=_email(
            "Two-step verification was turned on",
            "Two-step verification of your $portal account was turned on, and your "
            "other sessions were signed out.",
        ),
        **_email_rules(_PORTAL),
    )
    two_step_turned_off: EmailTemplate = attrs.field(
        default=_email(
            "Two-step verification was turned off",
            "Two-step verification of your $portal account was turned off, and your "
            "other sessions were signed out. A password reset no longer asks for a code "
            "sent to your phone. If you did not do this, reset your password now and "
            "contact support.",
        ),
        **_email_rules(_PORTAL),
    )
    # Practice administration and billing (UM-5, UM-7).
    two_step_turned_on_for_you: EmailTemplate = attrs.field(
        default=_email(
            "Two-step verification was turned on for you",
            "$by turned on two-step verification of your $portal account, and "
            "your sessions were signed out.$reason_given",
        ),
        **_email_rules({"portal", "by", "reason_given"}),
    )
    two_step_turned_off_for_you: EmailTemplate = attrs.field(
        default=_email(
            "Two-step verification was turned off for you",
            "$by turned off two-step verification of your $portal account, and "
            "your sessions were signed out.$reason_given\n\n"
            "A password reset no longer asks for a code sent to your phone. You can "
            "turn two-step verification on again in your profile.",
        ),
        **_email_rules({"portal", "by", "reason_given"}),
    )
    by_manager: Template = attrs.field(
        default=Template("$manager, a User Manager of your practice,"),
        converter=_as_template,
        **_text_rules({"manager"}, part=True),
    )
    by_manager_without_name: Template = attrs.field(
        default=Template("A User Manager of your practice"),
        converter=_as_template,
        **_text_rules((), part=True),
    )
    reason_given: Template = attrs.field(
        default=Template("\n\nThe reason given: $reason"),
        converter=_as_template,
        **_text_rules({"reason"}, part=True),
    )
    invoices: EmailTemplate = attrs.field(
        default=_email(
            "Your SecureMail invoices from $portal",
            "Your SecureMail invoices:\n\n$invoices\n",
        ),
        **_email_rules({"portal", "invoices"}),
    )
    invoice_line: Template = attrs.field(
        default=Template("$start to $end: $amount (invoice $invoice)"),
        converter=_as_template,
        **_text_rules({"start", "end", "amount", "invoice"}, part=True),
    )
    card_put_on_file: EmailTemplate = attrs.field(
        default=_email(
            "A card was put on file for your $portal account",
            "Support staff of $portal put your card ending in $last_four on file for your"
            " account. SecureMail you buy for your practice's users is charged to it.\n\n"
            "If you did not ask for this, contact support.\n",
        ),
        **_email_rules({"portal", "last_four"}),
    )
    no_invoices: EmailTemplate = attrs.field(
        default=_email(
            "Your SecureMail invoices from $portal", "You have no SecureMail invoices yet.\n"
        ),
        **_email_rules(_PORTAL),
    )

    def __repr__(self) -> str:
        """Name the messages replaced, not their words: the defaults alone fill pages."""
        default = MessageTemplates()
        replaced = tuple(
            field.name
            for field in attrs.fields(MessageTemplates)
            if getattr(self, field.name) != getattr(default, field.name)
        )
        return f"MessageTemplates(replaced={replaced!r})"

    @staticmethod
    def placeholders(name: str) -> frozenset[str]:
        """Return the placeholders message ``name`` offers, without their ``$``."""
        offers: frozenset[str] = _field(name).metadata["offers"]
        return offers

    def render(self, name: str, values: Mapping[str, str]) -> str:
        """Fill in the text message, call script or part ``name`` with ``values``.

        ``values`` must give exactly the placeholders the message offers:
        a missing or an unknown one is a programming error (`ValueError`).
        """
        template = getattr(self, _field(name).name)
        if not isinstance(template, Template):
            raise TypeError(f"{name} is an email: fill it in with render_email")
        return template.substitute(_exact(name, values))

    def render_email(self, name: str, values: Mapping[str, str]) -> tuple[str, str]:
        """Fill in the email ``name`` with ``values``; return its subject and body.

        ``values`` must give exactly the placeholders the message offers
        (`ValueError` otherwise).
        """
        email = getattr(self, _field(name).name)
        if not isinstance(email, EmailTemplate):
            raise TypeError(f"{name} is not an email: fill it in with render")
        words = _exact(name, values)
        return email.subject.substitute(words), email.body.substitute(words)


def _field(name: str) -> attrs.Attribute[Any]:
    """Return the attribute of message ``name``; an unknown name is a programming error."""
    fields = attrs.fields_dict(MessageTemplates)
    if name not in fields:
        raise ValueError(f"there is no message named {name!r}")
    return fields[name]


def _exact(name: str, values: Mapping[str, str]) -> Mapping[str, str]:
    """Return ``values`` if they are exactly what message ``name`` offers; else `ValueError`."""
    offers = MessageTemplates.placeholders(name)
    if values.keys() != offers:
        missing, unknown = offers - values.keys(), values.keys() - offers
        raise ValueError(
            f"message {name!r} is filled in with {_names(offers)}; "
            f"missing {_names(missing)}, unknown {_names(unknown)}"
        )
    return values
