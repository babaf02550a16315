"""Housekeeping and the audit export: what an operator runs, not a user (OP-2, OP-3).

`prune` removes what no flow can use any more: sessions that ended,
links that were used, replaced or expired, verifications that are over and
whose flow is over too, send times older than the send window, and client
failures older than the throttle's window. The audit log is never pruned:
it is append-only (AU-1). `export_audit` writes the audit log as JSON
Lines, by time range and practice.

Both take any object holding `~securepractice.dependencies.Dependencies`
first, as the services do: ``portal.operations.prune()`` on a portal.
Housekeeping goes a page at a time, one unit of work per page of
`BATCH` records, so a long run never holds one long transaction; the store
removes a record only if it is still the version read (a record that
changed meanwhile waits for the next run). Which records are past use is
decided here, from the core's rules, never by the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Protocol, TextIO, TypeVar

import attrs

from securepractice.accounts._shared import audit
from securepractice.clock import require_utc
from securepractice.dependencies import Dependencies, Service
from securepractice.errors import Conflict, InvalidInput
from securepractice.policy.sessions import SessionState, session_state
from securepractice.records import (
    AuditEvent,
    Challenge,
    ChallengeState,
    LinkToken,
    SendLedger,
    Session,
    revised,
)
from securepractice.settings import LinkRules, SignInRules, VerificationRules
from securepractice.storage.ports import UnitOfWork

__all__ = [
    "BATCH",
    "PruneProgress",
    "PruneReport",
    "audit_json",
    "challenge_past_use",
    "export_audit",
    "link_past_use",
    "prune",
    "session_past_use",
    "trimmed_ledger",
]

#: How many records one unit of work of housekeeping or export reads.
BATCH = 500

R = TypeVar("R")
K = TypeVar("K")
K_contra = TypeVar("K_contra", contravariant=True)


@attrs.frozen(kw_only=True)
class PruneProgress:
    """How far `prune` has gone through one kind of record, after each page: for a progress bar.

    ``kind`` is the name of a `PruneReport` count; ``examined`` the records
    read so far, ``removed`` those removed (for ``send_times``, the times).
    """

    kind: str
    examined: int
    removed: int


@attrs.frozen(kw_only=True)
class PruneReport:
    """What `prune` removed: sessions, links, verifications, send times, client failures.

    ``send_times`` counts the send times dropped from ledgers, and
    ``send_ledgers`` the ledgers removed whole because nothing in them was
    left to keep.
    """

    sessions: int = 0
    links: int = 0
    challenges: int = 0
    send_times: int = 0
    send_ledgers: int = 0
    client_failures: int = 0

    @property
    def total(self) -> int:
        """Every record removed, and every send time dropped."""
        return sum(attrs.astuple(self))


def session_past_use(session: Session, *, now: datetime, rules: SignInRules) -> bool:
    """Whether ``session`` can never be used again: revoked, idle or too old (LK-6, LK-7)."""
    return session_state(session, now=now, rules=rules) is not SessionState.ACTIVE


def link_past_use(link: LinkToken, *, now: datetime) -> bool:
    """Whether ``link`` can never be opened again: used, superseded or expired (RG-1, RS-1)."""
    return link.used_at is not None or link.superseded or now >= link.expires_at


def _longest_flow(rules: LinkRules) -> timedelta:
    """Return the longest life of a link a code is verified on: its verification matters so long."""
    return max(
        rules.invitation_lifetime,
        rules.reset_lifetime,
        rules.email_change_lifetime,
        rules.sign_in_lifetime,
    )


def challenge_past_use(challenge: Challenge, *, now: datetime, rules: LinkRules) -> bool:
    """Whether ``challenge`` matters to no flow any more (VF-5, VF-7).

    It is over (verified, void, or its code expired) and, when it was made
    for a link's flow, issued longer ago than any such link lives: a
    verification is what lets a registration or reset go on while its link
    lasts, and an open one keeps its count of wrong codes for a re-send.
    """
    if challenge.state is ChallengeState.ACTIVE and now < challenge.expires_at:
        return False
    if challenge.flow_id is None:
        return True
    return now >= challenge.issued_at + _longest_flow(rules)


def trimmed_ledger(
    ledger: SendLedger, *, now: datetime, rules: VerificationRules
) -> SendLedger | None:
    """Return ``ledger`` without the sends older than the send window; None if nothing is left.

    The count of wrong codes and a pause still in force are never dropped
    (MF-8): a ledger goes whole only when it holds neither, nor a send
    inside the window (VF-8), so that it is worth exactly what no ledger is.
    An unchanged ledger is returned as it is.
    """
    start = now - rules.send_window
    kept = tuple(at for at in ledger.sends if at > start)
    paused = ledger.paused_until is not None and now < ledger.paused_until
    if not kept and ledger.wrong_codes == 0 and not paused:
        return None
    if kept == ledger.sends:
        return ledger
    return revised(ledger, sends=kept)


class _Pages(Protocol[R, K_contra]):
    """A repository that housekeeping goes through: a page at a time, removing some."""

    def page(self, *, after: K_contra | None = None, limit: int) -> Sequence[R]: ...

    def delete(self, records: Sequence[R], /) -> int: ...


Progress = Callable[[PruneProgress], None]


def _sweep(
    deps: Dependencies,
    *,
    kind: str,
    repository: Callable[[UnitOfWork], _Pages[R, K]],
    key: Callable[[R], K],
    past_use: Callable[[R], bool],
    progress: Progress | None,
) -> int:
    """Go through a repository a page per unit of work, removing what ``past_use`` says."""
    after: K | None = None
    examined = removed = 0
    while True:
        with deps.unit() as uow:
            pages = repository(uow)
            page = pages.page(after=after, limit=BATCH)
            removed += pages.delete([record for record in page if past_use(record)])
        examined += len(page)
        if progress is not None:
            progress(PruneProgress(kind=kind, examined=examined, removed=removed))
        if len(page) < BATCH:
            return removed
        after = key(page[-1])


def _trim_ledgers(deps: Dependencies, now: datetime, progress: Progress | None) -> tuple[int, int]:
    """Drop old send times from every ledger; remove the ledgers left empty. (times, ledgers)."""
    rules = deps.settings.verification
    after: str | None = None
    examined = times = ledgers = 0
    while True:
        with deps.unit() as uow:
            page = uow.code_sends.page(after=after, limit=BATCH)
            for ledger in page:
                trimmed = trimmed_ledger(ledger, now=now, rules=rules)
                if trimmed is None:
                    if uow.code_sends.delete([ledger]):
                        ledgers += 1
                        times += len(ledger.sends)
                elif trimmed is not ledger:
                    try:
                        uow.code_sends.save(trimmed, expected_version=ledger.version)
                    except Conflict:
                        continue  # a send was just counted: the next run trims this ledger
                    times += len(ledger.sends) - len(trimmed.sends)
        examined += len(page)
        if progress is not None:
            progress(PruneProgress(kind="send_times", examined=examined, removed=times))
        if len(page) < BATCH:
            return times, ledgers
        after = page[-1].user_id


def _client_failures(deps: Dependencies, now: datetime, progress: Progress | None) -> int:
    """Remove the client failures older than the throttle's window (CX-3), a page per unit."""
    before = now - deps.settings.sign_in.throttle_window
    removed = 0
    while True:
        with deps.unit() as uow:
            gone = uow.client_failures.delete_before(before, limit=BATCH)
        removed += gone
        if progress is not None:
            progress(PruneProgress(kind="client_failures", examined=removed, removed=removed))
        if gone < BATCH:
            return removed


def prune(service: Service, *, progress: Progress | None = None) -> PruneReport:
    """Remove every session, link, verification and send time past use, and old client failures.

    OP-2: one call does it all; the audit log is never touched but for one
    ``housekeeping.pruned`` event with the counts. ``progress`` is called
    after each page of each kind with how far it has gone. Safe to run
    while the portal serves users, and from several servers at once.
    """
    deps = service.deps
    now = deps.now()
    settings = deps.settings
    sessions = _sweep(
        deps,
        kind="sessions",
        repository=lambda uow: uow.sessions,
        key=lambda session: session.token_hash,
        past_use=lambda session: session_past_use(session, now=now, rules=settings.sign_in),
        progress=progress,
    )
    links = _sweep(
        deps,
        kind="links",
        repository=lambda uow: uow.link_tokens,
        key=lambda link: link.token_hash,
        past_use=lambda link: link_past_use(link, now=now),
        progress=progress,
    )
    challenges = _sweep(
        deps,
        kind="challenges",
        repository=lambda uow: uow.challenges,
        key=lambda challenge: challenge.id,
        past_use=lambda challenge: challenge_past_use(challenge, now=now, rules=settings.links),
        progress=progress,
    )
    send_times, send_ledgers = _trim_ledgers(deps, now, progress)
    report = PruneReport(
        sessions=sessions,
        links=links,
        challenges=challenges,
        send_times=send_times,
        send_ledgers=send_ledgers,
        client_failures=_client_failures(deps, now, progress),
    )
    with deps.unit() as uow:
        audit(
            uow,
            "housekeeping.pruned",
            at=now,
            sessions=str(report.sessions),
            links=str(report.links),
            challenges=str(report.challenges),
            send_times=str(report.send_times),
            send_ledgers=str(report.send_ledgers),
            client_failures=str(report.client_failures),
        )
    return report


def _time(moment: datetime) -> str:
    """ISO 8601 in UTC, fixed width, so that text order is time order."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_json(event: AuditEvent) -> str:
    """Return ``event`` as one line of JSON: the export's line (OP-3) and what sinks get (CX-2).

    The keys are the record's field names, in its order; ``at`` is ISO 8601
    in UTC (``2026-01-05T09:00:00.000000Z``) and ``detail`` an object. Only
    ASCII is written: every other character is escaped, so a line cannot
    carry a control or direction character into a log.
    """
    fields: dict[str, object] = {}
    for field in attrs.fields(AuditEvent):
        value = getattr(event, field.name)
        if field.name == "at":
            value = _time(value)
        elif field.name == "detail":
            value = dict(value)
        fields[field.name] = value
    return json.dumps(fields, ensure_ascii=True, separators=(",", ":"))


def _range(since: datetime | None, until: datetime | None) -> tuple[datetime | None, ...]:
    start = None if since is None else require_utc(since, field="since")
    end = None if until is None else require_utc(until, field="until")
    if start is not None and end is not None and end < start:
        raise InvalidInput(
            "until must not be before since", field="until", code="time.reversed_range"
        )
    return start, end


def export_audit(
    service: Service,
    out: TextIO,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    practice_id: str | None = None,
) -> int:
    """Write the audit events from ``since`` (inclusive) to ``until`` (exclusive) as JSON Lines.

    OP-3: one `audit_json` object per line, oldest first, of one practice
    when ``practice_id`` is given; returns how many were written. It reads
    a page per unit of work, so the log is never held in memory whole. An
    end in the future may miss events written during the export with an
    earlier time (a server whose clock is behind): give ``until`` in the
    past for a complete range. Naive datetimes are refused (``time.naive``),
    and so is an ``until`` before ``since`` (``time.reversed_range``). The
    export itself is audited (``audit.exported``).
    """
    deps = service.deps
    start, end = _range(since, until)
    if practice_id is not None and not isinstance(practice_id, str):
        raise InvalidInput("practice_id must be a practice's id", field="practice_id")
    written = 0
    after: str | None = None
    while True:
        with deps.unit() as uow:
            page = uow.audit.events(
                practice_id=practice_id, since=start, until=end, after=after, limit=BATCH
            )
        out.writelines(audit_json(event) + "\n" for event in page)
        written += len(page)
        if len(page) < BATCH:
            break
        after = page[-1].id
    with deps.unit() as uow:
        audit(
            uow,
            "audit.exported",
            at=deps.now(),
            practice_id=practice_id,
            events=str(written),
            since="" if start is None else _time(start),
            until="" if end is None else _time(end),
        )
    return written
