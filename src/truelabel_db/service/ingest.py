"""``POST /scans/batch``: many scans in one request, each row judged on its own.

Edge collectors and offline apps send up to ``max_rows`` scans at once. A row that is not a
valid scan is rejected with its index and the reason; the others are kept and written in one
transaction, and the answer (after the commit) says which rows were refused. A request that is
not a batch at all (not JSON, no ``scans`` list, too many rows) is refused whole, with nothing
written.

A row may carry its own ``id`` (a UUID) and ``scanned_at`` (ISO 8601 with a UTC offset: a time
without one is ambiguous and refused). A client that sends both can retry a batch whose answer
it never got: rows already stored are skipped (``duplicates`` in the answer), so a retry never
records a scan twice. ``scanned_at`` must not lie more than ``max_skew`` in the future nor
further back than ``max_age`` (the scans' retention: an older scan would land in no monthly
partition, and be dropped by retention anyway).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, field_validator

from truelabel_db.hotpaths.base import Ingested, Scan

MAX_ROWS = 1000
MAX_AGE = timedelta(days=183)      # the plan's six months of scans
MAX_SKEW = timedelta(minutes=5)    # a collector's clock a little ahead is tolerated, no more


class BatchRefused(Exception):
    """The request is not a batch we accept; nothing of it is written."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ScanRow(BaseModel):
    """One scan of a batch, as a client sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    qr_code: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    ip_address: str | None = None
    user_agent: Annotated[str, StringConstraints(max_length=500)] | None = None
    scanned_at: str | None = None
    id: str | None = None

    @field_validator("qr_code", "user_agent")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("contains a NUL character, which PostgreSQL text cannot hold")
        return value

    @field_validator("ip_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else str(ipaddress.ip_address(value))

    @field_validator("id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        return None if value is None else str(uuid.UUID(value))

    @field_validator("scanned_at")
    @classmethod
    def _aware(cls, value: str | None) -> str | None:
        if value is not None and datetime.fromisoformat(value).tzinfo is None:
            raise ValueError("has no UTC offset (send e.g. 2026-11-29T12:00:00Z)")
        return value


@dataclass(frozen=True)
class Rejected:
    index: int
    error: str


@dataclass
class Batch:
    scans: list[Scan] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)     # each accepted scan's index in the request
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    max_rows: int = MAX_ROWS
    max_age: timedelta = MAX_AGE
    max_skew: timedelta = MAX_SKEW


def parse_batch(body: bytes, received_at: datetime, limits: Limits = Limits()) -> Batch:
    """The valid rows as scans and the invalid ones by index; ``BatchRefused`` for a non-batch."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BatchRefused(400, f"the body is not JSON: {exc}") from exc
    rows = document.get("scans") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise BatchRefused(422, 'the body must be an object with a "scans" list')
    if len(rows) > limits.max_rows:
        raise BatchRefused(413, f"{len(rows)} scans in one batch; at most {limits.max_rows}")
    batch = Batch()
    for index, row in enumerate(rows):
        try:
            scan = _scan(row, received_at, limits)
        except ValueError as exc:   # pydantic's ValidationError is a ValueError
            batch.rejected.append(Rejected(index, _reason(exc)))
            continue
        batch.scans.append(scan)
        batch.indexes.append(index)
    return batch


def _scan(row: Any, received_at: datetime, limits: Limits) -> Scan:
    if not isinstance(row, dict):
        raise ValueError("a scan must be an object")
    valid = ScanRow.model_validate(row)
    at = received_at
    if valid.scanned_at is not None:
        at = datetime.fromisoformat(valid.scanned_at).astimezone(timezone.utc)
        if at > received_at + limits.max_skew:
            raise ValueError(f"scanned_at: {valid.scanned_at} is in the future")
        if at < received_at - limits.max_age:
            raise ValueError(f"scanned_at: {valid.scanned_at} is older than the scans' retention")
    return Scan(valid.qr_code, valid.ip_address, valid.user_agent, at, valid.id)


def _reason(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "scan"
        return f"{where}: {first['msg'].removeprefix('Value error, ')}"
    return str(exc)


@dataclass
class IngestReport:
    accepted: int
    inserted: int
    rejected: list[Rejected]

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "inserted": self.inserted, "duplicates": self.accepted - self.inserted,
                "rejected": [{"index": r.index, "error": r.error}
                             for r in sorted(self.rejected, key=lambda r: r.index)]}


UNKNOWN_CODE = "qr_code: unknown (no product carries this code); not recorded"


async def ingest(batch: Batch, write: Callable[[Sequence[Scan]], Awaitable[Ingested]],
                 data_error: Callable[[BaseException], bool]) -> IngestReport:
    """Write the valid rows in one transaction; if the database refuses one row's data, write
    them one by one so that only that row is rejected (with the database's reason). A row whose
    code names no product is rejected too: the database did not record it."""
    if not batch.scans:
        return IngestReport(0, 0, batch.rejected)
    try:
        ingested = await write(batch.scans)
        unknown = [Rejected(batch.indexes[n], UNKNOWN_CODE) for n in ingested.unknown]
        return IngestReport(len(batch.scans) - len(unknown), ingested.inserted, batch.rejected + unknown)
    except Exception as exc:
        if not data_error(exc):
            raise
    inserted, rejected = 0, list(batch.rejected)
    for index, scan in zip(batch.indexes, batch.scans):
        try:
            one = await write([scan])
        except Exception as exc:
            if not data_error(exc):
                raise
            rejected.append(Rejected(index, "refused by the database: " + (str(exc).splitlines() or ["?"])[0]))
            continue
        inserted += one.inserted
        if one.unknown:
            rejected.append(Rejected(index, UNKNOWN_CODE))
    return IngestReport(len(batch.scans) - (len(rejected) - len(batch.rejected)), inserted, rejected)
