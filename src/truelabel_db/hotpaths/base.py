"""True Label's heavy operations (plan §1.2), declared once for both databases.

Each operation is a method of ``HotPaths``; ``LegacyHotPaths`` answers it from the Prisma
SQLite file and ``PostgresHotPaths`` from the optimized schema. Both select the same target
fields (below) and assemble the answer with the same functions, so a test can demand equal
answers for the same data and a benchmark compares like with like.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

from truelabel_db.hotpaths.shape import Record, group_by

PRODUCT_FIELDS = ("id", "name", "brand", "category", "sku", "status", "qr_code", "claims",
                  "created_at", "user_id")
# What a product payload says of its brand: public facts only. The users row also holds the
# brand account's e-mail and password hash; payloads are public (and cached), so neither is here.
BRAND_FIELDS = ("id", "name")
VALIDATION_FIELDS = ("id", "product_id", "status", "type", "validated_at", "created_at")
QUEUE_FIELDS = ("id", "product_id", "priority", "status", "category", "assigned_to_id",
                "due_date", "created_at")
SCANNED_FIELDS = ("id", "name", "brand", "status", "qr_code", "user_id")
SEARCH_FIELDS = ("id", "name", "brand", "category", "status")
# The legacy tables the hot paths read or write (by their legacy names; each database's own
# spelling comes from the mapping): a database lacking one is refused when it is opened.
SERVED_TABLES = ("users", "products", "validations", "qr_code_accesses", "validation_queue")
OPEN_QUEUE_STATUSES = ("PENDING", "ASSIGNED", "IN_PROGRESS")
PRIORITY_ORDER = ("LOW", "NORMAL", "HIGH", "URGENT")
DASHBOARD_FIGURES = ("total_products", "validated_products", "total_validations",
                     "avg_validation_hours", "total_scans", "last_scan_at")


@dataclass(frozen=True)
class Scan:
    """One consumer scan: what the write path records."""

    qr_code: str
    ip_address: str | None = None
    user_agent: str | None = None
    at: datetime | None = None   # now, unless a caller replays a known moment
    id: str | None = None        # a client's own id (batch ingestion): a retried row is not stored twice

    def moment(self) -> datetime:
        return self.at or datetime.now(timezone.utc)


@dataclass(frozen=True)
class Ingested:
    """What a batch ingestion stored: rows inserted, the brands whose products were scanned, and
    the positions (from 0, in the scans given) of the rows not recorded because no product
    carries their code."""

    inserted: int
    brands: tuple[str, ...] = ()
    unknown: tuple[int, ...] = ()


class HotPaths(Protocol):
    kind: str

    def product_list(self, limit: int = 1000) -> list[Record]:
        """The newest products, each with its validations and its brand (the app's home list)."""
        ...

    def product(self, product_id: str) -> Record | None:
        """One product with its validations and brand (the detail page, the cache's unit)."""
        ...

    def scan(self, scan: Scan) -> Record | None:
        """Look a product up by QR code and record the scan; None (and nothing recorded) for an
        unknown code."""
        ...

    def product_by_qr(self, qr_code: str) -> Record | None: ...

    def record_scan(self, scan: Scan) -> None:
        """The write alone, for a caller that looked the product up in its cache."""
        ...

    def scan_many(self, scans: Sequence[Scan]) -> list[Record | None]:
        """A group commit: every scan of a known code recorded in one transaction, and each
        one's product (None for an unknown code, not recorded), in the order given. All or nothing."""
        ...

    def record_scans(self, scans: Sequence[Scan]) -> Ingested:
        """Batch ingestion in one transaction; a row whose client id is already stored is skipped."""
        ...

    def qr_analytics(self, brand_id: str, days: int = 30, now: datetime | None = None) -> Record:
        """Scans per day over ``days`` and the top products, for one brand's products."""
        ...

    def brand_dashboard(self, brand_id: str) -> Record | None: ...

    def validation_queue(self, limit: int = 100) -> list[Record]:
        """Open queue items, most urgent first, oldest first within a priority."""
        ...

    def search(self, text: str, limit: int = 20) -> list[Record]: ...

    def brands(self, limit: int = 1000) -> list[str]:
        """Brand user ids (for warming and load generation)."""
        ...

    def popular_products(self, limit: int = 100) -> list[str]:
        """The most scanned products' ids (for warming)."""
        ...

    def close(self) -> None: ...


def with_details(products: list[Record], validations: list[Record],
                 brands: list[Record]) -> list[Record]:
    """Attach validations (oldest first) and the brand to each product, keeping the order."""
    by_product = group_by(sorted(validations, key=lambda v: (v["created_at"], v["id"])), "product_id")
    by_id = {b["id"]: b for b in brands}
    out = []
    for p in products:
        detailed = dict(p)
        detailed["validations"] = [{k: v for k, v in val.items() if k != "product_id"}
                                   for val in by_product.get(p["id"], [])]
        detailed["brand_user"] = by_id.get(p["user_id"])
        out.append(detailed)
    return out


def window(days: int, now: datetime | None) -> tuple[datetime, datetime]:
    """[start of the first day, end of today) in UTC: whole days, so both sides bucket alike."""
    end_day = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date() + timedelta(days=1)
    start_day = end_day - timedelta(days=days)
    return _midnight(start_day), _midnight(end_day)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def analytics_answer(brand_id: str, start: datetime, end: datetime,
                     per_day: dict[str, int], top: list[Record]) -> Record:
    """Every day of the window present (zero when no scan), top products by scans then id."""
    days = []
    day = start.date()
    while day < end.date():
        days.append({"day": day.isoformat(), "scans": per_day.get(day.isoformat(), 0)})
        day += timedelta(days=1)
    ranked = sorted(top, key=lambda r: (-r["scans"], r["product_id"]))
    return {"brand_id": brand_id, "from": start.date().isoformat(), "days": days,
            "total_scans": sum(per_day.values()), "top_products": ranked}


def dashboard_answer(brand_id: str, figures: dict[str, Any]) -> Record:
    return {"brand_id": brand_id, **{k: figures.get(k) for k in DASHBOARD_FIGURES}}
