"""A cap on guessing one-time codes across verifications (MF-8).

Every verification has its own limit of wrong entries (VF-7), but a new
code starts a new verification: with five sends in a window and five
guesses each, a six-digit code could be guessed thousands of times a day.
So the wrong codes of every kind (text, call, authenticator app, recovery
code) are also counted per user, on the user's `SendLedger`, and only a
right code clears the count (NIST SP 800-63B-4 3.2.2):

* from ``pause_from_wrong_codes`` wrong codes in a row, no code is accepted
  for ``first_code_pause``, doubling with each further wrong code, up to
  ``longest_code_pause``;
* at ``stop_at_wrong_codes`` no code is issued or accepted until support
  staff clear the count (`clear`).

Pure functions over the ledger; the service saves what they return in the
unit that checks the code.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from securepractice.clock import require_utc
from securepractice.records import SendLedger, revised
from securepractice.settings import VerificationRules

__all__ = ["CodesBlocked", "blocked", "clear", "pause_after", "wrong_code"]


class CodesBlocked(enum.Enum):
    """Why no code is taken from a user now."""

    PAUSED = "paused"
    STOPPED = "stopped"


def blocked(
    ledger: SendLedger | None, *, now: datetime, rules: VerificationRules
) -> CodesBlocked | None:
    """Return why no code may be sent to or taken from the ledger's user now, or None."""
    if ledger is None:
        return None
    if ledger.wrong_codes >= rules.stop_at_wrong_codes:
        return CodesBlocked.STOPPED
    if ledger.paused_until is not None and require_utc(now) < ledger.paused_until:
        return CodesBlocked.PAUSED
    return None


def pause_after(wrong_codes: int, rules: VerificationRules) -> timedelta | None:
    """Return the pause that ``wrong_codes`` wrong codes in a row begin, or None."""
    beyond = wrong_codes - rules.pause_from_wrong_codes
    if beyond < 0:
        return None
    # Doubling past the longest pause would only grow the number: stop at the cap.
    longest = rules.longest_code_pause
    pause = rules.first_code_pause
    for _ in range(beyond):
        if pause >= longest:
            break
        pause *= 2
    return min(pause, longest)


def wrong_code(
    ledger: SendLedger | None, *, user_id: str, now: datetime, rules: VerificationRules
) -> SendLedger:
    """Count one more wrong code of ``user_id`` at ``now``; return the ledger to save."""
    now = require_utc(now)
    count = 1 if ledger is None else ledger.wrong_codes + 1
    pause = pause_after(count, rules)
    until = ledger.paused_until if ledger is not None else None
    if pause is not None:
        until = now + pause
    if ledger is None:
        return SendLedger(user_id=user_id, wrong_codes=count, paused_until=until)
    return revised(ledger, wrong_codes=count, paused_until=until)


def clear(ledger: SendLedger) -> SendLedger:
    """Clear the count, after a right code or by support staff; unchanged if it is clear."""
    if ledger.wrong_codes == 0 and ledger.paused_until is None:
        return ledger
    return revised(ledger, wrong_codes=0, paused_until=None)
