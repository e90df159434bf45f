"""Operations that change rows: updates (unique columns and keys too), upserts, INSERT OR REPLACE.

Unique-column changes are what a follower finds hardest: a swap of two products' SKUs is
three updates in one transaction (through a temporary value, as an app must do it), and
PostgreSQL checks unique keys per statement. A planned clash (an email already in use) is
refused by the database, an app error the workload expects.
"""

from __future__ import annotations

from truelabel_db.legacy import vocabulary as vocab
from truelabel_db.workload import rows
from truelabel_db.workload.rows import Context
from truelabel_db.workload.statements import REPLACE, Insert, Unit, Update, Upsert, Value, each, together

Units = tuple[Unit, ...]


def update_product(c: Context) -> Units | None:
    key = c.model.mine["products"].choice(c.rng)
    if key is None:
        return None
    values: dict[str, Value] = {"name": f"{c.pick(vocab.PRODUCT_NOUNS)} {c.pick(vocab.PRODUCT_ADJECTIVES)}",
              "description": f"{c.pick(vocab.DESCRIPTIONS)}", "claims": rows.claims(c),
              "nutritionalInfo": rows.nutritional_info(c), "status": c.pick(vocab.PRODUCT_STATUSES),
              "updatedAt": c.now}
    return each(Update("products", values, {"id": key}))


def queue_transition(c: Context) -> Units | None:
    """A lab takes or finishes a queue entry: the entry and its history row in one ``$transaction``."""
    key = c.model.mine["validation_queue"].choice(c.rng)
    performer = c.model.pick_role(c.rng, "LAB", "ADMIN")
    if key is None or performer is None:
        return None
    previous, new = c.rng.sample(vocab.QUEUE_STATUSES, 2)
    values: dict[str, Value] = {"status": new, "assignedToId": performer, "assignedAt": c.now,
                                "updatedAt": c.now}
    if new == "COMPLETED":
        values |= {"completedAt": c.now, "actualDuration": c.rng.randrange(1, 96)}
    step = rows.history(c, key, performer, c.pick(vocab.QUEUE_ACTIONS), previous, new)
    c.model.add("validation_queue_history", str(step["id"]))
    c.model.link("validation_queue_history", str(step["id"]), key)
    return together(Update("validation_queue", values, {"id": key}),
                    Insert("validation_queue_history", step))


def approve_validation(c: Context) -> Units | None:
    """Approving touches three tables at once: the validation, its product, the product's reports."""
    key = c.model.mine["validations"].choice(c.rng)
    if key is None or key not in c.model.parent:
        return None
    product = c.model.parent[key]
    status = c.rng.choice(("APPROVED", "REJECTED", "PARTIAL"))
    return together(
        Update("validations", {"status": status, "summary": "Validação concluída", "validatedAt": c.now,
                               "updatedAt": c.now}, {"id": key}),
        Update("products", {"status": "VALIDATED" if status == "APPROVED" else "REJECTED",
                            "updatedAt": c.now}, {"id": product}),
        Update("reports", {"isVerified": 1, "verificationHash": f"{c.rng.getrandbits(256):064x}",
                           "updatedAt": c.now}, {"productId": product}))


def verify_seal(c: Context) -> Units | None:
    key = c.model.mine["product_seals"].choice(c.rng)
    verifier = c.model.pick_role(c.rng, "LAB")
    if key is None or verifier is None:
        return None
    return each(Update("product_seals", {"status": c.pick(vocab.SEAL_STATUSES), "verifiedBy": verifier,
                                         "verifiedAt": c.now, "updatedAt": c.now}, {"id": key}))


def change_user_email(c: Context) -> Units | None:
    key = c.model.mine["users"].choice(c.rng)
    if key is None:
        return None
    c.model.email[key] = rows.email(c)
    return each(Update("users", {"email": c.model.email[key], "updatedAt": c.now}, {"id": key}))


def change_product_codes(c: Context) -> Units | None:
    """A new SKU, a new QR code, or both (a relabelled product)."""
    key = c.model.mine["products"].choice(c.rng)
    if key is None:
        return None
    values: dict[str, Value] = {"updatedAt": c.now}
    which = c.rng.randrange(3)
    if which != 1:
        values["sku"] = c.model.sku[key] = rows.sku(c)
    if which != 0:
        values["qrCode"] = c.model.qr_code[key] = rows.qr_code(c)
    return each(Update("products", values, {"id": key}))


def swap_product_codes(c: Context) -> Units | None:
    """Two products exchange their SKU (or QR code) through a temporary value, in one transaction."""
    first, second = c.model.mine["products"].choice(c.rng), c.model.mine["products"].choice(c.rng)
    if first is None or second is None or first == second:
        return None
    column, codes = ("sku", c.model.sku) if c.rng.random() < 0.5 else ("qrCode", c.model.qr_code)
    a, b = codes.get(first), codes.get(second)
    codes[first], codes[second] = b, a  # type: ignore[assignment]
    return together(Update("products", {column: f"SWAP-{c.tag()}", "updatedAt": c.now}, {"id": first}),
                    Update("products", {column: a, "updatedAt": c.now}, {"id": second}),
                    Update("products", {column: b, "updatedAt": c.now}, {"id": first}))


def swap_user_emails(c: Context) -> Units | None:
    first, second = c.model.mine["users"].choice(c.rng), c.model.mine["users"].choice(c.rng)
    if first is None or second is None or first == second:
        return None
    a, b = c.model.email[first], c.model.email[second]
    c.model.email[first], c.model.email[second] = b, a
    return together(Update("users", {"email": f"swap.{c.tag()}@truelabel.com.br", "updatedAt": c.now}, {"id": first}),
                    Update("users", {"email": a, "updatedAt": c.now}, {"id": second}),
                    Update("users", {"email": b, "updatedAt": c.now}, {"id": first}))


def duplicate_unique(c: Context) -> Units | None:
    """Take a value another row holds (an email, a SKU): the unique index refuses it."""
    if c.rng.random() < 0.5:
        key, other = c.model.mine["users"].choice(c.rng), c.model.known["users"].choice(c.rng)
        if key is None or other is None or key == other:
            return None
        return each(Update("users", {"email": c.model.email[other], "updatedAt": c.now}, {"id": key}))
    key, other = c.model.mine["products"].choice(c.rng), c.model.known["products"].choice(c.rng)
    if key is None or other is None or key == other:
        return None
    return each(Update("products", {"sku": c.model.sku[other], "updatedAt": c.now}, {"id": key}))


def rekey_laboratory(c: Context) -> Units | None:
    """An admin tool changes a laboratory's id; ``ON UPDATE CASCADE`` carries it to its reports."""
    old = c.model.mine["laboratories"].choice(c.rng)
    if old is None:
        return None
    new = c.uid()
    c.model.forget("laboratories", old)
    c.model.email[new] = c.model.email.pop(old, "")
    c.model.add("laboratories", new)
    return each(Update("laboratories", {"id": new, "updatedAt": c.now}, {"id": old}))


def upsert_user(c: Context) -> Units:
    """``user.upsert({where: {email}})``: an existing email updates that user, a new one signs up."""
    known = c.model.known["users"].choice(c.rng) if c.rng.random() < 0.5 else None
    row = rows.user(c, "CONSUMER")
    if known is not None:
        row["email"] = c.model.email[known]
    else:
        c.model.add_user(str(row["id"]), str(row["email"]), "CONSUMER")
    return each(Insert("users", row, Upsert(("email",), ("name", "updatedAt"))))


def upsert_seal(c: Context) -> Units | None:
    """``productSeal.upsert({where: {id}})`` on a seal this writer knows, or on a new one."""
    product = c.model.known["products"].choice(c.rng)
    if product is None:
        return None
    row = rows.seal(c, product)
    existing = c.model.mine["product_seals"].choice(c.rng) if c.rng.random() < 0.6 else None
    if existing is not None:
        row["id"], row["productId"] = existing, c.model.parent.get(existing, product)
    else:
        c.model.add("product_seals", str(row["id"]))
        c.model.link("product_seals", str(row["id"]), product)
    return each(Insert("product_seals", row, Upsert(("id",), ("status", "notes", "updatedAt"))))


def replace_product(c: Context) -> Units | None:
    """``INSERT OR REPLACE`` of a product by its own id, as an import script does: SQLite deletes
    the old row first, which foreign keys ON refuse while children restrict it."""
    key = c.model.mine["products"].choice(c.rng)
    owner = c.model.pick_role(c.rng, "BRAND")
    if key is None or owner is None:
        return None
    row = rows.product(c, owner)
    row |= {"id": key, "sku": c.model.sku[key], "qrCode": c.model.qr_code.get(key)}
    return each(Insert("products", row, REPLACE))


def replace_unique_clash(c: Context) -> Units | None:
    """``INSERT OR REPLACE`` of a new product whose SKU another product holds: that other row is
    deleted to make room (SQLite fires no delete trigger for it)."""
    victim = c.model.mine["products"].choice(c.rng)
    owner = c.model.pick_role(c.rng, "BRAND")
    if victim is None or owner is None:
        return None
    row = rows.product(c, owner)
    row["sku"] = c.model.sku[victim]
    c.model.forget("products", victim)
    key = str(row["id"])
    c.model.add("products", key)
    c.model.sku[key], c.model.qr_code[key] = str(row["sku"]), row["qrCode"]  # type: ignore[assignment]
    return each(Insert("products", row, REPLACE))


def replace_scan(c: Context) -> Units | None:
    key = c.model.mine["qr_code_accesses"].choice(c.rng)
    if key is None:
        return None
    return each(Insert("qr_code_accesses", rows.scan(c, c.model.scan_code.get(key, "TL-0")) | {"id": key}, REPLACE))


BUILDERS = {"update_product": update_product, "queue_transition": queue_transition,
            "approve_validation": approve_validation, "verify_seal": verify_seal,
            "change_user_email": change_user_email, "change_product_codes": change_product_codes,
            "swap_product_codes": swap_product_codes, "swap_user_emails": swap_user_emails,
            "duplicate_unique": duplicate_unique, "rekey_laboratory": rekey_laboratory,
            "upsert_user": upsert_user, "upsert_seal": upsert_seal, "replace_product": replace_product,
            "replace_unique_clash": replace_unique_clash, "replace_scan": replace_scan}
