"""Each transform: what it accepts, what it repairs, what it refuses, and that SQLite agrees."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import datetime, timezone
from typing import Any

import pytest

from truelabel_db.schema.mapping import PRODUCT_STATUS, USER_ROLE
from truelabel_db.schema.transforms import (
    BadUtf8,
    Boolean,
    CommaList,
    Inet,
    Integer,
    Json,
    SingletonList,
    Text,
    Timestamp,
    Transform,
    Unconvertible,
    Uuid,
)


def test_epoch_milliseconds_land_in_their_year_not_in_year_1750415226467() -> None:
    out = Timestamp().convert(1750415226464)
    assert out.value == datetime(2025, 6, 20, 10, 27, 6, 464000, tzinfo=timezone.utc)
    assert out.repair is None


@pytest.mark.parametrize("raw, expected", [
    (1750415226, datetime(2025, 6, 20, 10, 27, 6, tzinfo=timezone.utc)),
    ("2025-06-20 10:27:06", datetime(2025, 6, 20, 10, 27, 6, tzinfo=timezone.utc)),
    ("2025-06-20T10:27:06.464Z", datetime(2025, 6, 20, 10, 27, 6, 464000, tzinfo=timezone.utc)),
    ("1750415226464", datetime(2025, 6, 20, 10, 27, 6, 464000, tzinfo=timezone.utc)),
])
def test_other_timestamp_encodings_are_repaired_when_certain(raw: Any, expected: datetime) -> None:
    out = Timestamp().convert(raw)
    assert out.value == expected and out.repair


@pytest.mark.parametrize("raw", ["yesterday", 12_345_678_901, -5, "2025-13-45"])
def test_ambiguous_or_impossible_timestamps_are_refused(raw: Any) -> None:
    with pytest.raises(Unconvertible):
        Timestamp().convert(raw)


def test_enums_repair_case_and_declared_aliases_and_refuse_the_unknown() -> None:
    assert PRODUCT_STATUS.convert("pending").value == "PENDING"
    assert USER_ROLE.convert("LAB").value == "LABORATORY"
    assert USER_ROLE.to_legacy("LABORATORY") == "LAB"
    with pytest.raises(Unconvertible):
        PRODUCT_STATUS.convert("ARCHIVED")


def test_comma_lists_become_arrays_and_come_back() -> None:
    out = CommaList().convert("Fonte de Proteína, Sem Lactose")
    assert out.value == ["Fonte de Proteína", "Sem Lactose"]
    assert CommaList().to_legacy(out.value) == "Fonte de Proteína, Sem Lactose"
    assert CommaList().convert('["a", "b,c"]').value == ["a", "b,c"]
    assert CommaList().copy_text(["a\"b", "c"]) == '{"a\\\\"b","c"}'


@pytest.mark.parametrize("transform, raw", [
    (Json(), '{"porcao": "100g",'),
    (Json(), '{"a": "\\u0000"}'),
    (Json(), "NaN"),
    (Text(), "nul\x00inside"),
    (Text(), BadUtf8(b"\xff\xfe")),
    (Integer(), "abc"),
    (Integer(), 2**40),
    (Boolean(), 2),
    (Inet(), "999.1.2.3"),
    (Uuid(), "cl9x0abc0000"),
])
def test_values_postgresql_would_refuse_are_refused_with_a_reason(transform: Transform, raw: Any) -> None:
    with pytest.raises(Unconvertible) as info:
        transform.convert(raw)
    assert info.value.reason


CLEAN_SAMPLES: list[tuple[Transform, Any]] = [
    (Text(), 'tab\there, newline\nthere, back\\slash, "quotes" and ção'),
    (Uuid(), "63194a4f-1e0d-4c5e-b801-a14907b2d505"),
    (Timestamp(), 1750415226004),
    (Timestamp(), 1750415226999),
    (Boolean(), 1),
    (Boolean(), 0),
    (Integer(), 123456),
    (Integer("bigint"), 2**40),
    (Json(), '{"cidade": "São Paulo", "n": [1, 2], "q": "a\\"b"}'),
    (PRODUCT_STATUS, "VALIDATED"),
    (USER_ROLE, "LAB"),
    (Inet(), "200.147.3.1"),
    (Inet(), "2001:db8::1"),
    (CommaList(), 'Sem Glúten, Vegano, Fonte de "Proteína", back\\slash'),
    (CommaList(), "um só"),
    (SingletonList(), 'https://cdn.example/a "b".jpg'),
]


def _unescape_copy_text(field: str) -> str:
    table = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
    out, i = [], 0
    while i < len(field):
        pair = field[i:i + 2]
        if pair in table:
            out.append(table[pair])
            i += 2
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _sqlite_row(transform: Transform, raw: Any, expr: str) -> Any:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (v)")
    conn.execute("INSERT INTO t VALUES (?)", (raw,))
    return conn.execute(f"SELECT {expr} FROM t").fetchone()[0]


@pytest.mark.parametrize("transform, raw", CLEAN_SAMPLES)
def test_sqlite_fast_path_formats_the_same_value_as_python(transform: Transform, raw: Any) -> None:
    check = transform.sqlite_check("v")
    if check:
        assert _sqlite_row(transform, raw, f"CASE WHEN {check} THEN 1 ELSE 0 END") == 1
    field = _sqlite_row(transform, raw, str(transform.sqlite_csv("v")))
    [parsed] = next(csv.reader(io.StringIO(field)))
    assert parsed == _unescape_copy_text(transform.copy_text(transform.convert(raw).value))


@pytest.mark.parametrize("transform, raw", [
    (Timestamp(), "2025-06-20 10:27:06"), (Timestamp(), 1750415226), (Boolean(), "true"),
    (Json(), "{broken"), (Integer(), "12"), (Integer(), 2**40),
    (CommaList(), '["a", "b"]'), (CommaList(), "a ,b"), (CommaList(), "a,,b"), (CommaList(), ""),
    (CommaList(), " a, b"), (SingletonList(), "   "), (SingletonList(), "\t"),
])
def test_sqlite_checks_send_what_it_would_misformat_to_python(transform: Transform, raw: Any) -> None:
    check = transform.sqlite_check("v")
    assert check and _sqlite_row(transform, raw, f"CASE WHEN {check} THEN 1 ELSE 0 END") == 0
