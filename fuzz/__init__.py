"""The long-run fuzzer of the library's parsers: ``python -m fuzz`` (``nox -s fuzz``).

Each parser (`targets.TARGETS`) gets a million adversarial inputs by default
from a seeded generator of our own (`texts`, `content`): valid values and
their near misses, lone surrogates, controls, direction marks, invisible
characters, combining marks, huge and empty strings, and for attachment
content random bytes with real magic numbers and damaged ZIP archives. Every
input must come back accepted, or refused with the library's own error or
report; any other exception, or an answer that breaks a rule the parser
promises, is a finding, printed with the handle that replays it.
docs/testing.md tells how to run it and what a run found.
"""
