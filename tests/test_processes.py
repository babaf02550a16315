"""The rules hold across worker processes sharing one store, not only threads (DP-1, DP-3).

Each test starts real processes (the ``spawn`` way, as a server's workers
are separate interpreters), each with its own portal on the shared store
and the shared portal secret; they wait at one barrier and act at once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from processes_processor import SharedLedgerProcessor
from processes_workers import (
    Store,
    enter_code,
    keep_resetting,
    reset_with,
    run_billing,
    send_code,
    wrong_recovery_codes,
    wrong_sign_ins,
)
from securepractice import Phone, PhoneKind, Portal, Role, TokenPurpose
from securepractice.testing import PASSWORD, World

START = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
SPAWN = multiprocessing.get_context("spawn")
CELL = "+12025550143"
EMAIL = "dr.smith@example.com"
#: How long any one multi-process test may wait for its workers, in seconds.
WAIT = 120


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """What every worker opens: one SQLite file, or one PostgreSQL database (several servers)."""
    if request.param == "sqlite":
        return Store(sqlite=tmp_path / "portal.db")
    return Store(postgres=request.getfixturevalue("postgres_dsn"))


@pytest.fixture
def portal(store: Store) -> Iterator[Portal]:
    """The parent's own portal on the shared store, to set the scene and read the outcome."""
    opened, _ = store.portal(START)
    with opened:
        yield opened


def _registered(portal: Portal, *, two_step: bool = False) -> str:
    """Store a registered user with a cell phone; return their id."""
    world = World(portal.deps)
    practice = world.practice()
    phones = (Phone(number=CELL, kind=PhoneKind.CELL),)
    return world.user(EMAIL, practice=practice, phones=phones, two_step=two_step).id


def _together(count: int, work: Callable[..., Any], *args: object) -> list[Any]:
    """Run ``work`` in ``count`` processes that start together at one barrier.

    ``args`` are the store and the time; the barrier goes third, then the
    rest of ``args``. The barrier is a manager's proxy, which can be sent
    to a pool's workers (a plain one only passes to children at start).
    """
    with SPAWN.Manager() as manager, SPAWN.Pool(count) as pool:
        barrier = manager.Barrier(count)
        pending = [pool.apply_async(work, (*args[:2], barrier, *args[2:])) for _ in range(count)]
        return [p.get(timeout=WAIT) for p in pending]


def _reset_token(portal: Portal) -> str:
    portal.accounts.forgot_password(email=EMAIL)
    outbox = portal.deps.messaging.email
    link: str = outbox.last_link(EMAIL)  # type: ignore[attr-defined]
    return link.rsplit("token=", 1)[1]


def test_dp_3_lk_4_wrong_sign_ins_from_8_processes_count_exactly(
    store: Store, portal: Portal
) -> None:
    """DP-3, LK-4: 8 processes x 5 wrong sign-ins count 40; at most 5 reach the real check."""
    user_id = _registered(portal)
    reasons = [r for seen in _together(8, wrong_sign_ins, store, START, EMAIL, 5) for r in seen]
    assert len(reasons) == 40
    assert set(reasons) <= {"wrong_password", "locked"}  # no error of any kind
    assert Counter(reasons)["wrong_password"] <= 5
    with portal.deps.unit() as uow:
        assert uow.sign_in_failures.count(user_id) == 40
        user = uow.users.get(user_id)
    assert user is not None
    assert user.locked


def test_dp_3_rs_5_fifty_processes_one_reset_link_exactly_one_succeeds(
    store: Store, portal: Portal
) -> None:
    """DP-3, RS-5: 50 processes complete a reset with one link at once: exactly one succeeds."""
    _registered(portal)
    token = _reset_token(portal)
    outcomes = _together(50, reset_with, store, START, token, "Moonlight-2026!")
    assert outcomes.count("ok") == 1
    # A loser that read the link before the winner used it is refused as a used link; one
    # that read the winner's new password first is told it is a recent one (PW-4).
    assert set(outcomes) <= {"ok", "token.invalid", "refused:password.reused"}
    assert portal.accounts.sign_in(email=EMAIL, password="Moonlight-2026!").ok


def test_dp_3_vf_7_fifty_processes_one_code_exactly_one_verifies(
    store: Store, portal: Portal
) -> None:
    """DP-3, RS-5, VF-7: 50 processes enter the right code at once: exactly one verifies it."""
    _registered(portal, two_step=True)
    token = _reset_token(portal)
    option = portal.accounts.delivery_options(token)[0]
    code = send_code(store, START, token, option)
    outcomes = _together(50, enter_code, store, START, token, code)
    assert outcomes.count("verified") == 1
    assert set(outcomes) == {"verified", "already_verified"}


def test_dp_3_mf_8_wrong_codes_from_8_processes_count_exactly_to_the_pause(
    store: Store, portal: Portal
) -> None:
    """DP-3, MF-8: 8 processes x 4 wrong recovery codes: exactly 10 count, the rest wait."""
    user_id = _registered(portal)
    token = World(portal.deps).sign_in(EMAIL)
    portal.accounts.make_recovery_codes(token, current_password=PASSWORD)
    seen = [r for got in _together(8, wrong_recovery_codes, store, START, EMAIL, 4) for r in got]
    assert Counter(seen) == {"wrong_code": 10, "codes_paused": 22}
    with portal.deps.unit() as uow:
        ledger = uow.code_sends.get(user_id)
    assert ledger is not None
    assert ledger.wrong_codes == 10
    assert ledger.paused_until == START + timedelta(minutes=15)


def test_dp_1_a_code_sent_by_one_process_verifies_in_another(store: Store, portal: Portal) -> None:
    """DP-1: the code key comes from the shared portal secret, not from each process."""
    _registered(portal, two_step=True)
    token = _reset_token(portal)
    option = portal.accounts.delivery_options(token)[0]
    with SPAWN.Pool(1) as sender:
        code = sender.apply(send_code, (store, START, token, option))
    assert _together(1, enter_code, store, START, token, code) == ["verified"]


def test_dp_3_um_7_eight_processes_run_billing_charge_each_month_once(
    store: Store, portal: Portal, tmp_path: Path
) -> None:
    """DP-3, UM-7: 8 processes run the monthly billing at once; each month is charged once."""
    ledger = tmp_path / "processor.db"
    manager_portal, _ = store.portal(START, SharedLedgerProcessor(ledger))
    with manager_portal:
        world = World(manager_portal.deps)
        practice = world.practice()
        manager = world.member(
            "manager@example.com", practice=practice, roles=(Role.USER, Role.USER_MANAGER)
        )
        accounts = [world.user(f"user{n}@example.com", practice=practice) for n in range(3)]
        manager_portal.billing.put_card_on_file(
            manager.token, processor_token="tok_visa", last_four="4242"
        )
        for account in accounts:
            manager_portal.billing.purchase_securemail(manager.token, account_id=account.id)
    later = START + timedelta(days=65)  # two more months have started for each purchase
    charged = _together(8, run_billing, store, later, ledger)
    assert sum(charged) == 2 * len(accounts)
    keys = [key for key, _cents in SharedLedgerProcessor(ledger).charges()]
    assert len(keys) == len(set(keys)) == 3 * len(accounts)
    with portal.deps.unit() as uow:
        payments = [p for a in accounts for p in uow.securemail.payments_for(a.id)]
    assert len(payments) == 3 * len(accounts)


@pytest.mark.parametrize("kills", [12])
def test_dp_3_st_2_a_worker_killed_mid_flow_leaves_no_partial_state(
    store: Store, portal: Portal, kills: int
) -> None:
    """DP-3, ST-2: SIGKILL a worker in the middle of resets, many times; every reset is whole.

    A completed reset uses its link, replaces the credential (a new version)
    and writes its audit event in one unit: after each kill the three counts
    agree, and a SQLite file passes SQLite's integrity check.
    """
    user_id = _registered(portal)
    for kill in range(kills):
        receiving, sending = SPAWN.Pipe(duplex=False)
        worker = SPAWN.Process(target=keep_resetting, args=(store, START, EMAIL, kill, sending))
        worker.start()
        sending.close()
        for _ in range(1 + kill % 4):  # let it get a varying way into its resets
            assert receiving.poll(WAIT)
            receiving.recv()
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(WAIT)
        receiving.close()
        _assert_whole(store, portal, user_id)


def _assert_whole(store: Store, portal: Portal, user_id: str) -> None:
    if store.sqlite is not None:
        with closing(sqlite3.connect(store.sqlite)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with portal.deps.unit() as uow:
        credential = uow.credentials.get(user_id)
        links = uow.link_tokens.list_for_user(user_id, TokenPurpose.PASSWORD_RESET)
        resets = uow.audit.events(subject_id=user_id)
    assert credential is not None
    used = sum(1 for link in links if link.used_at is not None)
    done = sum(1 for event in resets if event.action == "password.reset")
    assert used == done == credential.version
    assert sum(1 for link in links if link.used_at is None and not link.superseded) <= 1
