"""The field codec of the SQL stores: every shape of field survives JSON and back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import attrs
from hypothesis import given
from hypothesis import strategies as st

from securepractice.records import Role
from securepractice.storage._codec import from_json, time_text, to_json


@attrs.frozen(kw_only=True)
class _Everything:
    key: bytes | None
    when: datetime | None
    pairs: tuple[tuple[str, str], ...]
    roles: frozenset[Role]
    flag: bool


@given(
    key=st.none() | st.binary(max_size=8),
    when=st.none() | st.datetimes(timezones=st.just(timezone.utc)),
    pairs=st.lists(st.tuples(st.text(max_size=3), st.text(max_size=3)), max_size=3).map(tuple),
    roles=st.frozensets(st.sampled_from(Role)),
    flag=st.booleans(),
)
def test_nested_values_round_trip_through_json(
    *,
    key: bytes | None,
    when: datetime | None,
    pairs: tuple[tuple[str, str], ...],
    roles: frozenset[Role],
    flag: bool,
) -> None:
    value = _Everything(key=key, when=when, pairs=pairs, roles=roles, flag=flag)
    assert from_json(to_json(value, _Everything, field="x"), _Everything) == value


def test_times_are_fixed_width_utc_text() -> None:
    """Text order is time order: every moment is written in UTC with microseconds."""
    eastern = timezone(timedelta(hours=-5))
    assert time_text(datetime(2026, 1, 5, 4, 0, tzinfo=eastern)) == (
        "2026-01-05T09:00:00.000000+00:00"
    )
