"""A workload that plays the True Label app against a legacy file, seeded and replayable.

    summary = run_workload(Path("legacy.db"), WorkloadOptions(seed=7, processes=2, rate=300,
                                                              seconds=30, journal_mode="wal"))

    with start_workload(path, options, gate=partial(AppGate, redis_url=url)) as run:
        ...                     # capture, copy, follow, cutover while it writes
        run.stop()
    summary = run.join()

Every legacy table; creates with nested children, updates (unique columns and keys too),
upserts, ``INSERT OR REPLACE``, ``deleteMany`` of parents with their children, multi-table
transactions; connections with foreign keys ON (the app) and OFF (scripts); dirty values on
request; several writer processes. The same seed and options give the same operations.
"""

from truelabel_db.workload.oplog import read_log, stream
from truelabel_db.workload.options import WorkloadOptions, parse_mix
from truelabel_db.workload.planner import DEFAULT_WEIGHTS, KINDS, Planner, writer_seed
from truelabel_db.workload.runner import WorkloadHandle, run_workload, start_workload
from truelabel_db.workload.summary import OperationResult, WorkloadFailed, WorkloadSummary
from truelabel_db.workload.writer import WriteGate

__all__ = ["DEFAULT_WEIGHTS", "KINDS", "OperationResult", "Planner", "WorkloadFailed", "WorkloadHandle",
           "WorkloadOptions", "WorkloadSummary", "WriteGate", "parse_mix", "read_log", "run_workload",
           "start_workload", "stream", "writer_seed"]
