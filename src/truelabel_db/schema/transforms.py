"""Value transforms between a legacy SQLite value and its PostgreSQL type.

Each transform is written once and serves every step: the copy's fast path (SQLite formats
the value as a CSV field, so the common case never touches Python), its slow path (Python
that repairs what can be repaired with certainty and refuses the rest with a reason), and the
reverse direction used when replaying PostgreSQL writes into SQLite.

The fast path checks in SQLite only what PostgreSQL could not notice itself: an integer
where a timestamp is formatted, say. Everything PostgreSQL validates anyway (a UUID, an
address, an enum label, a NUL byte) is left to it: a refused COPY sends the chunk to the slow
path, which finds the exact rows. Cheap checks for common dirt (JSON) save that round trip.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from truelabel_db.legacy.encodings import (
    MS_MAX,
    MS_MIN,
    TimestampEncoding,
    classify_timestamp,
    to_epoch_ms,
)
from truelabel_db.schema.copytext import array_literal, copy_escape
from truelabel_db.sqlite_sql import quote_literal


class Unconvertible(ValueError):
    """A legacy value the target type cannot hold and no certain repair exists for."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadUtf8(bytes):
    """TEXT bytes that are not valid UTF-8 (SQLite stores them; PostgreSQL refuses them)."""


def decode_text(raw: bytes) -> str | BadUtf8:
    """sqlite3 text_factory for the slow path: never raise on a row, mark bad text instead."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return BadUtf8(raw)


@dataclass(frozen=True)
class Converted:
    """A target value, and what was repaired to get it (None when the value was clean)."""

    value: Any
    repair: str | None = None


class Transform(Protocol):
    @property
    def pg_type(self) -> str:
        """The PostgreSQL type the value becomes (read-only: transforms are frozen values)."""
        ...

    def convert(self, raw: Any) -> Converted: ...

    def copy_text(self, value: Any) -> str: ...

    def sqlite_check(self, col: str, strict: bool = False) -> str | None:
        """A SQLite predicate the fast path needs before formatting (None: nothing to check).

        ``strict`` adds cheap shape checks for what PostgreSQL would refuse; the copy switches
        to them for a table once PostgreSQL has refused one of its chunks.
        """
        ...

    def sqlite_csv(self, col: str) -> str | None:
        """A SQLite expression giving the non-NULL value as a CSV field (None: no fast path)."""
        ...

    def to_legacy(self, value: Any) -> Any: ...


def _as_text(raw: Any) -> Converted:
    """Most transforms start from text; numbers in a TEXT column are a certain repair."""
    if isinstance(raw, BadUtf8):
        raise Unconvertible("text is not valid UTF-8")
    if isinstance(raw, bytes):
        try:
            return Converted(raw.decode("utf-8"), "blob decoded as UTF-8")
        except UnicodeDecodeError as exc:
            raise Unconvertible("blob is not UTF-8 text") from exc
    if isinstance(raw, (int, float)):
        return Converted(str(raw), "number stored in a text column")
    return Converted(raw)


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise Unconvertible("NUL byte, which PostgreSQL text cannot hold")
    return text


_NUL = "instr(CAST({c} AS BLOB), x'00') = 0"


def csv_quoted(expr: str) -> str:
    """A CSV field in double quotes, inner quotes doubled: safe for any text."""
    return f"'\"' || replace({expr}, '\"', '\"\"') || '\"'"


def csv_wrapped(expr: str) -> str:
    """Quotes without escaping, for values PostgreSQL parses strictly (a stray quote fails)."""
    return f"'\"' || {expr} || '\"'"


class Text:
    pg_type = "text"

    def convert(self, raw: Any) -> Converted:
        out = _as_text(raw)
        return Converted(_no_nul(out.value), out.repair)

    def copy_text(self, value: str) -> str:
        return copy_escape(value)

    def sqlite_check(self, col: str, strict: bool = False) -> str | None:
        return _NUL.format(c=col) if strict else None

    def sqlite_csv(self, col: str) -> str:
        return csv_quoted(col)

    def to_legacy(self, value: str) -> str:
        return value


class Uuid:
    pg_type = "uuid"

    def convert(self, raw: Any) -> Converted:
        text = _as_text(raw).value
        try:
            parsed = uuid.UUID(text.strip())
        except (ValueError, AttributeError) as exc:
            raise Unconvertible("not a UUID") from exc
        canonical = str(parsed)
        return Converted(canonical, None if canonical == text else "UUID normalised")

    def copy_text(self, value: str) -> str:
        return value

    def sqlite_check(self, col: str, strict: bool = False) -> str | None:
        if not strict:
            return None
        return f"length({col}) = 36 AND {col} NOT GLOB '*[^0-9a-fA-F-]*'"

    def sqlite_csv(self, col: str) -> str:
        return csv_wrapped(col)

    def to_legacy(self, value: Any) -> str:
        return str(value)


class Timestamp:
    """Prisma DateTime (epoch ms) → timestamptz; other encodings are repaired when certain."""

    pg_type = "timestamptz"

    def convert(self, raw: Any) -> Converted:
        encoding, value = classify_timestamp(raw)
        if value is None:
            raise Unconvertible(f"timestamp {encoding.value}: {str(raw)[:40]!r}")
        repair = None if encoding is TimestampEncoding.EPOCH_MS else f"timestamp from {encoding.value}"
        return Converted(value, repair)

    def copy_text(self, value: datetime) -> str:
        """UTC with millisecond precision (Prisma's), microseconds only when a repair had them."""
        value = value.astimezone(timezone.utc)
        micros = value.microsecond
        fraction = f"{micros // 1000:03d}" if micros % 1000 == 0 else f"{micros:06d}"
        return value.strftime("%Y-%m-%d %H:%M:%S.") + fraction + "+00"

    def sqlite_check(self, col: str, strict: bool = False) -> str:
        return f"typeof({col}) = 'integer' AND {col} BETWEEN {MS_MIN} AND {MS_MAX}"

    def sqlite_csv(self, col: str) -> str:
        return (f"datetime({col} / 1000, 'unixepoch') || '.' "
                f"|| substr('00' || ({col} % 1000), -3) || '+00'")

    def to_legacy(self, value: datetime) -> int:
        return to_epoch_ms(value)


_TRUE = {"1", "true", "t", "yes"}
_FALSE = {"0", "false", "f", "no"}


class Boolean:
    pg_type = "boolean"

    def convert(self, raw: Any) -> Converted:
        if isinstance(raw, int) and raw in (0, 1):
            return Converted(bool(raw))
        word = str(raw).strip().lower() if isinstance(raw, (str, float)) else None
        if word in _TRUE or word == "1.0":
            return Converted(True, "boolean from text")
        if word in _FALSE or word == "0.0":
            return Converted(False, "boolean from text")
        raise Unconvertible(f"not a boolean: {str(raw)[:40]!r}")

    def copy_text(self, value: bool) -> str:
        return "t" if value else "f"

    def sqlite_check(self, col: str, strict: bool = False) -> str:
        return f"typeof({col}) = 'integer' AND {col} IN (0, 1)"

    def sqlite_csv(self, col: str) -> str:
        return f"CASE {col} WHEN 1 THEN 't' ELSE 'f' END"

    def to_legacy(self, value: bool) -> int:
        return int(value)


@dataclass(frozen=True)
class Integer:
    pg_type: str = "integer"

    @property
    def bounds(self) -> tuple[int, int]:
        return (-(2**31), 2**31 - 1) if self.pg_type == "integer" else (-(2**63), 2**63 - 1)

    def convert(self, raw: Any) -> Converted:
        repair = None
        if isinstance(raw, float) and raw.is_integer():
            raw, repair = int(raw), "integral real as integer"
        elif isinstance(raw, str) and raw.strip().lstrip("+-").isdigit():
            raw, repair = int(raw.strip()), "integer from text"
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise Unconvertible(f"not an integer: {str(raw)[:40]!r}")
        low, high = self.bounds
        if not low <= raw <= high:
            raise Unconvertible(f"integer out of {self.pg_type} range")
        return Converted(raw, repair)

    def copy_text(self, value: int) -> str:
        return str(value)

    def sqlite_check(self, col: str, strict: bool = False) -> str:
        low, high = self.bounds
        return f"typeof({col}) = 'integer' AND {col} BETWEEN {low} AND {high}"

    def sqlite_csv(self, col: str) -> str:
        return f"CAST({col} AS TEXT)"

    def to_legacy(self, value: int) -> int:
        return value


def _reject_nul_escapes(node: Any) -> None:
    """jsonb refuses the \\u0000 escape even though it is valid JSON."""
    if isinstance(node, str):
        _no_nul(node)
    elif isinstance(node, dict):
        for key, item in node.items():
            _no_nul(key)
            _reject_nul_escapes(item)
    elif isinstance(node, list):
        for item in node:
            _reject_nul_escapes(item)


def _reject_constant(name: str) -> None:
    raise ValueError(name)


class Json:
    pg_type = "jsonb"

    def convert(self, raw: Any) -> Converted:
        text = _no_nul(_as_text(raw).value)
        try:
            _reject_nul_escapes(json.loads(text, parse_constant=_reject_constant))
        except ValueError as exc:
            if isinstance(exc, Unconvertible):
                raise
            raise Unconvertible("malformed JSON") from exc
        return Converted(text)

    def copy_text(self, value: str) -> str:
        return copy_escape(value)

    def sqlite_check(self, col: str, strict: bool = False) -> str:
        # Malformed JSON is the commonest dirt: catching it here spares the chunk a retry.
        check = f"typeof({col}) = 'text' AND json_valid({col})"
        return check + (f" AND instr({col}, '\\u0000') = 0" if strict else "")

    def sqlite_csv(self, col: str) -> str:
        return csv_quoted(col)

    def to_legacy(self, value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _sqlite_array_element(expr: str) -> str:
    """Backslash and double quote escaped the way a quoted array element needs."""
    return f"replace(replace({expr}, '\\', '\\\\'), '\"', '\\\"')"


_UNPRINTABLE_GLOB = "'*[' || char(9, 10, 11, 12, 13) || ']*'"
# SQLite literals for the pieces of a quoted array literal: {"  ","  "}
_OPEN, _Q_COMMA_Q, _CLOSE = "'{" + '"' + "'", "'" + '","' + "'", "'" + '"}' + "'"


class CommaList:
    """Prisma's comma-separated ``claims`` → text[]; a JSON array of strings is accepted too."""

    pg_type = "text[]"

    def convert(self, raw: Any) -> Converted:
        text = _no_nul(_as_text(raw).value).strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError as exc:
                raise Unconvertible("list looks like JSON but does not parse") from exc
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise Unconvertible("JSON list holds something other than strings")
            return Converted([_no_nul(i) for i in items], "list from JSON array")
        return Converted([part.strip() for part in text.split(",") if part.strip()])

    def copy_text(self, value: list[str]) -> str:
        return copy_escape(array_literal(value))

    def sqlite_check(self, col: str, strict: bool = False) -> str:
        # SQLite splits only the common shape, "a, b, c": no empty item, no stray space, no
        # JSON; anything else (where Python would trim or parse) takes the slow path.
        return (f"typeof({col}) = 'text' AND {col} <> '' AND substr({col}, 1, 1) NOT IN ('[', ' ', ',') "
                f"AND substr({col}, -1) NOT IN (' ', ',') AND instr({col}, ' ,') = 0 "
                f"AND instr({col}, ',,') = 0 AND instr({col}, ',  ') = 0 AND instr({col}, ', ,') = 0 "
                f"AND {col} NOT GLOB {_UNPRINTABLE_GLOB}")

    def sqlite_csv(self, col: str) -> str:
        separated = f"replace(replace({_sqlite_array_element(col)}, ', ', ','), ',', {_Q_COMMA_Q})"
        return csv_quoted(f"{_OPEN} || {separated} || {_CLOSE}")

    def to_legacy(self, value: list[str]) -> str:
        return ", ".join(value)


class SingletonList:
    """One legacy value → a one-element text[] (``imageUrl`` becomes ``image_urls``)."""

    pg_type = "text[]"

    def convert(self, raw: Any) -> Converted:
        out = Text().convert(raw)
        return Converted([out.value] if out.value.strip() else [], out.repair)

    def copy_text(self, value: list[str]) -> str:
        return copy_escape(array_literal(value))

    def sqlite_check(self, col: str, strict: bool = False) -> str:
        return (f"typeof({col}) = 'text' AND {col} <> '' AND substr({col}, 1, 1) <> ' ' "
                f"AND {col} NOT GLOB {_UNPRINTABLE_GLOB}")

    def sqlite_csv(self, col: str) -> str:
        return csv_quoted(f"{_OPEN} || {_sqlite_array_element(col)} || {_CLOSE}")

    def to_legacy(self, value: list[str]) -> str | None:
        return value[0] if value else None


@dataclass(frozen=True)
class Enum:
    """Free legacy TEXT → a PostgreSQL enum; wrong case and declared aliases are certain repairs."""

    pg_type: str
    values: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...] = ()

    def convert(self, raw: Any) -> Converted:
        text = _as_text(raw).value
        if text in self.values:
            return Converted(text)
        declared = dict(self.aliases)
        if text in declared:  # the mapping itself, not a repair
            return Converted(declared[text])
        word = text.strip().upper()
        alias = declared.get(word, word)
        if alias in self.values:
            return Converted(alias, f"enum {text!r} read as {alias!r}")
        raise Unconvertible(f"{text[:40]!r} is not a {self.pg_type}")

    def copy_text(self, value: str) -> str:
        return value

    def sqlite_check(self, col: str, strict: bool = False) -> str | None:
        if not strict:
            return None
        listed = ", ".join(quote_literal(v) for v in (*self.values, *dict(self.aliases)))
        return f"{col} IN ({listed})"

    def sqlite_csv(self, col: str) -> str:
        if not self.aliases:
            return csv_wrapped(col)
        cases = " ".join(f"WHEN {quote_literal(a)} THEN {quote_literal(b)}" for a, b in self.aliases)
        return csv_wrapped(f"CASE {col} {cases} ELSE {col} END")

    def to_legacy(self, value: str) -> str:
        return {target: legacy for legacy, target in self.aliases}.get(value, value)


class Inet:
    pg_type = "inet"

    def convert(self, raw: Any) -> Converted:
        """An address, or an address with a netmask (PostgreSQL's inet holds both)."""
        text = _as_text(raw).value.strip()
        try:
            parsed = ipaddress.ip_interface(text) if "/" in text else ipaddress.ip_address(text)
        except ValueError as exc:
            raise Unconvertible(f"not an IP address: {text[:40]!r}") from exc
        return Converted(str(parsed), None if text == raw else "address trimmed")

    def copy_text(self, value: str) -> str:
        return value

    def sqlite_check(self, col: str, strict: bool = False) -> str | None:
        if not strict:
            return None
        dots = f"length({col}) - length(replace({col}, '.', ''))"
        return (f"{col} NOT GLOB '*[^0-9a-fA-F:./]*' AND "
                f"(instr({col}, ':') > 0 OR ({dots} = 3 AND {col} NOT GLOB '*[a-fA-F]*'))")

    def sqlite_csv(self, col: str) -> str:
        return csv_wrapped(col)

    def to_legacy(self, value: Any) -> str:
        return str(value)


class Double:
    """A SQLite REAL kept as ``double precision`` (columns carried from a drifted file)."""

    pg_type = "double precision"

    def convert(self, raw: Any) -> Converted:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise Unconvertible(f"not a number: {str(raw)[:40]!r}")
        value = float(raw)
        if value != value or value in (float("inf"), float("-inf")):
            raise Unconvertible("not a finite number")
        return Converted(value, "integer as real" if isinstance(raw, int) else None)

    def copy_text(self, value: float) -> str:
        return repr(value)

    def sqlite_check(self, col: str, strict: bool = False) -> str | None:
        return None

    def sqlite_csv(self, col: str) -> str | None:
        return None  # carried tables take the Python path

    def to_legacy(self, value: float) -> float:
        return value


class Bytes:
    """A SQLite BLOB kept as ``bytea`` (columns carried from a drifted file)."""

    pg_type = "bytea"

    def convert(self, raw: Any) -> Converted:
        if isinstance(raw, (bytes, bytearray, memoryview)) and not isinstance(raw, BadUtf8):
            return Converted(bytes(raw))
        raise Unconvertible(f"not a blob: {type(raw).__name__}")

    def copy_text(self, value: bytes) -> str:
        return "\\\\x" + value.hex()

    def sqlite_check(self, col: str, strict: bool = False) -> str | None:
        return None

    def sqlite_csv(self, col: str) -> str | None:
        return None

    def to_legacy(self, value: bytes) -> bytes:
        return bytes(value)


class Extra:
    """The columns a drifted file has and the mapping does not, kept together in one ``jsonb``.

    Each value travels losslessly: numbers and text as JSON, anything JSON cannot hold (a BLOB,
    text that is not UTF-8 or holds NUL) tagged and base64-encoded, so a rollback writes back
    exactly what was read.
    """

    pg_type = "jsonb"

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns

    def convert_values(self, values: tuple[Any, ...]) -> Converted:
        from truelabel_db.schema.lossless import encode_value

        return Converted({c: encode_value(v) for c, v in zip(self.columns, values)})

    def copy_text(self, value: dict[str, Any]) -> str:
        return copy_escape(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def to_legacy_values(self, value: dict[str, Any] | None) -> tuple[Any, ...]:
        from truelabel_db.schema.lossless import decode_value

        value = value or {}
        return tuple(decode_value(value.get(c)) for c in self.columns)
