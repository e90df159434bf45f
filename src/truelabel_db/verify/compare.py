"""``verify``: counts and checksums of canonical rows on both sides, narrowed to the rows.

Each side is read once. Every row is reduced to its canonical form, hashed, and its hash
added into the bucket of its key's first two characters (a key range of 1/256th of the
UUID space). Buckets whose sums differ are read again, row by row, on both sides: the rows
that differ come out by key. Legacy rows the mapping refuses, and rows an open quarantine
record accounts for, are counted as quarantined, not as missing. ``repair`` re-copies exactly
the differing rows, through the follower's own apply (the plan's ``resync``).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.catalog.quarantine import open_keys
from truelabel_db.legacy.source import connect as sqlite_connect
from truelabel_db.postgres import connect
from truelabel_db.rows.apply import resync
from truelabel_db.rows.legacy import LegacyRows
from truelabel_db.rows.recorded import recorded_mapping
from truelabel_db.schema.ddl import idents
from truelabel_db.schema.mapping import DECLARED, Mapping, TableMap
from truelabel_db.schema.transforms import decode_text
from truelabel_db.sqlite_sql import quote_ident
from truelabel_db.verify.canonical import canonical_legacy, canonical_target

MASK = (1 << 64) - 1


@dataclass
class TableVerdict:
    table: str
    source_rows: int = 0
    target_rows: int = 0
    quarantined: int = 0
    buckets: int = 0
    mismatched_buckets: int = 0
    missing_in_target: list[str] = field(default_factory=list)
    extra_in_target: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)
    repaired: int = 0

    @property
    def equal(self) -> bool:
        return not (self.missing_in_target or self.extra_in_target or self.different)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "equal": self.equal}


@dataclass
class VerifyReport:
    tables: dict[str, TableVerdict]

    @property
    def equal(self) -> bool:
        return all(v.equal for v in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {"equal": self.equal, "tables": {k: v.to_dict() for k, v in self.tables.items()}}


def _hash(row: tuple[Any, ...]) -> int:
    return int.from_bytes(hashlib.blake2b(repr(row).encode(), digest_size=8).digest(), "big")


def _bucket(key: str) -> str:
    return key[:2].lower()


def _key_index(table: TableMap) -> int:
    return [c.target for c in table.columns].index(table.primary_key[0])


def _legacy_rows(conn: sqlite3.Connection, table: TableMap) -> Iterator[tuple[str, tuple[Any, ...] | None]]:
    """(key, canonical row or None when the mapping refuses it) for every legacy row."""
    conn.text_factory = decode_text
    columns = table.legacy_select()
    index = _key_index(table)
    for raw in conn.execute(f"SELECT {columns} FROM {quote_ident(table.legacy)}"):
        canonical = canonical_legacy(table, raw)
        yield (str(canonical[index]) if canonical else str(raw[index])), canonical


def _target_rows(conn: psycopg.Connection, table: TableMap) -> Iterator[tuple[str, tuple[Any, ...]]]:
    index = _key_index(table)
    query = sql.SQL("SELECT {} FROM {}").format(
        idents(table.target_columns), table.ident)
    with conn.transaction(), conn.cursor(name=f"verify_{table.target}") as cur:
        cur.itersize = 10_000
        cur.execute(query)
        for row in cur:
            canonical = canonical_target(table, row)
            yield str(canonical[index]), canonical


def verify_table(legacy: sqlite3.Connection, pg: psycopg.Connection, table: TableMap,
                 *, repair: bool = False, mapping: Mapping = DECLARED, source: Path | None = None) -> TableVerdict:
    verdict = TableVerdict(table.legacy)
    quarantined_keys = {k.lower() for k in open_keys(pg, table.legacy)}
    left: dict[str, int] = {}
    for key, row in _legacy_rows(legacy, table):
        verdict.source_rows += 1
        if row is None or key.lower() in quarantined_keys:
            verdict.quarantined += 1
            continue
        left[_bucket(key)] = (left.get(_bucket(key), 0) + _hash(row)) & MASK
    right: dict[str, int] = {}
    for key, row in _target_rows(pg, table):
        verdict.target_rows += 1
        if key in quarantined_keys:  # held in PostgreSQL with a record saying why
            continue
        right[_bucket(key)] = (right.get(_bucket(key), 0) + _hash(row)) & MASK
    buckets = set(left) | set(right)
    verdict.buckets = len(buckets)
    bad = {b for b in buckets if left.get(b) != right.get(b)}
    verdict.mismatched_buckets = len(bad)
    if bad:
        _narrow(legacy, pg, table, bad, quarantined_keys, verdict)
    if repair and not verdict.equal:
        verdict.repaired = _repair(legacy, pg, table, verdict, mapping, source)
    return verdict


def _narrow(legacy: sqlite3.Connection, pg: psycopg.Connection, table: TableMap, bad: set[str],
            quarantined_keys: set[str], verdict: TableVerdict) -> None:
    """Read the mismatched buckets again, row by row, and name the rows that differ."""
    left = {k: _hash(r) for k, r in _legacy_rows(legacy, table)
            if _bucket(k) in bad and r is not None and k.lower() not in quarantined_keys}
    right = {k: _hash(r) for k, r in _target_rows(pg, table) if _bucket(k) in bad and k not in quarantined_keys}
    verdict.missing_in_target = sorted(set(left) - set(right))
    verdict.extra_in_target = sorted(set(right) - set(left))
    verdict.different = sorted(k for k in set(left) & set(right) if left[k] != right[k])


def _repair(legacy: sqlite3.Connection, pg: psycopg.Connection, table: TableMap,
            verdict: TableVerdict, mapping: Mapping, source: Path | None) -> int:
    """Make each differing row equal to SQLite's current row (or gone, if SQLite has none)."""
    keys = verdict.missing_in_target + verdict.different + verdict.extra_in_target
    resync(pg, LegacyRows(legacy), table, keys, mapping=mapping, source=source)
    return len(keys)


def verify(source: Path, target_url: str, *, repair: bool = False,
           tables: list[str] | None = None) -> VerifyReport:
    """Compare every mapped table; with ``repair``, re-copy the rows that differ and check again."""
    legacy = sqlite_connect(source)
    try:
        with connect(target_url, autocommit=True, migration_writer=repair) as pg:
            mapping = recorded_mapping(pg)
            chosen = [t for t in mapping.tables if not tables or t.legacy in tables]
            report = VerifyReport({t.legacy: verify_table(legacy, pg, t, repair=repair, mapping=mapping, source=source) for t in chosen})
            if repair and not report.equal:
                again = {name: verify_table(legacy, pg, next(t for t in chosen if t.legacy == name))
                         for name, v in report.tables.items() if not v.equal}
                for name, verdict in again.items():
                    verdict.repaired = report.tables[name].repaired
                    report.tables[name] = verdict
    finally:
        legacy.close()
    return report
