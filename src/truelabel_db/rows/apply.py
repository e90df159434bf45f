"""Applying changes by key to PostgreSQL: make each named row equal to SQLite's current row.

The caller owns the transaction and defers the foreign keys to its commit. Upserts go first,
parents before children; removals after, children before parents. Every row that would break
a constraint is settled by what SQLite holds *now*, never by stopping:

- a child whose parent is missing: the parent is pulled forward from SQLite if it is there
  (its own change is further down the changelog); if SQLite has no parent either, the child
  is an orphan (a connection without ``PRAGMA foreign_keys``) and goes to the quarantine;
- a parent leaving while PostgreSQL still holds children: each child is looked up in SQLite.
  Gone there: it goes too. Moved to another parent: its current row is applied. Still pointing
  at the leaving parent: an orphan, quarantined (policy ``quarantine``), or the parent is held
  in PostgreSQL with a record saying why (policy ``keep``: referential integrity never removes
  a row from PostgreSQL under it);
- a unique value held by another row: that row is looked up in SQLite. Gone (an ``INSERT OR
  REPLACE`` deleted it without a trigger): it goes. Changed: its current row joins the batch.
  Two rows of the batch exchanging values: the old holder gets a placeholder first;
- a value PostgreSQL refuses: that row alone is quarantined with PostgreSQL's message.

Pulling a later state forward is safe: the follower converges on SQLite's current rows, and
the later changelog entries re-apply the same state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db import guard
from truelabel_db.catalog.quarantine import QuarantineRecord, insert_records, resolve_keys
from truelabel_db.rows.changes import TableChanges
from truelabel_db.rows.convert import convert_rows, quarantine_record
from truelabel_db.rows.legacy import LegacyRows
from truelabel_db.schema.ddl import idents
from truelabel_db.schema.mapping import DECLARED, ForeignKeyMap, Mapping, TableMap
from truelabel_db.schema.transforms import Unconvertible

ORPHAN_POLICIES = ("quarantine", "keep")
MAX_DEPTH = 64          # pulled-forward rows pulling others: bounded by the schema's depth
MAX_UNIQUE_ROUNDS = 16  # rounds of settling unique clashes before giving the batch up
DATA_ERRORS = (psycopg.errors.DataError, psycopg.errors.IntegrityError)


class ApplyGaveUp(psycopg.errors.IntegrityError):
    """The rows could not be settled within the bounds; the caller applies them one by one."""


@dataclass(frozen=True)
class ApplyPolicy:
    orphans: str = "quarantine"
    stage: str = "follow"  # the quarantine stage of records made while applying


@dataclass
class ApplyOutcome:
    changed: int = 0
    pulled_forward: int = 0
    held: int = 0
    records: list[QuarantineRecord] = field(default_factory=list)

    @property
    def quarantined(self) -> int:
        return len(self.records)


class Applier:
    """One application of changes inside the caller's transaction."""

    def __init__(self, cur: psycopg.Cursor[Any], legacy: LegacyRows, mapping: Mapping = DECLARED,
                 policy: ApplyPolicy = ApplyPolicy()) -> None:
        self.cur, self.legacy, self.mapping, self.policy = cur, legacy, mapping, policy
        self.outcome = ApplyOutcome()
        self._gone: set[tuple[str, str]] = set()       # (table, key) removed from PostgreSQL here
        self._leaving: set[tuple[str, str]] = set()    # (table, key) whose removal is under way
        self._staged: set[tuple[str, str]] = set()     # (table, key) staged, written before the commit
        self._recorded: set[tuple[str, str]] = set()   # (table, key) with a quarantine record here
        self._later: dict[str, tuple[TableMap, set[str]]] = {}  # removals due once the upserts are in
        self._depth = 0

    def apply(self, changes: dict[str, TableChanges]) -> ApplyOutcome:
        for name, table_changes in changes.items():
            resolve_keys(self.cur, name, [*table_changes.upserts, *table_changes.deletes],
                         "superseded by a later change")
        for table in self.mapping.tables:
            upserts = changes.get(table.legacy, TableChanges()).upserts
            if upserts:
                self.upsert(table, upserts)
        for table in reversed(self.mapping.tables):
            deletes = changes.get(table.legacy, TableChanges()).deletes
            if deletes:
                self.remove(table, typed_keys(table, deletes), "deleted in SQLite")
        while self._later:
            table, keys = self._later.pop(next(iter(self._later)))
            self.remove(table, keys, "deleted in SQLite (replaced)")
        insert_records(self.cur, self.outcome.records, None)
        return self.outcome

    # -- upserts ---------------------------------------------------------------------------

    def upsert(self, table: TableMap, rows: dict[str, tuple[Any, ...]]) -> None:
        """Make each row's PostgreSQL twin equal to it (rows are SQLite's current rows)."""
        with self._deeper():
            staged: dict[str, tuple[Any, ...]] = {}
            lines: dict[str, bytes] = {}
            for converted in convert_rows(table, list(rows.values())).rows:
                if converted.record is not None:
                    self._quarantine(table, converted.raw, converted.record.reasons, remove_old=True)
                    continue
                key = str(table.target_key_of(str(table.legacy_key_of(converted.raw))))
                staged[key], lines[key] = converted.raw, converted.line or b""
            if not lines:
                return
            staged_here = {(table.qualified, k) for k in lines} - self._staged
            self._staged |= staged_here
            stage = Stage(self.cur, table, self._depth)
            for raw, reason in self._load_stage(stage, lines, staged):
                self._quarantine(table, raw, [{"column": "*", "reason": f"refused by PostgreSQL: {reason}"}],
                                 remove_old=True)
            if table.unique and not table.partitioned_by:
                self._settle_unique(stage, staged)
            for fk in table.foreign_keys:
                self._settle_parents(stage, staged, fk)
            self.outcome.changed += stage.upsert()
            self._staged -= staged_here

    def _load_stage(self, stage: Stage, lines: dict[str, bytes],
                    staged: dict[str, tuple[Any, ...]]) -> list[tuple[tuple[Any, ...], str]]:
        """COPY the lines into the stage; the rows PostgreSQL refuses come back, with its reason."""
        stage.reset()
        try:
            with self.cur.connection.transaction():
                stage.copy(b"".join(lines.values()))
            return []
        except psycopg.errors.DataError:
            pass
        stage.reset()
        refused = []
        for key, line in lines.items():
            try:
                with self.cur.connection.transaction():
                    stage.copy(line)
            except psycopg.errors.DataError as exc:
                refused.append((staged.pop(key), _first_line(exc)))
        return refused

    def _settle_unique(self, stage: Stage, staged: dict[str, tuple[Any, ...]]) -> None:
        for _ in range(MAX_UNIQUE_ROUNDS):
            changed = [self._settle_unique_round(stage, staged, columns) for columns in stage.table.unique]
            if not any(changed):
                return
        raise ApplyGaveUp(f"{stage.table.target}: unique values still clash after {MAX_UNIQUE_ROUNDS} rounds")

    def _settle_unique_round(self, stage: Stage, staged: dict[str, tuple[Any, ...]],
                             columns: tuple[str, ...]) -> bool:
        """One round for one unique key; True when it changed something (another round is due)."""
        table = stage.table
        for keeper, others in stage.duplicates_within(columns):
            for key in others:
                self._quarantine(table, staged.pop(key), [{"column": ", ".join(columns),
                                 "reason": f"duplicate {', '.join(columns)} (the legacy file does not enforce it)"}],
                                 remove_old=True)
                stage.drop([key])
            return True
        clashes = stage.clashes(columns)
        if not clashes:
            return False
        in_stage = stage.keys()
        swapping = [held for held in clashes if held in in_stage]
        outside = [held for held in clashes if held not in in_stage]
        current = self.legacy.by_keys(table, outside)
        gone = [held for held in outside if held not in current]
        if gone:  # free the value now; the row leaves with the removals, once every upsert is in
            stage.release(columns, gone)
            self._later.setdefault(table.qualified, (table, set()))[1].update(gone)
            self.outcome.pulled_forward += len(gone)
        for held in outside:
            raw = current.get(held)
            if raw is None:
                continue
            self.outcome.pulled_forward += 1
            staged[held] = raw
            converted = convert_rows(table, [raw]).rows[0]
            if converted.record is not None:
                self._quarantine(table, raw, converted.record.reasons, remove_old=True)
            else:
                stage.copy(converted.line or b"")
                self._staged.add((table.qualified, held))
        if swapping:
            stage.release(columns, swapping)
        return True

    def _settle_parents(self, stage: Stage, staged: dict[str, tuple[Any, ...]], fk: ForeignKeyMap) -> None:
        """Staged rows whose parent PostgreSQL lacks: pull the parent forward, or quarantine the orphan."""
        parent = self.mapping.parent_of(fk, stage.table)
        missing = self._unstaged(parent, stage.missing_parents(fk, parent))
        if not missing:
            return
        found = self.legacy.by_keys(parent, set(missing.values()))
        if found:
            self.outcome.pulled_forward += len(found)
            self.upsert(parent, {str(parent.legacy_key_of(raw)): raw for raw in found.values()})
            missing = self._unstaged(parent, stage.missing_parents(fk, parent))
        column = stage.table.column_for_target(fk.column).legacy
        for key, parent_key in missing.items():
            reason = (f"orphan: {column} {parent_key} has no row in {parent.legacy}"
                      + (" (a foreign key cannot hold a new orphan, even under --orphans keep)"
                         if self.policy.orphans == "keep" else ""))
            self._quarantine(stage.table, staged.pop(key), [{"column": column, "reason": reason}],
                             remove_old=self.policy.orphans != "keep")
        stage.drop(list(missing))

    def _unstaged(self, parent: TableMap, missing: dict[str, str]) -> dict[str, str]:
        """Leave out parents an enclosing upsert has staged: they are written before the commit,
        which is when the (deferred) foreign key is checked."""
        return {k: p for k, p in missing.items() if (parent.qualified, p) not in self._staged}

    # -- removals --------------------------------------------------------------------------

    def remove(self, table: TableMap, keys: set[str], cause: str, *, hold_record: bool = True) -> None:
        """Take rows out of PostgreSQL, settling first every child that still refers to them."""
        keys = {k for k in keys if (table.qualified, k) not in self._gone | self._leaving}
        if not keys:
            return
        self._leaving |= {(table.qualified, k) for k in keys}

        with self._deeper():
            held: set[str] = set()
            for _ in range(MAX_DEPTH):  # a child moved to a sibling that is leaving too: look again
                settled = [self._settle_children(table, keys - held, child, fk, cause)
                           for child, fk in self.mapping.children_of(table)]
                if all(found is None for found in settled):
                    break
                held |= set().union(*(found for found in settled if found))
            else:
                raise ApplyGaveUp(f"{table.target}: its children keep moving")
            keys -= held
            if held:
                self.outcome.held += len(held)
                if hold_record:
                    self._hold(table, held, cause)
            if keys:
                self.cur.execute(sql.SQL("DELETE FROM {} WHERE {} = ANY({})").format(
                    table.ident, sql.Identifier(table.key_column), key_array(table)), (sorted(keys),))
                self.outcome.changed += self.cur.rowcount
                self._gone |= {(table.qualified, k) for k in keys}
            self._leaving -= {(table.qualified, k) for k in keys | held}

    def _settle_children(self, table: TableMap, keys: set[str], child: TableMap, fk: ForeignKeyMap,
                         cause: str) -> set[str] | None:
        """Settle the ``child`` rows still pointing at leaving ``keys``.

        Returns None when there was none left to settle, else the parents to hold (``keep``).
        """
        if not keys:
            return None
        kids = [(k, p) for k, p in self.cur.execute(sql.SQL(
            "SELECT {k}::text, {c}::text FROM {t} WHERE {c} = ANY({arr})").format(
            k=sql.Identifier(child.key_column), c=sql.Identifier(fk.column), t=child.ident,
            arr=key_array(table)), (sorted(keys),)).fetchall() if (child.qualified, k) not in self._gone]
        if not kids:
            return None
        current = self.legacy.by_keys(child, [k for k, _ in kids])
        held: set[str] = set()
        column = child.column_for_target(fk.column)
        for kid, parent_key in kids:
            raw = current.get(kid)
            if raw is None:
                self.outcome.pulled_forward += 1
                self.remove(child, {kid}, "deleted in SQLite")
            elif _converted(column, raw[child.legacy_columns.index(column.legacy)]) != parent_key:
                self.outcome.pulled_forward += 1
                self.upsert(child, {str(child.legacy_key_of(raw)): raw})
            elif self.policy.orphans == "keep":
                held.add(parent_key)
            else:
                self._quarantine(child, raw, [{"column": column.legacy,
                                 "reason": f"orphan: its {table.legacy} row {parent_key} was {cause}"}],
                                 remove_old=True)
        return held

    # -- quarantine ------------------------------------------------------------------------

    def _quarantine(self, table: TableMap, raw: tuple[Any, ...], reasons: list[dict[str, str]], *,
                    remove_old: bool) -> None:
        """Record SQLite's row; take its old version out of PostgreSQL unless it is kept."""
        legacy_key = table.legacy_key_of(raw)
        try:
            key: str | None = str(table.target_key_of(str(legacy_key)))
        except Unconvertible:
            key = None  # a key PostgreSQL cannot hold was never there
        marker = (table.qualified, key or str(legacy_key))
        if marker not in self._recorded:
            self._recorded.add(marker)
            self.outcome.records.append(quarantine_record(table, raw, self.policy.stage, reasons))
        if key is not None and remove_old:
            self.remove(table, {key}, "quarantined", hold_record=False)

    def _hold(self, table: TableMap, keys: set[str], cause: str) -> None:
        """Rows kept in PostgreSQL that SQLite no longer has, with why (``--orphans keep``)."""
        for key in sorted(keys):
            if (table.qualified, key) in self._recorded:
                continue
            self._recorded.add((table.qualified, key))
            self.outcome.records.append(QuarantineRecord(
                legacy_table=table.legacy, legacy_key=key, stage=self.policy.stage, original={},
                reasons=[{"column": "*", "op": "delete",
                          "reason": f"held in PostgreSQL: {cause} there, but rows kept under --orphans keep "
                                    "still refer to it"}]))

    def _deeper(self) -> _Depth:
        return _Depth(self)


class _Depth:
    def __init__(self, applier: Applier) -> None:
        self.applier = applier

    def __enter__(self) -> None:
        self.applier._depth += 1
        if self.applier._depth > MAX_DEPTH:
            raise ApplyGaveUp("rows pull each other forward without end")

    def __exit__(self, *_: object) -> None:
        self.applier._depth -= 1


class Stage:
    """A session temp table shaped like a target table, holding the rows about to be upserted."""

    def __init__(self, cur: psycopg.Cursor[Any], table: TableMap, depth: int = 0) -> None:
        """``depth``: a row pulled forward while another stage of the same table is in use gets its own."""
        self.cur, self.table = cur, table
        self.name = sql.Identifier(f"_tl_stage_{depth}_{table.target_schema}_{table.target}"[:63])
        self.key = sql.Identifier(table.key_column)

    def reset(self) -> None:
        """Empty the stage. PostgreSQL empties it at every commit (``ON COMMIT DELETE ROWS``), so
        the ``DELETE`` only meets rows of an earlier use in the same transaction: cheaper than a
        ``TRUNCATE`` per use, which gives the table a new file each time (BENCHMARKS.md, sync)."""
        self.cur.execute(sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA").format(
            self.name, idents(self.table.target_columns), self.table.ident))
        self.cur.execute(sql.SQL("DELETE FROM {}").format(self.name))

    def copy(self, payload: bytes) -> None:
        with self.cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                self.name, idents(self.table.target_columns))) as copy:
            copy.write(payload)

    def keys(self) -> set[str]:
        return {r[0] for r in self.cur.execute(sql.SQL("SELECT {}::text FROM {}").format(self.key, self.name))}

    def drop(self, keys: list[str]) -> None:
        if keys:
            self.cur.execute(sql.SQL("DELETE FROM {} WHERE {} = ANY({})").format(
                self.name, self.key, key_array(self.table)), (keys,))

    def duplicates_within(self, columns: tuple[str, ...]) -> list[tuple[str, list[str]]]:
        """Staged rows sharing a unique value: (the one to keep, the others). The keeper is
        the row that already holds the value in PostgreSQL, else the first by key."""
        match = _match("t", "s", columns)
        rows = self.cur.execute(sql.SQL(
            "SELECT array_agg(s.{k}::text ORDER BY (EXISTS (SELECT 1 FROM {t} t WHERE t.{k} = s.{k} AND {m})) "
            "DESC, s.{k}) FROM {s} s GROUP BY {cols} HAVING count(*) > 1").format(
            k=self.key, t=self.table.ident, s=self.name, m=match, cols=sql.SQL(", ").join(
                sql.SQL("s.{}").format(sql.Identifier(c)) for c in columns))).fetchall()
        return [(r[0][0], list(r[0][1:])) for r in rows]

    def clashes(self, columns: tuple[str, ...]) -> list[str]:
        """Keys of target rows holding a unique value that a staged row (another key) brings."""
        return [r[0] for r in self.cur.execute(sql.SQL(
            "SELECT DISTINCT t.{k}::text FROM {t} t JOIN {s} s ON {m} AND t.{k} <> s.{k}").format(
            k=self.key, t=self.table.ident, s=self.name, m=_match("t", "s", columns)))]

    def release(self, columns: tuple[str, ...], keys: list[str]) -> None:
        """Free the unique values of target rows that the batch gives new ones (a swap)."""
        sets = sql.SQL(", ").join(
            sql.SQL("{c} = {v}").format(c=sql.Identifier(c), v=self._placeholder(c)) for c in columns)
        self.cur.execute(sql.SQL("UPDATE {} SET {} WHERE {} = ANY({})").format(
            self.table.ident, sets, self.key, key_array(self.table)), (keys,))

    def _placeholder(self, column: str) -> sql.Composable:
        if not self.table.column_for_target(column).not_null:
            return sql.NULL
        return sql.SQL("'truelabel:swap:' || {}::text").format(self.key)

    def missing_parents(self, fk: ForeignKeyMap, parent: TableMap) -> dict[str, str]:
        """Staged keys whose ``fk`` value has no row in ``parent``: key -> the missing parent's key."""
        return {r[0]: r[1] for r in self.cur.execute(sql.SQL(
            "SELECT s.{k}::text, s.{c}::text FROM {s} s WHERE s.{c} IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM {p} p WHERE p.{pc} = s.{c})").format(
            k=self.key, c=sql.Identifier(fk.column), s=self.name, p=parent.ident,
            pc=sql.Identifier(fk.parent_column)))}

    def upsert(self) -> int:
        """Move the staged rows into the target; partitioned tables delete and re-insert (a changed
        timestamp moves a row to another partition)."""
        columns = idents(self.table.target_columns)
        if self.table.partitioned_by:
            # = ANY(ARRAY(...)), not IN (SELECT ...): one index probe per key and partition instead
            # of a nested loop over the partitions (scale 5: 7 ms instead of 196 ms for 50 keys)
            self.cur.execute(sql.SQL("DELETE FROM {t} WHERE {k} = ANY(ARRAY(SELECT {k} FROM {s}))").format(
                t=self.table.ident, k=self.key, s=self.name))
            self.cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                self.table.ident, columns, columns, self.name))
            return self.cur.rowcount
        updates = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
            for c in self.table.target_columns if c not in self.table.primary_key)
        self.cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}").format(
            self.table.ident, columns, columns, self.name, idents(self.table.primary_key), updates))
        return self.cur.rowcount


def key_array(table: TableMap) -> sql.Composed:
    """A parameter holding a list of keys, typed like the key column (so its index is used)."""
    pg_type = table.column_for_target(table.key_column).transform.pg_type
    return sql.SQL("%s::{}[]").format(sql.SQL(pg_type))


def typed_keys(table: TableMap, legacy_keys: set[str]) -> set[str]:
    """Legacy keys as PostgreSQL spells them; a key it cannot hold was never there."""
    out = set()
    for key in legacy_keys:
        try:
            out.add(str(table.target_key_of(key)))
        except Unconvertible:
            continue
    return out


def _converted(column: Any, raw: Any) -> str | None:
    if raw is None:
        return None
    try:
        value = column.transform.convert(raw).value
    except Unconvertible:
        return "\x00unconvertible"
    return None if value is None else str(value)


def _match(left: str, right: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(" AND ").join(
        sql.SQL("{l}.{c} = {r}.{c}").format(l=sql.Identifier(left), r=sql.Identifier(right), c=sql.Identifier(c))
        for c in columns)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def apply_changes(cur: psycopg.Cursor[Any], legacy: LegacyRows, changes: dict[str, TableChanges], *,
                  mapping: Mapping = DECLARED, policy: ApplyPolicy = ApplyPolicy()) -> ApplyOutcome:
    """Apply ``changes`` (table -> keys) inside the caller's transaction; see the module's rules."""
    return Applier(cur, legacy, mapping, policy).apply(changes)


def resync(pg: psycopg.Connection, legacy: LegacyRows, table: TableMap, keys: Iterable[str], *,
           mapping: Mapping = DECLARED, policy: ApplyPolicy = ApplyPolicy(stage="verify"),
           source: Path | str | None = None) -> ApplyOutcome:
    """Make the rows of these keys equal to SQLite's current state, in a transaction of their own
    (verify's repair, the cutover's check of recent changes). Refused once PostgreSQL is the
    primary of ``source``: those rows would be the app's."""
    wanted = [str(k) for k in keys]
    found = legacy.by_keys(table, wanted)
    changes = TableChanges(upserts={k: found[k] for k in wanted if k in found},
                           deletes={k for k in wanted if k not in found})
    with pg.transaction(), pg.cursor() as cur:
        if source is not None:
            guard.writing_to_postgres(cur, source, "repair", lock=True)
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
        return apply_changes(cur, legacy, {table.legacy: changes}, mapping=mapping, policy=policy)
