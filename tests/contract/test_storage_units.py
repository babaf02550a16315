"""Units of work, concurrency and injected failures, against every adapter (ST-2, LK-4, RS-5)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from securepractice.errors import StorageError
from securepractice.records import (
    AuditEvent,
    Challenge,
    Credential,
    LinkToken,
    Practice,
    TokenPurpose,
    User,
)
from securepractice.storage.faults import FaultyStorage
from securepractice.storage.ports import Storage, UnitOfWork


class Boom(Exception):
    """An error of the caller's own, raised inside a unit of work."""


def _write_registration(uow: UnitOfWork, now: datetime) -> None:
    """Five writes to five tables, as one step of a flow does."""
    uow.practices.add(Practice(id="p2", name="Bright Smiles", created_at=now))
    uow.users.add(User(id="u5", practice_id="p2", email="eve@example.com", created_at=now))
    uow.credentials.put(Credential(user_id="u5", password_hash="$argon2id$x", set_at=now))
    uow.sign_in_failures.increment("u5")
    uow.audit.append(AuditEvent(id="e5", at=now, action="invitation.accepted", outcome="ok"))


def _registration_state(store: Storage) -> tuple[object, ...]:
    with store.unit_of_work() as uow:
        return (
            uow.practices.get("p2"),
            uow.users.get("u5"),
            uow.credentials.get("u5"),
            uow.sign_in_failures.count("u5"),
            tuple(uow.audit.events()),
        )


def test_unit_commits_everything_on_success(store: Storage, now: datetime) -> None:
    """ST-2: a unit that ends normally keeps every write."""
    with store.unit_of_work() as uow:
        _write_registration(uow, now)
    practice, user, credential, failures, events = _registration_state(store)
    assert practice is not None
    assert user is not None
    assert credential is not None
    assert failures == 1
    assert len(events) == 1  # type: ignore[arg-type]


def test_unit_rolls_everything_back_on_an_exception(store: Storage, now: datetime) -> None:
    """ST-2: a unit that raises leaves no trace, and the caller's exception comes through."""
    with pytest.raises(Boom), store.unit_of_work() as uow:  # noqa: PT012 - raised inside the unit
        _write_registration(uow, now)
        assert uow.users.get("u5") is not None
        raise Boom
    assert _registration_state(store) == (None, None, None, 0, ())


def test_repositories_work_only_inside_an_active_unit(store: Storage, user: User) -> None:
    """ST-2: nothing is read or written outside a unit, where it could not be rolled back."""
    uow = store.unit_of_work()
    with pytest.raises(StorageError) as before:
        uow.users.get(user.id)
    with uow:
        assert uow.users.get(user.id) == user
    with pytest.raises(StorageError) as after:
        uow.sign_in_failures.increment(user.id)
    with pytest.raises(StorageError) as reused, uow:
        pass
    assert {before.value.code, after.value.code} == {"storage.no_unit"}
    assert reused.value.code == "storage.unit_reused"
    with store.unit_of_work() as check:
        assert check.sign_in_failures.count(user.id) == 0


def test_units_do_not_nest_in_one_thread(store: Storage, user: User) -> None:
    """ST-2: a nested unit would commit apart from its outer one, so it is refused."""
    with store.unit_of_work() as outer:
        outer.sign_in_failures.increment(user.id)
        with pytest.raises(StorageError) as nested, store.unit_of_work():
            pass
        assert outer.sign_in_failures.count(user.id) == 1
    assert nested.value.code == "storage.nested_unit"


def test_a_closed_store_refuses_units(store: Storage) -> None:
    store.close()
    with pytest.raises(StorageError) as closed, store.unit_of_work():
        pass
    assert closed.value.code == "storage.closed"


def _run_together(count: int, work: Callable[[], object]) -> list[object]:
    """Run ``work`` in ``count`` threads released at once; return results (or exceptions)."""
    barrier = threading.Barrier(count)
    results: list[object] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            outcome = work()
        except Exception as error:  # noqa: BLE001 - reported to the test as a value
            outcome = error
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_simultaneous_failures_all_count(store: Storage, user: User) -> None:
    """LK-4: 8 threads x 50 wrong attempts against one account count exactly 400."""

    def fifty() -> list[int]:
        seen = []
        for _ in range(50):
            with store.unit_of_work() as uow:
                seen.append(uow.sign_in_failures.increment(user.id))
        return seen

    results = _run_together(8, fifty)
    counts = sorted(n for seen in results for n in seen)  # type: ignore[attr-defined]
    assert counts == list(range(1, 401))
    with store.unit_of_work() as uow:
        assert uow.sign_in_failures.count(user.id) == 400


def test_simultaneous_uses_of_one_link_exactly_one_succeeds(
    store: Storage, make_token: Callable[..., LinkToken], now: datetime
) -> None:
    """RS-5: 50 threads consume one link token; exactly one gets it."""
    token = make_token()
    with store.unit_of_work() as uow:
        uow.link_tokens.add(token)

    def use() -> LinkToken | None:
        with store.unit_of_work() as uow:
            return uow.link_tokens.consume(
                token.token_hash, purpose=TokenPurpose.INVITATION, now=now
            )

    results = _run_together(50, use)
    assert sum(isinstance(r, LinkToken) for r in results) == 1
    assert results.count(None) == 49


def test_simultaneous_uses_of_one_code_exactly_one_succeeds(
    store: Storage, make_challenge: Callable[..., Challenge], now: datetime
) -> None:
    """RS-5, VF-7: 50 threads enter the right code at once; exactly one is accepted."""
    with store.unit_of_work() as uow:
        uow.challenges.add(make_challenge())

    def enter() -> bool:
        with store.unit_of_work() as uow:
            return uow.challenges.consume("c1", code_hash=b"h" * 32, now=now)

    results = _run_together(50, enter)
    assert results.count(True) == 1
    assert results.count(False) == 49


def test_simultaneous_sends_respect_the_limit(store: Storage, user: User, now: datetime) -> None:
    """VF-8: 20 simultaneous sends under a limit of 5: exactly 5 go ahead."""

    def send() -> bool:
        with store.unit_of_work() as uow:
            return uow.code_sends.record_within_limit(
                user.id, at=now, since=now - timedelta(minutes=15), limit=5
            )

    results = _run_together(20, send)
    assert results.count(True) == 5
    with store.unit_of_work() as uow:
        assert len(uow.code_sends.sends_since(user.id, now - timedelta(minutes=15))) == 5


# --- injected failures (ST-2, LK-8) ----------------------------------------------------------

#: begin + five writes + commit
_OPERATIONS = 7


@pytest.mark.parametrize("k", range(1, _OPERATIONS + 1))
def test_failure_at_any_operation_leaves_nothing(store: Storage, now: datetime, k: int) -> None:
    """ST-2: whichever operation of a multi-write unit fails, no partial state remains."""
    faulty = FaultyStorage(store, fail_at=k)
    with pytest.raises(StorageError) as failed, faulty.unit_of_work() as uow:
        _write_registration(uow, now)
    assert failed.value.code == "storage.unavailable"
    assert f"operation {k} " in failed.value.message
    assert faulty.calls == k
    assert _registration_state(store) == (None, None, None, 0, ())


def test_without_a_failure_the_same_unit_keeps_everything(store: Storage, now: datetime) -> None:
    faulty = FaultyStorage(store, fail_at=_OPERATIONS + 1)
    with faulty.unit_of_work() as uow:
        _write_registration(uow, now)
    assert faulty.calls == _OPERATIONS
    assert _registration_state(store)[3] == 1


def test_outage_fails_closed_and_loses_no_count(store: Storage, user: User) -> None:
    """LK-8: with storage unreachable every attempt fails with StorageError; no count is lost."""
    faulty = FaultyStorage(store)
    with faulty.unit_of_work() as uow:
        assert uow.sign_in_failures.increment(user.id) == 1
        assert uow.sign_in_failures.increment(user.id) == 2
    faulty.start_outage()
    for _ in range(3):
        with pytest.raises(StorageError), faulty.unit_of_work() as uow:
            uow.sign_in_failures.increment(user.id)
    faulty.end_outage()
    faulty.fail_at(2)
    with pytest.raises(StorageError), faulty.unit_of_work() as uow:
        uow.sign_in_failures.increment(user.id)
    faulty.fail_at(None)
    with faulty.unit_of_work() as uow:
        assert uow.sign_in_failures.count(user.id) == 2
        assert uow.sign_in_failures.increment(user.id) == 3
    faulty.close()
    with pytest.raises(StorageError), store.unit_of_work():
        pass
