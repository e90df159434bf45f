"""The optimized schema's hot-path SQL, composed once for the blocking and the async paths.

``PostgresHotPaths`` (a blocking pool, for jobs, the cache's loaders and scripts) and
``AsyncPostgresHotPaths`` (the service's request path) send exactly these statements and shape
the rows with exactly these functions, so the two can never drift apart. Each builder returns a
``Statement``: the composed SQL and its parameters, nothing executed.

Every statement is one round trip and carries its values as parameters, so the same text runs
through PgBouncer in transaction mode (where the connection that prepared a statement is not
the one that runs the next): the pools there switch server-side preparation off, nothing else
changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from truelabel_db.hotpaths.base import (
    BRAND_FIELDS,
    DASHBOARD_FIGURES,
    OPEN_QUEUE_STATUSES,
    PRODUCT_FIELDS,
    QUEUE_FIELDS,
    SCANNED_FIELDS,
    SEARCH_FIELDS,
    VALIDATION_FIELDS,
    Scan,
    dashboard_answer,
)
from truelabel_db.hotpaths.shape import Record, json_ready, target_record
from truelabel_db.schema.mapping import BY_TARGET
from truelabel_db.schema.transforms import Timestamp

Params = Sequence[Any] | Mapping[str, Any]


@dataclass(frozen=True)
class Statement:
    query: sql.SQL | sql.Composed
    params: Params = ()


def _cols(fields: Sequence[str], alias: str = "") -> sql.Composable:
    if alias:
        return sql.SQL(", ").join(sql.Identifier(alias, f) for f in fields)
    return sql.SQL(", ").join(sql.Identifier(f) for f in fields)


def _json_value(table: str, field: str, alias: str) -> sql.Composable:
    column = sql.Identifier(alias, field)
    if isinstance(BY_TARGET[table].column_for_target(field).transform, Timestamp):
        return sql.SQL("""to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')""").format(column)
    return column


def _json_object(table: str, fields: Sequence[str], alias: str,
                 extra: Sequence[tuple[str, sql.Composable]] = ()) -> sql.Composable:
    pairs = [(f, _json_value(table, f, alias)) for f in fields] + list(extra)
    return sql.SQL("json_build_object({})").format(
        sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(k), v) for k, v in pairs))


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


HAS_TRIGRAM = Statement(sql.SQL("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
SYNCHRONOUS_COMMIT = Statement(sql.SQL("SELECT current_setting('synchronous_commit')"))


# -- the product list and detail: one JSON document built by the server ----------------------
def detailed(page: sql.Composable, params: Params) -> Statement:
    """The page with its relations as one JSON text (one row, one column).

    Shaping 3,000 rows value by value in Python cost more than the queries; the server builds
    the same shape (``shape.iso_ms`` timestamps, ids as text) in one statement. Relations are
    fetched by ``= ANY(ARRAY(page ids))``: index lookups, not a hash join over every validation.
    """
    query = sql.SQL(
        "WITH page AS ({page}), "
        "vals AS (SELECT v.product_id, json_agg({validation} ORDER BY v.created_at, v.id) AS list "
        "FROM validations v WHERE v.product_id = ANY(ARRAY(SELECT id FROM page)) GROUP BY v.product_id), "
        "owners AS (SELECT u.id, {brand} AS obj FROM users u WHERE u.id = ANY(ARRAY(SELECT user_id FROM page))) "
        "SELECT coalesce(json_agg({product} ORDER BY p.created_at DESC, p.id DESC), '[]')::text "
        "FROM page p LEFT JOIN vals ON vals.product_id = p.id LEFT JOIN owners ON owners.id = p.user_id"
    ).format(page=page, product=_json_object("products", PRODUCT_FIELDS, "p", [
        ("validations", sql.SQL("coalesce(vals.list, '[]')")), ("brand_user", sql.SQL("owners.obj"))]),
        validation=_json_object("validations", [f for f in VALIDATION_FIELDS if f != "product_id"], "v"),
        brand=_json_object("users", BRAND_FIELDS, "u"))
    return Statement(query, params)


def product_list(limit: int) -> Statement:
    return detailed(sql.SQL("SELECT * FROM products ORDER BY created_at DESC, id DESC LIMIT %s"), (limit,))


def product(product_id: str) -> Statement:
    return detailed(sql.SQL("SELECT * FROM products WHERE id = %s"), (product_id,))


# -- scans -----------------------------------------------------------------------------------
# Only scans of a code some product carries are recorded: a scan of anything else says nothing
# about a product, and recording it would let anyone fill the table with made-up codes.
_KNOWN = sql.SQL("EXISTS (SELECT 1 FROM products p WHERE p.qr_code = input.qr_code)")
_INSERT_SCANS = sql.SQL(
    "INSERT INTO qr_code_access (id, qr_code, ip_address, user_agent, accessed_at) "
    "SELECT coalesce(id, gen_random_uuid()), qr_code, ip_address, user_agent, accessed_at FROM input "
    "WHERE {}").format(_KNOWN)
_INPUT = sql.SQL(
    "input AS (SELECT * FROM unnest(%(ids)s::uuid[], %(codes)s::text[], %(ips)s::inet[], %(agents)s::text[], "
    "%(times)s::timestamptz[]) WITH ORDINALITY AS i(id, qr_code, ip_address, user_agent, accessed_at, n))")


def _arrays(scans: Sequence[Scan]) -> dict[str, list[Any]]:
    return {"ids": [s.id for s in scans], "codes": [s.qr_code for s in scans],
            "ips": [s.ip_address for s in scans], "agents": [s.user_agent for s in scans],
            "times": [s.moment() for s in scans]}


def scan(one: Scan) -> Statement:
    """Read the scanned product and record the access, only if there is one, in one statement."""
    return Statement(sql.SQL(
        "WITH found AS (SELECT {} FROM products WHERE qr_code = %s), "
        "recorded AS (INSERT INTO qr_code_access (qr_code, ip_address, user_agent, accessed_at) "
        "SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM found)) SELECT * FROM found").format(
        _cols(SCANNED_FIELDS)), (one.qr_code, one.qr_code, one.ip_address, one.user_agent, one.moment()))


def scan_many(scans: Sequence[Scan]) -> Statement:
    """Every scan of a group commit recorded, and the product of each code, in one statement.

    One multi-row INSERT from arrays (one parameter per column, whatever the batch size) is one
    transaction and one WAL flush for the whole group. Rows come back as (ordinal, fields...)
    for the scans whose code names a product; the others are not recorded.
    """
    return Statement(sql.SQL(
        "WITH {input}, recorded AS ({insert}) "
        "SELECT i.n, {fields} FROM input i JOIN products p ON p.qr_code = i.qr_code"
    ).format(input=_INPUT, insert=_INSERT_SCANS, fields=_cols(SCANNED_FIELDS, "p")), _arrays(scans))


def record_scans(scans: Sequence[Scan]) -> Statement:
    """Batch ingestion: rows with a client id already stored (a retried batch) are skipped, and
    rows whose code names no product are not recorded.

    Returns one row: how many were inserted, the brands whose products were scanned (for the
    cache's analytics invalidation), and the ordinals of the rows with an unknown code.
    """
    return Statement(sql.SQL(
        "WITH {input}, recorded AS ({insert} ON CONFLICT DO NOTHING RETURNING qr_code) "
        "SELECT (SELECT count(*) FROM recorded), "
        "ARRAY(SELECT DISTINCT p.user_id::text FROM products p WHERE p.qr_code IN (SELECT qr_code FROM recorded)), "
        "ARRAY(SELECT input.n FROM input WHERE NOT {known} ORDER BY input.n)"
    ).format(input=_INPUT, insert=_INSERT_SCANS, known=_KNOWN), _arrays(scans))


def product_by_qr(qr_code: str) -> Statement:
    return Statement(sql.SQL("SELECT {} FROM products WHERE qr_code = %s").format(_cols(SCANNED_FIELDS)), (qr_code,))


def record_scan(one: Scan) -> Statement:
    """The write alone (a caller found the product in its cache); still only for a known code."""
    return Statement(sql.SQL("INSERT INTO qr_code_access (qr_code, ip_address, user_agent, accessed_at) "
                             "SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM products WHERE qr_code = %s)"),
                     (one.qr_code, one.ip_address, one.user_agent, one.moment(), one.qr_code))


def scanned(row: Sequence[Any]) -> Record:
    return target_record("products", SCANNED_FIELDS, row)


def scanned_by_position(count: int, rows: Sequence[Sequence[Any]]) -> list[Record | None]:
    """``scan_many``'s rows put back in the order of the scans (None: an unknown code)."""
    found: list[Record | None] = [None] * count
    for row in rows:
        found[row[0] - 1] = scanned(row[1:])
    return found


# -- QR scan analytics -----------------------------------------------------------------------
_SCANS_OF_BRAND = sql.SQL("FROM qr_code_access q JOIN products p ON p.qr_code = q.qr_code "
                          "WHERE p.user_id = %(brand)s AND q.accessed_at >= %(start)s AND q.accessed_at < %(end)s")


def analytics_days(params: Mapping[str, Any]) -> Statement:
    return Statement(sql.SQL("SELECT to_char(q.accessed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*) {} "
                             "GROUP BY 1").format(_SCANS_OF_BRAND), params)


def analytics_top(params: Mapping[str, Any]) -> Statement:
    return Statement(sql.SQL("SELECT p.id, p.name, count(*) AS n {} GROUP BY p.id, p.name "
                             "ORDER BY n DESC, p.id LIMIT 10").format(_SCANS_OF_BRAND), params)


def top_products(rows: Sequence[Sequence[Any]]) -> list[Record]:
    return [{"product_id": str(r[0]), "name": r[1], "scans": r[2]} for r in rows]


# -- a brand's dashboard ---------------------------------------------------------------------
def dashboard(brand_id: str) -> Statement:
    return Statement(sql.SQL("SELECT {} FROM brand_dashboard_stats WHERE user_id = %s")
                     .format(_cols(DASHBOARD_FIGURES)), (brand_id,))


def dashboard_record(brand_id: str, row: Sequence[Any]) -> Record:
    return dashboard_answer(brand_id, {k: json_ready(None, v) for k, v in zip(DASHBOARD_FIGURES, row)})


# -- the validation queue --------------------------------------------------------------------
def validation_queue(limit: int) -> Statement:
    return Statement(sql.SQL(
        "SELECT {}, p.name FROM validation_queue q JOIN products p ON p.id = q.product_id "
        "WHERE q.status IN ({}) ORDER BY q.priority DESC, q.created_at, q.id LIMIT %s")
        .format(_cols(QUEUE_FIELDS, "q"), sql.SQL(", ").join(map(sql.Literal, OPEN_QUEUE_STATUSES))), (limit,))


def queue_records(rows: Sequence[Sequence[Any]]) -> list[Record]:
    return [{**target_record("validation_queue", QUEUE_FIELDS, r[:-1]), "product_name": r[-1]} for r in rows]


# -- search ----------------------------------------------------------------------------------
def search(text: str, limit: int, fuzzy: bool) -> Statement:
    """Portuguese full text first, ranked; trigram word similarity only for the places left.

    A common word matches thousands of products; computing the word similarity of every one
    of them as well (the earlier ``fts OR trigram`` form) cost 13–30 ms a search at scale 5 and
    was the read mix's p99. Now the fuzzy arm runs only when full text found fewer than
    ``limit`` products, i.e. for typos and rare words (a gating one-time filter: the planner
    does not scan at all otherwise), and it skips what full text already found. ``q <% name``
    is word similarity: a misspelt word still matches one word of a long name.
    """
    ranked = sql.SQL(
        "SELECT {fields}, 0 AS arm, ts_rank(p.search_vector, query.q) AS score FROM products p, query "
        "WHERE p.search_vector @@ query.q ORDER BY score DESC, p.id LIMIT %(limit)s").format(
        fields=_cols(SEARCH_FIELDS, "p"))
    if not fuzzy:
        return Statement(sql.SQL("WITH query AS (SELECT websearch_to_tsquery('portuguese', %(q)s) AS q) "
                                 "SELECT {} FROM ({}) found").format(_cols(SEARCH_FIELDS), ranked),
                         {"q": text, "limit": limit})
    return Statement(sql.SQL(
        "WITH query AS (SELECT websearch_to_tsquery('portuguese', %(q)s) AS q), fts AS MATERIALIZED ({ranked}), "
        "typos AS (SELECT {fields}, 1 AS arm, word_similarity(%(q)s, p.name) AS score FROM products p, query "
        "WHERE (SELECT count(*) FROM fts) < %(limit)s AND %(q)s <%% p.name AND NOT p.search_vector @@ query.q "
        "ORDER BY score DESC, p.id LIMIT %(limit)s) "
        "SELECT {out} FROM (SELECT * FROM fts UNION ALL SELECT * FROM typos) found "
        "ORDER BY arm, score DESC, id LIMIT %(limit)s").format(
        ranked=ranked, fields=_cols(SEARCH_FIELDS, "p"), out=_cols(SEARCH_FIELDS)),
        {"q": text, "limit": limit})


def search_records(rows: Sequence[Sequence[Any]]) -> list[Record]:
    return [target_record("products", SEARCH_FIELDS, r) for r in rows]


# -- ids for warming and load ----------------------------------------------------------------
def brands(limit: int) -> Statement:
    return Statement(sql.SQL("SELECT id FROM users WHERE role = 'BRAND' ORDER BY id LIMIT %s"), (limit,))


def popular_products(limit: int) -> Statement:
    return Statement(sql.SQL(
        "SELECT p.id FROM (SELECT qr_code, count(*) AS n FROM qr_code_access GROUP BY qr_code) s "
        "JOIN products p ON p.qr_code = s.qr_code ORDER BY s.n DESC, p.id LIMIT %s"), (limit,))


REFRESH_DASHBOARD = Statement(sql.SQL("SELECT refresh_dashboard_stats()"))
