"""The follower under the app's real workload: parents deleted with their children, orphans made
after the copy, unique values that move between rows, values PostgreSQL refuses. It never stops
on data: what it cannot apply goes to the quarantine, and verify still says equal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from tests.fix_legacy import NOW_MS, insert
from truelabel_db.capture import install_capture
from truelabel_db.copy import CopyOptions, run_copy
from truelabel_db.follow import Follower, FollowOptions
from truelabel_db.legacy.generator import generate
from truelabel_db.quarantine import list_records
from truelabel_db.verify import verify

pytestmark = pytest.mark.slow   # each test generates, copies, follows and verifies a legacy file


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = tmp_path / "live.db"
    generate(path, 0.01, seed=11)
    install_capture(path)
    return path


def _copy(path: Path, url: str, tmp_path: Path, orphans: str = "quarantine") -> None:
    run_copy(path, url, CopyOptions(work_dir=tmp_path / "w", workers=2, orphan_policy=orphans))


def _follow(path: Path, url: str, batch_size: int = 5_000) -> Follower:
    follower = Follower(path, url, FollowOptions(batch_size=batch_size))
    follower.run(until_caught_up=True)
    follower.close()
    return follower


def _app(path: Path, foreign_keys: bool = True) -> sqlite3.Connection:
    """A connection as the app opens it: Prisma sets foreign_keys; scripts and admin tools do not."""
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
    return conn


def _product_with_children(app: sqlite3.Connection) -> tuple[str, dict[str, list[str]]]:
    """A product with a report, a validation, a seal and a queue entry with history."""
    user = app.execute("SELECT id FROM users LIMIT 1").fetchone()[0]
    lab = app.execute("SELECT id FROM laboratories LIMIT 1").fetchone()[0]
    product = insert(app, "products", userId=user)
    report = insert(app, "reports", productId=product, laboratoryId=lab, fileName="r.pdf", originalName="r.pdf",
                    filePath="/r.pdf", fileSize=10, mimeType="application/pdf", analysisType="micro",
                    results="{}", isVerified=0, createdAt=NOW_MS, updatedAt=NOW_MS)
    validation = insert(app, "validations", productId=product, reportId=report, userId=user)
    seal = insert(app, "product_seals", productId=product, sealId="SEAL-1", status="ACTIVE",
                  createdAt=NOW_MS, updatedAt=NOW_MS)
    queue = insert(app, "validation_queue", productId=product, requestedById=user, status="PENDING",
                   priority="NORMAL", category="Alimentos", createdAt=NOW_MS, updatedAt=NOW_MS)
    history = insert(app, "validation_queue_history", queueId=queue, action="CREATED", performedById=user,
                     createdAt=NOW_MS)
    return product, {"validations": [validation], "reports": [report], "product_seals": [seal],
                     "validation_queue": [queue], "validation_queue_history": [history]}


CHILDREN_FIRST = ("validation_queue_history", "validation_queue", "validations", "reports", "product_seals")


def _delete_product_as_prisma_does(app: sqlite3.Connection, product: str, children: dict[str, list[str]],
                                   *, parent_first: bool) -> None:
    """Each statement in its own transaction (Prisma without ``$transaction``)."""
    order = [("products", [product])] + [(t, children[t]) for t in CHILDREN_FIRST]
    if not parent_first:
        order = order[1:] + order[:1]
    for table, keys in order:
        for key in keys:
            app.execute(f'DELETE FROM "{table}" WHERE id = ?', (key,))


def _assert_equal(path: Path, url: str) -> None:
    report = verify(path, url)
    assert report.equal, {k: v.to_dict() for k, v in report.tables.items() if not v.equal}


@pytest.mark.parametrize("batch_size", [5_000, 1], ids=["one batch", "a batch per change"])
@pytest.mark.parametrize("created", ["before the copy", "after the copy", "before the copy, then edited"])
def test_a_product_deleted_with_its_children_children_first_is_followed(
        live: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path, batch_size: int, created: str) -> None:
    app = _app(live)
    if created != "after the copy":
        product, children = _product_with_children(app)
    _copy(live, pg_url, tmp_path)
    if created == "after the copy":
        product, children = _product_with_children(app)
    if created == "before the copy, then edited":  # the product's first entry in the batch is an update
        app.execute("UPDATE products SET status = 'REJECTED' WHERE id = ?", (product,))
    _delete_product_as_prisma_does(app, product, children, parent_first=False)
    follower = _follow(live, pg_url, batch_size)
    assert follower.stats.quarantined == 0
    assert pg.execute("SELECT count(*) FROM products WHERE id = %s", (product,)).fetchone()[0] == 0
    _assert_equal(live, pg_url)


@pytest.mark.parametrize("batch_size", [5_000, 1], ids=["one batch", "a batch per change"])
def test_a_product_deleted_before_its_children_by_a_script_is_followed(
        live: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path, batch_size: int) -> None:
    app = _app(live, foreign_keys=False)  # the parent goes first: only possible without foreign keys
    product, children = _product_with_children(app)
    _copy(live, pg_url, tmp_path)
    _delete_product_as_prisma_does(app, product, children, parent_first=True)
    follower = _follow(live, pg_url, batch_size)
    assert pg.execute("SELECT count(*) FROM validations WHERE product_id = %s", (product,)).fetchone()[0] == 0
    assert follower.stats.quarantined == 0  # the children's deletes were pulled forward, not quarantined
    _assert_equal(live, pg_url)


def test_a_cascade_in_sqlite_is_followed_whatever_the_batch_boundaries(
        live: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    app = _app(live)
    product, children = _product_with_children(app)
    for table in ("validations", "reports", "product_seals"):
        for key in children[table]:
            app.execute(f'DELETE FROM "{table}" WHERE id = ?', (key,))
    _copy(live, pg_url, tmp_path)
    app.execute("DELETE FROM products WHERE id = ?", (product,))  # cascades to the queue and its history
    _follow(live, pg_url, batch_size=1)
    assert pg.execute("SELECT count(*) FROM validation_queue_history").fetchone()[0] == \
        app.execute("SELECT count(*) FROM validation_queue_history").fetchone()[0]
    _assert_equal(live, pg_url)


def test_an_orphan_inserted_after_the_copy_is_quarantined_and_the_follower_goes_on(
        live: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    _copy(live, pg_url, tmp_path)
    app = _app(live, foreign_keys=False)
    ghost = "00000000-0000-4000-8000-000000000001"
    seal = insert(app, "product_seals", productId=ghost, sealId="S", status="ACTIVE",
                  createdAt=NOW_MS, updatedAt=NOW_MS)
    later = insert(app, "users", name="depois do órfão")
    follower = _follow(live, pg_url)
    assert follower.stats.quarantined == 1
    (record,) = list_records(pg, table="product_seals")
    assert record.legacy_key == seal and record.stage == "follow"
    assert "orphan" in record.reasons[0]["reason"] and record.original["productId"] == ghost
    assert pg.execute("SELECT count(*) FROM users WHERE id = %s", (later,)).fetchone()[0] == 1
    _assert_equal(live, pg_url)


def test_a_parent_deleted_while_its_children_stay_quarantines_them_with_their_own_children(
        live: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    app = _app(live)
    product, children = _product_with_children(app)
    _copy(live, pg_url, tmp_path)
    _app(live, foreign_keys=False).execute("DELETE FROM products WHERE id = ?", (product,))
    follower = _follow(live, pg_url)
    quarantined = {(r.legacy_table, r.legacy_key) for r in list_records(pg)}
    expected = {(t, k) for t, keys in children.items() for k in keys}
    assert quarantined == expected  # the queue's history too: its parent left PostgreSQL with it
    assert follower.stats.quarantined == len(expected)
    _assert_equal(live, pg_url)


def test_under_orphans_keep_a_parent_whose_children_stay_is_held_and_said_so(
        live: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    app = _app(live)
    product, children = _product_with_children(app)
    _copy(live, pg_url, tmp_path, orphans="keep")
    _app(live, foreign_keys=False).execute("DELETE FROM products WHERE id = ?", (product,))
    follower = _follow(live, pg_url)
    assert follower.stats.held == 1
    assert pg.execute("SELECT count(*) FROM products WHERE id = %s", (product,)).fetchone()[0] == 1
    assert pg.execute("SELECT count(*) FROM product_seals WHERE product_id = %s", (product,)).fetchone()[0] == 1
    (record,) = list_records(pg, table="products")
    assert record.legacy_key == product and record.reasons[0]["op"] == "delete"
    _assert_equal(live, pg_url)


def test_unique_values_swapped_between_rows_in_separate_transactions_are_followed(
        live: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    app = _app(live)
    first, second = [r[0] for r in app.execute("SELECT id FROM users ORDER BY id LIMIT 2")]
    _copy(live, pg_url, tmp_path)
    one, two = [app.execute("SELECT email FROM users WHERE id = ?", (k,)).fetchone()[0] for k in (first, second)]
    app.execute("UPDATE users SET email = 'swap@tmp' WHERE id = ?", (first,))
    app.execute("UPDATE users SET email = ? WHERE id = ?", (one, second))
    app.execute("UPDATE users SET email = ? WHERE id = ?", (two, first))
    for batch_size in (1, 5_000):
        _follow(live, pg_url, batch_size)
    assert pg.execute("SELECT email FROM users WHERE id = %s", (first,)).fetchone()[0] == two
    _assert_equal(live, pg_url)


def test_a_unique_value_moved_to_a_row_the_changelog_names_later_is_pulled_forward(
        live: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    app = _app(live)
    old, new = [r[0] for r in app.execute("SELECT id, sku FROM products ORDER BY id LIMIT 2")]
    _copy(live, pg_url, tmp_path)
    sku = app.execute("SELECT sku FROM products WHERE id = ?", (old,)).fetchone()[0]
    app.execute("UPDATE products SET sku = 'retired-' || sku WHERE id = ?", (old,))
    app.execute("UPDATE products SET sku = ? WHERE id = ?", (sku, new))
    _follow(live, pg_url, batch_size=1)
    _assert_equal(live, pg_url)


def test_a_value_postgresql_refuses_is_quarantined_with_its_message_and_the_rest_applied(
        live: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    _copy(live, pg_url, tmp_path)
    pg.execute("ALTER TABLE products ADD CONSTRAINT short_name CHECK (length(name) < 40)")  # an operator's rule
    app = _app(live)
    refused = app.execute("SELECT id FROM products LIMIT 1").fetchone()[0]
    app.execute("UPDATE products SET name = ? WHERE id = ?", ("x" * 60, refused))
    fine = insert(app, "users", name="depois")
    follower = _follow(live, pg_url)
    assert follower.stats.quarantined == 1
    (record,) = list_records(pg, table="products")
    assert "short_name" in record.reasons[0]["reason"]
    assert pg.execute("SELECT count(*) FROM users WHERE id = %s", (fine,)).fetchone()[0] == 1


def test_a_row_replace_deleted_is_followed_even_when_the_newcomer_moves_on(
        live: Path, pg_url: str, pg: psycopg.Connection, tmp_path: Path) -> None:
    """INSERT OR REPLACE deletes the row holding the sku without a delete trigger; the newcomer's
    sku then changes, so nothing the follower reads later clashes with the old row any more."""
    app = _app(live)
    old, sku = app.execute("SELECT id, sku FROM products ORDER BY id LIMIT 1").fetchone()
    _copy(live, pg_url, tmp_path)
    row = dict(zip([d[0] for d in app.execute("SELECT * FROM products WHERE id = ?", (old,)).description],
                   app.execute("SELECT * FROM products WHERE id = ?", (old,)).fetchone()))
    row["id"] = newcomer = "00000000-0000-4000-8000-00000000abcd"
    app.execute(f"INSERT OR REPLACE INTO products ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()))
    app.execute("UPDATE products SET sku = 'moved-on', qrCode = NULL WHERE id = ?", (newcomer,))
    assert app.execute("SELECT count(*) FROM products WHERE id = ?", (old,)).fetchone()[0] == 0
    _follow(live, pg_url)
    assert pg.execute("SELECT count(*) FROM products WHERE id = %s", (old,)).fetchone()[0] == 0
    _assert_equal(live, pg_url)
