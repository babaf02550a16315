"""Code points that break text handling: each class the library must refuse or survive.

The lists are the fuzzer's own, written from the Unicode standard, not
copied from `securepractice.policy.text`, so that the two can disagree.
"""

from __future__ import annotations

#: Lone surrogates: not text, and not encodable as UTF-8.
SURROGATES = "\ud800\udbff\udc00\udfff\udc80\ud83d"
#: C0 and C1 controls, NUL, the line breaks, DEL.
CONTROLS = "\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\x80\x85\x9b\x9f"
#: Line and paragraph separators.
SEPARATORS = "\u2028\u2029"
#: Bidirectional embeddings, overrides, isolates and marks.
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
#: Invisible format characters, tag characters, Hangul fillers, joiners.
INVISIBLE = (
    "\u200b\u200c\u200d\u2060\u2061\u2063\ufeff\u00ad\u180e\u034f"
    "\U000e0001\U000e0041\U000e007f\u115f\u1160\u3164\uffa0"
)
#: Combining marks: accents, an enclosing circle, a double mark.
COMBINING = "\u0301\u0308\u0327\u0338\u20dd\u035c\u0489"
#: Private-use, unassigned and noncharacter code points, the replacement character.
UNUSUAL = "\ue000\uf8ff\U000f0000\U0010fffd\u0378\u0e5c\ufdd0\ufffe\uffff\ufffd"
#: Characters that NFKC maps to several (up to 18) or to ASCII ones.
EXPANDING = "\ufdfa\ufdfb\u3300\u33ff\ufb03\u2474\u2163\u00bd\u2126\u212a\u0130\u00df"
#: Spaces other than U+0020.
SPACES = "\u00a0\u1680\u2000\u2007\u2009\u200a\u202f\u205f\u3000"
#: Decimal digits of other scripts, full width, mathematical; and digits that are not decimal.
DIGITS = (
    "\u0660\u0665\u06f0\u0966\u09e6\u0e50\uff10\uff15\uff19\U0001d7ce\U0001d7d7\U0001fbf0"
    "\u00b2\u00b3\u00b9\u2460\u2070"
)
#: Look-alikes of Latin letters (Cyrillic, Greek, Armenian, Cherokee), title case, dotless i.
LOOK_ALIKES = "\u0430\u0435\u043e\u0440\u0441\u03bf\u03b1\u0585\u13a0\u01c5\u0131\u1e9e"
#: Punctuation that a parser might take for its own: at signs, full stops, slashes, quotes.
LOOK_ALIKE_PUNCTUATION = (
    "\uff20\ufe6b\u3002\uff0e\uff61\u2024\u2215\u2044\uff0f\u29f8\u201c\u2033\uff02\u02bc"
)
#: Letters and symbols of other scripts and emoji, which are text.
OTHER_TEXT = "éøœπжя中文字שלוםمرحبا€£¥©®°±\u00d7\u00f7¿¡🙂👩\u200d⚕\ufe0f"

#: Every list above, for drawing one character of any troublesome kind.
NASTY = (
    SURROGATES
    + CONTROLS
    + SEPARATORS
    + BIDI
    + INVISIBLE
    + COMBINING
    + UNUSUAL
    + EXPANDING
    + SPACES
    + DIGITS
    + LOOK_ALIKES
    + LOOK_ALIKE_PUNCTUATION
    + OTHER_TEXT
)
#: The printable ASCII characters.
ASCII = "".join(chr(point) for point in range(0x20, 0x7F))
#: The largest code point.
MAX_CODE_POINT = 0x10FFFF
