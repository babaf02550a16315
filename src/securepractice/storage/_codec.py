"""Turn record fields into SQL values and back, driven by each field's declared type.

Datetimes become UTC ISO-8601 text with microseconds (fixed width, so text
order is time order), enums their value, booleans 0 or 1, and tuples,
frozensets and nested records JSON text: SQLite's columns (`TEXT_COLUMNS`).
Every SQL adapter keeps the fields that have no column of their own as JSON
(`to_json`, `from_json`) and gives the shared repositories its `Columns`.
"""

from __future__ import annotations

import enum
import functools
import json
import types
import typing
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Protocol

import attrs

from securepractice.clock import require_utc

__all__ = [
    "TEXT_COLUMNS",
    "Columns",
    "field_types",
    "from_column",
    "from_json",
    "strip_optional",
    "time_text",
    "to_column",
    "to_json",
]

_SCALARS = (int, str, bytes)


@functools.cache
def field_types(record: type[attrs.AttrsInstance]) -> dict[str, Any]:
    """Return each field's name and resolved type, in declaration order."""
    attrs.resolve_types(record)
    return {field.name: field.type for field in attrs.fields(record)}


def time_text(moment: datetime, *, field: str = "now") -> str:
    """Return ``moment`` as fixed-width UTC ISO-8601 text; refuse a naive datetime."""
    return require_utc(moment, field=field).astimezone(timezone.utc).isoformat("T", "microseconds")


@functools.cache
def strip_optional(kind: Any) -> Any:  # noqa: ANN401 - any type expression
    """Return ``kind`` without ``| None``; remembered, as every field's type is asked often."""
    if typing.get_origin(kind) in {typing.Union, types.UnionType}:
        (kind,) = (arg for arg in typing.get_args(kind) if arg is not type(None))
    return kind


def _is_enum(kind: Any) -> bool:  # noqa: ANN401
    return isinstance(kind, type) and issubclass(kind, enum.Enum)


def to_column(value: object, kind: Any, *, field: str) -> object:  # noqa: ANN401
    """Encode one field's value as an SQL value."""
    if value is None:
        return None
    kind = strip_optional(kind)
    if kind is datetime:
        return time_text(typing.cast("datetime", value), field=field)
    if _is_enum(kind):
        return typing.cast("enum.Enum", value).value
    if kind is bool:
        return int(typing.cast("bool", value))
    if kind in _SCALARS:
        return value
    return json.dumps(to_json(value, kind, field=field), separators=(",", ":"))


def from_column(raw: object, kind: Any) -> object:  # noqa: ANN401
    """Decode one SQL value as a field of type ``kind``."""
    if raw is None:
        return None
    kind = strip_optional(kind)
    if kind is datetime:
        return datetime.fromisoformat(typing.cast("str", raw))
    if _is_enum(kind):
        return kind(raw)
    if kind is bool:
        return bool(raw)
    if kind in _SCALARS:
        return raw
    return from_json(json.loads(typing.cast("str", raw)), kind)


def to_json(value: object, kind: Any, *, field: str) -> object:  # noqa: ANN401
    """Encode a value of type ``kind`` as JSON-ready data."""
    if value is None:
        return None
    kind = strip_optional(kind)
    origin = typing.get_origin(kind)
    if origin in {tuple, frozenset}:
        args = typing.get_args(kind)
        items = list(typing.cast("typing.Iterable[object]", value))
        kinds = [args[0]] * len(items) if origin is frozenset or args[-1] is ... else args
        encoded = [to_json(item, k, field=field) for item, k in zip(items, kinds, strict=True)]
        return sorted(encoded, key=json.dumps) if origin is frozenset else encoded
    if attrs.has(kind):
        return {
            name: to_json(getattr(value, name), sub, field=f"{field}.{name}")
            for name, sub in field_types(kind).items()
        }
    if kind is bytes:
        return typing.cast("bytes", value).hex()
    return to_column(value, kind, field=field)


def from_json(data: object, kind: Any) -> object:  # noqa: ANN401
    """Decode JSON data as a value of type ``kind``."""
    if data is None:
        return None
    kind = strip_optional(kind)
    origin = typing.get_origin(kind)
    if origin in {tuple, frozenset}:
        args = typing.get_args(kind)
        items = typing.cast("list[object]", data)
        kinds = [args[0]] * len(items) if origin is frozenset or args[-1] is ... else args
        decoded = (from_json(item, k) for item, k in zip(items, kinds, strict=True))
        return frozenset(decoded) if origin is frozenset else tuple(decoded)
    if attrs.has(kind):
        fields = typing.cast("dict[str, object]", data)
        return kind(
            **{name: from_json(fields[name], sub) for name, sub in field_types(kind).items()}
        )
    if kind is bytes:
        return bytes.fromhex(typing.cast("str", data))
    return from_column(data, kind)


class Columns(Protocol):
    """How one database keeps field values: in their own columns, and the rest in ``extra``."""

    @property
    def extra(self) -> str:
        """The name of the JSON column that holds the fields without a column of their own."""
        ...

    def to_column(self, value: object, kind: Any, *, field: str) -> object:  # noqa: ANN401
        """Encode one field's value as the database driver takes it."""
        ...

    def from_column(self, raw: object, kind: Any) -> object:  # noqa: ANN401
        """Decode one column's value as a field of type ``kind``."""
        ...

    def pack(self, extra: dict[str, object]) -> object:
        """Return the ``extra`` column's value for these JSON-ready fields."""
        ...

    def unpack(self, raw: object) -> Mapping[str, object]:
        """Return the JSON-ready fields an ``extra`` column's value holds."""
        ...


class _TextColumns:
    """Columns of text, integers and blobs, and the rest as JSON text: SQLite's."""

    extra = "extra"

    def to_column(self, value: object, kind: Any, *, field: str) -> object:  # noqa: ANN401
        return to_column(value, kind, field=field)

    def from_column(self, raw: object, kind: Any) -> object:  # noqa: ANN401
        return from_column(raw, kind)

    def pack(self, extra: dict[str, object]) -> object:
        return json.dumps(extra, separators=(",", ":"))

    def unpack(self, raw: object) -> Mapping[str, object]:
        return typing.cast("dict[str, object]", json.loads(typing.cast("str", raw)))


#: The codec of a database whose columns hold text, integers and blobs only.
TEXT_COLUMNS: Columns = _TextColumns()
