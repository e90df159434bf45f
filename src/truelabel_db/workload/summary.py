"""What a run did: operations by kind and outcome, refusals by reason, retries, waits.

Outcomes: ``committed`` (every unit), ``refused`` (a constraint said no: an app error the
workload expects; the units before it stay committed), ``stopped`` (the run ended while the
operation waited for a lock or the gate), ``error`` (anything else: a bug or a broken
database, which a test should treat as a failure).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from truelabel_db.errors import ExitCode, TrueLabelError

OUTCOMES = ("committed", "refused", "stopped", "error")


class WorkloadFailed(TrueLabelError):
    """A writer crashed, or operations ended in errors a workload does not expect."""

    exit_code = ExitCode.FAILED



@dataclass
class OperationResult:
    """How one operation went; ``step`` is the unit it ended on when it did not commit."""

    outcome: str = "committed"
    step: int | None = None
    reason: str | None = None
    message: str | None = None
    rows: list[int] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    lock_retries: int = 0
    fence_retries: int = 0
    gate_wait_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The parts the operation log keeps (no timings: a log must compare equal across runs)."""
        out: dict[str, Any] = {"outcome": self.outcome, "rows": self.rows, "target": self.targets}
        if self.step is not None:
            out |= {"step": self.step, "reason": self.reason, "message": self.message}
        if self.lock_retries:
            out["lock_retries"] = self.lock_retries
        if self.fence_retries:
            out["fence_retries"] = self.fence_retries
        return out


@dataclass
class WorkloadSummary:
    seed: int = 0
    processes: int = 0
    seconds: float = 0.0
    operations: int = 0
    statements: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    targets: Counter[str] = field(default_factory=Counter)
    dirty_values: Counter[str] = field(default_factory=Counter)
    fk_on: int = 0
    fk_off: int = 0
    lock_retries: int = 0
    fence_retries: int = 0
    gate_waits: int = 0
    longest_gate_wait_ms: float = 0.0
    errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def committed(self) -> int:
        return self.outcomes["committed"]

    @property
    def rate(self) -> float:
        return self.operations / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """No writer failed and no operation ended in an unexpected error."""
        return not self.failures and not self.outcomes["error"]

    def raise_for_failure(self) -> None:
        """Raise :class:`WorkloadFailed` unless the run was :attr:`ok`, naming the first problem."""
        if self.ok:
            return
        first = (self.failures or self.errors or ["?"])[0]
        raise WorkloadFailed(f"{len(self.failures)} writer(s) failed and {self.outcomes['error']} "
                             f"operation(s) ended in an error; first: {first}")

    def record(self, kind: str, fk_on: bool, statements: int, dirt: list[str],
               result: OperationResult) -> None:
        self.operations += 1
        self.statements += statements
        self.outcomes[result.outcome] += 1
        self.by_kind.setdefault(kind, Counter())[result.outcome] += 1
        if result.outcome == "refused" and result.reason:
            self.refused[result.reason] += 1
        if result.outcome == "error" and result.message and len(self.errors) < 20:
            self.errors.append(f"{kind}: {result.message}")
        for target in result.targets:
            self.targets[target] += 1
        self.dirty_values.update(dirt)
        self.fk_on, self.fk_off = self.fk_on + fk_on, self.fk_off + (not fk_on)
        self.lock_retries += result.lock_retries
        self.fence_retries += result.fence_retries
        if result.gate_wait_ms > 0:
            self.gate_waits += 1
            self.longest_gate_wait_ms = max(self.longest_gate_wait_ms, result.gate_wait_ms)

    def merge(self, other: WorkloadSummary) -> None:
        """Add another writer's summary to this one (the run's wall time is the longest)."""
        for name in ("operations", "statements", "fk_on", "fk_off", "lock_retries", "fence_retries",
                     "gate_waits"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("outcomes", "refused", "targets", "dirty_values"):
            getattr(self, name).update(getattr(other, name))
        for kind, counts in other.by_kind.items():
            self.by_kind.setdefault(kind, Counter()).update(counts)
        self.seconds = max(self.seconds, other.seconds)
        self.longest_gate_wait_ms = max(self.longest_gate_wait_ms, other.longest_gate_wait_ms)
        self.errors += other.errors[: max(0, 20 - len(self.errors))]
        self.failures += other.failures
        self.logs += other.logs
        self.interrupted = self.interrupted or other.interrupted

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "processes": self.processes, "seconds": round(self.seconds, 3),
                "operations": self.operations, "statements": self.statements,
                "rate": round(self.rate, 1), "outcomes": {o: self.outcomes[o] for o in OUTCOMES},
                "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(self.by_kind.items())},
                "refused": dict(sorted(self.refused.items())), "targets": dict(sorted(self.targets.items())),
                "dirty_values": dict(sorted(self.dirty_values.items())), "fk_on": self.fk_on,
                "fk_off": self.fk_off, "lock_retries": self.lock_retries,
                "fence_retries": self.fence_retries, "gate_waits": self.gate_waits,
                "longest_gate_wait_ms": round(self.longest_gate_wait_ms, 1), "errors": self.errors,
                "failures": self.failures, "logs": self.logs, "interrupted": self.interrupted}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkloadSummary:
        """Back from a writer process (which sends its summary as a plain dict)."""
        summary = cls(**{k: v for k, v in data.items() if k in _PLAIN})
        summary.outcomes = +Counter(data["outcomes"])
        summary.refused, summary.targets = Counter(data["refused"]), Counter(data["targets"])
        summary.dirty_values = Counter(data["dirty_values"])
        summary.by_kind = {k: Counter(v) for k, v in data["by_kind"].items()}
        return summary


_PLAIN = ("seed", "processes", "seconds", "operations", "statements", "fk_on", "fk_off", "lock_retries",
          "fence_retries", "gate_waits", "longest_gate_wait_ms", "errors", "failures", "logs", "interrupted")
