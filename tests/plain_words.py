"""How the library's messages for people read: the house style, checked in one place.

A message a form shows (an error's ``message``) is a sentence: it starts
with a capital letter and a small one and ends with one full stop, and so
does each sentence after it. A report's problem (a `Violation` of an
attachment, a finding in an archive) is a fragment that starts with a small
letter or a count, to follow a file's name. Neither shouts: the only words
in capitals are the acronyms below and the names the caller gives, and
names keep their capitals. Each message names what it is about, in words of
their own, not glued to others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Words that are written in capitals in running text.
ACRONYMS = frozenset(
    {
        "AUX",
        "COM1",
        "CON",
        "DOS",
        "ELF",
        "ID",
        "IDNA",
        "LPT1",
        "MZ",
        "NUL",
        "PRN",
        "SMS",
        "US",
        "ZIP",
    }
)
_SHOUTED = re.compile(r"\b[A-Z][A-Z0-9]+\b")
_GLUED = re.compile(r"[A-Z]{2,}[a-z]|[a-z][A-Z]{2,}")
_SENTENCE = re.compile(r"[A-Z][a-z'].*[^.][.?!]", re.DOTALL)
_FRAGMENT = re.compile(r"[a-z0-9].*[a-z0-9)'\"*]", re.DOTALL)


def assert_plain_english(message: object, *, sentence: bool, names: Iterable[str] = ()) -> None:
    """Assert that ``message`` reads as the house style says, naming each of ``names``."""
    names = tuple(names)
    assert isinstance(message, str), message
    assert (_SENTENCE if sentence else _FRAGMENT).fullmatch(message), message
    shouted = set(_SHOUTED.findall(message)) - ACRONYMS - set(names)
    assert not shouted, (message, shouted)
    assert not re.search(r"[a-z]\. [a-z]", message), message  # each sentence starts with a capital
    unnamed = message
    for name in names:
        whole_word = rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])"
        assert re.search(whole_word, message), (message, name)
        unnamed = unnamed.replace(name, " ")
    assert not _GLUED.search(unnamed), message
