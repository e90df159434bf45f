"""Between tables: orphan foreign keys, indexes SQLite never made, and the app's N+1 shapes."""

from __future__ import annotations

import sqlite3

from truelabel_db.analyze.report import MissingIndex, OrphanReport, QueryShape
from truelabel_db.legacy.schema import LegacyTable
from truelabel_db.sqlite_sql import quote_ident

# The filters of the plan's hot paths (§1.2) and the columns they need an index on.
HOT_FILTERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("qr_code_accesses", ("qrCode", "accessedAt"), "QR scan analytics per product over time"),
    ("analytics_events", ("timestamp",), "analytics aggregation by period"),
    ("analytics_events", ("eventType",), "analytics aggregation by event type"),
    ("analytics_events", ("userId",), "a user's events"),
    ("validation_queue", ("status", "priority"), "the validation queue by priority"),
    ("validations", ("productId", "status"), "a product's validations by status"),
    ("products", ("userId", "status"), "a brand's products by status"),
    ("products", ("status",), "product listing by status"),
    ("reports", ("productId", "laboratoryId"), "a product's reports per laboratory"),
)


def orphans(conn: sqlite3.Connection, schema: dict[str, LegacyTable],
            sample_limit: int) -> list[OrphanReport]:
    found = []
    for table in schema.values():
        for fk in table.foreign_keys:
            if fk.parent_table not in schema:
                continue
            child, parent = quote_ident(table.name), quote_ident(fk.parent_table)
            col, pcol = quote_ident(fk.column), quote_ident(fk.parent_column)
            where = (f"FROM {child} c WHERE c.{col} IS NOT NULL AND NOT EXISTS "
                     f"(SELECT 1 FROM {parent} p WHERE p.{pcol} = c.{col})")
            count = conn.execute(f"SELECT count(*) {where}").fetchone()[0]
            samples = [str(r[0]) for r in conn.execute(
                f"SELECT c.{quote_ident(table.primary_key)} {where} LIMIT ?", (sample_limit,))]
            found.append(OrphanReport(table.name, fk.column, fk.parent_table, int(count), samples))
    return found


def missing_indexes(schema: dict[str, LegacyTable]) -> list[MissingIndex]:
    missing = []
    for table in schema.values():
        for fk in table.foreign_keys:
            if not table.is_indexed(fk.column):
                missing.append(MissingIndex(table.name, (fk.column,),
                                            f"foreign key to {fk.parent_table}: every join and cascade scans the table"))
    for name, columns, why in HOT_FILTERS:
        hot = schema.get(name)
        if hot is None or not all(c in {col.name for col in hot.columns} for c in columns):
            continue
        covered = any(ix.columns[: len(columns)] == columns for ix in table.indexes)
        if not covered and not (len(columns) == 1 and table.is_indexed(columns[0])):
            missing.append(MissingIndex(name, columns, why))
    return missing


def query_shapes(rows: dict[str, int]) -> list[QueryShape]:
    """The plan's heavy operations as the app runs them today, with their cost at this size."""
    products = rows.get("products", 0)
    listed = min(1000, products)
    return [
        QueryShape("product list with validations and brand",
                   "1 query for the products, then 1 per product for its validations and 1 for its brand",
                   1 + 2 * listed, "one query with joins (or two with IN lists); index validations(productId)"),
        QueryShape("QR scan analytics for a brand",
                   "scans filtered by qrCode and time with no index: a full scan of qr_code_accesses",
                   1 + min(products, 1000), "index (qr_code, accessed_at), monthly partitions, BRIN on time"),
        QueryShape("brand dashboard", "counts recomputed per request over products, validations and scans",
                   4, "the brand_dashboard_stats materialized view, refreshed concurrently"),
        QueryShape("validation queue by priority", "status and priority filtered with no composite index",
                   1, "index on (priority, created_at) for open statuses"),
    ]
