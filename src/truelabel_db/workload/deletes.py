"""Operations that delete: a product with its children (statement by statement, or in one
transaction), a parent alone (which leaves orphans where foreign keys are off), and the
deletes that exercise the schema's referential actions (SET NULL, CASCADE, RESTRICT).
"""

from __future__ import annotations

from truelabel_db.workload.rows import Context
from truelabel_db.workload.statements import Delete, Statement, Unit, each, together

Units = tuple[Unit, ...]
# What the app deletes before a product, in its order: validations go before the reports they cite.
PRODUCT_CHILDREN = ("validations", "reports", "product_seals", "validation_queue")


def _product_with_children(c: Context) -> tuple[Statement, ...] | None:
    key = c.model.mine["products"].choice(c.rng)
    if key is None:
        return None
    c.model.forget("products", key)
    return (*(Delete(table, {"productId": key}) for table in PRODUCT_CHILDREN),
            Delete("products", {"id": key}))


def delete_product_each(c: Context) -> Units | None:
    """``deleteMany`` of each child table, then the product, each awaited on its own (no
    ``$transaction``): every statement commits alone, and a reader can see the half-way state."""
    statements = _product_with_children(c)
    return each(*statements) if statements else None


def delete_product_txn(c: Context) -> Units | None:
    """The same deletes inside one ``$transaction``."""
    statements = _product_with_children(c)
    return together(*statements) if statements else None


def delete_product_only(c: Context) -> Units | None:
    """The product alone: RESTRICT refuses it (or CASCADE takes its queue entries) with foreign
    keys on; with them off its children stay behind as orphans."""
    key = c.model.mine["products"].choice(c.rng)
    if key is None:
        return None
    c.model.forget("products", key)
    return each(Delete("products", {"id": key}))


def delete_user(c: Context) -> Units | None:
    """An account closed: SET NULL on its analytics events; RESTRICT wherever it owns rows."""
    key = c.model.mine["users"].choice(c.rng)
    if key is None:
        return None
    c.model.forget("users", key)
    return each(Delete("users", {"id": key}))


def delete_report(c: Context) -> Units | None:
    """A report withdrawn: its validations keep going with ``reportId`` SET NULL."""
    key = c.model.mine["reports"].choice(c.rng)
    if key is None:
        return None
    c.model.forget("reports", key)
    return each(Delete("reports", {"id": key}))


def delete_queue_entry(c: Context) -> Units | None:
    """A queue entry cancelled: its history goes with it by CASCADE (or stays, orphaned)."""
    key = c.model.mine["validation_queue"].choice(c.rng)
    if key is None:
        return None
    c.model.forget("validation_queue", key)
    return each(Delete("validation_queue", {"id": key}))


def delete_scans(c: Context) -> Units | None:
    """Every access of one QR code at once (``deleteMany({where: {qrCode}})``)."""
    key = c.model.mine["qr_code_accesses"].choice(c.rng)
    if key is None:
        return None
    code = c.model.scan_code.get(key)
    c.model.forget("qr_code_accesses", key)
    return each(Delete("qr_code_accesses", {"qrCode": code} if code else {"id": key}))


def delete_events(c: Context) -> Units | None:
    """A handful of analytics events by id (``deleteMany({where: {id: {in: [...]}}})``)."""
    keys: list[str] = []
    for _ in range(c.rng.randrange(1, 5)):
        key = c.model.mine["analytics_events"].choice(c.rng)
        if key is not None and key not in keys:
            keys.append(key)
            c.model.forget("analytics_events", key)
    return each(Delete("analytics_events", {"id": tuple(keys)})) if keys else None


BUILDERS = {"delete_product_each": delete_product_each, "delete_product_txn": delete_product_txn,
            "delete_product_only": delete_product_only, "delete_user": delete_user,
            "delete_report": delete_report, "delete_queue_entry": delete_queue_entry,
            "delete_scans": delete_scans, "delete_events": delete_events}
