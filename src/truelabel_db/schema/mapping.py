"""The one declared mapping from the legacy Prisma tables to the optimized PostgreSQL schema.

Copy, follow, verify and rollback all read this table; nothing else in the package knows a
legacy column name. ``truelabel-db mapping`` prints it. Tables are listed parents first, which
is the order foreign keys are checked and created in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from truelabel_db.schema.transforms import (
    Boolean,
    CommaList,
    Converted,
    Enum,
    Extra,
    Inet,
    Integer,
    Json,
    SingletonList,
    Text,
    Timestamp,
    Transform,
    Unconvertible,
    Uuid,
)
from truelabel_db.sqlite_sql import quote_ident

EXTRA_COLUMN = "legacy_extra"

USER_ROLE = Enum("user_role", ("ADMIN", "BRAND", "LABORATORY", "VALIDATOR", "CONSUMER"),
                 aliases=(("LAB", "LABORATORY"),))
PRODUCT_STATUS = Enum("product_status", ("DRAFT", "PENDING", "VALIDATED", "REJECTED", "EXPIRED"))
VALIDATION_STATUS = Enum("validation_status", ("PENDING", "APPROVED", "REJECTED", "PARTIAL"))
PRIORITY_LEVEL = Enum("priority_level", ("LOW", "NORMAL", "HIGH", "URGENT"))
ENUMS = (USER_ROLE, PRODUCT_STATUS, VALIDATION_STATUS, PRIORITY_LEVEL)

UUID, TEXT, TS, BOOL, JSON, INET = Uuid(), Text(), Timestamp(), Boolean(), Json(), Inet()
INT, BIGINT = Integer("integer"), Integer("bigint")


@dataclass(frozen=True)
class ColumnMap:
    legacy: str
    target: str
    transform: Transform
    not_null: bool = False
    absent: bool = False  # an older legacy file lacks this nullable column: it reads as NULL

    def convert(self, raw: Any) -> Converted:
        if raw is None:
            if self.not_null:
                raise Unconvertible("NULL in a NOT NULL column")
            return Converted(None)
        return self.transform.convert(raw)


@dataclass(frozen=True)
class ForeignKeyMap:
    """A foreign key with Prisma's referential action.

    Prisma's ``Restrict`` is declared ``NO ACTION``: the same refusal for the app, but checked
    when the transaction commits once deferred, where ``RESTRICT`` is checked at once even when
    deferred, and the follower (which applies a parent's delete and its children's in one
    transaction, in any order) needs the check at commit.
    """

    column: str
    parent: str
    parent_column: str = "id"
    on_delete: str = "NO ACTION"
    on_update: str = "CASCADE"  # Prisma's default: a parent's new id travels to its children


@dataclass(frozen=True)
class TableMap:
    legacy: str
    target: str
    columns: tuple[ColumnMap, ...]
    foreign_keys: tuple[ForeignKeyMap, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    partitioned_by: str | None = None
    primary_key: tuple[str, ...] = ("id",)
    target_schema: str = "public"
    extra: tuple[str, ...] = ()  # legacy columns the mapping does not know, carried in legacy_extra

    @property
    def legacy_key(self) -> str:
        return self.column_for_target(self.primary_key[0]).legacy

    @property
    def key_column(self) -> str:
        """The target column that identifies a row (the legacy primary key's column)."""
        return self.primary_key[0]

    @property
    def ident(self) -> sql.Identifier:
        """The target table, schema-qualified, for composing SQL."""
        return sql.Identifier(self.target_schema, self.target)

    @property
    def qualified(self) -> str:
        return f"{self.target_schema}.{self.target}"

    @property
    def legacy_columns(self) -> list[str]:
        """The legacy columns a row is read as: the mapped ones, then the carried extras."""
        return [c.legacy for c in self.columns] + list(self.extra)

    @property
    def target_columns(self) -> list[str]:
        """The target columns a row is written as (``legacy_extra`` last, when there are extras)."""
        return [c.target for c in self.columns] + ([EXTRA_COLUMN] if self.extra else [])

    @property
    def extra_transform(self) -> Extra:
        return Extra(self.extra)

    def legacy_select(self) -> str:
        """The SQLite select list of :attr:`legacy_columns` (NULL for a column the file lacks)."""
        mapped = ["NULL" if c.absent else quote_ident(c.legacy) for c in self.columns]
        return ", ".join(mapped + [quote_ident(c) for c in self.extra])

    def legacy_key_of(self, raw: tuple[Any, ...]) -> str | None:
        """A legacy row's key as SQLite stores it."""
        value = raw[self.legacy_columns.index(self.legacy_key)]
        return None if value is None else str(value)

    def target_key_of(self, legacy_key: str) -> Any:
        """A legacy key in the target's type; Unconvertible when it could never be there."""
        return self.column_for_target(self.key_column).transform.convert(legacy_key).value

    def column_for_target(self, target: str) -> ColumnMap:
        return next(c for c in self.columns if c.target == target)

    def column_for_legacy(self, legacy: str) -> ColumnMap:
        return next(c for c in self.columns if c.legacy == legacy)

    @property
    def fast_path(self) -> bool:
        """True when SQLite itself can check and format every column of this table."""
        return not self.extra and all(c.transform.sqlite_csv("x") is not None for c in self.columns)


def _c(legacy: str, target: str, transform: Transform, not_null: bool = True) -> ColumnMap:
    return ColumnMap(legacy, target, transform, not_null)


def _n(legacy: str, target: str, transform: Transform) -> ColumnMap:
    return ColumnMap(legacy, target, transform, False)


_STAMPS = (_c("createdAt", "created_at", TS), _c("updatedAt", "updated_at", TS))

TABLES: tuple[TableMap, ...] = (
    TableMap("_prisma_migrations", "legacy_prisma_migrations", (
        _c("id", "id", TEXT), _c("checksum", "checksum", TEXT), _n("finished_at", "finished_at", TS),
        _c("migration_name", "migration_name", TEXT), _n("logs", "logs", TEXT),
        _n("rolled_back_at", "rolled_back_at", TS), _c("started_at", "started_at", TS),
        _c("applied_steps_count", "applied_steps_count", INT),
    )),
    TableMap("users", "users", (
        _c("id", "id", UUID), _c("email", "email", TEXT), _c("password", "password", TEXT),
        _c("name", "name", TEXT), _c("role", "role", USER_ROLE), *_STAMPS,
    ), unique=(("email",),)),
    TableMap("laboratories", "laboratories", (
        _c("id", "id", UUID), _c("name", "name", TEXT), _c("accreditation", "accreditation", TEXT),
        _c("email", "email", TEXT), _n("phone", "phone", TEXT), _n("address", "address", TEXT),
        _c("isActive", "is_active", BOOL), *_STAMPS,
    ), unique=(("email",),)),
    TableMap("products", "products", (
        _c("id", "id", UUID), _c("name", "name", TEXT), _c("brand", "brand", TEXT),
        _c("category", "category", TEXT), _n("description", "description", TEXT),
        _c("sku", "sku", TEXT), _n("batchNumber", "batch_number", TEXT),
        _n("nutritionalInfo", "nutritional_info", JSON), _n("claims", "claims", CommaList()),
        _n("imageUrl", "image_urls", SingletonList()), _n("qrCode", "qr_code", TEXT),
        _c("status", "status", PRODUCT_STATUS), *_STAMPS, _c("userId", "user_id", UUID),
    ), foreign_keys=(ForeignKeyMap("user_id", "users"),),
        unique=(("sku",), ("qr_code",))),
    TableMap("reports", "reports", (
        _c("id", "id", UUID), _c("fileName", "file_name", TEXT),
        _c("originalName", "original_name", TEXT), _c("filePath", "file_path", TEXT),
        _c("fileSize", "file_size", BIGINT), _c("mimeType", "mime_type", TEXT),
        _c("analysisType", "analysis_type", TEXT), _c("results", "results", JSON),
        _c("isVerified", "is_verified", BOOL), _n("verificationHash", "verification_hash", TEXT),
        *_STAMPS, _c("productId", "product_id", UUID), _c("laboratoryId", "laboratory_id", UUID),
    ), foreign_keys=(ForeignKeyMap("product_id", "products"),
                     ForeignKeyMap("laboratory_id", "laboratories"))),
    TableMap("validations", "validations", (
        _c("id", "id", UUID), _c("status", "status", VALIDATION_STATUS), _c("type", "type", TEXT),
        _n("claimsValidated", "claims_validated", JSON), _n("summary", "summary", TEXT),
        _n("notes", "notes", TEXT), _n("validatedAt", "validated_at", TS), *_STAMPS,
        _c("productId", "product_id", UUID), _n("reportId", "report_id", UUID),
        _c("userId", "user_id", UUID),
    ), foreign_keys=(ForeignKeyMap("product_id", "products"),
                     ForeignKeyMap("report_id", "reports", on_delete="SET NULL"),
                     ForeignKeyMap("user_id", "users"))),
    TableMap("product_seals", "product_seals", (
        _c("id", "id", UUID), _c("productId", "product_id", UUID), _c("sealId", "seal_id", TEXT),
        _n("certificateNumber", "certificate_number", TEXT), _n("issuedDate", "issued_date", TS),
        _n("expiryDate", "expiry_date", TS),
        _n("validatingLaboratory", "validating_laboratory", TEXT),
        _n("documentUrl", "document_url", TEXT), _c("status", "status", TEXT),
        _n("verifiedBy", "verified_by", TEXT), _n("verifiedAt", "verified_at", TS),
        _n("notes", "notes", TEXT), *_STAMPS,
    ), foreign_keys=(ForeignKeyMap("product_id", "products"),)),
    TableMap("qr_code_accesses", "qr_code_access", (
        _c("id", "id", UUID), _c("qrCode", "qr_code", TEXT), _n("ipAddress", "ip_address", INET),
        _n("userAgent", "user_agent", TEXT), _n("location", "location", JSON),
        _c("accessedAt", "accessed_at", TS),
    ), partitioned_by="accessed_at", primary_key=("id", "accessed_at")),
    TableMap("validation_queue", "validation_queue", (
        _c("id", "id", UUID), _c("productId", "product_id", UUID),
        _c("requestedById", "requested_by_id", UUID), _n("assignedToId", "assigned_to_id", UUID),
        _c("status", "status", TEXT), _c("priority", "priority", PRIORITY_LEVEL),
        _c("category", "category", TEXT), _n("estimatedDuration", "estimated_duration", INT),
        _n("actualDuration", "actual_duration", INT), _n("assignedAt", "assigned_at", TS),
        _n("startedAt", "started_at", TS), _n("completedAt", "completed_at", TS),
        _n("dueDate", "due_date", TS), _n("notes", "notes", TEXT),
        _n("metadata", "metadata", JSON), *_STAMPS,
    ), foreign_keys=(ForeignKeyMap("product_id", "products", on_delete="CASCADE"),
                     ForeignKeyMap("requested_by_id", "users"),
                     ForeignKeyMap("assigned_to_id", "users", on_delete="SET NULL"))),
    TableMap("validation_queue_history", "validation_queue_history", (
        _c("id", "id", UUID), _c("queueId", "queue_id", UUID), _c("action", "action", TEXT),
        _n("previousStatus", "previous_status", TEXT), _n("newStatus", "new_status", TEXT),
        _c("performedById", "performed_by_id", UUID), _n("reason", "reason", TEXT),
        _n("metadata", "metadata", JSON), _c("createdAt", "created_at", TS),
    ), foreign_keys=(ForeignKeyMap("queue_id", "validation_queue", on_delete="CASCADE"),
                     ForeignKeyMap("performed_by_id", "users"))),
    TableMap("analytics_events", "analytics_events", (
        _c("id", "id", UUID), _c("eventType", "event_type", TEXT),
        _c("entityType", "entity_type", TEXT), _c("entityId", "entity_id", UUID),
        _n("userId", "user_id", UUID), _n("sessionId", "session_id", TEXT),
        _n("data", "data", JSON), _n("ipAddress", "ip_address", INET),
        _n("userAgent", "user_agent", TEXT), _c("timestamp", "created_at", TS),
    ), foreign_keys=(ForeignKeyMap("user_id", "users", on_delete="SET NULL"),),
        partitioned_by="created_at", primary_key=("id", "created_at")),
)

BY_LEGACY: dict[str, TableMap] = {t.legacy: t for t in TABLES}
BY_TARGET: dict[str, TableMap] = {t.target: t for t in TABLES}


@dataclass(frozen=True)
class Mapping:
    """A set of mapped tables, parents first: the declared mapping, or one extended for drift."""

    tables: tuple[TableMap, ...]

    @property
    def by_legacy(self) -> dict[str, TableMap]:
        return {t.legacy: t for t in self.tables}

    @property
    def by_target(self) -> dict[str, TableMap]:
        return {t.target: t for t in self.tables}

    def children_of(self, parent: TableMap) -> list[tuple[TableMap, ForeignKeyMap]]:
        """Every (child table, foreign key) that refers to ``parent``."""
        return [(t, fk) for t in self.tables for fk in t.foreign_keys
                if fk.parent == parent.target and t.target_schema == parent.target_schema]

    def parent_of(self, fk: ForeignKeyMap, child: TableMap) -> TableMap:
        return next(t for t in self.tables if t.target == fk.parent and t.target_schema == child.target_schema)


DECLARED = Mapping(TABLES)


def mapping_rows() -> list[tuple[str, str, str, str, str]]:
    """The mapping as printable rows: legacy table.column → target table.column, type, rule."""
    rows = []
    for table in TABLES:
        for col in table.columns:
            rule = type(col.transform).__name__
            if isinstance(col.transform, Enum) and col.transform.aliases:
                rule += " (" + ", ".join(f"{a}→{b}" for a, b in col.transform.aliases) + ")"
            rows.append((f"{table.legacy}.{col.legacy}", f"{table.target}.{col.target}",
                         col.transform.pg_type + (" NOT NULL" if col.not_null else ""), rule,
                         "fast" if table.fast_path else "python"))
    return rows
