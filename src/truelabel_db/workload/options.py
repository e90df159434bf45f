"""What a workload run is asked to do, checked before any writer starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from truelabel_db.errors import ConfigError

# The logical clock starts here (2026-11-29T00:00:00Z), so a seed's rows do not depend on the day.
DEFAULT_CLOCK_MS = 1_795_910_400_000
JOURNAL_MODES = ("delete", "wal")
SYNCHRONOUS_MODES = ("off", "normal", "full")
TARGETS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class WorkloadOptions:
    """A workload run. ``rate`` is operations per second across all writers (0: as fast as they
    can); the run ends after ``seconds``, after ``operations`` (split between writers), or when
    stopped, whichever comes first. ``fk_on_share`` of operations come from the Prisma app
    (foreign keys ON), the rest from scripts (OFF). ``weights`` changes the mix: a kind's
    relative frequency, 0 to leave it out (see :data:`truelabel_db.workload.planner.DEFAULT_WEIGHTS`).
    ``synchronous`` is the writers' ``PRAGMA synchronous`` (None: SQLite's default, FULL, as
    Prisma leaves it; each commit then waits for the disk). ``target`` is where writes go when no gate names the primary; ``postgres_url`` is needed
    once writes go to PostgreSQL.
    """

    seed: int = 1
    processes: int = 1
    rate: float = 0.0
    seconds: float | None = None
    operations: int | None = None
    fk_on_share: float = 0.8
    dirt_rate: float = 0.0
    journal_mode: str | None = None
    synchronous: str | None = None
    busy_timeout_ms: int = 5000
    weights: dict[str, float] = field(default_factory=dict)
    log_dir: Path | None = None
    pool_limit: int = 2000
    clock_ms: int = DEFAULT_CLOCK_MS
    target: str = "sqlite"
    postgres_url: str | None = field(default=None, repr=False)

    def check(self, known_kinds: frozenset[str]) -> None:
        """Refuse what cannot run, with one line that names the option."""
        if self.processes < 1:
            raise ConfigError("--processes must be at least 1")
        if self.rate < 0:
            raise ConfigError("--rate must be 0 (as fast as possible) or positive")
        if self.seconds is not None and self.seconds <= 0:
            raise ConfigError("--seconds must be positive")
        if self.operations is not None and self.operations < 0:
            raise ConfigError("--operations must not be negative")
        for name in ("fk_on_share", "dirt_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be between 0 and 1")
        if self.journal_mode is not None and self.journal_mode not in JOURNAL_MODES:
            raise ConfigError(f"--journal-mode must be one of {', '.join(JOURNAL_MODES)}")
        if self.synchronous is not None and self.synchronous not in SYNCHRONOUS_MODES:
            raise ConfigError(f"--synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")
        if self.busy_timeout_ms < 0 or self.pool_limit < 1:
            raise ConfigError("the busy timeout must not be negative and the pool limit must be positive")
        unknown = sorted(set(self.weights) - known_kinds)
        if unknown:
            raise ConfigError(f"unknown operation kinds in the mix: {', '.join(unknown)}")
        if any(w < 0 for w in self.weights.values()):
            raise ConfigError("operation weights must not be negative")
        if self.target not in TARGETS:
            raise ConfigError(f"the workload target must be one of {', '.join(TARGETS)}")
        if self.target == "postgresql" and not self.postgres_url:
            raise ConfigError("writing to PostgreSQL needs its URL (postgres_url, or --target)")

    def quota(self, writer: int) -> int | None:
        """How many operations writer ``writer`` runs (None: until time is up or it is stopped)."""
        if self.operations is None:
            return None
        share, extra = divmod(self.operations, self.processes)
        return share + (1 if writer < extra else 0)

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON, without the PostgreSQL URL (it may carry a password)."""
        out = asdict(self)
        out["postgres_url"] = "<set>" if self.postgres_url else None
        out["log_dir"] = str(self.log_dir) if self.log_dir else None
        return out


def parse_mix(text: str) -> dict[str, float]:
    """``"scan_qr=10,delete_product_each=5"`` → weights (a kind not named keeps its default)."""
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, sep, weight = item.partition("=")
        try:
            weights[kind.strip()] = float(weight)
        except ValueError:
            raise ConfigError(f"--mix wants KIND=WEIGHT items, got {item!r}") from None
        if not sep:
            raise ConfigError(f"--mix wants KIND=WEIGHT items, got {item!r}")
    return weights
