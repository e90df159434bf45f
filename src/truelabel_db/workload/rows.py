"""New rows as the app writes them: Prisma's encodings, Portuguese text, values from a seed.

Every value comes from the writer's generator and its logical clock, never from the wall
clock or ``uuid4``, so the same seed writes the same rows. Unique values (emails, SKUs, QR
codes) carry a fresh UUID's digits, so writers never collide by accident; collisions the
workload wants are planned (see ``changes.duplicate_unique``).
"""

from __future__ import annotations

import json
import random
import unicodedata
import uuid
from dataclasses import dataclass

from truelabel_db.legacy import vocabulary as vocab
from truelabel_db.workload.model import Model
from truelabel_db.workload.statements import Value

Row = dict[str, Value]
DAY_MS = 86_400_000


@dataclass
class Context:
    """What an operation builder draws from: the writer's generator, its model, the logical now."""

    rng: random.Random
    model: Model
    now: int

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def tag(self) -> str:
        """Twelve hex digits of a fresh UUID: enough to keep unique columns unique."""
        return self.uid().replace("-", "")[:12]

    def pick(self, options: tuple[str, ...]) -> str:
        return options[self.rng.randrange(len(options))]


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def email(c: Context, domain: str | None = None) -> str:
    first, last = c.pick(vocab.FIRST_NAMES), c.pick(vocab.LAST_NAMES)
    return _ascii(f"{first}.{last}.{c.tag()}@{domain or c.pick(vocab.EMAIL_DOMAINS)}").lower()


def user(c: Context, role: str) -> Row:
    return {"id": c.uid(), "email": email(c), "password": f"$2a$12${c.rng.getrandbits(212):053x}",
            "name": f"{c.pick(vocab.FIRST_NAMES)} {c.pick(vocab.LAST_NAMES)}", "role": role,
            "createdAt": c.now, "updatedAt": c.now}


def laboratory(c: Context) -> Row:
    city, state = vocab.CITIES[c.rng.randrange(len(vocab.CITIES))]
    return {"id": c.uid(), "name": f"{c.pick(vocab.LAB_NAMES)} {c.rng.randrange(100, 999)}",
            "accreditation": "ISO/IEC 17025:2017", "email": f"contato.{c.tag()}@lab.com.br",
            "phone": f"({c.rng.randrange(11, 99)}) {c.rng.randrange(2000, 9999)}-{c.rng.randrange(1000, 9999)}",
            "address": f"{c.pick(vocab.STREETS)}, {c.rng.randrange(1, 999)} - {city}, {state}",
            "isActive": 1, "createdAt": c.now, "updatedAt": c.now}


def claims(c: Context) -> str | None:
    picked = c.rng.sample(vocab.CLAIMS, c.rng.randrange(0, 4))
    return ", ".join(picked) if picked else None


def nutritional_info(c: Context) -> str:
    return json.dumps({"porcao": f"{c.pick(('30', '50', '100', '200'))}g",
                       "calorias": c.rng.randrange(20, 450),
                       "proteinas": f"{c.rng.randrange(0, 30)}g"}, ensure_ascii=False)


def sku(c: Context, category: str = "") -> str:
    return f"{_ascii(category or c.pick(vocab.CATEGORIES))[:3].upper()}-{c.tag().upper()}"


def qr_code(c: Context) -> str:
    return f"TL-{c.tag().upper()}"


def product(c: Context, owner: str) -> Row:
    category = c.pick(vocab.CATEGORIES)
    noun, adjective = c.pick(vocab.PRODUCT_NOUNS), c.pick(vocab.PRODUCT_ADJECTIVES)
    return {"id": c.uid(), "name": f"{noun} {adjective}",
            "brand": f"{c.pick(vocab.BRAND_WORDS)} {c.pick(vocab.BRAND_SUFFIXES)}",
            "category": category, "description": f"{noun} {c.pick(vocab.DESCRIPTIONS)}",
            "sku": sku(c, category), "batchNumber": f"L{c.rng.randrange(10**7):07d}",
            "nutritionalInfo": nutritional_info(c), "claims": claims(c),
            "imageUrl": f"https://cdn.truelabel.com.br/p/{c.tag()}.jpg" if c.rng.random() < 0.7 else None,
            "qrCode": qr_code(c) if c.rng.random() < 0.9 else None, "status": "DRAFT",
            "createdAt": c.now, "updatedAt": c.now, "userId": owner}


def seal(c: Context, product_id: str) -> Row:
    return {"id": c.uid(), "productId": product_id, "sealId": f"SEAL-{c.rng.randrange(1, 40):03d}",
            "certificateNumber": f"CERT-{c.tag().upper()}", "issuedDate": c.now,
            "expiryDate": c.now + 365 * DAY_MS, "validatingLaboratory": c.pick(vocab.LAB_NAMES),
            "documentUrl": f"https://cdn.truelabel.com.br/selos/{c.tag()}.pdf", "status": "PENDING",
            "verifiedBy": None, "verifiedAt": None, "notes": None, "createdAt": c.now, "updatedAt": c.now}


def queue_entry(c: Context, product_id: str, requester: str) -> Row:
    return {"id": c.uid(), "productId": product_id, "requestedById": requester, "assignedToId": None,
            "status": "PENDING", "priority": c.pick(vocab.PRIORITIES), "category": c.pick(vocab.CATEGORIES),
            "estimatedDuration": c.rng.randrange(1, 72), "actualDuration": None, "assignedAt": None,
            "startedAt": None, "completedAt": None, "dueDate": c.now + 7 * DAY_MS, "notes": None,
            "metadata": json.dumps({"origem": c.pick(("app", "painel", "api"))}),
            "createdAt": c.now, "updatedAt": c.now}


def history(c: Context, queue_id: str, performer: str, action: str, previous: str | None,
            new: str | None) -> Row:
    return {"id": c.uid(), "queueId": queue_id, "action": action, "previousStatus": previous,
            "newStatus": new, "performedById": performer, "reason": None,
            "metadata": '{"via": "painel"}', "createdAt": c.now}


def report(c: Context, product_id: str, laboratory_id: str) -> Row:
    analysis = c.pick(vocab.ANALYSIS_TYPES)
    results = {"tipo": analysis, "aprovado": c.rng.random() < 0.85,
               "parametros": {"sodio_mg": c.rng.randrange(0, 900)}}
    return {"id": c.uid(), "fileName": f"{c.tag()}.pdf", "originalName": f"laudo_{c.tag()}.pdf",
            "filePath": f"/uploads/reports/{c.tag()}.pdf", "fileSize": c.rng.randrange(40_000, 4_000_000),
            "mimeType": "application/pdf", "analysisType": analysis,
            "results": json.dumps(results, ensure_ascii=False), "isVerified": 0, "verificationHash": None,
            "createdAt": c.now, "updatedAt": c.now, "productId": product_id, "laboratoryId": laboratory_id}


def validation(c: Context, product_id: str, report_id: str | None, validator: str) -> Row:
    checked = {claim: c.rng.random() < 0.8 for claim in c.rng.sample(vocab.CLAIMS, 2)}
    return {"id": c.uid(), "status": "PENDING", "type": c.pick(("MANUAL", "AUTOMATED")),
            "claimsValidated": json.dumps(checked, ensure_ascii=False), "summary": None, "notes": None,
            "validatedAt": None, "createdAt": c.now, "updatedAt": c.now, "productId": product_id,
            "reportId": report_id, "userId": validator}


def ip_address(c: Context) -> str:
    if c.rng.random() < 0.9:
        return f"{c.rng.randrange(1, 224)}.{c.rng.randrange(256)}.{c.rng.randrange(256)}.{c.rng.randrange(1, 255)}"
    return f"2804:{c.rng.randrange(0x10000):x}::{c.rng.randrange(1, 0xffff):x}"


def scan(c: Context, code: str) -> Row:
    city, state = vocab.CITIES[c.rng.randrange(len(vocab.CITIES))]
    return {"id": c.uid(), "qrCode": code, "ipAddress": ip_address(c), "userAgent": c.pick(vocab.USER_AGENTS),
            "location": json.dumps({"city": city, "state": state, "country": "BR"}, ensure_ascii=False),
            "accessedAt": c.now}


def event(c: Context, event_type: str, entity_id: str, user_id: str | None) -> Row:
    return {"id": c.uid(), "eventType": event_type, "entityType": "product", "entityId": entity_id,
            "userId": user_id, "sessionId": c.uid(), "data": json.dumps({"origem": "app", "evento": event_type}),
            "ipAddress": ip_address(c), "userAgent": c.pick(vocab.USER_AGENTS), "timestamp": c.now}
