r"""One check for every text the library takes from a form (IN-1).

A name, an address, a file name or a password may hold code points that are
not text anyone typed: a lone surrogate (which cannot even be encoded), a
control character, a line or paragraph separator, a bidirectional control
that makes ``"invoice\u202efdp.exe"`` display as ``invoiceexe.pdf``, or an
invisible character (a zero-width space, a byte order mark) that makes two
strings that look alike differ. `refused_characters` finds them, class by
class (`CharacterClass`); `line`, `name` and `lines` check a form field with
it and return the value to store, trimmed and in NFC form, or raise
`InvalidInput` naming the field, with one stable code per class.

What is refused, and why:

* surrogates (``Cs``), controls (``Cc``, NUL and line breaks among them) and
  line or paragraph separators (``Zl``, ``Zp``): not single-line text; only
  `lines` accepts a line feed (and turns ``\r\n`` and ``\r`` into one);
* bidirectional controls and every other format character (``Cf``: zero
  width space, byte order mark, soft hyphen, tag characters...), and the
  Hangul fillers, letters that show nothing: they change how text displays
  without showing themselves. A zero width joiner or non-joiner between two
  visible characters is kept: emoji sequences, Persian and Indic names need
  them, and there they only shape the characters beside them;
* private-use (``Co``) and unassigned (``Cn``) code points: they mean
  nothing to anyone else, display as boxes, and an unassigned one may be
  given a meaning (even a format character's) by a later Unicode version.
  "Unassigned" is judged by the running Python's Unicode data.

Passwords share the classification but not the trimming: the password
policy refuses the same classes but private use and unassigned ones (which
a keyboard can type), and keeps its own NFKC normalisation.
"""

from __future__ import annotations

import enum
import unicodedata
from typing import Final

from securepractice.errors import InvalidInput

__all__ = [
    "MAX_ADDRESS_LENGTH",
    "MAX_ADDRESS_LINES",
    "MAX_COMPOSITION_RATIO",
    "MAX_ID_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_PRACTICE_NAME_LENGTH",
    "CharacterClass",
    "character_class",
    "identifier",
    "line",
    "lines",
    "name",
    "practice_name",
    "refused_characters",
    "require_text",
]

#: No code point's canonical decomposition is longer than this (a test checks
#: it against the running Python's Unicode data), so normalising can shrink a
#: string by at most this factor. A string longer than its limit times this
#: is refused as too long without being normalised.
MAX_COMPOSITION_RATIO = 4
#: The longest person's name kept (first or last), in characters after trimming.
MAX_NAME_LENGTH = 100
#: The longest practice name kept.
MAX_PRACTICE_NAME_LENGTH = 200
#: The longest id a caller may give (the library's own are 32 characters).
MAX_ID_LENGTH = 128
#: A postal address: at most this many lines, and characters in all.
MAX_ADDRESS_LINES = 6
MAX_ADDRESS_LENGTH = 500


class CharacterClass(enum.Enum):
    """A class of code points that text fields refuse; the value is its code's reason."""

    SURROGATE = "surrogate"
    CONTROL = "control_character"
    LINE_SEPARATOR = "line_separator"
    BIDI_CONTROL = "bidi_control"
    INVISIBLE = "invisible_character"
    PRIVATE_USE = "private_use"
    UNASSIGNED = "unassigned"


#: Each class's stable code and how a message names it.
_REFUSALS: Final = {
    CharacterClass.SURROGATE: ("text.surrogate", "an unpaired surrogate, which is not text"),
    CharacterClass.CONTROL: ("text.control_character", "a control character or a line break"),
    CharacterClass.LINE_SEPARATOR: ("text.line_separator", "a line or paragraph separator"),
    CharacterClass.BIDI_CONTROL: (
        "text.bidi_control",
        "an invisible direction mark, which can make the text display as other text",
    ),
    CharacterClass.INVISIBLE: ("text.invisible_character", "an invisible character"),
    CharacterClass.PRIVATE_USE: ("text.private_use", "a private-use character"),
    CharacterClass.UNASSIGNED: ("text.unassigned", "a code point Unicode has not assigned"),
}

#: The general categories refused, each with its class.
_BY_CATEGORY: Final = {
    "Cs": CharacterClass.SURROGATE,
    "Cc": CharacterClass.CONTROL,
    "Zl": CharacterClass.LINE_SEPARATOR,
    "Zp": CharacterClass.LINE_SEPARATOR,
    "Cf": CharacterClass.INVISIBLE,
    "Co": CharacterClass.PRIVATE_USE,
    "Cn": CharacterClass.UNASSIGNED,
}
_BIDI_CLASSES = frozenset({"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})
_BIDI_MARKS = frozenset("\u200e\u200f\u061c")
#: Letters (category Lo) that display as nothing: the Hangul fillers.
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
#: Zero width non-joiner and joiner: kept between two visible characters.
_JOINERS = frozenset("\u200c\u200d")


def character_class(char: str) -> CharacterClass | None:
    """Return the refused class of the one code point ``char``, or None when it is text."""
    if char in _BIDI_MARKS or unicodedata.bidirectional(char) in _BIDI_CLASSES:
        return CharacterClass.BIDI_CONTROL
    if char in _FILLERS:
        return CharacterClass.INVISIBLE
    return _BY_CATEGORY.get(unicodedata.category(char))


def _visible(char: str) -> bool:
    """Whether ``char`` shows as itself: printable, not a space, not a filler."""
    return char.isprintable() and char != " " and char not in _FILLERS


def refused_characters(
    text: str, *, newlines: bool = False, joiners: bool = True
) -> tuple[CharacterClass, ...]:
    r"""Return every refused class found in ``text``, in the order they first appear.

    ``newlines`` accepts a line feed (``\n``). ``joiners`` keeps a zero width
    joiner or non-joiner that stands between two visible characters; without
    it every joiner is refused, as in an email address.
    """
    if text.isprintable() and _FILLERS.isdisjoint(text):
        return ()  # the usual case, decided at C speed
    found: dict[CharacterClass, None] = {}
    last = len(text) - 1
    for index, char in enumerate(text):
        if (char.isprintable() and char not in _FILLERS) or (newlines and char == "\n"):
            continue
        kind = character_class(char)
        if (
            joiners
            and char in _JOINERS
            and 0 < index < last
            and _visible(text[index - 1])
            and _visible(text[index + 1])
        ):
            continue
        if kind is not None:
            found.setdefault(kind)
    return tuple(found)


def _refuse(kind: CharacterClass, field: str, label: str) -> InvalidInput:
    code, what = _REFUSALS[kind]
    return InvalidInput(f"The {label} holds {what}.", field=field, code=code)


def _label(field: str) -> str:
    return field.replace("_", " ")


def require_text(value: object, *, field: str, label: str | None = None) -> str:
    """Return ``value`` when it is text; else raise `InvalidInput` (``text.not_text``)."""
    if not isinstance(value, str):
        raise InvalidInput(
            f"The {label or _label(field)} must be text, not {type(value).__name__}.",
            field=field,
            code="text.not_text",
        )
    return value


def _too_long(field: str, label: str, max_length: int) -> InvalidInput:
    return InvalidInput(
        f"The {label} is longer than {max_length} characters.", field=field, code="text.too_long"
    )


def _checked(
    value: object, *, field: str, label: str | None, max_length: int, newlines: bool
) -> tuple[str, str]:
    """Refuse non-text, text far too long and refused characters; return it in NFC and its label.

    The length is bounded before anything else, so a huge string costs nothing.
    """
    label = label or _label(field)
    text = require_text(value, field=field, label=label)
    if len(text) > max_length * MAX_COMPOSITION_RATIO:
        raise _too_long(field, label, max_length)
    if newlines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    refused = refused_characters(text, newlines=newlines)
    if refused:
        raise _refuse(refused[0], field, label)
    return unicodedata.normalize("NFC", text), label


def _finished(text: str, *, field: str, label: str, max_length: int, required: bool) -> str:
    if len(text) > max_length:
        raise _too_long(field, label, max_length)
    if required and not text:
        raise InvalidInput(f"Enter the {label}.", field=field, code="text.empty")
    return text


def line(
    value: object,
    *,
    field: str,
    max_length: int,
    required: bool = False,
    label: str | None = None,
) -> str:
    """Return one line of text to store: checked, in NFC form and trimmed (IN-1).

    Raises `InvalidInput` naming ``field`` (``label`` is how the message
    names it, the field's words by default): ``text.not_text``,
    ``text.too_long`` (more than ``max_length`` characters after trimming),
    ``text.empty`` (blank when ``required``), or the code of the first
    refused character's class, such as ``text.control_character``.
    Idempotent: the value returned is returned unchanged.
    """
    text, label = _checked(value, field=field, label=label, max_length=max_length, newlines=False)
    return _finished(
        text.strip(), field=field, label=label, max_length=max_length, required=required
    )


def name(
    value: object,
    *,
    field: str,
    required: bool = True,
    max_length: int = MAX_NAME_LENGTH,
    label: str | None = None,
) -> str:
    """Return a name to store (a person's, a practice's): one `line`, required by default."""
    return line(value, field=field, max_length=max_length, required=required, label=label)


def practice_name(value: object) -> str:
    """Return a practice's name to store: a required `line` of `MAX_PRACTICE_NAME_LENGTH`."""
    return line(
        value,
        field="name",
        max_length=MAX_PRACTICE_NAME_LENGTH,
        required=True,
        label="practice's name",
    )


def lines(
    value: object,
    *,
    field: str,
    max_length: int = MAX_ADDRESS_LENGTH,
    max_lines: int = MAX_ADDRESS_LINES,
    required: bool = False,
    label: str | None = None,
) -> str:
    r"""Return text of several lines (a postal address), checked as `line` checks one.

    Line breaks of any convention become ``\n``; each line is trimmed and
    blank lines are dropped. More than ``max_lines`` lines is
    ``text.too_many_lines``; ``max_length`` counts the line feeds too.
    """
    text, label = _checked(value, field=field, label=label, max_length=max_length, newlines=True)
    kept = [part.strip() for part in text.split("\n")]
    kept = [part for part in kept if part]
    if len(kept) > max_lines:
        raise InvalidInput(
            f"The {label} has more than {max_lines} lines.",
            field=field,
            code="text.too_many_lines",
        )
    return _finished(
        "\n".join(kept), field=field, label=label, max_length=max_length, required=required
    )


def identifier(value: object, *, field: str) -> str:
    """Return an id a caller gave (a user's, a practice's) as it is, or refuse it (IN-1).

    An id is compared exactly, never normalised. One that is not text, is
    longer than `MAX_ID_LENGTH` or holds a refused character (a joiner
    included) is the id of nothing: it is refused before it reaches a store,
    some of which could not even encode it.
    """
    label = _label(field)
    text = require_text(value, field=field, label=label)
    if len(text) > MAX_ID_LENGTH:
        raise _too_long(field, label, MAX_ID_LENGTH)
    refused = refused_characters(text, joiners=False)
    if refused:
        raise _refuse(refused[0], field, label)
    return text
