"""The hot paths on the legacy Prisma SQLite file, two ways.

``mode="app"`` is what the app does today through Prisma: one query for the list, then one per
product for its relations (the N+1 of plan §1.2), and aggregates computed in application code.
``mode="best"`` is the best SQLite can do with the same file: set-based SQL, relations fetched
in one query each. Both give the same answer; the benchmark shows what each costs.

Identifiers come from the declared mapping and are quoted; values are always parameters.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from truelabel_db.hotpaths.base import (
    BRAND_FIELDS,
    OPEN_QUEUE_STATUSES,
    PRIORITY_ORDER,
    PRODUCT_FIELDS,
    QUEUE_FIELDS,
    SCANNED_FIELDS,
    SEARCH_FIELDS,
    SERVED_TABLES,
    VALIDATION_FIELDS,
    Ingested,
    Scan,
    analytics_answer,
    dashboard_answer,
    window,
    with_details,
)
from truelabel_db.hotpaths.shape import Record, iso_ms, legacy_record
from truelabel_db.legacy.encodings import to_epoch_ms
from truelabel_db.legacy.schema import read_schema
from truelabel_db.legacy.source import connect, require_tables
from truelabel_db.schema.mapping import BY_TARGET
from truelabel_db.sqlite_sql import quote_ident, quote_literal

MODES = ("app", "best")


def _cols(table: str, fields: Sequence[str], alias: str = "") -> str:
    mapped = BY_TARGET[table]
    prefix = quote_ident(alias) + "." if alias else ""
    return ", ".join(prefix + quote_ident(mapped.column_for_target(f).legacy) for f in fields)


def _col(table: str, field: str, alias: str = "") -> str:
    return _cols(table, (field,), alias)


def _table(table: str) -> str:
    return quote_ident(BY_TARGET[table].legacy)


def _in_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(quote_literal(v) for v in values) + ")"


def _priority_rank(expr: str) -> str:
    whens = " ".join(f"WHEN {quote_literal(p)} THEN {i}" for i, p in enumerate(PRIORITY_ORDER))
    return f"CASE {expr} {whens} ELSE -1 END"


def _hours(seconds_total: float, count: int) -> float | None:
    """numeric(10,2) rounding (half away from zero), as the PostgreSQL view computes it."""
    if not count:
        return None
    mean = Decimal(repr(seconds_total / count / 3600))
    return float(mean.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


_SCAN_FIELDS = ("id", "qr_code", "ip_address", "user_agent", "accessed_at")
_INSERT_SCAN = (f"INSERT INTO {_table('qr_code_access')} ({_cols('qr_code_access', _SCAN_FIELDS)}) "
                "VALUES (?, ?, ?, ?, ?)")
# The single write (a caller found the product in its cache) still records only a known code.
_INSERT_KNOWN_SCAN = (f"INSERT INTO {_table('qr_code_access')} ({_cols('qr_code_access', _SCAN_FIELDS)}) "
                      f"SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM {_table('products')} "
                      f"WHERE {_col('products', 'qr_code')} = ?)")


def _only(record: Record | None, fields: Sequence[str]) -> Record | None:
    return None if record is None else {f: record[f] for f in fields}


def _scan_row(scan: Scan) -> tuple[Any, ...]:
    return (scan.id or str(uuid.uuid4()), scan.qr_code, scan.ip_address, scan.user_agent,
            to_epoch_ms(scan.moment()))


@contextmanager
def _write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (the write lock up front, so the busy timeout applies), COMMIT or ROLLBACK."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class LegacyHotPaths:
    """Hot paths over one legacy file; one connection per thread (SQLite's own rule)."""

    kind = "sqlite"

    def __init__(self, path: Path, mode: str = "best", *, writable: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.path, self.mode, self.writable = path, mode, writable
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # fail now, with our message, if the file is not usable or not True Label's
        require_tables(read_schema(self._conn()), list(SERVED_TABLES), path)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, read_only=not self.writable)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn().execute(query, params).fetchall()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()

    # -- the product list and detail -------------------------------------------------------
    def product_list(self, limit: int = 1000) -> list[Record]:
        rows = self._rows(
            f"SELECT {_cols('products', PRODUCT_FIELDS)} FROM {_table('products')} "
            f"ORDER BY {_col('products', 'created_at')} DESC, {_col('products', 'id')} DESC LIMIT ?",
            (limit,))
        return self._detailed([legacy_record("products", PRODUCT_FIELDS, r) for r in rows])

    def product(self, product_id: str) -> Record | None:
        rows = self._rows(f"SELECT {_cols('products', PRODUCT_FIELDS)} FROM {_table('products')} "
                          f"WHERE {_col('products', 'id')} = ?", (product_id,))
        detailed = self._detailed([legacy_record("products", PRODUCT_FIELDS, r) for r in rows])
        return detailed[0] if detailed else None

    def _detailed(self, products: list[Record]) -> list[Record]:
        if self.mode == "app":
            validations = [v for p in products for v in self._where("validations", VALIDATION_FIELDS, "product_id", [p["id"]])]
            brands = [b for uid in [p["user_id"] for p in products]
                      for b in self._where("users", BRAND_FIELDS, "id", [uid])]
        else:
            ids = [p["id"] for p in products]
            validations = self._where("validations", VALIDATION_FIELDS, "product_id", ids)
            brands = self._where("users", BRAND_FIELDS, "id", sorted({p["user_id"] for p in products}))
        return with_details(products, validations, brands)

    def _where(self, table: str, fields: Sequence[str], key: str, values: list[str]) -> list[Record]:
        """Rows whose ``key`` is one of ``values``: one parameter however many values."""
        if len(values) == 1:
            condition, param = f"{_col(table, key)} = ?", values[0]
        else:
            condition, param = f"{_col(table, key)} IN (SELECT value FROM json_each(?))", json.dumps(values)
        rows = self._rows(f"SELECT {_cols(table, fields)} FROM {_table(table)} WHERE {condition}", (param,))
        return [legacy_record(table, fields, r) for r in rows]

    # -- the scan write path ---------------------------------------------------------------
    def scan(self, scan: Scan) -> Record | None:
        """The product, and the scan recorded only if there is one (as on PostgreSQL)."""
        product = self.product_by_qr(scan.qr_code)
        if product is not None:
            self.record_scan(scan)
        return product

    def product_by_qr(self, qr_code: str) -> Record | None:
        rows = self._rows(f"SELECT {_cols('products', SCANNED_FIELDS)} FROM {_table('products')} "
                          f"WHERE {_col('products', 'qr_code')} = ?", (qr_code,))
        return legacy_record("products", SCANNED_FIELDS, rows[0]) if rows else None

    def record_scan(self, scan: Scan) -> None:
        self._conn().execute(_INSERT_KNOWN_SCAN, (*_scan_row(scan), scan.qr_code))

    def _products_of(self, scans: Sequence[Scan], fields: Sequence[str]) -> dict[str, Record]:
        """The products the scans' codes name, by code (a code no product carries is absent)."""
        codes = sorted({s.qr_code for s in scans})
        return {p["qr_code"]: p for p in self._where("products", tuple(dict.fromkeys((*fields, "qr_code"))), "qr_code", codes)}

    def scan_many(self, scans: Sequence[Scan]) -> list[Record | None]:
        """One write transaction for the group: one journal sync instead of one per scan. The
        products are read inside it, so a scan is recorded exactly when its product is answered."""
        conn = self._conn()
        with _write_transaction(conn):
            by_code = self._products_of(scans, SCANNED_FIELDS)
            conn.executemany(_INSERT_SCAN, [_scan_row(s) for s in scans if s.qr_code in by_code])
        return [_only(by_code.get(s.qr_code), SCANNED_FIELDS) for s in scans]

    def record_scans(self, scans: Sequence[Scan]) -> Ingested:
        """A row whose id is already stored is skipped (only that conflict: nothing else is
        ignored); a row whose code names no product is not recorded, and its position returned."""
        conn = self._conn()
        with _write_transaction(conn):
            by_code = self._products_of(scans, ("user_id",))
            before = conn.total_changes
            conn.executemany(_INSERT_SCAN + f" ON CONFLICT ({_col('qr_code_access', 'id')}) DO NOTHING",
                             [_scan_row(s) for s in scans if s.qr_code in by_code])
            inserted = conn.total_changes - before
        unknown = tuple(n for n, s in enumerate(scans) if s.qr_code not in by_code)
        return Ingested(inserted, tuple(sorted({p["user_id"] for p in by_code.values()})), unknown)

    # -- QR scan analytics -----------------------------------------------------------------
    def qr_analytics(self, brand_id: str, days: int = 30, now: datetime | None = None) -> Record:
        start, end = window(days, now)
        bounds = (to_epoch_ms(start), to_epoch_ms(end))
        if self.mode == "app":
            per_day, top = self._analytics_app(brand_id, bounds)
        else:
            per_day, top = self._analytics_best(brand_id, bounds)
        return analytics_answer(brand_id, start, end, per_day, top)

    def _analytics_best(self, brand_id: str, bounds: tuple[int, int]) -> tuple[dict[str, int], list[Record]]:
        scans = (f"FROM {_table('qr_code_access')} q JOIN {_table('products')} p "
                 f"ON {_col('products', 'qr_code', 'p')} = {_col('qr_code_access', 'qr_code', 'q')} "
                 f"WHERE {_col('products', 'user_id', 'p')} = ? "
                 f"AND {_col('qr_code_access', 'accessed_at', 'q')} >= ? "
                 f"AND {_col('qr_code_access', 'accessed_at', 'q')} < ?")
        at = _col("qr_code_access", "accessed_at", "q")
        params = (brand_id, *bounds)
        per_day = dict(self._rows(f"SELECT date({at} / 1000, 'unixepoch') AS day, count(*) {scans} "
                                  "GROUP BY day", params))
        top = self._rows(f"SELECT {_col('products', 'id', 'p')}, {_col('products', 'name', 'p')}, "
                         f"count(*) AS n {scans} GROUP BY 1, 2 ORDER BY n DESC, 1 LIMIT 10", params)
        return per_day, [{"product_id": r[0], "name": r[1], "scans": r[2]} for r in top]

    def _analytics_app(self, brand_id: str, bounds: tuple[int, int]) -> tuple[dict[str, int], list[Record]]:
        per_day: Counter[str] = Counter()
        top = []
        for product in self._where("products", ("id", "name", "qr_code"), "user_id", [brand_id]):
            if product["qr_code"] is None:
                continue
            stamps = self._rows(
                f"SELECT {_col('qr_code_access', 'accessed_at')} FROM {_table('qr_code_access')} "
                f"WHERE {_col('qr_code_access', 'qr_code')} = ? AND {_col('qr_code_access', 'accessed_at')} >= ? "
                f"AND {_col('qr_code_access', 'accessed_at')} < ?", (product["qr_code"], *bounds))
            per_day.update(iso_ms(datetime.fromtimestamp(s / 1000, timezone.utc))[:10] for (s,) in stamps)
            if stamps:
                top.append({"product_id": product["id"], "name": product["name"], "scans": len(stamps)})
        top.sort(key=lambda r: (-r["scans"], r["product_id"]))
        return dict(per_day), top[:10]

    # -- a brand's dashboard ---------------------------------------------------------------
    def brand_dashboard(self, brand_id: str) -> Record | None:
        role = self._rows(f"SELECT {_col('users', 'role')} FROM {_table('users')} "
                          f"WHERE {_col('users', 'id')} = ?", (brand_id,))
        if not role or role[0][0] != "BRAND":
            return None
        figures = self._dashboard_app(brand_id) if self.mode == "app" else self._dashboard_best(brand_id)
        return dashboard_answer(brand_id, figures)

    def _dashboard_best(self, brand_id: str) -> dict[str, Any]:
        p_user, p_status = _col("products", "user_id"), _col("products", "status")
        total, validated = self._rows(
            f"SELECT count(*), count(*) FILTER (WHERE {p_status} = 'VALIDATED') "
            f"FROM {_table('products')} WHERE {p_user} = ?", (brand_id,))[0]
        v_created, v_updated = _col("validations", "created_at", "v"), _col("validations", "updated_at", "v")
        n_val, seconds = self._rows(
            f"SELECT count(*), sum(({v_updated} - {v_created}) / 1000.0) FROM {_table('validations')} v "
            f"JOIN {_table('products')} p ON {_col('products', 'id', 'p')} = {_col('validations', 'product_id', 'v')} "
            f"WHERE {_col('products', 'user_id', 'p')} = ?", (brand_id,))[0]
        at = _col("qr_code_access", "accessed_at", "q")
        n_scans, last = self._rows(
            f"SELECT count(*), max({at}) FROM {_table('qr_code_access')} q JOIN {_table('products')} p "
            f"ON {_col('products', 'qr_code', 'p')} = {_col('qr_code_access', 'qr_code', 'q')} "
            f"WHERE {_col('products', 'user_id', 'p')} = ?", (brand_id,))[0]
        return self._figures(total, validated, n_val, seconds or 0.0, n_scans, last)

    def _dashboard_app(self, brand_id: str) -> dict[str, Any]:
        products = self._where("products", ("id", "status", "qr_code"), "user_id", [brand_id])
        n_val, seconds, n_scans, last = 0, 0.0, 0, None
        for p in products:
            for created, updated in self._rows(
                    f"SELECT {_cols('validations', ('created_at', 'updated_at'))} FROM {_table('validations')} "
                    f"WHERE {_col('validations', 'product_id')} = ?", (p["id"],)):
                n_val, seconds = n_val + 1, seconds + (updated - created) / 1000.0
            if p["qr_code"] is not None:
                count, newest = self._rows(
                    f"SELECT count(*), max({_col('qr_code_access', 'accessed_at')}) FROM {_table('qr_code_access')} "
                    f"WHERE {_col('qr_code_access', 'qr_code')} = ?", (p["qr_code"],))[0]
                n_scans += count
                last = newest if last is None or (newest is not None and newest > last) else last
        validated = sum(1 for p in products if p["status"] == "VALIDATED")
        return self._figures(len(products), validated, n_val, seconds, n_scans, last)

    @staticmethod
    def _figures(total: int, validated: int, n_val: int, seconds: float, n_scans: int,
                 last: int | None) -> dict[str, Any]:
        return {"total_products": total, "validated_products": validated, "total_validations": n_val,
                "avg_validation_hours": _hours(seconds, n_val), "total_scans": n_scans,
                "last_scan_at": iso_ms(datetime.fromtimestamp(last / 1000, timezone.utc)) if last else None}

    # -- the validation queue --------------------------------------------------------------
    def validation_queue(self, limit: int = 100) -> list[Record]:
        q = "q"
        rows = self._rows(
            f"SELECT {_cols('validation_queue', QUEUE_FIELDS, q)}, {_col('products', 'name', 'p')} "
            f"FROM {_table('validation_queue')} q JOIN {_table('products')} p "
            f"ON {_col('products', 'id', 'p')} = {_col('validation_queue', 'product_id', q)} "
            f"WHERE {_col('validation_queue', 'status', q)} IN {_in_list(OPEN_QUEUE_STATUSES)} "
            f"ORDER BY {_priority_rank(_col('validation_queue', 'priority', q))} DESC, "
            f"{_col('validation_queue', 'created_at', q)}, {_col('validation_queue', 'id', q)} LIMIT ?", (limit,))
        return [{**legacy_record("validation_queue", QUEUE_FIELDS, r[:-1]), "product_name": r[-1]} for r in rows]

    # -- search ----------------------------------------------------------------------------
    def search(self, text: str, limit: int = 20) -> list[Record]:
        """Every word in the name, brand or description (SQLite has no stemming or fuzziness)."""
        words = [w for w in text.split() if w]
        if not words:
            return []
        fields = [_col("products", f) for f in ("name", "brand", "description")]
        one = "(" + " OR ".join(f"instr(lower({f}), lower(?)) > 0" for f in fields) + ")"
        params = [w for w in words for _ in fields]
        rows = self._rows(f"SELECT {_cols('products', SEARCH_FIELDS)} FROM {_table('products')} "
                          f"WHERE {' AND '.join([one] * len(words))} "
                          f"ORDER BY {_col('products', 'name')}, {_col('products', 'id')} LIMIT ?",
                          (*params, limit))
        return [legacy_record("products", SEARCH_FIELDS, r) for r in rows]

    # -- ids for warming and load ----------------------------------------------------------
    def brands(self, limit: int = 1000) -> list[str]:
        rows = self._rows(f"SELECT {_col('users', 'id')} FROM {_table('users')} "
                          f"WHERE {_col('users', 'role')} = 'BRAND' ORDER BY 1 LIMIT ?", (limit,))
        return [r[0] for r in rows]

    def popular_products(self, limit: int = 100) -> list[str]:
        code = _col("qr_code_access", "qr_code")
        rows = self._rows(
            f"SELECT {_col('products', 'id', 'p')} FROM (SELECT {code} AS code, count(*) AS n "
            f"FROM {_table('qr_code_access')} GROUP BY {code}) s JOIN {_table('products')} p "
            f"ON {_col('products', 'qr_code', 'p')} = s.code ORDER BY s.n DESC, 1 LIMIT ?", (limit,))
        return [r[0] for r in rows]
