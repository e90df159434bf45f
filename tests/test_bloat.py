"""The bloat estimate against a ground truth: a known fraction of rows deleted, measured by
pgstattuple, the exact tuple-level scan the estimate stands in for."""

from __future__ import annotations

import psycopg

from truelabel_db.monitor.bloat import bloat_of, bloat_report, index_bloat, table_bloat

TOLERANCE_POINTS = 10.0  # estimate vs pgstattuple's free space, in percentage points
GAIN_TOLERANCE_POINTS = 3.0  # rise of the estimate vs the deleted share of what it called live


def _probe(conn: psycopg.Connection) -> None:
    conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
    conn.execute("CREATE TABLE probe (id bigint PRIMARY KEY, code text NOT NULL, at timestamptz, n integer)")
    conn.execute("INSERT INTO probe SELECT g, md5(g::text), now(), g % 100 FROM generate_series(1, 100000) g")
    conn.execute("VACUUM ANALYZE probe")


def _truth(conn: psycopg.Connection) -> float:
    return float(conn.execute("SELECT free_percent + dead_tuple_percent FROM pgstattuple('probe')").fetchone()[0])


def test_the_bloat_estimate_tracks_a_known_deleted_fraction(pg: psycopg.Connection) -> None:
    _probe(pg)
    baseline = bloat_of(pg, "probe").bloat_pct
    index_before = {b.index: b.bloat_pct for b in index_bloat(pg) if b.table == "probe"}

    pg.execute("DELETE FROM probe WHERE id % 10 < 3")  # 30%, spread over every page
    pg.execute("VACUUM ANALYZE probe")
    estimate = bloat_of(pg, "probe")
    truth = _truth(pg)

    assert estimate.method == "estimate"
    assert abs(truth - 30.0) < 3.0  # the ground truth is what we made
    assert abs(estimate.bloat_pct - truth) <= TOLERANCE_POINTS
    # what the estimate called live before, 30% of it is now free space
    expected = baseline + 0.30 * (100 - baseline)
    assert abs(estimate.bloat_pct - expected) <= GAIN_TOLERANCE_POINTS
    index_after = {b.index: b.bloat_pct for b in index_bloat(pg) if b.table == "probe"}
    assert index_after["probe_pkey"] - index_before["probe_pkey"] > 20


def test_the_report_is_not_the_naive_size_difference(pg: psycopg.Connection) -> None:
    _probe(pg)
    pg.execute("DELETE FROM probe WHERE id % 2 = 0")
    pg.execute("VACUUM ANALYZE probe")
    naive = pg.execute("SELECT pg_total_relation_size('probe') - pg_relation_size('probe')").fetchone()[0]
    rows = {(b.kind, b.index): b for b in bloat_report(pg, min_bytes=0) if b.table == "probe"}

    # the plan's "bloat" is the indexes' size; the real figure is the heap's free half
    assert rows[("table", None)].bloat_bytes != naive
    assert 40 <= rows[("table", None)].bloat_pct <= 60


def test_a_table_without_column_statistics_is_measured_by_pgstattuple_instead(pg: psycopg.Connection) -> None:
    _probe(pg)
    pg.execute("ALTER TABLE probe ALTER COLUMN code SET STATISTICS 0")  # as the time-series tables do
    pg.execute("DELETE FROM pg_statistic WHERE starelid = 'probe'::regclass")
    pg.execute("DELETE FROM probe WHERE id % 10 < 4")
    pg.execute("VACUUM ANALYZE probe")

    measured = next(b for b in table_bloat(pg) if b.table == "probe")
    unmeasured = next(b for b in table_bloat(pg, measure_when_na=False) if b.table == "probe")

    assert measured.method == "pgstattuple_approx"
    assert abs(measured.bloat_pct - _truth(pg)) <= TOLERANCE_POINTS
    assert unmeasured.method == "not_applicable" and unmeasured.bloat_bytes == 0
    reported = [b for b in bloat_report(pg, measure_when_na=False) if b.table == "probe" and b.kind == "table"]
    assert [b.method for b in reported] == ["not_applicable"]  # a gap is shown, not hidden
