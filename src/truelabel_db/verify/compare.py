"""``verify``: counts and checksums of canonical rows on both sides, narrowed to the rows.

Each engine hashes its own rows (:mod:`.rowtext`) and sums them per key range, the first two
characters of the key (1/256th of the UUID space): PostgreSQL in SQL on several connections,
SQLite in SQL in a process of its own, both at once (:mod:`.sides`). Only the key ranges whose
counts or sums differ are read again, row by row, on both sides, and compared in their exact
canonical forms (:mod:`.canonical`): the rows that differ come out by key. Legacy rows the
mapping refuses, and rows an open quarantine record accounts for, are counted as quarantined,
not as missing. ``repair`` re-copies exactly the differing rows, through the follower's own
apply (the plan's ``resync``). An equal verdict records the follower's position at the start as
verified, so that the cutover's check of changed rows starts from there.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.catalog import follow_state
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
from truelabel_db.verify.rowtext import pg_bucket, sqlite_bucket, sqlite_vouches
from truelabel_db.verify.sides import LegacySide, TargetSide, legacy_sides, target_sides

DEFAULT_JOBS = 2

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
    return hash(repr(row))


def _bucket(key: str) -> str:
    return key[:2].lower()


def _key_index(table: TableMap) -> int:
    return [c.target for c in table.columns].index(table.primary_key[0])


def _legacy_rows(conn: sqlite3.Connection, table: TableMap,
                 bad: set[str]) -> Iterator[tuple[str, tuple[Any, ...] | None]]:
    """(key, canonical row or None when the mapping refuses it) for the legacy rows of ``bad``
    key ranges: those SQLite files there, and every row it cannot vouch for (whose canonical key
    may fall in another range than its raw one)."""
    conn.text_factory = decode_text
    columns = table.legacy_select()
    marks = ", ".join("?" * len(bad))
    index = _key_index(table)
    for raw in conn.execute(f"SELECT {columns} FROM {quote_ident(table.legacy)} "
                            f"WHERE {sqlite_bucket(table)} IN ({marks}) OR NOT ({sqlite_vouches(table)})",
                            sorted(bad)):
        canonical = canonical_legacy(table, raw)
        key = str(canonical[index]) if canonical else str(raw[index])
        if _bucket(key) in bad:
            yield key, canonical


def _target_rows(conn: psycopg.Connection, table: TableMap,
                 bad: set[str]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    index = _key_index(table)
    query = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(
        idents(table.target_columns), table.ident, pg_bucket(table))
    with conn.transaction(), conn.cursor(name=f"verify_{table.target}") as cur:
        cur.itersize = 10_000
        cur.execute(query, (sorted(bad),))
        for row in cur:
            canonical = canonical_target(table, row)
            yield str(canonical[index]), canonical


def verify_table(legacy: sqlite3.Connection, pg: psycopg.Connection, table: TableMap,
                 legacy_side: LegacySide, target_side: TargetSide, *, repair: bool = False,
                 mapping: Mapping = DECLARED, source: Path | None = None) -> TableVerdict:
    """The verdict on one table from both sides' sums, narrowed where they differ."""
    verdict = TableVerdict(table.legacy, source_rows=legacy_side.rows, target_rows=target_side.rows,
                           quarantined=legacy_side.quarantined)
    left = {b: v for b, v in legacy_side.buckets.items() if v != (0, 0)}
    right = {b: v for b, v in target_side.buckets.items() if v != (0, 0)}
    buckets = set(left) | set(right)
    verdict.buckets = len(buckets)
    bad = {b for b in buckets if left.get(b) != right.get(b)}
    verdict.mismatched_buckets = len(bad)
    if bad:
        _narrow(legacy, pg, table, bad, {k.lower() for k in open_keys(pg, table.legacy)}, verdict)
    if repair and not verdict.equal:
        verdict.repaired = _repair(legacy, pg, table, verdict, mapping, source)
    return verdict


def _narrow(legacy: sqlite3.Connection, pg: psycopg.Connection, table: TableMap, bad: set[str],
            quarantined_keys: set[str], verdict: TableVerdict) -> None:
    """Read the mismatched key ranges again, row by row, and name the rows that differ (a row
    an open quarantine record accounts for is left out on both sides: held, not missing)."""
    left = {k: _hash(r) for k, r in _legacy_rows(legacy, table, bad)
            if r is not None and k.lower() not in quarantined_keys}
    right = {k: _hash(r) for k, r in _target_rows(pg, table, bad) if k not in quarantined_keys}
    verdict.missing_in_target = sorted(set(left) - set(right))
    verdict.extra_in_target = sorted(set(right) - set(left))
    verdict.different = sorted(k for k in set(left) & set(right) if left[k] != right[k])


def _repair(legacy: sqlite3.Connection, pg: psycopg.Connection, table: TableMap,
            verdict: TableVerdict, mapping: Mapping, source: Path | None) -> int:
    """Make each differing row equal to SQLite's current row (or gone, if SQLite has none)."""
    keys = verdict.missing_in_target + verdict.different + verdict.extra_in_target
    resync(pg, LegacyRows(legacy), table, keys, mapping=mapping, source=source)
    return len(keys)


def compare_tables(source: Path, target_url: str, chosen: list[TableMap], *, repair: bool = False,
                   jobs: int = DEFAULT_JOBS, mapping: Mapping = DECLARED) -> dict[str, TableVerdict]:
    """Both sides' sums at once (SQLite's in processes of their own), then each table's verdict."""
    with connect(target_url, autocommit=True) as pg:
        quarantined = {t.legacy: sorted(open_keys(pg, t.legacy)) for t in chosen}
    context = multiprocessing.get_context("spawn")  # no thread or connection of ours is inherited
    groups = _balanced(chosen, max(1, jobs), _legacy_rows_by_table(source, chosen))
    with ProcessPoolExecutor(max_workers=len(groups), mp_context=context) as pool:
        futures = [pool.submit(legacy_sides, str(source), group, {t.legacy: quarantined[t.legacy] for t in group})
                   for group in groups]
        target = target_sides(target_url, chosen, jobs, quarantined)
        legacy_found = {name: side for f in futures for name, side in f.result().items()}
    legacy = sqlite_connect(source)
    try:
        with connect(target_url, autocommit=True, migration_writer=repair) as pg:
            return {t.legacy: verify_table(legacy, pg, t, legacy_found[t.legacy], target[t.legacy],
                                           repair=repair, mapping=mapping, source=source)
                    for t in chosen}
    finally:
        legacy.close()


def _legacy_rows_by_table(source: Path, tables: list[TableMap]) -> dict[str, int]:
    """Each table's largest rowid: a free estimate of its size, to share the work out."""
    legacy = sqlite_connect(source)
    try:
        return {t.legacy: int(legacy.execute(f"SELECT coalesce(max(rowid), 0) FROM {quote_ident(t.legacy)}")
                              .fetchone()[0]) for t in tables}
    finally:
        legacy.close()


def _balanced(tables: list[TableMap], parts: int, sizes: dict[str, int]) -> list[list[TableMap]]:
    """Tables dealt into ``parts`` groups of about equal rows, largest first."""
    groups: list[list[TableMap]] = [[] for _ in range(min(parts, len(tables)) or 1)]
    loads = [0] * len(groups)
    for table in sorted(tables, key=lambda t: -sizes.get(t.legacy, 0)):
        lightest = loads.index(min(loads))
        groups[lightest].append(table)
        loads[lightest] += sizes.get(table.legacy, 0)
    return [g for g in groups if g]


def verify(source: Path, target_url: str, *, repair: bool = False,
           tables: list[str] | None = None, jobs: int = DEFAULT_JOBS) -> VerifyReport:
    """Compare every mapped table; with ``repair``, re-copy the rows that differ and check again."""
    with connect(target_url, autocommit=True) as pg:
        mapping = recorded_mapping(pg)
    chosen = [t for t in mapping.tables if not tables or t.legacy in tables]
    followed = _follow_position(source, target_url)
    report = VerifyReport(compare_tables(source, target_url, chosen, repair=repair, jobs=jobs, mapping=mapping))
    if repair and not report.equal:
        again = compare_tables(source, target_url, [t for t in chosen if not report.tables[t.legacy].equal],
                               jobs=jobs, mapping=mapping)
        for name, verdict in again.items():
            verdict.repaired = report.tables[name].repaired
            report.tables[name] = verdict
    if report.equal and not tables and followed is not None:
        with connect(target_url, autocommit=True) as pg:
            follow_state.record_verified(pg, str(source.resolve()), followed)
    return report


def _follow_position(source: Path, target_url: str) -> int | None:
    """The follower's committed position now: every change up to it is in PostgreSQL."""
    with connect(target_url, autocommit=True) as pg:
        if not follow_state.exists(pg):
            return None
        return follow_state.position(pg, str(source.resolve()))
