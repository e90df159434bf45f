"""One canonical text per row, built by PostgreSQL, by SQLite and by Python alike, and its hash.

The full verification hashes every row inside each engine instead of bringing rows to Python:
PostgreSQL builds the text in SQL and hashes it with ``md5``; SQLite builds the same text in SQL
for the rows its checks vouch for (the copy's own fast-path checks) and hashes it through a
registered function; the few rows SQLite cannot vouch for are converted in Python through the
declared mapping and hashed the same way. A row's hash is the first 40 bits of the ``md5`` of
its text, so that a key range's sum of hashes fits in SQLite's 64-bit integers.

The text is exact where it matters and cheap where it can be: a value whose SQLite form differs
from PostgreSQL's canonical form only in spelling (an upper-case UUID, JSON with other spacing
than PostgreSQL prints) makes its key range differ, and the range is then compared row by row
with the exact canonical forms of :mod:`.canonical`. A false difference costs time, never a
wrong verdict.

Fields are separated by ``\\x1f``, the key first; NULL is ``\\x1e``. Per type: UUID, text,
enum and address as PostgreSQL prints them; timestamps as epoch milliseconds (floored, Prisma's
precision); booleans as ``1``/``0``; integers in decimal; JSON as PostgreSQL's ``jsonb`` prints
it; lists as a JSON array of strings; a drifted file's carried columns as their ``jsonb``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import json.encoder
import socket
from decimal import Decimal
from functools import lru_cache
from typing import Any

from psycopg import sql

from truelabel_db.legacy.encodings import to_epoch_ms
from truelabel_db.schema.mapping import EXTRA_COLUMN, ColumnMap, TableMap
from truelabel_db.schema.transforms import (
    Boolean,
    CommaList,
    Enum,
    Inet,
    Integer,
    Json,
    SingletonList,
    Timestamp,
    Uuid,
)
from truelabel_db.sqlite_sql import quote_ident, quote_literal

SEPARATOR, NULL = "\x1f", "\x1e"
UNMATCHABLE = "\x00"  # what SQLite's side gives a value it cannot spell like PostgreSQL
_md5 = hashlib.md5
_quoted = json.encoder.encode_basestring  # JSON string escaping as PostgreSQL's (C when available)


def key_first(table: TableMap) -> list[ColumnMap]:
    """The columns in text order: the key first, so that a text's first two characters are its
    key range (what SQLite's side sums by)."""
    key = table.column_for_target(table.primary_key[0])
    return [key] + [c for c in table.columns if c is not key]


# -- PostgreSQL ---------------------------------------------------------------------------
def _pg_field(col: ColumnMap) -> sql.Composable:
    c = sql.Identifier(col.target)
    t = col.transform
    if isinstance(t, Timestamp):
        expr = sql.SQL("floor(extract(epoch FROM {}) * 1000)::bigint::text").format(c)
    elif isinstance(t, Boolean):
        expr = sql.SQL("{}::int::text").format(c)
    elif isinstance(t, (CommaList, SingletonList)):
        expr = sql.SQL("to_jsonb({})::text").format(c)
    elif isinstance(t, Inet):
        expr = sql.SQL("abbrev({})").format(c)  # as inet prints: no "/32" on a host address
    else:
        expr = sql.SQL("{}::text").format(c)
    return sql.SQL("coalesce({}, {})").format(expr, sql.Literal(NULL))


def pg_row_text(table: TableMap) -> sql.Composable:
    joiner = sql.SQL(" || ") + sql.Literal(SEPARATOR) + sql.SQL(" || ")
    fields = [_pg_field(c) for c in key_first(table)]
    if table.extra:  # a drifted file's carried columns, as one jsonb
        fields.append(sql.SQL("coalesce({}::text, '{{}}')").format(sql.Identifier(EXTRA_COLUMN)))
    return sql.Composed([part for i, f in enumerate(fields) for part in ((joiner,) if i else ()) + (f,)])


def pg_row_hash(table: TableMap) -> sql.Composable:
    """The row's 40-bit hash as a bigint, in SQL."""
    return sql.SQL("('x' || left(md5({}), 10))::bit(40)::bigint").format(pg_row_text(table))


def pg_bucket(table: TableMap) -> sql.Composable:
    return sql.SQL("left({}::text, 2)").format(sql.Identifier(table.primary_key[0]))


# -- SQLite -------------------------------------------------------------------------------
def _json_array_of(expr: str) -> str:
    """A JSON array's text from SQLite list text already split on commas by ``expr``."""
    return f"'[\"' || {expr} || '\"]'"


def _json_escaped(col: str) -> str:
    return f"replace(replace({col}, '\\', '\\\\'), '\"', '\\\"')"


def _sqlite_field(col: ColumnMap) -> str:
    if col.absent:  # an older file without this nullable column
        return quote_literal(NULL)
    q = quote_ident(col.legacy)
    t = col.transform
    if isinstance(t, Uuid):
        expr = f"lower({q})"
    elif isinstance(t, (Timestamp, Boolean, Integer)):
        expr = f"CAST({q} AS TEXT)"
    elif isinstance(t, Json):
        expr = f"tl_jsonb(CAST({q} AS BLOB))"
    elif isinstance(t, CommaList):
        expr = _json_array_of(f"replace(replace({_json_escaped(q)}, ', ', ','), ',', '\", \"')")
    elif isinstance(t, SingletonList):
        expr = _json_array_of(_json_escaped(q))
    elif isinstance(t, Inet):  # IPv6 has many spellings: only those with a zero group can differ
        expr = (f"CASE WHEN instr({q}, ':') = 0 THEN {q} WHEN instr({q}, ':0') = 0 "
                f"AND substr({q}, 1, 1) <> '0' THEN lower({q}) ELSE tl_inet({q}) END")
    elif isinstance(t, Enum) and t.aliases:
        cases = " ".join(f"WHEN {quote_literal(a)} THEN {quote_literal(b)}" for a, b in t.aliases)
        expr = f"CASE {q} {cases} ELSE {q} END"
    else:
        expr = f"CAST({q} AS TEXT)"
    return f"coalesce({expr}, {quote_literal(NULL)})"


def sqlite_row_text(table: TableMap) -> str:
    """The row's text in SQLite SQL, valid for rows that pass :func:`sqlite_vouches`."""
    return f" || {quote_literal(SEPARATOR)} || ".join(_sqlite_field(c) for c in key_first(table))


def sqlite_bucket(table: TableMap) -> str:
    return f"lower(substr({quote_ident(table.legacy_key)}, 1, 2))"


def sqlite_vouches(table: TableMap) -> str:
    """SQLite's predicate for "this row converts as it is": the copy's checks, and enum labels."""
    if table.extra:
        return "0"  # carried columns are encoded in Python: every row goes that way
    checks = []
    for col in table.columns:
        q, t = ("NULL" if col.absent else quote_ident(col.legacy)), col.transform
        check = t.sqlite_check(q, False)
        if isinstance(t, Enum):
            listed = ", ".join(quote_literal(v) for v in (*t.values, *dict(t.aliases)))
            check = f"{q} IN ({listed})"
        if col.not_null:
            checks.append(f"{q} IS NOT NULL" + (f" AND {check}" if check else ""))
        elif check:
            checks.append(f"({q} IS NULL OR ({check}))")
    return " AND ".join(checks) if checks else "1"


# -- Python -------------------------------------------------------------------------------
def python_row_text(table: TableMap, values: tuple[Any, ...], extra: dict[str, Any] | None = None) -> str:
    """The text of a row of converted target values (``ColumnMap.convert(...).value``), and of
    its carried columns (``Extra.convert_values(...).value``) when the table has any."""
    by_column = dict(zip(table.columns, values))
    text = SEPARATOR.join(_python_field(c, by_column[c]) for c in key_first(table))
    return text + SEPARATOR + _jsonb(extra or {}) if table.extra else text


def _python_field(col: ColumnMap, value: Any) -> str:
    if value is None:
        return NULL
    t = col.transform
    if isinstance(t, Timestamp):
        return str(to_epoch_ms(value))
    if isinstance(t, Boolean):
        return "1" if value else "0"
    if isinstance(t, Json):
        return jsonb_text(value.encode() if isinstance(value, str) else value) or NULL
    if isinstance(t, (CommaList, SingletonList)):
        return "[" + ", ".join(_quoted(s) for s in value) + "]"
    return str(value)


def text_hash(text: bytes | str) -> int:
    """The first 40 bits of the text's md5, as PostgreSQL's ``pg_row_hash`` computes them."""
    data = text.encode() if isinstance(text, str) else text
    return int.from_bytes(hashlib.md5(data).digest()[:5], "big")


def inet_text(raw: Any) -> str | None:
    """An address as PostgreSQL's ``inet`` prints it (IPv6 compressed); ``UNMATCHABLE`` if invalid."""
    if raw is None:
        return None
    text = str(raw).strip()
    try:
        if "/" not in text:  # the C library's own parser and printer: ten times ipaddress's speed
            family = socket.AF_INET6 if ":" in text else socket.AF_INET
            return socket.inet_ntop(family, socket.inet_pton(family, text))
        return str(ipaddress.ip_interface(text))
    except (OSError, ValueError):
        return UNMATCHABLE


class BucketSums:
    """SQLite aggregate ``tl_buckets(text)``: rows and hash sums per key range, as JSON.

    One Python call per row does what ``sum(tl_hash(...)) ... GROUP BY`` would do with two
    calls and a sort of every row by its key range. The key is the text's first field (every
    mapped table lists its key first), so its range is the text's first two characters.
    """

    def __init__(self) -> None:
        self.sums: dict[bytes, list[int]] = {}

    def step(self, text: bytes) -> None:
        entry = self.sums.get(text[:2])
        if entry is None:
            entry = self.sums[text[:2]] = [0, 0]
        entry[0] += 1
        entry[1] += int.from_bytes(_md5(text).digest()[:5], "big")

    def finalize(self) -> str:
        return json.dumps({k.decode("utf-8", "replace"): v for k, v in self.sums.items()})


@lru_cache(maxsize=65_536)
def jsonb_text(raw: bytes | None) -> str | None:
    """JSON text as PostgreSQL's ``jsonb`` prints it (keys by length then bytes, ``", "`` and
    ``": "``, numbers as ``numeric`` prints them); ``UNMATCHABLE`` if it does not parse.

    Cached: the same document recurs (a scan's city, an event's origin), and this is the one
    per-value cost of SQLite's side.
    """
    if raw is None:
        return None
    try:
        parsed = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse)
    except ValueError:
        return UNMATCHABLE
    return _jsonb(parsed)


def _refuse(name: str) -> None:
    raise ValueError(name)


def _jsonb(node: Any) -> str:
    if isinstance(node, dict):
        keys = sorted(node, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(f"{_quoted(k)}: {_jsonb(node[k])}" for k in keys) + "}"
    if isinstance(node, list):
        return "[" + ", ".join(_jsonb(item) for item in node) + "]"
    if isinstance(node, str):
        return _quoted(node)
    if node is True or node is False:
        return "true" if node else "false"
    if isinstance(node, int):
        return str(node)
    if isinstance(node, float):  # a carried REAL: written as Python prints it, read as numeric
        node = Decimal(repr(node))
    if isinstance(node, Decimal):
        text = format(node, "f")
        return text.lstrip("-") if node == 0 else text
    return "null"
