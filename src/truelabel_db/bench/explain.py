"""``bench explain``: ``EXPLAIN (ANALYZE, BUFFERS)`` of every hot path, as the service sends it.

The statements are ``postgres_sql``'s, with the parameters a busy request would carry: the brand
with the most products, the most scanned product, a common search word and the same word with a
typo, a batch of scans. Writes are explained inside a transaction that is rolled back, so the
database is left as it was. Each path is run once before it is explained (a warm cache, as in
the service), and the plan is the second run's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql

from truelabel_db.hotpaths import postgres_sql as q
from truelabel_db.hotpaths.base import Scan, window
from truelabel_db.postgres import one


def _questions(conn: psycopg.Connection) -> dict[str, Any]:
    brand = one(conn.execute("SELECT user_id FROM products GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1"
                         ))[0]
    product, code = one(conn.execute(
        "SELECT p.id, p.qr_code FROM (SELECT qr_code, count(*) AS n FROM qr_code_access GROUP BY qr_code) s "
        "JOIN products p ON p.qr_code = s.qr_code ORDER BY s.n DESC, p.id LIMIT 1"))
    word = one(conn.execute("SELECT split_part(name, ' ', 1) FROM products GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
                        ))[0]
    codes = [r[0] for r in conn.execute("SELECT qr_code FROM products WHERE qr_code IS NOT NULL LIMIT 50")]
    return {"brand": str(brand), "product": str(product), "code": code, "word": word, "codes": codes}


def statements(conn: psycopg.Connection) -> dict[str, q.Statement]:
    """Every hot path's statement with a busy request's parameters."""
    ask = _questions(conn)
    fuzzy = bool(conn.execute(q.HAS_TRIGRAM.query).fetchall())
    start, end = window(30, None)
    analytics = {"brand": ask["brand"], "start": start, "end": end}
    now = datetime.now(timezone.utc)
    batch = [Scan(c, "200.1.2.3", "explain", now) for c in ask["codes"]]
    typo = ask["word"][:-1] + ("x" if ask["word"][-1] != "x" else "y")
    return {"product list (100)": q.product_list(100), "product list (1000)": q.product_list(1000),
            "product detail": q.product(ask["product"]), "QR analytics: scans per day": q.analytics_days(analytics),
            "QR analytics: top products": q.analytics_top(analytics), "brand dashboard": q.dashboard(ask["brand"]),
            "validation queue (100)": q.validation_queue(100),
            f"search '{ask['word']}'": q.search(ask["word"], 20, fuzzy),
            f"search '{typo}' (a typo)": q.search(typo, 20, fuzzy),
            "scan (one, lookup + insert)": q.scan(Scan(ask["code"], "200.1.2.3", "explain", now)),
            "group commit (50 scans)": q.scan_many(batch), "batch ingestion (50 rows)": q.record_scans(batch)}


def explain_hot_paths(url: str, progress: Callable[[str], None] = lambda _: None) -> dict[str, str]:
    plans: dict[str, str] = {}
    with psycopg.connect(url) as conn:
        for name, statement in statements(conn).items():
            progress(name)
            explain = sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + statement.query
            conn.execute(statement.query, statement.params).fetchall()      # warm, as in the service
            plans[name] = "\n".join(r[0] for r in conn.execute(explain, statement.params))
            conn.rollback()                                                   # the writes leave no trace
    return plans
