"""Applying a batch of the changelog in one PostgreSQL transaction, with the position it reached.

Foreign keys are deferred to the commit, so the order of changes inside a batch does not
matter; the rows themselves are applied by the rows layer (:mod:`truelabel_db.rows.apply`),
which settles every row that would break a constraint by SQLite's current state. Should
PostgreSQL still refuse the batch (a constraint the rows layer does not foresee), the batch is
applied again in halves, each in a savepoint with its constraints checked at once, halving
again only what PostgreSQL refuses: a change it refuses alone goes to the quarantine with its
message, and the follower goes on. One bad change in a batch of N costs about 2·log2(N)
savepoints, not N.
"""

from __future__ import annotations

from typing import Any

import psycopg

from truelabel_db import guard
from truelabel_db.catalog import follow_state
from truelabel_db.catalog.quarantine import QuarantineRecord, encode_row, insert_records
from truelabel_db.follow.batch import Batch
from truelabel_db.rows.apply import DATA_ERRORS, ApplyOutcome, ApplyPolicy, apply_changes
from truelabel_db.rows.changes import TableChanges
from truelabel_db.rows.legacy import LegacyRows
from truelabel_db.schema.mapping import DECLARED, Mapping, TableMap


def apply_batch(conn: psycopg.Connection, source_path: str, batch: Batch, legacy: LegacyRows, *,
                mapping: Mapping = DECLARED, policy: ApplyPolicy = ApplyPolicy()) -> ApplyOutcome:
    """Apply every change of ``batch`` and move the position to its end, in one transaction."""
    with conn.transaction(), conn.cursor() as cur:
        guard.writing_to_postgres(cur, source_path, "follow", lock=True)  # a switch waits for this batch
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
        try:
            with conn.transaction():
                outcome = apply_changes(cur, legacy, batch.tables, mapping=mapping, policy=policy)
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # any violation left surfaces here
        except DATA_ERRORS:
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
            outcome = _one_by_one(cur, legacy, batch.tables, mapping, policy)
        follow_state.advance(cur, source_path, batch.last_seq, batch.changes)
    return outcome


def _one_by_one(cur: psycopg.Cursor[Any], legacy: LegacyRows, tables: dict[str, TableChanges],
                mapping: Mapping, policy: ApplyPolicy) -> ApplyOutcome:
    """The batch's changes, bisected until what PostgreSQL refuses stands alone, quarantined."""
    single = [(t, k, TableChanges(upserts={k: row})) for t in mapping.tables
              for k, row in tables.get(t.legacy, TableChanges()).upserts.items()]
    single += [(t, k, TableChanges(deletes={k})) for t in reversed(mapping.tables)
               for k in sorted(tables.get(t.legacy, TableChanges()).deletes)]
    total = ApplyOutcome()
    _bisect(cur, legacy, single, mapping, policy, total)
    return total


Change = tuple[TableMap, str, TableChanges]


def _bisect(cur: psycopg.Cursor[Any], legacy: LegacyRows, changes: list[Change], mapping: Mapping,
            policy: ApplyPolicy, total: ApplyOutcome) -> None:
    if not changes:
        return
    try:
        with cur.connection.transaction():
            outcome = apply_changes(cur, legacy, _merged(changes), mapping=mapping, policy=policy)
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
    except DATA_ERRORS as exc:
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
        if len(changes) > 1:
            middle = len(changes) // 2
            _bisect(cur, legacy, changes[:middle], mapping, policy, total)
            _bisect(cur, legacy, changes[middle:], mapping, policy, total)
            return
        table, key, change = changes[0]
        record = _refused(table.legacy, key, change, table.legacy_columns, exc, policy.stage)
        insert_records(cur, [record], None)
        total.records.append(record)
        return
    total.changed += outcome.changed
    total.pulled_forward += outcome.pulled_forward
    total.held += outcome.held
    total.records += outcome.records


def _merged(changes: list[Change]) -> dict[str, TableChanges]:
    out: dict[str, TableChanges] = {}
    for table, _, change in changes:
        merged = out.setdefault(table.legacy, TableChanges())
        merged.upserts.update(change.upserts)
        merged.deletes |= change.deletes
    return out


def _refused(table: str, key: str, change: TableChanges, columns: list[str], exc: Exception,
             stage: str) -> QuarantineRecord:
    message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    row = change.upserts.get(key)
    op = "upsert" if row is not None else "delete"
    return QuarantineRecord(legacy_table=table, legacy_key=key, stage=stage,
                            reasons=[{"column": "*", "op": op, "reason": f"PostgreSQL refused the {op}: {message}"}],
                            original=encode_row(columns, row) if row is not None else {})
