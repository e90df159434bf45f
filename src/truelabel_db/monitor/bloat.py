"""Bloat: the space tables and b-tree indexes hold beyond what their live rows need.

Not ``pg_total_relation_size - pg_relation_size`` (the plan's view: that is indexes, TOAST and
maps, not bloat). The estimate is the statistics-based one of check_postgres, PgHero and pgwatch
(ioguix's queries, in ``sql/``): cheap, catalog-only, as good as the last ANALYZE. Where it does
not apply — columns without statistics, as on the two time-series tables whose wide columns
have ``STATISTICS 0`` — and the ``pgstattuple`` extension is installed, ``pgstattuple_approx``
measures the table instead (it reads only pages the visibility map does not vouch for); the
``method`` column says which figure a row shows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

import psycopg

from truelabel_db.postgres import one

MIN_BYTES = 1 << 20  # below 1 MB bloat is noise, and the estimate's granularity is a page


@dataclass
class Bloat:
    kind: str  # table | index
    schema: str
    table: str
    index: str | None
    real_bytes: int
    bloat_bytes: int
    bloat_pct: float
    method: str  # estimate | pgstattuple_approx | not_applicable

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _query(name: str) -> str:
    return resources.files("truelabel_db.monitor").joinpath("sql", name).read_text("utf-8")


def has_pgstattuple(conn: psycopg.Connection) -> bool:
    return bool(one(conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgstattuple')"))[0])


def table_bloat(conn: psycopg.Connection, *, measure_when_na: bool = True) -> list[Bloat]:
    """Every table's estimate; a table the estimate cannot cover is measured when possible."""
    can_measure = measure_when_na and has_pgstattuple(conn)
    out = []
    for schema, table, oid, real, bloat, pct, _ff, _tuples, is_na in conn.execute(_query("table_bloat.sql")):
        if not is_na:
            out.append(Bloat("table", schema, table, None, int(real), int(bloat), round(pct, 1), "estimate"))
        elif can_measure:
            out.append(measured_table_bloat(conn, oid, schema, table))
        else:
            out.append(Bloat("table", schema, table, None, int(real), 0, 0.0, "not_applicable"))
    return out


def measured_table_bloat(conn: psycopg.Connection, oid: int, schema: str, table: str) -> Bloat:
    """Dead tuples and free space by ``pgstattuple_approx``, as a share of the table's size."""
    size, dead, free = one(conn.execute(
        "SELECT table_len, dead_tuple_len, approx_free_space FROM pgstattuple_approx(%s::oid)",
        (oid,)))
    wasted = int(dead + free)
    return Bloat("table", schema, table, None, int(size), wasted,
                 round(100 * wasted / size, 1) if size else 0.0, "pgstattuple_approx")


def index_bloat(conn: psycopg.Connection) -> list[Bloat]:
    return [Bloat("index", schema, table, index, int(real), int(bloat), round(pct, 1),
                  "not_applicable" if is_na else "estimate")
            for schema, table, index, _oid, real, bloat, pct, _ff, _tuples, is_na
            in conn.execute(_query("index_bloat.sql"))]


def bloat_report(conn: psycopg.Connection, *, min_bytes: int = MIN_BYTES,
                 measure_when_na: bool = True) -> list[Bloat]:
    """Tables and indexes whose estimated bloat is at least ``min_bytes``, largest first, and
    those of that size the estimate could not cover (so that a gap is seen, not hidden)."""
    rows = table_bloat(conn, measure_when_na=measure_when_na) + index_bloat(conn)
    shown = [r for r in rows if r.bloat_bytes >= min_bytes
             or (r.method == "not_applicable" and r.real_bytes >= min_bytes)]
    return sorted(shown, key=lambda r: (r.method == "not_applicable", -r.bloat_bytes))


def bloat_of(conn: psycopg.Connection, table: str, schema: str = "public") -> Bloat:
    """The estimate for one table (all rows, whatever their size)."""
    for row in table_bloat(conn, measure_when_na=False):
        if (row.schema, row.table) == (schema, table):
            return row
    raise LookupError(f"no table {schema}.{table}")
