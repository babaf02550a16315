"""Adversarial text for one parser: its valid values, their near misses, random and huge strings.

`Texts` draws from a seeded `random.Random`, so a chunk of inputs is the same
on every run with the same seed. Its mix, per input:

* a valid value as it is (5%), or with one to four edits (45%): a character
  inserted, replaced, deleted or doubled, a combining stack, a case change,
  a slice repeated or cut off, all drawn from the parser's own alphabet and
  from `characters.NASTY`;
* two valid values spliced together (8%);
* a valid value transformed: NFD, NFKC, upper or lower case, reversed,
  padded with spaces of any kind (10%);
* a random string of up to 48 code points, any of the 1,114,112 (surrogates
  included), troublesome ones, ASCII, or the parser's alphabet (28.7%);
* blank: empty, or spaces and controls only (3%);
* huge: 100,000 to 1,000,000 characters, alone or after a valid value (1 in 1,000);
* not text at all: None, bytes, a number, a list (1 in 500).
"""

from __future__ import annotations

import functools
import itertools
import random
import unicodedata
from collections.abc import Callable, Sequence
from typing import TypeVar

from fuzz.characters import ASCII, COMBINING, CONTROLS, MAX_CODE_POINT, NASTY, SPACES
from fuzz.edits import cut, deleted, doubled, inserted, replaced

T = TypeVar("T")

#: Values a caller might pass where text belongs.
NOT_TEXT: tuple[object, ...] = (None, b"dana@smile.example", 42, 4.2, ["text"], {"a": 1}, object())

_MAX_RANDOM_LENGTH = 48
_MAX_COMBINING_STACK = 60
#: An edit draws a character of the parser's alphabet this often, a troublesome
#: one this often, and any code point otherwise.
_OWN_CHARACTERS = 0.4
_NASTY_CHARACTERS = 0.5
#: How often a huge string comes alone rather than after a valid value.
_ALONE = 0.5


@functools.cache
def huge_strings() -> tuple[str, ...]:
    """Return the huge strings, built once per process: each a way to cost time or memory."""
    return (
        "x" * 1_000_000,
        "1" * 1_000_000,
        "." * 1_000_000,
        "\u202e" * 100_000,
        "\ud800" * 100_000,
        "\ufdfa" * 200_000,  # NFKC makes each one 18 characters
        "a\u0301" * 300_000,
        "Aa1!" * 250_000,
        "a@" + "b" * 100_000 + ".example",
        "\u200b" * 500_000,
    )


def mixture(rng: random.Random, weighted: Sequence[tuple[Callable[[], T], int]]) -> Callable[[], T]:
    """Return a draw that calls one of the ``weighted`` makers, chosen by its weight."""
    makers = tuple(make for make, _ in weighted)
    cumulative = tuple(itertools.accumulate(weight for _, weight in weighted))

    def draw() -> T:
        return rng.choices(makers, cum_weights=cumulative)[0]()

    return draw


class Texts:
    """Draws adversarial strings (and now and then a non-string) around one parser's values."""

    def __init__(self, rng: random.Random, bases: Sequence[str], alphabet: str) -> None:
        self._rng = rng
        self._bases = tuple(bases)
        self._alphabet = alphabet
        self._edits: tuple[Callable[[str], str], ...] = (
            lambda s: inserted(rng, s, self._char),
            lambda s: inserted(rng, s, self._char),
            lambda s: replaced(rng, s, self._char),
            lambda s: replaced(rng, s, self._char),
            lambda s: deleted(rng, s, 3),
            lambda s: doubled(rng, s),
            self._combining,
            str.swapcase,
            self._repeat,
            lambda s: cut(rng, s),
        )
        self._transforms: tuple[Callable[[str], str], ...] = (
            lambda s: unicodedata.normalize("NFD", s),
            lambda s: unicodedata.normalize("NFKC", s),
            str.upper,
            str.lower,
            lambda s: s[::-1],
            self._pad,
        )
        #: Each kind of input with its weight per thousand (the module's docstring).
        mix: tuple[tuple[Callable[[], object], int], ...] = (
            (self.base, 50),
            (self.near_miss, 450),
            (self.splice, 80),
            (self.transformed, 100),
            (self.random_text, 287),
            (self.blank, 30),
            (self.huge, 1),
            (self.not_text, 2),
        )
        self._draw = mixture(rng, mix)

    def __call__(self) -> object:
        """Return the next input."""
        return self._draw()

    def base(self) -> str:
        """Return a valid value as it is."""
        return self._rng.choice(self._bases)

    def splice(self) -> str:
        """Return the start of one valid value and the end of another."""
        rng = self._rng
        first, second = rng.choice(self._bases), rng.choice(self._bases)
        return first[: rng.randint(0, len(first))] + second[rng.randint(0, len(second)) :]

    def transformed(self) -> str:
        """Return a near miss in another form: NFD, NFKC, other case, reversed, padded."""
        return self._rng.choice(self._transforms)(self.near_miss())

    def blank(self) -> str:
        """Return the empty string, or a few spaces and controls."""
        return "".join(self._rng.choices(" " + SPACES + CONTROLS, k=self._rng.randint(0, 4)))

    def not_text(self) -> object:
        """Return a value that is not a string."""
        return self._rng.choice(NOT_TEXT)

    def near_miss(self) -> str:
        """Return a valid value with one to four edits."""
        text = self._rng.choice(self._bases)
        for _ in range(self._rng.randint(1, 4)):
            text = self._rng.choice(self._edits)(text)
        return text

    def random_text(self) -> str:
        """Return up to 48 code points from one of the pools."""
        rng = self._rng
        length = rng.randint(0, _MAX_RANDOM_LENGTH)
        pool = rng.randrange(4)
        if pool == 0:
            return "".join(chr(rng.randint(0, MAX_CODE_POINT)) for _ in range(length))
        chars = (NASTY, ASCII, self._alphabet)[pool - 1]
        return "".join(rng.choices(chars, k=length))

    def huge(self) -> str:
        """Return a huge string, alone or around a valid value."""
        big = self._rng.choice(huge_strings())
        if self._rng.random() < _ALONE:
            return big
        return self._rng.choice(self._bases) + big

    def _char(self) -> str:
        """Return one character: the parser's own, a troublesome one, or any code point."""
        rng = self._rng
        roll = rng.random()
        if roll < _OWN_CHARACTERS:
            return rng.choice(self._alphabet)
        if roll < _OWN_CHARACTERS + _NASTY_CHARACTERS:
            return rng.choice(NASTY)
        return chr(rng.randint(0, MAX_CODE_POINT))

    def _combining(self, text: str) -> str:
        rng = self._rng
        return inserted(
            rng,
            text,
            lambda: "".join(rng.choices(COMBINING, k=rng.randint(1, _MAX_COMBINING_STACK))),
        )

    def _repeat(self, text: str) -> str:
        return text * self._rng.randint(2, 5)

    def _pad(self, text: str) -> str:
        def pad() -> str:
            return "".join(self._rng.choices(" \t" + SPACES, k=self._rng.randint(0, 3)))

        return pad() + text + pad()
