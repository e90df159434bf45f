"""The optimized schema: versioned, idempotent, complete, and graceful without an extension."""

from __future__ import annotations

import psycopg
import pytest

from truelabel_db.schema import ddl as schema
from truelabel_db.schema.ddl import apply_schema, plan_sql, split_statements
from truelabel_db.schema.mapping import TABLES


def test_the_schema_applies_twice_and_records_its_versions(pg: psycopg.Connection) -> None:
    first = apply_schema(pg)
    second = apply_schema(pg)
    assert first.applied == second.applied
    versions = {r[0] for r in pg.execute("SELECT version FROM truelabel_meta.schema_migrations")}
    assert {"pre_002_types_and_tables", "post_001_indexes", "post_002_dashboard"} <= versions


def test_every_mapped_column_exists_with_its_declared_type(pg: psycopg.Connection) -> None:
    apply_schema(pg)
    for table in TABLES:
        types = dict(pg.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped", (table.target,)).fetchall())
        for col in table.columns:
            assert types[col.target] == col.transform.pg_type.replace("timestamptz", "timestamp with time zone"), \
                f"{table.target}.{col.target}"


def test_partitions_generated_columns_and_the_dashboard(pg: psycopg.Connection) -> None:
    apply_schema(pg)
    kinds = dict(pg.execute("SELECT relname, relkind FROM pg_class WHERE relname IN "
                            "('qr_code_access', 'analytics_events', 'brand_dashboard_stats')").fetchall())
    assert kinds == {"qr_code_access": "p", "analytics_events": "p", "brand_dashboard_stats": "m"}
    assert pg.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'qr_code_access'::regclass").fetchone()[0] >= 1
    generated = {r[0] for r in pg.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'products'::regclass "
                                          "AND attgenerated = 's'")}
    assert generated == {"validation_score", "search_vector"}
    methods = {r[0] for r in pg.execute("SELECT am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                        "JOIN pg_am am ON am.oid = c.relam")}
    assert {"brin", "gin", "btree"} <= methods
    pg.execute("SELECT truelabel_meta.ensure_month_partitions('analytics_events', '2024-01-15', '2024-03-02')")
    names = {r[0] for r in pg.execute("SELECT relname FROM pg_class WHERE relname LIKE 'analytics_events_2024_%' "
                                      "AND relkind = 'r'")}
    assert names == {"analytics_events_2024_01", "analytics_events_2024_02", "analytics_events_2024_03"}


def test_a_missing_extension_is_reported_and_what_needs_it_left_out(pg: psycopg.Connection,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "EXTENSIONS", ("uuid-ossp", "no_such_extension"))
    report = apply_schema(pg)
    assert report.extensions == {"uuid-ossp": True, "no_such_extension": False}
    assert "extension no_such_extension" in report.skipped
    assert report.skipped["post_003_fuzzy_search"] == "needs extension pg_trgm"
    assert pg.execute("SELECT to_regclass('brand_dashboard_stats') IS NOT NULL").fetchone() == (True,)


def test_the_plan_can_be_printed_without_a_database() -> None:
    text = plan_sql()
    assert "CREATE TABLE IF NOT EXISTS products" in text and "PRIMARY KEY" in text


def test_statements_split_on_semicolons_outside_dollar_quotes() -> None:
    text = "CREATE TABLE a (x int);\nDO $$ BEGIN\n  PERFORM 1;\nEND $$;\nSELECT 2;"
    assert split_statements(text) == ["CREATE TABLE a (x int);", "DO $$ BEGIN\n  PERFORM 1;\nEND $$;", "SELECT 2;"]


def test_enum_labels_are_declared_once_in_the_mapping_and_the_sql_is_generated(pg: psycopg.Connection) -> None:
    from importlib import resources

    from truelabel_db.schema.mapping import ENUMS

    folder = resources.files("truelabel_db.schema").joinpath("sql")
    assert not any("AS ENUM" in f.read_text("utf-8") for f in folder.iterdir() if f.name.endswith(".sql"))
    schema.apply_schema(pg, phases=("pre",))
    for enum in ENUMS:
        labels = [r[0] for r in pg.execute(psycopg.sql.SQL("SELECT unnest(enum_range(NULL::{}))::text").format(
            psycopg.sql.Identifier(enum.pg_type)))]
        assert labels == list(enum.values)
