"""Operations that add rows: sign-ups, products with their nested children, scans, orphans.

Each builder returns the transaction units of one operation (or None when the writer knows
no row to act on) and records the intended effect in the model.
"""

from __future__ import annotations

from truelabel_db.legacy import vocabulary as vocab
from truelabel_db.workload import rows
from truelabel_db.workload.rows import Context
from truelabel_db.workload.statements import Insert, Unit, each, together

Units = tuple[Unit, ...]


def create_user(c: Context) -> Units:
    row = rows.user(c, c.rng.choices(("BRAND", "LAB", "CONSUMER", "ADMIN"), (30, 6, 60, 4))[0])
    c.model.add_user(str(row["id"]), str(row["email"]), str(row["role"]))
    return each(Insert("users", row))


def create_laboratory(c: Context) -> Units:
    row = rows.laboratory(c)
    c.model.email[str(row["id"])] = str(row["email"])
    c.model.add("laboratories", str(row["id"]))
    return each(Insert("laboratories", row))


def create_product(c: Context) -> Units | None:
    """``product.create`` with nested seals and a queue entry: Prisma wraps it in a transaction."""
    owner = c.model.pick_role(c.rng, "BRAND")
    if owner is None:
        return None
    product = rows.product(c, owner)
    key = str(product["id"])
    c.model.add("products", key)
    c.model.sku[key], c.model.qr_code[key] = str(product["sku"]), product["qrCode"]  # type: ignore[assignment]
    statements: list[Insert] = [Insert("products", product)]
    for _ in range(c.rng.randrange(0, 3)):
        statements.append(Insert("product_seals", _child(c, "product_seals", rows.seal(c, key), key)))
    entry = _child(c, "validation_queue", rows.queue_entry(c, key, owner), key)
    statements.append(Insert("validation_queue", entry))
    performer = c.model.pick_role(c.rng, "ADMIN", "LAB") or owner
    step = rows.history(c, str(entry["id"]), performer, "CREATED", None, "PENDING")
    statements.append(Insert("validation_queue_history",
                             _child(c, "validation_queue_history", step, str(entry["id"]))))
    return together(*statements)


def create_validation(c: Context) -> Units | None:
    """A lab uploads a report and opens a validation on it, in one nested create."""
    product = c.model.known["products"].choice(c.rng)
    lab = c.model.known["laboratories"].choice(c.rng)
    validator = c.model.pick_role(c.rng, "LAB", "ADMIN")
    if product is None or lab is None or validator is None:
        return None
    report = _child(c, "reports", rows.report(c, product, lab), product)
    validation = _child(c, "validations", rows.validation(c, product, str(report["id"]), validator), product)
    return together(Insert("reports", report), Insert("validations", validation))


def scan_qr(c: Context) -> Units | None:
    """A consumer scans a label: the access, then the analytics event, as two awaited creates."""
    product = c.model.known["products"].choice(c.rng)
    if product is None:
        return None
    code = c.model.qr_code.get(product) or rows.qr_code(c)
    access = rows.scan(c, code)
    c.model.add("qr_code_accesses", str(access["id"]))
    c.model.scan_code[str(access["id"])] = code
    viewer = c.model.pick_role(c.rng, "CONSUMER") if c.rng.random() < 0.5 else None
    tracked = rows.event(c, "qr_scan", product, viewer)
    c.model.add("analytics_events", str(tracked["id"]))
    return each(Insert("qr_code_accesses", access), Insert("analytics_events", tracked))


def track_event(c: Context) -> Units | None:
    product = c.model.known["products"].choice(c.rng)
    if product is None:
        return None
    viewer = c.model.known["users"].choice(c.rng) if c.rng.random() < 0.5 else None
    tracked = rows.event(c, c.pick(vocab.EVENT_TYPES), product, viewer)
    c.model.add("analytics_events", str(tracked["id"]))
    return each(Insert("analytics_events", tracked))


def insert_orphan(c: Context) -> Units | None:
    """A script inserts a child whose parent does not exist: refused with foreign keys on,
    an orphan with them off. The model does not learn it: the app would never see it."""
    ghost = c.uid()
    user = c.model.known["users"].choice(c.rng)
    if user is None:
        return None
    choice = c.rng.randrange(4)
    if choice == 0:
        return each(Insert("product_seals", rows.seal(c, ghost)))
    if choice == 1:
        return each(Insert("validations", rows.validation(c, ghost, None, user)))
    if choice == 2:
        return each(Insert("validation_queue", rows.queue_entry(c, ghost, user)))
    return each(Insert("validation_queue_history", rows.history(c, ghost, user, "COMMENTED", None, None)))


def _child(c: Context, table: str, row: rows.Row, parent: str) -> rows.Row:
    c.model.add(table, str(row["id"]))
    c.model.link(table, str(row["id"]), parent)
    return row


BUILDERS = {"create_user": create_user, "create_laboratory": create_laboratory,
            "create_product": create_product, "create_validation": create_validation,
            "scan_qr": scan_qr, "track_event": track_event, "insert_orphan": insert_orphan}
