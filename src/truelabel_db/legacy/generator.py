"""A realistic legacy True Label database at any scale, with Prisma's encodings.

Scale 1 is about 365k rows: 1k users, 10k products, 20k validations, 5k reports, 200k QR
scans and 100k analytics events, the other tables in proportion. Text is Portuguese, ids are
UUIDs, DateTime is epoch milliseconds, booleans 1/0 and JSON text, exactly as Prisma writes
them; popularity is skewed (a few products take most scans). The same seed, scale and
reference month give the same rows. ``dirty=True`` adds the dirt of :mod:`.dirt`.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import accumulate
from pathlib import Path
from typing import Any

from truelabel_db.errors import ConfigError
from truelabel_db.legacy import vocabulary as vocab
from truelabel_db.legacy.dirt import DirtPlan, DirtyValue
from truelabel_db.legacy.schema import create_legacy_schema, read_schema
from truelabel_db.sqlite_sql import quote_ident

Progress = Callable[[str, int, int], None]
SIZES = {"users": 1_000, "laboratories": 50, "products": 10_000, "reports": 5_000,
         "validations": 20_000, "product_seals": 8_000, "validation_queue": 6_000,
         "validation_queue_history": 15_000, "qr_code_accesses": 200_000,
         "analytics_events": 100_000}
DAY_MS = 86_400_000
SPAN_MS = 548 * DAY_MS  # eighteen months of history
BATCH = 20_000


@dataclass
class GenerationReport:
    path: Path
    scale: float
    seed: int
    dirty: bool
    rows: dict[str, int] = field(default_factory=dict)
    dirt: list[DirtyValue] = field(default_factory=list)
    seconds: float = 0.0

    def expected_quarantined(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for d in self.dirt:
            if d.outcome == "quarantined":
                out.setdefault(d.table, set()).add(d.key)
        return out

    def expected_repaired(self) -> dict[str, int]:
        keys: dict[str, set[str]] = {}
        for d in self.dirt:
            if d.outcome == "repaired":
                keys.setdefault(d.table, set()).add(d.key)
        return {table: len(k) for table, k in keys.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "scale": self.scale, "seed": self.seed,
                "dirty": self.dirty, "rows": self.rows, "seconds": round(self.seconds, 3),
                "dirt": [d.to_dict() for d in self.dirt]}


def first_of_this_month_ms() -> int:
    now = datetime.now(timezone.utc)
    return int(datetime(now.year, now.month, 1, tzinfo=timezone.utc).timestamp() * 1000)


def generate(path: Path, scale: float = 1.0, *, dirty: bool = False, seed: int = 7,
             dirt_rate: float = 0.005, progress: Progress | None = None,
             overwrite: bool = False, reference_ms: int | None = None) -> GenerationReport:
    """Write a legacy database to ``path`` (atomically: a killed run leaves nothing there)."""
    if scale <= 0:
        raise ConfigError("--scale must be positive")
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} already exists; pass --overwrite to replace it")
    started = time.perf_counter()
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        create_legacy_schema(conn)
        report = GenerationReport(path, scale, seed, dirty)
        _Generator(conn, report, scale, random.Random(seed), dirt_rate,
                   reference_ms or first_of_this_month_ms(), progress).run()
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()
    os.replace(partial, path)
    report.seconds = time.perf_counter() - started
    if dirty:
        path.with_name(path.name + ".dirt.json").write_text(json.dumps(report.to_dict(), ensure_ascii=False))
    return report


class _Generator:
    def __init__(self, conn: sqlite3.Connection, report: GenerationReport, scale: float,
                 rng: random.Random, dirt_rate: float, reference_ms: int,
                 progress: Progress | None) -> None:
        self.conn, self.report, self.rng = conn, report, rng
        self.rate, self.ref, self.progress = dirt_rate, reference_ms, progress
        self.count = {t: max(1, round(n * scale)) for t, n in SIZES.items()}
        self.count["users"] = max(self.count["users"], 8)
        self.columns = {name: [c.name for c in t.columns] for name, t in read_schema(conn).items()}
        self.ids: dict[str, list[str]] = {}

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def moment(self, not_before: int | None = None) -> int:
        low = max(not_before or 0, self.ref - SPAN_MS)
        return self.rng.randrange(low, self.ref) if low < self.ref else self.ref

    def run(self) -> None:
        for table in ("users", "laboratories", "products", "reports", "validations",
                      "product_seals", "validation_queue", "validation_queue_history",
                      "qr_code_accesses", "analytics_events"):
            getattr(self, table)()
        self.write("_prisma_migrations", 1, lambda i: {
            "id": self.uid(), "checksum": "%064x" % self.rng.getrandbits(256),
            "finished_at": self.ref - SPAN_MS, "migration_name": "20250620102658_init",
            "logs": None, "rolled_back_at": None, "started_at": self.ref - SPAN_MS - 3,
            "applied_steps_count": 1}, plan=False)

    def write(self, table: str, n: int, make: Callable[[int], dict[str, Any]],
              plan: bool = True) -> DirtPlan:
        """Generate ``n`` rows with ``make``, dirty some, insert in batches; keep the ids."""
        columns = self.columns[table]
        position = {c: i for i, c in enumerate(columns)}
        dirt = DirtPlan(table, n, self.rate, self.rng, self.report.dirty and plan)
        ids: list[str] = []
        sql = (f"INSERT INTO {quote_ident(table)} VALUES ({', '.join('?' * len(columns))})")
        batch: list[list[Any]] = []
        self.conn.execute("BEGIN")
        for i in range(n):
            values = make(i)
            row = [values[c] for c in columns]
            dirt.apply(i, row, position)
            ids.append(row[0])
            batch.append(row)
            if len(batch) == BATCH:
                self.conn.executemany(sql, batch)
                batch.clear()
                if self.progress:
                    self.progress(table, i + 1, n)
        self.conn.executemany(sql, batch)
        self.conn.execute("COMMIT")
        if self.progress:
            self.progress(table, n, n)
        self.ids[table] = ids
        self.report.rows[table] = n
        self.report.dirt.extend(dirt.found)
        return dirt

    def stamps(self) -> tuple[int, int]:
        created = self.moment()
        return created, self.moment(created)

    def users(self) -> None:
        roles = [role for role, _ in vocab.ROLES]
        weights = [float(weight) for _, weight in vocab.ROLES]
        picked = self.rng.choices(roles, weights=weights, k=self.count["users"])
        picked[:4] = ["ADMIN", "BRAND", "LAB", "CONSUMER"]  # every role, even at tiny scale

        def make(i: int) -> dict[str, Any]:
            first, last = self.rng.choice(vocab.FIRST_NAMES), self.rng.choice(vocab.LAST_NAMES)
            created, updated = self.stamps()
            return {"id": self.uid(), "email": f"{first.lower()}.{last.lower()}{i}@"
                    f"{self.rng.choice(vocab.EMAIL_DOMAINS)}".encode("ascii", "ignore").decode(),
                    "password": "$2a$12$" + "%053x" % self.rng.getrandbits(212),
                    "name": f"{first} {last}", "role": picked[i], "createdAt": created,
                    "updatedAt": updated}
        self.write("users", self.count["users"], make)
        self.by_role = {r: [u for u, role in zip(self.ids["users"], picked) if role == r]
                        for r, _ in vocab.ROLES}

    def laboratories(self) -> None:
        def make(i: int) -> dict[str, Any]:
            city, state = self.rng.choice(vocab.CITIES)
            created, updated = self.stamps()
            return {"id": self.uid(), "name": f"{self.rng.choice(vocab.LAB_NAMES)} {i + 1}",
                    "accreditation": "ISO/IEC 17025:2017", "email": f"contato{i}@lab{i}.com.br",
                    "phone": f"({self.rng.randrange(11, 99)}) {self.rng.randrange(2000, 9999)}-"
                    f"{self.rng.randrange(1000, 9999)}",
                    "address": f"{self.rng.choice(vocab.STREETS)}, {self.rng.randrange(1, 999)} - {city}, {state}",
                    "isActive": int(self.rng.random() < 0.9), "createdAt": created, "updatedAt": updated}
        self.write("laboratories", self.count["laboratories"], make)

    def products(self) -> None:
        brands = self.by_role["BRAND"]
        brand_names = {b: f"{self.rng.choice(vocab.BRAND_WORDS)}{self.rng.choice(vocab.BRAND_WORDS).lower()} "
                       f"{self.rng.choice(vocab.BRAND_SUFFIXES)}" for b in brands}
        self.qr_codes: list[str] = []

        def make(i: int) -> dict[str, Any]:
            owner = self.rng.choice(brands)
            category = self.rng.choice(vocab.CATEGORIES)
            noun, adjective = self.rng.choice(vocab.PRODUCT_NOUNS), self.rng.choice(vocab.PRODUCT_ADJECTIVES)
            qr = f"TL-{i:08X}" if self.rng.random() < 0.9 else None
            if qr:
                self.qr_codes.append(qr)
            created, updated = self.stamps()
            claims = self.rng.sample(vocab.CLAIMS, self.rng.randrange(0, 4))
            info = {"porcao": f"{self.rng.choice((30, 50, 100, 200))}g",
                    "calorias": self.rng.randrange(20, 450),
                    "proteinas": f"{self.rng.randrange(0, 30)}g",
                    "carboidratos": f"{self.rng.randrange(0, 60)}g"}
            return {"id": self.uid(), "name": f"{noun} {adjective}", "brand": brand_names[owner],
                    "category": category,
                    "description": f"{noun} {adjective.lower()} {self.rng.choice(vocab.DESCRIPTIONS)}",
                    "sku": f"{category[:3].upper()}{i:07d}", "batchNumber": f"L{self.rng.randrange(10**7):07d}",
                    "nutritionalInfo": json.dumps(info, ensure_ascii=False),
                    "claims": ", ".join(claims) if claims else None,
                    "imageUrl": f"https://cdn.truelabel.com.br/p/{i}.jpg" if self.rng.random() < 0.7 else None,
                    "qrCode": qr, "status": self.rng.choices(vocab.PRODUCT_STATUSES, (10, 25, 50, 10, 5))[0],
                    "createdAt": created, "updatedAt": updated, "userId": owner}
        self.write("products", self.count["products"], make)

    def reports(self) -> None:
        products, labs = self.ids["products"], self.ids["laboratories"]
        self.report_product: list[str] = []

        def make(i: int) -> dict[str, Any]:
            product = self.rng.choice(products)
            self.report_product.append(product)
            analysis = self.rng.choice(vocab.ANALYSIS_TYPES)
            created, updated = self.stamps()
            results = {"tipo": analysis, "aprovado": self.rng.random() < 0.85,
                       "parametros": {"proteinas": round(self.rng.uniform(0, 30), 2),
                                      "sodio_mg": self.rng.randrange(0, 900)}}
            return {"id": self.uid(), "fileName": f"{self.uid()}.pdf",
                    "originalName": f"laudo_{analysis.lower()}_{i}.pdf",
                    "filePath": f"/uploads/reports/{i}.pdf", "fileSize": self.rng.randrange(40_000, 4_000_000),
                    "mimeType": "application/pdf", "analysisType": analysis,
                    "results": json.dumps(results, ensure_ascii=False),
                    "isVerified": int(self.rng.random() < 0.6),
                    "verificationHash": "%064x" % self.rng.getrandbits(256) if self.rng.random() < 0.6 else None,
                    "createdAt": created, "updatedAt": updated, "productId": product,
                    "laboratoryId": self.rng.choice(labs)}
        self.write("reports", self.count["reports"], make)

    def validations(self) -> None:
        reports, products = self.ids["reports"], self.ids["products"]
        validators = self.by_role["LAB"] + self.by_role["ADMIN"]

        def make(i: int) -> dict[str, Any]:
            with_report = self.rng.random() < 0.6
            r = self.rng.randrange(len(reports))
            status = self.rng.choices(vocab.VALIDATION_STATUSES, (20, 55, 15, 10))[0]
            created, updated = self.stamps()
            claims = {c: self.rng.random() < 0.8 for c in self.rng.sample(vocab.CLAIMS, 2)}
            return {"id": self.uid(), "status": status,
                    "type": self.rng.choice(("MANUAL", "AUTOMATED")),
                    "claimsValidated": json.dumps(claims, ensure_ascii=False),
                    "summary": "Validação concluída" if status != "PENDING" else None,
                    "notes": None, "validatedAt": updated if status != "PENDING" else None,
                    "createdAt": created, "updatedAt": updated,
                    "productId": self.report_product[r] if with_report else self.rng.choice(products),
                    "reportId": reports[r] if with_report else None,
                    "userId": self.rng.choice(validators)}
        self.write("validations", self.count["validations"], make)

    def product_seals(self) -> None:
        products, labs = self.ids["products"], vocab.LAB_NAMES
        verifiers = self.by_role["LAB"]

        def make(i: int) -> dict[str, Any]:
            created, updated = self.stamps()
            issued = self.moment()
            verified = self.rng.random() < 0.5
            return {"id": self.uid(), "productId": self.rng.choice(products),
                    "sealId": f"SEAL-{self.rng.randrange(1, 40):03d}",
                    "certificateNumber": f"CERT-{i:08d}", "issuedDate": issued,
                    "expiryDate": issued + 365 * DAY_MS, "validatingLaboratory": self.rng.choice(labs),
                    "documentUrl": f"https://cdn.truelabel.com.br/selos/{i}.pdf",
                    "status": self.rng.choice(vocab.SEAL_STATUSES),
                    "verifiedBy": self.rng.choice(verifiers) if verified else None,
                    "verifiedAt": updated if verified else None, "notes": None,
                    "createdAt": created, "updatedAt": updated}
        self.write("product_seals", self.count["product_seals"], make)

    def validation_queue(self) -> None:
        products, brands, labs = self.ids["products"], self.by_role["BRAND"], self.by_role["LAB"]

        def make(i: int) -> dict[str, Any]:
            status = self.rng.choices(vocab.QUEUE_STATUSES, (30, 20, 20, 25, 5))[0]
            created, updated = self.stamps()
            assigned = status != "PENDING"
            return {"id": self.uid(), "productId": self.rng.choice(products),
                    "requestedById": self.rng.choice(brands),
                    "assignedToId": self.rng.choice(labs) if assigned else None, "status": status,
                    "priority": self.rng.choices(vocab.PRIORITIES, (20, 50, 20, 10))[0],
                    "category": self.rng.choice(vocab.CATEGORIES),
                    "estimatedDuration": self.rng.randrange(1, 72),
                    "actualDuration": self.rng.randrange(1, 96) if status == "COMPLETED" else None,
                    "assignedAt": created if assigned else None, "startedAt": None,
                    "completedAt": updated if status == "COMPLETED" else None,
                    "dueDate": created + 7 * DAY_MS, "notes": None,
                    "metadata": json.dumps({"origem": self.rng.choice(("app", "painel", "api"))}),
                    "createdAt": created, "updatedAt": updated}
        plan = self.write("validation_queue", self.count["validation_queue"], make)
        poisoned = plan.quarantined_rows()
        self.queue_refs = [q for i, q in enumerate(self.ids["validation_queue"]) if i not in poisoned]

    def validation_queue_history(self) -> None:
        performers = self.by_role["LAB"] + self.by_role["ADMIN"]

        def make(i: int) -> dict[str, Any]:
            previous, new = self.rng.sample(vocab.QUEUE_STATUSES, 2)
            return {"id": self.uid(), "queueId": self.rng.choice(self.queue_refs),
                    "action": self.rng.choice(vocab.QUEUE_ACTIONS), "previousStatus": previous,
                    "newStatus": new, "performedById": self.rng.choice(performers),
                    "reason": None, "metadata": '{"via": "painel"}', "createdAt": self.moment()}
        self.write("validation_queue_history", self.count["validation_queue_history"], make)

    def skewed_codes(self, n: int) -> Iterator[str]:
        """QR codes by Zipf-like popularity: rank r is scanned in proportion to 1 / r^1.1."""
        codes = self.qr_codes or ["TL-00000000"]
        cumulative = list(accumulate(1 / (rank ** 1.1) for rank in range(1, len(codes) + 1)))
        return iter(self.rng.choices(codes, cum_weights=cumulative, k=n))

    def qr_code_accesses(self) -> None:
        n = self.count["qr_code_accesses"]
        codes = self.skewed_codes(n)
        places = [json.dumps({"city": c, "state": s, "country": "BR"}, ensure_ascii=False)
                  for c, s in vocab.CITIES]

        def make(i: int) -> dict[str, Any]:
            return {"id": self.uid(), "qrCode": next(codes), "ipAddress": self.ip(),
                    "userAgent": self.rng.choice(vocab.USER_AGENTS),
                    "location": self.rng.choice(places), "accessedAt": self.moment()}
        self.write("qr_code_accesses", n, make)

    def ip(self) -> str:
        if self.rng.random() < 0.9:
            return f"{self.rng.randrange(1, 224)}.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        return f"2804:{self.rng.randrange(0x10000):x}:{self.rng.randrange(0x10000):x}::{self.rng.randrange(1, 0xffff):x}"

    def analytics_events(self) -> None:
        users, products = self.ids["users"], self.ids["products"]

        def make(i: int) -> dict[str, Any]:
            event = self.rng.choice(vocab.EVENT_TYPES)
            return {"id": self.uid(), "eventType": event, "entityType": "product",
                    "entityId": self.rng.choice(products),
                    "userId": self.rng.choice(users) if self.rng.random() < 0.5 else None,
                    "sessionId": self.uid(), "data": json.dumps({"origem": "app", "evento": event}),
                    "ipAddress": self.ip(), "userAgent": self.rng.choice(vocab.USER_AGENTS),
                    "timestamp": self.moment()}
        self.write("analytics_events", self.count["analytics_events"], make)
